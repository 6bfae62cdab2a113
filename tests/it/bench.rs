//! `charla bench` against a real server: the generator counts every delivery once, and
//! says how late it sent and when lines reached the sockets; the floor, which needs no
//! server, has every byte it wrote read. Correctness only; how fast is the benchmark's
//! business (docs/benchmarks.md), never a test's.

use charla::limits::Limits;
use serde_json::Value;

use crate::binary;
use crate::support::TestServer;
use crate::tls::{Pki, listener, serve_with};

/// A server as the benchmark loads it: no flood control, no bound per address.
async fn open_server() -> TestServer {
    TestServer::with(open_limits()).await
}

/// The limits the benchmark's servers run with: no flood control, no bound per address.
fn open_limits() -> Limits {
    Limits {
        flood_rate: 0,
        max_connections_per_ip: 0,
        ..Limits::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_counts_every_delivery_once_and_measures_both_ends() {
    let server = open_server().await;
    let (markdown, report) =
        run_fanout(&server, &["--duration", "1", "--rates", "2000,6000"]).await;
    assert!(
        markdown.contains("| charla | fanout | 20/1/5 | 2000 |"),
        "{markdown}"
    );
    let steps = report["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2);
    for step in steps {
        every_delivery_once(step);
        // A line reaches the socket before the generator reads it.
        let at_socket = step["socket_p99_ms"].as_f64().expect("kernel stamps");
        assert!(at_socket <= step["p99_ms"].as_f64().unwrap(), "{step}");
        assert!(step["send_lag_p99_ms"].as_f64().is_some(), "{step}");
    }
    // Three times the rate, three times the messages (the schedule is exact).
    let (slow, fast) = (
        steps[0]["messages_sent"].as_u64().unwrap(),
        steps[1]["messages_sent"].as_u64().unwrap(),
    );
    assert!(fast.abs_diff(3 * slow) <= 10, "{slow} then {fast} messages");
}

/// Over TLS, over a WebSocket and as JSON lines the generator counts every delivery once
/// as well; the kernel's arrival stamps are of encrypted bytes over TLS, so its runs
/// report none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_over_tls_and_a_websocket_counts_every_delivery_once() {
    let pki = Pki::new();
    let limits = open_limits();
    let specs = [
        "tls://127.0.0.1:0",
        "http://127.0.0.1:0",
        "tcp://127.0.0.1:0",
    ];
    let server = serve_with(&pki, &specs, limits).await;
    let ca = pki.ca().display().to_string();
    for (protocol, addr) in [
        ("charla-tls", listener(&server, "tls")),
        ("charla-ws", server.http()),
        ("charla-json", server.tcp()),
    ] {
        let addr = addr.to_string();
        let (markdown, report) = run_bench(&[
            "fanout",
            "--protocol",
            protocol,
            "--addr",
            &addr,
            "--ca",
            &ca,
            "--clients",
            "20",
            "--senders",
            "5",
            "--duration",
            "1",
            "--rates",
            "2000",
        ])
        .await;
        assert!(
            markdown.contains("| charla | fanout | 20/1/5 | 2000 |"),
            "{markdown}"
        );
        assert_eq!(report["protocol"], protocol);
        let step = &report["steps"][0];
        every_delivery_once(step);
        // JSON lines over plain TCP and the WebSocket's unencrypted frames keep the
        // kernel's stamps; TLS records are decrypted before their lines are found.
        let stamped = protocol != "charla-tls";
        assert_eq!(!step["socket_p99_ms"].is_null(), stamped, "{step}");
    }
}

/// Every message of the 20-client room reached the 19 others, once each, in order.
fn every_delivery_once(step: &Value) {
    let sent = step["messages_sent"].as_u64().unwrap();
    assert!(sent > 0, "{step}");
    assert_eq!(step["expected_deliveries"].as_u64().unwrap(), sent * 19);
    assert_eq!(step["delivered"], step["expected_deliveries"], "{step}");
    assert_eq!(step["lost"], 0);
    assert_eq!(step["duplicates"], 0);
    assert_eq!(step["reordered"], 0);
}

/// `--saturate` offers a rate that failed once more before it stops: with a bound no step
/// can meet (p99 at most 0 ms) the first rate is offered twice, every delivery of each try
/// counted once, and no rate is reported as held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saturate_offers_a_failed_rate_once_more_before_it_stops() {
    let server = open_server().await;
    let (markdown, report) = run_fanout(
        &server,
        &[
            "--duration",
            "1",
            "--rates",
            "2000",
            "--saturate",
            "--p99-limit-ms",
            "0",
        ],
    )
    .await;
    let steps = report["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2, "{report}");
    for step in steps {
        assert_eq!(step["offered_deliveries_per_s"], 2000, "{step}");
        every_delivery_once(step);
    }
    assert!(
        report["max_sustained_deliveries_per_s"].is_null(),
        "{report}"
    );
    assert!(markdown.contains("none of the rates offered"), "{markdown}");
}

/// Room churners beside a fan-out: they get joins and leaves done on connections of their
/// own, in both forms, and the measured clients still get every message once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_with_room_churners_reports_their_joins_and_loses_nothing() {
    let server = open_server().await;
    let (markdown, report) = run_fanout(
        &server,
        &[
            "--duration",
            "2",
            "--rates",
            "2000",
            "--churners",
            "2",
            "--churn-rooms",
            "10",
        ],
    )
    .await;
    assert!(
        markdown.contains("| charla | fanout + 2 room churners | 20/1/5 | 2000 |"),
        "{markdown}"
    );
    assert_eq!(report["churners"], 2);
    let step = &report["steps"][0];
    // Only the measured room's 19 others count: the churners are not in it.
    every_delivery_once(step);
    let churn = &step["room_churn"];
    assert_eq!(churn["churners"], 2, "{churn}");
    assert_eq!(churn["rooms_per_cycle"], 10, "{churn}");
    // Each spends its burst of 19 at once: the JSON churner on a hello of its 10 rooms (each
    // room a line of flood allowance) and 9 leaves, the text one on 10 `/join` lines and 9
    // `/leave` ones. Whatever a server refuses (a bound on rooms held, say) is reported,
    // not fatal.
    let done = |key: &str| churn[key].as_u64().unwrap();
    assert!(done("lines_sent") >= 10 + 19, "{churn}");
    assert!(
        done("joins") >= 2 * 10 && done("leaves") >= 2 * 9,
        "{churn}"
    );
    assert!(churn["refused"].is_object() && churn["disconnects"].is_object());
}

/// The floor needs no server: a writer thread writes to every socket in turn, and every
/// byte it wrote is read at the other end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floor_writes_every_socket_in_turn_and_all_of_it_is_read() {
    let (markdown, report) = run_bench(&[
        "floor",
        "--clients",
        "8",
        "--size",
        "20",
        "--duration",
        "1",
        "--writer-cpu",
        "0",
        "--label",
        "floor",
    ])
    .await;
    assert!(markdown.contains("| floor | 8 | 0 | 40 |"), "{markdown}");
    let floor = &report["floor"];
    let rows = floor["rows"].as_array().unwrap();
    let lines: Vec<u64> = rows
        .iter()
        .map(|r| r["lines_per_write"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [1, 10, 40]);
    let mut expected = 0;
    for row in rows {
        let writes = row["writes"].as_u64().unwrap();
        // Whole rounds only: each one writes all eight sockets.
        assert!(writes > 0 && writes % 8 == 0, "{row}");
        // 20 bytes of text and a newline a line.
        let bytes = writes * 21 * row["lines_per_write"].as_u64().unwrap();
        assert_eq!(row["bytes_written"].as_u64().unwrap(), bytes, "{row}");
        expected += bytes;
        let ms = |key: &str| row[key].as_f64().unwrap();
        assert!(0.0 < ms("round_p50_ms") && ms("round_p50_ms") <= ms("round_p99_ms"));
        assert!(0.0 < ms("delivery_p50_ms") && ms("delivery_p50_ms") <= ms("delivery_p99_ms"));
        assert!(
            ms("us_per_write") > 0.0 && ms("cpu_us_per_write") > 0.0,
            "{row}"
        );
    }
    assert_eq!(floor["bytes_written"].as_u64().unwrap(), expected);
    assert_eq!(floor["bytes_read"], floor["bytes_written"]);
    assert_eq!(floor["writer_cpu"], 0);
}

/// Runs `charla bench run ARGS --json FILE`; returns what it printed and the JSON report.
/// `charla bench run fanout` against `server`: 20 clients, 5 of them sending, and `more`.
/// The idle scenario registers one client before it reads the server's memory (so what the
/// first join costs once is not charged to every connection), then its crowd, over text
/// and over IRC: every nick its own, every connection still open when memory is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_registers_its_crowd_over_text_and_irc() {
    let server = TestServer::on(&["tcp://127.0.0.1:0", "irc://127.0.0.1:0"], open_limits()).await;
    let pid = std::process::id().to_string();
    for (protocol, addr) in [("charla", server.tcp()), ("irc", server.irc())] {
        let addr = addr.to_string();
        let (markdown, report) = run_bench(&[
            "idle",
            "--protocol",
            protocol,
            "--addr",
            &addr,
            "--clients",
            "30",
            "--server-pid",
            &pid,
        ])
        .await;
        let idle = &report["idle"];
        assert_eq!(idle["connections"], 30, "{markdown}");
        // This process is the server: the 30 and the first are open sockets of its own.
        assert!(idle["fds_after"].as_u64().unwrap() >= 31, "{idle}");
        assert!(
            idle["rss_after_bytes"].as_u64().unwrap() > 0
                && idle["bytes_per_connection"].as_f64().is_some(),
            "{idle}"
        );
    }
}

async fn run_fanout(server: &TestServer, more: &[&str]) -> (String, Value) {
    let addr = server.tcp().to_string();
    let mut args = vec![
        "fanout",
        "--addr",
        &addr,
        "--clients",
        "20",
        "--senders",
        "5",
    ];
    args.extend_from_slice(more);
    run_bench(&args).await
}

async fn run_bench(args: &[&str]) -> (String, Value) {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let out = json.display().to_string();
    let mut all = vec!["bench", "run"];
    all.extend_from_slice(args);
    all.extend(["--json", &out]);
    let mut command = binary::command(&all);
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    (String::from_utf8(output.stdout).unwrap(), report)
}
