//! Untrusted input hurts no one: overlong lines, bad bytes, terminal escapes, floods,
//! too many connections and silent clients each cost only the one who sent them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use charla::limits::Limits;
use tokio::net::TcpSocket;
use tokio::time::Instant;

use crate::support::{Client, PATIENCE, QUIET, TestServer};

fn no_flood_control(limits: Limits) -> Limits {
    Limits {
        flood_rate: 0,
        ..limits
    }
}

/// The nick in a `#room *** NICK joined` notice.
fn joined_nick(line: &str) -> String {
    line.strip_prefix("#lobby *** ")
        .and_then(|rest| rest.strip_suffix(" joined"))
        .unwrap_or_else(|| panic!("not a join notice: {line:?}"))
        .to_owned()
}

#[tokio::test]
async fn overlong_line_is_refused_and_its_rest_discarded() {
    let server = TestServer::with(no_flood_control(Limits {
        max_line_bytes: 64,
        ..Limits::default()
    }))
    .await;
    let mut ana = server.named("ana").await;
    let mut bea = server.named("bea").await;
    ana.expect("now known as bea").await;

    // Exactly at the bound is fine, and a CRLF ending does not count against it.
    let at_bound = "x".repeat(64);
    ana.send_raw(format!("{at_bound}\r\n").as_bytes()).await;
    assert_eq!(
        bea.next().await.unwrap(),
        format!("#lobby <ana> {at_bound}")
    );

    // A complete overlong line in one write.
    ana.send(&format!("{}SECRET-1", "y".repeat(80))).await;
    let error = ana.next().await.unwrap();
    assert!(error.starts_with("ERROR line_too_long: "), "{error:?}");

    // An overlong line arriving in pieces: refused as soon as it passes the bound, before
    // its end arrives; everything up to its newline is dropped, not taken for a new line.
    ana.send_raw("z".repeat(100).as_bytes()).await;
    let error = ana.next().await.unwrap();
    assert!(error.starts_with("ERROR line_too_long: "), "{error:?}");
    ana.send_raw(b"SECRET-2 is still the same line").await;
    ana.send_raw(b" and so is this\r\n").await;
    ana.send("after").await;

    // Bea saw none of it; the next line she gets is the normal one.
    assert_eq!(bea.next().await.unwrap(), "#lobby <ana> after");
    // One error per overlong line, and Ana is still connected and heard.
    ana.silent_for(QUIET).await;
    ana.send("/users").await;
    assert_eq!(ana.next().await.unwrap(), "#lobby *** 2 here: ana, bea");
    bea.silent_for(QUIET).await;
}

#[tokio::test]
async fn a_huge_line_is_refused_early_and_never_buffered() {
    let server = TestServer::start().await;
    let mut ana = server.named("ana").await;
    let mut bea = server.named("bea").await;
    ana.expect("now known as bea").await;

    // 1 MiB without a newline: the error comes after the first chunk already.
    let chunk = vec![b'a'; 64 * 1024];
    ana.send_raw(&chunk).await;
    let error = ana.next().await.unwrap();
    assert!(error.starts_with("ERROR line_too_long: "), "{error:?}");
    for _ in 1..16 {
        ana.send_raw(&chunk).await;
    }
    // The rest is discarded without another word, and the line ends as usual.
    ana.silent_for(QUIET).await;
    ana.send_raw(b"\n").await;
    ana.send("still here").await;
    assert_eq!(bea.next().await.unwrap(), "#lobby <ana> still here");

    // The server is fine: a newcomer is served and sees both.
    let mut cid = server.named("cid").await;
    cid.send("/users").await;
    assert_eq!(
        cid.next().await.unwrap(),
        "#lobby *** 3 here: ana, bea, cid"
    );
}

#[tokio::test]
async fn invalid_utf8_is_refused_and_nothing_relayed() {
    let server = TestServer::start().await;
    let mut ana = server.named("ana").await;
    let mut bea = server.named("bea").await;
    ana.expect("now known as bea").await;

    for bad in [&b"caf\xe9\n"[..], b"\xff\xfe\xfd\n", b"/nick \xc3\n"] {
        ana.send_raw(bad).await;
        let error = ana.next().await.unwrap();
        assert!(
            error.starts_with("ERROR invalid_utf8: "),
            "{bad:?}: {error:?}"
        );
    }
    // The connection stays, and valid UTF-8 goes through.
    ana.send("café").await;
    assert_eq!(bea.next().await.unwrap(), "#lobby <ana> café");
    ana.silent_for(QUIET).await;
}

/// A line another client received must not move their cursor, recolour, retitle, beep or
/// overwrite: no C0 control, no DEL, no C1 control.
fn assert_printable(line: &str) {
    assert!(
        line.bytes().all(|b| b >= 0x20 && b != 0x7f),
        "control byte in {line:?}"
    );
    assert!(
        !line.chars().any(|c| ('\u{80}'..='\u{9f}').contains(&c)),
        "C1 control in {line:?}"
    );
}

#[tokio::test]
async fn control_characters_never_reach_other_terminals() {
    let server = TestServer::start().await;
    let mut ana = server.named("ana").await;
    let mut bea = server.named("bea").await;
    ana.expect("now known as bea").await;

    let cases = [
        ("\u{1b}[31mred\u{1b}[0m text", "red text"),
        ("\u{1b}]0;pwned title\u{7}window", "window"),
        ("bell\u{7}\u{7}", "bell"),
        ("back\u{8}\u{8}\u{8}\u{8}spaced", "backspaced"),
        ("c1 \u{85}next line \u{9b}2Jcsi", "c1 next line csi"),
        ("lone\rcr overwrites", "lonecr overwrites"),
        ("nul\0byte", "nulbyte"),
        ("del\u{7f}ete", "delete"),
        ("tab\there", "tab here"),
    ];
    for (sent, shown) in cases {
        ana.send(sent).await;
        let line = bea.next().await.unwrap();
        assert_printable(&line);
        assert_eq!(line, format!("#lobby <ana> {shown}"), "sent {sent:?}");
    }

    // Text from every other path is cleaned the same way.
    ana.send("/me \u{1b}[1mwaves\u{7}").await;
    let line = bea.next().await.unwrap();
    assert_printable(&line);
    assert_eq!(line, "#lobby * ana waves");
    ana.send("/msg bea \u{1b}[2Jpsst\u{8}").await;
    let line = bea.next().await.unwrap();
    assert_printable(&line);
    assert_eq!(line, "(private) <ana> psst");

    // Nothing printable left: refused, not relayed as an empty line.
    ana.send("\u{1b}[2J\u{7}\u{1b}[H").await;
    let error = ana.next().await.unwrap();
    assert!(error.starts_with("ERROR empty_message: "), "{error:?}");

    // Everything that is not a control character arrives intact.
    let unicode = "ñ á ã € 😀 👩\u{200d}👩\u{200d}👧 漢字 かな Ελληνικά";
    ana.send(unicode).await;
    let line = bea.next().await.unwrap();
    assert_printable(&line);
    assert_eq!(line, format!("#lobby <ana> {unicode}"));

    // A parting message too.
    ana.send("/quit bye\u{1b}]0;owned\u{7}\u{9b}1m").await;
    let line = bea.next().await.unwrap();
    assert_printable(&line);
    assert_eq!(line, "#lobby *** ana left (quit: bye)");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flooder_is_refused_then_disconnected_and_no_one_else_suffers() {
    let server = TestServer::with(Limits {
        flood_burst: 5,
        flood_rate: 1,
        flood_kick_after: 5,
        ..Limits::default()
    })
    .await;
    let mut bea = server.named("bea").await;
    // The flooder keeps its guest nick: a /nick would spend one line of its burst.
    let mut flooder = server.client().await;
    let nick = joined_nick(&bea.next().await.unwrap());

    // Ten lines at once, far faster than one a second: the burst of five passes, the next
    // four are refused, the fifth refusal in a row disconnects.
    let lines: String = (1..=10).map(|i| format!("flood {i}\n")).collect();
    flooder.send_raw(lines.as_bytes()).await;

    let seen = flooder.until_closed().await;
    let (goodbye, errors) = seen.split_last().expect("some lines");
    assert_eq!(errors.len(), 4, "{seen:#?}");
    for error in errors {
        assert!(error.starts_with("ERROR flood: "), "{seen:#?}");
    }
    assert_eq!(goodbye, "*** goodbye (flooding)");

    for i in 1..=5 {
        assert_eq!(
            bea.next().await.unwrap(),
            format!("#lobby <{nick}> flood {i}")
        );
    }
    assert_eq!(
        bea.next().await.unwrap(),
        format!("#lobby *** {nick} left (flooding)")
    );

    // Others chat on as before.
    let mut cid = server.named("cid").await;
    bea.expect("now known as cid").await;
    cid.send("still works").await;
    assert_eq!(bea.next().await.unwrap(), "#lobby <cid> still works");
    bea.send("/users").await;
    assert_eq!(bea.next().await.unwrap(), "#lobby *** 2 here: bea, cid");
}

/// On one thread (this test's runtime), a connection whose input never runs dry must still
/// yield: the others' lines get through while it streams.
#[tokio::test]
async fn a_client_that_never_pauses_does_not_starve_the_others() {
    let server = TestServer::with(no_flood_control(Limits::default())).await;
    let mut bea = server.named("bea").await;
    let mut cid = server.named("cid").await;
    bea.expect("now known as cid").await;

    // A thread of its own with a blocking socket: its lines keep coming whatever this
    // runtime does, until told to stop.
    let addr = server.tcp();
    let stop = Arc::new(AtomicBool::new(false));
    let streaming = std::thread::spawn({
        let stop = stop.clone();
        move || {
            use std::io::Write;
            let mut hose = std::net::TcpStream::connect(addr).unwrap();
            hose.set_write_timeout(Some(Duration::from_millis(50)))
                .unwrap();
            hose.write_all(b"/join #hose\n").unwrap();
            let chunk: Vec<u8> = (0..1000)
                .flat_map(|i| format!("line {i} of a stream that never pauses\n").into_bytes())
                .collect();
            while !stop.load(Ordering::Relaxed) {
                // A timeout (the server not reading for a moment) just means try again.
                let _ = hose.write_all(&chunk);
            }
        }
    });

    cid.send("still here").await;
    assert_eq!(bea.expect("still here").await, "#lobby <cid> still here");
    assert!(!streaming.is_finished(), "the stream was still flowing");
    stop.store(true, Ordering::Relaxed);
    streaming.join().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_server_refuses_newcomers_until_a_place_is_free() {
    let server = TestServer::with(no_flood_control(Limits {
        max_connections: 2,
        ..Limits::default()
    }))
    .await;
    let mut ana = server.named("ana").await;
    let mut bea = server.named("bea").await;
    ana.expect("now known as bea").await;

    for _ in 0..2 {
        let mut third = Client::tcp(server.tcp()).await;
        let seen = third.until_closed().await;
        assert_eq!(seen.len(), 1, "{seen:#?}");
        assert!(seen[0].starts_with("ERROR server_full: "), "{seen:#?}");
    }

    // Those inside noticed nothing.
    ana.send("hi").await;
    assert_eq!(bea.next().await.unwrap(), "#lobby <ana> hi");

    ana.send("/quit").await;
    assert_eq!(ana.until_closed().await, ["*** goodbye (quit)"]);
    drop(ana);
    assert_eq!(bea.next().await.unwrap(), "#lobby *** ana left (quit)");

    let mut cid = server.client_once_admitted().await;
    cid.send("/nick cid").await;
    cid.expect("you are now known as cid").await;
    bea.expect("now known as cid").await;
    cid.send("in at last").await;
    assert_eq!(bea.next().await.unwrap(), "#lobby <cid> in at last");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_address_may_not_take_every_place() {
    let server = TestServer::on(
        &["tcp://127.0.0.1:0", "unix://charla.sock"],
        no_flood_control(Limits {
            max_connections_per_ip: 2,
            ..Limits::default()
        }),
    )
    .await;
    let mut ana = server.named("ana").await;
    let _second = server.client().await;

    let mut third = Client::tcp(server.tcp()).await;
    let seen = third.until_closed().await;
    assert_eq!(seen.len(), 1, "{seen:#?}");
    assert!(
        seen[0].starts_with("ERROR too_many_connections: 127.0.0.1 "),
        "{seen:#?}"
    );

    // Another loopback address has its own allowance.
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut other = Client::tcp_via(socket, server.tcp()).await;
    other.expect("*** Welcome to charla").await;
    other.expect("you joined").await;
    other.send("/nick other").await;
    other.expect("you are now known as other").await;
    other.send("from 127.0.0.2").await;
    assert_eq!(ana.expect("<other>").await, "#lobby <other> from 127.0.0.2");

    // Unix-socket clients have no IP address and are not counted per address.
    let mut locals = Vec::new();
    for _ in 0..3 {
        let mut local = Client::unix(&server.unix()).await;
        local.expect("*** Welcome to charla").await;
        local.expect("you joined").await;
        locals.push(local);
    }
    locals[2].send("/users").await;
    let users = locals[2].expect("here:").await;
    assert!(users.starts_with("#lobby *** 6 here: "), "{users:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_client_times_out_and_a_talking_one_stays() {
    // Long enough that a test thread starved of CPU on a loaded machine still keeps the
    // busy client talking within it.
    let idle_timeout = Duration::from_millis(1000);
    let server = TestServer::with(no_flood_control(Limits {
        idle_timeout,
        ..Limits::default()
    }))
    .await;
    let mut idle = server.named("idle").await;
    let mut busy = server.named("busy").await;

    // Busy sends an empty line every 50 ms, for well over the timeout, until Idle is gone.
    let start = Instant::now();
    let mut saw_timeout = false;
    while !saw_timeout || start.elapsed() < idle_timeout * 5 / 2 {
        assert!(start.elapsed() < PATIENCE, "idle was never timed out");
        busy.send("").await;
        match busy.next_within(Duration::from_millis(50)).await {
            Ok(Some(line)) if line == "#lobby *** idle left (timed out)" => saw_timeout = true,
            Ok(Some(line)) => panic!("unexpected {line:?}"),
            Ok(None) => panic!("the busy client was disconnected"),
            Err(()) => {}
        }
    }

    let seen = idle.until_closed().await;
    assert_eq!(
        seen.last().map(String::as_str),
        Some("*** goodbye (timed out)")
    );
    busy.send("/users").await;
    assert_eq!(busy.next().await.unwrap(), "#lobby *** 1 here: busy");
}

/// A server whose #big holds 300 messages m0…m299 of 4,000 `"` each, more than a send queue
/// in JSON; and ana, who said them, still in it.
async fn a_room_of_long_messages() -> (TestServer, Client) {
    let server = TestServer::with(Limits {
        flood_rate: 0,
        history_per_room: 1000,
        ..Limits::default()
    })
    .await;
    let mut ana = server.named("ana").await;
    ana.send("/join #big").await;
    ana.expect("you joined").await;
    let quotes = "\"".repeat(4000);
    for i in 0..300 {
        ana.send(&format!("m{i} {quotes}")).await;
    }
    ana.send("/users").await;
    ana.expect("here:").await;
    (server, ana)
}

/// A history answer bigger than the asker's send queue is cut to what fits, rather than
/// putting the asker out for "send queue exceeded" before it reads a line of it: a room
/// whose kept history encodes to more than the queue in JSON (a `"` is two bytes there)
/// would otherwise put out every JSON client that joins it, and `/history since` would
/// put out whoever asks for more than a queue of messages.
#[tokio::test(flavor = "multi_thread")]
async fn a_history_answer_bigger_than_the_send_queue_is_cut_to_fit() {
    let (server, _ana) = a_room_of_long_messages().await;

    let mut bot = Client::tcp(server.tcp()).await;
    bot.expect("*** Welcome").await;
    bot.send(r##"{"type":"hello","nick":"bot","rooms":["#big"]}"##)
        .await;
    let replay = bot.expect_json("history").await;
    let messages = replay["messages"].as_array().unwrap();
    let last = messages.last().unwrap()["text"].as_str().unwrap();
    assert!(last.starts_with("m299 "), "the newest are replayed");
    bot.expect_json("welcome").await;

    bot.send(r##"{"type":"history","room":"#big","since":0,"ref":"s"}"##)
        .await;
    let since = bot.expect_json("history").await;
    assert_eq!(since["ref"], "s");
    let messages = since["messages"].as_array().unwrap();
    assert!(!messages.is_empty());
    // `since` keeps the oldest (asked again from its last id for more), the replay the
    // newest.
    let first = messages[0]["id"].as_u64().unwrap();
    let replayed_first = replay["messages"][0]["id"].as_u64().unwrap();
    assert!(first < replayed_first, "{first} then {replayed_first}");
    // Still connected: it answers.
    bot.send(r#"{"type":"users","ref":"u"}"#).await;
    let users = bot.expect_json("users").await;
    assert_eq!(users["ref"], "u");
}

/// A resume whose replay is bigger than the client's send queue is cut to its newest
/// entries too, and the ones cut are in the `gap` before it: resuming from entry 0 of a room
/// of 300 long messages, the client hears exactly which numbers it will not get.
#[tokio::test(flavor = "multi_thread")]
async fn a_resume_cut_to_fit_the_send_queue_says_what_it_left_out_in_its_gap() {
    let (server, _ana) = a_room_of_long_messages().await;

    let mut bot = Client::tcp(server.tcp()).await;
    bot.expect("*** Welcome").await;
    bot.send(r##"{"type":"hello","nick":"bot","rooms":["#big"],"since":{"#big":0}}"##)
        .await;
    let gap = bot.expect_json("gap").await;
    let replay = bot.expect_json("history").await;
    let messages = replay["messages"].as_array().unwrap();
    let first = messages[0]["seq"].as_u64().unwrap();
    assert!(first > 1, "cut: {first}");
    assert_eq!(
        (gap["from"].as_u64(), gap["to"].as_u64()),
        (Some(1), Some(first - 1))
    );
    let last = messages.last().unwrap();
    assert!(last["text"].as_str().unwrap().starts_with("m299 "));
    assert_eq!(last["seq"].as_u64(), Some(300));
}
