//! The connection under a benchmark client: plain TCP, TLS, or a WebSocket (over plain
//! TCP), each split into a reading half and a writing half.
//!
//! Plain TCP keeps its socket bare, so receivers read with the kernel's arrival stamps
//! (`arrival`). Through TLS and WebSocket the bytes are decoded in the generator first; the
//! stamp of the encrypted or framed segment would not say when its lines were readable,
//! so those runs report read latency only.

use std::io;
use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncWriteExt, BufReader, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::adapter::Protocol;

type Ws = WebSocketStream<TcpStream>;

/// Bytes a WebSocket receiver reads at a time at most, as small as the `BufReader` a TLS
/// or IRC client reads through. tungstenite zero-fills its whole read buffer before every
/// read (snapview/tungstenite-rs#547), so at its default of 128 KiB the generator spent a
/// quarter of its time in `memset`: it measured itself rather than the server.
const WS_READ_BYTES: usize = 8 * 1024;

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
            let url = format!("ws://{addr}{path}");
            let config = WebSocketConfig::default().read_buffer_size(WS_READ_BYTES);
            let (ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config))
                .await
                .with_context(|| format!("WebSocket handshake with {addr}{path}"))?;
            let (w, r) = ws.split();
            return Ok((Reader::Ws(r), Writer::Ws(w)));
        }
        let (r, w) = stream.into_split();
        Ok((Reader::Tcp(BufReader::new(r)), Writer::Tcp(w)))
    }
}

/// The receiving half.
pub enum Reader {
    Tcp(BufReader<OwnedReadHalf>),
    Tls(BufReader<ReadHalf<TlsStream<TcpStream>>>),
    Ws(SplitStream<Ws>),
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
            Reader::Ws(r) => loop {
                match r.next().await.transpose()? {
                    None => break 0,
                    Some(Message::Text(text)) => {
                        line.push_str(&text);
                        break line.len() + 1;
                    }
                    Some(Message::Close(_)) => break 0,
                    Some(_) => continue,
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
    Ws(SplitSink<Ws, Message>),
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
            Writer::Ws(w) => {
                for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                    let text = std::str::from_utf8(line).map_err(io::Error::other)?;
                    w.feed(Message::text(text))
                        .await
                        .map_err(io::Error::other)?;
                }
                w.flush().await.map_err(io::Error::other)
            }
        }
    }

    /// Sends what the connection owes the server unasked (a WebSocket's pong).
    pub async fn flush(&mut self) -> io::Result<()> {
        match self {
            Writer::Tcp(_) | Writer::Tls(_) => Ok(()),
            Writer::Ws(w) => w.flush().await.map_err(io::Error::other),
        }
    }
}
