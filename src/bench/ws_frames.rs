//! The generator's WebSocket: the opening handshake and frames, over a bare TCP socket.
//!
//! tokio-tungstenite's stream read every frame into a buffer of its own (zero-filled before
//! each read, snapview/tungstenite-rs#547), handed it out as an allocation, and checked its
//! UTF-8: at high rates those steps and the page faults of the memory they churned took
//! most of the generator's core, so it measured itself rather than the server
//! (docs/benchmarks.md, "The WebSocket generator reads its own frames").
//! Here the frames are unwrapped straight from the bytes the receiver read, on the same path
//! as plain TCP (kernel arrival stamps included, the payload not being encrypted).
//! tungstenite still does the work that has rules: parsing and formatting frame headers,
//! the handshake's key and its accepted answer.

use std::hash::{BuildHasher, RandomState};
use std::io::{self, Cursor};
use std::net::SocketAddr;

use anyhow::bail;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};

/// The response to the opening handshake, at most: a server that sends more is refused.
const HANDSHAKE_BYTES: usize = 8 * 1024;

/// Opens a WebSocket at `path` on `stream`: the reading half (buffered, as the response
/// may have been read together with the first frames) and the writing half.
pub async fn open(
    stream: TcpStream,
    addr: SocketAddr,
    path: &str,
) -> anyhow::Result<(BufReader<OwnedReadHalf>, OwnedWriteHalf)> {
    let (r, mut w) = stream.into_split();
    let key = generate_key();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    w.write_all(request.as_bytes()).await?;
    let mut reader = BufReader::new(r);
    let mut status = String::new();
    let mut accept = None;
    let mut read = 0;
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).await?;
        read += n;
        if n == 0 || read > HANDSHAKE_BYTES {
            bail!("the WebSocket handshake with {addr}{path} ended early or ran long");
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if status.is_empty() {
            status = line.to_string();
        } else if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("sec-websocket-accept")
        {
            accept = Some(value.trim().to_string());
        }
    }
    if status.split(' ').nth(1) != Some("101") {
        bail!("WebSocket handshake with {addr}{path} refused: {status}");
    }
    if accept.as_deref() != Some(derive_accept_key(key.as_bytes()).as_str()) {
        bail!("WebSocket handshake with {addr}{path}: wrong Sec-WebSocket-Accept");
    }
    Ok((reader, w))
}

/// Appends `line` as a text frame, masked as a client's must be.
pub fn text_frame(line: &[u8], mask: [u8; 4], out: &mut Vec<u8>) {
    let mut frame = Frame::message(line.to_vec(), OpCode::Data(Data::Text), true);
    frame.header_mut().mask = Some(mask);
    frame
        .format(out)
        .expect("formatting into a Vec cannot fail");
}

/// The pong a ping with `payload` is owed, masked.
pub fn pong_frame(payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut frame = Frame::pong(payload.to_vec());
    frame.header_mut().mask = Some(mask);
    let mut out = Vec::new();
    frame
        .format(&mut out)
        .expect("formatting into a Vec cannot fail");
    out
}

/// A masking key for one connection. RFC 6455 wants keys a browser's script cannot
/// predict, against proxies' caches; the generator talks to the server under test on
/// loopback, so one key per connection from std's seeded hasher does.
pub fn mask_key() -> [u8; 4] {
    let bits = RandomState::new().hash_one(0u8);
    (bits as u32).to_le_bytes()
}

/// What the server's frames held.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Unframed {
    /// Every complete text or binary message, each followed by `\n`, as lines read from a
    /// stream would be.
    pub lines: Vec<u8>,
    /// The payloads of the pings to answer.
    pub pings: Vec<Vec<u8>>,
    /// The server sent a close frame.
    pub closed: bool,
}

/// Unwraps frames from the bytes as they are read, keeping a frame cut between two reads
/// until its end arrives.
#[derive(Default)]
pub struct Unframer {
    carry: Vec<u8>,
}

impl Unframer {
    /// Unwraps every whole frame of what came before plus `chunk` into `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Unframed) -> io::Result<()> {
        if self.carry.is_empty() {
            let used = unframe(chunk, out)?;
            self.carry.extend_from_slice(&chunk[used..]);
        } else {
            self.carry.extend_from_slice(chunk);
            let used = unframe(&self.carry, out)?;
            self.carry.drain(..used);
        }
        Ok(())
    }
}

/// Unwraps the whole frames at the start of `bytes`; returns how many bytes they took.
fn unframe(bytes: &[u8], out: &mut Unframed) -> io::Result<usize> {
    let mut cursor = Cursor::new(bytes);
    loop {
        let start = cursor.position() as usize;
        let Some((header, len)) = FrameHeader::parse(&mut cursor).map_err(io::Error::other)? else {
            return Ok(start);
        };
        let at = cursor.position() as usize;
        let Some(end) = usize::try_from(len)
            .ok()
            .and_then(|len| at.checked_add(len))
            .filter(|&end| end <= bytes.len())
        else {
            return Ok(start);
        };
        let payload = &bytes[at..end];
        cursor.set_position(end as u64);
        // The server's messages are small and never fragmented; a continuation would be
        // joined to its line all the same, as its bytes are appended in order.
        match header.opcode {
            OpCode::Data(Data::Text | Data::Binary | Data::Continue) => {
                out.lines.extend_from_slice(payload);
                if header.is_final {
                    out.lines.push(b'\n');
                }
            }
            OpCode::Control(Control::Ping) => out.pings.push(payload.to_vec()),
            OpCode::Control(Control::Close) => out.closed = true,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_frame(opcode: OpCode, payload: &[u8]) -> Vec<u8> {
        let header = FrameHeader {
            opcode,
            ..FrameHeader::default()
        };
        let mut out = Vec::new();
        Frame::from_payload(header, payload.to_vec().into())
            .format(&mut out)
            .unwrap();
        out
    }

    /// Text frames become lines, pings are kept to answer, and a frame cut anywhere
    /// between two reads comes out whole once its end arrives.
    #[test]
    fn frames_split_anywhere_come_out_whole() {
        let long = "é".repeat(200);
        let mut wire = server_frame(OpCode::Data(Data::Text), b"{\"type\":\"message\"}");
        wire.extend(server_frame(OpCode::Control(Control::Ping), b"p"));
        wire.extend(server_frame(OpCode::Data(Data::Text), long.as_bytes()));
        wire.extend(server_frame(OpCode::Control(Control::Close), b""));
        for cut in 0..wire.len() {
            let mut unframer = Unframer::default();
            let mut out = Unframed::default();
            unframer.push(&wire[..cut], &mut out).unwrap();
            unframer.push(&wire[cut..], &mut out).unwrap();
            let expected = format!("{{\"type\":\"message\"}}\n{long}\n");
            assert_eq!(out.lines, expected.as_bytes(), "cut at {cut}");
            assert_eq!(out.pings, vec![b"p".to_vec()]);
            assert!(out.closed);
        }
    }

    /// What the generator sends is masked, and unmasks to the line.
    #[test]
    fn a_text_frame_is_masked_and_holds_the_line() {
        let mut out = Vec::new();
        text_frame(b"hello", [1, 2, 3, 4], &mut out);
        let mut cursor = Cursor::new(&out[..]);
        let (header, len) = FrameHeader::parse(&mut cursor).unwrap().unwrap();
        assert_eq!(header.mask, Some([1, 2, 3, 4]));
        assert_eq!(header.opcode, OpCode::Data(Data::Text));
        let at = cursor.position() as usize;
        let unmasked: Vec<u8> = out[at..at + len as usize]
            .iter()
            .zip([1u8, 2, 3, 4].iter().cycle())
            .map(|(b, m)| b ^ m)
            .collect();
        assert_eq!(unmasked, b"hello");
    }
}
