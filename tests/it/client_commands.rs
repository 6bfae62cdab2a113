//! `charla connect` beyond chatting: the account, room and operator commands a person types,
//! against a real server, checked by what the client prints and what others see.

use crate::binary::Binary;
use crate::client::{run, without_clock};
use crate::support::TestServer;

const PASSWORD: &str = "correct-horse-9";

#[tokio::test(flavor = "multi_thread")]
async fn the_console_client_registers_and_runs_the_room_commands() {
    let server = TestServer::start().await;
    let mut ana = server.named("ana").await;
    let addr = server.tcp().to_string();
    let mut bot = tokio::task::spawn_blocking(move || {
        Binary::piped(&["connect", &addr, "--name", "bot", "--room", "#ops"])
    })
    .await
    .unwrap();
    ana.expect("#lobby *** bot joined").await;

    let bot = tokio::task::spawn_blocking(move || {
        bot.write(&format!(
            "/register {PASSWORD}\n/topic deploys at 15:00\n/invite ana\n"
        ));
        bot.expect_stdout("ana is invited");
        bot
    })
    .await
    .unwrap();
    assert_eq!(
        ana.expect("invites you").await,
        "*** bot invites you to #ops: /join #ops"
    );
    ana.send("/join #ops").await;
    ana.expect("#ops *** topic").await;
    let (mut printed, ended) = tokio::task::spawn_blocking(move || {
        let mut bot = bot;
        bot.expect_stdout("ana joined");
        bot.write("/op ana\n/mode\n/ban eve\n/mode +b\n/whois ana\n/lusers\n/away at lunch\n");
        bot.write("/token new ci\n/token list\n");
        let printed: Vec<String> = [
            "set mode +o",
            "modes:",
            "set mode +b",
            "banned:",
            "ana is in",
            "connected (at most",
            "you are away",
            "token ci:",
            "your tokens",
        ]
        .iter()
        .map(|needle| without_clock(&bot.expect_stdout(needle)).to_string())
        .collect();
        (printed, bot.finish())
    })
    .await
    .unwrap();
    assert!(ended.status.success(), "{}", ended.stderr);
    assert!(
        printed[4].starts_with("*** ana is in #lobby @#ops; idle "),
        "{}",
        printed[4]
    );
    printed.remove(4);
    assert_eq!(
        printed[..5],
        [
            "#ops *** bot set mode +o ana",
            "#ops *** modes: +nt",
            "#ops *** bot set mode +b eve!*@*",
            "#ops *** banned: eve!*@* (by bot)",
            "*** 2 connected (at most 2), 2 rooms",
        ]
    );
    assert_eq!(printed[5], "*** you are away: at lunch");
    assert!(
        printed[6].starts_with("*** token ci: charla_"),
        "{}",
        printed[6]
    );
    assert_eq!(printed[7], "*** your tokens: ci");
    assert_eq!(ana.expect("+o").await, "#ops *** bot set mode +o ana");
    let all = format!("{}\n{}", ended.stdout.join("\n"), ended.stderr);
    assert!(!all.contains(PASSWORD), "the password was shown:\n{all}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_registered_nick_is_taken_back_with_login_or_the_login_option() {
    let server = TestServer::start().await;
    let mut ana = server.named("ana").await;
    let addr = server.tcp().to_string();
    let ended = run(
        &["connect", &addr, "--name", "bot"],
        &format!("/register {PASSWORD}\n"),
    )
    .await;
    assert!(ended.status.success(), "{}", ended.stderr);

    // Without the password the nick is refused…
    let ended = run(&["connect", &addr, "--name", "bot"], "hi\n").await;
    assert!(!ended.status.success());
    assert!(ended.stderr.contains("nick_registered"), "{}", ended.stderr);
    // …with a wrong one too, and the script fails…
    let ended = run(
        &["connect", &addr],
        "/login bot not-the-password\nstill said as a guest\n",
    )
    .await;
    assert!(!ended.status.success());
    assert!(ended.stderr.contains("bad_password"), "{}", ended.stderr);
    assert!(
        !ended.stderr.contains("not-the-password"),
        "{}",
        ended.stderr
    );
    assert!(
        ana.expect("still said as a guest")
            .await
            .contains("<guest-"),
        "said under the guest nick"
    );
    // …while /login takes it, and --login reads the password as stdin's first line.
    let ended = run(
        &["connect", &addr],
        &format!("/identify bot {PASSWORD}\nback as bot\n"),
    )
    .await;
    assert!(ended.status.success(), "{}", ended.stderr);
    assert!(
        ended
            .stdout
            .iter()
            .any(|l| l.ends_with("*** you are logged in as bot")),
        "{:#?}",
        ended.stdout
    );
    assert_eq!(ana.expect("back as bot").await, "#lobby <bot> back as bot");
    let ended = run(
        &["connect", &addr, "--name", "bot", "--login"],
        &format!("{PASSWORD}\nlogged in from the start\n"),
    )
    .await;
    assert!(ended.status.success(), "{}", ended.stderr);
    assert_eq!(
        ana.expect("from the start").await,
        "#lobby <bot> logged in from the start"
    );
}
