//! WHO by mask and WHOX, user mode `+i`, LUSERS's invisible users, and the IRC server
//! password, over real sockets.

use charla::accounts::{Secret, ServerPassword};
use charla::limits::Limits;

use crate::irc::{Irc, server};
use crate::support::TestServer;

#[tokio::test]
async fn who_masks_match_every_users_address_and_whox_picks_the_fields() {
    let server = server().await;
    let mut ana = Irc::connect(&server).await;
    ana.send("NICK ana").await;
    ana.send("USER anita 0 * :Ana María").await;
    ana.expect(" 422 ana ").await;
    let mut bob = Irc::registered(&server, "bob").await;
    // An nc user is found by mask too: WHO is over users, whatever their protocol.
    let mut cai = server.named("cai").await;
    cai.send("/join #ops").await;
    cai.expect("#ops *** you joined").await;

    bob.send("WHO *").await;
    // After cai's JOIN of #lobby and NICK.
    assert_eq!(
        bob.expect(" 352 ").await,
        ":charla 352 bob * anita charla charla ana H :0 Ana María"
    );
    assert_eq!(
        bob.line().await,
        ":charla 352 bob * bob charla charla bob H :0 bob here"
    );
    assert_eq!(
        bob.line().await,
        ":charla 352 bob * cai charla charla cai H :0 cai"
    );
    assert_eq!(bob.line().await, ":charla 315 bob * :End of WHO list");
    // `0` is everyone too (RFC 2812); a nick pattern, folded as nicks compare.
    bob.send("WHO 0").await;
    assert_eq!(
        bob.expect(" 315 ").await,
        ":charla 315 bob 0 :End of WHO list"
    );
    bob.send("WHO AN*").await;
    assert!(bob.line().await.contains(" 352 bob * anita "));
    assert_eq!(bob.line().await, ":charla 315 bob AN* :End of WHO list");
    // The user part, and a host part that is charla's or matches nobody.
    bob.send("WHO *!anit?@*").await;
    assert!(bob.line().await.contains(" ana H "));
    bob.expect(" 315 ").await;
    bob.send("WHO *!*@example.org").await;
    assert_eq!(
        bob.line().await,
        ":charla 315 bob *!*@example.org :End of WHO list"
    );
    // `o`: server operators only, and charla has none.
    bob.send("WHO * o").await;
    assert_eq!(bob.line().await, ":charla 315 bob * :End of WHO list");
    // A mask too long to match against everyone matches nobody.
    bob.send(&format!("WHO {}*", "a".repeat(80))).await;
    assert!(bob.line().await.contains(" 315 bob "));

    // WHOX: the fields asked for, in the spec's order whatever order they came in, with
    // the token; `0` for no account, and the real name last.
    bob.send("WHO ana %rnaft,42").await;
    assert_eq!(bob.line().await, ":charla 354 bob 42 ana H 0 :Ana María");
    bob.expect(" 315 bob ana ").await;
    bob.send("WHO #ops %tcuihsnfdaor,7").await;
    assert_eq!(
        bob.line().await,
        ":charla 354 bob 7 #ops cai 255.255.255.255 charla charla cai H@ 0 0 0 :cai"
    );
    assert_eq!(bob.line().await, ":charla 315 bob #ops :End of WHO list");
    // Idle seconds, however long the test took to get here.
    bob.send("WHO ana %l").await;
    let idle = bob.line().await;
    let seconds = idle.strip_prefix(":charla 354 bob ").unwrap_or(&idle);
    assert!(seconds.parse::<u64>().is_ok(), "{idle}");
    bob.expect(" 315 ").await;
    // A token that is not up to three digits is 0.
    bob.send("WHO cai %tn,1234").await;
    assert_eq!(bob.line().await, ":charla 354 bob 0 cai");
}

#[tokio::test]
async fn an_invisible_user_is_found_by_mask_only_by_those_sharing_a_room() {
    let server = server().await;
    let mut ana = Irc::registered(&server, "ana").await;
    ana.send("MODE ana +i").await;
    assert_eq!(ana.line().await, ":ana!ana@charla MODE ana :+i");
    ana.send("MODE ana").await;
    assert_eq!(ana.line().await, ":charla 221 ana +i");
    // Already invisible: nothing changes, nothing is said.
    ana.send("MODE ana +i").await;
    ana.send("MODE ana +w").await;
    assert_eq!(ana.line().await, ":charla 501 ana :Unknown MODE flag");

    // dan shares no room with ana: a mask does not find her, her nick does.
    let mut dan = Irc::connect(&server).await;
    dan.send("NICK dan").await;
    dan.send("USER dan 0 * :dan").await;
    dan.expect(" 422 dan ").await;
    dan.send("WHO an*").await;
    assert_eq!(dan.line().await, ":charla 315 dan an* :End of WHO list");
    dan.send("WHO ana").await;
    assert!(dan.line().await.contains(" 352 dan * ana "));
    dan.expect(" 315 ").await;
    // Nor does WHO of a room she is in, to one not in it.
    dan.send("WHO #lobby").await;
    assert_eq!(dan.line().await, ":charla 315 dan #lobby :End of WHO list");
    // bob shares #lobby with her.
    let mut bob = Irc::registered(&server, "bob").await;
    bob.send("WHO an*").await;
    assert!(bob.line().await.contains(" 352 bob * ana "));
    bob.expect(" 315 ").await;
    // NAMES hides her from dan as WHO does, not from bob, who is in the room.
    dan.send("NAMES #lobby").await;
    assert_eq!(dan.line().await, ":charla 353 dan = #lobby :bob");
    assert!(dan.line().await.contains(" 366 dan #lobby "));
    bob.send("NAMES #lobby").await;
    assert_eq!(bob.line().await, ":charla 353 bob = #lobby :ana bob");

    dan.send("LUSERS").await;
    assert_eq!(
        dan.line().await,
        ":charla 251 dan :There are 2 users and 1 invisible on 1 servers"
    );
    dan.expect(" 266 ").await;
    ana.send("MODE ana -i").await;
    // After bob's JOIN.
    assert_eq!(ana.expect(" MODE ").await, ":ana!ana@charla MODE ana :-i");
    dan.send("WHO an*").await;
    assert!(dan.line().await.contains(" 352 dan * ana "));
    dan.expect(" 315 ").await;
    dan.send("LUSERS").await;
    assert_eq!(
        dan.line().await,
        ":charla 251 dan :There are 3 users and 0 invisible on 1 servers"
    );
}

#[tokio::test]
async fn users_of_a_room_from_outside_it_leave_out_its_invisible_members() {
    let server = server().await;
    let mut ana = Irc::registered(&server, "ana").await;
    ana.send("MODE ana +i").await;
    assert_eq!(ana.line().await, ":ana!ana@charla MODE ana :+i");
    let _bob = server.named("bob").await;
    // A text user in the room is told of ana; once outside it, not, as WHO would not.
    let mut eve = server.named("eve").await;
    eve.send("/users #lobby").await;
    let inside = eve.expect("here:").await;
    assert!(inside.contains("ana") && inside.contains("bob"), "{inside}");
    eve.send("/leave").await;
    eve.expect("you left").await;
    eve.send("/users #lobby").await;
    assert_eq!(eve.expect("here:").await, "#lobby *** 1 here: bob");
    // So is a JSON user outside it.
    let mut json = crate::support::Client::tcp(server.tcp()).await;
    json.expect("*** Welcome").await;
    json.send(r#"{"type":"hello","nick":"jo","rooms":[]}"#)
        .await;
    json.expect_json("welcome").await;
    json.send(r##"{"type":"users","room":"#lobby"}"##).await;
    let users = json.expect_json("users").await;
    assert_eq!(users["users"], serde_json::json!(["bob"]), "{users}");
}

/// A server whose IRC listener asks for a password.
async fn gated() -> TestServer {
    let limits = Limits {
        flood_rate: 0,
        irc_password: Some(ServerPassword::new(&Secret::new("open sesame"))),
        ..Limits::default()
    };
    TestServer::on(&["tcp://127.0.0.1:0", "irc://127.0.0.1:0"], limits).await
}

#[tokio::test]
async fn the_irc_password_lets_in_whoever_gives_it_and_closes_on_the_rest() {
    let server = gated().await;
    let mut ana = Irc::connect(&server).await;
    ana.send("PASS :open sesame").await;
    ana.send("NICK ana").await;
    ana.send("USER ana 0 * :Ana").await;
    assert!(ana.line().await.starts_with(":charla 001 ana "));

    for pass in [Some("PASS :open Sesame"), None] {
        let mut bob = Irc::connect(&server).await;
        if let Some(pass) = pass {
            bob.send(pass).await;
        }
        bob.send("NICK bob").await;
        bob.send("USER bob 0 * :Bob").await;
        let seen = bob.0.until_closed().await;
        assert_eq!(
            seen,
            [
                ":charla 464 * :Password incorrect\r",
                "ERROR :Closing link: bad password\r"
            ]
        );
    }
    // Text users are not asked for it (docs/protocol.md).
    let mut cai = server.named("cai").await;
    cai.send("/rooms").await;
    cai.expect("#lobby").await;
}

#[tokio::test]
async fn quit_before_registering_says_goodbye_and_closes() {
    let server = server().await;
    let mut ana = Irc::connect(&server).await;
    ana.send("NICK ana").await;
    ana.send("QUIT").await;
    assert_eq!(ana.0.until_closed().await, ["ERROR :Closing link: quit\r"]);
    // A registered client's LUSERS does not count it.
    let mut bob = Irc::registered(&server, "bob").await;
    bob.send("LUSERS").await;
    assert_eq!(
        bob.line().await,
        ":charla 251 bob :There are 1 users and 0 invisible on 1 servers"
    );
}

#[tokio::test]
async fn userhost_in_names_names_each_member_with_an_address() {
    let server = server().await;
    let mut ana = Irc::with_caps(&server, "ana", "userhost-in-names multi-prefix").await;
    let mut bob = Irc::registered(&server, "bob").await;
    bob.send("JOIN #ops").await;
    bob.expect(" 366 bob #ops ").await;
    ana.send("JOIN #ops").await;
    assert_eq!(
        ana.expect(" 353 ").await,
        ":charla 353 ana = #ops :ana!ana@charla @bob!bob@charla"
    );
    // Without the capability, nicks alone.
    bob.send("NAMES #ops").await;
    assert_eq!(
        bob.expect(" 353 ").await,
        ":charla 353 bob = #ops :ana @bob"
    );
}
