//! Heartbeats over real sockets: a job that stops calling in is LATE, and every way of
//! calling in (a JSON request, a UDP datagram, `POST /beat/NAME`, `charla send --beat`,
//! `charla run --beat`) brings it back. Periods are sub-second so the test is quick.

use std::net::SocketAddr;
use std::time::Duration;

use charla::feeds::FeedOptions;
use charla::feeds::udp::IngestOptions;

use crate::binary;
use crate::feeds::{FeedServer, nc_u};
use crate::feeds_cli::{Spawned, run};
use crate::http::raw_within;
use crate::irc::Irc;
use crate::support::{Client, PATIENCE};

fn beating(spec: &str) -> FeedOptions {
    FeedOptions {
        heartbeats: vec![spec.parse().unwrap()],
        ..FeedOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_job_is_late_and_any_call_brings_it_back() {
    let server = FeedServer::start(
        &["tcp://127.0.0.1:0", "http://127.0.0.1:0"],
        Some(IngestOptions::default()),
        beating("tick=300ms+100ms"),
    )
    .await;
    let mut c = server.client_in("#alerts").await;
    // Joining told the heartbeat's state; the json client's calls come next.
    let mut job = Client::tcp(server.tcp()).await;
    job.expect("*** Welcome").await;
    job.send(r#"{"type":"hello","nick":"job"}"#).await;
    job.expect_json("welcome").await;
    job.send(r#"{"type":"beat","name":"tick","ref":7}"#).await;
    let answer = job.expect_json("status").await;
    assert_eq!(answer["ref"], 7, "{answer}");
    assert_eq!(answer["items"][0]["heartbeat"], "tick", "{answer}");
    assert_eq!(answer["items"][0]["state"], "up", "{answer}");
    job.send(r#"{"type":"beat","name":"tock","ref":8}"#).await;
    let refused = job.expect_json("error").await;
    assert_eq!(refused["code"], "invalid_argument", "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("no heartbeat \"tock\""),
        "{refused}"
    );

    let late = c.expect("!!! [beat:tick] tick is LATE: no call for ").await;
    assert!(late.ends_with("(every 300ms, grace 100ms)"), "{late:?}");

    nc_u(server.udp[0], b"beat tick\n");
    let up = c.expect("[beat:tick]").await;
    assert!(
        up.starts_with("#alerts !!! [beat:tick] tick is UP again: called in (was late for "),
        "{up:?}"
    );
    c.expect("tick is LATE").await;

    let answer = raw_within(server.http(), "POST /beat/tick HTTP/1.1", b"", PATIENCE).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.json()["items"][0]["state"], "up");
    c.expect("tick is UP again: called in").await;
    let unknown = raw_within(server.http(), "POST /beat/nope HTTP/1.1", b"", PATIENCE).await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert_eq!(unknown.json()["code"], "no_such_heartbeat");

    // A datagram naming no heartbeat is posted as any other text, not lost.
    nc_u(server.udp[0], b"beat nope\n");
    c.expect("!!! [udp:127.0.0.1] beat nope").await;
}

/// A failed run is FAILED until its job calls in again; when no call comes for
/// PERIOD+GRACE after it, the job is LATE (it did not even run again), as docs/alerts.md says.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_job_that_stops_calling_in_is_late() {
    let server = FeedServer::start(&["tcp://127.0.0.1:0"], None, beating("tick=300ms+100ms")).await;
    let mut c = server.client_in("#alerts").await;
    let mut job = Client::tcp(server.tcp()).await;
    job.expect("*** Welcome").await;
    job.send(r#"{"type":"hello","nick":"job"}"#).await;
    job.expect_json("welcome").await;
    job.send(
        r#"{"type":"beat","name":"tick","event":"finish","status":3,"duration_ms":20,"ref":1}"#,
    )
    .await;
    let answer = job.expect_json("status").await;
    assert_eq!(answer["items"][0]["state"], "failed", "{answer}");
    c.expect("!!! [beat:tick] tick FAILED: exit status 3 after 20ms")
        .await;
    c.expect("!!! [beat:tick] tick is LATE: no call for ").await;
    job.send(r##"{"type":"status","room":"#alerts"}"##).await;
    let status = job.expect_json("status").await;
    assert_eq!(status["items"][0]["state"], "late", "{status}");
    job.send(r#"{"type":"beat","name":"tick"}"#).await;
    c.expect("tick is UP again: called in (was late for ").await;
}

/// `charla run --addr SERVER --beat backup -- COMMAND…`, run to its end.
async fn run_job(server: &str, command: &[&str]) -> std::process::Output {
    let mut args: Vec<String> = ["run", "--addr", server, "--beat", "backup", "--"]
        .iter()
        .map(|a| a.to_string())
        .collect();
    args.extend(command.iter().map(|a| a.to_string()));
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&args)
    })
    .await
    .unwrap()
}

/// `charla run` passes its command's output through, reports the start and the failure
/// with the exit status and the last lines, and exits with the command's status; `charla
/// send --beat` calls in and prints the state.
#[tokio::test(flavor = "multi_thread")]
async fn charla_run_reports_each_run_and_exits_with_its_status() {
    let charla = Spawned::launch(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--heartbeat",
            "backup=1h",
        ],
        None,
    );
    let tcp: SocketAddr = charla.listening_on("tcp").parse().unwrap();
    let mut c = Client::tcp(tcp).await;
    c.expect("#lobby *** you joined").await;
    c.send("/join #alerts").await;
    c.expect("backup is waiting for its first call").await;
    let server = format!("tcp://{tcp}");

    let failed = run_job(
        &server,
        &[
            "sh",
            "-c",
            "echo copying; echo 'rsync: disk full' >&2; exit 3",
        ],
    )
    .await;
    assert_eq!(failed.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&failed.stdout), "copying\n");
    assert_eq!(
        String::from_utf8_lossy(&failed.stderr),
        "rsync: disk full\n"
    );
    // Each call is a short visit to #lobby, seen there; the room's lines are these.
    assert_eq!(
        c.expect("[beat:backup]").await,
        "#alerts >>> [beat:backup] backup started"
    );
    let alert = c.expect("[beat:backup]").await;
    assert!(
        alert.starts_with("#alerts !!! [beat:backup] backup FAILED: exit status 3 after ")
            && alert.ends_with(": rsync: disk full"),
        "{alert:?}"
    );

    let ok = run_job(&server, &["true"]).await;
    assert_eq!(ok.status.code(), Some(0));
    c.expect("backup started").await;
    c.expect("backup is UP again: succeeded in ").await;

    // A command that cannot run is a failed run, exit status 127 as from a shell.
    let missing = run_job(&server, &["/nonexistent/job"]).await;
    assert_eq!(missing.status.code(), Some(127));
    c.expect("backup started").await;
    let failed = c.expect("[beat:backup]").await;
    assert!(
        failed.contains("backup FAILED: exit status 127 after ")
            && failed.contains("cannot run /nonexistent/job"),
        "{failed:?}"
    );

    let sent = tokio::task::spawn_blocking(move || {
        let mut command = binary::command(&["send", "--beat", "backup"]);
        command.env("CHARLA_SERVER", &server);
        command.output().unwrap()
    })
    .await
    .unwrap();
    assert!(sent.status.success(), "{sent:?}");
    assert!(
        String::from_utf8_lossy(&sent.stdout).starts_with("backup is up (for "),
        "{sent:?}"
    );
    c.expect("backup is UP again: called in").await;
    let unknown = tokio::task::spawn_blocking(move || {
        // The server's address as the first argument, as for a message.
        run(&["send", &tcp.to_string(), "--beat", "nope"])
    })
    .await
    .unwrap();
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("no heartbeat \"nope\""),
        "{unknown:?}"
    );
    // An alive call from `charla send` while up says nothing in #alerts.
    let quiet = tokio::time::timeout(Duration::from_millis(300), c.expect("#alerts")).await;
    assert!(quiet.is_err(), "{quiet:?}");
}

/// `/ack` and `/silence` reach heartbeats as they reach checks, from a text client and from
/// an IRC client (`ACK`, `SILENCE`, `UNSILENCE`).
#[tokio::test(flavor = "multi_thread")]
async fn people_acknowledge_and_silence_a_heartbeat_from_text_and_irc() {
    let server = FeedServer::start(
        &["tcp://127.0.0.1:0", "irc://127.0.0.1:0"],
        None,
        FeedOptions {
            heartbeats: vec![
                "tick=300ms".parse().unwrap(),
                "nightly=24h".parse().unwrap(),
            ],
            ..FeedOptions::default()
        },
    )
    .await;
    let mut ana = server.client_in("#alerts").await;
    ana.send("/nick ana").await;
    ana.expect("you are now known as ana").await;
    let mut bob = Irc(Client::tcp(server.irc()).await);
    bob.send("NICK bob").await;
    bob.send("USER bob 0 * :Bob").await;
    bob.expect(" 422 ").await;
    bob.send("JOIN #alerts").await;
    bob.expect(" 366 bob #alerts ").await;

    // Nothing to acknowledge: a job not due for a day (`tick` may be late already on a
    // loaded machine, its 300 ms gone while bob registered).
    bob.send("ACK nightly").await;
    let refused = bob.expect("nightly").await;
    assert!(
        refused.contains("NOTICE bob :nightly is neither late nor failed"),
        "{refused:?}"
    );
    bob.send("ACK").await;
    bob.expect(" 461 bob ACK :").await;

    ana.expect("[beat:tick] tick is LATE").await;
    bob.send("ACK tick :on it").await;
    let acked = ana.expect("acknowledged").await;
    assert!(
        acked.starts_with("#alerts >>> [beat:tick] bob acknowledged tick, LATE for ")
            && acked.ends_with(": on it"),
        "{acked:?}"
    );
    ana.send("/status").await;
    let status = ana.expect("[beat:tick] tick is LATE").await;
    assert!(status.ends_with("[acknowledged by bob]"), "{status:?}");

    ana.send("/silence tick 1h cron moved").await;
    ana.expect("[beat:tick] ana silenced tick for 1h: cron moved")
        .await;
    // The answer: its status, marked.
    ana.expect("[silenced by ana for 1h more: cron moved]")
        .await;
    // A call while silenced: UP again reaches only /status.
    let mut job = Client::tcp(server.tcp()).await;
    job.expect("*** Welcome").await;
    job.send(r#"{"type":"hello","nick":"job"}"#).await;
    job.expect_json("welcome").await;
    job.send(r#"{"type":"beat","name":"tick"}"#).await;
    let answer = job.expect_json("status").await;
    assert_eq!(answer["items"][0]["state"], "up", "{answer}");
    ana.send("/status").await;
    let status = ana.expect("--- [beat:tick] tick is ").await;
    assert!(
        status.contains("tick is up (for ") && status.contains("[silenced by ana for "),
        "{status:?}"
    );
    // UNSILENCE says its state once.
    bob.send("UNSILENCE tick").await;
    let lifted = ana.expect("ended the silence").await;
    assert!(
        lifted.starts_with("#alerts ")
            && lifted.contains("[beat:tick] bob ended the silence on tick: tick is "),
        "{lifted:?}"
    );
    bob.send("SILENCE tick soon").await;
    bob.expect("NOTICE bob :").await;
    bob.send("SILENCE tick 10m").await;
    bob.expect("bob silenced tick for 10m").await;
}

/// A heartbeat that keeps calling in is up since its first call, not since its last: the
/// status says how long it has been up and, apart, how long ago it last called.
#[tokio::test(flavor = "multi_thread")]
async fn a_job_that_keeps_calling_in_is_up_since_its_first_call() {
    let server = FeedServer::start(&["tcp://127.0.0.1:0"], None, beating("tick=1h")).await;
    let mut job = Client::tcp(server.tcp()).await;
    job.expect("*** Welcome").await;
    job.send(r#"{"type":"hello","nick":"job"}"#).await;
    job.expect_json("welcome").await;
    job.send(r#"{"type":"beat","name":"tick"}"#).await;
    job.expect_json("status").await;
    // Long enough for "up for" to read in seconds while the last call is milliseconds ago.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    job.send(r#"{"type":"beat","name":"tick"}"#).await;
    let answer = job.expect_json("status").await;
    let text = answer["items"][0]["text"].as_str().unwrap();
    let up_for = text
        .strip_prefix("tick is up (for ")
        .and_then(|rest| rest.split(';').next())
        .unwrap_or_else(|| panic!("{text:?}"));
    assert!(
        up_for.ends_with('s') && !up_for.ends_with("ms"),
        "up since its first call, over a second ago: {text:?}"
    );
    assert!(text.contains("; last call "), "{text:?}");
}
