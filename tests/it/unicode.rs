//! Unicode that deceives: names that look like someone else's, invisible names, and text
//! that reorders or splits itself on the reader's screen.

use serde_json::json;

use crate::support::{QUIET, TestServer};

#[tokio::test(flavor = "multi_thread")]
async fn look_alike_and_invisible_nicks_are_refused_while_the_original_is_online() {
    let server = TestServer::start().await;
    let mut c = server.crowd(&["ana", "obs", "paco", "bea"]).await;
    for (nick, code) in [
        ("аna", "invalid_nick"),         // Cyrillic а, then Latin
        ("ａｎａ", "invalid_nick"),      // fullwidth
        ("ana\u{3164}", "invalid_nick"), // a Hangul filler after it
        ("\u{3164}", "invalid_nick"),    // nothing but the filler
        ("оbs", "invalid_nick"),         // Cyrillic о, then Latin
        ("расо", "nick_taken"),          // all Cyrillic, so one script, but paco's double
        ("PACO", "nick_taken"),
    ] {
        c[3].send(&format!("/nick {nick}")).await;
        let error = c[3].line().await;
        assert!(
            error.starts_with(&format!("ERROR {code}: ")),
            "{nick:?}: {error:?}"
        );
    }
    c[3].send("/nick расо").await;
    assert_eq!(
        c[3].line().await,
        "ERROR nick_taken: расо looks like paco, which is taken; you are still bea"
    );
    c[3].send("/users").await;
    assert_eq!(c[3].line().await, "#lobby *** 4 here: ana, bea, obs, paco");
    c[0].silent_for(QUIET).await;

    // A program asking for a look-alike in its hello keeps its guest nick.
    let mut bot = server.client().await;
    bot.send(r#"{"type":"hello","nick":"аna","ref":1}"#).await;
    let error = bot.expect_json("error").await;
    assert_eq!(error["code"], "invalid_nick", "{error}");
    let welcome = bot.expect_json("welcome").await;
    assert!(
        welcome["nick"].as_str().unwrap().starts_with("guest-"),
        "{welcome}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_room_that_looks_like_another_is_that_room() {
    let server = TestServer::start().await;
    let mut c = server.crowd(&["ana", "bea"]).await;
    c[0].send("/join #ops").await;
    c[0].expect("#ops *** you joined").await;
    // All Cyrillic: one script, and the same room as #ops, shown by its first spelling.
    c[1].send("/join #орѕ").await;
    assert_eq!(c[1].line().await, "#ops *** you joined; here now: ana, bea");
    assert_eq!(c[0].line().await, "#ops *** bea joined");
    c[1].send("/rooms").await;
    assert_eq!(c[1].line().await, "*** rooms: #lobby (2), #ops (2)");
    // Mixed Cyrillic and Latin is no room name at all.
    c[1].send("/join #оps").await;
    let error = c[1].line().await;
    assert!(error.starts_with("ERROR invalid_room: "), "{error:?}");
    assert!(
        error.contains("mixes scripts (Cyrillic, Latin)"),
        "{error:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bidi_controls_and_line_separators_are_neutralised_in_text_and_json() {
    let server = TestServer::start().await;
    let mut ana = server.named("ana").await;
    let mut bot = server.json("bot").await;
    ana.expect("bot").await;
    // U+202E would show "txt.exe" as "exe.txt"; U+2028 would split the line for a client
    // that splits on it. Removed, and a space, as a tab is.
    ana.send("file\u{202E}exe.txt\u{202C} ok\u{2028}line two\u{2029}\u{2066}x\u{2069}")
        .await;
    let message = bot.expect_json("message").await;
    assert_eq!(message["text"], "fileexe.txt ok line two x", "{message}");

    bot.send(
        &json!({"type":"say","text":"\u{202A}left\u{202B}right\u{202D}\u{2067}\u{2068}\u{2028}end"})
            .to_string(),
    )
    .await;
    bot.expect_json("ack").await;
    assert_eq!(ana.line().await, "#lobby <bot> leftright end");

    // Parting words too.
    bot.send(&json!({"type":"quit","message":"bye\u{202E}eyb\u{2029}"}).to_string())
        .await;
    assert_eq!(ana.line().await, "#lobby *** bot left (quit: byeeyb )");
}
