//! The checks and heartbeats of every node as one server's: `/status` on one node lists
//! another's, `/ack` and `/silence` there act on them, and a job's call reaching any node
//! is taken by the one that runs its heartbeat. A real redis-server, real `charla serve
//! --cluster` processes, a real TCP service for the check, real clients.

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::binary::{self, Binary};
use crate::cluster::{Node, Redis, ask_until};
use crate::feeds::nc_u;
use crate::feeds_cli::run;
use crate::http::raw_within;
use crate::support::{Client, PATIENCE};

/// Node 1 checks a service of the test's own (`web`) and keeps a heartbeat that is soon
/// late (`tick`) and one that is not (`backup`); node 2 keeps none.
fn two_nodes(redis: &Redis, service: &TcpListener) -> (Node, Node) {
    let check = format!("web=tcp://{}", service.local_addr().unwrap());
    let n1 = Node::start_with(
        redis,
        "n1",
        &[
            "--check",
            &check,
            "--check-interval",
            "200ms",
            "--heartbeat",
            "tick=1s+500ms",
            "--heartbeat",
            "backup=1h",
        ],
    );
    let n2 = Node::start(redis, "n2");
    (n1, n2)
}

/// A text client of `node` in #alerts (and #lobby), past the status it is greeted with:
/// the node's own UDP listener and `checks` checks and heartbeats.
async fn in_alerts(node: &Node, nick: &str, checks: usize) -> Client {
    let mut c = node.text(nick).await;
    c.send("/join #alerts").await;
    c.expect("#alerts *** you joined").await;
    for _ in 0..=checks {
        c.expect("#alerts --- [").await;
    }
    c
}

/// Asks `c` (a JSON client) for #alerts' status until one of its items is as `wanted`
/// says: what another node runs is known a moment after it started (until its first
/// report, a room only that node has is no room here: `invalid_room`), and its changes a
/// moment after they happened there.
async fn status_until(c: &mut Client, wanted: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        c.send(r##"{"type":"status","room":"#alerts"}"##).await;
        let status = loop {
            let v = c.json().await;
            if v["type"] == "status" || v["type"] == "error" {
                break v;
            }
        };
        let items = status["items"].as_array();
        if items.is_some_and(|items| items.iter().any(&wanted)) {
            return status;
        }
        assert!(
            items.is_some() || status["code"] == "invalid_room",
            "not a status: {status}"
        );
        assert!(Instant::now() < deadline, "never as wanted: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reads `c` until it has had a line containing each of `needles`, in any order; returns
/// them in the order of `needles`.
async fn expect_each(c: &mut Client, needles: &[&str]) -> Vec<String> {
    let mut found: Vec<Option<String>> = vec![None; needles.len()];
    let mut seen = Vec::new();
    while found.iter().any(Option::is_none) {
        let line = c.line().await;
        match needles.iter().position(|n| line.contains(n)) {
            Some(at) if found[at].is_none() => found[at] = Some(line),
            _ => seen.push(line),
        }
        assert!(seen.len() < 50, "not all of {needles:?} in {seen:#?}");
    }
    found.into_iter().map(Option::unwrap).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn status_on_one_node_lists_the_checks_and_heartbeats_of_another() {
    let redis = Redis::start();
    let service = TcpListener::bind("127.0.0.1:0").unwrap();
    let (n1, n2) = two_nodes(&redis, &service);
    // JSON: the same fields as node 1's own, and which node runs each.
    let mut json = n2.json("cy").await;
    let status = status_until(&mut json, |i| i["check"] == "web" && i["state"] == "up").await;
    let items = status["items"].as_array().unwrap();
    let web = items.iter().find(|i| i["check"] == "web").expect("web");
    assert_eq!(web["node"], "n1", "{status}");
    assert_eq!(web["source"], "check:web", "{status}");
    assert!(web["responses"].is_string(), "{status}");
    assert!(web["since"].is_u64(), "{status}");
    let backup = items.iter().find(|i| i["heartbeat"] == "backup");
    assert_eq!(backup.expect("backup")["node"], "n1", "{status}");
    let udp = items.iter().find(|i| i["source"] == "udp").expect("udp");
    assert!(udp.get("node").is_none(), "{status}");

    // Text: node 2's own feed (its UDP listener) as before, node 1's saying so; a
    // newcomer to #alerts is greeted with them all.
    let mut bob = in_alerts(&n2, "bob", 3).await;
    bob.send("/status #alerts").await;
    let udp = bob.expect("#alerts --- [udp] ").await;
    assert!(!udp.contains("(on "), "{udp}");
    let mut lines = Vec::new();
    while lines.len() < 3 {
        lines.push(bob.expect("#alerts --- [").await);
    }
    lines.sort();
    assert!(
        lines[0].starts_with("#alerts --- [beat:backup] backup is waiting for its first call"),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("#alerts --- [beat:tick] tick is "),
        "{lines:?}"
    );
    assert!(
        lines[2].starts_with("#alerts --- [check:web] web is up (for "),
        "{lines:?}"
    );
    assert!(lines.iter().all(|l| l.ends_with(" (on n1)")), "{lines:?}");

    // On node 1 its own are marked too.
    let mut ana = n1.json("ana").await;
    ana.send(r##"{"type":"status","room":"#alerts"}"##).await;
    let own = ana.expect_json("status").await;
    let own = own["items"].as_array().unwrap();
    assert_eq!(
        own.iter().filter(|i| i["node"] == "n1").count(),
        3,
        "{own:?}"
    );
}

/// A `charla serve --cluster` process with a text listener alone: no HTTP or UDP listener
/// opens #alerts there, so it has that room only once someone joins it.
struct TextOnly {
    process: Binary,
    tcp: SocketAddr,
}

impl TextOnly {
    fn start(redis: &Redis, name: &str) -> TextOnly {
        let url = redis.url();
        let args = [
            "serve",
            "--listen",
            "tcp://127.0.0.1:0",
            "--cluster",
            &url,
            "--node-name",
            name,
            "--flood-rate",
            "0",
        ];
        let process = Binary::start(binary::command(&args));
        let line = process
            .stdout
            .recv_timeout(PATIENCE)
            .expect("a `listening on` line");
        let tcp = line
            .strip_prefix("listening on tcp://")
            .unwrap_or_else(|| panic!("unexpected output {line:?}"))
            .parse()
            .unwrap();
        TextOnly { process, tcp }
    }
}

impl Drop for TextOnly {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.process.child.kill();
            let _ = self.process.child.wait();
            eprintln!(
                "--- the text-only node logged ---\n{}",
                self.process.stderr()
            );
        }
    }
}

/// `/status #alerts` on a node that never had #alerts lists what the other nodes' checks
/// and heartbeats post there, in text and JSON; a room only another node's members are in
/// has nothing to report, and a room no node has is refused.
#[tokio::test(flavor = "multi_thread")]
async fn status_of_a_room_only_another_nodes_checks_post_to() {
    let redis = Redis::start();
    let service = TcpListener::bind("127.0.0.1:0").unwrap();
    let (n1, _n2) = two_nodes(&redis, &service);
    let n3 = TextOnly::start(&redis, "n3");

    let mut json = Client::tcp(n3.tcp).await;
    json.expect("*** Welcome").await;
    json.send(r##"{"type":"hello","nick":"cy","rooms":["#lobby"]}"##)
        .await;
    json.expect_json("welcome").await;
    // Refused as unknown only until node 1's first report reached node 3.
    let asked = r##"{"type":"status","room":"#alerts"}"##;
    ask_until(&mut json, asked, r#""type":"status""#).await;
    let status = status_until(&mut json, |i| i["check"] == "web" && i["state"] == "up").await;
    assert_eq!(status["room"], "#alerts", "{status}");
    let items = status["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{status}");
    assert!(items.iter().all(|i| i["node"] == "n1"), "{status}");

    let mut bob = Client::tcp(n3.tcp).await;
    bob.expect("you joined").await;
    bob.send("/status #alerts").await;
    let mut lines = Vec::new();
    while lines.len() < 3 {
        lines.push(bob.expect("#alerts --- [").await);
    }
    lines.sort();
    assert!(
        lines[0].starts_with("#alerts --- [beat:backup] "),
        "{lines:?}"
    );
    assert!(
        lines[2].starts_with("#alerts --- [check:web] web is up"),
        "{lines:?}"
    );
    assert!(lines.iter().all(|l| l.ends_with(" (on n1)")), "{lines:?}");

    bob.send("/status #nowhere").await;
    bob.expect("ERROR invalid_room: there is no #nowhere").await;
    let mut ana = n1.text("ana").await;
    ana.send("/join #ops").await;
    ana.expect("#ops *** you joined").await;
    ask_until(
        &mut bob,
        "/status #ops",
        "#ops *** nothing to report: no feed here",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ack_and_silence_on_one_node_act_on_anothers_check_and_heartbeat() {
    let mut redis = Redis::start();
    let service = TcpListener::bind("127.0.0.1:0").unwrap();
    let (n1, n2) = two_nodes(&redis, &service);
    let mut watch = n2.json("watch").await;
    status_until(&mut watch, |i| {
        i["heartbeat"] == "tick" && i["state"] == "late"
    })
    .await;
    status_until(&mut watch, |i| i["check"] == "web" && i["state"] == "up").await;
    let mut bob = in_alerts(&n2, "bob", 3).await;
    let mut ana = in_alerts(&n1, "ana", 3).await;

    bob.send("/ack tick on it").await;
    let told = ana.expect("bob acknowledged tick, LATE for ").await;
    assert!(
        told.starts_with("#alerts >>> [beat:tick] ") && told.ends_with(": on it"),
        "{told}"
    );
    // Node 2's members hear the announcement as any post, and bob is answered as on node
    // 1, once node 1 did it.
    let heard = expect_each(&mut bob, &["#alerts --- [beat:tick] ", "bob acknowledged"]).await;
    assert!(heard[0].contains("tick is LATE"), "{heard:?}");
    assert!(
        heard[0].ends_with("[acknowledged by bob] (on n1)"),
        "{heard:?}"
    );
    assert_eq!(heard[1], told, "{heard:?}");

    bob.send("/silence web 1h maintenance").await;
    let heard = expect_each(&mut bob, &["#alerts --- [check:web] ", "bob silenced web"]).await;
    assert!(heard[0].contains("[silenced by bob for "), "{heard:?}");
    ana.expect("bob silenced web for 1h: maintenance").await;
    bob.send("/unsilence web").await;
    let heard = expect_each(&mut bob, &["#alerts --- [check:web] ", "ended the silence"]).await;
    assert!(
        heard[0].starts_with("#alerts --- [check:web] web is up") && !heard[0].contains("silenced"),
        "{heard:?}"
    );
    ana.expect("bob ended the silence on web: web is up").await;

    // IRC's server commands too.
    let mut dee = n2.irc("dee").await;
    dee.send("JOIN #alerts\r\n").await;
    dee.expect(" 366 ").await;
    dee.send("SILENCE web 30m from irc\r\n").await;
    let heard = expect_each(
        &mut dee,
        &["NOTICE #alerts :--- web is up", "dee silenced web for 30m"],
    )
    .await;
    assert!(
        heard[0].contains("[silenced by dee for ") && heard[0].contains(": from irc]"),
        "{heard:?}"
    );
    ana.expect("dee silenced web for 30m: from irc").await;
    dee.send("UNSILENCE web\r\n").await;
    ana.expect("dee ended the silence on web").await;

    // Refused as on the node that runs it, and names no node runs are refused.
    bob.send("/ack web").await;
    bob.expect("ERROR invalid_argument: web is not down: nothing to acknowledge")
        .await;
    bob.send("/unsilence web").await;
    bob.expect("ERROR invalid_argument: web is not silenced")
        .await;
    bob.send("/ack nope").await;
    let refused = bob
        .expect("ERROR invalid_argument: no check or heartbeat named \"nope\"")
        .await;
    assert!(refused.contains("no other live node runs it"), "{refused}");
    // Someone outside #alerts may not.
    let mut cy = n2.text("cy").await;
    cy.send("/ack tick").await;
    cy.expect("ERROR not_in_room: join #alerts to act on its alerts")
        .await;

    // Redis gone: node 2 cannot know, and says so; a job's HTTP call too. (A call sent
    // before node 2 noticed is answered that node 1 did not answer.)
    redis.stop();
    let refused = refused_until(
        &mut bob,
        "/unsilence tick",
        "ERROR cluster_unreachable: no check or heartbeat named \"tick\"",
        &[
            "ERROR invalid_argument: tick is not silenced",
            "ERROR cluster_unreachable: no answer from n1 within 5s",
        ],
    )
    .await;
    assert!(
        refused.contains("the other nodes are out of reach"),
        "{refused}"
    );
    let answer = raw_within(n2.http, "POST /beat/tick HTTP/1.1", b"", PATIENCE).await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert_eq!(answer.json()["code"], "cluster_unreachable");
}

/// Sends `line` until `c` is refused with an error starting `error`, the refusals before
/// it being among `before` (those of a node that has not noticed yet); returns it.
async fn refused_until(c: &mut Client, line: &str, error: &str, before: &[&str]) -> String {
    let deadline = Instant::now() + 2 * PATIENCE;
    loop {
        c.send(line).await;
        let refused = c.expect("ERROR ").await;
        if refused.starts_with(error) {
            return refused;
        }
        assert!(
            before.iter().any(|b| refused.starts_with(b)) && Instant::now() < deadline,
            "{refused}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_beat_sent_to_one_node_reaches_the_heartbeat_another_runs() {
    let redis = Redis::start();
    let service = TcpListener::bind("127.0.0.1:0").unwrap();
    let (n1, n2) = two_nodes(&redis, &service);
    let mut watch = n2.json("watch").await;
    status_until(&mut watch, |i| i["heartbeat"] == "tick").await;
    let mut ana = in_alerts(&n1, "ana", 3).await;
    let mut bob = in_alerts(&n2, "bob", 3).await;

    // UDP: nobody answers, node 1's heartbeat is up again.
    status_until(&mut watch, |i| {
        i["heartbeat"] == "tick" && i["state"] == "late"
    })
    .await;
    nc_u(n2.udp, b"beat tick\n");
    ana.expect("tick is UP again: called in").await;

    // HTTP: answered with node 1's status.
    ana.expect("!!! [beat:tick] tick is LATE").await;
    let answer = raw_within(n2.http, "POST /beat/tick HTTP/1.1", b"", PATIENCE).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let status = answer.json();
    assert_eq!(status["items"][0]["heartbeat"], "tick", "{status}");
    assert_eq!(status["items"][0]["state"], "up", "{status}");
    assert_eq!(status["items"][0]["node"], "n1", "{status}");
    ana.expect("tick is UP again: called in").await;
    let unknown = raw_within(n2.http, "POST /beat/nope HTTP/1.1", b"", PATIENCE).await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert_eq!(unknown.json()["code"], "no_such_heartbeat");

    // `charla send --beat`: the job's command prints node 1's state.
    let addr = format!("tcp://{}", n2.tcp);
    let sent =
        tokio::task::spawn_blocking(move || run(&["send", "--addr", &addr, "--beat", "backup"]))
            .await
            .unwrap();
    assert!(sent.status.success(), "{sent:?}");
    let printed = String::from_utf8_lossy(&sent.stdout);
    assert!(printed.contains("backup is up"), "{printed}");
    // Node 1 reported the change at once.
    status_until(&mut watch, |i| {
        i["heartbeat"] == "backup" && i["state"] == "up"
    })
    .await;

    // A datagram naming no heartbeat on any node is posted as text, as on a node alone.
    nc_u(n2.udp, b"beat nope\n");
    bob.expect("[udp:127.0.0.1] beat nope").await;
}

/// Reads `c` up to the line labeled `label` (IRCv3 labeled-response) and returns it; no
/// other line may carry that label, nor any an earlier label in `done`.
async fn labeled(c: &mut Client, label: &str, done: &[&str]) -> String {
    loop {
        let line = c.line().await;
        assert!(
            !done
                .iter()
                .any(|d| line.starts_with(&format!("@label={d} "))),
            "{line}"
        );
        if line.starts_with(&format!("@label={label} ")) {
            return line;
        }
        assert!(!line.contains(&format!("label={label}")), "{line}");
    }
}

/// IRC's `SILENCE`, `UNSILENCE` and `ACK` sent with a label and taken by another node are
/// answered with that label once it answered, not acknowledged at once; on the node that
/// runs the check, the answer is labeled as ever.
#[tokio::test(flavor = "multi_thread")]
async fn a_labeled_call_another_node_takes_is_answered_with_its_label() {
    let redis = Redis::start();
    let service = TcpListener::bind("127.0.0.1:0").unwrap();
    let (n1, n2) = two_nodes(&redis, &service);
    let mut watch = n2.json("watch").await;
    status_until(&mut watch, |i| i["check"] == "web" && i["state"] == "up").await;
    let mut dee = n2.irc_with("dee", "batch labeled-response").await;
    dee.send("JOIN #alerts\r\n").await;
    dee.expect(" 366 ").await;

    dee.send("@label=s1 SILENCE web 30m from irc\r\n").await;
    let answer = labeled(&mut dee, "s1", &[]).await;
    assert!(
        answer.contains(" NOTICE #alerts :--- web is up")
            && answer.contains("[silenced by dee for "),
        "{answer}"
    );
    dee.send("@label=u1 UNSILENCE web\r\n").await;
    let answer = labeled(&mut dee, "u1", &["s1"]).await;
    assert!(
        answer.contains(" NOTICE #alerts :--- web is up") && !answer.contains("silenced"),
        "{answer}"
    );
    // The node that runs it, as text says it.
    assert!(answer.contains(" (on n1)"), "{answer}");
    // Refused by node 1: the refusal is labeled.
    dee.send("@label=a1 ACK web\r\n").await;
    let refused = labeled(&mut dee, "a1", &["s1", "u1"]).await;
    assert!(refused.contains("web is not down"), "{refused}");
    // Nothing more carries those labels.
    dee.send("@label=p1 PING done\r\n").await;
    let pong = labeled(&mut dee, "p1", &["s1", "u1", "a1"]).await;
    assert!(pong.contains(" PONG "), "{pong}");

    // On node 1, which runs it, answered at once, labeled.
    let mut ana = n1.irc_with("ana", "batch labeled-response").await;
    ana.send("JOIN #alerts\r\n").await;
    ana.expect(" 366 ").await;
    ana.send("@label=s2 SILENCE web 1m\r\n").await;
    let answer = labeled(&mut ana, "s2", &[]).await;
    assert!(
        answer.contains(" NOTICE #alerts :--- web is up") && answer.contains("[silenced by ana"),
        "{answer}"
    );
}

/// Another node's name comes from Redis: one that is not a node name (`--node-name`'s
/// rule), control characters or a name as long as a payload, is never shown; the node's
/// number is, and its report is read as ever.
#[tokio::test]
async fn a_bad_node_name_read_from_redis_is_shown_as_its_number() {
    let redis = Redis::start();
    let mut one = Node::start(&redis, "one");
    let mut json = one.json("cy").await;
    let beat = "0\n{\"t\":\"beat\",\"node\":9,\"run\":\"0123456789abcdef\"}";
    let long = "a".repeat(60 * 1024);
    for (name, check) in [(r"evil\u0007\u001b[2J: name", "web"), (&long[..], "db")] {
        let report = format!(
            "0\n{{\"t\":\"alerts\",\"node\":9,\"name\":\"{name}\",\"report\":1,\"items\":[{{\"room\":\"#alerts\",\"source\":\"check:{check}\",\"alert\":false,\"text\":\"{check} is up\",\"fields\":[[\"check\",\"{check}\"]]}}],\"last\":true}}"
        );
        let deadline = Instant::now() + PATIENCE;
        let item = loop {
            // Beating, node 9 is live: its report is listed.
            assert!(
                !redis
                    .command(&["PUBLISH", "charla:bus", beat])
                    .starts_with('-')
            );
            assert!(
                !redis
                    .command(&["PUBLISH", "charla:bus", &report])
                    .starts_with('-')
            );
            json.send(r##"{"type":"status","room":"#alerts"}"##).await;
            let status = loop {
                let v = json.json().await;
                if v["type"] == "status" || v["type"] == "error" {
                    break v;
                }
            };
            let found = status["items"]
                .as_array()
                .and_then(|items| items.iter().find(|i| i["check"] == check).cloned());
            if let Some(item) = found {
                break item;
            }
            assert!(Instant::now() < deadline, "never listed: {status}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(item["node"], "node 9", "{item}");
    }
    // Logged once, however many reports named it so.
    let pid = nix::unistd::Pid::from_raw(one.process.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    one.process.exit_status();
    let logged = one.process.stderr();
    assert_eq!(logged.matches("is not a node name").count(), 1, "{logged}");
}
