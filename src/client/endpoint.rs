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

/// A server address: `HOST:PORT`, `[v6]:PORT`, `tcp://…` or `unix:///path`. A host name is
/// resolved at each connection, so a reconnect follows a name that moved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Tcp { host: String, port: u16 },
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
        if let Some((scheme, _)) = input.split_once("://")
            && scheme != "tcp"
        {
            return Err(format!(
                "{input:?}: unknown scheme {scheme:?}; use tcp:// or unix://"
            ));
        }
        let hostport = input.strip_prefix("tcp://").unwrap_or(input);
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
        Ok(Endpoint::Tcp {
            host: host.to_string(),
            port,
        })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            Endpoint::Tcp { host, port } => write!(f, "{host}:{port}"),
            Endpoint::Unix(path) => write!(f, "unix://{}", path.display()),
        }
    }
}

impl Endpoint {
    /// Opens a connection, within [`CONNECT_TIMEOUT`].
    pub async fn connect(&self) -> Result<Halves, ClientError> {
        let attempt = async {
            match self {
                Endpoint::Tcp { host, port } => {
                    let stream = TcpStream::connect((host.as_str(), *port)).await?;
                    stream.set_nodelay(true)?;
                    // A server that vanished without closing is noticed like the server
                    // notices a vanished client.
                    let keepalive = TcpKeepalive::new()
                        .with_time(KEEPALIVE_IDLE)
                        .with_interval(KEEPALIVE_INTERVAL)
                        .with_retries(KEEPALIVE_PROBES);
                    SockRef::from(&stream).set_tcp_keepalive(&keepalive)?;
                    let (r, w) = stream.into_split();
                    let halves: Halves = (Box::new(r), Box::new(w));
                    Ok::<Halves, io::Error>(halves)
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
            Ok(Err(source)) => Err(ClientError::Connect {
                endpoint: self.clone(),
                source,
            }),
        }
    }
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
    }

    #[test]
    fn it_displays_as_typed() {
        for s in ["127.0.0.1:6030", "[::1]:6030", "unix:///tmp/c.sock"] {
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
        ] {
            let e = bad.parse::<Endpoint>().unwrap_err();
            assert!(e.contains(bad), "{bad}: {e}");
        }
    }
}
