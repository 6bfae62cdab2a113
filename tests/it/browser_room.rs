//! The page's room commands and the events they bring, in a real browser: modes, operator
//! and voice marks, bans, invitations, away marks, /help, and a cluster's interruption.

use std::time::Duration;

use serde_json::{Value, json};

use crate::browser::{Driver, ENTER, ana_and_the_page_in_ops, page_server};
use crate::cluster::{Node, Redis};
use crate::support::PATIENCE;

/// Waits until the texts of the elements `css` selects pass `done`; returns them.
async fn wait_texts(driver: &Driver, css: &str, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let texts = driver.texts(css).await;
        if done(&texts) {
            return texts;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{css} shows {texts:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Types `line` into the message box (emptied first: a line the page refused stays there)
/// and sends it.
async fn type_line(driver: &Driver, line: &str) {
    let input = driver.one("input").await;
    driver
        .call("POST", &format!("/element/{input}/clear"), Some(json!({})))
        .await;
    driver.type_into(&input, &format!("{line}{ENTER}")).await;
}

/// Nothing anyone typed became markup: no element but the page's own, and the title kept.
async fn assert_inert(driver: &Driver) {
    assert!(
        driver
            .all("#log img, #log b, #members img, #members b")
            .await
            .is_empty()
    );
    assert_eq!(driver.call("GET", "/title", None).await, "charla");
}

/// Who is an operator, voiced or away before the page joins is marked as soon as it
/// joins, not only when it changes afterwards; and it stays right as it changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_marks_members_who_were_operators_voiced_or_away_before_it_came() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let server = page_server().await;
    let mut ana = server.named("ana").await;
    let mut bob = server.named("bob").await;
    let mut cy = server.named("cy").await;
    ana.send("/join #ops").await;
    ana.expect("#ops *** you joined").await;
    for c in [&mut bob, &mut cy] {
        c.send("/join #ops").await;
        c.expect("#ops *** you joined").await;
    }
    ana.send("/voice bob").await;
    ana.expect("+v bob").await;
    ana.send("/away lunch").await;
    ana.expect("you are marked away").await;
    cy.send("/away brb").await;
    cy.expect("you are marked away").await;
    driver
        .open(&format!("http://{}/?nick=webby&room=ops", server.http()))
        .await;
    ana.expect("#ops *** webby joined").await;
    // The page's own join names the members first, unmarked; the marks come with the
    // `users` answer right after it, so wait for them rather than for the four names.
    wait_texts(&driver, "#members li", |m| {
        m == ["@ana (away)", "+bob", "cy (away)", "webby"]
    })
    .await;
    let title = driver
        .call(
            "POST",
            "/execute/sync",
            Some(json!({
                "script": "return document.querySelector('#members li.away').title;",
                "args": []
            })),
        )
        .await;
    assert_eq!(title, "away", "the message is not known until it changes");
    cy.send("/away").await;
    cy.expect("you are back").await;
    wait_texts(&driver, "#members li", |m| {
        m == ["@ana (away)", "+bob", "cy", "webby"]
    })
    .await;
    driver.quit().await;
}

/// An operator's mode changes, bans, a key and an away message reach the page as status
/// lines and marks in the members list, shown as text; an invitation offers a button
/// that joins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_modes_bans_invitations_and_away_marks_inert() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let server = page_server().await;
    let mut ana = ana_and_the_page_in_ops(&server, &driver).await;
    let log = driver.one("#log").await;
    // ana made #ops: the page learns she is its operator.
    wait_texts(&driver, "#members li", |m| m == ["@ana", "webby"]).await;

    ana.send("/op webby").await;
    driver.wait_for_text(&log, "ana set mode +o webby").await;
    wait_texts(&driver, "#members li", |m| m == ["@ana", "@webby"]).await;
    ana.send("/deop webby").await;
    ana.send("/voice webby").await;
    driver.wait_for_text(&log, "ana set mode +v webby").await;
    wait_texts(&driver, "#members li", |m| m == ["@ana", "+webby"]).await;

    // A key with markup in it, and an away message with a script in it, stay text.
    let key = "<b>k</b>";
    ana.send(&format!("/mode +k {key}")).await;
    driver
        .wait_for_text(&log, &format!("ana set mode +k {key}"))
        .await;
    let hostile = r#"<img src=x onerror="document.title='pwned'">"#;
    ana.send(&format!("/away {hostile}")).await;
    ana.expect("you are marked away").await;
    let marked = wait_texts(&driver, "#members li.away", |m| m == ["@ana (away)"]).await;
    assert_eq!(marked, ["@ana (away)"]);
    let title = driver
        .run(
            "return document.querySelector('#members li.away').title;",
            json!([]),
        )
        .await;
    assert_eq!(title, format!("away: {hostile}"));
    ana.send("/away").await;
    ana.expect("you are back").await;
    wait_texts(&driver, "#members li", |m| m == ["@ana", "+webby"]).await;

    // The page asks for the modes and the bans.
    ana.send("/ban eve").await;
    driver.wait_for_text(&log, "ana set mode +b eve!*@*").await;
    type_line(&driver, "/mode").await;
    driver
        .wait_for_text(
            &log,
            &format!("#ops modes +knt {key}; operators: ana; voiced: webby"),
        )
        .await;
    type_line(&driver, "/mode +b").await;
    driver
        .wait_for_text(&log, "#ops bans: eve!*@* by ana")
        .await;
    // A change by a member who is no operator is refused; by an operator, a change that
    // changes nothing is said so, to the one who asked.
    ana.send("/mode +m").await;
    driver.wait_for_text(&log, "ana set mode +m").await;
    type_line(&driver, "/mode +m").await;
    driver
        .wait_for_text(&log, "only #ops's operators may change its modes")
        .await;
    ana.send("/op webby").await;
    wait_texts(&driver, "#members li", |m| m == ["@ana", "@webby"]).await;
    type_line(&driver, "/mode +m").await;
    driver.wait_for_text(&log, "no mode changed").await;

    // An invitation to an invite-only room, taken with its button.
    ana.send("/join #secret").await;
    ana.expect("you joined").await;
    ana.send("/mode +i").await;
    ana.expect("set mode +i").await;
    ana.send("/invite webby").await;
    ana.expect("you invited webby to #secret").await;
    driver
        .wait_for_text(&log, "ana invites you to #secret join #secret")
        .await;
    driver.click("#log li.invite button", "join #secret").await;
    ana.expect("#secret *** webby joined").await;
    driver.wait_for_text(&log, "you joined #secret").await;
    assert_inert(&driver).await;
    driver.quit().await;
}

/// Each command /help lists, with the JSON request the page makes of it: what the page
/// takes, neither more nor less.
const TAKEN: &[(&str, &str, &str)] = &[
    ("/join", "/join #elsewhere", "join"),
    ("/leave", "/leave #elsewhere bye", "leave"),
    ("/nick", "/nick webster", "nick"),
    ("/msg", "/msg ana psst", "msg"),
    ("/me", "/me waves", "me"),
    ("/topic", "/topic deploys at 15:00", "topic"),
    ("/users", "/users", "users"),
    ("/rooms", "/rooms", "rooms"),
    ("/whois", "/whois ana", "whois"),
    ("/lusers", "/lusers", "census"),
    ("/away", "/away lunch", "away"),
    ("/invite", "/invite ana", "invite"),
    ("/kick", "/kick ana spam", "kick"),
    ("/op", "/op ana", "mode"),
    ("/deop", "/deop ana", "mode"),
    ("/voice", "/voice ana", "mode"),
    ("/devoice", "/devoice ana", "mode"),
    ("/ban", "/ban eve", "mode"),
    ("/unban", "/unban eve", "mode"),
    ("/mode", "/mode +m", "mode"),
    ("/history", "/history 5", "history"),
    ("/status", "/status", "status"),
    ("/ack", "/ack web on it", "ack"),
    ("/silence", "/silence web 1h", "silence"),
    ("/unsilence", "/unsilence web", "unsilence"),
];

/// Aliases /help names beside their commands.
const ALIASES: &[(&str, &str)] = &[
    ("/part", "leave"),
    ("/who", "users"),
    ("/names", "users"),
    ("/list", "rooms"),
];

/// The page's requests, kept instead of sent while a test looks at them.
const KEEP_REQUESTS: &str =
    "window.kept = []; ws.send = (d) => kept.push(JSON.parse(d)); return true;";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_help_lists_exactly_the_commands_it_takes() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let server = page_server().await;
    let mut ana = ana_and_the_page_in_ops(&server, &driver).await;
    let log = driver.one("#log").await;
    driver.wait_for_text(&log, "you joined #ops").await;

    type_line(&driver, "/help").await;
    let help = wait_texts(&driver, "#log li.help", |h| {
        h.iter().any(|l| l.contains("/help — "))
    })
    .await;
    // Each line past the first names a command (and its aliases); the verbs in order.
    let listed: Vec<String> = help[1..]
        .iter()
        .map(|l| l.split_whitespace().nth(1).unwrap().to_string())
        .collect();
    let mut expected: Vec<String> = TAKEN.iter().map(|(v, _, _)| v.to_string()).collect();
    expected.push("/help".into());
    assert_eq!(listed, expected, "{help:#?}");
    for aliased in [
        "/leave [#room] [message] (or /part) — ",
        "/users [#room] (or /who, /names) — ",
        "/rooms (or /list) — ",
    ] {
        assert!(
            help.iter().any(|l| l.contains(aliased)),
            "{aliased} not listed: {help:#?}"
        );
    }

    // Each is taken, and makes its request; kept here rather than sent.
    assert_eq!(driver.run(KEEP_REQUESTS, json!([])).await, true);
    let samples = TAKEN
        .iter()
        .map(|(_, line, kind)| (*line, *kind))
        .chain(ALIASES.iter().copied());
    for (n, (line, kind)) in samples.enumerate() {
        type_line(&driver, line).await;
        let kept = kept_once(&driver, n + 1).await;
        assert_eq!(kept.len(), n + 1, "{line}: {kept:?}");
        assert_eq!(kept[n]["type"], kind, "{line}: {:?}", kept[n]);
    }
    // Arguments as the JSON protocol names them.
    let kept = kept_once(&driver, TAKEN.len() + ALIASES.len()).await;
    assert_eq!(
        kept[1],
        json!({"type":"leave","room":"#elsewhere","message":"bye","ref":kept[1]["ref"]})
    );
    assert_eq!(
        kept[13],
        json!({"type":"mode","room":"#ops","modes":"+o","args":["ana"],"ref":kept[13]["ref"]})
    );
    assert_eq!(
        kept[19],
        json!({"type":"mode","room":"#ops","modes":"+m","ref":kept[19]["ref"]})
    );

    // Others are not taken, and nothing is sent; a command short of an argument says how.
    for line in ["/quit", "/register secret", "/frobnicate"] {
        type_line(&driver, line).await;
        let verb = line.split_whitespace().next().unwrap();
        driver
            .wait_for_text(&log, &format!("unknown command {verb}; /help lists"))
            .await;
    }
    type_line(&driver, "/kick").await;
    driver
        .wait_for_text(&log, "usage: /kick NICK [reason]")
        .await;
    let sent = driver.run("return kept.length;", json!([])).await;
    assert_eq!(sent, TAKEN.len() + ALIASES.len());

    // Back on the wire: /whois, /away and /lusers answered by the server.
    driver.run("delete ws.send; return true;", json!([])).await;
    type_line(&driver, "/away back soon").await;
    driver.wait_for_text(&log, "you are away: back soon").await;
    wait_texts(&driver, "#members li.away", |m| m == ["webby (away)"]).await;
    ana.send("/whois webby").await;
    ana.expect("away: back soon").await;
    type_line(&driver, "/whois ana").await;
    driver
        .wait_for_text(&log, "ana is in #lobby @#ops; idle")
        .await;
    // ana and webby; #alerts (there from the start), #lobby and #ops.
    type_line(&driver, "/lusers").await;
    driver
        .wait_for_text(&log, "2 connected (at most 2 at once), 3 rooms")
        .await;
    driver.quit().await;
}

/// The requests the page kept, once there are at least `n`.
async fn kept_once(driver: &Driver, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let kept = driver.run("return kept;", json!([])).await;
        let kept = kept.as_array().unwrap().clone();
        if kept.len() >= n {
            return kept;
        }
        assert!(tokio::time::Instant::now() < deadline, "kept {kept:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A node of a cluster that loses Redis says so in a banner until delivery is restored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_a_banner_while_cross_node_delivery_is_interrupted() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let mut redis = Redis::start();
    let node = Node::start(&redis, "one");
    driver
        .open(&format!("http://{}/?nick=webby&room=ops", node.http))
        .await;
    let log = driver.one("#log").await;
    driver.wait_for_text(&log, "you joined #ops").await;
    assert_eq!(banner(&driver).await, json!([true, ""]));

    redis.stop();
    let shown = wait_banner(&driver, |hidden, _| !hidden).await;
    assert!(
        shown[1]
            .as_str()
            .unwrap()
            .starts_with("cross-node delivery interrupted"),
        "{shown}"
    );
    redis.restart();
    wait_banner(&driver, |hidden, _| hidden).await;
    driver
        .wait_for_text(&log, "cross-node delivery restored")
        .await;
    driver.quit().await;
}

/// Whether the banner is hidden, and its text.
async fn banner(driver: &Driver) -> Value {
    let script = "const b = document.getElementById('banner'); return [b.hidden, b.textContent];";
    driver.run(script, json!([])).await
}

async fn wait_banner(driver: &Driver, done: impl Fn(bool, &str) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let b = banner(driver).await;
        if done(b[0].as_bool().unwrap(), b[1].as_str().unwrap()) {
            return b;
        }
        assert!(tokio::time::Instant::now() < deadline, "the banner: {b}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
