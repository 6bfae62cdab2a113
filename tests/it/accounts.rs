//! Accounts over real sockets: registering a nick, logging in to it from any protocol
//! (text, JSON, IRC SASL), nick protection, login limits, API tokens, and accounts kept in
//! the SQLite file across a restart.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use charla::limits::{LOGIN_ATTEMPTS_PER_ADDRESS, Limits, REGISTRATIONS_PER_ADDRESS};
use charla::server::HttpOptions;
use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::binary::{self, Binary};
use crate::http::{expect_frame, post, post_to, ws};
use crate::irc::Irc;
use crate::store::{json_client, next_listening, serve_with, stop};
use crate::support::{Client, TestServer};

/// Text, IRC and HTTP listeners, flood control off, accounts in memory.
async fn server() -> TestServer {
    let limits = Limits {
        flood_rate: 0,
        ..Limits::default()
    };
    let specs = [
        "tcp://127.0.0.1:0",
        "irc://127.0.0.1:0",
        "http://127.0.0.1:0",
    ];
    TestServer::with_http(&specs, limits, HttpOptions::default()).await
}

/// A text client named `nick` that registered it with `password`.
async fn registered(server: &TestServer, nick: &str, password: &str) -> Client {
    let mut c = server.named(nick).await;
    c.send(&format!("/register {password}")).await;
    c.expect(&format!("*** {nick} is registered to you")).await;
    c
}

#[tokio::test]
async fn register_over_text_then_login_from_json_renames_the_holder() {
    let server = server().await;
    let mut ana = registered(&server, "ana", "correct-horse").await;
    // Logged out, the old connection keeps the nick only until its owner comes back.
    ana.send("/logout").await;
    ana.expect("*** you are logged out").await;

    let mut json = Client::tcp(server.tcp()).await;
    json.expect("*** Welcome").await;
    let hello = json!({"type": "hello", "nick": "ana", "password": "correct-horse", "rooms": ["#ops"], "ref": 1});
    json.send(&hello.to_string()).await;
    let logged = json.expect_json("account").await;
    assert_eq!(logged["event"], "logged_in");
    assert_eq!(logged["account"], "ana");
    let welcome = json.expect_json("welcome").await;
    assert_eq!(welcome["nick"], "ana");
    // Its first line was the hello: in the rooms it named only.
    assert_eq!(welcome["rooms"], json!(["#ops"]));

    let renamed = ana.expect("you are now known as").await;
    assert!(renamed.contains("guest-"), "{renamed}");
}

/// A JSON `join` names the account the joiner is logged in to (on a server alone; a
/// cluster's are in cluster_announce.rs), the joiner's own included; none without one.
#[tokio::test]
async fn a_json_join_carries_the_joiners_account() {
    let server = server().await;
    let mut bot = server.json("bot").await;
    let mut ana = registered(&server, "ana", "correct-horse").await;
    bot.send(r##"{"type":"join","room":"#ops"}"##).await;
    let own = join_to(&mut bot, "#ops").await;
    assert_eq!(own["nick"], "bot");
    assert!(own.get("account").is_none(), "{own}");
    ana.send("/join #ops").await;
    ana.expect("#ops *** you joined").await;
    let join = join_to(&mut bot, "#ops").await;
    assert_eq!(
        (&join["nick"], &join["account"]),
        (&json!("ana"), &json!("ana"))
    );

    let mut json = Client::tcp(server.tcp()).await;
    json.expect("*** Welcome").await;
    let hello =
        json!({"type": "hello", "nick": "ana", "password": "correct-horse", "rooms": ["#ops"]});
    json.send(&hello.to_string()).await;
    let own = join_to(&mut json, "#ops").await;
    assert_eq!(
        (&own["you"], &own["account"]),
        (&json!(true), &json!("ana")),
        "{own}"
    );
    // Someone logged in to no account: no `account`.
    let mut dan = server.named("dan").await;
    dan.send("/join #ops").await;
    dan.expect("#ops *** you joined").await;
    let join = loop {
        let join = join_to(&mut bot, "#ops").await;
        if join["nick"] == "dan" {
            break join;
        }
    };
    assert!(join.get("account").is_none(), "{join}");
}

/// Reads `client`'s JSON events until a `join` to `room`.
async fn join_to(client: &mut Client, room: &str) -> serde_json::Value {
    loop {
        let join = client.expect_json("join").await;
        if join["room"] == room {
            return join;
        }
    }
}

#[tokio::test]
async fn a_wrong_password_is_refused_and_the_nick_stays_protected() {
    let server = server().await;
    let mut ana = registered(&server, "ana", "correct-horse").await;
    ana.send("/quit").await;
    ana.until_closed().await;

    let mut other = server.client().await;
    other.send("/login ana battery-staple").await;
    other.expect("ERROR bad_password: no account ana").await;
    other.send("/identify nobody battery-staple").await;
    other.expect("ERROR bad_password: no account nobody").await;
    other.send("/nick ana").await;
    other.expect("ERROR nick_registered").await;
    // The same name in capitals is the same account.
    other.send("/identify ANA correct-horse").await;
    other.expect("*** you are now known as ana").await;
    other.expect("*** you are logged in as ana").await;
}

#[tokio::test]
async fn a_registered_nick_is_refused_on_every_protocol() {
    let server = server().await;
    let _ana = registered(&server, "ana", "correct-horse").await;

    let mut text = server.client().await;
    text.send("/nick Ana").await;
    text.expect("ERROR nick_registered: Ana is registered")
        .await;

    let mut json = server.json("bob").await;
    json.send(r#"{"type":"nick","nick":"ana","ref":"n"}"#).await;
    let refused = json.expect_json("error").await;
    assert_eq!(refused["code"], "nick_registered");
    assert_eq!(refused["ref"], "n");
    // A JSON client is told of the JSON `login`, not the text client's /login.
    let told = refused["message"].as_str().unwrap();
    assert!(told.contains(r#"{"type":"login","nick":"ana""#), "{told}");
    assert!(!told.contains("/login"), "{told}");

    let mut web = ws(server.http(), "?nick=wes").await;
    web.send(Message::text(r#"{"type":"nick","nick":"ana"}"#))
        .await
        .unwrap();
    let refused = expect_frame(&mut web, "error").await;
    assert_eq!(refused["code"], "nick_registered");
    let told = refused["message"].as_str().unwrap();
    assert!(told.contains(r#"{"type":"login","nick":"ana""#), "{told}");
    assert!(!told.contains("/login"), "{told}");

    let mut irc = Irc::connect(&server).await;
    irc.send("NICK ana").await;
    irc.send("USER ana 0 * :Ana").await;
    // IRC logs in with SASL, not with the text client's /login.
    let line = irc.expect(" 433 ").await;
    assert_eq!(
        line,
        ":charla 433 * ana :ana is registered; log in with SASL PLAIN to use it"
    );
}

/// `AUTHENTICATE` with PLAIN credentials for `account`.
fn plain(account: &str, password: &str) -> String {
    let payload = STANDARD.encode(format!("\0{account}\0{password}"));
    format!("AUTHENTICATE {payload}")
}

#[tokio::test]
async fn irc_sasl_plain_logs_in_and_takes_the_nick() {
    let server = server().await;
    let mut ana = registered(&server, "ana", "correct-horse").await;
    ana.send("/logout").await;
    ana.expect("logged out").await;

    let mut irc = Irc::connect(&server).await;
    irc.send("CAP LS 302").await;
    let ls = irc.expect("CAP * LS").await;
    assert!(ls.contains("sasl=PLAIN"), "{ls}");
    irc.send("NICK ana").await;
    irc.send("USER ana 0 * :Ana").await;
    irc.send("CAP REQ :sasl").await;
    irc.expect("CAP * ACK :sasl").await;
    irc.send("AUTHENTICATE PLAIN").await;
    assert_eq!(irc.line().await, "AUTHENTICATE +");
    irc.send(&plain("ana", "correct-horse")).await;
    // NICK was sent: the 900 names it, not `*!*@charla`.
    assert_eq!(
        irc.expect(" 900 ").await,
        ":charla 900 ana ana!ana@charla ana :You are now logged in as ana"
    );
    assert_eq!(
        irc.line().await,
        ":charla 903 ana :SASL authentication successful"
    );
    irc.send("CAP END").await;
    let welcome = irc.expect(" 001 ").await;
    assert!(welcome.contains(" 001 ana "), "{welcome}");
    // The text user who held it is a guest now.
    let renamed = ana.expect("you are now known as").await;
    assert!(renamed.contains("guest-"), "{renamed}");
}

#[tokio::test]
async fn irc_sasl_with_a_wrong_password_is_904_and_the_nick_stays_refused() {
    let server = server().await;
    let _ana = registered(&server, "ana", "correct-horse").await;
    let mut irc = Irc::connect(&server).await;
    irc.send("CAP LS 302").await;
    irc.send("CAP REQ :sasl").await;
    irc.expect("CAP * ACK :sasl").await;
    irc.send("AUTHENTICATE PLAIN").await;
    irc.expect("AUTHENTICATE +").await;
    irc.send(&plain("ana", "wrong-horse")).await;
    irc.expect(":charla 904 * :SASL authentication failed")
        .await;
    irc.send("AUTHENTICATE *").await;
    irc.expect(" 906 ").await;
    irc.send("NICK ana").await;
    irc.send("USER ana 0 * :Ana").await;
    irc.send("CAP END").await;
    irc.expect(" 433 ").await;
}

#[tokio::test]
async fn login_attempts_are_limited_per_address() {
    let server = server().await;
    let _ana = registered(&server, "ana", "correct-horse").await;
    let mut guesser = server.client().await;
    for _ in 0..LOGIN_ATTEMPTS_PER_ADDRESS {
        guesser.send("/login ana wrong-horse").await;
        guesser.expect("ERROR bad_password").await;
    }
    // Past the allowance even the right password is refused, without being checked.
    guesser.send("/login ana correct-horse").await;
    guesser
        .expect("ERROR rate_limited: too many login attempts")
        .await;
}

/// The token printed by `/token new LABEL`.
async fn new_token(client: &mut Client, label: &str) -> String {
    client.send(&format!("/token new {label}")).await;
    let line = client.expect(&format!("*** token {label}: ")).await;
    let token = line.split_whitespace().nth(3).unwrap().to_string();
    assert!(token.starts_with("charla_"), "{line}");
    token
}

// The server runs on the runtime's other threads while `charla send` is waited for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_let_charla_send_and_http_publish_speak_for_the_account() {
    let server = server().await;
    let mut ana = registered(&server, "ana", "correct-horse").await;
    let token = new_token(&mut ana, "ci").await;
    ana.send("/token list").await;
    ana.expect("*** your tokens: ci").await;
    ana.send("/join #ops").await;
    ana.expect("you joined").await;
    ana.send("/logout").await;
    ana.expect("logged out").await;

    let addr = server.tcp().to_string();
    let sent = binary::command(&[
        "send", &addr, "--room", "#ops", "--token", &token, "deployed",
    ])
    .output()
    .unwrap();
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    ana.expect("#ops <ana> deployed").await;

    let bearer = format!("Bearer {token}");
    let posted = post(server.http(), "ops", &[("Authorization", &bearer)], "built").await;
    assert_eq!(posted.status, 200, "{}", posted.json());
    ana.expect("built").await;

    ana.send("/login ana correct-horse").await;
    ana.expect("logged in").await;
    ana.send("/token revoke ci").await;
    ana.expect("*** token ci revoked").await;
    let refused = post(server.http(), "ops", &[("Authorization", &bearer)], "again").await;
    assert_eq!(refused.status, 401);
    let refused = binary::command(&["send", &addr, "--token", &token, "again"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("bad_password"));
}

/// `charla serve --data DIR` on a text port the system picks.
fn serve(dir: &Path, more: &[&str]) -> (Binary, SocketAddr) {
    let dir = dir.to_str().unwrap();
    serve_with(&[&["--data", dir, "--flood-rate", "0"], more].concat(), &[])
}

async fn text_client(addr: SocketAddr) -> Client {
    let mut c = Client::tcp(addr).await;
    c.expect("*** Welcome").await;
    c
}

#[tokio::test]
async fn accounts_survive_a_restart_and_account_add_creates_them() {
    let dir = tempfile::tempdir().unwrap();
    let (charla, addr) = serve(dir.path(), &[]);
    let mut ana = text_client(addr).await;
    ana.send("/nick ana").await;
    ana.expect("known as ana").await;
    ana.send("/register correct-horse").await;
    ana.expect("is registered to you").await;
    drop(ana);
    stop(charla);

    let mut add = binary::command(&[
        "account",
        "add",
        "bob",
        "--data",
        dir.path().to_str().unwrap(),
    ]);
    let mut child = add
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"bobs-password\n")
        .unwrap();
    let added = child.wait_with_output().unwrap();
    assert!(added.status.success(), "{added:?}");

    let (charla, addr) = serve(dir.path(), &["--require-account"]);
    let mut guest = text_client(addr).await;
    guest.send("/nick ana").await;
    guest.expect("ERROR nick_registered").await;
    guest.send("/nick bob").await;
    guest.expect("ERROR nick_registered").await;
    guest.send("hello?").await;
    guest.expect("ERROR account_required").await;
    guest.send("/login ana correct-horse").await;
    guest.expect("*** you are logged in as ana").await;

    let mut bob = text_client(addr).await;
    bob.send("/login bob bobs-password").await;
    bob.expect("*** you are logged in as bob").await;
    guest.send("hello").await;
    bob.expect("#lobby <ana> hello").await;
    drop((guest, bob));
    stop(charla);
}

#[tokio::test]
async fn a_registered_irc_client_may_log_in_by_sasl_later() {
    let server = server().await;
    let mut ana = registered(&server, "ana", "correct-horse").await;
    ana.send("/quit").await;
    ana.until_closed().await;
    let mut irc = Irc::registered(&server, "bob").await;
    irc.send("AUTHENTICATE PLAIN").await;
    irc.expect("AUTHENTICATE +").await;
    irc.send(&plain("ana", "correct-horse")).await;
    let renamed = irc.expect(" NICK ").await;
    assert!(renamed.starts_with(":bob!"), "{renamed}");
    assert!(renamed.ends_with("ana"), "{renamed}");
    // One 900, from the login itself, then 903: the answer to AUTHENTICATE says no 900
    // of its own (it was said twice).
    let mut told = Vec::new();
    loop {
        let line = irc.line().await;
        let done = line.contains(" 903 ");
        told.push(line);
        if done {
            break;
        }
    }
    let logged: Vec<_> = told.iter().filter(|l| l.contains(" 900 ")).collect();
    assert_eq!(logged.len(), 1, "{told:?}");
    assert!(
        logged[0].starts_with(":charla 900 bob bob!bob@charla ana :"),
        "{told:?}"
    );
}

#[tokio::test]
async fn lines_sent_with_an_account_request_wait_for_its_answer() {
    let server = server().await;
    let mut bob = server.named("bob").await;
    let mut ana = server.named("ana").await;
    // One write: the token and the line after it are carried out once registered.
    ana.send("/register correct-horse\n/token new ci\nregistered now")
        .await;
    ana.expect("*** ana is registered to you").await;
    ana.expect("*** token ci: charla_").await;
    bob.expect("#lobby <ana> registered now").await;
}

#[tokio::test]
async fn irc_pass_logs_in_like_sasl_and_a_wrong_one_is_464() {
    let server = server().await;
    let mut ana = registered(&server, "ana", "correct-horse").await;
    ana.send("/quit").await;
    ana.until_closed().await;

    // Wrong: 464, and no registration until a right one comes.
    let mut irc = Irc::connect(&server).await;
    irc.send("PASS wrong-horse").await;
    irc.send("NICK ana").await;
    irc.send("USER ana 0 * :Ana María").await;
    // NICK came before the check: its answers name the nick given.
    assert_eq!(irc.line().await, ":charla 464 ana :Password incorrect");
    irc.send("PING :still-here").await;
    assert_eq!(irc.line().await, ":charla PONG charla :still-here");
    irc.send("PASS correct-horse").await;
    let logged = irc.line().await;
    assert_eq!(
        logged,
        ":charla 900 ana ana!ana@charla ana :You are now logged in as ana"
    );
    assert!(irc.line().await.starts_with(":charla 001 ana "));
    irc.send("JOIN #lobby").await;
    irc.expect(" 366 ana #lobby ").await;

    // WHOIS shows the real name USER gave and the account (330).
    let mut bob = Irc::registered(&server, "bob").await;
    bob.send("WHOIS ana").await;
    assert_eq!(
        bob.line().await,
        ":charla 311 bob ana ana charla * :Ana María"
    );
    bob.expect(" 312 ").await;
    assert_eq!(bob.line().await, ":charla 330 bob ana ana :is logged in as");
    bob.expect(" 318 ").await;
    // bob has no account: no 330.
    irc.send("WHOIS bob").await;
    assert_eq!(
        irc.expect(" 311 ").await,
        ":charla 311 ana bob bob charla * :bob here"
    );
    irc.expect(" 312 ").await;
    assert!(irc.line().await.starts_with(":charla 317 "));
    // PASS once registered is refused.
    irc.send("PASS correct-horse").await;
    irc.expect(" 462 ana :").await;
}

#[tokio::test]
async fn cap_ls_names_sasl_with_its_value_from_302_and_list_shows_it_once_asked() {
    let server = server().await;
    let mut irc = Irc::connect(&server).await;
    irc.send("CAP LS").await;
    assert_eq!(
        irc.line().await,
        ":charla CAP * LS :account-tag away-notify batch draft/chathistory echo-message labeled-response message-tags multi-prefix server-time userhost-in-names sasl"
    );
    irc.send("CAP REQ :sasl server-time").await;
    irc.expect("CAP * ACK :sasl server-time").await;
    irc.send("CAP LIST").await;
    assert_eq!(irc.line().await, ":charla CAP * LIST :server-time sasl");
    irc.send("CAP REQ :-sasl").await;
    irc.expect("CAP * ACK :-sasl").await;
    irc.send("CAP LIST").await;
    assert_eq!(irc.line().await, ":charla CAP * LIST :server-time");
}

#[tokio::test]
async fn client_tags_msgid_and_account_reach_only_those_who_asked() {
    let server = server().await;
    let mut owner = registered(&server, "ana", "correct-horse").await;
    owner.send("/quit").await;
    owner.until_closed().await;
    let mut text = server.named("txt").await;
    let mut tagged = Irc::with_caps(&server, "tagged", "message-tags account-tag").await;
    let mut plain = Irc::registered(&server, "plain").await;
    tagged.expect("plain!plain@charla JOIN #lobby").await;
    let mut ana = Irc::connect(&server).await;
    ana.send("CAP REQ :message-tags echo-message").await;
    ana.expect(" ACK ").await;
    ana.send("PASS correct-horse").await;
    ana.send("NICK ana").await;
    ana.send("USER ana 0 * :Ana").await;
    ana.send("CAP END").await;
    // Registered once the password is checked, as clients wait for before joining.
    ana.expect(" 422 ana ").await;
    ana.send("JOIN #lobby").await;
    ana.expect(" 366 ana #lobby ").await;
    // account-tag on a JOIN.
    let joined = tagged.expect(" JOIN #lobby").await;
    assert_eq!(joined, "@account=ana :ana!ana@charla JOIN #lobby");
    plain.expect(":ana!ana@charla JOIN #lobby").await;

    ana.send("@label=x;+draft/react=👍;+bad\u{1}=1 PRIVMSG #lobby :hola")
        .await;
    let echo = ana.expect(" PRIVMSG #lobby :hola").await;
    let (tags, line) = echo.split_once(' ').unwrap();
    assert_eq!(line, ":ana!ana@charla PRIVMSG #lobby :hola");
    // The echo carries the client tags it was sent with.
    let (msgid, client) = tags
        .strip_prefix("@msgid=")
        .unwrap()
        .split_once(';')
        .unwrap();
    assert_eq!(client, "+draft/react=👍");
    let got = tagged.expect(" PRIVMSG #lobby :hola").await;
    assert_eq!(
        got,
        format!("@msgid={msgid};account=ana;+draft/react=👍 :ana!ana@charla PRIVMSG #lobby :hola")
    );
    assert_eq!(
        plain.expect(" PRIVMSG ").await,
        ":ana!ana@charla PRIVMSG #lobby :hola"
    );
    text.expect("#lobby <ana> hola").await;

    // TAGMSG: to message-tags clients only; the sender gets its echo.
    ana.send("@+typing=active TAGMSG #lobby").await;
    let echo = ana.expect(" TAGMSG ").await;
    assert!(
        echo.ends_with(";+typing=active :ana!ana@charla TAGMSG #lobby"),
        "{echo}"
    );
    let got = tagged.line().await;
    assert!(got.starts_with("@msgid="), "{got}");
    assert!(
        got.ends_with(";account=ana;+typing=active :ana!ana@charla TAGMSG #lobby"),
        "{got}"
    );
    ana.send("PRIVMSG #lobby :after").await;
    assert_eq!(plain.line().await, ":ana!ana@charla PRIVMSG #lobby :after");
    text.expect("#lobby <ana> after").await;
    // A client without message-tags has no TAGMSG, and its tags are not relayed.
    plain.send("@+draft/react=x TAGMSG #lobby").await;
    plain.expect(" 421 plain TAGMSG ").await;
    plain.send("@+draft/react=x PRIVMSG #lobby :untagged").await;
    let got = tagged.expect(":untagged").await;
    assert!(
        got.starts_with("@msgid=") && !got.contains("react"),
        "{got}"
    );
    // Client tags past 4094 bytes are refused whole.
    let big = format!("@+a={} PRIVMSG #lobby :big", "x".repeat(4100));
    ana.send(&big).await;
    ana.expect(" 417 ana ").await;
}

#[tokio::test]
async fn json_messages_carry_the_account_their_sender_is_logged_in_to() {
    let server = server().await;
    let mut ana = registered(&server, "ana", "correct-horse").await;
    let mut bot = server.json("bot").await;
    ana.expect("#lobby *** bot joined").await;
    ana.send("logged in and talking").await;
    let said = bot.expect_json("message").await;
    assert_eq!(
        (&said["text"], &said["account"]),
        (&json!("logged in and talking"), &json!("ana"))
    );
    ana.send("/msg bot just you").await;
    let private = bot.expect_json("private").await;
    assert_eq!(
        (&private["text"], &private["account"]),
        (&json!("just you"), &json!("ana"))
    );
    // Someone logged in to no account: no account field.
    let mut dan = server.named("dan").await;
    dan.send("anonymous").await;
    let said = loop {
        let said = bot.expect_json("message").await;
        if said["from"] == "dan" {
            break said;
        }
    };
    assert!(said.get("account").is_none(), "{said}");
    // History keeps whose account said what.
    bot.send(r##"{"type":"history","room":"#lobby"}"##).await;
    let history = bot.expect_json("history").await;
    let messages = history["messages"].as_array().expect("messages");
    let of = |text: &str| messages.iter().find(|m| m["text"] == text).cloned();
    assert_eq!(of("logged in and talking").unwrap()["account"], "ana");
    assert!(
        of("anonymous").unwrap().get("account").is_none(),
        "{history}"
    );
}

/// `--require-account` closes HTTP publish as it closes chat: a post without an account's
/// token is refused (`account_required`) and not said; one with a token is said.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_server_refuses_posts_without_an_accounts_token() {
    let dir = tempfile::tempdir().unwrap();
    let (charla, addr) = serve(
        dir.path(),
        &["--require-account", "--listen", "http://127.0.0.1:0"],
    );
    let http = next_listening(&charla, "http");
    let mut ana = text_client(addr).await;
    ana.send("/nick ana").await;
    ana.expect("known as ana").await;
    ana.send("/register correct-horse").await;
    ana.expect("is registered to you").await;
    let token = new_token(&mut ana, "ci").await;

    let refused = post(http, "lobby", &[], "anyone may talk").await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert_eq!(refused.json()["code"], "account_required");
    let refused = post_to(http, "/alertmanager?room=%23lobby", &[], "{}").await;
    assert_eq!(refused.status, 401, "{}", refused.body);

    let bearer = format!("Bearer {token}");
    let posted = post(http, "lobby", &[("Authorization", &bearer)], "built").await;
    assert_eq!(posted.status, 200, "{}", posted.body);
    // The refused post was not said: the next line ana reads is the one that was.
    let line = ana.expect("#lobby").await;
    assert!(line.ends_with("built"), "{line}");
    drop(ana);
    stop(charla);
}

/// Registrations are counted per address: one address cannot register nicks without end
/// (each is an argon2 hash and an account kept for good). The one refused is not
/// registered: anyone may still take that nick.
#[tokio::test]
async fn registrations_are_limited_per_address() {
    let server = server().await;
    let mut squatter = server.client().await;
    for n in 0..REGISTRATIONS_PER_ADDRESS {
        squatter.send(&format!("/nick squat{n}")).await;
        squatter.expect("known as").await;
        squatter.send("/register correct-horse").await;
        squatter.expect("is registered to you").await;
        squatter.send("/logout").await;
        squatter.expect("*** you are logged out").await;
    }
    squatter.send("/nick squatted").await;
    squatter.expect("known as squatted").await;
    squatter.send("/register correct-horse").await;
    squatter
        .expect("ERROR rate_limited: too many registrations")
        .await;
    squatter.send("/nick other").await;
    squatter.expect("known as other").await;
    // Taken by another connection: a registered nick would be refused (nick_registered).
    let _eve = server.named("squatted").await;
}

/// On a closed server an IRC client that has not logged in is told how IRC logs in (SASL),
/// not the text client's `/login`, which IRC has not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_server_tells_irc_clients_to_log_in_with_sasl() {
    let dir = tempfile::tempdir().unwrap();
    let (charla, _) = serve(
        dir.path(),
        &["--require-account", "--listen", "irc://127.0.0.1:0"],
    );
    let mut irc = Irc(Client::tcp(next_listening(&charla, "irc")).await);
    irc.send("NICK anon").await;
    irc.send("USER anon 0 * :anon").await;
    irc.expect(" 422 ").await;
    irc.send("JOIN #lobby").await;
    irc.expect(" 366 anon #lobby ").await;
    irc.send("PRIVMSG #lobby :hello?").await;
    let told = irc.expect("NOTICE anon :").await;
    assert!(told.contains("only users with an account talk"), "{told}");
    assert!(told.contains("SASL"), "{told}");
    assert!(!told.contains("/login"), "{told}");
    drop(irc);
    stop(charla);
}

/// On a closed server a JSON client that has not logged in is told of the JSON `login`
/// request, not the text client's `/login`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_server_tells_json_clients_to_send_a_login_request() {
    let dir = tempfile::tempdir().unwrap();
    let (charla, addr) = serve(dir.path(), &["--require-account"]);
    let mut anon = json_client(addr, "anon").await;
    anon.send(r##"{"type":"say","room":"#lobby","text":"hello?"}"##)
        .await;
    let refused = anon.expect_json("error").await;
    assert_eq!(refused["code"], "account_required");
    let told = refused["message"].as_str().unwrap();
    assert!(told.contains(r#"{"type":"login""#), "{told}");
    assert!(!told.contains("/login"), "{told}");
    anon.send(r#"{"type":"token_list"}"#).await;
    let refused = anon.expect_json("error").await;
    assert_eq!(refused["code"], "not_logged_in");
    let told = refused["message"].as_str().unwrap();
    assert!(told.contains(r#"{"type":"register""#), "{told}");
    assert!(!told.contains("/login"), "{told}");
    drop(anon);
    stop(charla);
}

/// With echo-message and account-tag, a logged-in client's own message comes back as the
/// others got it: `account=` included, for a room message, a private one and a TAGMSG.
#[tokio::test]
async fn an_echo_carries_the_senders_account_as_the_others_got_it() {
    let server = server().await;
    let mut owner = registered(&server, "ana", "correct-horse").await;
    owner.send("/quit").await;
    let mut tagged = Irc::with_caps(&server, "tagged", "message-tags account-tag").await;
    let mut ana = Irc::connect(&server).await;
    ana.send("CAP REQ :sasl message-tags account-tag echo-message")
        .await;
    ana.expect(" ACK ").await;
    ana.send("AUTHENTICATE PLAIN").await;
    ana.expect("AUTHENTICATE +").await;
    ana.send(&plain("ana", "correct-horse")).await;
    ana.expect(" 903 ").await;
    ana.send("NICK ana").await;
    ana.send("USER ana 0 * :Ana").await;
    ana.send("CAP END").await;
    ana.expect(" 422 ana ").await;
    ana.send("JOIN #lobby").await;
    ana.expect(" 366 ana #lobby ").await;
    tagged.expect("ana!ana@charla JOIN #lobby").await;

    ana.send("PRIVMSG #lobby :hola").await;
    let got = tagged.expect(" PRIVMSG #lobby :hola").await;
    assert!(got.contains(";account=ana "), "{got}");
    assert_eq!(ana.expect(" PRIVMSG #lobby :hola").await, got);

    ana.send("PRIVMSG tagged :psst").await;
    let got = tagged.expect(" PRIVMSG tagged :psst").await;
    assert!(got.contains(";account=ana "), "{got}");
    assert_eq!(ana.expect(" PRIVMSG tagged :psst").await, got);

    ana.send("@+typing=active TAGMSG #lobby").await;
    let got = tagged.expect(" TAGMSG #lobby").await;
    assert!(got.contains(";account=ana;+typing=active "), "{got}");
    assert_eq!(ana.expect(" TAGMSG #lobby").await, got);
}
