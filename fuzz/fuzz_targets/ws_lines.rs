//! The WebSocket adapter (`server::WsLines`), between a real tungstenite client and the
//! server's side set up as the server sets it up (`server::ws_config`), over an in-memory
//! pipe. Frame parsing itself is tungstenite's; what is charla's is the adapter, and this
//! checks it against a model both ways:
//!
//! - read: the line given first, then each text or binary message the client sends, in
//!   order, as one line (its CRs and LFs become spaces, a `\n` ends it) read in pieces of
//!   1 to 64 bytes; pings and pongs add nothing; a close ends the stream; a message (or a
//!   ping or pong) over the bound ends it too, with `FrameTooBig`, and the server then closes
//!   with 1009. Every
//!   such line is one line of the line framer with the same bound, never too long;
//! - write: bytes written in arbitrary chunks come out as one text message per `\n`-ended
//!   line, a character cut between two writes whole; what has no `\n` yet is not sent.
#![no_main]

use std::sync::OnceLock;

use charla::protocol::framing::{Frame, Framer};
use charla::server::{FrameTooBig, WsLines, ws_config};
use charla_fuzz::chunks;
use futures_util::{FutureExt, SinkExt, StreamExt};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::runtime::Runtime;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

/// One runtime for the process: the adapter's ping timer needs one with time.
fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime")
    })
}

/// What the client sends, as the input spells it.
#[derive(Debug)]
enum Send {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close,
}

/// Reads `data` as messages: a tag byte (its low 3 bits the kind, its next two a length
/// multiplier of 1 to 4), a length byte, that many bytes.
fn script(mut data: &[u8]) -> Vec<Send> {
    let mut out = Vec::new();
    while let Some((&[tag, len], rest)) = data.split_first_chunk::<2>() {
        let len = (usize::from(len) * (1 + usize::from(tag >> 3 & 3))).min(rest.len());
        let (payload, tail) = rest.split_at(len);
        data = tail;
        out.push(match tag & 7 {
            0..=2 => Send::Text(String::from_utf8_lossy(payload).into_owned()),
            3 | 4 => Send::Binary(payload.to_vec()),
            // A control frame carries at most 125 bytes.
            5 => Send::Ping(payload[..len.min(125)].to_vec()),
            6 => Send::Pong(payload[..len.min(125)].to_vec()),
            _ => Send::Close,
        });
    }
    out
}

/// A message's payload as the line the adapter reads from it: line breaks at its end (an
/// IRC client's CRLF) left out, those inside it made spaces.
fn line_of(payload: &[u8]) -> Vec<u8> {
    let end = payload
        .iter()
        .rposition(|&b| b != b'\r' && b != b'\n')
        .map_or(0, |last| last + 1);
    let mut line: Vec<u8> = payload[..end]
        .iter()
        .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b })
        .collect();
    line.push(b'\n');
    line
}

/// Reads every message the client has been sent, without waiting.
fn received(client: &mut WebSocketStream<DuplexStream>) -> Vec<Message> {
    let mut got = Vec::new();
    while let Some(Some(message)) = client.next().now_or_never() {
        got.push(message.expect("the client reads what the server wrote"));
    }
    got
}

async fn run(max: usize, seed: u8, first: Option<String>, written: &[u8], sends: Vec<Send>) {
    let (server, client) = tokio::io::duplex(1 << 20);
    let server = WebSocketStream::from_raw_socket(server, Role::Server, Some(ws_config(max))).await;
    let mut client = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
    let mut lines = WsLines::new(server, first.clone());

    // Writing: whole lines become text messages however the bytes were cut.
    for piece in chunks(written, seed) {
        lines
            .write_all(piece)
            .await
            .expect("a write is taken whole");
    }
    lines.flush().await.expect("flushed");
    // What follows the last `\n` waits for its end.
    let mut ended: Vec<&[u8]> = written.split(|&b| b == b'\n').collect();
    ended.pop();
    // A line's CR before its LF (IRC's CRLF) is not sent: a frame is the line.
    let want: Vec<String> = ended
        .into_iter()
        .map(|line| String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(line)).into_owned())
        .collect();
    let got: Vec<String> = received(&mut client)
        .into_iter()
        .map(|m| match m {
            Message::Text(text) => text.as_str().to_owned(),
            other => panic!("a line written came as {other:?}"),
        })
        .collect();
    assert_eq!(got, want, "lines written");

    // Reading: what the model says, in pieces, then the end.
    // The first line is the server's own (a hello made from the URL), not bounded by
    // tungstenite: the framer may find it too long, which the codec answers.
    let first_line = first.map(|f| line_of(f.as_bytes()));
    // The line without its `\n`, as the framer bounds it.
    let first_fits = first_line.as_ref().map(|l| l.len() - 1 <= max);
    let mut model: Vec<u8> = first_line.unwrap_or_default();
    let mut oversized = false;
    for send in &sends {
        let (payload, line) = match send {
            Send::Text(text) => (text.as_bytes(), true),
            Send::Binary(data) => (&data[..], true),
            // tungstenite bounds every frame, a ping's or pong's too (with a line bound
            // under their 125 bytes).
            Send::Ping(data) | Send::Pong(data) => (&data[..], false),
            Send::Close => break,
        };
        if payload.len() > max {
            oversized = true;
            break;
        }
        if line {
            model.extend(line_of(payload));
        }
    }
    for send in sends {
        let message = match send {
            Send::Text(text) => Message::text(text),
            Send::Binary(data) => Message::binary(data),
            Send::Ping(data) => Message::Ping(data.into()),
            Send::Pong(data) => Message::Pong(data.into()),
            Send::Close => break,
        };
        client.feed(message).await.expect("the client sends");
    }
    client.close(None).await.expect("the client closes");

    let sizes = chunks(&model, seed.rotate_left(3));
    let mut read = Vec::new();
    let mut buf = [0u8; 64];
    for size in sizes
        .iter()
        .map(|c| c.len().min(64))
        .chain(std::iter::repeat(64))
    {
        // A message over the bound ends the reads with why, after the lines before it.
        let n = match lines.read(&mut buf[..size]).await {
            Ok(n) => n,
            Err(e) if oversized && e.get_ref().is_some_and(|e| e.is::<FrameTooBig>()) => break,
            Err(e) => panic!("the lines read: {e}"),
        };
        if n == 0 {
            break;
        }
        read.extend_from_slice(&buf[..n]);
    }
    assert!(
        read == model,
        "read {:?}, want {:?}",
        String::from_utf8_lossy(&read),
        String::from_utf8_lossy(&model)
    );
    let mut framer = Framer::new(max);
    let mut frames = Vec::new();
    framer.feed(&read, |frame| frames.push(matches!(frame, Frame::Line(_))));
    let mut want = vec![true; model.iter().filter(|&&b| b == b'\n').count()];
    if let Some(fits) = first_fits {
        want[0] = fits;
    }
    assert_eq!(frames, want, "lines the framer took whole");

    // The client's close was answered already unless a message was over the bound.
    let _ = lines.shutdown().await;
    if oversized {
        let close = received(&mut client).into_iter().find_map(|m| match m {
            Message::Close(frame) => Some(frame),
            _ => None,
        });
        let code = close.flatten().map(|f| f.code);
        assert_eq!(code, Some(CloseCode::Size), "an oversized message's close");
    }
}

fuzz_target!(|input: &[u8]| {
    let Some((&[bound, seed, split], data)) = input.split_first_chunk::<3>() else {
        return;
    };
    // Bounds from 1 byte to about a kilobyte, so oversized messages are common.
    let max = 1 + usize::from(bound) * 4;
    let (written, data) = data.split_at((usize::from(split & 0x7f) * 8).min(data.len()));
    let (first, data) = if split & 0x80 != 0 {
        let (first, rest) = data.split_at(usize::from(seed & 0x3f).min(data.len()));
        (Some(String::from_utf8_lossy(first).into_owned()), rest)
    } else {
        (None, data)
    };
    // Unconstrained: the checks read what is ready without waiting, and tokio's budget would
    // make a ready pipe read as pending after a hundred-odd frames in one task.
    runtime().block_on(tokio::task::unconstrained(run(
        max,
        seed,
        first,
        written,
        script(data),
    )));
});
