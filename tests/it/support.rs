//! A real server on real sockets, and a line-oriented client to talk to it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use charla::limits::Limits;
use charla::server::{self, Certificates, HttpOptions, ListenAddr};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, UnixStream};
use tokio_util::sync::CancellationToken;

/// How long any expected line may take before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A server running in this process on ports chosen by the system.
pub struct TestServer {
    pub addrs: Vec<ListenAddr>,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// IPv4 loopback with default limits, except flood control off so tests can type fast.
    pub async fn start() -> TestServer {
        TestServer::with(Limits {
            flood_rate: 0,
            ..Limits::default()
        })
        .await
    }

    pub async fn with(limits: Limits) -> TestServer {
        TestServer::on(&["tcp://127.0.0.1:0"], limits).await
    }

    /// Listens on `specs`; `unix://` entries are put in a fresh temporary directory.
    pub async fn on(specs: &[&str], limits: Limits) -> TestServer {
        TestServer::with_http(specs, limits, HttpOptions::default()).await
    }

    /// Listens on `specs`, its `http://` listeners served with `http`.
    pub async fn with_http(specs: &[&str], limits: Limits, http: HttpOptions) -> TestServer {
        TestServer::with_certs(specs, limits, http, None).await
    }

    /// Listens on `specs`, TLS ones (`tls://`, `ircs://`, `https://`) presenting `certs`.
    pub async fn with_certs(
        specs: &[&str],
        limits: Limits,
        http: HttpOptions,
        certs: Option<&Arc<Certificates>>,
    ) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let addrs = listen_addrs(specs, dir.path());
        let mut bound = server::bind_with_certs(&addrs, certs).unwrap();
        for b in &mut bound {
            b.set_http_options(&http);
        }
        let addrs = bound.iter().map(|b| b.local_addr()).collect();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(server::run(bound, limits, shutdown.clone()));
        TestServer {
            addrs,
            shutdown,
            task,
            _dir: dir,
        }
    }

    /// The first TCP address.
    pub fn tcp(&self) -> SocketAddr {
        self.addrs
            .iter()
            .find_map(|a| match a {
                ListenAddr::Tcp(sa) => Some(*sa),
                _ => None,
            })
            .expect("a TCP listener")
    }

    /// The first HTTP listener's address.
    pub fn http(&self) -> SocketAddr {
        first_http(&self.addrs)
    }

    /// The first IRC address.
    pub fn irc(&self) -> SocketAddr {
        first_irc(&self.addrs)
    }

    pub fn unix(&self) -> PathBuf {
        self.addrs
            .iter()
            .find_map(|a| match a {
                ListenAddr::Unix(p) => Some(p.clone()),
                _ => None,
            })
            .expect("a Unix listener")
    }

    /// A new TCP client, its greeting read.
    pub async fn client(&self) -> Client {
        let mut c = Client::tcp(self.tcp()).await;
        c.expect("*** Welcome to charla").await;
        c.expect("you joined").await;
        c
    }

    /// A new TCP client, retrying while the server refuses it for being full (a place
    /// is given back a moment after its connection ends).
    pub async fn client_once_admitted(&self) -> Client {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let mut c = Client::tcp(self.tcp()).await;
            let first = c.next().await.expect("a greeting or a refusal");
            if first.starts_with("*** Welcome to charla") {
                c.expect("you joined").await;
                return c;
            }
            assert!(first.starts_with("ERROR server_full: "), "{first:?}");
            assert!(
                tokio::time::Instant::now() < deadline,
                "still refused: {first:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A new TCP client that took `nick`.
    pub async fn named(&self, nick: &str) -> Client {
        let mut c = self.client().await;
        c.send(&format!("/nick {nick}")).await;
        c.expect(&format!("*** you are now known as {nick}")).await;
        c
    }

    /// A client that switched to JSON lines as `nick`, in `#lobby` (which a program is
    /// put in only when its hello names it); its welcome read.
    pub async fn json(&self, nick: &str) -> Client {
        let mut c = Client::tcp(self.tcp()).await;
        c.expect("*** Welcome").await;
        c.send(&format!(
            r##"{{"type":"hello","nick":"{nick}","rooms":["#lobby"]}}"##
        ))
        .await;
        let welcome = c.expect_json("welcome").await;
        assert_eq!(welcome["nick"], nick);
        c
    }
}

/// `specs` as addresses; a `unix://NAME` one becomes a socket named NAME in `dir`.
/// The first HTTP listener's address among `addrs`.
pub fn first_http(addrs: &[ListenAddr]) -> SocketAddr {
    addrs
        .iter()
        .find_map(|a| match a {
            ListenAddr::Http(sa) => Some(*sa),
            _ => None,
        })
        .expect("an HTTP listener")
}

pub fn first_irc(addrs: &[ListenAddr]) -> SocketAddr {
    addrs
        .iter()
        .find_map(|a| match a {
            ListenAddr::Irc(sa) => Some(*sa),
            _ => None,
        })
        .expect("an IRC listener")
}

pub fn listen_addrs(specs: &[&str], dir: &std::path::Path) -> Vec<ListenAddr> {
    specs
        .iter()
        .map(|s| match s.strip_prefix("unix://") {
            Some(name) => ListenAddr::Unix(dir.join(name)),
            None => s.parse().unwrap(),
        })
        .collect()
}

/// One connection, read line by line.
pub struct Client {
    reader: BufReader<Box<dyn AsyncRead + Unpin + Send>>,
    writer: Box<dyn AsyncWrite + Unpin + Send>,
}

impl Client {
    pub async fn tcp(addr: SocketAddr) -> Client {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        };
        Client::tcp_via(socket.unwrap(), addr).await
    }

    /// Connects from a socket the test prepared (bound to another loopback address, say).
    pub async fn tcp_via(socket: TcpSocket, addr: SocketAddr) -> Client {
        let stream = socket.connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (r, w) = stream.into_split();
        Client::from_parts(Box::new(r), Box::new(w))
    }

    pub async fn unix(path: &std::path::Path) -> Client {
        let (r, w) = UnixStream::connect(path).await.unwrap().into_split();
        Client::from_parts(Box::new(r), Box::new(w))
    }

    /// A client over a stream the test opened itself (TLS, say).
    pub fn over(stream: impl AsyncRead + AsyncWrite + Unpin + Send + 'static) -> Client {
        let (r, w) = tokio::io::split(stream);
        Client::from_parts(Box::new(r), Box::new(w))
    }

    fn from_parts(
        r: Box<dyn AsyncRead + Unpin + Send>,
        w: Box<dyn AsyncWrite + Unpin + Send>,
    ) -> Client {
        Client {
            reader: BufReader::new(r),
            writer: w,
        }
    }

    /// Sends `line` and a newline.
    pub async fn send(&mut self, line: &str) {
        self.send_raw(format!("{line}\n").as_bytes()).await;
    }

    /// Sends bytes exactly as given, in one write.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.unwrap();
        self.writer.flush().await.unwrap();
    }

    /// Ends the sending side (like nc at end of input).
    pub async fn close_write(&mut self) {
        self.writer.shutdown().await.unwrap();
    }

    /// The next line without its newline; `None` at end of stream.
    pub async fn next(&mut self) -> Option<String> {
        self.next_within(PATIENCE)
            .await
            .expect("no line arrived in time")
    }

    /// `Err` if nothing arrived within `wait`.
    pub async fn next_within(&mut self, wait: Duration) -> Result<Option<String>, ()> {
        let mut buf = Vec::new();
        match tokio::time::timeout(wait, self.reader.read_until(b'\n', &mut buf)).await {
            Err(_) => Err(()),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(None),
            Ok(r) => {
                r.unwrap();
                if buf.is_empty() {
                    return Ok(None);
                }
                assert_eq!(buf.pop(), Some(b'\n'), "a line ends with a newline");
                Ok(Some(
                    String::from_utf8(buf).expect("the server sends UTF-8"),
                ))
            }
        }
    }

    /// Reads until a line contains `needle` and returns it; fails with the lines seen.
    pub async fn expect(&mut self, needle: &str) -> String {
        let mut seen = Vec::new();
        loop {
            match self.next_within(PATIENCE).await {
                Ok(Some(line)) if line.contains(needle) => return line,
                Ok(Some(line)) => seen.push(line),
                Ok(None) => panic!("connection closed before {needle:?}; saw {seen:#?}"),
                Err(()) => panic!("no {needle:?} in time; saw {seen:#?}"),
            }
        }
    }

    /// Asserts no line arrives for a while (the absence of an echo, say).
    pub async fn silent_for(&mut self, wait: Duration) {
        if let Ok(line) = self.next_within(wait).await {
            panic!("expected silence, got {line:?}");
        }
    }

    /// Reads lines until the server closes; returns them.
    pub async fn until_closed(&mut self) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            match self.next_within(PATIENCE).await {
                Ok(Some(line)) => seen.push(line),
                Ok(None) => return seen,
                Err(()) => panic!("still open; saw {seen:#?}"),
            }
        }
    }

    /// The next line as JSON.
    pub async fn json(&mut self) -> Value {
        let line = self.next().await.expect("a JSON line");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?} is not JSON: {e}"))
    }

    /// Reads JSON lines until one has `"type": kind`.
    pub async fn expect_json(&mut self, kind: &str) -> Value {
        let mut seen = Vec::new();
        loop {
            let line = match self.next_within(PATIENCE).await {
                Ok(Some(line)) => line,
                Ok(None) => panic!("closed before a {kind:?} event; saw {seen:#?}"),
                Err(()) => panic!("no {kind:?} event in time; saw {seen:#?}"),
            };
            match serde_json::from_str::<Value>(&line) {
                Ok(v) if v["type"] == kind => return v,
                _ => seen.push(line),
            }
        }
    }
}

/// Long enough a wait that a line the server was going to send would have arrived; used
/// only to prove absence (no echo, no leak to another room).
pub const QUIET: Duration = Duration::from_millis(250);

impl TestServer {
    /// Text clients named `nicks`, all in `#lobby`. Each earlier client has read every later
    /// one's rename notice, so every client's next line is whatever the test does next.
    /// (No nick may contain another's, as `ana` and `anabel`.)
    pub async fn crowd(&self, nicks: &[&str]) -> Vec<Client> {
        let mut clients: Vec<Client> = Vec::new();
        for nick in nicks {
            let newcomer = self.named(nick).await;
            for earlier in &mut clients {
                earlier.expect(&format!("is now known as {nick}")).await;
            }
            clients.push(newcomer);
        }
        clients
    }
}

impl Client {
    /// The next line, which must exist (the connection is still open).
    pub async fn line(&mut self) -> String {
        self.next()
            .await
            .expect("a line, not the end of the stream")
    }
}
