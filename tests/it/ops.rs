//! Topics, operators and modes across protocols, over real sockets: what an nc user sets,
//! JSON and IRC users see, and the same rules refuse each in its own words.

use serde_json::json;

use crate::irc::{Irc, server};
use crate::support::{Client, QUIET, TestServer};

/// A text user who made `#ops`, and so is its operator.
async fn founder(server: &TestServer, nick: &str) -> Client {
    let mut c = server.named(nick).await;
    c.send("/join #ops").await;
    c.expect("#ops *** you joined").await;
    c
}

async fn json_join(c: &mut Client, key: Option<&str>) {
    let mut join = json!({"type": "join", "room": "#ops"});
    if let Some(key) = key {
        join["key"] = key.into();
    }
    c.send(&join.to_string()).await;
}

/// The code of the next JSON error.
async fn json_error(c: &mut Client) -> String {
    c.expect_json("error").await["code"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_topic_an_nc_user_sets_is_shown_to_json_and_irc_users_on_joining() {
    let server = server().await;
    let mut ana = founder(&server, "ana").await;
    ana.send("/topic deploys at 15:00").await;
    assert_eq!(
        ana.line().await,
        "#ops *** ana set the topic: deploys at 15:00"
    );
    let mut bot = server.json("bot").await;
    json_join(&mut bot, None).await;
    bot.expect_json("join").await;
    let topic = bot.expect_json("topic").await;
    assert_eq!(topic["room"], "#ops");
    assert_eq!(topic["text"], "deploys at 15:00");
    assert_eq!(topic["by"], "ana");
    assert!(topic.get("changed").is_none());
    let mut bob = Irc::registered(&server, "bob").await;
    bob.send("JOIN #ops").await;
    assert_eq!(bob.line().await, ":bob!bob@charla JOIN #ops");
    assert_eq!(bob.line().await, ":charla 332 bob #ops :deploys at 15:00");
    let whotime = bob.line().await;
    assert!(
        whotime.starts_with(":charla 333 bob #ops ana!ana@charla "),
        "{whotime}"
    );
    assert_eq!(bob.line().await, ":charla 353 bob = #ops :@ana bob bot");
    // TOPIC asks, and an IRC member may not set it while the room is +t.
    bob.expect(" 366 ").await;
    bob.send("TOPIC #ops").await;
    assert_eq!(bob.line().await, ":charla 332 bob #ops :deploys at 15:00");
    bob.expect(" 333 ").await;
    bob.send("TOPIC #ops :mine now").await;
    assert_eq!(
        bob.line().await,
        ":charla 482 bob #ops :only #ops's operators may set its topic (it is +t)"
    );
    // The operator makes it -t; then the IRC user's change reaches everyone.
    ana.send("/mode -t").await;
    ana.expect("#ops *** ana set mode -t").await;
    bob.expect(":ana!ana@charla MODE #ops -t").await;
    bob.send("TOPIC #ops :mine now").await;
    assert_eq!(bob.line().await, ":bob!bob@charla TOPIC #ops :mine now");
    ana.expect("#ops *** bob set the topic: mine now").await;
    let changed = bot.expect_json("topic").await;
    assert_eq!(
        (changed["text"].as_str(), changed["changed"].as_bool()),
        (Some("mine now"), Some(true))
    );
    // A room without a topic: 331.
    bob.send("JOIN #empty").await;
    bob.expect(" 366 ").await;
    bob.send("TOPIC #empty").await;
    assert_eq!(bob.line().await, ":charla 331 bob #empty :No topic is set");
}

#[tokio::test]
async fn an_irc_operator_kicks_an_nc_user_and_a_member_may_not() {
    let server = server().await;
    let mut op = Irc::registered(&server, "op").await;
    op.send("JOIN #ops").await;
    assert_eq!(op.line().await, ":op!op@charla JOIN #ops");
    assert_eq!(op.line().await, ":charla 353 op = #ops :@op");
    op.expect(" 366 ").await;
    let mut bea = server.named("bea").await;
    bea.send("/join #ops").await;
    bea.expect("#ops *** you joined").await;
    op.expect(":bea!bea@charla JOIN #ops").await;
    let mut carl = Irc::registered(&server, "carl").await;
    carl.send("JOIN #ops").await;
    carl.expect(" 366 ").await;
    op.expect("JOIN #ops").await;
    bea.expect("#ops *** carl joined").await;
    carl.send("KICK #ops bea :go").await;
    assert_eq!(
        carl.line().await,
        ":charla 482 carl #ops :only #ops's operators may kick"
    );
    op.send("KICK #ops nobody").await;
    assert!(op.line().await.starts_with(":charla 401 op nobody :"));
    // A room that does not exist is 403, not 442.
    op.send("KICK #nowhere bea").await;
    assert!(op.line().await.starts_with(":charla 403 op #nowhere :"));
    op.send("KICK #ops bea :off topic").await;
    assert_eq!(op.line().await, ":op!op@charla KICK #ops bea :off topic");
    assert_eq!(carl.line().await, ":op!op@charla KICK #ops bea :off topic");
    assert_eq!(
        bea.line().await,
        "#ops *** bea was kicked by op (off topic)"
    );
    // Out of the room: what is said there no longer reaches bea.
    op.send("PRIVMSG #ops :still here").await;
    carl.expect("still here").await;
    bea.send("/users").await;
    assert_eq!(bea.line().await, "#lobby *** 3 here: bea, carl, op");
    // The operator makes an nc user an operator; NAMES and JSON users see it.
    bea.send("/join #ops").await;
    bea.expect("you joined").await;
    op.expect("JOIN #ops").await;
    op.send("MODE #ops +v bea").await;
    assert_eq!(op.line().await, ":op!op@charla MODE #ops +v bea");
    bea.expect("#ops *** op set mode +v bea").await;
    op.send("NAMES #ops").await;
    assert_eq!(op.line().await, ":charla 353 op = #ops :+bea carl @op");
    let mut bot = server.json("bot").await;
    bot.send(r##"{"type":"mode","room":"#ops"}"##).await;
    let modes = bot.expect_json("modes").await;
    assert_eq!(modes["modes"], "+nt");
    assert_eq!(modes["ops"], json!(["op"]));
    assert_eq!(modes["voiced"], json!(["bea"]));
    bea.send("/mode").await;
    assert_eq!(
        bea.expect("#ops *** modes").await,
        "#ops *** modes +nt; operators: op; voiced: bea"
    );
}

#[tokio::test]
async fn a_ban_keeps_users_of_every_protocol_out() {
    let server = server().await;
    let mut ana = founder(&server, "ana").await;
    ana.send("/ban bot").await;
    assert_eq!(ana.line().await, "#ops *** ana set mode +b bot!*@*");
    ana.send("/mode +b eve*!*@*").await;
    ana.expect("set mode +b eve*!*@*").await;
    let mut bot = server.json("bot").await;
    json_join(&mut bot, None).await;
    assert_eq!(json_error(&mut bot).await, "banned");
    let mut eve = server.named("evelyn").await;
    eve.send("/join #ops").await;
    assert_eq!(eve.line().await, "ERROR banned: you are banned from #ops");
    let mut irc = Irc::registered(&server, "eve").await;
    irc.send("JOIN #ops").await;
    assert_eq!(
        irc.line().await,
        ":charla 474 eve #ops :you are banned from #ops"
    );
    irc.send("MODE #ops +b").await;
    assert!(
        irc.line()
            .await
            .starts_with(":charla 367 eve #ops bot!*@* ana ")
    );
    assert!(
        irc.line()
            .await
            .starts_with(":charla 367 eve #ops eve*!*@* ana ")
    );
    assert_eq!(
        irc.line().await,
        ":charla 368 eve #ops :End of channel ban list"
    );
    // Lifted, the JSON user comes in.
    ana.send("/unban bot").await;
    ana.expect("set mode -b bot!*@*").await;
    json_join(&mut bot, None).await;
    loop {
        let joined = bot.expect_json("join").await;
        if joined["you"] == true {
            assert_eq!(joined["room"], "#ops");
            break;
        }
    }
}

#[tokio::test]
async fn a_moderated_room_silences_members_without_voice_in_every_protocol() {
    let server = server().await;
    let mut ana = founder(&server, "ana").await;
    let mut cai = server.named("cai").await;
    cai.send("/join #ops").await;
    cai.expect("you joined").await;
    let mut bot = server.json("bot").await;
    json_join(&mut bot, None).await;
    bot.expect_json("join").await;
    let mut bob = Irc::registered(&server, "bob").await;
    bob.send("JOIN #ops").await;
    bob.expect(" 366 ").await;
    ana.send("/mode +m").await;
    ana.expect("#ops *** ana set mode +m").await;
    cai.expect("ana set mode +m").await;
    bob.expect(":ana!ana@charla MODE #ops +m").await;
    let mode = bot.expect_json("mode").await;
    assert_eq!(mode["modes"], "+m");
    cai.send("can I?").await;
    assert_eq!(
        cai.expect("ERROR").await,
        "ERROR moderated: #ops is moderated: only its operators and voiced members speak"
    );
    bot.send(r##"{"type":"say","room":"#ops","text":"can I?"}"##)
        .await;
    assert_eq!(json_error(&mut bot).await, "moderated");
    bob.send("PRIVMSG #ops :can I?").await;
    assert!(bob.line().await.starts_with(":charla 404 bob #ops :"));
    ana.silent_for(QUIET).await;
    // Voiced, cai speaks; the operator always does.
    ana.send("/voice cai").await;
    ana.expect("set mode +v cai").await;
    cai.expect("set mode +v cai").await;
    cai.send("now I may").await;
    ana.expect("#ops <cai> now I may").await;
    bob.expect(":cai!cai@charla PRIVMSG #ops :now I may").await;
    ana.send("ops may").await;
    bot.expect_json("message").await;
}

#[tokio::test]
async fn keys_limits_and_invite_only_refuse_each_protocol_in_its_words() {
    let server = server().await;
    let mut ana = founder(&server, "ana").await;
    let mut cai = server.named("cai").await;
    let mut bot = server.json("bot").await;
    let mut bob = Irc::registered(&server, "bob").await;
    ana.send("/mode +k sesame").await;
    ana.expect("set mode +k sesame").await;
    cai.send("/join #ops").await;
    assert!(cai.expect("ERROR").await.starts_with("ERROR bad_key: "));
    json_join(&mut bot, Some("wrong")).await;
    assert_eq!(json_error(&mut bot).await, "bad_key");
    bob.send("JOIN #ops").await;
    assert!(bob.line().await.starts_with(":charla 475 bob #ops :"));
    bob.send("JOIN #ops sesame").await;
    assert_eq!(bob.line().await, ":bob!bob@charla JOIN #ops");
    bob.expect(" 366 ").await;
    ana.send("/mode -k+l * 2").await;
    ana.expect("set mode -k+l * 2").await;
    cai.send("/join #ops").await;
    assert!(cai.expect("ERROR").await.starts_with("ERROR room_full: "));
    json_join(&mut bot, None).await;
    assert_eq!(json_error(&mut bot).await, "room_full");
    bob.send("PART #ops").await;
    bob.expect("PART #ops").await;
    ana.send("/mode -l+i").await;
    ana.expect("set mode -l+i").await;
    bob.send("JOIN #ops").await;
    assert!(bob.line().await.starts_with(":charla 473 bob #ops :"));
    cai.send("/join #ops").await;
    assert!(cai.expect("ERROR").await.starts_with("ERROR invite_only: "));
    json_join(&mut bot, None).await;
    assert_eq!(json_error(&mut bot).await, "invite_only");
    // Invited, each comes in.
    for nick in ["bob", "cai", "bot"] {
        ana.send(&format!("/invite {nick}")).await;
        assert_eq!(ana.line().await, format!("*** you invited {nick} to #ops"));
    }
    assert_eq!(bob.line().await, ":ana!ana@charla INVITE bob #ops");
    bob.send("JOIN #ops").await;
    assert_eq!(bob.line().await, ":bob!bob@charla JOIN #ops");
    assert_eq!(cai.line().await, "*** ana invites you to #ops: /join #ops");
    cai.send("/join #ops").await;
    cai.expect("#ops *** you joined").await;
    let invite = bot.expect_json("invite").await;
    assert_eq!(
        (invite["by"].as_str(), invite["you"].as_bool()),
        (Some("ana"), Some(true))
    );
    json_join(&mut bot, None).await;
    bot.expect_json("join").await;
    // IRC's own INVITE answers 341.
    let mut op = Irc::registered(&server, "op").await;
    op.send("JOIN #irc").await;
    op.expect(" 366 ").await;
    op.send("INVITE cai #irc").await;
    assert_eq!(op.line().await, ":charla 341 op cai #irc");
    cai.expect("*** op invites you to #irc").await;
    op.send("MODE #irc").await;
    assert_eq!(op.line().await, ":charla 324 op #irc +nt");
    assert!(op.line().await.starts_with(":charla 329 op #irc "));
    op.send("MODE #irc +z").await;
    assert_eq!(
        op.line().await,
        ":charla 472 op z :is unknown mode char to me"
    );
}
