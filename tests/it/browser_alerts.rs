//! Checks and alerts on the page in a real browser: the status panel, its response-time
//! chart, and alerts and notices styled by priority.

use std::net::SocketAddr;
use std::time::Duration;

use charla::feeds::{self, CheckSpec, FeedOptions};
use charla::hub::Hub;
use charla::limits::Limits;
use charla::server::{self, Datagrams, ListenAddr};
use serde_json::{Value, json};
use tokio_util::sync::DropGuard;

use crate::browser::{Driver, ENTER};
use crate::cluster::{Node, Redis};
use crate::support::{Client, PATIENCE};

/// A server running `check` every `every` into #alerts, with a text listener and an HTTP
/// one (flood control off): their addresses, and what stops it when dropped.
async fn checks_server(check: &str, every: Duration) -> (SocketAddr, SocketAddr, DropGuard) {
    let specs = ["tcp://127.0.0.1:0", "http://127.0.0.1:0"].map(|s| s.parse().unwrap());
    let bound = server::bind(&specs).unwrap();
    let addrs: Vec<ListenAddr> = bound.iter().map(|b| b.local_addr()).collect();
    let tcp = match addrs[0] {
        ListenAddr::Tcp(sa) => sa,
        ref other => panic!("{other}"),
    };
    let http = crate::support::first_http(&addrs);
    let limits = Limits {
        flood_rate: 0,
        ..Limits::default()
    };
    let shutdown = tokio_util::sync::CancellationToken::new();
    let hub = Hub::new(&limits);
    let options = FeedOptions {
        checks: vec![check.parse::<CheckSpec>().unwrap()],
        check_interval: every,
        check_timeout: every,
        ..FeedOptions::default()
    };
    feeds::start(&hub, &options, shutdown.clone()).unwrap();
    let stop = shutdown.clone().drop_guard();
    tokio::spawn(server::run_with(
        hub,
        bound,
        Datagrams::default(),
        limits,
        shutdown,
    ));
    (tcp, http, stop)
}

/// A JSON client in #alerts, once the check is up (so a page opened now is greeted with
/// its state).
async fn watcher_once_up(tcp: SocketAddr) -> Client {
    let mut bot = crate::store::json_client(tcp, "bot").await;
    crate::store::join(&mut bot, "#alerts").await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        bot.send(r##"{"type":"status","room":"#alerts"}"##).await;
        let status = bot.expect_json("status").await;
        if status["items"][0]["state"] == "up" {
            return bot;
        }
        assert!(tokio::time::Instant::now() < deadline, "{status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_with_checks_shows_each_check_up_or_down() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    // What the check probes: up while this listens.
    let target = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let spec = format!("web=tcp://{}", target.local_addr().unwrap());
    let (_, http, _stop) = checks_server(&spec, Duration::from_millis(100)).await;

    driver
        .open(&format!("http://{http}/?nick=ops&room=alerts"))
        .await;
    let panel = driver.one("#checks").await;
    driver.wait_for_text(&panel, "web up").await;
    // Its uptime and a chart of its response times, from the status it was greeted with.
    driver.wait_for_text(&panel, "100% up in 24h").await;
    assert_eq!(driver.all("#checks li svg.chart polyline").await.len(), 1);
    drop(target);
    driver.wait_for_text(&panel, "web down since").await;
    assert_eq!(driver.all("#checks li.down").await.len(), 1);
    driver.quit().await;
}

/// The chart a check's live alert carries replaces the one the page was greeted with: the
/// panel draws exactly what the alert says, without asking for `status` again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checks_chart_moves_with_its_live_alerts() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let down = dir.path().join("down");
    // Up at once, down slowly: the alert's run changes the chart. The slow run is the
    // down one, which may time out on a loaded machine and be the same alert; an up run
    // that slow would time out before the test's change, and the check's alerts (down,
    // then up again) would come before the one that change causes.
    let spec = format!(
        "web=exec:if [ -e {} ]; then sleep 0.2; echo refused; exit 1; fi",
        down.display()
    );
    let (tcp, http, _stop) = checks_server(&spec, Duration::from_millis(500)).await;
    let mut bot = watcher_once_up(tcp).await;

    driver
        .open(&format!("http://{http}/?nick=ops&room=alerts"))
        .await;
    let panel = driver.one("#checks").await;
    driver.wait_for_text(&panel, "web up").await;
    let greeted = driver.run(CHART, json!([])).await;
    assert!(greeted.as_str().unwrap().contains("<polyline"), "{greeted}");

    std::fs::write(&down, "").unwrap();
    let alert = bot.expect_json("alert").await;
    assert_eq!(alert["state"], "down", "{alert}");
    let responses = alert["responses"]
        .as_str()
        .expect("the alert carries its chart");
    let drawn = driver
        .run("return chart(arguments[0]).outerHTML;", json!([responses]))
        .await;
    assert_ne!(drawn, greeted, "the alert's run is on its chart");
    driver.wait_for_text(&panel, "web down since").await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while driver.run(CHART, json!([])).await != drawn {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the panel shows {} for {drawn}",
            driver.run(CHART, json!([])).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    driver.quit().await;
}

/// A check not run yet when the page came is shown as such, then as up once its first
/// result is in, though a first result that is up is not posted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_first_seen_unknown_is_shown_up_once_it_is() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let go = dir.path().join("go");
    let spec = format!(
        "web=exec:while [ ! -e {} ]; do sleep 0.05; done",
        go.display()
    );
    let (_, http, _stop) = checks_server(&spec, Duration::from_secs(60)).await;
    driver
        .open(&format!("http://{http}/?nick=ops&room=alerts"))
        .await;
    let panel = driver.one("#checks").await;
    driver.wait_for_text(&panel, "web unknown").await;
    std::fs::write(&go, "").unwrap();
    driver.wait_for_text(&panel, "web up since").await;
    // Asked quietly: the log has the status the page was greeted with, once.
    let log = driver.text(&driver.one("#log").await).await;
    assert_eq!(log.matches("[check:web]").count(), 1, "{log}");
    driver.quit().await;
}

/// The check panel's chart as HTML.
const CHART: &str = "return document.querySelector('#checks svg.chart')?.outerHTML ?? null;";

/// Each line of the log: its text, classes, and the computed style that sets it apart.
const LOG_STYLES: &str = "return [...document.querySelectorAll('#log li')].map(li => { \
    const s = getComputedStyle(li); \
    return [li.innerText, li.className, [s.color, s.backgroundColor, s.opacity, s.fontWeight].join(' ')]; });";

/// Alerts and notices of each priority, from HTTP publish and from a check, wear their
/// priority's class and a style of their own; a person's line wears none of them. The
/// check is acknowledged from the page's chat line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_and_notices_are_styled_by_priority_and_peoples_lines_are_not() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let target = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let spec = format!("web=tcp://{}", target.local_addr().unwrap());
    let (tcp, http, _stop) = checks_server(&spec, Duration::from_millis(100)).await;
    let mut bot = watcher_once_up(tcp).await;
    driver
        .open(&format!("http://{http}/?nick=ops&room=alerts"))
        .await;
    let log = driver.one("#log").await;
    driver.wait_for_text(&log, "you joined #alerts").await;

    bot.send(r##"{"type":"say","room":"#alerts","text":"a person's line"}"##)
        .await;
    let priorities = [
        ("1", 1),
        ("min", 1),
        ("2", 2),
        ("low", 2),
        ("3", 3),
        ("default", 3),
        ("4", 4),
        ("high", 4),
        ("5", 5),
        ("urgent", 5),
    ];
    for (priority, _) in priorities {
        let body = format!("priority {priority}");
        let reply = crate::http::post(http, "alerts", &[("Priority", priority)], &body).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    drop(target);
    driver.wait_for_text(&log, "web is DOWN").await;
    driver.wait_for_text(&log, "priority urgent").await;

    let lines = driver.run(LOG_STYLES, json!([])).await;
    let lines = lines.as_array().unwrap();
    let line = |needle: &str| -> (String, String) {
        let found: Vec<&Value> = lines
            .iter()
            .filter(|l| l[0].as_str().unwrap().contains(needle))
            .collect();
        assert_eq!(found.len(), 1, "{needle}: {lines:?}");
        let [_, class, style] = [0, 1, 2].map(|i| found[0][i].as_str().unwrap().to_string());
        (class, style)
    };
    let mut styles = Vec::new();
    for (priority, number) in priorities {
        let (class, style) = line(&format!("priority {priority}"));
        let kind = if number >= 4 { "alert" } else { "notice" };
        let classes: Vec<&str> = class.split(' ').collect();
        assert!(classes.contains(&kind), "{priority}: {class}");
        assert!(
            classes.contains(&format!("p{number}").as_str()),
            "{priority}: {class}"
        );
        styles.push((number, style));
    }
    // The two spellings of a priority look alike; the five priorities each differ.
    for (a, style_a) in &styles {
        for (b, style_b) in &styles {
            assert_eq!(a == b, style_a == style_b, "{a}: {style_a}; {b}: {style_b}");
        }
    }
    // A check's alert is loud as its priority (4 unless given) says.
    let (class, style) = line("web is DOWN: cannot connect");
    assert!(class.contains("alert p4"), "{class}");
    assert_eq!(&style, &styles[6].1);
    let person = line("<bot> a person's line");
    assert!(
        !person.0.contains("alert") && !person.0.contains("notice") && !person.0.contains(" p"),
        "{person:?}"
    );
    assert!(styles.iter().all(|(_, s)| *s != person.1), "{person:?}");

    // Acknowledged from the page's chat line, as from any other.
    let input = driver.one("input").await;
    driver
        .type_into(&input, &format!("/ack web on it{ENTER}"))
        .await;
    driver.wait_for_text(&log, "ops acknowledged web").await;
    driver.wait_for_text(&log, "[acknowledged by ops]").await;
    let panel = driver.one("#checks").await;
    driver.wait_for_text(&panel, "· acknowledged by ops").await;
    driver
        .type_into(&input, &format!("/silence web 1h maintenance{ENTER}"))
        .await;
    driver
        .wait_for_text(&log, "ops silenced web for 1h: maintenance")
        .await;
    driver.wait_for_text(&panel, "· silenced").await;
    driver.quit().await;
}

/// In a cluster two nodes' checks of one name are two in the panel, each with its node,
/// and a live alert of one changes it alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_checks_of_one_name_are_shown_apart() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let redis = Redis::start();
    let one = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let two = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let check =
        |target: &std::net::TcpListener| format!("web=tcp://{}", target.local_addr().unwrap());
    let quick = ["--check-interval", "200ms"];
    let n1 = Node::start_with(&redis, "n1", &["--check", &check(&one), quick[0], quick[1]]);
    let _n2 = Node::start_with(&redis, "n2", &["--check", &check(&two), quick[0], quick[1]]);
    // The page is greeted with both once node 1 knows node 2's.
    let mut bot = n1.json("bot").await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        bot.send(r##"{"type":"status","room":"#alerts"}"##).await;
        let status = bot.expect_json("status").await;
        let up = |node: &str| {
            status["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["check"] == "web" && i["node"] == node && i["state"] == "up")
        };
        if up("n1") && up("n2") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    driver
        .open(&format!("http://{}/?nick=ops&room=alerts", n1.http))
        .await;
    let panel = driver.one("#checks").await;
    driver.wait_for_text(&panel, "web (n2) up since").await;
    let shown = driver.texts("#checks li").await;
    assert_eq!(shown.len(), 2, "{shown:?}");
    assert!(shown[0].starts_with("web (n1) up since"), "{shown:?}");
    assert!(shown[1].starts_with("web (n2) up since"), "{shown:?}");

    // Node 2's check goes down: its alert, posted on node 2 with its name, changes its
    // line alone.
    crate::store::join(&mut bot, "#alerts").await;
    drop(two);
    let alert = bot.expect_json("alert").await;
    assert_eq!(
        (&alert["check"], &alert["node"]),
        (&json!("web"), &json!("n2")),
        "{alert}"
    );
    driver.wait_for_text(&panel, "web (n2) down since").await;
    let shown = driver.texts("#checks li").await;
    assert_eq!(shown.len(), 2, "{shown:?}");
    assert!(shown[0].starts_with("web (n1) up since"), "{shown:?}");
    assert_eq!(driver.all("#checks li.down").await.len(), 1);
    driver.quit().await;
}
