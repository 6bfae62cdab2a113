//! `charla connect` with stdin not a terminal, and `charla send`: the real binary against a
//! real server, checked by what a text client receives and by the client's output and exit
//! status.

use std::io::Write;
use std::process::{ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use charla::limits::Limits;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader as AsyncBufReader};
use tokio::net::TcpListener;

use crate::binary::{self, Binary};
use crate::support::{PATIENCE, TestServer};

/// A running client: stdin to write to, stdout read line by line.
type Client = Binary;

/// How a client run ended.
pub struct Ended {
    pub status: ExitStatus,
    pub stdout: Vec<String>,
    pub stderr: String,
}

impl Binary {
    /// `charla ARGS` with stdin to write to.
    pub fn piped(args: &[&str]) -> Client {
        let mut command = binary::command(args);
        command.stdin(Stdio::piped());
        Binary::start(command)
    }

    pub fn write(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        stdin.write_all(text.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Waits for a stdout line containing `needle`; returns it.
    pub fn expect_stdout(&self, needle: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.stdout.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(line) => seen.push(line),
                Err(_) => break,
            }
        }
        panic!("no {needle:?} on stdout; saw {seen:#?}");
    }

    /// Closes stdin and waits for the exit, at most `PATIENCE`.
    pub fn finish(mut self) -> Ended {
        self.stdin = None;
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "the client did not exit");
            thread::sleep(Duration::from_millis(20));
        };
        Ended {
            status,
            stdout: self.stdout.try_iter().collect(),
            stderr: self.stderr(),
        }
    }
}

/// Runs `charla ARGS` with `input` on stdin to completion, off the async runtime.
pub async fn run(args: &[&str], input: &str) -> Ended {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let input = input.to_string();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut client = Client::piped(&args);
        client.write(&input);
        client.finish()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn piped_lines_are_sent_and_the_client_exits_once_all_are_acknowledged() {
    let server = TestServer::start().await;
    let mut ana = server.named("ana").await;
    let mut ops = server.named("opsie").await;
    ana.expect("opsie").await;
    ops.send("/join #ops").await;
    ops.expect("you joined").await;
    let addr = server.tcp().to_string();

    let ended = run(
        &["connect", &addr, "--name", "bot"],
        "hello, ñandú 😀\n/join #ops\ndeploy 日本 done\n//slash\n",
    )
    .await;

    assert!(ended.status.success(), "{}", ended.stderr);
    assert_eq!(ana.expect("<bot>").await, "#lobby <bot> hello, ñandú 😀");
    assert_eq!(
        ops.expect("#ops <bot>").await,
        "#ops <bot> deploy 日本 done"
    );
    assert_eq!(ops.expect("#ops <bot>").await, "#ops <bot> /slash");
    // It said goodbye rather than dropping the connection.
    assert_eq!(
        ops.expect("#ops *** bot left").await,
        "#ops *** bot left (quit)"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn each_event_is_printed_as_one_plain_line() {
    let server = TestServer::start().await;
    let mut ana = server.named("ana").await;
    let addr = server.tcp().to_string();
    let mut bot = tokio::task::spawn_blocking(move || {
        Client::piped(&["connect", &addr, "--name", "bot", "--room", "#ops"])
    })
    .await
    .unwrap();
    ana.expect("#lobby *** bot joined").await;
    ana.send("hola bot, ¿qué tal?").await;
    ana.send("/msg bot psst").await;
    ana.send("/join #ops").await;
    ana.send("/me waves").await;

    let lines = tokio::task::spawn_blocking(move || {
        let lines = [
            bot.expect_stdout("<ana>"),
            bot.expect_stdout("(private)"),
            bot.expect_stdout("ana joined"),
            bot.expect_stdout("* ana"),
        ];
        bot.write("/users\n");
        let users = bot.expect_stdout("here:");
        (lines, users, bot.finish())
    })
    .await
    .unwrap();
    let (lines, users, ended) = lines;
    let bodies: Vec<&str> = lines.iter().map(|l| without_clock(l)).collect();
    assert_eq!(
        bodies,
        [
            "#lobby <ana> hola bot, ¿qué tal?",
            "(private) <ana> psst",
            "#ops *** ana joined",
            "#ops * ana waves",
        ]
    );
    assert_eq!(without_clock(&users), "#ops *** 2 here: ana, bot");
    for line in lines.iter().chain(&ended.stdout) {
        assert!(!line.contains('\x1b'), "an escape code in {line:?}");
    }
    assert!(ended.status.success(), "{}", ended.stderr);
}

/// An IRC NOTICE, to the room or to the console client alone, is shown `-nick- text`, as
/// the text protocol shows it, not as a message that could be answered.
#[tokio::test(flavor = "multi_thread")]
async fn irc_notices_are_shown_as_notices() {
    let server = crate::irc::server().await;
    let mut irc = crate::irc::Irc::registered(&server, "ana").await;
    let addr = server.tcp().to_string();
    let bot = tokio::task::spawn_blocking(move || {
        Client::piped(&["connect", &addr, "--name", "bot", "--room", "#lobby"])
    })
    .await
    .unwrap();
    irc.expect(":bot!bot@charla JOIN #lobby").await;
    irc.send("NOTICE #lobby :the build is green").await;
    irc.send("NOTICE bot :a quiet word").await;
    irc.send("PRIVMSG bot :a question").await;
    let lines = tokio::task::spawn_blocking(move || {
        let lines = [
            bot.expect_stdout("the build"),
            bot.expect_stdout("quiet"),
            bot.expect_stdout("question"),
        ];
        bot.finish();
        lines
    })
    .await
    .unwrap();
    let bodies: Vec<&str> = lines.iter().map(|l| without_clock(l)).collect();
    assert_eq!(
        bodies,
        [
            "#lobby -ana- the build is green",
            "(private) -ana- a quiet word",
            "(private) <ana> a question",
        ]
    );
}

/// `HH:MM rest` → `rest`.
pub fn without_clock(line: &str) -> &str {
    let (clock, rest) = line.split_once(' ').expect("a clock, then the line");
    assert!(
        clock.len() == 5 && clock.as_bytes()[2] == b':',
        "{line:?} starts with no clock"
    );
    rest
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_connection_is_explained_and_fails() {
    let port = {
        let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        holder.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    for args in [vec!["connect", &addr], vec!["send", &addr, "hi"]] {
        let ended = run(&args, "hello\n").await;
        assert!(!ended.status.success());
        assert_eq!(
            ended.stderr.trim(),
            format!("charla: connection refused at 127.0.0.1:{port} — is charla serve running?")
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_taken_or_invalid_nick_or_room_fails_the_script() {
    let server = TestServer::start().await;
    let _ana = server.named("ana").await;
    let addr = server.tcp().to_string();
    let ended = run(&["send", &addr, "--name", "ANA", "hi"], "").await;
    assert!(!ended.status.success());
    assert!(ended.stderr.contains("nick_taken"), "{}", ended.stderr);
    let ended = run(&["connect", &addr, "--name", "9lives"], "hi\n").await;
    assert!(!ended.status.success());
    assert!(ended.stderr.contains("invalid_nick"), "{}", ended.stderr);
    let ended = run(&["send", &addr, "--room", "no spaces", "hi"], "").await;
    assert!(!ended.status.success());
    assert!(
        ended.stderr.contains("is not a valid room name"),
        "{}",
        ended.stderr
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_line_makes_the_exit_status_fail_but_the_rest_is_sent() {
    let server = TestServer::start().await;
    let mut ana = server.named("ana").await;
    let addr = server.tcp().to_string();
    let ended = run(
        &["connect", &addr, "--name", "bot"],
        "/msg nobody psst\n/bogus\nstill sent\n",
    )
    .await;
    assert!(!ended.status.success());
    assert!(ended.stderr.contains("no_such_nick"), "{}", ended.stderr);
    assert!(
        ended.stderr.contains("/bogus is not a command"),
        "{}",
        ended.stderr
    );
    assert!(
        ended.stderr.contains("2 line(s) were refused"),
        "{}",
        ended.stderr
    );
    assert_eq!(ana.expect("<bot>").await, "#lobby <bot> still sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn send_publishes_its_arguments_or_each_stdin_line_in_a_room() {
    let server = TestServer::start().await;
    let mut ops = server.named("opsie").await;
    ops.send("/join #ops").await;
    ops.expect("you joined").await;
    let addr = server.tcp().to_string();

    let ended = run(
        &[
            "send", &addr, "--room", "ops", "--name", "cron", "build", "1234", "passed",
        ],
        "",
    )
    .await;
    assert!(ended.status.success(), "{}", ended.stderr);
    assert!(ended.stdout.is_empty(), "{:?}", ended.stdout);
    assert_eq!(ops.expect("<cron>").await, "#ops <cron> build 1234 passed");

    let ended = run(
        &["send", "--addr", &addr, "--room", "#ops"],
        "one\n\n/not a command\n",
    )
    .await;
    assert!(ended.status.success(), "{}", ended.stderr);
    assert!(ops.expect("> one").await.ends_with("> one"));
    assert!(ops.expect("> /not").await.ends_with("> /not a command"));
}

/// A script posting elsewhere, or calling in a heartbeat, is never seen in `#lobby`: the
/// people there are not told of every run coming and going.
#[tokio::test(flavor = "multi_thread")]
async fn send_and_send_beat_do_not_pass_through_the_lobby() {
    let server = TestServer::start().await;
    let mut ana = server.named("ana").await;
    let mut ops = server.named("opsie").await;
    ana.expect("is now known as opsie").await;
    ops.send("/join #ops").await;
    ops.expect("you joined").await;
    let addr = server.tcp().to_string();
    for _ in 0..3 {
        let ended = run(
            &["send", &addr, "--room", "ops", "--name", "cron", "done"],
            "",
        )
        .await;
        assert!(ended.status.success(), "{}", ended.stderr);
        assert_eq!(ops.expect("<cron>").await, "#ops <cron> done");
        // No such heartbeat here: refused, after connecting all the same.
        let ended = run(&["send", &addr, "--beat", "nightly"], "").await;
        assert!(!ended.status.success());
        assert!(ended.stderr.contains("nightly"), "{}", ended.stderr);
    }
    // The next thing ana hears in #lobby is opsie, not a script's join or leave.
    ops.send("/msg ana done watching").await;
    assert_eq!(ana.line().await, "(private) <opsie> done watching");
}

/// A script refused its name or its login ends without joining its room: the people there
/// do not see a guest come and go for it.
#[tokio::test(flavor = "multi_thread")]
async fn a_script_refused_its_name_or_login_is_never_seen_in_its_room() {
    let server = TestServer::start().await;
    let mut ops = server.named("opsie").await;
    ops.send("/join #ops").await;
    ops.expect("you joined").await;
    let mut ana = server.named("ana").await;
    ops.expect("is now known as ana").await;
    let addr = server.tcp().to_string();
    let token = format!("charla_{}", "0".repeat(64));
    let refused: [&[&str]; 3] = [
        &["send", &addr, "--room", "ops", "--name", "ANA", "hi"],
        &["send", &addr, "--room", "ops", "--token", &token, "hi"],
        &["connect", &addr, "--room", "ops", "--name", "opsie"],
    ];
    for args in refused {
        let ended = run(args, "hi\n").await;
        assert!(!ended.status.success(), "{args:?}");
        assert!(
            ended.stderr.contains("nick_taken") || ended.stderr.contains("bad_password"),
            "{args:?}: {}",
            ended.stderr
        );
    }
    // One that is let in still joins and says its line.
    let ended = run(
        &["send", &addr, "--room", "ops", "--name", "cron", "done"],
        "",
    )
    .await;
    assert!(ended.status.success(), "{}", ended.stderr);
    // What opsie hears in #ops next is cron, not a refused script's guest.
    assert_eq!(ops.line().await, "#ops *** cron joined");
    assert_eq!(ops.line().await, "#ops <cron> done");
    ana.send("/msg opsie done watching").await;
    assert_eq!(
        ops.expect("(private)").await,
        "(private) <ana> done watching"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn send_works_over_a_unix_socket() {
    let server = TestServer::on(
        &["tcp://127.0.0.1:0", "unix://c.sock"],
        Limits {
            flood_rate: 0,
            ..Limits::default()
        },
    )
    .await;
    let mut ana = server.named("ana").await;
    let spec = format!("unix://{}", server.unix().display());
    let ended = run(&["send", &spec, "--name", "local", "hola"], "").await;
    assert!(ended.status.success(), "{}", ended.stderr);
    assert_eq!(ana.expect("<local>").await, "#lobby <local> hola");
}

#[tokio::test(flavor = "multi_thread")]
async fn lines_beyond_the_flood_allowance_are_paced_not_refused() {
    // Flood control as shipped: 20 lines at once, then 5 a second.
    let server = TestServer::with(Limits::default()).await;
    let mut ana = server.named("ana").await;
    let addr = server.tcp().to_string();
    let input: String = (1..=30).map(|i| format!("line {i}\n")).collect();
    let ended = run(&["send", &addr, "--name", "chatty"], &input).await;
    assert!(ended.status.success(), "{}", ended.stderr);
    for i in 1..=30 {
        assert_eq!(
            ana.expect("<chatty>").await,
            format!("#lobby <chatty> line {i}")
        );
    }
}

/// A server that welcomes, reads one line, and hangs up without acknowledging it.
async fn hang_up_after_the_first_line() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (r, mut w) = stream.into_split();
        let mut lines = AsyncBufReader::new(r).lines();
        w.write_all(b"*** Welcome to charla, guest-1!\n")
            .await
            .unwrap();
        let _hello = lines.next_line().await.unwrap();
        w.write_all(
            b"{\"type\":\"welcome\",\"nick\":\"guest-1\",\"rooms\":[\"#lobby\"],\"ref\":1}\n",
        )
        .await
        .unwrap();
        let _say = lines.next_line().await.unwrap();
    });
    addr
}

#[tokio::test(flavor = "multi_thread")]
async fn a_line_never_acknowledged_fails() {
    let addr = hang_up_after_the_first_line().await;
    let ended = run(&["send", &addr, "lost in transit"], "").await;
    assert!(!ended.status.success());
    assert!(
        ended.stderr.contains("lost the connection to 127.0.0.1:")
            && ended.stderr.contains("1 sent line(s) not acknowledged"),
        "{}",
        ended.stderr
    );
}

/// Pointed at the server's IRC or HTTP listener rather than its text/JSON one, the client
/// says which listener it reached and what to use instead, at once: not "did not answer
/// within 10 s" after the IRC listener answered `451`, nor "(it said: )" after an HTTP 400.
#[tokio::test(flavor = "multi_thread")]
async fn the_wrong_listener_is_named_with_what_to_use() {
    let server = TestServer::on(
        &[
            "tcp://127.0.0.1:0",
            "irc://127.0.0.1:0",
            "http://127.0.0.1:0",
        ],
        Limits::default(),
    )
    .await;
    for (addr, kind) in [
        (server.irc().to_string(), "IRC"),
        (server.http().to_string(), "HTTP"),
    ] {
        for args in [vec!["connect", &addr], vec!["send", &addr, "hi"]] {
            let ended = run(&args, "hello\n").await;
            assert!(!ended.status.success(), "{args:?}");
            assert_eq!(
                ended.stderr.trim(),
                format!(
                    "charla: {addr} is charla's {kind} listener: charla connect and charla \
                     send speak to its tcp://, tls:// or unix:// one"
                ),
                "{args:?}"
            );
        }
    }
}

/// A feed's report of how things stand (joining `#alerts`, `/status`) shows as `---`, as
/// in the text protocol, not as a new `!!!` alert: a check DOWN for an hour is not a new
/// alert each time someone looks.
#[tokio::test(flavor = "multi_thread")]
async fn status_reports_show_as_reports_not_as_new_alerts() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let options = charla::feeds::FeedOptions {
        checks: vec![format!("db=tcp://{closed}").parse().unwrap()],
        check_interval: Duration::from_millis(100),
        ..charla::feeds::FeedOptions::default()
    };
    let server = crate::feeds::FeedServer::start(&["tcp://127.0.0.1:0"], None, options).await;
    let mut watcher = server.client_in("#alerts").await;
    watcher.expect("[check:db] db is DOWN").await;

    let addr = server.tcp().to_string();
    let ended = run(&["connect", &addr, "--room", "alerts"], "/status\n").await;
    assert!(ended.status.success(), "{}", ended.stderr);
    let reports: Vec<&String> = ended
        .stdout
        .iter()
        .filter(|line| line.contains("[check:db] db is DOWN (for "))
        .collect();
    // One on joining, one for /status.
    assert_eq!(reports.len(), 2, "{:#?}", ended.stdout);
    for line in reports {
        assert!(
            line.contains("#alerts --- [check:db] db is DOWN (for "),
            "{line:?}"
        );
    }
}
