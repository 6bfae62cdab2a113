//! JSON lines, as a program sees them: the switch from text, every request, framing, errors.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::support::{Client, QUIET, TestServer};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The next line, which must be exactly one JSON object with a string `type`.
async fn object(c: &mut Client) -> Value {
    let v = c.json().await;
    assert!(v.is_object() && v["type"].is_string(), "{v}");
    v
}

/// Reads JSON events until the one telling `nick` joined.
async fn joined(c: &mut Client, nick: &str) {
    loop {
        let v = c.expect_json("join").await;
        if v["nick"] == nick {
            return;
        }
    }
}

/// `ana` speaks text; `bot` and `rob` speak JSON; all in `#lobby`, with every arrival
/// notice read, so each one's next line is whatever the test does next.
async fn company(server: &TestServer) -> (Client, Client, Client) {
    let mut ana = server.named("ana").await;
    let mut bot = server.json("bot").await;
    ana.expect("#lobby *** bot joined").await;
    let rob = server.json("rob").await;
    ana.expect("#lobby *** rob joined").await;
    joined(&mut bot, "rob").await;
    (ana, bot, rob)
}

/// Sends a request and returns its acknowledgement, checking it is one.
async fn said(c: &mut Client, request: Value) -> Value {
    c.send(&request.to_string()).await;
    let ack = object(c).await;
    assert_eq!(ack["type"], "ack", "{request} gave {ack}");
    assert!(ack["id"].is_u64() && ack["ts"].is_u64(), "{ack}");
    ack
}

/// Expects an error reply with `code`, and returns it.
async fn refused(c: &mut Client, code: &str) -> Value {
    let e = object(c).await;
    assert_eq!(e["type"], "error", "{e}");
    assert_eq!(e["code"], code, "{e}");
    assert!(e["message"].is_string(), "{e}");
    e
}

/// A second client that connects and types nothing: welcomed as guest-2 and put in
/// `#lobby` beside `ana`, who is told.
async fn silent_guest_in_the_lobby(server: &TestServer, ana: &mut Client) -> Client {
    let mut c = Client::tcp(server.tcp()).await;
    assert!(
        c.line()
            .await
            .starts_with("*** Welcome to charla, guest-2!")
    );
    assert_eq!(
        c.line().await,
        "#lobby *** you joined; here now: ana, guest-2"
    );
    assert_eq!(ana.line().await, "#lobby *** guest-2 joined");
    c
}

// ---- Switching to JSON --------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn hello_switches_to_json_takes_the_nick_and_joins_the_rooms() {
    let server = TestServer::start().await;
    let mut ana = server.named("ana").await;
    ana.send("/join #ops").await;
    ana.expect("#ops *** you joined").await;

    let mut c = silent_guest_in_the_lobby(&server, &mut ana).await;

    c.send(r##"{"type":"hello","nick":"bot","rooms":["#ops"],"ref":"h1"}"##)
        .await;
    assert_eq!(
        object(&mut c).await,
        json!({"type":"nick","old":"guest-2","new":"bot","you":true,"ref":"h1"})
    );
    assert_eq!(
        object(&mut c).await,
        json!({"type":"join","room":"#ops","nick":"bot","you":true,"members":["ana","bot"],"count":2,"ref":"h1"})
    );
    let mut welcome = object(&mut c).await;
    let server_name = welcome
        .as_object_mut()
        .unwrap()
        .remove("server")
        .expect("the welcome names the server");
    assert!(server_name.as_str().unwrap().starts_with("charla "));
    assert_eq!(
        welcome,
        json!({"type":"welcome","nick":"bot","rooms":["#lobby","#ops"],"ref":"h1"})
    );
    c.silent_for(QUIET).await;

    // Text members see the usual notices.
    assert_eq!(ana.line().await, "*** guest-2 is now known as bot");
    assert_eq!(ana.line().await, "#ops *** bot joined");

    // From now on everything the client hears is JSON, one object a line.
    ana.send("hi bot").await;
    let m = object(&mut c).await;
    assert_eq!(
        (&m["type"], &m["room"], &m["from"]),
        (&json!("message"), &json!("#ops"), &json!("ana"))
    );
    assert_eq!(m["text"], "hi bot");
    c.send("/users").await;
    refused(&mut c, "invalid_json").await;
    ana.send("/quit").await;
    ana.until_closed().await;
    let mut rooms = Vec::new();
    for _ in 0..2 {
        let left = object(&mut c).await;
        assert_eq!(left["type"], "leave", "{left}");
        assert_eq!(left["reason"], "quit", "{left}");
        assert_eq!(left["nick"], "ana", "{left}");
        rooms.push(left["room"].as_str().unwrap().to_string());
    }
    rooms.sort();
    assert_eq!(rooms, ["#lobby", "#ops"]);
}

/// A program that says `hello` as soon as it connects never passes through `#lobby`: the
/// people there see it neither come nor go, unless its hello names the room.
#[tokio::test(flavor = "multi_thread")]
async fn a_program_whose_first_line_is_hello_is_put_in_no_room_it_did_not_name() {
    let server = TestServer::start().await;
    let mut ana = server.named("ana").await;
    for (hello, rooms) in [
        (
            r##"{"type":"hello","nick":"bot","rooms":["#ops"]}"##,
            json!(["#ops"]),
        ),
        (r#"{"type":"hello","nick":"bot2"}"#, json!([])),
        (
            r##"{"type":"hello","nick":"bot3","rooms":["#lobby"]}"##,
            json!(["#lobby"]),
        ),
    ] {
        let mut c = Client::tcp(server.tcp()).await;
        // Sent before reading anything, as programs do.
        c.send(hello).await;
        assert!(c.line().await.starts_with("*** Welcome to charla, guest-"));
        let welcome = c.expect_json("welcome").await;
        assert_eq!(welcome["rooms"], rooms, "{welcome}");
        c.send(r#"{"type":"quit"}"#).await;
        c.until_closed().await;
    }
    // What ana heard of the three: the third's coming and going only.
    ana.send("/users").await;
    let mut heard = Vec::new();
    loop {
        let line = ana.line().await;
        let done = line.starts_with("#lobby *** 1 here");
        heard.push(line);
        if done {
            break;
        }
    }
    assert_eq!(
        heard,
        [
            "#lobby *** bot3 joined",
            "#lobby *** bot3 left (quit)",
            "#lobby *** 1 here: ana",
        ]
    );
}

/// A person who connects and reads, typing nothing, is put in `#lobby` all the same.
#[tokio::test(flavor = "multi_thread")]
async fn a_silent_reader_is_put_in_the_lobby() {
    let server = TestServer::start().await;
    let mut ana = server.named("ana").await;
    let mut c = silent_guest_in_the_lobby(&server, &mut ana).await;
    ana.send("hola").await;
    assert_eq!(c.line().await, "#lobby <ana> hola");
}

#[tokio::test(flavor = "multi_thread")]
async fn hello_without_a_nick_keeps_the_guest_nick() {
    let server = TestServer::start().await;
    let mut c = Client::tcp(server.tcp()).await;
    c.expect("you joined").await;
    c.send(r#"{"type":"hello"}"#).await;
    let mut welcome = object(&mut c).await;
    welcome.as_object_mut().unwrap().remove("server");
    assert_eq!(
        welcome,
        json!({"type":"welcome","nick":"guest-1","rooms":["#lobby"]})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hello_with_a_taken_nick_is_welcomed_under_the_guest_nick() {
    let server = TestServer::start().await;
    let _ana = server.named("ana").await;
    let mut c = Client::tcp(server.tcp()).await;
    c.expect("you joined").await;
    c.send(r#"{"type":"hello","nick":"ANA"}"#).await;
    refused(&mut c, "nick_taken").await;
    let welcome = object(&mut c).await;
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(welcome["nick"], "guest-2");
}

#[tokio::test(flavor = "multi_thread")]
async fn hello_with_an_invalid_nick_is_refused_not_said() {
    let server = TestServer::start().await;
    let mut ana = server.named("ana").await;
    let mut c = Client::tcp(server.tcp()).await;
    c.expect("you joined").await;
    ana.expect(" joined").await;
    // The client asked for JSON: it gets JSON, the refusal first, then its welcome under
    // the guest nick it still has.
    c.send(r#"{"type":"hello","nick":"my bot","ref":"h1"}"#)
        .await;
    let error = c.json().await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["code"], "invalid_nick");
    assert_eq!(error["ref"], "h1");
    let welcome = c.json().await;
    assert_eq!(welcome["type"], "welcome");
    assert!(welcome["nick"].as_str().unwrap().starts_with("guest-"));
    c.send(r##"{"type":"hello","rooms":["#ok","#a b"]}"##).await;
    assert_eq!(c.expect_json("join").await["room"], "#ok");
    assert_eq!(c.json().await["code"], "invalid_room");
    assert_eq!(c.json().await["rooms"], json!(["#lobby", "#ok"]));
    // None of it went to the room as chat.
    ana.silent_for(QUIET).await;
}

// ---- Saying things ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn say_is_acked_and_reaches_text_and_json_members_in_their_format() {
    let server = TestServer::start().await;
    let (mut ana, mut bot, mut rob) = company(&server).await;
    let before = now_ms();
    let ack = said(
        &mut bot,
        json!({"type":"say","text":"hola ñ ã € 😀 漢字","ref":"a1"}),
    )
    .await;
    let after = now_ms();
    assert_eq!(ack["ref"], "a1");
    let (id, ts) = (ack["id"].as_u64().unwrap(), ack["ts"].as_u64().unwrap());
    assert!(
        before <= ts && ts <= after,
        "{ts} not in {before}..={after}"
    );
    // The ack carries the room's number for it, as everyone else's message does.
    assert_eq!(ack["seq"], 1, "{ack}");
    assert_eq!(
        object(&mut rob).await,
        json!({"type":"message","id":id,"seq":1,"ts":ts,"room":"#lobby","from":"bot","text":"hola ñ ã € 😀 漢字"})
    );
    assert_eq!(ana.line().await, "#lobby <bot> hola ñ ã € 😀 漢字");
    // No echo beyond the ack.
    bot.silent_for(QUIET).await;

    // A numeric ref, an object ref and no ref at all; ids keep increasing.
    let ack2 = said(&mut bot, json!({"type":"say","text":"two","ref":7})).await;
    assert_eq!(ack2["ref"], 7);
    let ack3 = said(
        &mut bot,
        json!({"type":"say","text":"three","ref":{"seq":[1,"x"]}}),
    )
    .await;
    assert_eq!(ack3["ref"], json!({"seq":[1,"x"]}));
    let ack4 = said(&mut bot, json!({"type":"say","text":"four"})).await;
    assert!(ack4.get("ref").is_none(), "{ack4}");
    let ids: Vec<u64> = [&ack, &ack2, &ack3, &ack4]
        .iter()
        .map(|a| a["id"].as_u64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    for (ack, text) in [(&ack2, "two"), (&ack3, "three"), (&ack4, "four")] {
        let m = object(&mut rob).await;
        assert_eq!(m["id"], ack["id"]);
        assert_eq!(m["seq"], ack["seq"]);
        assert_eq!(m["text"], text);
        assert!(m.get("ref").is_none(), "{m}");
        assert_eq!(ana.line().await, format!("#lobby <bot> {text}"));
    }

    // A text member's line reaches JSON members as a message event.
    ana.send("from text").await;
    for c in [&mut bot, &mut rob] {
        let m = object(c).await;
        assert_eq!(
            (&m["type"], &m["from"], &m["text"]),
            (&json!("message"), &json!("ana"), &json!("from text"))
        );
        assert!(m["id"].as_u64().unwrap() > ids[3]);
        assert!(m.get("action").is_none(), "{m}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ref_comes_back_exactly_as_sent() {
    let server = TestServer::start().await;
    let mut bot = server.json("bot").await;
    // Too big for a u64 or an f64 without loss: echoed digit for digit, on an ack, on the
    // reply to a request refused after parsing, and on one that failed to parse.
    let big = "123456789012345678901234567890";
    bot.send(&format!(r#"{{"type":"say","text":"hi","ref":{big}}}"#))
        .await;
    let ack = bot.line().await;
    assert!(ack.starts_with(r#"{"type":"ack","#), "{ack}");
    assert!(ack.ends_with(&format!(r#","ref":{big}}}"#)), "{ack}");
    bot.send(&format!(
        r#"{{"type":"say","text":"\u0007","ref":[{big}, 1.50]}}"#
    ))
    .await;
    let empty = bot.line().await;
    assert!(empty.contains(r#""code":"empty_message""#), "{empty}");
    assert!(
        empty.ends_with(&format!(r#","ref":[{big}, 1.50]}}"#)),
        "{empty}"
    );
    bot.send(&format!(r#"{{"type":"say","ref":{big}}}"#)).await;
    let invalid = bot.line().await;
    assert!(invalid.contains(r#""code":"invalid_request""#), "{invalid}");
    assert!(
        invalid.ends_with(&format!(r#","ref":{big}}}"#)),
        "{invalid}"
    );
    // Each reply is still one valid JSON object; `null` is no ref at all.
    for line in [&ack, &empty, &invalid] {
        assert!(serde_json::from_str::<Value>(line).unwrap().is_object());
    }
    bot.send(r#"{"type":"rooms","ref":null}"#).await;
    let rooms = bot.expect_json("rooms").await;
    assert!(rooms.get("ref").is_none(), "{rooms}");
}

#[tokio::test(flavor = "multi_thread")]
async fn say_to_a_named_room() {
    let server = TestServer::start().await;
    let (mut ana, mut bot, mut rob) = company(&server).await;
    bot.send(r##"{"type":"join","room":"#ops"}"##).await;
    bot.expect_json("join").await;
    // bot now talks in #ops, but may still name #lobby.
    let ack = said(
        &mut bot,
        json!({"type":"say","room":"#lobby","text":"to the lobby"}),
    )
    .await;
    let m = object(&mut rob).await;
    assert_eq!((&m["id"], &m["room"]), (&ack["id"], &json!("#lobby")));
    assert_eq!(ana.line().await, "#lobby <bot> to the lobby");
    bot.send(r##"{"type":"say","room":"#elsewhere","text":"x","ref":"e"}"##)
        .await;
    let e = refused(&mut bot, "invalid_room").await;
    assert_eq!(e["ref"], "e");
    // A room that exists, which bot is not in.
    ana.send("/join #dev").await;
    ana.expect("#dev *** you joined").await;
    bot.send(r##"{"type":"say","room":"#dev","text":"x","ref":"d"}"##)
        .await;
    assert_eq!(refused(&mut bot, "not_in_room").await["ref"], "d");
}

#[tokio::test(flavor = "multi_thread")]
async fn me_is_an_action() {
    let server = TestServer::start().await;
    let (mut ana, mut bot, mut rob) = company(&server).await;
    let ack = said(&mut bot, json!({"type":"me","text":"waves 👋","ref":"w"})).await;
    assert_eq!(ack["ref"], "w");
    assert_eq!(
        object(&mut rob).await,
        json!({"type":"message","id":ack["id"],"seq":1,"ts":ack["ts"],"room":"#lobby","from":"bot","text":"waves 👋","action":true})
    );
    assert_eq!(ana.line().await, "#lobby * bot waves 👋");
    ana.send("/me nods").await;
    let m = object(&mut bot).await;
    assert_eq!(
        (&m["from"], &m["text"], &m["action"]),
        (&json!("ana"), &json!("nods"), &json!(true))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn msg_reaches_only_its_target_and_acks_the_sender() {
    let server = TestServer::start().await;
    let (mut ana, mut bot, mut rob) = company(&server).await;
    let ack = said(
        &mut bot,
        json!({"type":"msg","to":"ROB","text":"psst ñ","ref":"m1"}),
    )
    .await;
    assert_eq!(ack["ref"], "m1");
    // A private message is not numbered in any room: its ack has no seq.
    assert!(ack.get("seq").is_none(), "{ack}");
    assert_eq!(
        object(&mut rob).await,
        json!({"type":"private","id":ack["id"],"ts":ack["ts"],"from":"bot","to":"rob","text":"psst ñ"})
    );
    said(&mut bot, json!({"type":"msg","to":"ana","text":"hi ana"})).await;
    assert_eq!(ana.line().await, "(private) <bot> hi ana");
    ana.send("/msg bot hi bot").await;
    let p = object(&mut bot).await;
    assert_eq!(
        (&p["type"], &p["from"], &p["to"], &p["text"]),
        (
            &json!("private"),
            &json!("ana"),
            &json!("bot"),
            &json!("hi bot")
        )
    );
    bot.send(r#"{"type":"msg","to":"nobody","text":"x","ref":"m3"}"#)
        .await;
    assert_eq!(refused(&mut bot, "no_such_nick").await["ref"], "m3");
    ana.silent_for(QUIET).await;
    rob.silent_for(QUIET).await;
}

// ---- Names and rooms ----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn nick_renames_and_tells_the_room() {
    let server = TestServer::start().await;
    let (mut ana, mut bot, mut rob) = company(&server).await;
    bot.send(r#"{"type":"nick","nick":"Begoña","ref":1}"#).await;
    assert_eq!(
        object(&mut bot).await,
        json!({"type":"nick","old":"bot","new":"Begoña","you":true,"ref":1})
    );
    assert_eq!(
        object(&mut rob).await,
        json!({"type":"nick","old":"bot","new":"Begoña","you":false})
    );
    assert_eq!(ana.line().await, "*** bot is now known as Begoña");

    bot.send(r#"{"type":"nick","nick":"ANA","ref":2}"#).await;
    assert_eq!(refused(&mut bot, "nick_taken").await["ref"], 2);
    for (i, bad) in ["a b", "esc\u{1b}[31m", "9lives", &"x".repeat(25)]
        .into_iter()
        .enumerate()
    {
        bot.send(&json!({"type":"nick","nick":bad,"ref":i}).to_string())
            .await;
        assert_eq!(refused(&mut bot, "invalid_nick").await["ref"], i);
    }
    bot.send(r#"{"type":"users"}"#).await;
    assert_eq!(
        object(&mut bot).await["users"],
        json!(["ana", "Begoña", "rob"])
    );
    ana.silent_for(QUIET).await;
    rob.silent_for(QUIET).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn join_and_leave_tell_the_room() {
    let server = TestServer::start().await;
    let (mut ana, mut bot, mut rob) = company(&server).await;
    rob.send(r##"{"type":"join","room":"#ops","ref":"j"}"##)
        .await;
    assert_eq!(
        object(&mut rob).await,
        json!({"type":"join","room":"#ops","nick":"rob","you":true,"members":["rob"],"count":1,"ref":"j"})
    );
    ana.send("/join #ops").await;
    ana.expect("#ops *** you joined").await;
    assert_eq!(
        object(&mut rob).await,
        json!({"type":"join","room":"#ops","nick":"ana","you":false,"count":2})
    );
    bot.send(r#"{"type":"join","room":"ops"}"#).await;
    assert_eq!(
        object(&mut bot).await,
        json!({"type":"join","room":"#ops","nick":"bot","you":true,"members":["ana","bot","rob"],"count":3})
    );
    assert_eq!(ana.line().await, "#ops *** bot joined");
    assert_eq!(object(&mut rob).await["nick"], "bot");

    // Plain say now goes to #ops.
    let ack = said(&mut bot, json!({"type":"say","text":"in ops"})).await;
    let m = object(&mut rob).await;
    assert_eq!((&m["id"], &m["room"]), (&ack["id"], &json!("#ops")));
    assert_eq!(ana.line().await, "#ops <bot> in ops");

    bot.send(r##"{"type":"leave","room":"#ops","message":"bye ops","ref":"l"}"##)
        .await;
    assert_eq!(
        object(&mut bot).await,
        json!({"type":"leave","room":"#ops","nick":"bot","you":true,"reason":"left","message":"bye ops","ref":"l"})
    );
    assert_eq!(
        object(&mut rob).await,
        json!({"type":"leave","room":"#ops","nick":"bot","you":false,"reason":"left","message":"bye ops"})
    );
    assert_eq!(ana.line().await, "#ops *** bot left (left: bye ops)");

    // Without a room: the one talked in, now #lobby again.
    bot.send(r#"{"type":"leave"}"#).await;
    assert_eq!(
        object(&mut bot).await,
        json!({"type":"leave","room":"#lobby","nick":"bot","you":true,"reason":"left"})
    );
    assert_eq!(ana.line().await, "#lobby *** bot left (left)");
    assert_eq!(object(&mut rob).await["type"], "leave");
    bot.send(r#"{"type":"say","text":"anyone?","ref":0}"#).await;
    assert_eq!(refused(&mut bot, "not_in_room").await["ref"], 0);
    bot.send(r##"{"type":"join","room":"#a b","ref":"bad"}"##)
        .await;
    assert_eq!(refused(&mut bot, "invalid_room").await["ref"], "bad");
}

#[tokio::test(flavor = "multi_thread")]
async fn users_rooms_and_help_answer_in_json() {
    let server = TestServer::start().await;
    let (mut ana, mut bot, _rob) = company(&server).await;
    ana.send("/join #ops").await;
    ana.expect("you joined").await;
    ana.send("/away lunch").await;
    ana.expect("you are marked away").await;

    // Who is away, operator or voiced comes with the names (after the news of ana's away).
    bot.send(r#"{"type":"users","ref":"u"}"#).await;
    assert_eq!(
        bot.expect_json("users").await,
        json!({"type":"users","room":"#lobby","users":["ana","bot","rob"],
               "ops":[],"voiced":[],"away":["ana"],"ref":"u"})
    );
    bot.send(r##"{"type":"users","room":"#ops"}"##).await;
    assert_eq!(
        object(&mut bot).await,
        json!({"type":"users","room":"#ops","users":["ana"],"ops":["ana"],"voiced":[],"away":["ana"]})
    );
    bot.send(r#"{"type":"rooms","ref":1}"#).await;
    assert_eq!(
        object(&mut bot).await,
        json!({"type":"rooms","rooms":[{"name":"#lobby","members":3},{"name":"#ops","members":1}],"ref":1})
    );
    bot.send(r#"{"type":"help","ref":"?"}"#).await;
    let help = object(&mut bot).await;
    assert_eq!((&help["type"], &help["ref"]), (&json!("help"), &json!("?")));
    let commands = help["commands"].as_array().expect("a list of commands");
    for usage in [
        "/nick NAME",
        "/join #room",
        "/msg NAME text",
        "/quit [message]",
    ] {
        assert!(
            commands
                .iter()
                .any(|c| c["usage"] == usage && c["about"].is_string()),
            "{usage} missing from {help}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn history_replays_with_ids_and_limits() {
    let server = TestServer::start().await;
    let (mut ana, mut bot, mut rob) = company(&server).await;
    bot.send(r#"{"type":"history","ref":"h0"}"#).await;
    assert_eq!(
        object(&mut bot).await,
        json!({"type":"history","room":"#lobby","messages":[],"ref":"h0"})
    );
    let one = said(&mut bot, json!({"type":"say","text":"one"})).await;
    let two = said(&mut bot, json!({"type":"me","text":"two"})).await;
    ana.send("three").await;
    // rob has all three, so the room has remembered them.
    for _ in 0..3 {
        assert_eq!(object(&mut rob).await["type"], "message");
    }
    let three_id = object(&mut bot).await["id"].clone();

    bot.send(r#"{"type":"history","limit":2,"ref":"h"}"#).await;
    let h = object(&mut bot).await;
    assert_eq!(
        h,
        json!({"type":"history","room":"#lobby","ref":"h","messages":[
            {"id":two["id"],"seq":2,"ts":two["ts"],"from":"bot","text":"two","action":true},
            {"id":three_id,"seq":3,"ts":h["messages"][1]["ts"],"from":"ana","text":"three"},
        ]})
    );
    bot.send(r##"{"type":"history","room":"#lobby"}"##).await;
    let h = object(&mut bot).await;
    let ids: Vec<&Value> = h["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["id"])
        .collect();
    assert_eq!(ids, [&one["id"], &two["id"], &three_id]);

    // A JSON client joining a room gets its history before the join.
    rob.send(r##"{"type":"leave","room":"#lobby"}"##).await;
    rob.expect_json("leave").await;
    rob.send(r##"{"type":"join","room":"#lobby","ref":9}"##)
        .await;
    let h = object(&mut rob).await;
    assert_eq!((&h["type"], &h["ref"]), (&json!("history"), &json!(9)));
    assert_eq!(h["messages"].as_array().unwrap().len(), 3);
    assert_eq!(object(&mut rob).await["type"], "join");
}

/// A program that resumes from the last `seq` it saw, its own messages' acks included, is
/// replayed what others said after them, and not its own messages again.
#[tokio::test(flavor = "multi_thread")]
async fn a_resume_from_an_acks_seq_replays_only_what_came_after() {
    let server = TestServer::start().await;
    let (_ana, mut bot, mut rob) = company(&server).await;
    said(&mut rob, json!({"type":"say","text":"before"})).await;
    assert_eq!(object(&mut bot).await["text"], "before");
    let mine = said(&mut bot, json!({"type":"say","text":"mine"})).await;
    let last = mine["seq"]
        .as_u64()
        .expect("a room message's ack has a seq");
    assert_eq!(object(&mut rob).await["seq"], last);
    drop(bot);
    assert_eq!(rob.expect_json("leave").await["nick"], "bot");
    said(&mut rob, json!({"type":"say","text":"after"})).await;

    let mut again = Client::tcp(server.tcp()).await;
    again
        .send(
            &json!({"type":"hello","nick":"bot2","rooms":["#lobby"],"since":{"#lobby":last}})
                .to_string(),
        )
        .await;
    let history = again.expect_json("history").await;
    let texts: Vec<&Value> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["text"])
        .collect();
    assert_eq!(texts, [&json!("after")], "{history}");
}

#[tokio::test(flavor = "multi_thread")]
async fn quit_says_bye_then_closes() {
    let server = TestServer::start().await;
    let (mut ana, mut bot, mut rob) = company(&server).await;
    bot.send(r#"{"type":"quit","message":"later","ref":"q"}"#)
        .await;
    let lines = bot.until_closed().await;
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let bye: Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(bye["type"], "bye");
    assert_eq!(bye["reason"], "quit");
    assert_eq!(bye["message"], "later");
    assert_eq!(ana.line().await, "#lobby *** bot left (quit: later)");
    assert_eq!(
        object(&mut rob).await,
        json!({"type":"leave","room":"#lobby","nick":"bot","you":false,"reason":"quit","message":"later"})
    );
    // A JSON client that just goes away.
    drop(rob);
    assert_eq!(ana.line().await, "#lobby *** rob left (connection lost)");
}

// ---- Framing ------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn an_object_split_across_writes_is_processed_once() {
    let server = TestServer::start().await;
    let (mut ana, mut bot, mut rob) = company(&server).await;
    let line = r#"{"type":"say","text":"partido en dos: ñ","ref":"p"}"#.as_bytes();
    let (first, second) = line.split_at(line.len() / 2);
    bot.send_raw(first).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    bot.send_raw(&[second, b"\n"].concat()).await;
    let ack = object(&mut bot).await;
    assert_eq!((&ack["type"], &ack["ref"]), (&json!("ack"), &json!("p")));
    let m = object(&mut rob).await;
    assert_eq!(
        (&m["id"], &m["text"]),
        (&ack["id"], &json!("partido en dos: ñ"))
    );
    assert_eq!(ana.line().await, "#lobby <bot> partido en dos: ñ");

    // Split inside a multi-byte character, with a CRLF ending split too.
    let line = r#"{"type":"say","text":"€uro"}"#.as_bytes();
    let at = line.iter().position(|&b| b == 0xe2).unwrap() + 1;
    bot.send_raw(&line[..at]).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    bot.send_raw(&line[at..]).await;
    bot.send_raw(b"\r").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    bot.send_raw(b"\n").await;
    assert_eq!(object(&mut bot).await["type"], "ack");
    assert_eq!(object(&mut rob).await["text"], "€uro");

    assert_eq!(ana.line().await, "#lobby <bot> €uro");
    bot.silent_for(QUIET).await;
    rob.silent_for(QUIET).await;
    ana.silent_for(QUIET).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn several_objects_in_one_write_are_processed_in_order() {
    let server = TestServer::start().await;
    let (mut ana, mut bot, mut rob) = company(&server).await;
    bot.send_raw(
        concat!(
            r#"{"type":"say","text":"uno","ref":1}"#,
            "\n",
            r#"{"type":"say","text":"dos","ref":2}"#,
            "\r\n",
            r#"{"type":"users","ref":3}"#,
            "\n",
            r#"{"type":"me","text":"tres","ref":4}"#,
            "\n",
        )
        .as_bytes(),
    )
    .await;
    let mut ids = Vec::new();
    for (r, kind) in [(1, "ack"), (2, "ack"), (3, "users"), (4, "ack")] {
        let v = object(&mut bot).await;
        assert_eq!((&v["type"], &v["ref"]), (&json!(kind), &json!(r)), "{v}");
        if kind == "ack" {
            ids.push(v["id"].as_u64().unwrap());
        }
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    for (id, text) in ids.iter().zip(["uno", "dos", "tres"]) {
        let m = object(&mut rob).await;
        assert_eq!((&m["id"], &m["text"]), (&json!(id), &json!(text)));
    }
    assert_eq!(ana.line().await, "#lobby <bot> uno");
    assert_eq!(ana.line().await, "#lobby <bot> dos");
    assert_eq!(ana.line().await, "#lobby * bot tres");
    bot.silent_for(QUIET).await;
}

// ---- Mistakes -----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn mistakes_get_an_error_with_the_ref_and_the_connection_keeps_working() {
    let server = TestServer::start().await;
    let (mut ana, mut bot, mut rob) = company(&server).await;
    let cases: &[(&str, &str, Value)] = &[
        (r#"{"type":"say","text":"#, "invalid_json", Value::Null),
        ("not json at all", "invalid_json", Value::Null),
        ("/nick typed", "invalid_json", Value::Null),
        (r#"{"type":"say" "text":"x"}"#, "invalid_json", Value::Null),
        (
            r#"{"type":"shout","ref":"r9"}"#,
            "invalid_request",
            json!("r9"),
        ),
        (r#"{"type":"say","ref":5}"#, "invalid_request", json!(5)),
        (r#"{"text":"no type","ref":6}"#, "invalid_request", json!(6)),
        (
            r#"{"type":"say","text":42,"ref":7}"#,
            "invalid_request",
            json!(7),
        ),
        (
            r#"{"type":"msg","text":"to nobody","ref":8}"#,
            "invalid_request",
            json!(8),
        ),
        ("[1,2,3]", "invalid_request", Value::Null),
        (r#""just a string""#, "invalid_request", Value::Null),
        (
            r#"{"type":"nick","nick":"a b","ref":10}"#,
            "invalid_nick",
            json!(10),
        ),
        (
            r#"{"type":"msg","to":"a b","text":"x","ref":11}"#,
            "invalid_nick",
            json!(11),
        ),
        (
            r##"{"type":"join","room":"#a b","ref":12}"##,
            "invalid_room",
            json!(12),
        ),
        (
            r#"{"type":"say","text":"\u001b[2J","ref":13}"#,
            "empty_message",
            json!(13),
        ),
        (
            r#"{"type":"say","text":"   "}"#,
            "empty_message",
            Value::Null,
        ),
        (
            r#"{"type":"history","limit":-1,"ref":14}"#,
            "invalid_request",
            json!(14),
        ),
    ];
    for (i, (line, code, reference)) in cases.iter().enumerate() {
        bot.send(line).await;
        let e = refused(&mut bot, code).await;
        match reference {
            Value::Null => assert!(e.get("ref").is_none(), "{line}: {e}"),
            r => assert_eq!(e["ref"], *r, "{line}: {e}"),
        }
        // Still usable: the next request works, and only it reaches the others.
        let text = format!("still here {i}");
        said(&mut bot, json!({"type":"say","text":text})).await;
        assert_eq!(object(&mut rob).await["text"], text.as_str());
        assert_eq!(ana.line().await, format!("#lobby <bot> {text}"));
    }
    rob.silent_for(QUIET).await;
    ana.silent_for(QUIET).await;
}

// ---- Hostile text -------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn escaped_control_characters_never_reach_anyone() {
    let server = TestServer::start().await;
    let (mut ana, mut bot, mut rob) = company(&server).await;
    let raw = "\u{1b}[31mred\u{1b}[0m \u{7}bell\u{0} \u{1b}]0;pwned\u{7}ok\r\n#lobby <ana> fake\u{85}\u{9b}2J ñ ã € 😀 漢字";
    let clean = "red bell ok#lobby <ana> fake ñ ã € 😀 漢字";
    let request = json!({"type":"say","text":raw});
    // On the wire every control character is escaped, as \u001b or \r\n.
    let wire = request.to_string();
    assert!(wire.contains(r"\u001b") && wire.contains(r"\r\n") && !wire.contains('\u{1b}'));
    said(&mut bot, request).await;
    assert_eq!(ana.line().await, format!("#lobby <bot> {clean}"));
    assert_eq!(object(&mut rob).await["text"], clean);

    said(&mut bot, json!({"type":"me","text":"\u{1b}[2Jwipes"})).await;
    assert_eq!(ana.line().await, "#lobby * bot wipes");
    said(
        &mut bot,
        json!({"type":"msg","to":"ana","text":"\u{1b}]0;title\u{7}psst\u{8}"}),
    )
    .await;
    assert_eq!(ana.line().await, "(private) <bot> psst");
    assert_eq!(object(&mut rob).await["text"], "wipes");
    bot.send(&json!({"type":"quit","message":"\u{1b}[5mbye\u{7}"}).to_string())
        .await;
    bot.until_closed().await;
    assert_eq!(ana.line().await, "#lobby *** bot left (quit: bye)");
    assert_eq!(object(&mut rob).await["message"], "bye");
    // Nothing further: in particular no line made of the injected "\r\n#lobby <ana> fake".
    ana.silent_for(QUIET).await;
}
