//! `GET /metrics` over real sockets: clients connect and talk, a scrape over HTTP shows
//! the counters moved by what they did.

use std::collections::HashMap;
use std::net::SocketAddr;

use charla::feeds::{self, CheckSpec, FeedOptions};
use charla::hub::Hub;
use charla::limits::Limits;
use charla::server::{self, Datagrams, HttpOptions};
use tokio_util::sync::CancellationToken;

use crate::http::raw_within;
use crate::store::{next_listening, say_in_lobby, serve_with, stop};
use crate::support::{Client, PATIENCE, TestServer};

/// One scrape: every sample by its name and labels as written (`charla_connections{protocol="text"}`).
pub(crate) struct Scrape(pub(crate) HashMap<String, f64>);

impl Scrape {
    /// `GET /metrics`, as Prometheus (or `curl`) would.
    async fn of(addr: SocketAddr) -> Scrape {
        let answer = raw_within(addr, "GET /metrics HTTP/1.1", b"", PATIENCE).await;
        assert_eq!(answer.status, 200);
        assert!(
            answer
                .header("content-type")
                .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
            "the Prometheus text format"
        );
        Scrape(parse(&answer.body))
    }

    /// Scrapes until `done` holds of a scrape, and returns it; what a connection counts
    /// after its write may come a moment after the client read the line.
    pub(crate) async fn until(addr: SocketAddr, done: impl Fn(&Scrape) -> bool) -> Scrape {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let scrape = Scrape::of(addr).await;
            if done(&scrape) {
                return scrape;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "never came to pass: {:#?}",
                scrape.0
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// The sample `key`, which must be there.
    pub(crate) fn get(&self, key: &str) -> f64 {
        *self
            .0
            .get(key)
            .unwrap_or_else(|| panic!("no {key} in {:#?}", self.0))
    }
}

/// The samples of an exposition in the Prometheus text format; the comments (`# HELP`,
/// `# TYPE`) are checked to come before each family's samples.
fn parse(body: &str) -> HashMap<String, f64> {
    let mut samples = HashMap::new();
    let mut typed = Vec::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            typed.push(rest.split(' ').next().unwrap().to_string());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (key, value) = line.rsplit_once(' ').expect("NAME VALUE");
        let name = key.split('{').next().unwrap();
        assert!(
            typed.iter().any(|t| name.starts_with(t.as_str())),
            "{name} has no TYPE before it"
        );
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line:?}"));
        assert!(
            samples.insert(key.to_string(), value).is_none(),
            "{key} twice"
        );
    }
    samples
}

async fn server(limits: Limits) -> TestServer {
    let specs = [
        "tcp://127.0.0.1:0",
        "http://127.0.0.1:0",
        "irc://127.0.0.1:0",
    ];
    TestServer::with_http(&specs, limits, HttpOptions::default()).await
}

fn no_flood_control() -> Limits {
    Limits {
        flood_rate: 0,
        ..Limits::default()
    }
}

#[tokio::test]
async fn connections_sessions_rooms_messages_and_writes_are_counted() {
    let server = server(no_flood_control()).await;
    let http = server.http();
    let mut crowd = server.crowd(&["ana", "bob", "cy"]).await;
    let mut json = server.json("dee").await;
    // An IRC connection that has not registered yet: a connection, not a session.
    let _irc = Client::tcp(server.irc()).await;
    // An earlier scrape's connection may linger a moment after its answer.
    let before = Scrape::until(http, |s| {
        s.get("charla_connections{protocol=\"irc\"}") == 1.0
            && s.get("charla_connections{protocol=\"http\"}") == 1.0
    })
    .await;
    for (protocol, open) in [
        ("text", 3.0),
        ("json", 1.0),
        ("websocket", 0.0),
        ("http", 1.0),
    ] {
        let key = format!("charla_connections{{protocol=\"{protocol}\"}}");
        assert_eq!(before.get(&key), open, "{key}");
    }
    assert_eq!(before.get("charla_sessions"), 4.0);
    // #lobby, and #alerts, which the HTTP listener opens for posts.
    assert_eq!(before.get("charla_rooms"), 2.0);

    let said = 5;
    for n in 0..said {
        crowd[0].send(&format!("line {n}")).await;
    }
    for reader in &mut crowd[1..] {
        for n in 0..said {
            reader.expect(&format!("<ana> line {n}")).await;
        }
    }
    for _ in 0..said {
        json.expect_json("message").await;
    }
    crowd[1].send("/msg ana psst").await;
    crowd[0].expect("psst").await;
    let written =
        |s: &Scrape| s.get("charla_lines_written_total") - before.get("charla_lines_written_total");
    // Three members were written all five lines and ana the private message; the first
    // message (at least) was sampled and timed to its last member.
    let after = Scrape::until(http, |s| {
        written(s) >= 3.0 * said as f64 + 1.0 && s.get("charla_fanout_seconds_count") >= 1.0
    })
    .await;
    let moved = |key: &str| after.get(key) - before.get(key);
    assert_eq!(
        moved("charla_messages_received_total{kind=\"room\"}"),
        said as f64
    );
    assert_eq!(
        moved("charla_messages_received_total{kind=\"private\"}"),
        1.0
    );
    assert_eq!(moved("charla_messages_received_total{kind=\"post\"}"), 0.0);
    assert_eq!(
        moved("charla_messages_delivered_total"),
        3.0 * said as f64 + 1.0
    );
    // "#lobby <ana> line 0" and so on, each with its newline, to two text clients at least.
    let line = "#lobby <ana> line 0\n".len() as f64;
    assert!(moved("charla_bytes_written_total") >= 2.0 * said as f64 * line);
    assert!(after.get("charla_fanout_seconds_count") <= said as f64);
    assert!(after.get("charla_fanout_seconds_sum") > 0.0);
    assert_eq!(
        after.get("charla_fanout_seconds_bucket{le=\"+Inf\"}"),
        after.get("charla_fanout_seconds_count")
    );

    // The JSON client leaves: its connection and session are gone from the next scrape.
    drop(json);
    Scrape::until(http, |s| {
        s.get("charla_connections{protocol=\"json\"}") == 0.0 && s.get("charla_sessions") == 3.0
    })
    .await;
}

#[tokio::test]
async fn a_websocket_counts_as_one_once_upgraded() {
    let server = server(no_flood_control()).await;
    let http = server.http();
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{http}/ws?nick=web"))
        .await
        .unwrap();
    // The scrape's own connection is the only plain HTTP one, once an earlier scrape's is
    // gone.
    let scrape = Scrape::until(http, |s| {
        s.get("charla_sessions") == 1.0 && s.get("charla_connections{protocol=\"http\"}") == 1.0
    })
    .await;
    assert_eq!(
        scrape.get("charla_connections{protocol=\"websocket\"}"),
        1.0
    );
    ws.close(None).await.unwrap();
    Scrape::until(http, |s| {
        s.get("charla_connections{protocol=\"websocket\"}") == 0.0
            && s.get("charla_sessions") == 0.0
    })
    .await;
}

#[tokio::test]
async fn flood_refusals_and_kicks_are_counted() {
    let server = server(Limits {
        flood_burst: 2,
        flood_rate: 1,
        flood_kick_after: 3,
        ..Limits::default()
    })
    .await;
    let mut c = server.client().await;
    // Two pass on the burst; the next two are refused; the third refusal in a row ends it.
    c.send_raw(b"one\ntwo\nthree\nfour\nfive\n").await;
    let lines = c.until_closed().await;
    assert_eq!(
        lines.iter().filter(|l| l.contains("too fast")).count(),
        2,
        "{lines:#?}"
    );
    assert!(lines.last().unwrap().contains("flooding"), "{lines:#?}");
    let scrape = Scrape::of(server.http()).await;
    assert_eq!(scrape.get("charla_flood_refusals_total"), 2.0);
    assert_eq!(scrape.get("charla_flood_kicks_total"), 1.0);
}

#[tokio::test]
async fn a_send_queue_overflow_is_counted() {
    let server = server(Limits {
        send_queue_bytes: 4096,
        ..no_flood_control()
    })
    .await;
    let mut crowd = server.crowd(&["ana", "bob"]).await;
    // bob reads nothing more; ana talks until bob's queue is over its bound.
    let long = "x".repeat(1000);
    let mut rounds = 0;
    let scrape = loop {
        for _ in 0..64 {
            crowd[0].send(&long).await;
        }
        let scrape = Scrape::of(server.http()).await;
        if scrape.get("charla_send_queue_overflows_total") >= 1.0 {
            break scrape;
        }
        rounds += 1;
        assert!(rounds < 100, "bob was never cut off: {:#?}", scrape.0);
    };
    assert_eq!(scrape.get("charla_send_queue_overflows_total"), 1.0);
    assert_eq!(scrape.get("charla_sessions"), 1.0);
}

#[tokio::test]
async fn each_checks_state_is_shown() {
    // One check up (this listener accepts), one down (`false` fails).
    let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let options = FeedOptions {
        checks: vec![
            format!("db=tcp://{}", target.local_addr().unwrap())
                .parse::<CheckSpec>()
                .unwrap(),
            "backup=exec:false".parse().unwrap(),
        ],
        ..FeedOptions::default()
    };
    let limits = no_flood_control();
    let bound = server::bind(&["http://127.0.0.1:0".parse().unwrap()]).unwrap();
    let http = match bound[0].local_addr() {
        server::ListenAddr::Http(addr) => addr,
        other => panic!("{other}"),
    };
    let shutdown = CancellationToken::new();
    let hub = Hub::new(&limits);
    feeds::start(&hub, &options, shutdown.clone()).unwrap();
    tokio::spawn(server::run_with(
        hub,
        bound,
        Datagrams::default(),
        limits,
        shutdown.clone(),
    ));
    let state = |check: &str, state: &str| {
        format!("charla_check_state{{check=\"{check}\",state=\"{state}\"}}")
    };
    let scrape = Scrape::until(http, |s| {
        s.0.get(&state("db", "up")) == Some(&1.0) && s.0.get(&state("backup", "down")) == Some(&1.0)
    })
    .await;
    assert_eq!(scrape.get(&state("db", "down")), 0.0);
    assert_eq!(scrape.get(&state("backup", "up")), 0.0);
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_history_files_writes_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--listen",
        "http://127.0.0.1:0",
        "--data",
        dir.path().to_str().unwrap(),
    ];
    let (charla, tcp) = serve_with(&args, &[]);
    let http = next_listening(&charla, "http");
    for text in ["one", "two", "three"] {
        say_in_lobby(tcp, text).await;
    }
    let scrape = Scrape::until(http, |s| {
        s.0.get("charla_history_written_total") == Some(&3.0)
    })
    .await;
    assert_eq!(scrape.get("charla_history_lost_total"), 0.0);
    assert_eq!(scrape.get("charla_history_refused_total"), 0.0);
    stop(charla);
}
