//! Where the server is, as given on the command line, and opening a connection to it.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpStream, UnixStream};

use super::error::ClientError;
use crate::limits::{KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_PROBES};

/// How long one attempt to connect may take before it counts as failed.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A server address: `HOST:PORT`, `[v6]:PORT`, `tcp://…`, `tls://…` or `unix:///path`. A
/// host name is resolved at each connection, so a reconnect follows a name that moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Tcp {
        host: String,
        port: u16,
    },
    /// TLS, the server's certificate verified against `ca` (a PEM file) or, without one,
    /// the system's roots.
    Tls {
        host: String,
        port: u16,
        ca: Option<PathBuf>,
    },
    Unix(PathBuf),
}

/// The two halves of an open connection.
pub type Halves = (
    Box<dyn AsyncRead + Unpin + Send>,
    Box<dyn AsyncWrite + Unpin + Send>,
);

impl FromStr for Endpoint {
    type Err = String;

    fn from_str(input: &str) -> Result<Endpoint, String> {
        if let Some(path) = input.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(format!(
                    "{input:?}: a Unix socket needs a path, as in unix:///tmp/charla.sock"
                ));
            }
            return Ok(Endpoint::Unix(PathBuf::from(path)));
        }
        let (tls, hostport) = match input.split_once("://") {
            None => (false, input),
            Some(("tcp", rest)) => (false, rest),
            Some(("tls", rest)) => (true, rest),
            Some((scheme, _)) => {
                return Err(format!(
                    "{input:?}: unknown scheme {scheme:?}; use tcp://, tls:// or unix://"
                ));
            }
        };
        let usage = || format!("{input:?}: expected HOST:PORT, [IPv6]:PORT or unix:///path");
        let (host, port) = match hostport.strip_prefix('[') {
            Some(rest) => {
                let (host, port) = rest.split_once("]:").ok_or_else(usage)?;
                (host, port)
            }
            None => hostport.rsplit_once(':').ok_or_else(usage)?,
        };
        if host.is_empty() || (host.contains(':') && !hostport.starts_with('[')) {
            return Err(usage());
        }
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| format!("{input:?}: {port:?} is not a port (1–65535)"))?;
        let host = host.to_string();
        Ok(match tls {
            true => Endpoint::Tls {
                host,
                port,
                ca: None,
            },
            false => Endpoint::Tcp { host, port },
        })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Endpoint::Tcp { host, port } => write!(f, "{host}:{port}"),
            Endpoint::Tls { host, port, .. } if host.contains(':') => {
                write!(f, "tls://[{host}]:{port}")
            }
            Endpoint::Tls { host, port, .. } => write!(f, "tls://{host}:{port}"),
            Endpoint::Unix(path) => write!(f, "unix://{}", path.display()),
        }
    }
}

impl Endpoint {
    /// This endpoint, a TLS one verifying the server against the PEM certificates in `ca`
    /// instead of the system's roots (`--ca`); other kinds are left as they are.
    pub fn with_ca(mut self, ca: Option<PathBuf>) -> Endpoint {
        if let Endpoint::Tls { ca: current, .. } = &mut self {
            *current = ca;
        }
        self
    }

    /// Opens a connection, within [`CONNECT_TIMEOUT`].
    pub async fn connect(&self) -> Result<Halves, ClientError> {
        // Before connecting: a bad --ca is a mistake to report as such, not as a network
        // failure.
        let connector = match self {
            Endpoint::Tls { ca, .. } => Some(super::tls::connector(ca.as_deref())?),
            _ => None,
        };
        let attempt = async {
            match self {
                Endpoint::Tcp { host, port } => {
                    let (r, w) = tcp(host, *port).await?.into_split();
                    let halves: Halves = (Box::new(r), Box::new(w));
                    Ok::<Halves, io::Error>(halves)
                }
                Endpoint::Tls { host, port, .. } => {
                    let stream = tcp(host, *port).await?;
                    let connector = connector.expect("made above for a TLS endpoint");
                    let stream = connector.connect(super::tls::name(host)?, stream).await?;
                    let (r, w) = tokio::io::split(stream);
                    let halves: Halves = (Box::new(r), Box::new(w));
                    Ok(halves)
                }
                Endpoint::Unix(path) => {
                    let (r, w) = UnixStream::connect(path).await?.into_split();
                    let halves: Halves = (Box::new(r), Box::new(w));
                    Ok(halves)
                }
            }
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
            Err(_) => Err(ClientError::Timeout {
                endpoint: self.clone(),
                seconds: CONNECT_TIMEOUT.as_secs(),
            }),
            Ok(Ok(halves)) => Ok(halves),
            Ok(Err(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound
                ) =>
            {
                Err(ClientError::Refused(self.clone()))
            }
            Ok(Err(source)) => Err(super::tls::untrusted(self, &source).unwrap_or(
                ClientError::Connect {
                    endpoint: self.clone(),
                    source,
                },
            )),
        }
    }
}

async fn tcp(host: &str, port: u16) -> io::Result<TcpStream> {
    let stream = TcpStream::connect((host, port)).await?;
    stream.set_nodelay(true)?;
    // A server that vanished without closing is noticed like the server notices a
    // vanished client.
    let keepalive = TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_PROBES);
    SockRef::from(&stream).set_tcp_keepalive(&keepalive)?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: u16) -> Endpoint {
        Endpoint::Tcp {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn every_documented_form_parses() {
        assert_eq!("127.0.0.1:6030".parse(), Ok(tcp("127.0.0.1", 6030)));
        assert_eq!("tcp://localhost:7000".parse(), Ok(tcp("localhost", 7000)));
        assert_eq!("[::1]:6030".parse(), Ok(tcp("::1", 6030)));
        assert_eq!("tcp://[::1]:6030".parse(), Ok(tcp("::1", 6030)));
        assert_eq!(
            "unix:///tmp/c.sock".parse(),
            Ok(Endpoint::Unix("/tmp/c.sock".into()))
        );
        let tls = Endpoint::Tls {
            host: "chat.example.org".into(),
            port: 6697,
            ca: None,
        };
        assert_eq!("tls://chat.example.org:6697".parse(), Ok(tls.clone()));
        let ca = tls.with_ca(Some("/etc/ca.pem".into()));
        assert!(matches!(ca, Endpoint::Tls { ca: Some(_), .. }));
    }

    #[test]
    fn it_displays_as_typed() {
        for s in [
            "127.0.0.1:6030",
            "[::1]:6030",
            "unix:///tmp/c.sock",
            "tls://localhost:6697",
            "tls://[::1]:6697",
        ] {
            assert_eq!(s.parse::<Endpoint>().unwrap().to_string(), s);
        }
    }

    #[test]
    fn bad_addresses_are_explained() {
        for bad in [
            "localhost",
            ":6030",
            "::1:6030",
            "host:0",
            "host:http",
            "unix://",
            "udp://h:1",
            "tls://h",
            "ircs://h:1",
        ] {
            let e = bad.parse::<Endpoint>().unwrap_err();
            assert!(e.contains(bad), "{bad}: {e}");
        }
    }
}
