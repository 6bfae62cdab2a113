//! Server operators (`--oper NAME:HASH`) over real sockets: OPER by IRC, `/oper` by text and
//! JSON, the password checked against its argon2 hash; an operator kicks and changes modes
//! in rooms it is not in, and WHO and WHOIS show it.

use charla::accounts::{Secret, ServerOper, password};
use charla::limits::Limits;
use serde_json::json;

use crate::irc::Irc;
use crate::support::{QUIET, TestServer};

/// A server with one operator, `root`, whose password is `operpassword`.
async fn with_root() -> TestServer {
    let phc = password::hash(&Secret::new("operpassword")).unwrap();
    let limits = Limits {
        flood_rate: 0,
        opers: vec![ServerOper::parse(&format!("root:{phc}")).unwrap()],
        ..Limits::default()
    };
    TestServer::on(&["tcp://127.0.0.1:0", "irc://127.0.0.1:0"], limits).await
}

#[tokio::test]
async fn oper_with_the_right_password_kicks_and_sets_modes_in_any_room() {
    let server = with_root().await;
    let mut ana = Irc::registered(&server, "ana").await;
    ana.send("JOIN #ops").await;
    ana.expect(" 366 ana #ops ").await;
    let mut bob = server.named("bob").await;
    bob.send("/join #ops").await;
    bob.expect("#ops *** you joined").await;
    ana.expect(":bob!bob@charla JOIN #ops").await;

    let mut ops = Irc::registered(&server, "sam").await;
    ops.send("OPER root wrong-password").await;
    assert_eq!(
        ops.line().await,
        ":charla 464 sam :no operator root with that password"
    );
    ops.send("OPER nobody operpassword").await;
    assert_eq!(
        ops.line().await,
        ":charla 464 sam :no operator nobody with that password"
    );
    ops.send("OPER root").await;
    assert_eq!(
        ops.line().await,
        ":charla 461 sam OPER :Not enough parameters"
    );
    // Not an operator yet: refused in a room it is not in.
    ops.send("KICK #ops bob").await;
    assert!(ops.line().await.starts_with(":charla 442 sam #ops "));
    // A PING sent right after waits for the OPER's answer: its PONG tells a client (irctest
    // does so) that everything before it was answered.
    ops.0
        .send_raw(b"OPER root operpassword\r\nPING :sync\r\n")
        .await;
    assert_eq!(
        ops.line().await,
        ":charla 381 sam :You are now an IRC operator"
    );
    assert_eq!(ops.line().await, ":sam!sam@charla MODE sam :+o");
    assert_eq!(ops.line().await, ":charla PONG charla :sync");
    ops.send("MODE sam").await;
    assert_eq!(ops.line().await, ":charla 221 sam +o");

    // Outside #ops, the server operator sets its modes and kicks its members.
    ops.send("MODE #ops +m").await;
    assert_eq!(ops.line().await, ":sam!sam@charla MODE #ops +m");
    ana.expect(":sam!sam@charla MODE #ops +m").await;
    ops.send("KICK #ops bob :enough").await;
    assert_eq!(ops.line().await, ":sam!sam@charla KICK #ops bob :enough");
    bob.expect("#ops *** bob was kicked by sam (enough)").await;
    ana.expect(":sam!sam@charla KICK #ops bob :enough").await;

    // WHO and WHOIS show an operator.
    ana.send("WHO sam").await;
    let who = ana.line().await;
    assert!(who.contains(" sam H* :0 "), "{who}");
    ana.expect(" 315 ana sam ").await;
    ana.send("WHO * o").await;
    let who = ana.line().await;
    assert!(who.contains(" sam H* :0 "), "{who}");
    assert!(ana.line().await.starts_with(":charla 315 ana * "));
    ana.send("WHOIS sam").await;
    ana.expect(" 312 ana sam ").await;
    assert_eq!(ana.line().await, ":charla 313 ana sam :is an IRC operator");
    ana.expect(" 318 ana sam ").await;

    // Given up, it is a plain user again.
    ops.send("MODE sam -o").await;
    assert_eq!(ops.line().await, ":sam!sam@charla MODE sam :-o");
    ops.send("MODE #ops -m").await;
    assert!(ops.line().await.starts_with(":charla 442 sam #ops "));
    ana.send("WHO * o").await;
    let end = ana.line().await;
    assert!(end.starts_with(":charla 315 ana * "), "{end}");
    ops.0.silent_for(QUIET).await;
}

#[tokio::test]
async fn text_and_json_users_become_operators_by_oper() {
    let server = with_root().await;
    let mut ana = server.named("ana").await;
    ana.send("/oper root wrong-password").await;
    let refused = ana.expect("ERROR").await;
    assert!(refused.starts_with("ERROR bad_password: "), "{refused}");
    ana.send("/oper root operpassword").await;
    ana.expect("*** you are a server operator (root)").await;
    let mut bot = server.json("bot").await;
    bot.send(
        &json!({"type": "oper", "name": "root", "password": "operpassword", "ref": 1}).to_string(),
    )
    .await;
    let news = bot.expect_json("account").await;
    assert_eq!(
        (news["event"].as_str(), news["ref"].as_i64()),
        (Some("oper"), Some(1))
    );
    // The text operator changes the modes of a room it is not in.
    let mut cai = server.named("cai").await;
    cai.send("/join #dev").await;
    cai.expect("#dev *** you joined").await;
    ana.send("/mode #dev +m").await;
    ana.expect("*** ana set mode +m").await;
    cai.expect("#dev *** ana set mode +m").await;
}

#[tokio::test]
async fn a_server_without_operators_answers_oper_491() {
    let server = crate::irc::server().await;
    let mut ana = Irc::registered(&server, "ana").await;
    ana.send("OPER root operpassword").await;
    assert_eq!(
        ana.line().await,
        ":charla 491 ana :this server has no operators (--oper NAME:HASH)"
    );
    let mut bob = server.named("bob").await;
    bob.send("/oper root operpassword").await;
    assert!(
        bob.expect("ERROR")
            .await
            .starts_with("ERROR no_operators: ")
    );
}
