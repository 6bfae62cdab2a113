//! A check and a heartbeat that every node has (the same configuration on every node) are
//! run by one node at a time, the holder of their lease in Redis: one alert per change in
//! the room, one line in `/status`, beats taken by the holder; when it dies, another node
//! takes them over. A real redis-server, real `charla serve --cluster` processes, a real
//! TCP service for the check, real clients.

use std::net::TcpListener;
use std::time::Instant;

use serde_json::Value;

use crate::cluster::{Node, Redis};
use crate::http::raw_within;
use crate::support::{Client, PATIENCE};

/// A node checking `web` (the test's service at `target`) and keeping the heartbeat
/// `backup`, as every node of the test does.
fn node(redis: &Redis, name: &str, target: &str) -> Node {
    let check = format!("web=tcp://{target}");
    Node::start_with(
        redis,
        name,
        &[
            "--check",
            &check,
            "--check-interval",
            "200ms",
            "--check-retries",
            "1",
            "--heartbeat",
            "backup=1h",
        ],
    )
}

/// A JSON client of `node` in #alerts.
async fn in_alerts(node: &Node, nick: &str) -> Client {
    let mut c = Client::tcp(node.tcp).await;
    c.expect("*** Welcome").await;
    c.send(&format!(
        r##"{{"type":"hello","nick":"{nick}","rooms":["#alerts"]}}"##
    ))
    .await;
    c.expect_json("welcome").await;
    c
}

/// Asks `c` for #alerts' status until `wanted` holds of its items; returns them. The
/// alerts `c` hears meanwhile go to `heard`.
async fn status_heard(
    c: &mut Client,
    heard: &mut Vec<Value>,
    wanted: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + PATIENCE * 2;
    loop {
        c.send(r##"{"type":"status","room":"#alerts"}"##).await;
        let status = loop {
            let event: Value = serde_json::from_str(&c.line().await).unwrap();
            match event["type"].as_str() {
                Some("status") => break event,
                Some("alert") => heard.push(event),
                _ => {}
            }
        };
        let items = status["items"].as_array().unwrap().clone();
        if wanted(&items) {
            return items;
        }
        assert!(Instant::now() < deadline, "never as wanted: {status}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// [`status_heard`], what is heard meanwhile not looked at.
async fn status_until(c: &mut Client, wanted: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    status_heard(c, &mut Vec::new(), wanted).await
}

/// The items of `items` for the check or heartbeat `name`.
fn named<'a>(items: &'a [Value], key: &str, name: &str) -> Vec<&'a Value> {
    items.iter().filter(|i| i[key] == name).collect()
}

/// Reads `c` up to the event `last` holds of; returns the alerts before it, and it.
async fn alerts_until(c: &mut Client, last: impl Fn(&Value) -> bool) -> (Vec<Value>, Value) {
    let mut alerts = Vec::new();
    loop {
        let event: Value = serde_json::from_str(&c.line().await).unwrap();
        if last(&event) {
            return (alerts, event);
        }
        if event["type"] == "alert" {
            alerts.push(event);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_check_every_node_has_is_run_once_and_taken_over_when_its_node_dies() {
    let redis = Redis::start();
    let service = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = service.local_addr().unwrap().to_string();
    let mut nodes = vec![node(&redis, "n1", &target), node(&redis, "n2", &target)];
    let mut ana = in_alerts(&nodes[0], "ana").await;
    let mut bob = in_alerts(&nodes[1], "bob").await;

    // Up, listed once on each node, by the node that holds its lease.
    let mut runner = String::new();
    for c in [&mut ana, &mut bob] {
        let items = status_until(c, |items| {
            let web = named(items, "check", "web");
            let backup = named(items, "heartbeat", "backup");
            web.len() == 1 && web[0]["state"] == "up" && backup.len() == 1
        })
        .await;
        let web = named(&items, "check", "web")[0]["node"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(runner.is_empty() || runner == web, "{items:?}");
        runner = web;
    }
    let running = if runner == "n1" { 0 } else { 1 };

    // Down: one alert in #alerts, heard once on each node.
    let mut down_since = Value::Null;
    drop(service);
    let web_down = |e: &Value| e["type"] == "alert" && e["check"] == "web" && e["state"] == "down";
    for c in [&mut ana, &mut bob] {
        let (before, down) = alerts_until(c, web_down).await;
        assert!(before.iter().all(|a| a["check"] != "web"), "{before:?}");
        assert_eq!(down["node"], runner.as_str(), "{down}");
    }
    ana.send(r##"{"type":"say","room":"#alerts","text":"seen"}"##)
        .await;
    // Ana's message is acknowledged to her, and heard by bob, after what came before it.
    let ack = |e: &Value| e["type"] == "ack";
    let seen = |e: &Value| e["type"] == "message" && e["text"] == "seen";
    let heard = [
        alerts_until(&mut ana, ack).await.0,
        alerts_until(&mut bob, seen).await.0,
    ];
    for alerts in heard {
        assert!(alerts.iter().all(|a| a["check"] != "web"), "{alerts:?}");
    }
    for c in [&mut ana, &mut bob] {
        let items = status_until(c, |items| {
            named(items, "check", "web")
                .first()
                .is_some_and(|w| w["state"] == "down")
        })
        .await;
        let web = named(&items, "check", "web");
        assert_eq!(web.len(), 1, "{items:?}");
        assert_eq!(web[0]["node"], runner.as_str(), "{items:?}");
        down_since = web[0]["since"].clone();
    }

    // A beat on either node is taken by the holder of the heartbeat's lease alone.
    let items = status_until(&mut ana, |items| {
        named(items, "heartbeat", "backup").len() == 1
    })
    .await;
    let keeper = named(&items, "heartbeat", "backup")[0]["node"].clone();
    for node in &nodes {
        let answer = raw_within(node.http, "POST /beat/backup HTTP/1.1", b"", PATIENCE).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let items = answer.json()["items"].as_array().unwrap().clone();
        assert_eq!(items.len(), 1, "{items:?}");
        assert_eq!(items[0]["node"], keeper, "{items:?}");
    }

    // The running node dies without a word: the other takes the check and the heartbeat
    // over, goes on from the check's last reported state (DOWN, since then, not said
    // again), and lists them as its own.
    let survivor = if running == 0 { "n2" } else { "n1" };
    let mut dead = nodes.remove(running);
    dead.process.child.kill().unwrap(); // SIGKILL: its leases are left to expire
    dead.process.child.wait().unwrap();
    let mut watcher = if running == 0 { bob } else { ana };
    let mut heard = Vec::new();
    let items = status_heard(&mut watcher, &mut heard, |items| {
        let web = named(items, "check", "web");
        let backup = named(items, "heartbeat", "backup");
        web.len() == 1
            && web[0]["node"] == survivor
            && web[0]["state"] != "unknown"
            && backup.len() == 1
            && backup[0]["node"] == survivor
    })
    .await;
    let web = named(&items, "check", "web")[0];
    assert_eq!(web["state"], "down", "{items:?}");
    assert_eq!(web["since"], down_since, "{items:?}");
    watcher
        .send(r##"{"type":"say","room":"#alerts","text":"still down"}"##)
        .await;
    heard.extend(alerts_until(&mut watcher, |e| e["type"] == "ack").await.0);
    assert!(heard.iter().all(|a| a["check"] != "web"), "{heard:?}");

    // Its beats keep working after the takeover.
    let answer = raw_within(nodes[0].http, "POST /beat/backup HTTP/1.1", b"", PATIENCE).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let status = answer.json();
    assert_eq!(status["items"][0]["node"], survivor, "{status}");
    assert_eq!(status["items"][0]["state"], "up", "{status}");
}

/// A node shut down lets go of its leases on its way out: the other node takes its check
/// and heartbeat over without waiting for them to expire. A key under `charla:runs:` that
/// is no lease is skipped, and its name run by nobody in the cluster, until it is gone.
#[tokio::test(flavor = "multi_thread")]
async fn a_node_shut_down_lets_go_of_its_leases() {
    let redis = Redis::start();
    let service = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = service.local_addr().unwrap().to_string();
    // Bad data where the lease of `backup` would be: a list, not a string.
    redis.command(&["RPUSH", "charla:runs:backup", "junk"]);
    let mut nodes = vec![node(&redis, "n1", &target), node(&redis, "n2", &target)];
    let mut ana = in_alerts(&nodes[0], "ana").await;
    let items = status_until(&mut ana, |items| named(items, "check", "web").len() == 1).await;
    assert!(named(&items, "heartbeat", "backup").is_empty(), "{items:?}");
    let runner = named(&items, "check", "web")[0]["node"]
        .as_str()
        .unwrap()
        .to_string();
    redis.command(&["DEL", "charla:runs:backup"]);
    status_until(&mut ana, |items| {
        named(items, "heartbeat", "backup").len() == 1
    })
    .await;

    let running = if runner == "n1" { 0 } else { 1 };
    let (survivor, number) = if running == 0 {
        ("n2", "2")
    } else {
        ("n1", "1")
    };
    let mut leaving = nodes.remove(running);
    let pid = nix::unistd::Pid::from_raw(leaving.process.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    leaving.process.child.wait().unwrap();
    // Gone from Redis with the node, or already the other's: never left to expire.
    let held = redis.command(&["GET", "charla:runs:web"]);
    assert!(
        held == "$-1\r\n" || held.contains(&format!("\r\n{number}:")),
        "{held:?}"
    );
    let mut watcher = in_alerts(&nodes[0], "bob").await;
    status_until(&mut watcher, |items| {
        let web = named(items, "check", "web");
        let backup = named(items, "heartbeat", "backup");
        web.len() == 1 && web[0]["node"] == survivor && backup.len() == 1
    })
    .await;
}
