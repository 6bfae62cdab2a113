//! History kept in an SQLite database (`charla serve --data DIR`): a restart replays it exactly.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::binary::{self, Binary};
use crate::support::{Client, PATIENCE};

/// `charla serve` on TCP and UDP loopback ports the system picks, history in `data`.
fn serve(data: &Path) -> (Binary, SocketAddr, SocketAddr) {
    let data = data.to_str().unwrap();
    let charla = Binary::start(binary::command(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--listen",
        "udp://127.0.0.1:0",
        "--data",
        data,
    ]));
    let mut tcp = None;
    let mut udp = None;
    while tcp.is_none() || udp.is_none() {
        let line = charla
            .stdout
            .recv_timeout(PATIENCE)
            .expect("a `listening on` line");
        let addr = line.strip_prefix("listening on ").expect("listening on");
        if let Some(a) = addr.strip_prefix("tcp://") {
            tcp = Some(a.parse().unwrap());
        } else if let Some(a) = addr.strip_prefix("udp://") {
            udp = Some(a.parse().unwrap());
        }
    }
    (charla, tcp.unwrap(), udp.unwrap())
}

/// Stops `charla` as a supervisor would (SIGTERM) and waits for a clean exit.
pub(crate) fn stop(mut charla: Binary) {
    let status = Command::new("kill")
        .args(["-TERM", &charla.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = charla.exit_status();
    assert!(status.success(), "{status}: {}", charla.stderr());
}

pub(crate) async fn json_client(addr: SocketAddr, nick: &str) -> Client {
    let mut c = Client::tcp(addr).await;
    c.expect("*** Welcome").await;
    // In #lobby, as the tests' text users are: a program is there only if it asks.
    c.send(&json!({"type": "hello", "nick": nick, "rooms": ["#lobby"]}).to_string())
        .await;
    c.expect_json("welcome").await;
    c
}

/// Joins `room` and returns the history it was replayed.
pub(crate) async fn join(c: &mut Client, room: &str) -> Vec<Value> {
    c.send(&json!({"type": "join", "room": room}).to_string())
        .await;
    let mut history = Vec::new();
    loop {
        let v = c.json().await;
        match v["type"].as_str() {
            Some("history") => history = v["messages"].as_array().unwrap().clone(),
            Some("join") if v["room"] == room => return history,
            _ => {}
        }
    }
}

/// Sends `request` and returns its ack's id.
async fn said(c: &mut Client, request: Value) -> u64 {
    c.send(&request.to_string()).await;
    c.expect_json("ack").await["id"].as_u64().unwrap()
}

/// `live` as a history entry shows it: a message without `type` and `room`, a feed's post
/// without `room`.
fn as_replayed(mut live: Value) -> Value {
    let object = live.as_object_mut().unwrap();
    object.remove("room");
    if object["type"] == "message" {
        object.remove("type");
    }
    live
}

#[tokio::test(flavor = "multi_thread")]
async fn history_survives_a_restart_exactly_and_ids_continue() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("data");

    let (charla, tcp, udp) = serve(&db);
    let mut ana = json_client(tcp, "ana").await;
    let mut obs = json_client(tcp, "obs").await;
    for room in ["#Ops", "#dev", "#alerts"] {
        assert!(join(&mut ana, room).await.is_empty());
        assert!(join(&mut obs, room).await.is_empty());
    }
    let mut ids = vec![
        said(
            &mut ana,
            json!({"type":"say","room":"#ops","text":"deploy at 5 ñ 👋"}),
        )
        .await,
        said(&mut ana, json!({"type":"me","room":"#ops","text":"waves"})).await,
        said(
            &mut ana,
            json!({"type":"say","room":"#dev","text":"hi dev"}),
        )
        .await,
    ];
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sender.send_to(b"disk full on db1", udp).unwrap();
    // What the observer saw live, by room (as spelled in each message).
    let mut live: Vec<Value> = Vec::new();
    while live.len() < 4 {
        let v = obs.json().await;
        if ["message", "alert"].contains(&v["type"].as_str().unwrap()) {
            live.push(v);
        }
    }
    let alert = live.iter().find(|v| v["type"] == "alert").unwrap().clone();
    assert_eq!(alert["text"], "disk full on db1");
    assert!(alert.get("addr").is_some(), "an alert with fields: {alert}");
    ids.push(alert["id"].as_u64().unwrap());
    let in_room = |room: &str| -> Vec<Value> {
        live.iter()
            .filter(|v| v["room"].as_str().unwrap().eq_ignore_ascii_case(room))
            .cloned()
            .map(as_replayed)
            .collect()
    };
    let (ops, dev, alerts) = (in_room("#Ops"), in_room("#dev"), in_room("#alerts"));
    assert_eq!((ops.len(), dev.len(), alerts.len()), (2, 1, 1), "{live:#?}");
    drop((ana, obs));
    stop(charla);

    let (charla, tcp, _) = serve(&db);
    let mut bob = json_client(tcp, "bob").await;
    assert_eq!(join(&mut bob, "#ops").await, ops, "#ops replayed exactly");
    assert_eq!(join(&mut bob, "#dev").await, dev);
    assert_eq!(join(&mut bob, "#alerts").await, alerts, "fields and all");
    // Exact resume: everything after an id, from the file.
    bob.send(&json!({"type":"history","room":"#ops","since":ids[0],"ref":"r"}).to_string())
        .await;
    let resumed = bob.expect_json("history").await;
    assert_eq!(resumed["ref"], "r");
    assert_eq!(resumed["messages"].as_array().unwrap()[..], ops[1..]);
    bob.send(&json!({"type":"history","room":"#dev","since":ids[2]}).to_string())
        .await;
    assert_eq!(bob.expect_json("history").await["messages"], json!([]));
    let next = said(&mut bob, json!({"type":"say","room":"#ops","text":"back"})).await;
    let last = *ids.iter().max().unwrap();
    assert!(next > last, "ids continue: {next} after {ids:?}");
    drop(bob);
    stop(charla);

    // And once more: what was said after the first restart is kept too.
    let (charla, tcp, _) = serve(&db);
    let mut eve = json_client(tcp, "eve").await;
    let replayed = join(&mut eve, "#ops").await;
    let replayed_ids: Vec<u64> = replayed.iter().map(|m| m["id"].as_u64().unwrap()).collect();
    assert_eq!(replayed_ids, [ids[0], ids[1], next]);
    let numbers: Vec<u64> = replayed
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 2, 3], "#ops numbers continue after a restart");
    drop(eve);
    stop(charla);
}

/// `charla serve --data DATA` as `uid` when given, which must stop at start-up: its
/// stderr.
fn refused(data: &Path, uid: Option<u32>) -> String {
    use std::os::unix::process::CommandExt;
    let mut command = binary::command(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data",
        data.to_str().unwrap(),
    ]);
    if let Some(uid) = uid {
        command.uid(uid).gid(uid);
    }
    let mut charla = Binary::start(command);
    let status = charla.exit_status();
    assert!(!status.success(), "{status}");
    charla.stderr()
}

#[test]
fn an_unusable_data_dir_is_an_error_at_start_up() {
    let dir = tempfile::tempdir().unwrap();

    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let stderr = refused(&file, None);
    assert!(stderr.contains("is not a directory"), "{stderr}");

    // No permission: a directory its user may not enter. Root may enter any, so as root
    // the server runs as `nobody`, for whom the test's private temporary directory is shut.
    let shut = dir.path().join("shut");
    std::fs::create_dir(&shut).unwrap();
    // A file this process made is owned by its effective user.
    let root = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&file).unwrap()) == 0;
    if !root {
        std::fs::set_permissions(&shut, std::os::unix::fs::PermissionsExt::from_mode(0o000))
            .unwrap();
    }
    let stderr = refused(&shut.join("data"), root.then_some(65_534));
    assert!(stderr.contains("Permission denied"), "{stderr}");
    assert_eq!(stderr.matches("Permission denied").count(), 1, "{stderr}");

    // A directory its user may enter but not write: the database cannot be made there.
    // The temporary directory is opened for `nobody` to reach it; its cause is said once.
    let read_only = dir.path().join("read-only");
    std::fs::create_dir(&read_only).unwrap();
    let mode = std::os::unix::fs::PermissionsExt::from_mode;
    std::fs::set_permissions(dir.path(), mode(0o755)).unwrap();
    std::fs::set_permissions(&read_only, mode(0o555)).unwrap();
    let stderr = refused(&read_only, root.then_some(65_534));
    assert!(
        stderr.contains("cannot open the history database"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("Permission denied").count(), 1, "{stderr}");

    let corrupt = dir.path().join("corrupt");
    std::fs::create_dir(&corrupt).unwrap();
    std::fs::write(corrupt.join("charla.db"), vec![0x5a; 8192]).unwrap();
    let stderr = refused(&corrupt, None);
    assert!(
        stderr.contains("cannot use the history database") && stderr.contains("not a database"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("not a database").count(), 1, "{stderr}");

    let newer = dir.path().join("newer");
    std::fs::create_dir(&newer).unwrap();
    rusqlite::Connection::open(newer.join("charla.db"))
        .unwrap()
        .pragma_update(None, "user_version", 999)
        .unwrap();
    let stderr = refused(&newer, None);
    assert!(
        stderr.contains("schema version 999, newer than"),
        "{stderr}"
    );
}

#[test]
fn a_db_another_charla_uses_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (first, _, _) = serve(dir.path());
    let mut second = Binary::start(binary::command(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data",
        dir.path().to_str().unwrap(),
    ]));
    assert!(!second.exit_status().success());
    let stderr = second.stderr();
    assert!(stderr.contains("in use by another charla"), "{stderr}");
    stop(first);
}

/// `charla serve` with `env` and without `CHARLA_DATA`, so the default applies unless
/// `args` say otherwise; its TCP address.
pub(crate) fn serve_with(args: &[&str], env: &[(&str, &Path)]) -> (Binary, SocketAddr) {
    let mut command = binary::command(&[&["serve", "--listen", "127.0.0.1:0"], args].concat());
    command.env_remove("CHARLA_DATA");
    for (name, value) in env {
        command.env(name, value);
    }
    let charla = Binary::start(command);
    let addr = next_listening(&charla, "tcp");
    (charla, addr)
}

/// The address of the next listener `charla` says it listens on; it must be `scheme`'s.
pub(crate) fn next_listening(charla: &Binary, scheme: &str) -> SocketAddr {
    let line = charla.stdout.recv_timeout(PATIENCE).expect("listening on");
    line.strip_prefix(&format!("listening on {scheme}://"))
        .unwrap_or_else(|| panic!("not a {scheme}:// listener: {line:?}"))
        .parse()
        .unwrap()
}

/// Says `text` in #lobby as a JSON client and returns its id.
pub(crate) async fn say_in_lobby(addr: SocketAddr, text: &str) -> u64 {
    let mut c = json_client(addr, "ana").await;
    said(&mut c, json!({"type":"say","room":"#lobby","text":text})).await
}

/// What a newcomer is replayed in #lobby: the ids.
async fn lobby_history(addr: SocketAddr) -> Vec<u64> {
    let mut c = json_client(addr, "eve").await;
    c.send(r##"{"type":"history","room":"#lobby"}"##).await;
    let h = c.expect_json("history").await;
    h["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_default_data_dir_is_the_xdg_state_dir_and_data_none_forgets() {
    let state = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let env = [("XDG_STATE_HOME", state.path()), ("HOME", home.path())];
    let (charla, addr) = serve_with(&[], &env);
    let id = say_in_lobby(addr, "kept").await;
    stop(charla);
    let file = state.path().join("charla").join("charla.db");
    assert!(
        file.exists(),
        "the directory is made and the file kept there"
    );

    let (charla, addr) = serve_with(&[], &env);
    assert_eq!(lobby_history(addr).await, [id]);
    stop(charla);

    // Without XDG_STATE_HOME: under ~/.local/state.
    let (charla, addr) = serve_with(&[], &[("HOME", home.path())]);
    say_in_lobby(addr, "at home").await;
    stop(charla);
    assert!(home.path().join(".local/state/charla/charla.db").exists());

    // --data none neither reads nor writes the file.
    let (charla, addr) = serve_with(&["--data", "none"], &env);
    assert!(lobby_history(addr).await.is_empty());
    say_in_lobby(addr, "forgotten").await;
    stop(charla);
    let (charla, addr) = serve_with(&[], &env);
    assert_eq!(
        lobby_history(addr).await,
        [id],
        "nothing said with --data none was kept"
    );
    stop(charla);
}

/// Sends a hello resuming `since` and returns what came for `room` before the welcome: the
/// `gap` if any, and the replayed entries' numbers.
async fn resume(c: &mut Client, room: &str, since: Value) -> (Option<Value>, Vec<u64>) {
    c.send(&json!({"type": "hello", "since": since}).to_string())
        .await;
    let mut gap = None;
    loop {
        // Text lines come first, until the hello is read.
        let Ok(v) = serde_json::from_str::<Value>(&c.line().await) else {
            continue;
        };
        match v["type"].as_str() {
            Some("gap") if v["room"] == room => gap = Some(v),
            Some("history") if v["room"] == room => return (gap, seqs(&v["messages"])),
            Some("message") if v["room"] == room => panic!("live before the replay: {v}"),
            _ => {}
        }
    }
}

fn seqs(messages: &Value) -> Vec<u64> {
    messages
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect()
}

/// With the history on disk, the ack (sent once committed) carries the number the message
/// is kept under, so a program resuming from it after a restart gets only what came later.
#[tokio::test(flavor = "multi_thread")]
async fn an_ack_carries_the_number_its_message_is_kept_under() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let (charla, addr) = serve_with(&["--data", data], &[]);
    let mut ana = json_client(addr, "ana").await;
    join(&mut ana, "#ops").await;
    let mut acked = Vec::new();
    for n in 1..=3 {
        ana.send(&json!({"type":"say","room":"#ops","text":format!("m{n}")}).to_string())
            .await;
        let ack = ana.expect_json("ack").await;
        acked.push(ack["seq"].as_u64().unwrap_or_else(|| panic!("{ack}")));
    }
    assert_eq!(acked, [1, 2, 3]);
    drop(ana);
    stop(charla);

    let (charla, addr) = serve_with(&["--data", data], &[]);
    let mut bob = Client::tcp(addr).await;
    bob.expect("*** Welcome").await;
    let (gap, replayed) = resume(&mut bob, "#ops", json!({"#ops": acked[1]})).await;
    assert_eq!((gap, replayed), (None, vec![3]));
    stop(charla);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hello_resumes_each_room_exactly_with_a_gap_for_what_is_gone_and_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let start = || serve_with(&["--data", data, "--history-keep", "5"], &[]);
    let (charla, addr) = start();
    let mut ana = json_client(addr, "ana").await;
    join(&mut ana, "#ops").await;
    for n in 1..=3 {
        said(
            &mut ana,
            json!({"type":"say","room":"#ops","text":format!("m{n}")}),
        )
        .await;
    }
    drop(ana);
    stop(charla);

    // After a restart: exactly what came after 1, nothing lost.
    let (charla, addr) = start();
    let mut bob = Client::tcp(addr).await;
    bob.expect("*** Welcome").await;
    let (gap, replayed) = resume(&mut bob, "#ops", json!({"#ops": 1})).await;
    assert_eq!((gap, replayed), (None, vec![2, 3]));
    // Live messages follow the replay, numbered on.
    let mut ana = json_client(addr, "ana").await;
    join(&mut ana, "#ops").await;
    for n in 4..=12 {
        said(
            &mut ana,
            json!({"type":"say","room":"#ops","text":format!("m{n}")}),
        )
        .await;
    }
    let mut live = Vec::new();
    while live.len() < 9 {
        let v = bob.json().await;
        if v["type"] == "message" {
            live.push(v["seq"].as_u64().unwrap());
        }
    }
    assert_eq!(live, (4..=12).collect::<Vec<_>>());
    drop((ana, bob));
    stop(charla);

    // Only the newest 5 are kept: what came after 2 is partly gone, and said so.
    let (charla, addr) = start();
    let mut eve = Client::tcp(addr).await;
    eve.expect("*** Welcome").await;
    let (gap, replayed) = resume(&mut eve, "#ops", json!({"#ops": 2})).await;
    let gap = gap.expect("a gap");
    assert_eq!((&gap["from"], &gap["to"]), (&json!(3), &json!(7)), "{gap}");
    assert_eq!(replayed, [8, 9, 10, 11, 12]);
    // Seen everything: an empty replay, no gap.
    let mut joe = Client::tcp(addr).await;
    joe.expect("*** Welcome").await;
    assert_eq!(
        resume(&mut joe, "#ops", json!({"#ops": 12})).await,
        (None, vec![])
    );
    drop((eve, joe));
    stop(charla);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resume_while_the_room_talks_misses_nothing_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let (charla, tcp) = serve_with(&["--data", data, "--flood-rate", "0"], &[]);
    let mut ana = json_client(tcp, "ana").await;
    join(&mut ana, "#ops").await;
    let total: u64 = 400;
    for n in 1..=20 {
        said(
            &mut ana,
            json!({"type":"say","room":"#ops","text":format!("m{n}")}),
        )
        .await;
    }
    // Ana goes on talking while rob resumes after 10: whatever was said meanwhile comes
    // once, either in the replay or live after it.
    let talker = tokio::spawn(async move {
        for n in 21..=total {
            ana.send(&json!({"type":"say","room":"#ops","text":format!("m{n}")}).to_string())
                .await;
        }
        for _ in 21..=total {
            ana.expect_json("ack").await;
        }
        ana
    });
    let mut rob = Client::tcp(tcp).await;
    rob.expect("*** Welcome").await;
    let (gap, mut seen) = resume(&mut rob, "#ops", json!({"#ops": 10})).await;
    assert_eq!(gap, None);
    while seen.last() != Some(&total) {
        let v = rob.json().await;
        if v["type"] == "message" && v["room"] == "#ops" {
            seen.push(v["seq"].as_u64().unwrap());
        }
    }
    assert_eq!(seen, (11..=total).collect::<Vec<_>>());
    drop(talker.await.unwrap());
    stop(charla);
}

/// The ids of a `history` object's messages.
fn history_ids(history: &Value) -> Vec<u64> {
    let messages = history["messages"].as_array().expect("messages");
    messages.iter().map(|m| m["id"].as_u64().unwrap()).collect()
}

/// `charla serve` keeping history in `data` and replaying the last 20 on joining, with an
/// http listener and flood control off: its TCP and HTTP addresses.
pub(crate) fn serve_deep_history(data: &Path) -> (Binary, SocketAddr, SocketAddr) {
    let args = [
        "--data",
        data.to_str().unwrap(),
        "--history",
        "20",
        "--flood-rate",
        "0",
        "--listen",
        "http://127.0.0.1:0",
    ];
    let (charla, tcp) = serve_with(&args, &[]);
    let http = next_listening(&charla, "http");
    (charla, tcp, http)
}

/// `ana` says `line 1` to `line N` in `room`, which she is in; their ids. Sent a batch at
/// a time before reading the batch's acks, so thousands of lines do not wait on a round
/// trip each (and the acks unread stay far below the send-queue bound).
pub(crate) async fn say_lines(ana: &mut Client, room: &str, n: usize) -> Vec<u64> {
    const BATCH: usize = 100;
    let mut ids = Vec::new();
    for first in (1..=n).step_by(BATCH) {
        let last = (first + BATCH - 1).min(n);
        for n in first..=last {
            let line = json!({"type":"say","room":room,"text":format!("line {n}")});
            ana.send(&line.to_string()).await;
        }
        for _ in first..=last {
            ids.push(ana.expect_json("ack").await["id"].as_u64().unwrap());
        }
    }
    ids
}

/// A reader scrolling back asks, a page at a time, for what came before the oldest line it
/// has: over JSON and over HTTP, from the file past what a join replays, in order, none
/// twice, until an answer shorter than a page says the start is reached.
#[tokio::test(flavor = "multi_thread")]
async fn history_before_reads_back_page_by_page_past_the_join_replay() {
    let dir = tempfile::tempdir().unwrap();
    let (charla, tcp, http) = serve_deep_history(&dir.path().join("data"));
    let mut ana = json_client(tcp, "ana").await;
    join(&mut ana, "#ops").await;
    let ids = say_lines(&mut ana, "#ops", 130).await;

    let mut bob = json_client(tcp, "bob").await;
    let replayed: Vec<u64> = join(&mut bob, "#ops")
        .await
        .iter()
        .map(|m| m["id"].as_u64().unwrap())
        .collect();
    assert_eq!(replayed, ids[110..]);
    let mut read = replayed;
    loop {
        let request =
            json!({"type":"history","room":"#ops","before":read[0],"limit":50,"ref":"older"});
        bob.send(&request.to_string()).await;
        let page = bob.expect_json("history").await;
        assert_eq!(page["ref"], "older");
        let older = history_ids(&page);
        let done = older.len() < 50;
        read.splice(0..0, older);
        if done {
            break;
        }
    }
    assert_eq!(read, ids);
    // Before the first kept: nothing.
    bob.send(&json!({"type":"history","room":"#ops","before":ids[0]}).to_string())
        .await;
    assert!(history_ids(&bob.expect_json("history").await).is_empty());
    // Both directions at once is refused, with the ref.
    bob.send(r##"{"type":"history","room":"#ops","since":1,"before":9,"ref":5}"##)
        .await;
    let refused = bob.expect_json("error").await;
    assert_eq!(
        (&refused["code"], &refused["ref"]),
        (&json!("invalid_argument"), &json!(5))
    );

    // The same pages over HTTP.
    let path = format!("/rooms/ops/messages?before={}&limit=50", ids[110]);
    let reply = crate::http::get(http, &path, &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(history_ids(&reply.json()), ids[60..110]);
    let path = format!("/rooms/ops/messages?before={}", ids[3]);
    assert_eq!(
        history_ids(&crate::http::get(http, &path, &[]).await.json()),
        ids[..3]
    );
    let path = format!("/rooms/ops/messages?before={}&since=1", ids[3]);
    assert_eq!(crate::http::get(http, &path, &[]).await.status, 400);
    stop(charla);
}

/// A script reading a room nobody is in on from the last id it got (or back from the first)
/// is told there is nothing more, not that the room is missing: the room has history.
#[tokio::test(flavor = "multi_thread")]
async fn history_of_an_empty_room_read_past_its_ends_is_empty_not_missing() {
    let dir = tempfile::tempdir().unwrap();
    let (charla, tcp, http) = serve_deep_history(&dir.path().join("data"));
    let mut ana = json_client(tcp, "ana").await;
    join(&mut ana, "#ops").await;
    let ids = say_lines(&mut ana, "#ops", 3).await;
    ana.send(r##"{"type":"leave","room":"#ops"}"##).await;
    ana.expect_json("leave").await;

    for path in [
        format!("/rooms/ops/messages?since={}", ids[2]),
        format!("/rooms/ops/messages?before={}", ids[0]),
    ] {
        let reply = crate::http::get(http, &path, &[]).await;
        assert_eq!(reply.status, 200, "{path}");
        let history = reply.json();
        assert_eq!(history["room"], "#ops");
        assert!(history_ids(&history).is_empty(), "{path}");
    }
    let path = format!("/rooms/ops/messages?since={}", ids[1]);
    let reply = crate::http::get(http, &path, &[]).await;
    assert_eq!(history_ids(&reply.json()), ids[2..]);
    let path = "/rooms/nowhere/messages?since=1";
    assert_eq!(crate::http::get(http, path, &[]).await.status, 404);
    stop(charla);
}

/// The database holds accounts' password hashes and the history of keyed and secret rooms:
/// the directories the server makes for it, the default's included, are its user's alone.
#[tokio::test(flavor = "multi_thread")]
async fn the_data_dir_the_server_makes_is_its_users_alone() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    let env = [("XDG_STATE_HOME", state.as_path()), ("HOME", tmp.path())];
    let (charla, addr) = serve_with(&[], &env);
    say_in_lobby(addr, "kept").await;
    stop(charla);
    for dir in [state.join("charla"), state] {
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{} is {mode:o}", dir.display());
    }
}

/// The `seq` a room's next message gets, said by `c` in `room`.
async fn next_seq(c: &mut Client, room: &str) -> u64 {
    c.send(&json!({"type": "say", "room": room, "text": "next"}).to_string())
        .await;
    c.expect_json("ack").await["seq"].as_u64().unwrap()
}

/// A room whose stored history all went (here to `--history-keep-total`; `--history-age`
/// deletes the same way) numbers on from its last message, not from 1 again: a client that
/// saw `seq` 3 and resumes from it must get the room's next messages.
#[tokio::test(flavor = "multi_thread")]
async fn a_room_whose_history_all_went_numbers_on() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let args = ["--data", data, "--history-keep-total", "1"];
    let (charla, addr) = serve_with(&args, &[]);
    let mut ana = json_client(addr, "ana").await;
    join(&mut ana, "#ops").await;
    for expected in 1..=3 {
        assert_eq!(next_seq(&mut ana, "#ops").await, expected);
    }
    join(&mut ana, "#dev").await;
    next_seq(&mut ana, "#dev").await;
    drop(ana);
    // SIGTERM moves everything into the file and bounds it: #ops's rows are the oldest.
    stop(charla);

    let (charla, addr) = serve_with(&args, &[]);
    let mut bob = json_client(addr, "bob").await;
    bob.send(&json!({"type": "hello", "since": {"#ops": 3}}).to_string())
        .await;
    bob.expect_json("welcome").await;
    assert_eq!(next_seq(&mut bob, "#ops").await, 4);
    drop(bob);
    stop(charla);
}
