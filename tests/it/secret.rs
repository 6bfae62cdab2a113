//! Secret rooms (`+s`) over real sockets: set by any protocol's mode request, and hidden from
//! `/rooms`, LIST, NAMES, WHO and WHOIS for everyone outside them, in every protocol.

use serde_json::json;

use crate::irc::{Irc, server};
use crate::support::QUIET;

#[tokio::test]
async fn an_irc_operator_hides_a_room_from_list_names_who_and_whois_of_outsiders() {
    let server = server().await;
    let mut ana = Irc::registered(&server, "ana").await;
    ana.send("JOIN #hid").await;
    ana.expect(" 366 ana #hid ").await;
    ana.send("MODE #hid +s").await;
    assert_eq!(ana.line().await, ":ana!ana@charla MODE #hid +s");
    ana.send("MODE #hid").await;
    assert_eq!(ana.line().await, ":charla 324 ana #hid +nst");
    ana.expect(" 329 ana #hid ").await;
    // A member's NAMES marks the room secret (`@`, RFC 2812).
    ana.send("NAMES #hid").await;
    assert_eq!(ana.line().await, ":charla 353 ana @ #hid :@ana");
    ana.expect(" 366 ana #hid ").await;

    let mut bob = Irc::registered(&server, "bob").await;
    bob.send("LIST").await;
    assert_eq!(bob.line().await, ":charla 321 bob Channel :Users  Name");
    assert_eq!(bob.line().await, ":charla 322 bob #lobby 2 :");
    assert_eq!(bob.line().await, ":charla 323 bob :End of /LIST");
    bob.send("NAMES #hid").await;
    assert_eq!(bob.line().await, ":charla 366 bob #hid :End of /NAMES list");
    bob.send("WHO #hid").await;
    assert_eq!(bob.line().await, ":charla 315 bob #hid :End of WHO list");
    bob.send("WHOIS ana").await;
    bob.expect(" 311 bob ana ").await;
    assert_eq!(bob.line().await, ":charla 319 bob ana :#lobby");
    bob.expect(" 318 bob ana ").await;
    bob.send("TOPIC #hid").await;
    assert!(bob.line().await.starts_with(":charla 403 bob #hid "));

    // Joined, bob sees it as ana does; a secret room is not a closed one.
    bob.send("JOIN #hid").await;
    assert_eq!(bob.line().await, ":bob!bob@charla JOIN #hid");
    assert_eq!(bob.line().await, ":charla 353 bob @ #hid :@ana bob");
    bob.expect(" 366 bob #hid ").await;
    bob.send("WHOIS ana").await;
    bob.expect(" 311 bob ana ").await;
    assert_eq!(bob.line().await, ":charla 319 bob ana :#lobby @#hid");
    bob.send("LIST").await;
    bob.expect(" 322 bob #hid 2 :").await;

    // -s shows it to everyone again.
    ana.expect(":bob!bob@charla JOIN #hid").await;
    ana.send("MODE #hid -s").await;
    assert_eq!(ana.line().await, ":ana!ana@charla MODE #hid -s");
    let mut cai = Irc::registered(&server, "cai").await;
    cai.send("NAMES #hid").await;
    assert_eq!(cai.line().await, ":charla 353 cai = #hid :@ana bob");
    cai.expect(" 366 cai #hid ").await;
    cai.0.silent_for(QUIET).await;
}

#[tokio::test]
async fn nc_and_json_operators_make_rooms_secret_that_nc_json_and_irc_outsiders_cannot_see() {
    let server = server().await;
    let mut ana = server.named("ana").await;
    ana.send("/join #plans").await;
    ana.expect("#plans *** you joined").await;
    ana.send("/mode +s").await;
    ana.expect("#plans *** ana set mode +s").await;
    let mut bot = server.json("bot").await;
    bot.send(&json!({"type": "join", "room": "#deploys"}).to_string())
        .await;
    bot.expect_json("join").await;
    bot.send(&json!({"type": "mode", "room": "#deploys", "modes": "+s"}).to_string())
        .await;
    let changed = bot.expect_json("mode").await;
    assert_eq!(changed["modes"], "+s", "{changed}");

    // Outsiders of each protocol see #lobby only.
    let mut cai = server.named("cai").await;
    cai.send("/rooms").await;
    assert_eq!(cai.line().await, "*** rooms: #lobby (3)");
    cai.send("/users #plans").await;
    assert!(
        cai.expect("ERROR")
            .await
            .starts_with("ERROR invalid_room: ")
    );
    let mut dee = server.json("dee").await;
    dee.send(r#"{"type":"rooms"}"#).await;
    let rooms = dee.expect_json("rooms").await;
    assert_eq!(rooms["rooms"], json!([{"name": "#lobby", "members": 4}]));
    dee.send(r#"{"type":"whois","nick":"bot"}"#).await;
    let whois = dee.expect_json("whois").await;
    assert_eq!(whois["rooms"], json!([{"name": "#lobby", "prefix": ""}]));
    let mut eve = Irc::registered(&server, "eve").await;
    eve.send("LIST").await;
    eve.expect(" 321 ").await;
    assert_eq!(eve.line().await, ":charla 322 eve #lobby 5 :");
    assert_eq!(eve.line().await, ":charla 323 eve :End of /LIST");

    // Their own members see them: the JSON operator lists both rooms it is in.
    bot.send(r#"{"type":"rooms"}"#).await;
    let rooms = bot.expect_json("rooms").await;
    let names: Vec<&str> = rooms["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["#deploys", "#lobby"]);
    // The mode shows in a query by any protocol.
    ana.send("/mode").await;
    let modes = ana.expect("#plans *** modes").await;
    assert!(modes.contains("+nst"), "{modes}");
}
