//! TLS listeners (`tls://`, `ircs://`, `https://`) and the client's `tls://`: certificates
//! made by rcgen for each test, real handshakes, the real binary where start-up errors,
//! logs and signals are what is tested.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use charla::client::tls::connector;
use charla::limits::Limits;
use charla::server::{Certificates, HttpOptions, ListenAddr, TlsFiles};
use futures_util::{SinkExt, StreamExt};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::Message;

use crate::binary::{self, Binary};
use crate::client::{Ended, run};
use crate::support::{Client, PATIENCE, TestServer};

/// A certificate authority of the test's own, and the files it issues in a temporary
/// directory.
pub(crate) struct Pki {
    dir: tempfile::TempDir,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate and its key, as PEM, and the certificate as DER to compare with what a
/// server presented.
struct Issued {
    cert: String,
    key: String,
    der: Vec<u8>,
}

impl Pki {
    pub(crate) fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "charla test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let ca = params.self_signed(&key).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        Pki {
            dir,
            issuer: Issuer::new(params, key),
        }
    }

    /// A certificate for localhost and 127.0.0.1, valid now.
    fn issue(&self) -> Issued {
        self.issue_with(false)
    }

    /// A certificate for localhost and 127.0.0.1; expired on 1 January 2001 when `expired`.
    fn issue_with(&self, expired: bool) -> Issued {
        self.issue_adjusted(|params| {
            if expired {
                params.not_before = rcgen::date_time_ymd(2000, 1, 1);
                params.not_after = rcgen::date_time_ymd(2001, 1, 1);
            }
        })
    }

    /// A certificate for localhost and 127.0.0.1, as `adjust` leaves its parameters.
    fn issue_adjusted(&self, adjust: impl FnOnce(&mut CertificateParams)) -> Issued {
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        adjust(&mut params);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Issued {
            cert: cert.pem(),
            key: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    /// Writes `issued` as `server.crt` and `server.key` (replacing them whole, as a renewal
    /// does).
    fn install(&self, issued: &Issued) -> TlsFiles {
        let files = self.files();
        for (path, text) in [(&files.cert, &issued.cert), (&files.key, &issued.key)] {
            let fresh = path.with_extension("new");
            std::fs::write(&fresh, text).unwrap();
            std::fs::rename(&fresh, path).unwrap();
        }
        files
    }

    fn files(&self) -> TlsFiles {
        TlsFiles {
            cert: self.dir.path().join("server.crt"),
            key: self.dir.path().join("server.key"),
        }
    }

    /// A listener on port 0 that only shakes hands, with a certificate of this CA that
    /// expires at the start of the day `days` from today (UTC); it stops when the handle is
    /// aborted.
    pub(crate) fn handshakes_expiring_in(
        &self,
        days: i64,
    ) -> (SocketAddr, tokio::task::JoinHandle<()>) {
        let expiry = jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::from_hours(24 * days))
            .unwrap()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date();
        let issued = self.issue_adjusted(|params| {
            params.not_after = rcgen::date_time_ymd(
                i32::from(expiry.year()),
                expiry.month() as u8,
                expiry.day() as u8,
            );
        });
        let certs = Certificates::load(self.install(&issued)).unwrap();
        shakes_hands(tokio_rustls::TlsAcceptor::from(certs.server_config(&[])))
    }

    /// A listener on port 0 that only shakes hands presenting `issued`, whatever it is
    /// (expired too, which `charla serve` refuses at start-up).
    fn handshakes_presenting(&self, issued: &Issued) -> (SocketAddr, tokio::task::JoinHandle<()>) {
        let cert = CertificateDer::from(issued.der.clone());
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(issued.key.as_bytes()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(charla::server::tls_provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap();
        shakes_hands(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)))
    }

    pub(crate) fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A TLS connection to `addr` verified against this CA, as the client's own code
    /// makes it.
    async fn dial(&self, addr: SocketAddr) -> TlsStream<TcpStream> {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        connector(Some(&self.ca()))
            .unwrap()
            .connect(name, tcp)
            .await
            .unwrap()
    }

    /// A text client over TLS, its greeting read.
    async fn text(&self, addr: SocketAddr) -> Client {
        let mut c = Client::over(self.dial(addr).await);
        c.expect("*** Welcome to charla").await;
        c.expect("you joined").await;
        c
    }

    /// A text client over TLS that took `nick`.
    async fn named(&self, addr: SocketAddr, nick: &str) -> Client {
        let mut c = self.text(addr).await;
        c.send(&format!("/nick {nick}")).await;
        c.expect(&format!("you are now known as {nick}")).await;
        c
    }
}

/// Accepts connections on a port 0 listener and only shakes hands with `acceptor`; stops
/// when the handle is aborted.
fn shakes_hands(acceptor: tokio_rustls::TlsAcceptor) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = acceptor.accept(tcp).await;
            });
        }
    });
    (addr, task)
}

/// The certificate a TLS connection was shown.
fn presented(stream: &TlsStream<TcpStream>) -> Vec<u8> {
    let certs: &[CertificateDer<'_>] = stream.get_ref().1.peer_certificates().unwrap();
    certs[0].to_vec()
}

/// A server in this process on `specs`, presenting a fresh certificate of `pki`'s.
async fn serve(pki: &Pki, specs: &[&str]) -> TestServer {
    let limits = Limits {
        flood_rate: 0,
        ..Limits::default()
    };
    serve_with(pki, specs, limits).await
}

pub(crate) async fn serve_with(pki: &Pki, specs: &[&str], limits: Limits) -> TestServer {
    let certs = Certificates::load(pki.install(&pki.issue())).unwrap();
    TestServer::with_certs(specs, limits, HttpOptions::default(), Some(&certs)).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_handshake_under_way_holds_a_place_and_a_refusal_is_said_inside_tls() {
    let pki = Pki::new();
    let limits = Limits {
        max_connections_per_ip: 1,
        ..Limits::default()
    };
    let server = serve_with(&pki, &["tls://127.0.0.1:0"], limits).await;
    let addr = listener(&server, "tls");
    // Connected, silent: its handshake has not begun, and it holds the address's one place.
    let silent = TcpStream::connect(addr).await.unwrap();
    let mut refused = Client::over(pki.dial(addr).await);
    refused.expect("ERROR too_many_connections").await;
    drop(silent);
    // Its place is given back once the server sees it gone.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut c = Client::over(pki.dial(addr).await);
        let first = c.next().await.expect("a greeting or a refusal");
        if first.starts_with("*** Welcome to charla") {
            break;
        }
        assert!(first.starts_with("ERROR too_many_connections"), "{first}");
        assert!(
            Instant::now() < deadline,
            "the silent client's place was kept"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The address of the first listener shown with `scheme` (`tls`, `ircs`, `https`).
pub(crate) fn listener(server: &TestServer, scheme: &str) -> SocketAddr {
    server
        .addrs
        .iter()
        .find_map(|a| match a {
            ListenAddr::Tls(sa) if scheme == "tls" => Some(*sa),
            ListenAddr::Ircs(sa) if scheme == "ircs" => Some(*sa),
            ListenAddr::Https(sa) if scheme == "https" => Some(*sa),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no {scheme}:// listener in {:?}", server.addrs))
}

#[tokio::test(flavor = "multi_thread")]
async fn text_and_json_clients_chat_over_tls() {
    let pki = Pki::new();
    let server = serve(&pki, &["tls://127.0.0.1:0"]).await;
    let addr = listener(&server, "tls");
    let mut text = pki.text(addr).await;
    let mut bot = Client::over(pki.dial(addr).await);
    bot.expect("*** Welcome").await;
    bot.send(r##"{"type":"hello","nick":"bot","rooms":["#lobby"]}"##)
        .await;
    assert_eq!(bot.expect_json("welcome").await["nick"], "bot");

    text.send("hello over TLS").await;
    let message = bot.expect_json("message").await;
    assert_eq!(message["text"], "hello over TLS");
    bot.send(&json!({"type":"say","text":"ñ and 😀 back"}).to_string())
        .await;
    text.expect("<bot> ñ and 😀 back").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_irc_client_registers_over_ircs() {
    let pki = Pki::new();
    let server = serve(&pki, &["ircs://127.0.0.1:0", "tls://127.0.0.1:0"]).await;
    let mut irc = Client::over(pki.dial(listener(&server, "ircs")).await);
    irc.send("NICK ana").await;
    irc.send("USER ana 0 * :Ana").await;
    irc.expect(" 001 ana ").await;
    irc.send("JOIN #lobby").await;
    irc.expect("JOIN #lobby").await;
    let mut text = pki.text(listener(&server, "tls")).await;
    irc.send("PRIVMSG #lobby :secure hello").await;
    text.expect("<ana> secure hello").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn https_serves_the_page_and_a_websocket() {
    let pki = Pki::new();
    let server = serve(&pki, &["https://127.0.0.1:0", "tls://127.0.0.1:0"]).await;
    let https = listener(&server, "https");

    let mut page = pki.dial(https).await;
    page.write_all(b"GET / HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    tokio::time::timeout(PATIENCE, page.read_to_string(&mut answer))
        .await
        .expect("the page in time")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("content-type: text/html"), "{answer}");

    let mut text = pki.text(listener(&server, "tls")).await;
    let stream = pki.dial(https).await;
    let (mut ws, response) = tokio_tungstenite::client_async("wss://localhost/ws?nick=wes", stream)
        .await
        .unwrap();
    assert_eq!(response.status(), 101);
    // The page's hello, made from its URL, is answered by a second welcome.
    while next_frame(&mut ws, "welcome").await["nick"] != "wes" {}
    let say = json!({"type":"say","text":"over wss"}).to_string();
    ws.send(Message::text(say)).await.unwrap();
    text.expect("<wes> over wss").await;
    text.send("back to the page").await;
    assert_eq!(
        next_frame(&mut ws, "message").await["text"],
        "back to the page"
    );
}

/// The page served over https:// opens its WebSocket and posts from its own origin,
/// `https://` and the Host it was asked for, as a browser sends them; another origin is
/// still refused.
#[tokio::test(flavor = "multi_thread")]
async fn the_https_page_opens_its_websocket_and_posts_from_its_own_origin() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let pki = Pki::new();
    let server = serve(&pki, &["https://127.0.0.1:0", "tls://127.0.0.1:0"]).await;
    let https = listener(&server, "https");
    let host = format!("localhost:{}", https.port());

    let handshake = |origin: String| {
        let mut request = format!("wss://{host}/ws?nick=pag")
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
        request
    };
    let stream = pki.dial(https).await;
    let (mut ws, response) =
        tokio_tungstenite::client_async(handshake(format!("https://{host}")), stream)
            .await
            .expect("the page's own origin is let in");
    assert_eq!(response.status(), 101);
    while next_frame(&mut ws, "welcome").await["nick"] != "pag" {}

    let stream = pki.dial(https).await;
    let refused =
        tokio_tungstenite::client_async(handshake("https://evil.example".into()), stream).await;
    assert!(refused.is_err(), "another origin was let in");

    let post = |origin: String| {
        let host = host.clone();
        let pki = &pki;
        async move {
            let mut stream = pki.dial(https).await;
            let head = format!(
                "POST /rooms/alerts HTTP/1.1\r\nhost: {host}\r\norigin: {origin}\r\n\
                 content-length: 9\r\nconnection: close\r\n\r\nfrom page"
            );
            stream.write_all(head.as_bytes()).await.unwrap();
            let mut answer = String::new();
            tokio::time::timeout(PATIENCE, stream.read_to_string(&mut answer))
                .await
                .expect("an answer in time")
                .unwrap();
            answer
        }
    };
    let answer = post(format!("https://{host}")).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let answer = post("https://evil.example".into()).await;
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
}

/// The next JSON frame of type `kind`, others skipped.
async fn next_frame<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>, kind: &str) -> Value
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let frame = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no {kind:?} frame in time"))
            .expect("the socket open")
            .unwrap();
        if let Message::Text(text) = frame {
            let value: Value = serde_json::from_str(&text).unwrap();
            if value["type"] == kind {
                return value;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn charla_connect_and_send_speak_tls_verified_by_ca() {
    let pki = Pki::new();
    let server = serve(&pki, &["tls://127.0.0.1:0", "tcp://127.0.0.1:0"]).await;
    let tls = format!("tls://{}", listener(&server, "tls"));
    let ca = pki.ca().display().to_string();
    let mut reader = pki.text(listener(&server, "tls")).await;

    let sent = run(&["send", &tls, "--ca", &ca, "sent", "over", "TLS"], "").await;
    assert!(sent.status.success(), "{}", sent.stderr);
    reader.expect("sent over TLS").await;

    let connected = run(
        &["connect", &tls, "--ca", &ca, "--name", "bot"],
        "typed over TLS\n",
    )
    .await;
    assert!(connected.status.success(), "{}", connected.stderr);
    reader.expect("<bot> typed over TLS").await;

    // Without --ca the system's roots are asked, and they do not know the test's CA.
    let untrusted = run(&["send", &tls, "not sent"], "").await;
    failed_saying(
        &untrusted,
        "the server's certificate is not trusted (unknown issuer: it is self-signed, or signed by a CA this machine does not trust): pass --ca FILE",
    );
    // Another CA of the same name: what rustls calls a signature it cannot check, in
    // plain words too.
    let other = Pki::new();
    let other_ca = other.ca().display().to_string();
    let wrong = run(&["send", &tls, "--ca", &other_ca, "not sent"], "").await;
    failed_saying(
        &wrong,
        &format!("(unknown issuer: not signed by the CA in {other_ca}): pass as --ca"),
    );
    // tls:// to a plaintext port.
    let plain = format!("tls://{}", server.tcp());
    let mismatch = run(&["send", &plain, "--ca", &ca, "not sent"], "").await;
    failed_saying(&mismatch, "did not answer in TLS");
    reader.send("/nick reader").await;
    loop {
        let line = reader.next().await.expect("the connection open");
        assert!(!line.contains("not sent"), "{line}");
        if line.contains("you are now known as reader") {
            break;
        }
    }
}

/// The client failed, saying `needle` in words: no type names or fields of a library's
/// error (`{`, `Context`) reach the person.
fn failed_saying(ended: &Ended, needle: &str) {
    assert!(!ended.status.success());
    assert!(ended.stderr.contains(needle), "{}", ended.stderr);
    assert!(
        !ended.stderr.contains('{') && !ended.stderr.contains("Context"),
        "{}",
        ended.stderr
    );
}

/// A certificate expired, for another name, or a CA's own: each refusal says what is wrong
/// and what to do, in words.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_certificate_is_explained_in_words() {
    let pki = Pki::new();
    let ca = pki.ca().display().to_string();
    let (expired, task) = pki.handshakes_presenting(&pki.issue_with(true));
    let ended = run(&["send", &format!("tls://{expired}"), "--ca", &ca, "x"], "").await;
    task.abort();
    failed_saying(
        &ended,
        "the server's certificate is not trusted (it expired on ",
    );
    failed_saying(&ended, "): the server needs a new certificate");

    let elsewhere = pki.issue_adjusted(|params| {
        params.subject_alt_names = vec![rcgen::SanType::DnsName(
            "chat.example.org".try_into().unwrap(),
        )];
    });
    let (charla, addr) = serve_binary(&pki.install(&elsewhere));
    let ended = run(&["send", &format!("tls://{addr}"), "--ca", &ca, "x"], "").await;
    failed_saying(
        &ended,
        "(it is for chat.example.org, not 127.0.0.1): connect by a name it is for",
    );
    drop(charla);

    let own_ca = pki.issue_adjusted(|params| {
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    });
    let (charla, addr) = serve_binary(&pki.install(&own_ca));
    let ended = run(&["send", &format!("tls://{addr}"), "--ca", &ca, "x"], "").await;
    failed_saying(
        &ended,
        "(it is a CA certificate (CA:TRUE), which a server may not present as its own): make the server's certificate with basicConstraints CA:FALSE",
    );
    drop(charla);
}

/// `charla serve --listen tls://127.0.0.1:0` presenting `files`, and its TLS address.
fn serve_binary(files: &TlsFiles) -> (Binary, SocketAddr) {
    let cert = files.cert.display().to_string();
    let key = files.key.display().to_string();
    let command = binary::command(&[
        "serve",
        "--listen",
        "tls://127.0.0.1:0",
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
    ]);
    let charla = Binary::start(command);
    let line = charla.stdout.recv_timeout(PATIENCE).unwrap();
    let addr = line
        .strip_prefix("listening on tls://")
        .unwrap_or_else(|| panic!("{line:?}"))
        .parse()
        .unwrap();
    (charla, addr)
}

fn kill(charla: &Binary, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{signal}"), charla.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Stops `charla` with SIGTERM; what it logged.
fn stopped(charla: &mut Binary) -> String {
    kill(charla, "TERM");
    assert!(charla.exit_status().success());
    charla.stderr()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plaintext_client_on_a_tls_port_is_told_and_logged_and_hurts_nobody() {
    let pki = Pki::new();
    let (mut charla, addr) = serve_binary(&pki.install(&pki.issue()));
    let mut ana = pki.named(addr, "ana").await;

    let mut plain = Client::tcp(addr).await;
    plain.send("hello?").await;
    let said = plain.until_closed().await;
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0].starts_with("error: this port speaks TLS"),
        "{said:?}"
    );

    let mut bea = pki.named(addr, "bea").await;
    ana.expect("bea").await;
    ana.send("still here").await;
    bea.expect("<ana> still here").await;

    let log = stopped(&mut charla);
    assert!(log.contains("plaintext client on a TLS port"), "{log}");
}

/// An IRC client with TLS off on an `ircs://` port is told in IRC's own words, an `ERROR`
/// line its client shows as the reason the link closed (WeeChat took the text listener's
/// `error: …` for an unknown command).
#[tokio::test(flavor = "multi_thread")]
async fn a_plaintext_irc_client_on_an_ircs_port_gets_an_irc_error() {
    let pki = Pki::new();
    let server = serve(&pki, &["ircs://127.0.0.1:0"]).await;
    let mut plain = Client::tcp(listener(&server, "ircs")).await;
    plain.send("CAP LS 302\r\nNICK ana\r").await;
    let said = plain.until_closed().await;
    assert_eq!(
        said,
        ["ERROR :Closing link: this port speaks TLS (ircs://): turn TLS on in your IRC client\r"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_reloads_the_certificate_and_keeps_connections() {
    let pki = Pki::new();
    let first = pki.issue();
    let (mut charla, addr) = serve_binary(&pki.install(&first));
    let old = pki.dial(addr).await;
    assert_eq!(presented(&old), first.der);
    let mut old = Client::over(old);
    old.expect("you joined").await;

    let second = pki.issue();
    pki.install(&second);
    kill(&charla, "HUP");
    // The reload happens when the signal is handled: new connections show it from then on.
    let deadline = Instant::now() + PATIENCE;
    let mut new = loop {
        let stream = pki.dial(addr).await;
        if presented(&stream) == second.der {
            break Client::over(stream);
        }
        assert!(Instant::now() < deadline, "still the first certificate");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    new.expect("you joined").await;
    new.send("/nick newcomer").await;
    new.expect("you are now known as newcomer").await;
    old.send("/nick oldtimer").await;
    old.expect("you are now known as oldtimer").await;
    old.send("said on the first certificate").await;
    new.expect("<oldtimer> said on the first certificate").await;

    let log = stopped(&mut charla);
    assert!(log.contains("TLS certificate reloaded"), "{log}");
}

/// `charla serve --listen tls://127.0.0.1:0 EXTRA…` that must refuse to start; its stderr.
fn refused_start(extra: &[&str]) -> String {
    let mut args = vec!["serve", "--listen", "tls://127.0.0.1:0"];
    args.extend_from_slice(extra);
    let mut charla = Binary::start(binary::command(&args));
    let status = charla.exit_status();
    let stderr = charla.stderr();
    assert!(!status.success(), "{stderr}");
    assert!(
        charla.stdout.try_iter().next().is_none(),
        "it claimed to listen"
    );
    stderr
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn bad_certificates_stop_the_server_at_start_up_with_the_reason() {
    let pki = Pki::new();
    let files = pki.install(&pki.issue());
    let (cert, key) = (path(&files.cert), path(&files.key));

    let stderr = refused_start(&[]);
    assert!(
        stderr.contains("needs a certificate: give --tls-cert and --tls-key"),
        "{stderr}"
    );

    let missing = path(&pki.dir.path().join("missing.crt"));
    let stderr = refused_start(&["--tls-cert", &missing, "--tls-key", &key]);
    assert!(
        stderr.contains("cannot read the TLS certificate"),
        "{stderr}"
    );

    let junk = pki.dir.path().join("junk.crt");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    let stderr = refused_start(&["--tls-cert", &path(&junk), "--tls-key", &key]);
    assert!(stderr.contains("no PEM certificate"), "{stderr}");

    let stderr = refused_start(&["--tls-cert", &cert, "--tls-key", &path(&junk)]);
    assert!(
        stderr.contains("cannot read the TLS private key"),
        "{stderr}"
    );

    let other = pki.issue();
    let other_key = pki.dir.path().join("other.key");
    std::fs::write(&other_key, other.key).unwrap();
    let stderr = refused_start(&["--tls-cert", &cert, "--tls-key", &path(&other_key)]);
    assert!(stderr.contains("does not fit the certificate"), "{stderr}");

    let expired = pki.install(&pki.issue_with(true));
    let stderr = refused_start(&[
        "--tls-cert",
        &path(&expired.cert),
        "--tls-key",
        &path(&expired.key),
    ]);
    assert!(stderr.contains("expired on 2001-01-01"), "{stderr}");
}
