//! One connection to the server past its handshake: requests out, each with a numbered
//! `ref`, and events in.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::endpoint::Endpoint;
use super::error::ClientError;
use super::lines::{Line, LineReader};
use super::pacer::Pacer;
use super::wire::{self, ClientRequest, Received, ServerEvent};

/// Longest line accepted from the server; a longer one is skipped. A history replay is the
/// longest event: 100 messages of up to 4 KiB each, some characters escaped, fit easily.
pub const MAX_EVENT_BYTES: usize = 8 * 1024 * 1024;

/// How long the server may take to answer a hello with its welcome.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Link {
    endpoint: Endpoint,
    events: LineReader<Box<dyn AsyncRead + Unpin + Send>>,
    writer: Box<dyn AsyncWrite + Unpin + Send>,
    pacer: Pacer,
    next_ref: u64,
}

/// What the server said while welcoming us.
#[derive(Debug)]
pub struct Welcome {
    /// The nick we ended up with.
    pub nick: String,
    /// The rooms we are in.
    pub rooms: Vec<String>,
    /// Replies to the hello's steps, in order: the nick change, each join (with the room's
    /// history), or their refusals.
    pub replies: Vec<Received>,
}

impl Link {
    /// Connects, says `hello` (a [`ClientRequest::Hello`]), and waits for the welcome. The
    /// text greeting every connection starts with is skipped.
    pub async fn open(
        endpoint: &Endpoint,
        hello: ClientRequest,
    ) -> Result<(Link, Welcome), ClientError> {
        let (reader, writer) = endpoint.connect().await?;
        let mut link = Link {
            endpoint: endpoint.clone(),
            events: LineReader::new(reader, MAX_EVENT_BYTES),
            writer,
            pacer: Pacer::new(),
            next_ref: 1,
        };
        let welcome = link.hello(hello).await?;
        Ok((link, welcome))
    }

    /// Says `hello` (again, on an open link: the server answers each with a welcome) and
    /// waits for the welcome, at most [`HANDSHAKE_TIMEOUT`].
    pub async fn hello(&mut self, hello: ClientRequest) -> Result<Welcome, ClientError> {
        let timeout = ClientError::Timeout {
            endpoint: self.endpoint.clone(),
            seconds: HANDSHAKE_TIMEOUT.as_secs(),
        };
        tokio::time::timeout(HANDSHAKE_TIMEOUT, async {
            self.send(&hello).await?;
            self.welcome().await
        })
        .await
        .map_err(|_| timeout)?
    }

    async fn welcome(&mut self) -> Result<Welcome, ClientError> {
        let mut replies = Vec::new();
        // The last text line, which explains a refusal such as `ERROR server_full: …`.
        let mut last_text = None;
        loop {
            let line = match self.events.next().await? {
                None => {
                    return Err(ClientError::NotWelcomed {
                        endpoint: self.endpoint.clone(),
                        last_line: last_text,
                    });
                }
                Some(Line::TooLong) => continue,
                Some(Line::Bytes(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
            };
            match wire::decode(&line) {
                Some(Received {
                    event: ServerEvent::Welcome { nick, rooms },
                    ..
                }) => {
                    return Ok(Welcome {
                        nick,
                        rooms,
                        replies,
                    });
                }
                Some(received) => replies.push(received),
                None => {
                    if let Some(kind) = other_listener(&line) {
                        return Err(ClientError::WrongListener {
                            endpoint: self.endpoint.clone(),
                            kind,
                        });
                    }
                    last_text = Some(crate::hub::sanitize(&line));
                }
            }
        }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Sends `request` once the pacer allows; returns the `ref` its replies will carry.
    pub async fn send(&mut self, request: &ClientRequest) -> io::Result<u64> {
        for _ in 0..request.lines() {
            self.pacer.ready().await;
        }
        let reference = self.next_ref;
        self.next_ref += 1;
        self.writer
            .write_all(wire::encode(request, reference).as_bytes())
            .await?;
        self.writer.flush().await?;
        Ok(reference)
    }

    /// The next event; `None` when the server closed the connection. Lines that are not
    /// events this client knows are skipped. Cancel-safe.
    pub async fn next(&mut self) -> io::Result<Option<Received>> {
        loop {
            match self.events.next().await? {
                None => return Ok(None),
                Some(Line::TooLong) => {
                    tracing::debug!("skipped an event longer than {MAX_EVENT_BYTES} bytes");
                }
                Some(Line::Bytes(bytes)) => {
                    if let Some(received) = wire::decode(&String::from_utf8_lossy(&bytes)) {
                        return Ok(Some(received));
                    }
                }
            }
        }
    }
}

/// Which of charla's other listeners a first answer comes from: an HTTP status line
/// (`HTTP/1.1 400 Bad Request`) or an IRC numeric (`:charla 451 * :You have not
/// registered`). No line of the text protocol starts like either.
fn other_listener(line: &str) -> Option<&'static str> {
    if line.starts_with("HTTP/") {
        return Some("HTTP");
    }
    let mut words = line.strip_prefix(':')?.split(' ');
    let numeric = words.nth(1)?;
    (numeric.len() == 3 && numeric.bytes().all(|b| b.is_ascii_digit())).then_some("IRC")
}
