//! `charla port PORT [--kill]` against a `charla serve` the test starts as its own child;
//! only that child is ever signalled.

use std::net::SocketAddr;

use crate::feeds_cli::{Spawned, run};
use crate::support::Client;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn port_finds_a_listener_and_kill_ends_it() {
    let mut server = Spawned::launch(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--listen",
            "udp://127.0.0.1:0",
        ],
        None,
    );
    let tcp: SocketAddr = server.listening_on("tcp").parse().unwrap();
    let udp: SocketAddr = server.listening_on("udp").parse().unwrap();
    let pid = server.child.id();
    let port = tcp.port().to_string();

    let shown = run(&["port", &port]);
    let out = text(&shown.stdout);
    assert!(shown.status.success(), "{out}{}", text(&shown.stderr));
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["PROTO", "ADDRESS", "STATE", "PID", "PROGRAM"]);
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        row,
        [
            "tcp",
            &tcp.to_string(),
            "LISTEN",
            &pid.to_string(),
            "charla"
        ]
    );

    // UDP ports are looked at too. Compared field by field: a TCP socket of another test
    // on the same port number (in TIME_WAIT, say) is listed too and widens the columns.
    let shown = run(&["port", &udp.port().to_string()]);
    let out = text(&shown.stdout);
    let (udp_text, pid_text) = (udp.to_string(), pid.to_string());
    let expected = ["udp", &udp_text, "UNCONN", &pid_text, "charla"];
    assert!(
        out.lines()
            .any(|line| line.split_whitespace().eq(expected.iter().copied())),
        "{out}"
    );

    // A client is connected: SIGTERM lets the server say goodbye to it.
    let mut client = Client::tcp(tcp).await;
    client.expect("you joined").await;
    // Read (and hang up) as the goodbye comes, so the server need not wait for us.
    let goodbye = tokio::spawn(async move { client.until_closed().await });
    let args = [
        "port".to_string(),
        port.clone(),
        "--kill".into(),
        "--grace".into(),
        "5s".into(),
    ];
    let killed = tokio::task::spawn_blocking(move || {
        run(&args.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await
    .unwrap();
    let out = text(&killed.stdout);
    assert!(killed.status.success(), "{out}{}", text(&killed.stderr));
    assert!(
        out.contains(&format!("pid {pid} (charla): ended after SIGTERM")),
        "{out}"
    );
    assert!(out.contains(&format!("port {port} is free now")), "{out}");
    assert_eq!(goodbye.await.unwrap(), ["*** goodbye (server shutdown)"]);
    assert!(server.exit_status().success(), "{}", server.stderr());

    // Nothing holds it now: a non-zero exit and a sentence.
    let gone = run(&["port", &port]);
    // (Our connection may linger in TIME_WAIT, which is listed but holds nothing.)
    assert!(!gone.status.success());
    assert!(!text(&gone.stdout).contains("LISTEN"));
    assert!(
        text(&gone.stderr).contains(&format!("nothing holds port {port}")),
        "{}",
        text(&gone.stderr)
    );
}

#[test]
fn serve_names_the_holder_of_a_udp_port() {
    let holder = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = holder.local_addr().unwrap();
    let refused = run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--listen",
        &format!("udp://{addr}"),
    ]);
    assert!(!refused.status.success());
    assert!(refused.stdout.is_empty(), "{}", text(&refused.stdout));
    let stderr = text(&refused.stderr);
    let pid = std::process::id();
    assert!(
        stderr.contains(&format!("udp://{addr} is already in use by pid {pid}")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("`charla port {} --kill`", addr.port())),
        "{stderr}"
    );
}

/// A client that stays connected, as a person's `nc` does, and does not hang up on the
/// goodbye: the server still ends well within `charla port --kill`'s default grace, so it
/// is ended by SIGTERM (its goodbyes said, its history committed), not SIGKILL.
#[tokio::test(flavor = "multi_thread")]
async fn kill_with_the_default_grace_ends_a_server_whose_client_stays_connected() {
    let mut server = Spawned::launch(
        &["serve", "--data", "none", "--listen", "127.0.0.1:0"],
        None,
    );
    let tcp: SocketAddr = server.listening_on("tcp").parse().unwrap();
    let pid = server.child.id();
    let port = tcp.port().to_string();
    let mut client = Client::tcp(tcp).await;
    client.expect("you joined").await;

    let killed = tokio::task::spawn_blocking(move || run(&["port", &port, "--kill"]))
        .await
        .unwrap();
    let out = text(&killed.stdout);
    assert!(killed.status.success(), "{out}{}", text(&killed.stderr));
    assert!(
        out.contains(&format!("pid {pid} (charla): ended after SIGTERM")),
        "{out}"
    );
    client.expect("*** goodbye (server shutdown)").await;
    assert!(server.exit_status().success(), "{}", server.stderr());
}
