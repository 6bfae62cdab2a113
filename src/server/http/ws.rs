//! A WebSocket as a byte stream of lines, so the one connection driver
//! (`server/connection.rs`) serves it with the same codec, flood control, send-queue bound
//! and registration as a TCP client.
//!
//! Each text frame read is one line: its line breaks (JSON whitespace only, since a JSON
//! string cannot hold a raw one) become spaces and a `\n` ends it. Each line written is one
//! text frame, without its `\n`; the driver writes many lines at once and may cut the last
//! one, whose start waits here for its end. A frame over the line bound is refused by
//! tungstenite from its header, before its payload is read: the read fails with
//! [`FrameTooBig`], so the session ends as `line_too_long`, and the connection is closed
//! with 1009 (message too big); nobody else notices.
//!
//! After [`WS_PING_INTERVAL`] without a frame from the client, the server sends a ping.
//!
//! An adapter rather than a codec over frames: the driver, the codec and the framer stay
//! exactly those of TCP, and what is written is still encoded once for all JSON clients.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use futures_util::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep, sleep};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::limits::{MAX_WRITE_BYTES, WS_PING_INTERVAL, WS_READ_BUFFER_BYTES};

/// How the server's side of a WebSocket is set up for lines of at most `max_line_bytes`: a
/// frame or message over the bound is refused by tungstenite from its header. What it
/// buffers for writing is one write of the driver's (it flushes past this): the rest waits
/// in the outbox, counted against the send queue.
pub fn config(max_line_bytes: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(max_line_bytes))
        .max_frame_size(Some(max_line_bytes))
        .write_buffer_size(MAX_WRITE_BYTES)
        .read_buffer_size(WS_READ_BUFFER_BYTES)
}

/// A WebSocket read and written as lines.
pub struct WsLines<S> {
    ws: WebSocketStream<S>,
    /// What the last frame read has still to give, its `\n` included.
    incoming: Bytes,
    /// The start of a line written but not yet ended.
    partial: Vec<u8>,
    /// Sent in the close frame on shutdown: [`CloseCode::Size`] after an oversized frame.
    close: CloseCode,
    /// The peer closed, or reading failed: the stream reads as ended from now on.
    ended: bool,
    /// The close frame has been queued.
    closing: bool,
    /// A frame was over the bound: once the close is sent, what is left of it is read and
    /// dropped (closing with it unread would reset the connection, and the peer could lose
    /// the close frame).
    overflowed: bool,
    /// When to ping the client if it sends nothing until then.
    ping: Pin<Box<Sleep>>,
    /// Lines are written in binary frames (IRCv3's `binary.ircv3.net`), not text ones.
    binary: bool,
}

impl<S> WsLines<S> {
    /// `first`, when given, is read before anything the peer sends (a `hello` made from
    /// the URL's `?nick=…&room=…`), and goes through flood control like any line.
    pub fn new(ws: WebSocketStream<S>, first: Option<String>) -> WsLines<S> {
        WsLines {
            ws,
            incoming: first
                .map(|line| frame_line(line.as_bytes()))
                .unwrap_or_default(),
            partial: Vec::new(),
            close: CloseCode::Normal,
            ended: false,
            closing: false,
            overflowed: false,
            ping: Box::pin(sleep(WS_PING_INTERVAL)),
            binary: false,
        }
    }

    /// Writes lines in binary frames when `binary`.
    pub fn binary(mut self, binary: bool) -> WsLines<S> {
        self.binary = binary;
        self
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WsLines<S> {
    /// Pings the client if it has been silent for [`WS_PING_INTERVAL`]; otherwise has the
    /// task woken when it will have been.
    fn ping_when_due(&mut self, cx: &mut Context<'_>) {
        while self.ping.as_mut().poll(cx).is_ready() {
            self.ping.as_mut().reset(Instant::now() + WS_PING_INTERVAL);
            if self.closing {
                continue;
            }
            // Queued whatever the write side is doing; sent with the next flush, tried now.
            let _ = Pin::new(&mut self.ws).start_send(Message::Ping(Bytes::new()));
            let _ = Pin::new(&mut self.ws).poll_flush(cx);
        }
    }
}

/// Reads and drops what `io` has until it ends (the stream then reads as ended) or has
/// nothing more for now.
fn discard<S: AsyncRead + Unpin>(io: &mut S, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
    let mut scrap = [0u8; 1024];
    loop {
        let mut buf = ReadBuf::new(&mut scrap);
        ready!(Pin::new(&mut *io).poll_read(cx, &mut buf))?;
        if buf.filled().is_empty() {
            return Poll::Ready(Ok(()));
        }
    }
}

/// A frame's text as one line; a line ending at its end (IRC clients may send one) is
/// not part of it.
fn frame_line(frame: &[u8]) -> Bytes {
    let end = frame
        .iter()
        .rposition(|&b| b != b'\n' && b != b'\r')
        .map_or(0, |last| last + 1);
    let mut line: Vec<u8> = frame[..end]
        .iter()
        .map(|&b| if b == b'\n' || b == b'\r' { b' ' } else { b })
        .collect();
    line.push(b'\n');
    Bytes::from(line)
}

/// A frame over the line bound was read: what a read fails with, so the connection's
/// driver says why the session ended rather than take it for a lost connection.
#[derive(Debug, thiserror::Error)]
#[error("a WebSocket frame longer than the line bound")]
pub struct FrameTooBig;

fn to_io(error: WsError) -> io::Error {
    match error {
        WsError::Io(e) => e,
        WsError::ConnectionClosed | WsError::AlreadyClosed => io::ErrorKind::BrokenPipe.into(),
        other => io::Error::new(io::ErrorKind::InvalidData, other),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WsLines<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if !this.incoming.is_empty() {
                let n = this.incoming.len().min(buf.remaining());
                buf.put_slice(&this.incoming[..n]);
                this.incoming.advance(n);
                return Poll::Ready(Ok(()));
            }
            if this.ended {
                if this.overflowed && this.closing {
                    return discard(this.ws.get_mut(), cx);
                }
                return Poll::Ready(Ok(()));
            }
            let next = match Pin::new(&mut this.ws).poll_next(cx) {
                Poll::Ready(next) => next,
                Poll::Pending => {
                    this.ping_when_due(cx);
                    return Poll::Pending;
                }
            };
            this.ping.as_mut().reset(Instant::now() + WS_PING_INTERVAL);
            match next {
                Some(Ok(Message::Text(text))) => this.incoming = frame_line(text.as_bytes()),
                // The codec checks UTF-8 as it does for TCP.
                Some(Ok(Message::Binary(data))) => this.incoming = frame_line(&data),
                // Answered by tungstenite (a pong is queued; a close is answered in kind).
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Close(_))) | None => this.ended = true,
                Some(Err(WsError::Capacity(_))) => {
                    this.close = CloseCode::Size;
                    this.ended = true;
                    this.overflowed = true;
                    return Poll::Ready(Err(io::Error::other(FrameTooBig)));
                }
                Some(Err(e)) => {
                    this.ended = true;
                    return Poll::Ready(Err(to_io(e)));
                }
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for WsLines<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        // Ready means tungstenite's write buffer is below its bound
        // (`WebSocketConfig::write_buffer_size`); everything in `buf` is taken at once.
        ready!(Pin::new(&mut this.ws).poll_ready(cx)).map_err(to_io)?;
        let mut rest = buf;
        while let Some(end) = memchr::memchr(b'\n', rest) {
            let mut line = if this.partial.is_empty() {
                rest[..end].to_vec()
            } else {
                this.partial.extend_from_slice(&rest[..end]);
                std::mem::take(&mut this.partial)
            };
            // IRC lines end in CRLF; a frame carries none (IRCv3 WebSocket).
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let message = if this.binary {
                Message::binary(line)
            } else {
                let text = String::from_utf8(line)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
                Message::text(text)
            };
            Pin::new(&mut this.ws).start_send(message).map_err(to_io)?;
            rest = &rest[end + 1..];
        }
        this.partial.extend_from_slice(rest);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.ws).poll_flush(cx).map_err(to_io)
    }

    /// Sends the close frame (1000, or 1009 after an oversized frame) and flushes it.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.closing {
            ready!(Pin::new(&mut this.ws).poll_ready(cx)).map_err(to_io)?;
            let reason = match this.close {
                CloseCode::Size => "message too big",
                _ => "goodbye",
            };
            let frame = CloseFrame {
                code: this.close,
                reason: reason.into(),
            };
            this.closing = true;
            // Already closed by the peer: nothing to send.
            let _ = Pin::new(&mut this.ws).start_send(Message::Close(Some(frame)));
        }
        match ready!(Pin::new(&mut this.ws).poll_flush(cx)) {
            Ok(()) | Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => Poll::Ready(Ok(())),
            Err(e) => Poll::Ready(Err(to_io(e))),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures_util::{SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
    use tokio_tungstenite::tungstenite::protocol::Role;

    use super::*;

    /// The server's side as lines (frames of at most `max` bytes), and a client.
    async fn pair(max: usize) -> (WsLines<DuplexStream>, WebSocketStream<DuplexStream>) {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let server = WebSocketStream::from_raw_socket(a, Role::Server, Some(config(max))).await;
        let client = WebSocketStream::from_raw_socket(b, Role::Client, None).await;
        (WsLines::new(server, Some("first".into())), client)
    }

    /// Reads until `want` bytes have come, or the stream ends.
    async fn read(lines: &mut WsLines<DuplexStream>, want: usize) -> String {
        let mut got = Vec::new();
        let mut buf = [0u8; 7];
        while got.len() < want {
            let n = lines.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        String::from_utf8(got).unwrap()
    }

    async fn text(client: &mut WebSocketStream<DuplexStream>) -> String {
        match client.next().await.unwrap().unwrap() {
            Message::Text(t) => t.to_string(),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn frames_are_lines_and_lines_are_frames() {
        let (mut lines, mut client) = pair(64).await;
        client.send(Message::text("{\"a\":\r\n1}")).await.unwrap();
        client
            .send(Message::binary(b"bytes".to_vec()))
            .await
            .unwrap();
        assert_eq!(read(&mut lines, 22).await, "first\n{\"a\":  1}\nbytes\n");

        // Lines cut anywhere by the writer come out as whole frames.
        lines.write_all(b"one\ntw").await.unwrap();
        lines.write_all(b"o\nthr").await.unwrap();
        lines.flush().await.unwrap();
        assert_eq!(text(&mut client).await, "one");
        assert_eq!(text(&mut client).await, "two");
        lines.write_all(b"ee\n").await.unwrap();
        lines.flush().await.unwrap();
        assert_eq!(text(&mut client).await, "three");

        lines.shutdown().await.unwrap();
        match client.next().await.unwrap().unwrap() {
            Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Normal),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn an_oversized_frame_ends_the_stream_and_is_closed_with_1009() {
        let (mut lines, mut client) = pair(16).await;
        client.send(Message::text("x".repeat(16))).await.unwrap();
        client.send(Message::text("y".repeat(17))).await.unwrap();
        let whole = format!("first\n{}\n", "x".repeat(16));
        assert_eq!(read(&mut lines, whole.len()).await, whole);
        let mut buf = [0u8; 8];
        let error = lines.read(&mut buf).await.unwrap_err();
        assert!(error.get_ref().unwrap().is::<FrameTooBig>(), "{error}");
        assert_eq!(lines.read(&mut buf).await.unwrap(), 0, "ended");
        lines.shutdown().await.unwrap();
        match client.next().await.unwrap().unwrap() {
            Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Size),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_client_is_pinged() {
        let (mut lines, mut client) = pair(64).await;
        assert_eq!(read(&mut lines, 6).await, "first\n");
        let mut buf = [0u8; 8];
        let wait = WS_PING_INTERVAL + Duration::from_secs(1);
        assert!(
            tokio::time::timeout(wait, lines.read(&mut buf))
                .await
                .is_err()
        );
        match client.next().await.unwrap().unwrap() {
            Message::Ping(_) => {}
            other => panic!("{other:?}"),
        }
    }
}
