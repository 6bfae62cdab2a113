//! The text protocol as an `nc` user sees it: listening, talking, commands, history.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use charla::limits::{Limits, MAX_NICK_CHARS};
use charla::server::ListenAddr;

use crate::support::{Client, QUIET, TestServer};

/// The pause between the pieces of a line sent in several writes.
const PAUSE: Duration = Duration::from_millis(50);

/// Reads the greeting on any transport and takes `nick`.
async fn greeted_as(mut client: Client, nick: &str) -> Client {
    client.expect("*** Welcome to charla").await;
    client.expect("you joined").await;
    client.send(&format!("/nick {nick}")).await;
    client
        .expect(&format!("*** you are now known as {nick}"))
        .await;
    client
}

/// Sends `pieces` as separate writes with a pause between them.
async fn send_in_pieces(client: &mut Client, pieces: &[&[u8]]) {
    for (i, piece) in pieces.iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(PAUSE).await;
        }
        client.send_raw(piece).await;
    }
}

// ---- 1. Listen ----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn ipv4_ipv6_and_unix_clients_share_one_hub() {
    let server = TestServer::on(
        &["tcp://127.0.0.1:0", "tcp://[::1]:0", "unix://chat.sock"],
        Limits {
            flood_rate: 0,
            ..Limits::default()
        },
    )
    .await;
    let tcp: Vec<_> = server
        .addrs
        .iter()
        .filter_map(|a| match a {
            ListenAddr::Tcp(sa) => Some(*sa),
            _ => None,
        })
        .collect();
    assert_eq!(tcp.len(), 2, "{:?}", server.addrs);
    let (v4, v6) = (tcp[0], tcp[1]);
    assert!(v4.is_ipv4() && v4.ip().is_loopback(), "{v4}");
    assert!(v6.is_ipv6() && v6.ip().is_loopback(), "{v6}");
    assert_ne!(v4.port(), 0, "port 0 resolves to the real port");
    assert_ne!(v6.port(), 0, "port 0 resolves to the real port");
    assert!(server.unix().exists(), "the socket file is there");

    let mut ana = greeted_as(Client::tcp(v4).await, "ana").await;
    let mut bea = greeted_as(Client::tcp(v6).await, "bea").await;
    ana.expect("is now known as bea").await;
    let mut cai = greeted_as(Client::unix(&server.unix()).await, "cai").await;
    ana.expect("is now known as cai").await;
    bea.expect("is now known as cai").await;

    ana.send("from IPv4").await;
    assert_eq!(bea.line().await, "#lobby <ana> from IPv4");
    assert_eq!(cai.line().await, "#lobby <ana> from IPv4");
    bea.send("from IPv6").await;
    assert_eq!(ana.line().await, "#lobby <bea> from IPv6");
    assert_eq!(cai.line().await, "#lobby <bea> from IPv6");
    cai.send("from a Unix socket").await;
    assert_eq!(ana.line().await, "#lobby <cai> from a Unix socket");
    assert_eq!(bea.line().await, "#lobby <cai> from a Unix socket");

    cai.send("/msg ana across transports").await;
    assert_eq!(ana.line().await, "(private) <cai> across transports");
    cai.send("/users").await;
    assert_eq!(cai.line().await, "#lobby *** 3 here: ana, bea, cai");
    bea.silent_for(QUIET).await;
}

// ---- 2. Talk ------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn greeting_arrives_before_typing_and_names_the_guest_and_help() {
    let server = TestServer::start().await;
    let mut c = Client::tcp(server.tcp()).await;
    // Nothing sent yet.
    let welcome = c.line().await;
    assert!(
        welcome.starts_with("*** Welcome to charla, guest-"),
        "{welcome:?}"
    );
    assert!(welcome.contains("/help"), "{welcome:?}");
    let guest = welcome
        .trim_start_matches("*** Welcome to charla, ")
        .split('!')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        c.line().await,
        format!("#lobby *** you joined; here now: {guest}")
    );
    c.silent_for(QUIET).await;
    // The guest nick is the one in force.
    let mut other = server.client().await;
    c.expect(" joined").await;
    c.send("hi").await;
    assert_eq!(other.line().await, format!("#lobby <{guest}> hi"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_line_reaches_every_other_member_once_and_is_not_echoed() {
    let server = TestServer::start().await;
    let mut c = server.crowd(&["ana", "bea", "cai"]).await;
    c[0].send("hola a todos").await;
    assert_eq!(c[1].line().await, "#lobby <ana> hola a todos");
    assert_eq!(c[2].line().await, "#lobby <ana> hola a todos");
    c[0].silent_for(QUIET).await;
    c[1].silent_for(QUIET).await;
    c[2].silent_for(QUIET).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn crlf_and_lf_both_end_a_line() {
    let server = TestServer::start().await;
    let mut c = server.crowd(&["ana", "bea"]).await;
    c[0].send_raw(b"with crlf\r\n").await;
    c[0].send_raw(b"with lf\n").await;
    c[0].send_raw(b"mixed one\r\nmixed two\n").await;
    assert_eq!(c[1].line().await, "#lobby <ana> with crlf");
    assert_eq!(c[1].line().await, "#lobby <ana> with lf");
    assert_eq!(c[1].line().await, "#lobby <ana> mixed one");
    assert_eq!(c[1].line().await, "#lobby <ana> mixed two");
    c[1].silent_for(QUIET).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_line_split_across_writes_arrives_as_one_line() {
    let server = TestServer::start().await;
    let mut c = server.crowd(&["ana", "bea"]).await;
    send_in_pieces(&mut c[0], &[b"hel", b"lo wor", b"ld\n"]).await;
    assert_eq!(c[1].line().await, "#lobby <ana> hello world");
    c[1].silent_for(QUIET).await;
    // The line ending itself split: CR in one write, LF in the next.
    send_in_pieces(&mut c[0], &[b"split ending\r", b"\n"]).await;
    assert_eq!(c[1].line().await, "#lobby <ana> split ending");
    // A multi-byte character split between writes.
    let euro = "12 €".as_bytes();
    send_in_pieces(&mut c[0], &[&euro[..4], &euro[4..], b"\n"]).await;
    assert_eq!(c[1].line().await, "#lobby <ana> 12 €");
    c[1].silent_for(QUIET).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_lines_in_one_write_arrive_as_two_lines() {
    let server = TestServer::start().await;
    let mut c = server.crowd(&["ana", "bea"]).await;
    c[0].send_raw(b"first\nsecond\n").await;
    assert_eq!(c[1].line().await, "#lobby <ana> first");
    assert_eq!(c[1].line().await, "#lobby <ana> second");
    c[1].silent_for(QUIET).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn nobody_can_start_a_line_with_someone_elses_prefix() {
    let server = TestServer::start().await;
    let mut c = server.crowd(&["ana", "bea", "mallory"]).await;
    let mallory = &mut c[2];
    mallory.send("hi").await;
    // A fake line started in the middle of a write, split at odd places.
    send_in_pieces(mallory, &[b"x\n#lob", b"by <an", b"a> fake\n"]).await;
    // A lone CR, which on a terminal would return to the start of the line.
    mallory.send_raw(b"real\r#lobby <ana> overwritten\n").await;
    // A CR LF pair in the middle of one write.
    mallory.send_raw(b"y\r\n#lobby <ana> z\n").await;
    // Escape sequences that would move the cursor or erase the line.
    mallory
        .send_raw(b"a\x1b[2K\x1b[1G#lobby <ana> erased\n")
        .await;
    let expected = [
        "hi",
        "x",
        "#lobby <ana> fake",
        "real#lobby <ana> overwritten",
        "y",
        "#lobby <ana> z",
        "a#lobby <ana> erased",
    ];
    for reader in [0, 1] {
        for text in expected {
            let line = c[reader].line().await;
            assert!(line.starts_with("#lobby <mallory> "), "{line:?}");
            assert_eq!(line, format!("#lobby <mallory> {text}"));
        }
        c[reader].silent_for(QUIET).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn utf8_text_arrives_intact() {
    let server = TestServer::start().await;
    let mut c = server.crowd(&["ana", "bea"]).await;
    let text = "ñandú, ¡olá! ação, 12 €, 😀👩‍👩‍👧 🇪🇸, 漢字かな한국어, Ελληνικά, العربية";
    c[0].send(text).await;
    assert_eq!(c[1].line().await, format!("#lobby <ana> {text}"));
}

// ---- 3. Commands --------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn nick_takes_utf8_letters_and_tells_the_room() {
    let server = TestServer::start().await;
    let mut c = server.crowd(&["ana", "bea"]).await;
    c[0].send("/nick Begoña").await;
    assert_eq!(c[0].line().await, "*** you are now known as Begoña");
    assert_eq!(c[1].line().await, "*** ana is now known as Begoña");
    c[0].send("/nick João").await;
    assert_eq!(c[0].line().await, "*** you are now known as João");
    assert_eq!(c[1].line().await, "*** Begoña is now known as João");
    c[0].send("olá").await;
    assert_eq!(c[1].line().await, "#lobby <João> olá");
    // The same nick with a combining tilde and in capitals is taken.
    c[1].send("/nick JOA\u{303}O").await;
    let error = c[1].line().await;
    assert!(error.starts_with("ERROR nick_taken: "), "{error:?}");
    c[1].send("/users").await;
    assert_eq!(c[1].line().await, "#lobby *** 2 here: bea, João");
    c[0].silent_for(QUIET).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_nick_taken_in_any_case_is_refused_and_the_old_one_kept() {
    let server = TestServer::start().await;
    let mut c = server.crowd(&["ana", "bea"]).await;
    for taken in ["ana", "ANA", "Ana"] {
        c[1].send(&format!("/nick {taken}")).await;
        let error = c[1].line().await;
        assert!(error.starts_with("ERROR nick_taken: "), "{error:?}");
    }
    c[1].send("/users").await;
    assert_eq!(c[1].line().await, "#lobby *** 2 here: ana, bea");
    c[1].send("still bea").await;
    assert_eq!(c[0].line().await, "#lobby <bea> still bea");
    c[0].silent_for(QUIET).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_nicks_are_refused() {
    let server = TestServer::start().await;
    let mut c = server.crowd(&["ana", "bea"]).await;
    let too_long = "ñ".repeat(MAX_NICK_CHARS + 1);
    for bad in [
        "two words",
        "bell\u{7}",
        "esc\u{1b}[31m",
        "tab\tbed",
        too_long.as_str(),
        "9lives",
        "#room",
        "semi;colon",
    ] {
        c[0].send(&format!("/nick {bad}")).await;
        let error = c[0].line().await;
        assert!(
            error.starts_with("ERROR invalid_nick: "),
            "{bad:?}: {error:?}"
        );
        assert!(
            !error.chars().any(char::is_control),
            "the error repeats no control character: {error:?}"
        );
    }
    c[0].send("/users").await;
    assert_eq!(c[0].line().await, "#lobby *** 2 here: ana, bea");
    c[1].silent_for(QUIET).await;
    // The longest nick allowed, counted in characters, not bytes.
    let longest = "ñ".repeat(MAX_NICK_CHARS);
    c[0].send(&format!("/nick {longest}")).await;
    assert_eq!(
        c[0].line().await,
        format!("*** you are now known as {longest}")
    );
    assert_eq!(
        c[1].line().await,
        format!("*** ana is now known as {longest}")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn users_lists_the_members_of_the_room() {
    let server = TestServer::start().await;
    let mut c = server.crowd(&["cai", "ana", "bea"]).await;
    c[0].send("/users").await;
    assert_eq!(c[0].line().await, "#lobby *** 3 here: ana, bea, cai");
    c[1].send("/join #ops").await;
    c[1].expect("#ops *** you joined").await;
    c[0].send("/users #ops").await;
    assert_eq!(c[0].line().await, "#ops *** 1 here: ana");
    c[1].send("/users").await;
    assert_eq!(c[1].line().await, "#ops *** 1 here: ana");
    c[1].send("/who #lobby").await;
    assert_eq!(c[1].line().await, "#lobby *** 3 here: ana, bea, cai");
    c[0].send("/users #nowhere").await;
    assert!(c[0].line().await.starts_with("ERROR invalid_room: "));
}

#[tokio::test(flavor = "multi_thread")]
async fn join_tells_the_room_and_messages_then_go_to_that_room_only() {
    let server = TestServer::start().await;
    let mut c = server.crowd(&["ana", "bea", "cai"]).await;
    c[1].send("/join #ops").await;
    assert_eq!(c[1].line().await, "#ops *** you joined; here now: bea");
    c[0].send("/join ops").await;
    assert_eq!(c[0].line().await, "#ops *** you joined; here now: ana, bea");
    assert_eq!(c[1].line().await, "#ops *** ana joined");
    c[2].silent_for(QUIET).await;

    c[0].send("in ops").await;
    assert_eq!(c[1].line().await, "#ops <ana> in ops");
    c[2].silent_for(QUIET).await;
    c[0].silent_for(QUIET).await;

    // cai, still only in #lobby, talks there; ana and bea are members too and hear it.
    c[2].send("in the lobby").await;
    assert_eq!(c[0].line().await, "#lobby <cai> in the lobby");
    assert_eq!(c[1].line().await, "#lobby <cai> in the lobby");

    // Joining a room you are in makes it the one you talk in again.
    c[0].send("/join #lobby").await;
    assert_eq!(
        c[0].line().await,
        "#lobby *** you joined; here now: ana, bea, cai"
    );
    c[0].send("back in the lobby").await;
    assert_eq!(c[2].line().await, "#lobby <ana> back in the lobby");
    assert_eq!(c[1].line().await, "#lobby <ana> back in the lobby");
    c[1].silent_for(QUIET).await;

    // (`/join #bad room` is a join with key `room` now that rooms may have keys.)
    c[0].send("/join #bad!room").await;
    assert!(c[0].line().await.starts_with("ERROR invalid_room: "));
}

#[tokio::test(flavor = "multi_thread")]
async fn leave_tells_the_room_with_the_reason() {
    let server = TestServer::start().await;
    let mut c = server.crowd(&["ana", "bea", "cai"]).await;
    c[0].send("/join #ops").await;
    c[0].expect("#ops *** you joined").await;
    c[1].send("/join #ops").await;
    c[1].expect("#ops *** you joined").await;
    c[0].expect("#ops *** bea joined").await;

    c[1].send("/leave #ops see you later").await;
    assert_eq!(c[1].line().await, "#ops *** you left");
    assert_eq!(c[0].line().await, "#ops *** bea left (left: see you later)");
    c[2].silent_for(QUIET).await;

    // bea now talks in the room she still has: #lobby.
    c[1].send("back").await;
    assert_eq!(c[0].line().await, "#lobby <bea> back");
    assert_eq!(c[2].line().await, "#lobby <bea> back");

    // Without arguments, the room you talk in; without a message, just "left".
    c[0].send("/leave").await;
    assert_eq!(c[0].line().await, "#ops *** you left");
    c[0].send("/part").await;
    assert_eq!(c[0].line().await, "#lobby *** you left");
    assert_eq!(c[1].line().await, "#lobby *** ana left (left)");
    assert_eq!(c[2].line().await, "#lobby *** ana left (left)");

    // In no room at all, a plain line has nowhere to go.
    c[0].send("anyone?").await;
    assert!(c[0].line().await.starts_with("ERROR not_in_room: "));
    c[0].send("/leave #ops").await;
    assert!(c[0].line().await.starts_with("ERROR not_in_room: "));
    c[1].silent_for(QUIET).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rooms_lists_every_room_with_its_member_count() {
    let server = TestServer::start().await;
    let mut c = server.crowd(&["ana", "bea", "cai"]).await;
    c[0].send("/rooms").await;
    assert_eq!(c[0].line().await, "*** rooms: #lobby (3)");
    c[1].send("/join #ops").await;
    c[1].expect("you joined").await;
    c[2].send("/join #dev").await;
    c[2].expect("you joined").await;
    c[2].send("/leave #lobby").await;
    c[2].expect("#lobby *** you left").await;
    assert_eq!(c[0].line().await, "#lobby *** cai left (left)");
    c[0].send("/rooms").await;
    assert_eq!(
        c[0].line().await,
        "*** rooms: #dev (1), #lobby (2), #ops (1)"
    );
    // An empty room is gone.
    c[2].send("/leave #dev").await;
    c[2].expect("#dev *** you left").await;
    c[0].send("/list").await;
    assert_eq!(c[0].line().await, "*** rooms: #lobby (2), #ops (1)");
}

#[tokio::test(flavor = "multi_thread")]
async fn msg_reaches_only_its_target() {
    let server = TestServer::start().await;
    let mut c = server.crowd(&["ana", "bea", "cai"]).await;
    c[0].send("/msg bea psst, ñ €").await;
    assert_eq!(c[1].line().await, "(private) <ana> psst, ñ €");
    c[2].silent_for(QUIET).await;
    c[0].silent_for(QUIET).await;
    // Case-insensitive, and whichever room the target is in.
    c[1].send("/join #elsewhere").await;
    c[1].expect("you joined").await;
    c[0].send("/msg BEA still there?").await;
    assert_eq!(c[1].line().await, "(private) <ana> still there?");
    c[0].send("/msg nobody hello").await;
    assert!(c[0].line().await.starts_with("ERROR no_such_nick: "));
    c[2].silent_for(QUIET).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn me_is_an_action_in_the_room() {
    let server = TestServer::start().await;
    let mut c = server.crowd(&["ana", "bea"]).await;
    c[0].send("/me waves 👋").await;
    assert_eq!(c[1].line().await, "#lobby * ana waves 👋");
    c[0].silent_for(QUIET).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn quit_says_goodbye_tells_the_room_and_closes() {
    let server = TestServer::start().await;
    let mut c = server.crowd(&["ana", "bea", "cai"]).await;
    c[1].send("/quit off to lunch").await;
    assert_eq!(
        c[1].until_closed().await,
        vec!["*** goodbye (quit: off to lunch)"]
    );
    assert_eq!(
        c[0].line().await,
        "#lobby *** bea left (quit: off to lunch)"
    );
    assert_eq!(
        c[2].line().await,
        "#lobby *** bea left (quit: off to lunch)"
    );
    c[2].send("/quit").await;
    assert_eq!(c[2].until_closed().await, vec!["*** goodbye (quit)"]);
    assert_eq!(c[0].line().await, "#lobby *** cai left (quit)");
    c[0].send("/users").await;
    assert_eq!(c[0].line().await, "#lobby *** 1 here: ana");
    // The nick is free again.
    let _bea_again = server.named("bea").await;
    c[0].expect("is now known as bea").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn closing_the_connection_tells_the_room() {
    let server = TestServer::start().await;
    let mut c = server.crowd(&["ana", "bea"]).await;
    let bea = c.pop().unwrap();
    drop(bea);
    assert_eq!(c[0].line().await, "#lobby *** bea left (connection lost)");
    // Also when the client only ends its sending side, as nc does at end of input.
    let mut cai = server.named("cai").await;
    c[0].expect("is now known as cai").await;
    cai.close_write().await;
    assert_eq!(c[0].line().await, "#lobby *** cai left (connection lost)");
    assert_eq!(
        cai.until_closed().await,
        vec!["*** goodbye (connection lost)"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn help_lists_the_commands() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    c.send("/help").await;
    let first = c.line().await;
    assert!(first.starts_with("*** commands"), "{first:?}");
    let mut lines = Vec::new();
    loop {
        let line = c.line().await;
        assert!(line.starts_with("***   /"), "{line:?}");
        let done = line.contains("//text");
        lines.push(line);
        if done {
            break;
        }
    }
    for command in [
        "/nick", "/join", "/leave", "/users", "/rooms", "/msg", "/me", "/history", "/quit", "/help",
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("***   {command} "))),
            "{command} missing from {lines:#?}"
        );
    }
    c.silent_for(QUIET).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mistakes_get_an_error_and_the_connection_keeps_working() {
    let server = TestServer::start().await;
    let mut c = server.crowd(&["ana", "bea"]).await;
    for (line, code) in [
        ("/frobnicate", "unknown_command"),
        ("/join", "missing_argument"),
        ("/join   ", "missing_argument"),
        ("/msg ana", "missing_argument"),
        ("/msg", "missing_argument"),
        ("/nick", "missing_argument"),
        ("/me", "missing_argument"),
        ("/history lots", "invalid_argument"),
        ("\u{1b}[2J", "empty_message"),
    ] {
        c[1].send(line).await;
        let error = c[1].line().await;
        assert!(
            error.starts_with(&format!("ERROR {code}: ")),
            "{line:?} gave {error:?}"
        );
        c[1].send(&format!("after {code}")).await;
        assert_eq!(c[0].line().await, format!("#lobby <bea> after {code}"));
    }
    // Errors go to the one who erred only; a line starting with // is chat.
    c[1].send("//etc/passwd is a path").await;
    assert_eq!(c[0].line().await, "#lobby <bea> /etc/passwd is a path");
    c[0].silent_for(QUIET).await;
}

// ---- 4. History ---------------------------------------------------------------------------

/// `HH:MM` in UTC of a time in milliseconds since the epoch, as history lines show it.
fn utc_hhmm(ms: u128) -> String {
    let minutes = ms / 60_000;
    format!("{:02}:{:02}", minutes / 60 % 24, minutes % 60)
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

/// Splits `#room [history HH:MM UTC] rest`, checking the time is between `from` and `to`.
fn history_line(line: &str, room: &str, from: u128, to: u128) -> String {
    let prefix = format!("{room} [history ");
    let rest = line
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{line:?} is not a history line of {room}"));
    let (time, said) = rest
        .split_once(" UTC] ")
        .unwrap_or_else(|| panic!("{line:?} has no time"));
    assert!(
        time == utc_hhmm(from) || time == utc_hhmm(to),
        "{line:?}: the time is neither {} nor {}",
        utc_hhmm(from),
        utc_hhmm(to)
    );
    said.to_string()
}

fn short_history() -> Limits {
    Limits {
        history_per_room: 3,
        flood_rate: 0,
        ..Limits::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_newcomer_gets_the_last_messages_oldest_first() {
    let server = TestServer::with(short_history()).await;
    let mut c = server.crowd(&["ana", "bea"]).await;
    let from = now_ms();
    for i in 1..=4 {
        c[0].send(&format!("message {i}")).await;
    }
    c[0].send("/me waves").await;
    // bea has them all, so the room has remembered them all.
    for i in 1..=4 {
        assert_eq!(c[1].line().await, format!("#lobby <ana> message {i}"));
    }
    assert_eq!(c[1].line().await, "#lobby * ana waves");

    let mut newcomer = Client::tcp(server.tcp()).await;
    let welcome = newcomer.line().await;
    assert!(welcome.starts_with("*** Welcome to charla"), "{welcome:?}");
    let mut replayed = Vec::new();
    for _ in 0..3 {
        replayed.push(history_line(
            &newcomer.line().await,
            "#lobby",
            from,
            now_ms(),
        ));
    }
    assert_eq!(
        replayed,
        ["<ana> message 3", "<ana> message 4", "* ana waves"]
    );
    let joined = newcomer.line().await;
    assert!(
        joined.starts_with("#lobby *** you joined; here now: ana, bea, guest-"),
        "{joined:?}"
    );

    newcomer.send("/history 2").await;
    let to = now_ms();
    assert_eq!(
        history_line(&newcomer.line().await, "#lobby", from, to),
        "<ana> message 4"
    );
    assert_eq!(
        history_line(&newcomer.line().await, "#lobby", from, to),
        "* ana waves"
    );
    newcomer.silent_for(QUIET).await;

    newcomer.send("/history").await;
    for expected in ["<ana> message 3", "<ana> message 4", "* ana waves"] {
        assert_eq!(
            history_line(&newcomer.line().await, "#lobby", from, to),
            expected
        );
    }
    newcomer.send("/history 99").await;
    for expected in ["<ana> message 3", "<ana> message 4", "* ana waves"] {
        assert_eq!(
            history_line(&newcomer.line().await, "#lobby", from, to),
            expected
        );
    }
    // The others heard the newcomer arrive, and none of the replays.
    let arrival = c[0].line().await;
    assert!(
        arrival.starts_with("#lobby *** guest-") && arrival.ends_with(" joined"),
        "{arrival:?}"
    );
    c[0].silent_for(QUIET).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn each_room_replays_its_own_history_on_join() {
    let server = TestServer::with(short_history()).await;
    let mut c = server.crowd(&["ana", "bea"]).await;
    let from = now_ms();
    c[0].send("/join #ops").await;
    c[0].expect("#ops *** you joined").await;
    c[0].send("ops only").await;
    // A round trip to ana proves her line was handled.
    c[0].send("/users").await;
    assert_eq!(c[0].line().await, "#ops *** 1 here: ana");
    c[1].send("lobby only").await;
    assert_eq!(c[0].line().await, "#lobby <bea> lobby only");

    c[1].send("/join #ops").await;
    let said = history_line(&c[1].line().await, "#ops", from, now_ms());
    assert_eq!(said, "<ana> ops only");
    assert_eq!(c[1].line().await, "#ops *** you joined; here now: ana, bea");
    c[1].send("/history").await;
    let said = history_line(&c[1].line().await, "#ops", from, now_ms());
    assert_eq!(said, "<ana> ops only");
    c[1].silent_for(QUIET).await;

    // A room with nothing said yet says so.
    c[1].send("/join #quiet").await;
    assert_eq!(c[1].line().await, "#quiet *** you joined; here now: bea");
    c[1].send("/history").await;
    assert_eq!(c[1].line().await, "#quiet *** no history yet");
}

/// `/history since ID` with nothing newer, and `/history 0`, do not pass for a room with no
/// history: the room has some.
#[tokio::test(flavor = "multi_thread")]
async fn asking_for_no_history_does_not_say_the_room_has_none() {
    let server = TestServer::start().await;
    let mut ana = server.json("ana").await;
    ana.send(r##"{"type":"say","room":"#lobby","text":"the last word","ref":1}"##)
        .await;
    let id = ana.expect_json("ack").await["id"].as_u64().unwrap();
    let mut bea = server.named("bea").await;
    bea.send(&format!("/history since {id}")).await;
    assert_eq!(
        bea.line().await,
        format!("#lobby *** nothing was said after message {id}")
    );
    bea.send(&format!("/history since {}", id - 1)).await;
    assert!(bea.line().await.ends_with("<ana> the last word"));
    bea.send("/history 0").await;
    assert_eq!(
        bea.line().await,
        "ERROR invalid_argument: \"0\" is not a count of messages; try /history 20"
    );
}

/// `/lusers` counts rooms in words a person reads: "1 room", not "1 rooms".
#[tokio::test(flavor = "multi_thread")]
async fn lusers_says_one_room_in_the_singular() {
    let server = TestServer::start().await;
    let mut ana = server.named("ana").await;
    ana.send("/lusers").await;
    assert_eq!(
        ana.expect("connected").await,
        "*** 1 connected (at most 1 at once), 1 room"
    );
    ana.send("/join #ops").await;
    ana.expect("you joined").await;
    ana.send("/lusers").await;
    assert_eq!(
        ana.expect("connected").await,
        "*** 1 connected (at most 1 at once), 2 rooms"
    );
}
