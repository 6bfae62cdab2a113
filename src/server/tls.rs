//! The server side of a TLS handshake, run in the connection's own task (never the accept
//! loop) and bounded by [`TLS_HANDSHAKE_TIMEOUT`], so a slow or plaintext client holds
//! nobody else up.

use std::io;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::server::Acceptor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use super::listen::Peer;
use super::stream::ByteStream;
use crate::limits::TLS_HANDSHAKE_TIMEOUT;

/// The first byte of every TLS connection: a handshake record.
const HANDSHAKE_RECORD: u8 = 0x16;

/// How a TLS listener serves: what it presents, and what it answers a client that spoke
/// plaintext to it.
#[derive(Clone)]
pub struct Tls {
    pub config: Arc<ServerConfig>,
    /// Written in the clear to a client whose first byte is not TLS, so someone who typed
    /// `nc` or `http://` learns why nothing works.
    pub not_tls: &'static [u8],
}

/// The answer of a `tls://` listener to plaintext.
pub const NOT_TLS_LINE: &[u8] =
    b"error: this port speaks TLS: use charla connect tls://HOST:PORT, an IRC client with TLS on, or openssl s_client\r\n";

/// The answer of an `ircs://` listener to plaintext: an IRC `ERROR`, which IRC clients show
/// as why the link closed (WeeChat reads the text listener's line as an unknown command).
pub const NOT_TLS_IRC: &[u8] =
    b"ERROR :Closing link: this port speaks TLS (ircs://): turn TLS on in your IRC client\r\n";

/// The answer of an `https://` listener to plain HTTP.
pub const NOT_TLS_HTTP: &[u8] = b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\n\
content-length: 36\r\nconnection: close\r\n\r\nthis port speaks https://, not http\n";

enum HandshakeFailure {
    Closed,
    Plaintext,
    Tls(io::Error),
}

impl From<io::Error> for HandshakeFailure {
    fn from(e: io::Error) -> HandshakeFailure {
        HandshakeFailure::Tls(e)
    }
}

/// The TLS stream once the handshake is done; `None`, with a log line saying why, when the
/// client closed, spoke plaintext, failed the handshake or took too long, or the server
/// began shutting down meanwhile (a handshake under way would otherwise hold the shutdown
/// up).
pub async fn handshake<S: ByteStream>(
    io: S,
    tls: &Tls,
    peer: &Peer,
    shutdown: &CancellationToken,
) -> Option<TlsStream<S>> {
    let shaken = tokio::select! {
        shaken = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, shake(io, tls)) => shaken,
        _ = shutdown.cancelled() => return None,
    };
    match shaken {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(HandshakeFailure::Closed)) => {
            debug!(%peer, "closed before the TLS handshake");
            None
        }
        Ok(Err(HandshakeFailure::Plaintext)) => {
            info!(%peer, "plaintext client on a TLS port: told to use TLS and closed");
            None
        }
        Ok(Err(HandshakeFailure::Tls(error))) => {
            info!(%peer, %error, "TLS handshake failed");
            None
        }
        Err(_) => {
            info!(%peer, seconds = TLS_HANDSHAKE_TIMEOUT.as_secs(), "TLS handshake timed out");
            None
        }
    }
}

async fn shake<S: ByteStream>(mut io: S, tls: &Tls) -> Result<TlsStream<S>, HandshakeFailure> {
    // One byte tells TLS from plaintext; rustls would answer plaintext with a binary alert
    // a person at `nc` cannot read.
    let mut first = [0u8; 1];
    if io.read(&mut first).await? == 0 {
        return Err(HandshakeFailure::Closed);
    }
    if first[0] != HANDSHAKE_RECORD {
        let _ = io.write_all(tls.not_tls).await;
        let _ = io.shutdown().await;
        return Err(HandshakeFailure::Plaintext);
    }
    let mut acceptor = Acceptor::default();
    acceptor.read_tls(&mut &first[..])?;
    let start = LazyConfigAcceptor::new(acceptor, io).await?;
    Ok(start.into_stream(tls.config.clone()).await?)
}
