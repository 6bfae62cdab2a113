//! Bounded lines from a byte stream: the server's events, or a script's stdin.
//!
//! The same [`Framer`] the server uses, so neither a misbehaving server nor a stdin without
//! newlines can make the client buffer without bound.

use std::collections::VecDeque;
use std::io;

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::protocol::framing::{Frame, Framer};

/// Bytes read at a time.
const READ_CHUNK_BYTES: usize = 8192;

/// One line, or the news that a line passed the bound and was dropped.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    Bytes(Vec<u8>),
    TooLong,
}

pub struct LineReader<R> {
    inner: R,
    framer: Framer,
    ready: VecDeque<Line>,
    ended: bool,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    pub fn new(inner: R, max_line_bytes: usize) -> LineReader<R> {
        LineReader {
            inner,
            framer: Framer::new(max_line_bytes),
            ready: VecDeque::new(),
            ended: false,
        }
    }

    /// The next line without its line ending; `None` at the end of the stream, where an
    /// unfinished last line still counts. Cancel-safe: nothing is lost if the future is
    /// dropped before it completes.
    pub async fn next(&mut self) -> io::Result<Option<Line>> {
        let mut chunk = [0u8; READ_CHUNK_BYTES];
        loop {
            if let Some(line) = self.ready.pop_front() {
                return Ok(Some(line));
            }
            if self.ended {
                return Ok(None);
            }
            let n = self.inner.read(&mut chunk).await?;
            let ready = &mut self.ready;
            let push = |frame: Frame<'_>| {
                ready.push_back(match frame {
                    Frame::Line(bytes) => Line::Bytes(bytes.to_vec()),
                    Frame::TooLong => Line::TooLong,
                });
            };
            if n == 0 {
                self.ended = true;
                self.framer.finish(push);
            } else {
                self.framer.feed(&chunk[..n], push);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_split_bounded_and_the_last_one_counts() {
        let input: &[u8] = b"one\r\ntwo\n0123456789abc\nlast";
        let mut reader = LineReader::new(input, 10);
        let mut seen = Vec::new();
        while let Some(line) = reader.next().await.unwrap() {
            seen.push(line);
        }
        assert_eq!(
            seen,
            [
                Line::Bytes(b"one".to_vec()),
                Line::Bytes(b"two".to_vec()),
                Line::TooLong,
                Line::Bytes(b"last".to_vec()),
            ]
        );
    }
}
