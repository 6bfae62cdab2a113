//! Unicode that deceives: names that look like someone else's, invisible names, and text
//! that reorders or splits itself on the reader's screen.

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
