//! Where the server listens: parsing `--listen` addresses, binding them, accepting.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use socket2::{Domain, SockAddr, Socket, TcpKeepalive, Type};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

use std::sync::Arc;

use super::certs::Certificates;
use super::http::HttpOptions;
use super::stream::ByteStream;
use super::tls::{NOT_TLS_HTTP, NOT_TLS_IRC, NOT_TLS_LINE, Tls};
use crate::limits::{KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_PROBES, LISTEN_BACKLOG};

/// The default port: in the registered range (1024–49151), unassigned in /etc/services.
pub const DEFAULT_PORT: u16 = 6030;

/// Where `charla serve` listens when not told: loopback only, so a first run exposes
/// nothing to the network.
pub const DEFAULT_LISTEN: &str = "tcp://127.0.0.1:6030";

/// An address to listen on, as given to `--listen`: `tcp://HOST:PORT`, `tcp://[::1]:PORT`,
/// a bare `HOST:PORT`, or `unix:///path/to.sock` (text and JSON lines), `irc://HOST:PORT`
/// (the IRC client protocol), or `http://HOST:PORT` (the page, WebSocket and HTTP publish:
/// `server/http/`); `tls://`, `ircs://` and `https://` are the same over TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    Tcp(SocketAddr),
    Unix(PathBuf),
    Irc(SocketAddr),
    Http(SocketAddr),
    Tls(SocketAddr),
    Ircs(SocketAddr),
    Https(SocketAddr),
}

impl ListenAddr {
    /// Parses one address; a host name may stand for several (`localhost` is 127.0.0.1 and
    /// ::1).
    pub fn parse_all(input: &str) -> Result<Vec<ListenAddr>, String> {
        if let Some(path) = input.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(format!(
                    "{input:?}: a Unix socket needs a path, as in unix:///tmp/charla.sock"
                ));
            }
            return Ok(vec![ListenAddr::Unix(PathBuf::from(path))]);
        }
        let (hostport, wrap): (&str, fn(SocketAddr) -> ListenAddr) = match input.split_once("://") {
            None => (input, ListenAddr::Tcp),
            Some(("tcp", rest)) => (rest, ListenAddr::Tcp),
            Some(("irc", rest)) => (rest, ListenAddr::Irc),
            Some(("http", rest)) => (rest.strip_suffix('/').unwrap_or(rest), ListenAddr::Http),
            Some(("tls", rest)) => (rest, ListenAddr::Tls),
            Some(("ircs", rest)) => (rest, ListenAddr::Ircs),
            Some(("https", rest)) => (rest.strip_suffix('/').unwrap_or(rest), ListenAddr::Https),
            Some((scheme, _)) => {
                return Err(format!(
                    "{input:?}: unknown scheme {scheme:?}; use tcp://, unix://, irc://, http://, \
                     tls://, ircs:// or https://"
                ));
            }
        };
        let addrs: Vec<SocketAddr> = hostport
            .to_socket_addrs()
            .map_err(|e| {
                format!("{input:?}: expected HOST:PORT, [IPv6]:PORT or unix:///path ({e})")
            })?
            .collect();
        let mut out: Vec<ListenAddr> = Vec::new();
        for addr in addrs {
            if !out.contains(&wrap(addr)) {
                out.push(wrap(addr));
            }
        }
        Ok(out)
    }
}

impl FromStr for ListenAddr {
    type Err = String;

    /// One address exactly; a name that resolves to several is an error here.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut all = ListenAddr::parse_all(s)?;
        match all.len() {
            1 => Ok(all.remove(0)),
            0 => Err(format!("{s:?} resolves to no address")),
            _ => Err(format!("{s:?} resolves to several addresses")),
        }
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(addr) => write!(f, "tcp://{addr}"),
            ListenAddr::Unix(path) => write!(f, "unix://{}", path.display()),
            ListenAddr::Irc(addr) => write!(f, "irc://{addr}"),
            ListenAddr::Http(addr) => write!(f, "http://{addr}"),
            ListenAddr::Tls(addr) => write!(f, "tls://{addr}"),
            ListenAddr::Ircs(addr) => write!(f, "ircs://{addr}"),
            ListenAddr::Https(addr) => write!(f, "https://{addr}"),
        }
    }
}

/// Who is on the other end of a connection.
#[derive(Debug, Clone)]
pub enum Peer {
    Tcp(SocketAddr),
    Unix,
}

impl Peer {
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Peer::Tcp(addr) => Some(addr.ip()),
            Peer::Unix => None,
        }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Tcp(addr) => write!(f, "{addr}"),
            Peer::Unix => f.write_str("unix"),
        }
    }
}

/// Why an address could not be listened on.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// Someone else holds it; the message names them when the system shows who.
    #[error("{0}")]
    InUse(String),
    #[error("cannot listen on {addr}: {source}")]
    Io { addr: ListenAddr, source: io::Error },
    #[error(
        "cannot listen on {addr}: {path} exists and is not a socket; remove it or pick another path"
    )]
    NotASocket { addr: ListenAddr, path: PathBuf },
    #[error("cannot listen on {0}: TLS needs a certificate: give --tls-cert and --tls-key")]
    NoCertificate(ListenAddr),
}

/// A bound listener, ready to accept. TLS, when present, is handed to each connection's
/// task, which runs the handshake itself.
pub enum Bound {
    Tcp(TcpListener, Option<Tls>),
    Unix(UnixListener, SocketFile),
    /// TCP serving the IRC client protocol.
    Irc(TcpListener, Option<Tls>),
    /// Bound with [`HttpOptions::default`]; [`Bound::set_http_options`] changes them.
    Http(TcpListener, HttpOptions, Option<Tls>),
}

impl Bound {
    /// The address as bound, with the real port when 0 was asked for.
    pub fn local_addr(&self) -> ListenAddr {
        let (listener, plain, secure, tls): (_, fn(_) -> _, fn(_) -> _, _) = match self {
            Bound::Unix(_, file) => return ListenAddr::Unix(file.0.clone()),
            Bound::Tcp(l, tls) => (l, ListenAddr::Tcp, ListenAddr::Tls, tls),
            Bound::Irc(l, tls) => (l, ListenAddr::Irc, ListenAddr::Ircs, tls),
            Bound::Http(l, _, tls) => (l, ListenAddr::Http, ListenAddr::Https, tls),
        };
        let addr = listener
            .local_addr()
            .expect("a bound socket has an address");
        if tls.is_some() {
            secure(addr)
        } else {
            plain(addr)
        }
    }

    /// Serves an `http://` listener with `options` (token, origins, publish allowance);
    /// other listeners are left as they are.
    pub fn set_http_options(&mut self, options: &HttpOptions) {
        if let Bound::Http(_, current, _) = self {
            *current = options.clone();
        }
    }
}

/// A Unix socket's file, removed when the listener goes away so the next start finds no
/// stale file.
pub struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Binds every address; must run inside a Tokio runtime. A TLS address is an error here:
/// [`bind_with_certs`] binds those.
pub fn bind(addrs: &[ListenAddr]) -> Result<Vec<Bound>, BindError> {
    bind_with_certs(addrs, None)
}

/// Binds every address, TLS ones presenting `certs`.
pub fn bind_with_certs(
    addrs: &[ListenAddr],
    certs: Option<&Arc<Certificates>>,
) -> Result<Vec<Bound>, BindError> {
    addrs.iter().map(|addr| bind_one(addr, certs)).collect()
}

fn bind_one(addr: &ListenAddr, certs: Option<&Arc<Certificates>>) -> Result<Bound, BindError> {
    let io_error = |source| BindError::Io {
        addr: addr.clone(),
        source,
    };
    let tls = |alpn: &[&[u8]], not_tls| match certs {
        Some(certs) => Ok(Tls {
            config: certs.server_config(alpn),
            not_tls,
        }),
        None => Err(BindError::NoCertificate(addr.clone())),
    };
    match addr {
        ListenAddr::Tcp(sa)
        | ListenAddr::Irc(sa)
        | ListenAddr::Http(sa)
        | ListenAddr::Tls(sa)
        | ListenAddr::Ircs(sa)
        | ListenAddr::Https(sa) => {
            let socket =
                Socket::new(Domain::for_address(*sa), Type::STREAM, None).map_err(io_error)?;
            socket.set_reuse_address(true).map_err(io_error)?;
            if sa.is_ipv6() {
                // [::]:PORT would otherwise also take the IPv4 port.
                socket.set_only_v6(true).map_err(io_error)?;
            }
            socket.set_nonblocking(true).map_err(io_error)?;
            match socket.bind(&(*sa).into()) {
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                    return Err(BindError::InUse(crate::port::in_use_message(*sa)));
                }
                other => other.map_err(io_error)?,
            }
            socket.listen(LISTEN_BACKLOG).map_err(io_error)?;
            let listener = TcpListener::from_std(socket.into()).map_err(io_error)?;
            Ok(match addr {
                ListenAddr::Irc(_) => Bound::Irc(listener, None),
                ListenAddr::Http(_) => Bound::Http(listener, HttpOptions::default(), None),
                ListenAddr::Tls(_) => Bound::Tcp(listener, Some(tls(&[], NOT_TLS_LINE)?)),
                ListenAddr::Ircs(_) => Bound::Irc(listener, Some(tls(&[], NOT_TLS_IRC)?)),
                ListenAddr::Https(_) => Bound::Http(
                    listener,
                    HttpOptions::default(),
                    Some(tls(&[b"http/1.1"], NOT_TLS_HTTP)?),
                ),
                _ => Bound::Tcp(listener, None),
            })
        }
        ListenAddr::Unix(path) => {
            clear_stale_socket(addr, path)?;
            let socket = Socket::new(Domain::UNIX, Type::STREAM, None).map_err(io_error)?;
            socket.set_nonblocking(true).map_err(io_error)?;
            socket
                .bind(&SockAddr::unix(path).map_err(io_error)?)
                .map_err(io_error)?;
            let file = SocketFile(path.clone());
            socket.listen(LISTEN_BACKLOG).map_err(io_error)?;
            let listener = UnixListener::from_std(socket.into()).map_err(io_error)?;
            Ok(Bound::Unix(listener, file))
        }
    }
}

/// A socket file left by a server that died is removed; one a live server answers on is
/// left alone and reported.
fn clear_stale_socket(addr: &ListenAddr, path: &Path) -> Result<(), BindError> {
    use std::os::unix::fs::FileTypeExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        return Err(BindError::NotASocket {
            addr: addr.clone(),
            path: path.to_path_buf(),
        });
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(BindError::InUse(format!(
            "{addr} is already in use: a server is answering on it. Stop that server, or pick another path with --listen."
        ))),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::info!(path = %path.display(), "removing stale socket file left by a server that is gone");
            std::fs::remove_file(path).map_err(|source| BindError::Io {
                addr: addr.clone(),
                source,
            })
        }
        Err(source) => Err(BindError::Io {
            addr: addr.clone(),
            source,
        }),
    }
}

/// Something that accepts connections of one kind.
pub trait Listener: Send + 'static {
    type Io: ByteStream;
    fn accept(&mut self) -> impl Future<Output = io::Result<(Self::Io, Peer)>> + Send;
}

impl Listener for TcpListener {
    type Io = TcpStream;

    async fn accept(&mut self) -> io::Result<(TcpStream, Peer)> {
        let (stream, addr) = TcpListener::accept(self).await?;
        // We batch our own writes; Nagle would only add delay (the 40 ms the peers show).
        stream.set_nodelay(true)?;
        let keepalive = TcpKeepalive::new()
            .with_time(KEEPALIVE_IDLE)
            .with_interval(KEEPALIVE_INTERVAL)
            .with_retries(KEEPALIVE_PROBES);
        socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive)?;
        Ok((stream, Peer::Tcp(addr)))
    }
}

impl Listener for UnixListener {
    type Io = UnixStream;

    async fn accept(&mut self) -> io::Result<(UnixStream, Peer)> {
        let (stream, _) = UnixListener::accept(self).await?;
        Ok((stream, Peer::Unix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_in_every_documented_form() {
        let v4: SocketAddr = "127.0.0.1:6030".parse().unwrap();
        let v6: SocketAddr = "[::1]:0".parse().unwrap();
        assert_eq!("tcp://127.0.0.1:6030".parse(), Ok(ListenAddr::Tcp(v4)));
        assert_eq!("127.0.0.1:6030".parse(), Ok(ListenAddr::Tcp(v4)));
        assert_eq!("tcp://[::1]:0".parse(), Ok(ListenAddr::Tcp(v6)));
        assert_eq!(
            "unix:///tmp/c.sock".parse(),
            Ok(ListenAddr::Unix(PathBuf::from("/tmp/c.sock")))
        );
        assert_eq!("irc://127.0.0.1:6030".parse(), Ok(ListenAddr::Irc(v4)));
        assert_eq!(ListenAddr::Irc(v4).to_string(), "irc://127.0.0.1:6030");
        assert!("udp://1.2.3.4:5".parse::<ListenAddr>().is_err());
        assert!("nonsense".parse::<ListenAddr>().is_err());
        assert!("unix://".parse::<ListenAddr>().is_err());
        assert_eq!(ListenAddr::Tcp(v6).to_string(), "tcp://[::1]:0");
        assert_eq!("http://127.0.0.1:6030/".parse(), Ok(ListenAddr::Http(v4)));
        assert_eq!(ListenAddr::Http(v4).to_string(), "http://127.0.0.1:6030");
        assert_eq!("tls://127.0.0.1:6030".parse(), Ok(ListenAddr::Tls(v4)));
        assert_eq!("ircs://127.0.0.1:6030".parse(), Ok(ListenAddr::Ircs(v4)));
        assert_eq!("https://127.0.0.1:6030/".parse(), Ok(ListenAddr::Https(v4)));
        for addr in [
            ListenAddr::Tls(v4),
            ListenAddr::Ircs(v4),
            ListenAddr::Https(v4),
        ] {
            assert_eq!(addr.to_string().parse(), Ok(addr));
        }
        assert!("wss://127.0.0.1:1".parse::<ListenAddr>().is_err());
        let default: SocketAddr = ([127, 0, 0, 1], DEFAULT_PORT).into();
        assert_eq!(DEFAULT_LISTEN.parse(), Ok(ListenAddr::Tcp(default)));
    }
}
