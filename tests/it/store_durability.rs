//! What an `ack` promises: the message is committed. A server killed with `kill -9` while
//! messages pour in still has, after a restart on the same `--data`, every one it acked.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::metrics::Scrape;
use crate::store::{join, json_client, next_listening, serve_with};
use crate::support::{Client, PATIENCE};

/// Messages a sender writes before reading their acks: many in flight at once.
const WINDOW: usize = 100;

/// More than every round says: the rounds say more than the 10,000 messages a room keeps
/// by default, and what that bound pushes out is not what this test is about.
const KEEP_ALL: &str = "--history-keep=1000000";

/// The server under load, and when to kill it.
struct Load {
    addr: SocketAddr,
    pid: Pid,
    acked: Mutex<Vec<u64>>,
    /// The count of acks at which the sender that receives the last kills the server, at
    /// once, as a crash right after an ack would; `None`: the test kills it.
    kill_at: Option<usize>,
}

/// Says numbered lines in `#load` as `nick`, `WINDOW` at a time, recording the id of each
/// acked one, until the server goes away.
async fn sender(load: Arc<Load>, nick: String) {
    let addr = load.addr;
    let stream = TcpStream::connect(addr).await.unwrap();
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let hello = json!({"type": "hello", "nick": nick}).to_string();
    let join = json!({"type": "join", "room": "#load"}).to_string();
    write
        .write_all(format!("{hello}\n{join}\n").as_bytes())
        .await
        .unwrap();
    for round in 0.. {
        let batch: String = (0..WINDOW)
            .map(|k| {
                let text = format!("{nick} {}", round * WINDOW + k);
                json!({"type": "say", "room": "#load", "text": text}).to_string() + "\n"
            })
            .collect();
        if write.write_all(batch.as_bytes()).await.is_err() {
            return;
        }
        let mut waiting = WINDOW;
        while waiting > 0 {
            let Ok(Some(line)) = lines.next_line().await else {
                return;
            };
            let Ok(event) = serde_json::from_str::<Value>(&line) else {
                continue; // the text greeting before `hello`
            };
            match event["type"].as_str() {
                Some("ack") => {
                    let mut acked = load.acked.lock().unwrap();
                    acked.push(event["id"].as_u64().unwrap());
                    if Some(acked.len()) == load.kill_at {
                        kill(load.pid, Signal::SIGKILL).unwrap();
                    }
                    waiting -= 1;
                }
                Some("error") => panic!("{line}"),
                _ => {}
            }
        }
    }
}

/// Rounds of load and `kill -9` on one `--data`: each kill lands at a moment of its own,
/// whatever the writer was doing then. The last round kills it while another connection
/// holds the database's write lock, so the writer cannot move what it commits into the
/// database: whatever was acked then is in the commit file only, and would be lost if an
/// ack did not wait for that write or the restart did not read the file back.
const ROUNDS: usize = 4;

/// Waits for some acks, takes the file's write lock from another connection, lets the
/// senders go on a while, kills the server and lets go of the lock.
async fn kill_while_the_writer_is_blocked(load: &Load, db: &Path) {
    while load.acked.lock().unwrap().len() < 500 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut blocker = rusqlite::Connection::open(db).unwrap();
    blocker.busy_timeout(PATIENCE).unwrap();
    let hold = blocker
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .unwrap();
    // Time for messages to be said and, were acks not waiting for the commit, acked.
    tokio::time::sleep(Duration::from_millis(300)).await;
    kill(load.pid, Signal::SIGKILL).unwrap();
    hold.rollback().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn every_acknowledged_message_survives_kill_9_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let mut acked = Vec::new();
    for round in 0..ROUNDS {
        let (mut charla, addr) = serve_with(&["--data", data, "--flood-rate", "0", KEEP_ALL], &[]);
        // Killed while every sender still has messages in flight.
        let last = round + 1 == ROUNDS;
        let load = Arc::new(Load {
            addr,
            pid: Pid::from_raw(charla.child.id() as i32),
            acked: Mutex::new(Vec::new()),
            kill_at: (!last).then_some(2_000),
        });
        let senders: Vec<_> = (0..6)
            .map(|n| tokio::spawn(sender(load.clone(), format!("r{round}s{n}"))))
            .collect();
        if last {
            kill_while_the_writer_is_blocked(&load, &dir.path().join("data/charla.db")).await;
        }
        for sender in senders {
            let ended = tokio::time::timeout(PATIENCE, sender).await;
            ended
                .expect("the server was killed, so every sender ends")
                .unwrap();
        }
        assert!(!charla.exit_status().success(), "killed");
        acked.extend(load.acked.lock().unwrap().iter().copied());
    }

    let (charla, addr) = serve_with(&["--data", data, KEEP_ALL], &[]);
    let mut reader = json_client(addr, "reader").await;
    join(&mut reader, "#load").await;
    let mut kept = HashSet::new();
    let mut after = 0;
    loop {
        let ask = json!({"type": "history", "room": "#load", "since": after});
        reader.send(&ask.to_string()).await;
        let history = reader.expect_json("history").await;
        let messages = history["messages"].as_array().unwrap();
        let Some(last) = messages.last() else { break };
        after = last["id"].as_u64().unwrap();
        kept.extend(messages.iter().map(|m| m["id"].as_u64().unwrap()));
    }
    let missing: Vec<u64> = acked
        .iter()
        .copied()
        .filter(|id| !kept.contains(id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acked messages missing after kill -9: {missing:?}",
        missing.len(),
        acked.len()
    );
    crate::store::stop(charla);
}

/// A 2 MiB tmpfs on a temporary directory, unmounted when dropped however the test ends:
/// room for a new file's tables and their first log frames, not for megabytes of history.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// `None` where this process may not mount (not root).
    fn mount() -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        mounted.then_some(SmallDisk { dir })
    }

    /// The `--data` directory on it.
    fn data(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    /// Makes room: the disk grows to 64 MiB, as an operator freeing space would.
    fn grow(&self) {
        let status = std::process::Command::new("mount")
            .args(["-o", "remount,size=64m"])
            .arg(self.dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "remount: {status}");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_tells_each_sender_not_stored_and_the_server_goes_on() {
    // Not room for the 3 MB said below.
    let Some(disk) = SmallDisk::mount() else {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    };
    let data = disk.data();
    let args = [
        "--data",
        data.to_str().unwrap(),
        "--flood-rate",
        "0",
        "--listen",
        "http://127.0.0.1:0",
    ];
    let (mut charla, addr) = serve_with(&args, &[]);
    let http = next_listening(&charla, "http");
    let mut ana = json_client(addr, "ana").await;
    let mut bob = json_client(addr, "bob").await;
    let line = "x".repeat(3_000);
    let (mut acked, mut refused) = (0, None);
    for n in 0..1_000 {
        let say = json!({"type": "say", "room": "#lobby", "text": format!("{n} {line}"), "ref": n});
        ana.send(&say.to_string()).await;
        let reply = loop {
            let v = ana.json().await;
            if v["type"] == "ack" || v["type"] == "error" {
                break v;
            }
        };
        assert_eq!(reply["ref"], n, "{reply}");
        if reply["type"] == "ack" {
            acked += 1;
        } else {
            refused = Some(reply);
            break;
        }
    }
    let refused = refused.expect("the disk filled up");
    assert_eq!(refused["code"], "not_stored", "{refused}");
    assert!(acked > 0, "the first messages fitted");
    // Said all the same: bob heard every one, the last included.
    let mut heard = 0;
    while heard <= acked {
        if bob.json().await["type"] == "message" {
            heard += 1;
        }
    }
    // The server goes on: requests are answered, and a full disk is no reason to stop.
    ana.send(r#"{"type":"rooms"}"#).await;
    ana.expect_json("rooms").await;
    // Counted where an operator looks.
    let scrape = Scrape::until(http, |s| {
        s.0.get("charla_history_lost_total")
            .is_some_and(|&n| n >= 1.0)
    })
    .await;
    assert_eq!(scrape.get("charla_history_written_total"), acked as f64);
    drop((ana, bob));
    let status = nix::sys::signal::kill(Pid::from_raw(charla.child.id() as i32), Signal::SIGTERM);
    status.unwrap();
    charla.exit_status();
    let stderr = charla.stderr();
    assert!(stderr.contains("cannot write history"), "{stderr}");
}

/// ana and bob, JSON clients of the server at `addr`, both in #full.
async fn ana_and_bob_in_full(addr: SocketAddr) -> (Client, Client) {
    let mut ana = json_client(addr, "ana").await;
    let mut bob = json_client(addr, "bob").await;
    join(&mut ana, "#full").await;
    join(&mut bob, "#full").await;
    (ana, bob)
}

/// Messages a full disk kept out of the file were still said with their numbers: a room
/// that empties and is made again numbers on after them, not from the last one stored, so
/// nobody is given a number twice.
#[tokio::test(flavor = "multi_thread")]
async fn a_room_made_again_after_a_full_disk_numbers_on_after_what_was_not_stored() {
    let Some(disk) = SmallDisk::mount() else {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    };
    let data = disk.data();
    let args = ["--data", data.to_str().unwrap(), "--flood-rate", "0"];
    let (charla, addr) = serve_with(&args, &[]);
    let (mut ana, mut bob) = ana_and_bob_in_full(addr).await;
    // Bob heard every one, the one not stored last, with its number.
    let last_heard = say_until_the_disk_is_full(&mut ana, &mut bob, "#full").await;
    for c in [&mut ana, &mut bob] {
        c.send(r##"{"type":"leave","room":"#full"}"##).await;
        c.expect_json("leave").await;
    }
    join(&mut bob, "#full").await;
    join(&mut ana, "#full").await;
    ana.send(r##"{"type":"say","room":"#full","text":"again"}"##)
        .await;
    let again = loop {
        let v = bob.json().await;
        if v["type"] == "message" {
            break v;
        }
    };
    assert_eq!(again["seq"].as_u64(), Some(last_heard + 1), "{again}");
    drop((ana, bob));
    crate::store::stop(charla);
}

/// Says lines of 3,000 bytes in `room` as `ana` until one is answered `not_stored` (the
/// disk is full); returns the `seq` of that last one, as `bob`, in the room too, heard it.
async fn say_until_the_disk_is_full(ana: &mut Client, bob: &mut Client, room: &str) -> u64 {
    let line = "x".repeat(3_000);
    let mut said = 0;
    loop {
        let say = json!({"type": "say", "room": room, "text": format!("{said} {line}")});
        ana.send(&say.to_string()).await;
        said += 1;
        let reply = loop {
            let v = ana.json().await;
            if v["type"] == "ack" || v["type"] == "error" {
                break v;
            }
        };
        if reply["type"] == "error" {
            assert_eq!(reply["code"], "not_stored", "{reply}");
            break;
        }
        assert!(said < 1_000, "the disk never filled up");
    }
    let mut last_heard = 0;
    for _ in 0..said {
        let heard = loop {
            let v = bob.json().await;
            if v["type"] == "message" {
                break v;
            }
        };
        last_heard = heard["seq"].as_u64().unwrap();
    }
    last_heard
}

/// The numbers a full disk kept out of the file are written down once it has room again:
/// after a restart the room numbers on after them, not from the last one stored, so a
/// client resuming from a number it saw is not given that number again.
#[tokio::test(flavor = "multi_thread")]
async fn the_numbers_a_full_disk_lost_are_kept_across_a_restart_once_it_has_room() {
    let Some(disk) = SmallDisk::mount() else {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    };
    let data = disk.data();
    let args = ["--data", data.to_str().unwrap(), "--flood-rate", "0"];
    let (charla, addr) = serve_with(&args, &[]);
    let (mut ana, mut bob) = ana_and_bob_in_full(addr).await;
    let last_heard = say_until_the_disk_is_full(&mut ana, &mut bob, "#full").await;

    // Room again; something said elsewhere is stored, and the server stops as usual.
    disk.grow();
    let said = json!({"type": "say", "room": "#lobby", "text": "room again", "ref": 1});
    ana.send(&said.to_string()).await;
    let acked = ana.expect_json("ack").await;
    assert_eq!(acked["ref"], 1, "{acked}");
    drop((ana, bob));
    crate::store::stop(charla);

    let (charla, addr) = serve_with(&args, &[]);
    let mut ana = json_client(addr, "ana").await;
    let mut bob = json_client(addr, "bob").await;
    join(&mut bob, "#full").await;
    join(&mut ana, "#full").await;
    ana.send(r##"{"type":"say","room":"#full","text":"after the restart"}"##)
        .await;
    let again = loop {
        let v = bob.json().await;
        if v["type"] == "message" {
            break v;
        }
    };
    assert_eq!(again["seq"].as_u64(), Some(last_heard + 1), "{again}");
    drop((ana, bob));
    crate::store::stop(charla);
}
