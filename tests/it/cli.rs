//! The `charla` binary itself: what it prints, how it refuses an address it cannot have,
//! how it stops, and where its options come from.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

use charla::server::ListenAddr;

use crate::binary::{self, Binary};
use crate::support::{Client, PATIENCE};

/// A running `charla`, killed when the test ends however it ends.
type Charla = Binary;

impl Binary {
    /// Starts `charla ARGS` with `env` added to an environment cleared of `CHARLA_*`.
    fn spawn(args: &[&str], env: &[(&str, &str)]) -> Charla {
        let mut command = binary::command(args);
        command.envs(env.iter().copied());
        Binary::start(command)
    }

    /// `charla serve --listen A --listen B …`
    fn serve(listen: &[&str]) -> Charla {
        let mut args = vec!["serve"];
        for addr in listen {
            args.extend(["--listen", addr]);
        }
        Charla::spawn(&args, &[])
    }

    /// The next `n` addresses printed as `listening on ADDR`.
    fn listening(&self, n: usize) -> Vec<ListenAddr> {
        (0..n)
            .map(|_| {
                let line = self
                    .stdout
                    .recv_timeout(PATIENCE)
                    .expect("a `listening on` line");
                let addr = line
                    .strip_prefix("listening on ")
                    .filter(|a| a.starts_with("tcp://") || a.starts_with("unix://"))
                    .unwrap_or_else(|| panic!("unexpected output {line:?}"));
                addr.parse()
                    .unwrap_or_else(|e| panic!("{line:?} names no address: {e}"))
            })
            .collect()
    }

    /// Sends `signal` (TERM, INT) with kill(1).
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits for a failure exit; returns what it said on stderr, after checking it never
    /// claimed to listen.
    fn failure(&mut self) -> String {
        let status = self.exit_status();
        let stderr = self.stderr();
        assert!(!status.success(), "{status}; stderr: {stderr}");
        let stdout: Vec<String> = self.stdout.iter().collect();
        assert!(stdout.is_empty(), "printed {stdout:?}");
        stderr
    }
}

/// `charla ARGS` run to completion: status and stdout.
fn run(args: &[&str]) -> (ExitStatus, String) {
    let mut charla = Charla::spawn(args, &[]);
    let status = charla.exit_status();
    let stdout: Vec<String> = charla.stdout.iter().collect();
    (status, stdout.join("\n"))
}

fn tcp(addr: &ListenAddr) -> std::net::SocketAddr {
    match addr {
        ListenAddr::Tcp(sa) => *sa,
        other => panic!("expected TCP, got {other}"),
    }
}

fn unix(addr: &ListenAddr) -> PathBuf {
    match addr {
        ListenAddr::Unix(path) => path.clone(),
        other => panic!("expected a Unix socket, got {other}"),
    }
}

fn spec(path: &Path) -> String {
    format!("unix://{}", path.display())
}

async fn greeted(mut client: Client) -> Client {
    client.expect("*** Welcome to charla").await;
    client.expect("you joined").await;
    client
}

#[tokio::test(flavor = "multi_thread")]
async fn prints_each_listening_address_and_serves_on_each() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.sock");
    let charla = Charla::serve(&["127.0.0.1:0", &spec(&path)]);
    let addrs = charla.listening(2);

    let tcp_addr = tcp(&addrs[0]);
    assert!(
        tcp_addr.ip().is_loopback() && tcp_addr.port() != 0,
        "{tcp_addr}"
    );
    assert_eq!(unix(&addrs[1]), path);

    let mut over_tcp = greeted(Client::tcp(tcp_addr).await).await;
    let mut over_unix = greeted(Client::unix(&path).await).await;
    over_unix.send("/nick local").await;
    over_unix.expect("you are now known as local").await;
    over_unix.send("hello over a Unix socket").await;
    assert_eq!(
        over_tcp.expect("<local>").await,
        "#lobby <local> hello over a Unix socket"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn serves_alike_on_one_thread_and_on_several() {
    for threads in ["1", "3"] {
        let mut charla = Charla::spawn(
            &["serve", "--listen", "127.0.0.1:0", "--threads", threads],
            &[],
        );
        let addr = tcp(&charla.listening(1)[0]);
        let mut ana = greeted(Client::tcp(addr).await).await;
        let mut bea = greeted(Client::tcp(addr).await).await;
        bea.send("/nick bea").await;
        bea.expect("you are now known as bea").await;
        bea.send("hola desde ñandú").await;
        assert_eq!(
            ana.expect("hola").await,
            "#lobby <bea> hola desde ñandú",
            "--threads {threads}"
        );
        charla.signal("TERM");
        assert_eq!(ana.until_closed().await, ["*** goodbye (server shutdown)"]);
        drop(bea);
        assert!(charla.exit_status().success(), "--threads {threads}");
    }
}

#[test]
fn a_port_in_use_names_its_holder() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = holder.local_addr().unwrap();
    let mut charla = Charla::serve(&[&addr.to_string()]);
    let stderr = charla.failure();

    let pid = std::process::id();
    let program = std::fs::read_to_string("/proc/self/comm").unwrap();
    let program = program.trim_end();
    assert!(
        stderr.contains(&format!(
            "{addr} is already in use by pid {pid} ({program})"
        )),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("`kill {pid}`")), "{stderr}");
    assert!(stderr.contains("--listen"), "{stderr}");
    // The holder keeps its port.
    assert_eq!(holder.local_addr().unwrap(), addr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stale_unix_socket_file_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.sock");
    // A server that died leaves its socket file behind.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());

    let charla = Charla::serve(&[&spec(&path)]);
    assert_eq!(unix(&charla.listening(1)[0]), path);
    greeted(Client::unix(&path).await).await;
}

#[test]
fn a_unix_socket_someone_listens_on_is_not_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.sock");
    // Not accepting, but alive: connections complete into its backlog.
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();

    let stderr = Charla::serve(&[&spec(&path)]).failure();
    assert!(stderr.contains("already in use"), "{stderr}");
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");

    // The file and the listener are untouched.
    assert!(std::fs::metadata(&path).unwrap().file_type().is_socket());
    std::os::unix::net::UnixStream::connect(&path).unwrap();
    listener.set_nonblocking(true).unwrap();
    listener.accept().expect("our listener still owns the path");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_unix_socket_another_charla_serves_is_not_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.sock");
    let first = Charla::serve(&[&spec(&path)]);
    first.listening(1);

    let stderr = Charla::serve(&[&spec(&path)]).failure();
    assert!(stderr.contains("already in use"), "{stderr}");

    // The first one still serves, on the same file.
    greeted(Client::unix(&path).await).await;
    drop(first);
}

#[test]
fn a_regular_file_in_the_way_is_refused_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.sock");
    std::fs::write(&path, "precious\n").unwrap();

    let stderr = Charla::serve(&[&spec(&path)]).failure();
    assert!(stderr.contains("is not a socket"), "{stderr}");
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious\n");
}

/// Two clients (TCP and Unix) connected; `signal` must say goodbye to both, close their
/// connections, remove the socket file and exit successfully.
async fn shuts_down_gracefully_on(signal: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.sock");
    let mut charla = Charla::serve(&["127.0.0.1:0", &spec(&path)]);
    let addrs = charla.listening(2);
    let mut over_tcp = greeted(Client::tcp(tcp(&addrs[0])).await).await;
    let over_unix = greeted(Client::unix(&path).await).await;
    over_tcp.expect("joined").await;

    charla.signal(signal);
    for mut client in [over_tcp, over_unix] {
        let seen = client.until_closed().await;
        assert_eq!(seen, ["*** goodbye (server shutdown)"], "after SIG{signal}");
        // Hanging up in turn, as a client does at end of stream, lets it exit at once.
    }
    let status = charla.exit_status();
    assert!(
        status.success(),
        "SIG{signal}: {status}; {}",
        charla.stderr()
    );
    assert!(!path.exists(), "the socket file is left behind");
    let stdout: Vec<String> = charla.stdout.iter().collect();
    assert!(stdout.is_empty(), "printed {stdout:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_says_goodbye_and_exits() {
    shuts_down_gracefully_on("TERM").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigint_says_goodbye_and_exits() {
    shuts_down_gracefully_on("INT").await;
}

/// Without a TLS certificate to reload, a hangup (the terminal closed) ends the server as
/// SIGTERM does rather than by the default action, which told nobody goodbye.
#[tokio::test(flavor = "multi_thread")]
async fn sighup_without_tls_says_goodbye_and_exits() {
    shuts_down_gracefully_on("HUP").await;
}

/// A `kill` started in advance, so that a signal can follow an event within microseconds
/// (spawning `kill` then takes milliseconds).
struct Killer(Child);

impl Killer {
    fn ready() -> Killer {
        let mut shell = Command::new("sh")
            .args(["-c", r#"echo ready; read sig pid && kill -"$sig" "$pid""#])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(shell.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line, "ready\n");
        Killer(shell)
    }

    fn fire(mut self, signal: &str, charla: &Charla) {
        let mut stdin = self.0.stdin.take().unwrap();
        writeln!(stdin, "{signal} {}", charla.child.id()).unwrap();
        assert!(self.0.wait().unwrap().success(), "kill -{signal} failed");
    }
}

impl Drop for Killer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Once it has said where it listens, a signal stops it gracefully however soon it comes.
#[test]
fn a_signal_right_after_start_is_handled() {
    for signal in ["INT", "TERM", "INT", "TERM", "INT", "TERM"] {
        let killer = Killer::ready();
        let mut charla = Charla::serve(&["127.0.0.1:0"]);
        charla.listening(1);
        killer.fire(signal, &charla);
        let status = charla.exit_status();
        assert!(status.success(), "SIG{signal}: {status}");
    }
}

#[test]
fn help_and_version() {
    let (status, out) = run(&["--help"]);
    assert!(status.success(), "{status}");
    assert!(out.contains("serve"), "{out}");

    let (status, out) = run(&["serve", "--help"]);
    assert!(status.success(), "{status}");
    assert!(out.contains("--listen"), "{out}");
    assert!(out.contains("CHARLA_LISTEN"), "{out}");

    let (status, out) = run(&["--version"]);
    assert!(status.success(), "{status}");
    assert_eq!(out, format!("charla {}", env!("CARGO_PKG_VERSION")));
}

/// Each account command lists only the options it uses: `hash` opens no store.
#[test]
fn account_commands_take_only_their_own_options() {
    let (status, out) = run(&["account", "hash", "--help"]);
    assert!(status.success(), "{status}");
    for unused in ["--data", "--cluster", "--config"] {
        assert!(!out.contains(unused), "{unused} in:\n{out}");
    }
    let (status, _) = run(&["account", "hash", "--data", "/tmp"]);
    assert!(!status.success(), "hash takes no --data");
    let (status, out) = run(&["account", "add", "--help"]);
    assert!(status.success(), "{status}");
    for used in ["--data", "--cluster", "--config", "CHARLA_DATA"] {
        assert!(out.contains(used), "{used} not in:\n{out}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn options_come_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.sock");
    let listen = format!("127.0.0.1:0,{}", spec(&path));
    let charla = Charla::spawn(
        &["serve"],
        &[("CHARLA_LISTEN", &listen), ("CHARLA_MAX_LINE", "16")],
    );
    let addrs = charla.listening(2);
    assert_eq!(unix(&addrs[1]), path);

    let mut client = greeted(Client::tcp(tcp(&addrs[0])).await).await;
    client.send("this line is longer than sixteen bytes").await;
    let error = client.next().await.unwrap();
    assert!(error.starts_with("ERROR line_too_long: "), "{error:?}");
    greeted(Client::unix(&path).await).await;
}

#[tokio::test]
async fn an_http_listener_beyond_loopback_without_a_token_is_warned_about() {
    let mut charla = Charla::serve(&["http://0.0.0.0:0"]);
    let line = charla
        .stdout
        .recv_timeout(PATIENCE)
        .expect("a `listening on` line");
    assert!(line.starts_with("listening on http://0.0.0.0:"), "{line}");
    charla.signal("TERM");
    assert!(charla.exit_status().success());
    let stderr = charla.stderr();
    assert!(stderr.contains("no --http-token"), "{stderr}");
}

#[tokio::test]
async fn the_http_token_is_never_logged() {
    let token = "t0ken-never-shown";
    let mut charla = Charla::spawn(
        &[
            "serve",
            "-vv",
            "--listen",
            "http://127.0.0.1:0",
            "--http-token",
            token,
        ],
        &[],
    );
    let line = charla
        .stdout
        .recv_timeout(PATIENCE)
        .expect("a `listening on` line");
    let addr: ListenAddr = line.strip_prefix("listening on ").unwrap().parse().unwrap();
    let ListenAddr::Http(http) = addr else {
        panic!("{line}");
    };
    let wrong = [("Authorization", "Bearer t0ken-never-show")];
    let right = [("Authorization", "Bearer t0ken-never-shown")];
    assert_eq!(
        crate::http::post(http, "alerts", &wrong, "x").await.status,
        401
    );
    assert_eq!(
        crate::http::post(http, "alerts", &right, "x").await.status,
        200
    );
    charla.signal("TERM");
    assert!(charla.exit_status().success());
    let stderr = charla.stderr();
    assert!(!stderr.contains("no --http-token"), "{stderr}");
    assert!(!stderr.contains("t0ken-never-show"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn options_come_from_a_config_file_and_flags_and_variables_win() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("charla.toml");
    let sock = dir.path().join("x.sock");
    std::fs::write(
        &config,
        format!(
            "# a server for the test\nlisten = [\"127.0.0.1:0\", \"{}\"]\nmax_line = 16\n\
             check = [\"db=tcp://127.0.0.1:1 retries=1\"]\ncheck-interval = \"50ms\"\n",
            spec(&sock)
        ),
    )
    .unwrap();
    let path = config.to_str().unwrap();
    let charla = Charla::spawn(&["serve", "--config", path], &[]);
    let addrs = charla.listening(2);
    assert_eq!(unix(&addrs[1]), sock);
    let mut client = greeted(Client::tcp(tcp(&addrs[0])).await).await;
    client.send("this line is longer than sixteen bytes").await;
    let error = client.next().await.unwrap();
    assert!(error.starts_with("ERROR line_too_long: "), "{error:?}");
    // The file's check runs.
    client.send("/join #alerts").await;
    client.expect("[check:db] db is ").await;
    drop(charla);

    // A flag and a variable win over the file.
    let charla = Charla::spawn(
        &["serve", "--config", path, "--listen", "127.0.0.1:0"],
        &[("CHARLA_MAX_LINE", "4096")],
    );
    let addrs = charla.listening(1);
    let mut client = greeted(Client::tcp(tcp(&addrs[0])).await).await;
    let mut other = greeted(Client::tcp(tcp(&addrs[0])).await).await;
    client.send("this line is longer than sixteen bytes").await;
    other.expect("this line is longer than sixteen bytes").await;
}

#[test]
fn a_bad_config_file_names_the_line_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("charla.toml");
    std::fs::write(&config, "history = 10\n\nmax-lines = 20\n").unwrap();
    let path = config.to_str().unwrap();
    let mut charla = Charla::spawn(&["serve", "--config", path], &[]);
    let status = charla.exit_status();
    assert_eq!(status.code(), Some(1));
    let stderr = charla.failure();
    assert!(
        stderr.contains(&format!("{path}:3: unknown key `max-lines`")),
        "{stderr}"
    );
    std::fs::write(&config, "check-interval = \"soon\"\n").unwrap();
    let mut charla = Charla::spawn(&["serve", "--config", path], &[]);
    assert_eq!(charla.exit_status().code(), Some(1));
    let stderr = charla.failure();
    assert!(
        stderr.contains(&format!("{path}:1: `check-interval`: invalid value 'soon'")),
        "{stderr}"
    );
}

/// A mistyped option after a check's target is refused with the options that kind of
/// check takes, its own (`status`, `keyword`, `ca`) among them, not only the common ones.
#[test]
fn a_checks_unknown_option_is_refused_with_the_options_its_kind_takes() {
    for (check, own) in [
        ("web=https://127.0.0.1:1/ keywrd=ok", "status, keyword, ca"),
        ("cert=tls://127.0.0.1:1 cafile=x.pem", "ca"),
        ("db=tcp://127.0.0.1:1 retry=3", ""),
    ] {
        let mut charla = Charla::spawn(
            &[
                "serve",
                "--data",
                "none",
                "--listen",
                "127.0.0.1:0",
                "--check",
                check,
            ],
            &[],
        );
        let stderr = charla.failure();
        let listed = if own.is_empty() {
            "no such option (retries, timeout, priority)".to_string()
        } else {
            format!("no such option ({own}, retries, timeout, priority)")
        };
        assert!(stderr.contains(&listed), "{check}: {stderr}");
    }
}

/// One option given twice in a config file, once as `max-line` and once as `max_line`, is
/// an error naming both lines, as any other mistake in the file names its line, not
/// clap's "cannot be used multiple times" with no line at all.
#[test]
fn a_config_key_given_twice_in_two_spellings_names_both_lines() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("charla.toml");
    std::fs::write(&config, "history = 10\nmax-line = 100\n\nmax_line = 200\n").unwrap();
    let path = config.to_str().unwrap();
    let mut charla = Charla::spawn(&["serve", "--config", path], &[]);
    assert_eq!(charla.exit_status().code(), Some(1));
    let stderr = charla.failure();
    assert!(
        stderr.contains(&format!(
            "{path}:4: `max_line` is `max-line` again, given on line 2 already"
        )),
        "{stderr}"
    );
}

/// A send queue too small for two of the longest lines in JSON is refused at start-up
/// (`--send-queue 10` put every client out at its greeting), and so is one too small for
/// a longer `--max-line`.
#[tokio::test(flavor = "multi_thread")]
async fn a_send_queue_too_small_for_the_longest_lines_is_refused_at_start_up() {
    for args in [
        &["--send-queue", "10"][..],
        &["--max-line", "65536", "--send-queue", "131072"][..],
    ] {
        let mut all = vec!["serve", "--data", "none", "--listen", "127.0.0.1:0"];
        all.extend_from_slice(args);
        let stderr = Charla::spawn(&all, &[]).failure();
        assert!(
            stderr.contains("is too small: give at least"),
            "{args:?}: {stderr}"
        );
    }
    let fits = Charla::spawn(
        &[
            "serve",
            "--data",
            "none",
            "--listen",
            "127.0.0.1:0",
            "--send-queue",
            "16384",
        ],
        &[],
    );
    greeted(Client::tcp(tcp(&fits.listening(1)[0])).await).await;
}

/// A bound of 0 that would let no client in, or put each out at once, is refused at
/// start-up naming the option, not taken to serve nobody (`--max-connections 0` answered
/// every newcomer "the server is full (0 connections)").
#[test]
fn bounds_that_would_serve_nobody_are_refused_at_start_up() {
    for option in [
        "--max-connections",
        "--max-line",
        "--send-queue",
        "--max-rooms-per-client",
    ] {
        let mut charla = Charla::spawn(
            &[
                "serve",
                "--data",
                "none",
                "--listen",
                "127.0.0.1:0",
                option,
                "0",
            ],
            &[],
        );
        let stderr = charla.failure();
        assert!(
            stderr.contains(&format!("invalid value '0' for '{option}")),
            "{option}: {stderr}"
        );
        assert!(stderr.contains("must be at least 1"), "{option}: {stderr}");
    }
}
