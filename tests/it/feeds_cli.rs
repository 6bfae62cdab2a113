//! Feeds through the `charla` binary, as a user runs them: `charla watch FILE` with `nc`
//! (here a Rust socket) in another terminal, `charla serve --listen udp://… --check …`.

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use crate::binary::{self, Binary};
use crate::support::{Client, PATIENCE, QUIET};

/// A `charla` the test started, killed when the test ends however it ends.
pub type Spawned = Binary;

/// `charla ARGS` in `dir`.
fn command(args: &[&str], dir: Option<&Path>) -> Command {
    let mut command = binary::command(args);
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    command
}

/// Runs `charla ARGS` to completion.
pub fn run(args: &[&str]) -> Output {
    command(args, None).output().unwrap()
}

impl Binary {
    /// `charla ARGS` in `dir`, running.
    pub fn launch(args: &[&str], dir: Option<&Path>) -> Spawned {
        Binary::start(command(args, dir))
    }

    /// The address of the next `listening on SCHEME://ADDR` line.
    pub fn listening_on(&self, scheme: &str) -> String {
        let line = self
            .stdout
            .recv_timeout(PATIENCE)
            .expect("a `listening on` line");
        line.strip_prefix(&format!("listening on {scheme}://"))
            .unwrap_or_else(|| panic!("expected a {scheme} address, got {line:?}"))
            .to_string()
    }
}

/// The seed's three terminals: `charla watch target.txt`, `nc localhost PORT` (and `nc -U`
/// on a Unix socket), and edits to the file.
#[tokio::test(flavor = "multi_thread")]
async fn charla_watch_reproduces_the_net_watcher() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target.txt");
    std::fs::write(&target, "").unwrap();
    let charla = Spawned::launch(
        &[
            "watch",
            "target.txt",
            "--listen",
            "127.0.0.1:0",
            "--listen",
            "unix://w.sock",
        ],
        Some(dir.path()),
    );
    let tcp: SocketAddr = charla.listening_on("tcp").parse().unwrap();
    assert_eq!(charla.listening_on("unix"), "w.sock");

    let mut over_tcp = Client::tcp(tcp).await;
    greeted_with_status(
        &mut over_tcp,
        "#lobby --- [watch] now watching target.txt for changes",
    )
    .await;
    let mut over_unix = Client::unix(&dir.path().join("w.sock")).await;
    greeted_with_status(
        &mut over_unix,
        "#lobby --- [watch] now watching target.txt for changes",
    )
    .await;
    // The first sees the second arrive; then nothing else is pending.
    over_tcp.expect("joined").await;

    // `touch target.txt`, as the seed's `watch -n 1 touch target.txt` does every second.
    let file = std::fs::File::options().write(true).open(&target).unwrap();
    file.set_modified(std::time::SystemTime::now() + Duration::from_secs(5))
        .unwrap();
    drop(file);
    for c in [&mut over_tcp, &mut over_unix] {
        assert_eq!(
            c.line().await,
            "#lobby >>> [watch] target.txt was modified (0 bytes)"
        );
    }
    std::fs::write(&target, "hello\n").unwrap();
    for c in [&mut over_tcp, &mut over_unix] {
        assert_eq!(
            c.line().await,
            "#lobby >>> [watch] target.txt was modified (6 bytes)"
        );
    }
    over_tcp.silent_for(QUIET).await;
}

#[test]
fn watching_a_missing_file_fails_before_listening() {
    let dir = tempfile::tempdir().unwrap();
    let mut charla = Spawned::launch(
        &["watch", "target.txt", "--listen", "127.0.0.1:0"],
        Some(dir.path()),
    );
    let status = charla.exit_status();
    assert!(!status.success());
    let stderr = charla.stderr();
    assert!(
        stderr.contains("cannot watch target.txt: it does not exist"),
        "{stderr}"
    );
    assert!(charla.stdout.try_recv().is_err(), "it claimed to listen");
}

/// A mistyped path, or a check and a heartbeat of one name, is found before the server makes
/// its data directory and database: it leaves nothing behind (with no `--data`, that would
/// be the user's own state directory).
#[test]
fn feeds_that_cannot_start_make_no_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("state");
    let data = data.to_str().unwrap();
    let refused: [(&[&str], &str); 2] = [
        (&["watch", "target.txt"], "it does not exist"),
        (
            &["serve", "--check", "a=exec:true", "--heartbeat", "a=1h"],
            "names both a --check and a --heartbeat",
        ),
    ];
    for (args, why) in refused {
        let args = [args, &["--listen", "127.0.0.1:0", "--data", data]].concat();
        let mut charla = Spawned::launch(&args, Some(dir.path()));
        assert!(!charla.exit_status().success(), "{args:?}");
        let stderr = charla.stderr();
        assert!(stderr.contains(why), "{args:?}: {stderr}");
        assert!(!Path::new(data).exists(), "{args:?}: {data} was made");
    }
}

/// `echo "disk full" | nc -u -w0 127.0.0.1 PORT` reaches everyone in #alerts, next to the
/// checks' alerts; `#ops …` reaches #ops, opted in with `--feed-room`.
#[tokio::test(flavor = "multi_thread")]
async fn serve_takes_udp_alerts_and_runs_checks() {
    // A port bound but not listening: connection refused, every time.
    let reserved = tokio::net::TcpSocket::new_v4().unwrap();
    reserved.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let closed = reserved.local_addr().unwrap();
    let check = format!("db=tcp://{closed}");
    let charla = Spawned::launch(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--listen",
            "udp://127.0.0.1:0",
            "--check",
            &check,
            "--check-interval",
            "200ms",
            "--feed-room",
            "#ops",
        ],
        None,
    );
    let tcp: SocketAddr = charla.listening_on("tcp").parse().unwrap();
    let udp: SocketAddr = charla.listening_on("udp").parse().unwrap();

    let mut c = Client::tcp(tcp).await;
    c.expect("#lobby *** you joined").await;
    c.send("/join #alerts").await;
    c.expect("#alerts *** you joined").await;
    c.expect("db is DOWN").await;

    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(b"disk full\n", udp)
        .unwrap();
    assert_eq!(
        c.expect("disk full").await,
        "#alerts !!! [udp:127.0.0.1] disk full"
    );

    c.send("/status").await;
    assert!(c.expect("[check:db]").await.contains("db is DOWN (for "));
    assert!(c.line().await.ends_with("1 posted, 0 dropped so far"));

    c.send("/join #ops").await;
    c.expect("#ops *** you joined").await;
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(b"#ops deploy done\n", udp)
        .unwrap();
    assert_eq!(
        c.expect("deploy done").await,
        "#ops !!! [udp:127.0.0.1] deploy done"
    );
}

/// Reads the greeting of a client that lands in a room with a watcher: the welcome, the
/// join, then the watcher's status line, which must be `status`.
async fn greeted_with_status(c: &mut Client, status: impl AsRef<str>) {
    c.expect("*** Welcome to charla").await;
    c.expect("#lobby *** you joined").await;
    assert_eq!(c.line().await, status.as_ref());
}
