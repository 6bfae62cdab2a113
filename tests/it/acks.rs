//! Every message the server accepted is acked before its sender's connection closes, however
//! the session ends — put out for flooding, its own `quit`, an idle timeout, a send queue
//! that overflowed, the server shutting down — while the history file (or Redis, in a
//! cluster) confirms it within the grace (`ACK_GRACE`). Real `charla serve` processes with
//! `--data`, real sockets; the history file's write lock taken by the test holds the acks
//! back, so the session always ends with acks still owed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpSocket;

use crate::binary::Binary;
use crate::cluster::{Node, Redis};
use crate::store::{json_client, serve_with};
use crate::support::{Client, PATIENCE, QUIET};

/// How long the test holds the acks back after the session ended: well within the grace.
const HELD: Duration = Duration::from_millis(500);

/// `charla serve --data` in `dir`, with `args` besides.
fn serve(dir: &Path, args: &[&str]) -> (Binary, SocketAddr, PathBuf) {
    let data = dir.join("data");
    let mut all = vec!["--data", data.to_str().unwrap()];
    all.extend_from_slice(args);
    let (charla, addr) = serve_with(&all, &[]);
    (charla, addr, data.join("charla.db"))
}

/// The history file's write lock, taken by a connection of the test's own, which holds
/// every ack back: the writer commits to its commit file and acks at once, but a quarter
/// of a second later (`MERGE_INTERVAL`) it moves what it committed into the database, and
/// while the lock is held it waits there (its busy timeout, 5 s, is longer than any hold
/// here), committing nothing more.
struct WriteLock(rusqlite::Connection);

impl WriteLock {
    /// Takes the lock and has `primer` (a JSON client in #lobby) say something, so that
    /// the writer has a move to be stuck in; returns once another line of `primer`'s is
    /// seen not to be acked.
    async fn take(db: &Path, primer: &mut Client) -> WriteLock {
        let conn = rusqlite::Connection::open(db).unwrap();
        conn.busy_timeout(PATIENCE).unwrap();
        conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        let say = |text: &str| json!({"type": "say", "room": "#lobby", "text": text}).to_string();
        primer.send(&say("primer")).await;
        primer.expect_json("ack").await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        primer.send(&say("held")).await;
        if let Ok(Some(line)) = primer.next_within(QUIET).await {
            assert!(!line.contains(r#""type":"ack""#), "not held back: {line}");
        }
        WriteLock(conn)
    }

    /// Lets go after `after`, on a thread of its own.
    fn release_after(self, after: Duration) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            std::thread::sleep(after);
            self.0.execute_batch("ROLLBACK").unwrap();
        })
    }
}

/// `n` JSON `say` lines in #lobby, each text also its `ref`, as one write.
fn says(from: usize, n: usize) -> (String, Vec<String>) {
    let texts: Vec<String> = (from..from + n).map(|i| format!("m{i}")).collect();
    let lines = texts
        .iter()
        .map(|t| json!({"type": "say", "room": "#lobby", "text": t, "ref": t}).to_string() + "\n")
        .collect();
    (lines, texts)
}

/// What `listener` heard `nick` say in #lobby until `nick` left or the server said goodbye.
async fn heard_from(listener: &mut Client, nick: &str) -> Vec<String> {
    let mut heard = Vec::new();
    loop {
        let event = listener.json().await;
        match event["type"].as_str() {
            Some("message") if event["from"] == nick => {
                heard.push(event["text"].as_str().unwrap().to_string());
            }
            Some("leave") if event["nick"] == nick => return heard,
            Some("bye") => return heard,
            _ => {}
        }
    }
}

/// Every JSON line the connection carried until the server closed it.
async fn to_the_end(c: &mut Client) -> Vec<Value> {
    c.until_closed()
        .await
        .iter()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

/// The connection's last line is a `bye` with `reason`, and before it each of `heard` (the
/// texts the room heard, each its message's `ref`) got exactly one `ack`, in order, and
/// nothing was refused but for flooding.
fn acked_before_bye(lines: &[Value], heard: &[String], reason: &str) {
    let shown = || {
        lines
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    };
    let last = lines.last().unwrap_or_else(|| panic!("no lines"));
    assert_eq!(last["type"], "bye", "the last line:\n{}", shown());
    assert_eq!(last["reason"], reason, "{}", shown());
    let acked: Vec<&str> = lines
        .iter()
        .filter(|l| l["type"] == "ack")
        .map(|l| l["ref"].as_str().expect("an ack with its ref"))
        .collect();
    assert_eq!(acked, heard, "the acks before the bye:\n{}", shown());
    for line in lines.iter().filter(|l| l["type"] == "error") {
        assert_eq!(line["code"], "flood", "{}", shown());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flooder_put_out_gets_the_acks_of_what_was_accepted_before_its_goodbye() {
    let dir = tempfile::tempdir().unwrap();
    // Flood control as it comes: 20 lines at once, then 20 refused put the sender out.
    let (charla, addr, db) = serve(dir.path(), &[]);
    let mut bob = json_client(addr, "bob").await;
    let mut ana = json_client(addr, "ana").await;
    let lock = WriteLock::take(&db, &mut bob).await;
    let (lines, _) = says(0, 60);
    ana.send_raw(lines.as_bytes()).await;
    let released = lock.release_after(HELD);
    let heard = heard_from(&mut bob, "ana").await;
    assert!(heard.len() >= 10, "the burst was accepted: {heard:?}");
    let lines = to_the_end(&mut ana).await;
    acked_before_bye(&lines, &heard, "flooding");
    released.join().unwrap();
    crate::store::stop(charla);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flooder_put_out_while_the_writer_keeps_up_gets_every_ack() {
    // No lock held: the writer commits as fast as it can, and the sender is put out in the
    // same read as its last accepted lines, before their commit.
    let dir = tempfile::tempdir().unwrap();
    let (charla, addr, _) = serve(dir.path(), &[]);
    let mut bob = json_client(addr, "bob").await;
    let mut ana = json_client(addr, "ana").await;
    let (lines, _) = says(0, 60);
    ana.send_raw(lines.as_bytes()).await;
    let heard = heard_from(&mut bob, "ana").await;
    let lines = to_the_end(&mut ana).await;
    acked_before_bye(&lines, &heard, "flooding");
    crate::store::stop(charla);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_quit_right_after_saying_waits_for_the_acks() {
    let dir = tempfile::tempdir().unwrap();
    let (charla, addr, db) = serve(dir.path(), &["--flood-rate", "0"]);
    let mut bob = json_client(addr, "bob").await;
    let mut ana = json_client(addr, "ana").await;
    let lock = WriteLock::take(&db, &mut bob).await;
    let (lines, texts) = says(0, 5);
    let quit = json!({"type": "quit", "message": "done"}).to_string();
    ana.send_raw(format!("{lines}{quit}\n").as_bytes()).await;
    let released = lock.release_after(HELD);
    assert_eq!(heard_from(&mut bob, "ana").await, texts);
    let lines = to_the_end(&mut ana).await;
    acked_before_bye(&lines, &texts, "quit");
    released.join().unwrap();
    crate::store::stop(charla);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sender_that_half_closes_still_gets_its_acks() {
    // `printf '…' | nc`: the input ends, the client still reads.
    let dir = tempfile::tempdir().unwrap();
    let (charla, addr, db) = serve(dir.path(), &["--flood-rate", "0"]);
    let mut bob = json_client(addr, "bob").await;
    let mut ana = json_client(addr, "ana").await;
    let lock = WriteLock::take(&db, &mut bob).await;
    let (lines, texts) = says(0, 5);
    ana.send_raw(lines.as_bytes()).await;
    ana.close_write().await;
    let released = lock.release_after(HELD);
    assert_eq!(heard_from(&mut bob, "ana").await, texts);
    let lines = to_the_end(&mut ana).await;
    acked_before_bye(&lines, &texts, "connection_lost");
    released.join().unwrap();
    crate::store::stop(charla);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_timeout_waits_for_the_acks() {
    let dir = tempfile::tempdir().unwrap();
    let (charla, addr, db) = serve(dir.path(), &["--flood-rate", "0", "--idle-timeout", "1"]);
    let mut bob = json_client(addr, "bob").await;
    let lock = WriteLock::take(&db, &mut bob).await;
    // After the lock, which takes longer than the idle timeout.
    let mut ana = json_client(addr, "ana").await;
    let (lines, texts) = says(0, 3);
    ana.send_raw(lines.as_bytes()).await;
    // Held past the idle timeout (1 s of silence), released within the grace.
    let released = lock.release_after(Duration::from_millis(1_500));
    let lines = to_the_end(&mut ana).await;
    acked_before_bye(&lines, &texts, "timed_out");
    released.join().unwrap();
    crate::store::stop(charla);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_shutting_down_sends_the_acks_before_its_goodbye() {
    let dir = tempfile::tempdir().unwrap();
    let (mut charla, addr, db) = serve(dir.path(), &["--flood-rate", "0"]);
    let mut bob = json_client(addr, "bob").await;
    let mut ana = json_client(addr, "ana").await;
    let lock = WriteLock::take(&db, &mut bob).await;
    let (lines, texts) = says(0, 5);
    ana.send_raw(lines.as_bytes()).await;
    for text in &texts {
        assert_eq!(bob.expect_json("message").await["text"], *text);
    }
    let status = std::process::Command::new("kill")
        .args(["-TERM", &charla.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let released = lock.release_after(HELD);
    let lines = to_the_end(&mut ana).await;
    acked_before_bye(&lines, &texts, "server_shutdown");
    released.join().unwrap();
    let status = charla.exit_status();
    assert!(status.success(), "{status}: {}", charla.stderr());
}

#[tokio::test(flavor = "multi_thread")]
async fn acks_not_confirmed_within_the_grace_are_said_to_be_unconfirmed() {
    let dir = tempfile::tempdir().unwrap();
    let (charla, addr, db) = serve(dir.path(), &["--flood-rate", "0"]);
    let mut bob = json_client(addr, "bob").await;
    let mut ana = json_client(addr, "ana").await;
    let lock = WriteLock::take(&db, &mut bob).await;
    let (lines, texts) = says(0, 3);
    let quit = json!({"type": "quit"}).to_string();
    ana.send_raw(format!("{lines}{quit}\n").as_bytes()).await;
    assert_eq!(heard_from(&mut bob, "ana").await, texts);
    let started = std::time::Instant::now();
    // Held past the grace (2 s) but not past the writer's busy timeout (5 s).
    let released = lock.release_after(Duration::from_millis(2_700));
    let lines = to_the_end(&mut ana).await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1_500) && waited < Duration::from_millis(2_900),
        "closed after {waited:?}"
    );
    let [unconfirmed, bye] = &lines[lines.len() - 2..] else {
        unreachable!()
    };
    assert_eq!(bye["type"], "bye", "{lines:?}");
    assert_eq!(bye["reason"], "quit", "{lines:?}");
    assert_eq!(unconfirmed["type"], "error", "{lines:?}");
    assert_eq!(unconfirmed["code"], "unconfirmed", "{lines:?}");
    let message = unconfirmed["message"].as_str().unwrap();
    assert!(message.starts_with("3 of your messages"), "{message}");
    assert!(!lines.iter().any(|l| l["type"] == "ack"), "{lines:?}");
    released.join().unwrap();
    // They were kept all the same, once the writer could commit (bob's primer too).
    let mut eve = json_client(addr, "eve").await;
    eve.send(r##"{"type":"history","room":"#lobby"}"##).await;
    let history = eve.expect_json("history").await;
    let kept: Vec<&str> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .filter(|text| text.starts_with('m'))
        .collect();
    assert_eq!(kept, texts);
    crate::store::stop(charla);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_consumer_cut_off_still_gets_its_acks_behind_what_was_queued() {
    let dir = tempfile::tempdir().unwrap();
    let (charla, addr, db) = serve(dir.path(), &["--flood-rate", "0", "--send-queue", "16384"]);
    let mut bob = json_client(addr, "bob").await;
    // Ana reads nothing until she is cut off: a small receive buffer fills at once.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    let (read, mut write) = stream.into_split();
    let hello = json!({"type": "hello", "nick": "ana", "rooms": ["#lobby"]}).to_string();
    write
        .write_all(format!("{hello}\n").as_bytes())
        .await
        .unwrap();
    let joined = bob.expect_json("join").await;
    assert_eq!(joined["nick"], "ana");
    let lock = WriteLock::take(&db, &mut bob).await;
    let (lines, texts) = says(0, 3);
    write.write_all(lines.as_bytes()).await.unwrap();
    for text in &texts {
        assert_eq!(bob.expect_json("message").await["text"], *text);
    }
    // Bob talks until ana's queue overflows.
    let filler = json!({"type": "say", "room": "#lobby", "text": "-".repeat(1000)}).to_string();
    let batch = format!("{filler}\n").repeat(32);
    let mut cut_off = false;
    // Bob's own acks wait for the lock too: he reads only for ana's leave.
    for _ in 0..10_000 {
        bob.send_raw(batch.as_bytes()).await;
        while let Ok(Some(line)) = bob.next_within(Duration::from_millis(1)).await {
            let event: Value = serde_json::from_str(&line).unwrap();
            if event["type"] == "leave" && event["nick"] == "ana" {
                assert_eq!(event["reason"], "send_queue_exceeded");
                cut_off = true;
            }
        }
        if cut_off {
            break;
        }
    }
    assert!(cut_off, "ana was never cut off");
    let released = lock.release_after(Duration::ZERO);
    released.join().unwrap();
    let mut ana = Client::over(read.reunite(write).unwrap());
    let lines = to_the_end(&mut ana).await;
    acked_before_bye(&lines, &texts, "send_queue_exceeded");
    crate::store::stop(charla);
}

#[tokio::test(flavor = "multi_thread")]
async fn in_a_cluster_a_flooder_put_out_gets_its_acks_once_redis_hands_its_messages_back() {
    let redis = Redis::start();
    let node = Node::start_with(&redis, "one", &["--flood-rate", "5"]);
    let mut bob = node.json("bob").await;
    let mut ana = node.json("ana").await;
    // Redis frozen: no message comes back, so none is acked, until it thaws.
    redis.signal("STOP");
    let (lines, _) = says(0, 60);
    ana.send_raw(lines.as_bytes()).await;
    // The node hears its own messages only once Redis hands them back, after ana's leave,
    // which the node's members hear at once.
    tokio::time::sleep(HELD).await;
    redis.signal("CONT");
    let lines = to_the_end(&mut ana).await;
    // Ana's connection closed once her last message came back: bob has them all by now.
    let mut heard = Vec::new();
    while let Ok(Some(line)) = bob.next_within(QUIET).await {
        let event: Value = serde_json::from_str(&line).unwrap();
        if event["type"] == "message" && event["from"] == "ana" {
            heard.push(event["text"].as_str().unwrap().to_string());
        }
    }
    assert!(heard.len() >= 10, "the burst was accepted: {heard:?}");
    acked_before_bye(&lines, &heard, "flooding");
}

#[tokio::test(flavor = "multi_thread")]
async fn in_a_cluster_a_node_shutting_down_waits_for_its_messages_to_come_back() {
    let redis = Redis::start();
    let mut node = Node::start(&redis, "one");
    let mut ana = node.json("ana").await;
    redis.signal("STOP");
    let (lines, texts) = says(0, 3);
    ana.send_raw(lines.as_bytes()).await;
    tokio::time::sleep(QUIET).await;
    let status = std::process::Command::new("kill")
        .args(["-TERM", &node.process.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    // The link to Redis outlives the node's goodbyes, and hands the messages back.
    tokio::time::sleep(HELD).await;
    redis.signal("CONT");
    let lines = to_the_end(&mut ana).await;
    acked_before_bye(&lines, &texts, "server_shutdown");
    let status = node.process.exit_status();
    assert!(status.success(), "{status}: {}", node.process.stderr());
}
