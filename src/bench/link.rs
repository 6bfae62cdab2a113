//! The connection under a benchmark client: plain TCP, TLS, or a WebSocket (over plain
//! TCP), each split into a reading half and a writing half.
//!
//! Plain TCP and the WebSocket keep their socket bare, so receivers read with the kernel's
//! arrival stamps (`arrival`). Through TLS the bytes are decrypted in the generator first;
//! the stamp of the encrypted segment would not say when its lines were readable, so those
//! runs report read latency only.

use std::io;
use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::adapter::Protocol;
use super::ws_frames::{self, Unframed, Unframer};

/// How clients reach the server under test.
#[derive(Clone)]
pub struct Dialer {
    pub protocol: Protocol,
    pub addr: SocketAddr,
    /// For `charla-tls`: trusts the server's certificate.
    tls: Option<TlsConnector>,
}

impl Dialer {
    /// `ca`: the PEM certificate a TLS server is verified against (the system's roots
    /// without it).
    pub fn new(protocol: Protocol, addr: SocketAddr, ca: Option<&Path>) -> anyhow::Result<Dialer> {
        let tls = (protocol == Protocol::CharlaTls)
            .then(|| crate::client::tls::connector(ca))
            .transpose()?;
        Ok(Dialer {
            protocol,
            addr,
            tls,
        })
    }

    /// Opens the connection its protocol runs over (the WebSocket handshake included, at
    /// `path`); registration is the protocol's.
    pub async fn open(&self, path: &str) -> anyhow::Result<(Reader, Writer)> {
        let addr = self.addr;
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        if let Some(tls) = &self.tls {
            let name = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
            let stream = tls.connect(name, stream).await?;
            let (r, w) = tokio::io::split(stream);
            return Ok((Reader::Tls(BufReader::new(r)), Writer::Tls(w)));
        }
        if self.protocol.framed() {
            let (r, w) = ws_frames::open(stream, addr, path).await?;
            let mask = ws_frames::mask_key();
            return Ok((Reader::Ws(r, Unframer::default()), Writer::Ws(w, mask)));
        }
        let (r, w) = stream.into_split();
        Ok((Reader::Tcp(BufReader::new(r)), Writer::Tcp(w)))
    }
}

/// The receiving half.
pub enum Reader {
    Tcp(BufReader<OwnedReadHalf>),
    Tls(BufReader<ReadHalf<TlsStream<TcpStream>>>),
    /// The socket, buffered for registration, and what is left of a frame cut by a read.
    Ws(BufReader<OwnedReadHalf>, Unframer),
}

impl Reader {
    /// The next line (without its end), or `None` at the end of the stream. For
    /// registration; the receivers read in bulk.
    pub async fn line(&mut self) -> anyhow::Result<Option<String>> {
        use tokio::io::AsyncBufReadExt;
        let mut line = String::new();
        let read = match self {
            Reader::Tcp(r) => r.read_line(&mut line).await?,
            Reader::Tls(r) => r.read_line(&mut line).await?,
            // One byte at a time until a frame is whole: registration only, where nothing
            // must be read past the first line.
            Reader::Ws(r, unframer) => loop {
                let byte = match r.read_u8().await {
                    Ok(byte) => byte,
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break 0,
                    Err(e) => return Err(e.into()),
                };
                let mut out = Unframed::default();
                unframer.push(&[byte], &mut out)?;
                if out.closed {
                    break 0;
                }
                if !out.lines.is_empty() {
                    line = String::from_utf8(out.lines).context("a text frame not in UTF-8")?;
                    break line.len();
                }
            },
        };
        let end = line.trim_end_matches(['\r', '\n']).len();
        line.truncate(end);
        Ok((read > 0).then_some(line))
    }
}

/// The sending half.
pub enum Writer {
    Tcp(OwnedWriteHalf),
    Tls(WriteHalf<TlsStream<TcpStream>>),
    /// The socket and this client's masking key.
    Ws(OwnedWriteHalf, [u8; 4]),
}

impl Writer {
    /// Writes `bytes`: as they are on a stream, one text frame per line on a WebSocket.
    pub async fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Writer::Tcp(w) => w.write_all(bytes).await,
            Writer::Tls(w) => {
                w.write_all(bytes).await?;
                w.flush().await
            }
            Writer::Ws(w, mask) => {
                let mut frames = Vec::with_capacity(bytes.len() + 16);
                for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                    ws_frames::text_frame(line, *mask, &mut frames);
                }
                w.write_all(&frames).await
            }
        }
    }

    /// Writes what the socket takes of `bytes` now, without waiting and without the
    /// runtime: the senders' thread writes this way first, and only what is left over (or
    /// a transport that cannot) goes through the runtime. Plain TCP only; the others take
    /// nothing here.
    pub fn send_now(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Writer::Tcp(w) => match w.try_write(bytes) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
                written => written,
            },
            Writer::Tls(_) | Writer::Ws(..) => Ok(0),
        }
    }

    /// Answers a WebSocket ping; other transports have none.
    pub async fn pong(&mut self, payload: &[u8]) -> io::Result<()> {
        match self {
            Writer::Tcp(_) | Writer::Tls(_) => Ok(()),
            Writer::Ws(w, mask) => w.write_all(&ws_frames::pong_frame(payload, *mask)).await,
        }
    }
}
