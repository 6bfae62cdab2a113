//! The chat page in a real browser: Debian's chromium, driven through chromedriver's
//! WebDriver HTTP interface (a few JSON requests, spoken with the HTTP tests' client),
//! beside a text client.
//!
//! scripts/test.sh installs chromium and chromium-driver. Without them the test is
//! skipped with a note, except under CI (`CI` set), where their absence is a failure.

use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::http::{HttpAnswer, raw_within};
use crate::support::{Client, PATIENCE, TestServer};
use charla::limits::Limits;
use charla::server::HttpOptions;

/// Chromium's first start on a busy machine is slow.
const BROWSER_PATIENCE: Duration = Duration::from_secs(60);

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// The WebDriver key code of Enter.
pub(crate) const ENTER: &str = "\u{E007}";

/// One browser at a time: several chromiums at once would crowd a small machine.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// chromedriver, killed when the test ends.
pub(crate) struct Driver {
    child: Child,
    addr: SocketAddr,
    session: String,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Drop for Driver {
    /// Ends chromedriver and the browser it started (its own process group), even when
    /// the test failed before quitting the session.
    fn drop(&mut self) {
        let group = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

async fn call(addr: SocketAddr, method: &str, path: &str, body: Option<Value>) -> Value {
    match try_call(addr, method, path, body).await {
        Ok(value) => value,
        Err(value) => panic!("{method} {path}: {value}"),
    }
}

/// A WebDriver call: its value, or the error it answered.
async fn try_call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<Value, Value> {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: {}",
        body.len()
    );
    let reply: HttpAnswer = raw_within(addr, &head, body.as_bytes(), BROWSER_PATIENCE).await;
    let value = reply.json();
    if reply.status == 200 {
        Ok(value["value"].clone())
    } else {
        Err(value)
    }
}

impl Driver {
    /// chromedriver and a headless chromium session, or `None` when they are not installed
    /// (outside CI).
    pub(crate) async fn start() -> Option<Driver> {
        if !std::path::Path::new(CHROMEDRIVER).exists() || !std::path::Path::new(CHROMIUM).exists()
        {
            assert!(
                std::env::var_os("CI").is_none(),
                "{CHROMEDRIVER} or {CHROMIUM} is missing: scripts/test.sh installs them"
            );
            eprintln!("skipped: no {CHROMEDRIVER} or {CHROMIUM} (scripts/test.sh installs them)");
            return None;
        }
        let turn = ONE_BROWSER.lock().await;
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut driver = Driver {
            child,
            addr,
            session: String::new(),
            _turn: turn,
        };
        let deadline = tokio::time::Instant::now() + BROWSER_PATIENCE;
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver never listened"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--no-first-run",
                         "--disable-crash-reporter", "--disable-breakpad"],
            },
        }}});
        let session = call(addr, "POST", "/session", Some(capabilities)).await;
        driver.session = session["sessionId"].as_str().unwrap().to_string();
        Some(driver)
    }

    pub(crate) async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let path = format!("/session/{}{path}", self.session);
        call(self.addr, method, &path, body).await
    }

    pub(crate) async fn open(&self, url: &str) {
        self.call("POST", "/url", Some(json!({"url": url}))).await;
    }

    /// The elements `css` selects, as WebDriver element ids.
    pub(crate) async fn all(&self, css: &str) -> Vec<String> {
        let found = self
            .call(
                "POST",
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        found
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                e.as_object()
                    .unwrap()
                    .values()
                    .next()
                    .unwrap()
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    }

    pub(crate) async fn one(&self, css: &str) -> String {
        let all = self.all(css).await;
        assert_eq!(all.len(), 1, "{css}");
        all.into_iter().next().unwrap()
    }

    /// The rendered text of each element `css` selects, read at one moment (the page
    /// redraws its lists, so elements found by one call may be gone by the next).
    pub(crate) async fn texts(&self, css: &str) -> Vec<String> {
        let script = json!({
            "script": "return [...document.querySelectorAll(arguments[0])].map(e => e.innerText);",
            "args": [css],
        });
        let texts = self.call("POST", "/execute/sync", Some(script)).await;
        texts
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect()
    }

    /// Clicks the element `css` selects whose text starts with `prefix`, finding it again
    /// if the page redrew it in between.
    pub(crate) async fn click(&self, css: &str, prefix: &str) {
        for _ in 0..20 {
            for element in self.all(css).await {
                let path = format!("/session/{}/element/{element}", self.session);
                let Ok(text) = try_call(self.addr, "GET", &format!("{path}/text"), None).await
                else {
                    continue;
                };
                if text.as_str().is_some_and(|t| t.starts_with(prefix)) {
                    let click = format!("{path}/click");
                    if try_call(self.addr, "POST", &click, Some(json!({})))
                        .await
                        .is_ok()
                    {
                        return;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no {css} starting with {prefix:?} could be clicked");
    }

    pub(crate) async fn text(&self, element: &str) -> String {
        let text = self
            .call("GET", &format!("/element/{element}/text"), None)
            .await;
        text.as_str().unwrap().to_string()
    }

    /// Waits until the element's text contains `needle`.
    pub(crate) async fn wait_for_text(&self, element: &str, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let text = self.text(element).await;
            if text.contains(needle) {
                return text;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {needle:?} on the page; it shows {text:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) async fn type_into(&self, element: &str, keys: &str) {
        self.call(
            "POST",
            &format!("/element/{element}/value"),
            Some(json!({"text": keys})),
        )
        .await;
    }

    /// Runs `script` in the page with `args`; what it returns.
    pub(crate) async fn run(&self, script: &str, args: Value) -> Value {
        let body = json!({"script": script, "args": args});
        self.call("POST", "/execute/sync", Some(body)).await
    }

    /// Turns the mouse wheel up over the element, as a reader scrolling back does.
    pub(crate) async fn wheel_up(&self, element: &str) {
        let origin = json!({"element-6066-11e4-a52e-4f735466cecf": element});
        let scroll = json!({"type": "scroll", "x": 0, "y": 0, "deltaX": 0, "deltaY": -5000,
                            "duration": 0, "origin": origin});
        let actions = json!({"actions": [{"type": "wheel", "id": "wheel", "actions": [scroll]}]});
        self.call("POST", "/actions", Some(actions)).await;
    }

    pub(crate) async fn quit(&self) {
        let path = format!("/session/{}", self.session);
        call(self.addr, "DELETE", &path, None).await;
    }
}

/// A server with a text listener and the HTTP one the page is served from, flood control
/// off.
pub(crate) async fn page_server() -> TestServer {
    page_server_with(Limits {
        flood_rate: 0,
        ..Limits::default()
    })
    .await
}

async fn page_server_with(limits: Limits) -> TestServer {
    let specs = ["tcp://127.0.0.1:0", "http://127.0.0.1:0"];
    TestServer::with_http(&specs, limits, HttpOptions::default()).await
}

/// `ana` in #ops over text, and the page opened as webby in #ops beside her.
pub(crate) async fn ana_and_the_page_in_ops(server: &TestServer, driver: &Driver) -> Client {
    let mut ana = server.named("ana").await;
    ana.send("/join #ops").await;
    ana.expect("you joined").await;
    driver
        .open(&format!("http://{}/?nick=webby&room=ops", server.http()))
        .await;
    ana.expect("#ops *** webby joined").await;
    ana
}

impl Driver {
    /// The network goes: the page's WebSocket closes, and the page is told not to come
    /// back until [`Driver::reconnect`].
    async fn cut(&self) {
        let script = json!({"script": "ws.onclose = null; ws.close();", "args": []});
        self.call("POST", "/execute/sync", Some(script)).await;
    }

    /// The page connects again after a [`Driver::cut`].
    async fn reconnect(&self) {
        let script = json!({"script": "connect();", "args": []});
        self.call("POST", "/execute/sync", Some(script)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_chats_with_a_text_client_and_renders_what_they_type_inert() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let server = page_server().await;
    let mut ana = ana_and_the_page_in_ops(&server, &driver).await;

    // The message box is found by its accessible name, as a screen reader finds it.
    let input = driver.one("input").await;
    let label = driver
        .call("GET", &format!("/element/{input}/computedlabel"), None)
        .await;
    assert_eq!(label, "Message");

    driver
        .type_into(&input, &format!("hola desde la web{ENTER}"))
        .await;
    assert_eq!(
        ana.expect("hola desde la web").await,
        "#ops <webby> hola desde la web"
    );
    let log = driver.one("#log").await;
    // Your own line, as sent, once the server has taken it.
    driver
        .wait_for_text(&log, "<webby> hola desde la web")
        .await;

    // What others type is shown as text, never run or rendered as HTML.
    let hostile = r#"<img src=x onerror="document.title='pwned'"><b>bold</b>"#;
    ana.send(hostile).await;
    driver.wait_for_text(&log, hostile).await;
    assert!(driver.all("#log img").await.is_empty());
    assert!(driver.all("#log b").await.is_empty());
    let title = driver.call("GET", "/title", None).await;
    assert_eq!(title, "charla");

    // A feed's alert, posted over HTTP, reaches the page too.
    let reply = crate::http::post(server.http(), "ops", &[("Priority", "high")], "disk full").await;
    assert_eq!(reply.status, 200);
    driver
        .wait_for_text(&log, "!!! [http:127.0.0.1] disk full")
        .await;

    driver.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_reconnects_after_a_server_restart() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let limits = Limits {
        flood_rate: 0,
        ..Limits::default()
    };
    let specs = ["tcp://127.0.0.1:0", "http://127.0.0.1:0"];
    let first = TestServer::with_http(&specs, limits.clone(), HttpOptions::default()).await;
    let http = first.http();
    let mut ana = first.named("ana").await;
    driver
        .open(&format!("http://{http}/?nick=webby&room=ops"))
        .await;
    ana.expect("#lobby *** webby joined").await;
    let log = driver.one("#log").await;

    drop(ana);
    let TestServer { shutdown, task, .. } = first;
    shutdown.cancel();
    task.await.unwrap();
    driver
        .wait_for_text(&log, "goodbye (server shutdown)")
        .await;
    driver.wait_for_text(&log, "reconnecting").await;

    // The same address again, as after a restart.
    let again = format!("http://{http}");
    let second = TestServer::with_http(
        &["tcp://127.0.0.1:0", &again],
        limits,
        HttpOptions::default(),
    )
    .await;
    let mut bob = second.named("bob").await;
    bob.send("/join #ops").await;
    // The page comes back by itself, as webby in #ops.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let line = bob.line().await;
        if line.contains("webby") && line.contains("joined")
            || line.contains("here now") && line.contains("webby")
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the page never came back"
        );
    }
    let input = driver.one("input").await;
    driver
        .type_into(&input, &format!("back again{ENTER}"))
        .await;
    assert_eq!(bob.expect("back again").await, "#ops <webby> back again");
    driver.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_cut_the_page_fills_in_what_was_missed_marked_and_nothing_twice() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let server = page_server().await;
    let mut ana = server.named("ana").await;
    ana.send("/join #ops").await;
    ana.expect("you joined").await;
    ana.send("said before").await;
    driver
        .open(&format!("http://{}/?nick=webby&room=ops", server.http()))
        .await;
    ana.expect("#ops *** webby joined").await;
    let log = driver.one("#log").await;
    driver.wait_for_text(&log, "said before").await;
    ana.send("hello webby").await;
    driver.wait_for_text(&log, "hello webby").await;
    assert_eq!(driver.all("#log li.mention").await.len(), 1);

    // The network goes; the page, told not to come back yet, misses two lines.
    driver.cut().await;
    ana.expect("#ops *** webby left").await;
    ana.send("while away 1").await;
    ana.send("while away 2").await;
    driver.reconnect().await;
    ana.expect("#ops *** webby joined").await;

    let text = driver.wait_for_text(&log, "while away 2").await;
    assert!(text.contains("missed while disconnected:"), "{text}");
    assert!(text.contains("while away 1"), "{text}");
    assert_eq!(text.matches("said before").count(), 1, "{text}");
    assert_eq!(text.matches("hello webby").count(), 1, "{text}");
    assert_eq!(driver.all("#log li.missed").await.len(), 2, "{text}");
    driver.quit().await;
}

/// A reconnect resumes by `seq`: of what was said while away, what is still kept comes back
/// marked as missed, and what is no longer kept is said to be lost, never skipped silently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_long_cut_the_page_says_what_is_no_longer_kept() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let server = page_server_with(Limits {
        flood_rate: 0,
        history_per_room: 2,
        ..Limits::default()
    })
    .await;
    let mut ana = ana_and_the_page_in_ops(&server, &driver).await;
    let log = driver.one("#log").await;
    ana.send("said first").await;
    driver.wait_for_text(&log, "said first").await;

    driver.cut().await;
    ana.expect("#ops *** webby left").await;
    // Entries 2 to 6 of #ops; the room keeps the last two.
    for n in 1..=5 {
        ana.send(&format!("while away {n}")).await;
    }
    driver.reconnect().await;
    ana.expect("#ops *** webby joined").await;

    let text = driver.wait_for_text(&log, "while away 5").await;
    assert!(
        text.contains("#ops: messages 2 to 4 were said while you were away and are no longer kept"),
        "{text}"
    );
    assert!(text.contains("while away 4"), "{text}");
    assert!(!text.contains("while away 3"), "{text}");
    assert_eq!(text.matches("said first").count(), 1, "{text}");
    assert_eq!(driver.all("#log li.missed").await.len(), 2, "{text}");
    driver.quit().await;
}

/// The page resumes after its own lines too (their ack carries their `seq`): what it said
/// itself is neither asked for again nor, once the room no longer keeps it, said to be lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_cut_the_page_resumes_after_its_own_lines() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let server = page_server_with(Limits {
        flood_rate: 0,
        history_per_room: 2,
        ..Limits::default()
    })
    .await;
    let mut ana = ana_and_the_page_in_ops(&server, &driver).await;
    let log = driver.one("#log").await;
    ana.send("said first").await;
    driver.wait_for_text(&log, "said first").await;
    // Entries 2 to 4 of #ops, the page's own: each shown once acked.
    let input = driver.one("input").await;
    for n in 1..=3 {
        driver.type_into(&input, &format!("mine {n}{ENTER}")).await;
        ana.expect(&format!("<webby> mine {n}")).await;
        driver.wait_for_text(&log, &format!("mine {n}")).await;
    }

    driver.cut().await;
    ana.expect("#ops *** webby left").await;
    // Entry 5; the room keeps 4 and 5.
    ana.send("while away").await;
    driver.reconnect().await;
    ana.expect("#ops *** webby joined").await;

    let text = driver.wait_for_text(&log, "while away").await;
    assert!(!text.contains("no longer kept"), "{text}");
    assert_eq!(driver.all("#log li.missed").await.len(), 1, "{text}");
    assert_eq!(text.matches("mine 3").count(), 1, "{text}");
    driver.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_one_room_at_a_time_and_counts_the_unread_of_the_others() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let server = page_server().await;
    let mut bot = server.json("bot").await;
    driver
        .open(&format!("http://{}/?nick=webby&room=ops", server.http()))
        .await;
    bot.expect("webby").await;
    let log = driver.one("#log").await;
    driver.wait_for_text(&log, "you joined #ops").await;
    let members = driver.one("#members").await;
    // webby made #ops: its operator.
    assert_eq!(driver.wait_for_text(&members, "@webby").await, "@webby");

    bot.send(r##"{"type":"say","room":"#lobby","text":"psst in the lobby"}"##)
        .await;
    // #lobby, not the room on show, counts it.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let counts = driver.texts("nav .unread").await;
        if counts.contains(&"1".to_string()) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no unread count: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!driver.text(&log).await.contains("psst in the lobby"));

    driver.click("nav button", "#lobby").await;
    driver.wait_for_text(&log, "psst in the lobby").await;
    assert!(!driver.text(&log).await.contains("you joined #ops"));
    // The members shown are the room's on show, kept as they change.
    assert_eq!(driver.wait_for_text(&members, "bot").await, "bot\nwebby");
    bot.send(r#"{"type":"nick","nick":"robot"}"#).await;
    assert_eq!(
        driver.wait_for_text(&members, "robot").await,
        "robot\nwebby"
    );
    assert!(
        driver
            .texts("nav .unread")
            .await
            .iter()
            .all(String::is_empty),
        "{:?}",
        driver.texts("nav .unread").await
    );
    let input = driver.one("input").await;
    driver
        .type_into(&input, &format!("hola lobby{ENTER}"))
        .await;
    let message = bot.expect_json("message").await;
    assert_eq!(
        (message["room"].as_str(), message["text"].as_str()),
        (Some("#lobby"), Some("hola lobby"))
    );
    driver.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_cut_the_page_takes_its_nick_back_once_it_is_free() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let server = page_server().await;
    let mut ana = server.named("ana").await;
    driver
        .open(&format!("http://{}/?nick=webby&room=ops", server.http()))
        .await;
    ana.expect("#lobby *** webby joined").await;

    // Cut; meanwhile the nick is taken, as the old connection would hold it until the
    // server noticed it gone.
    driver.cut().await;
    ana.expect("webby left").await;
    ana.send("/nick webby").await;
    ana.expect("you are now known as webby").await;
    driver.reconnect().await;
    let log = driver.one("#log").await;
    driver
        .wait_for_text(&log, "your nick webby is still taken")
        .await;

    ana.send("/nick ana").await;
    let line = ana.expect("is now known as webby").await;
    assert!(line.starts_with("*** guest-"), "{line}");
    let header = driver.one("#where").await;
    driver.wait_for_text(&header, "webby in #ops").await;
    driver.quit().await;
}

/// A nick someone else holds when the page first opens is said to be taken, and the page
/// stays the guest it was made: it has held no connection the nick could be left to, so it
/// neither speaks of a cut nor goes on asking for the nick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nick_held_by_another_when_the_page_opens_is_said_taken_and_not_chased() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let server = page_server().await;
    let mut webby = server.named("webby").await;
    driver
        .open(&format!("http://{}/?nick=webby&room=ops", server.http()))
        .await;
    webby.expect("#lobby *** guest-").await;
    let log = driver.one("#log").await;
    let shown = driver.wait_for_text(&log, "webby is taken").await;
    assert!(!shown.contains("still taken"), "{shown}");
    assert!(!shown.contains("before the cut"), "{shown}");
    let header = driver.one("#where").await;
    let guest = driver.wait_for_text(&header, "guest-").await;
    assert!(guest.ends_with(" in #ops"), "{guest}");
    driver.quit().await;
}

/// Private messages both ways (your own shown as sent), lines naming you as a word
/// highlighted and no others, a hostile topic shown as text, Up recalling what you sent, and
/// a kick taking the room off your list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_private_messages_mentions_topics_and_kicks() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let server = page_server().await;
    let mut ana = ana_and_the_page_in_ops(&server, &driver).await;
    let log = driver.one("#log").await;
    let input = driver.one("input").await;

    ana.send("/msg webby psst").await;
    driver.wait_for_text(&log, "*ana* → webby psst").await;
    driver
        .type_into(&input, &format!("/msg ana hola en privado{ENTER}"))
        .await;
    ana.expect("hola en privado").await;
    driver
        .wait_for_text(&log, "*webby* → ana hola en privado")
        .await;
    assert_eq!(driver.all("#log li.private").await.len(), 2);
    assert_eq!(driver.all("#log li.private.me").await.len(), 1);
    // Up recalls what was sent.
    driver.type_into(&input, "\u{E013}").await;
    let recalled = driver
        .call("GET", &format!("/element/{input}/property/value"), None)
        .await;
    assert_eq!(recalled, "/msg ana hola en privado");
    driver.type_into(&input, "\u{E015}").await;

    for line in ["hi webby.", "webbyx is someone else", "nowebby here"] {
        ana.send(line).await;
    }
    driver.wait_for_text(&log, "nowebby here").await;
    let mentions = driver.texts("#log li.mention").await;
    assert_eq!(mentions.len(), 1, "{mentions:?}");
    assert!(mentions[0].ends_with("<ana> hi webby."), "{mentions:?}");

    let hostile = r#"<img src=x onerror="document.title='pwned'">"#;
    ana.send(&format!("/topic {hostile}")).await;
    driver
        .wait_for_text(&log, &format!("ana set the topic: {hostile}"))
        .await;
    assert!(driver.all("#log img").await.is_empty());
    assert_eq!(driver.call("GET", "/title", None).await, "charla");

    ana.send("/kick webby enough").await;
    driver
        .wait_for_text(&log, "ana kicked you from #ops (enough)")
        .await;
    let rooms = driver.one("#rooms").await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while driver.text(&rooms).await.contains("#ops") {
        assert!(tokio::time::Instant::now() < deadline, "#ops still listed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    driver.quit().await;
}

/// Two pages (two windows of one browser) and a text client chat in one room: each hears
/// the other two, and each page lists all three.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pages_and_a_text_client_chat_in_one_room() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let server = page_server().await;
    let mut ana = ana_and_the_page_in_ops(&server, &driver).await;
    let webby = driver.call("GET", "/window", None).await;
    let wendy = driver
        .call("POST", "/window/new", Some(json!({"type": "window"})))
        .await["handle"]
        .clone();
    let switch = |handle: &Value| json!({"handle": handle});
    driver.call("POST", "/window", Some(switch(&wendy))).await;
    driver
        .open(&format!("http://{}/?nick=wendy&room=ops", server.http()))
        .await;
    ana.expect("#ops *** wendy joined").await;
    let input = driver.one("input").await;
    driver
        .type_into(&input, &format!("hola from wendy{ENTER}"))
        .await;
    assert_eq!(
        ana.expect("from wendy").await,
        "#ops <wendy> hola from wendy"
    );
    ana.send("hola from nc").await;
    driver
        .wait_for_text(&driver.one("#log").await, "<ana> hola from nc")
        .await;

    driver.call("POST", "/window", Some(switch(&webby))).await;
    let log = driver.one("#log").await;
    driver.wait_for_text(&log, "<wendy> hola from wendy").await;
    driver.wait_for_text(&log, "<ana> hola from nc").await;
    let members = driver.one("#members").await;
    assert_eq!(
        driver.wait_for_text(&members, "@ana").await,
        "@ana\nwebby\nwendy"
    );
    let input = driver.one("input").await;
    driver
        .type_into(&input, &format!("hola from webby{ENTER}"))
        .await;
    assert_eq!(
        ana.expect("from webby").await,
        "#ops <webby> hola from webby"
    );

    driver.call("POST", "/window", Some(switch(&wendy))).await;
    let log = driver.one("#log").await;
    driver.wait_for_text(&log, "<webby> hola from webby").await;
    let members = driver.one("#members").await;
    assert_eq!(
        driver.wait_for_text(&members, "@ana").await,
        "@ana\nwebby\nwendy"
    );
    // Why someone left is said in words, as the text protocol says it.
    let mut cy = server.named("cy").await;
    cy.send("/join #ops").await;
    cy.expect("#ops *** you joined").await;
    driver.wait_for_text(&log, "cy joined").await;
    drop(cy);
    driver
        .wait_for_text(&log, "cy left #ops (connection lost)")
        .await;
    // Parting words are shown, as text.
    ana.send("/quit see you <b>later</b>").await;
    driver
        .wait_for_text(&log, "ana left #ops (quit: see you <b>later</b>)")
        .await;
    assert_eq!(
        driver.wait_for_text(&members, "wendy").await,
        "webby\nwendy"
    );
    driver.quit().await;
}

/// On a narrow screen the rooms go on top and the members are left out; the message box
/// and the log stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_narrow_screen_gets_the_mobile_layout() {
    let Some(driver) = Driver::start().await else {
        return;
    };
    let server = page_server().await;
    let _ana = ana_and_the_page_in_ops(&server, &driver).await;
    let layout = "return [innerWidth, getComputedStyle(document.querySelector('aside')).display, \
                  getComputedStyle(document.getElementById('body')).flexDirection, \
                  document.getElementById('text').getBoundingClientRect().width > 0];";
    let wide = driver.run(layout, json!([])).await;
    assert_eq!(
        (&wide[1], &wide[2]),
        (&json!("block"), &json!("row")),
        "{wide}"
    );
    let rect = json!({"width": 400, "height": 800});
    driver.call("POST", "/window/rect", Some(rect)).await;
    let narrow = driver.run(layout, json!([])).await;
    assert!(narrow[0].as_u64().unwrap() <= 600, "{narrow}");
    assert_eq!(
        (&narrow[1], &narrow[2], &narrow[3]),
        (&json!("none"), &json!("column"), &json!(true)),
        "{narrow}"
    );
    driver.quit().await;
}
