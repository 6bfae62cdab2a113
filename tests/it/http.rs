//! The HTTP listener over real sockets: publish as `curl` would, history for scripts, the
//! WebSocket beside text clients, the page.

use std::net::SocketAddr;

use charla::limits::Limits;
use charla::server::HttpOptions;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::support::{Client, PATIENCE, QUIET, TestServer};

async fn server() -> TestServer {
    server_with(HttpOptions::default()).await
}

async fn server_with(http: HttpOptions) -> TestServer {
    let limits = Limits {
        flood_rate: 0,
        ..Limits::default()
    };
    TestServer::with_http(&["tcp://127.0.0.1:0", "http://127.0.0.1:0"], limits, http).await
}

/// An HTTP answer, read to the end of the connection.
pub(crate) struct HttpAnswer {
    pub(crate) status: u16,
    headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl HttpAnswer {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("{:?} is not JSON: {e}", self.body))
    }
}

/// One HTTP/1.1 request on its own connection, as `curl` sends it: `head` is the request
/// line and headers (without Host and Connection), `body` follows as is.
async fn raw(addr: SocketAddr, head: &str, body: &[u8]) -> HttpAnswer {
    raw_within(addr, head, body, PATIENCE).await
}

/// [`raw`], waiting up to `wait` for the answer.
pub(crate) async fn raw_within(
    addr: SocketAddr,
    head: &str,
    body: &[u8],
    wait: std::time::Duration,
) -> HttpAnswer {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!("{head}\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(wait, async {
        let mut buf = [0u8; 8192];
        // To the end of the connection, or of the body when its length is known (not every
        // server closes at once, whatever `Connection: close` says).
        while !complete(&answer) {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("an answer in time");
    parse(&answer)
}

/// Whether `answer` holds a whole response with a `Content-Length`.
fn complete(answer: &[u8]) -> bool {
    let text = String::from_utf8_lossy(answer);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .is_some_and(|n| body.len() >= n)
}

fn parse(answer: &[u8]) -> HttpAnswer {
    let text = String::from_utf8_lossy(answer);
    let (head, body) = text.split_once("\r\n\r\n").expect("a whole HTTP answer");
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut reply = HttpAnswer {
        status,
        headers,
        body: body.to_string(),
    };
    if reply
        .header("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        reply.body = dechunk(&reply.body);
    }
    reply
}

/// A chunked body's chunks, joined.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
    out
}

/// `curl -d BODY -H …  http://ADDR/rooms/ROOM`.
pub(crate) async fn post(
    addr: SocketAddr,
    room: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> HttpAnswer {
    post_to(addr, &format!("/rooms/{room}"), headers, body).await
}

/// `curl -d BODY -H …  http://ADDR/PATH`.
pub(crate) async fn post_to(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> HttpAnswer {
    let mut head = format!("POST {path} HTTP/1.1\r\nContent-Length: {}", body.len());
    for (name, value) in headers {
        head.push_str(&format!("\r\n{name}: {value}"));
    }
    raw(addr, &head, body.as_bytes()).await
}

pub(crate) async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> HttpAnswer {
    let mut head = format!("GET {path} HTTP/1.1");
    for (name, value) in headers {
        head.push_str(&format!("\r\n{name}: {value}"));
    }
    raw(addr, &head, b"").await
}

/// The texts of a history answer's messages.
fn texts(reply: &HttpAnswer) -> Vec<String> {
    reply.json()["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_string())
        .collect()
}

/// A text client in `room`.
async fn text_in(server: &TestServer, nick: &str, room: &str) -> Client {
    let mut c = server.named(nick).await;
    c.send(&format!("/join {room}")).await;
    c.expect("you joined").await;
    c
}

pub(crate) type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

pub(crate) async fn ws(addr: SocketAddr, query: &str) -> Ws {
    let (ws, response) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws{query}"))
        .await
        .expect("the handshake succeeds");
    assert_eq!(response.status(), 101);
    ws
}

/// The next text frame as JSON; each frame is exactly one object.
async fn frame(ws: &mut Ws) -> Value {
    loop {
        let message = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("a frame in time")
            .expect("the WebSocket still open")
            .expect("a frame");
        match message {
            Message::Text(text) => {
                assert!(!text.contains('\n'), "one object per frame: {text:?}");
                return serde_json::from_str(text.as_str())
                    .unwrap_or_else(|e| panic!("{text:?} is not JSON: {e}"));
            }
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

/// Frames until one of `"type": kind`.
pub(crate) async fn expect_frame(ws: &mut Ws, kind: &str) -> Value {
    let mut seen = Vec::new();
    loop {
        let v = frame(ws).await;
        if v["type"] == kind {
            return v;
        }
        seen.push(v);
        assert!(seen.len() < 50, "no {kind:?} frame; saw {seen:#?}");
    }
}

#[tokio::test]
async fn a_post_reaches_text_and_json_clients_with_the_id_returned() {
    let server = server().await;
    let mut ana = text_in(&server, "ana", "#ops").await;
    let mut bot = server.json("bot").await;
    bot.send(r##"{"type":"join","room":"#ops"}"##).await;
    bot.expect_json("join").await;
    ana.expect("bot joined").await;

    let reply = post(
        server.http(),
        "ops",
        &[("Priority", "high"), ("Tags", "db,backup")],
        "backup done",
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let answer = reply.json();
    assert_eq!(answer["room"], "#ops");
    assert_eq!(answer["type"], "alert");
    let id = answer["id"].as_u64().expect("an id");

    let line = ana.expect("backup done").await;
    assert_eq!(line, "#ops !!! [http:127.0.0.1] backup done");
    let alert = bot.expect_json("alert").await;
    assert_eq!(alert["id"], id);
    // The answer carries the post's number in its room, as its readers see it.
    assert_eq!(alert["seq"], answer["seq"]);
    assert!(answer["seq"].as_u64().is_some(), "{answer}");
    assert_eq!(alert["room"], "#ops");
    assert_eq!(alert["source"], "http:127.0.0.1");
    assert_eq!(alert["text"], "backup done");
    assert_eq!(alert["priority"], 4);
    assert_eq!(alert["tags"], "db,backup");

    // Without a priority, or a low one: a notice. A title comes before the text; the
    // text is sanitised and made one line.
    let reply = post(
        server.http(),
        "%23ops",
        &[("Title", "nightly"), ("Priority", "2")],
        "all\r\nfine\x1b[31m",
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["type"], "notice");
    let line = ana.expect("nightly").await;
    assert_eq!(line, "#ops >>> [http:127.0.0.1] nightly: all fine");
    let notice = bot.expect_json("notice").await;
    assert_eq!(notice["title"], "nightly");
    assert_eq!(notice["priority"], 2);
}

#[tokio::test]
async fn alerts_is_open_from_the_start() {
    let server = server().await;
    let reply = post(
        server.http(),
        "alerts",
        &[("Priority", "urgent")],
        "disk full",
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["type"], "alert");
}

#[tokio::test]
async fn bad_posts_are_refused_and_nobody_else_notices() {
    let server = server().await;
    let mut ana = text_in(&server, "ana", "#ops").await;
    let http = server.http();

    let reply = post(http, "nowhere", &[], "hello?").await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json()["code"], "no_such_room");

    let reply = post(http, "ops", &[("Priority", "loud")], "x").await;
    assert_eq!(reply.status, 400);
    let reply = post(http, "ops", &[], " \r\n ").await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["code"], "empty_message");

    // Over the line bound: refused from its declared length…
    let long = "x".repeat(Limits::default().max_line_bytes + 1);
    let reply = post(http, "ops", &[], &long).await;
    assert_eq!(reply.status, 413);
    assert_eq!(reply.json()["code"], "line_too_long");
    // …and, with no length declared, once the bound is read: a body that never ends is
    // answered all the same.
    let chunk = "y".repeat(8192);
    let body = format!("{:x}\r\n{chunk}\r\n", chunk.len());
    let reply = raw(
        http,
        "POST /rooms/ops HTTP/1.1\r\nTransfer-Encoding: chunked",
        body.as_bytes(),
    )
    .await;
    assert_eq!(reply.status, 413);

    // A body exactly at the bound is posted.
    let fits = "z".repeat(Limits::default().max_line_bytes);
    assert_eq!(post(http, "ops", &[], &fits).await.status, 200);
    let line = ana.line().await;
    assert!(line.ends_with(&fits), "{line:?}");
    ana.silent_for(QUIET).await;
}

#[tokio::test]
async fn posting_too_fast_is_answered_429() {
    let server = server_with(HttpOptions {
        rate: 1,
        burst: 2,
        ..HttpOptions::default()
    })
    .await;
    let http = server.http();
    assert_eq!(post(http, "alerts", &[], "one").await.status, 200);
    assert_eq!(post(http, "alerts", &[], "two").await.status, 200);
    let reply = post(http, "alerts", &[], "three").await;
    assert_eq!(reply.status, 429);
    assert_eq!(reply.header("retry-after"), Some("1"));
    assert_eq!(reply.json()["code"], "too_many_requests");
}

#[tokio::test]
async fn a_token_is_required_when_set() {
    let server = server_with(HttpOptions {
        token: Some("s3cret".into()),
        ..HttpOptions::default()
    })
    .await;
    let http = server.http();
    let reply = post(http, "alerts", &[], "no token").await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
    let wrong = [("Authorization", "Bearer s3cre")];
    assert_eq!(post(http, "alerts", &wrong, "wrong").await.status, 401);
    let right = [("Authorization", "Bearer s3cret")];
    assert_eq!(post(http, "alerts", &right, "right").await.status, 200);
    assert_eq!(get(http, "/rooms/alerts/messages", &[]).await.status, 401);
    let reply = get(http, "/rooms/alerts/messages", &right).await;
    assert_eq!(reply.status, 200);
    let texts = texts(&reply);
    assert_eq!(texts, ["right"]);
    // Health needs no token.
    assert_eq!(get(http, "/healthz", &[]).await.status, 200);
}

#[tokio::test]
async fn history_is_the_json_protocols_history() {
    let server = server().await;
    let http = server.http();
    let mut ids = Vec::new();
    for text in ["one", "two", "three"] {
        let reply = post(http, "alerts", &[], text).await;
        ids.push(reply.json()["id"].as_u64().unwrap());
    }
    let mut bot = server.json("bot").await;
    bot.send(r##"{"type":"join","room":"#alerts"}"##).await;
    bot.expect_json("join").await;
    let mut ana = text_in(&server, "ana", "#alerts").await;
    ana.send("by hand").await;
    bot.expect_json("message").await;
    bot.send(r##"{"type":"history","room":"#alerts","limit":2}"##)
        .await;
    let over_json = bot.expect_json("history").await;

    let reply = get(http, "/rooms/alerts/messages?limit=2", &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let history = reply.json();
    assert_eq!(history, over_json);
    assert_eq!(history["type"], "history");
    assert_eq!(history["room"], "#alerts");
    let messages = history["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["id"], ids[2]);
    assert_eq!(messages[0]["type"], "notice");
    assert_eq!(messages[1]["from"], "ana");
    assert_eq!(messages[1]["text"], "by hand");

    let reply = get(
        http,
        &format!("/rooms/alerts/messages?since={}", ids[0]),
        &[],
    )
    .await;
    assert_eq!(texts(&reply), ["two", "three", "by hand"]);
    // Read on from an id, a page at a time.
    let reply = get(
        http,
        &format!("/rooms/alerts/messages?since={}&limit=1", ids[0]),
        &[],
    )
    .await;
    assert_eq!(texts(&reply), ["two"]);
    assert_eq!(get(http, "/rooms/nowhere/messages", &[]).await.status, 404);
    let reply = get(http, "/rooms/alerts/messages?limit=lots", &[]).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.json()["code"], "invalid_argument");
}

#[tokio::test]
async fn a_websocket_talks_with_a_text_client_both_ways() {
    let server = server().await;
    let mut ana = text_in(&server, "ana", "#ops").await;
    // The page's URL, as the page passes it on: a hello made from it.
    let mut web = ws(server.http(), "?nick=wes&room=%23ops").await;
    // In JSON from the first frame: no text greeting.
    let first = frame(&mut web).await;
    assert!(first["type"].is_string(), "{first}");
    let welcome = expect_frame(&mut web, "welcome").await;
    assert_eq!(welcome["nick"], "wes");
    assert!(
        welcome["rooms"]
            .as_array()
            .unwrap()
            .contains(&"#ops".into()),
        "{welcome}"
    );
    ana.expect("wes joined").await;

    web.send(Message::text(
        r##"{"type":"say","room":"#ops","text":"hola from the web","ref":7}"##,
    ))
    .await
    .unwrap();
    let ack = expect_frame(&mut web, "ack").await;
    assert_eq!(ack["ref"], 7);
    assert_eq!(
        ana.expect("hola from the web").await,
        "#ops <wes> hola from the web"
    );

    // A frame of exactly the line bound, larger than the WebSocket's read buffer.
    let max = Limits::default().max_line_bytes;
    let head = r#"{"type":"say","text":""#;
    let text = "é".repeat((max - head.len() - 2) / 2);
    let frame_text = format!("{head}{text}\"}}");
    assert!(frame_text.len() <= max && frame_text.len() > max - 2);
    web.send(Message::text(frame_text)).await.unwrap();
    expect_frame(&mut web, "ack").await;
    assert!(ana.expect("<wes> éé").await.ends_with(&text));

    ana.send("hi wes").await;
    let message = expect_frame(&mut web, "message").await;
    assert_eq!(message["from"], "ana");
    assert_eq!(message["text"], "hi wes");

    // A frame is one request however it is laid out.
    web.send(Message::text("{\"type\":\"say\",\n \"text\":\"laid out\"}"))
        .await
        .unwrap();
    expect_frame(&mut web, "ack").await;
    ana.expect("<wes> laid out").await;

    web.send(Message::text(r#"{"type":"quit","message":"bye"}"#))
        .await
        .unwrap();
    expect_frame(&mut web, "bye").await;
    ana.expect("wes left").await;
}

#[tokio::test]
async fn a_websocket_named_by_its_url_enters_the_lobby_and_its_room_under_its_nick() {
    let server = server().await;
    let mut ana = server.named("ana").await;
    let mut web = ws(server.http(), "?nick=wes&room=%23ops").await;
    let mut before = Vec::new();
    // The greeting (a guest's welcome, in no room), then the hello's answer.
    let welcome = loop {
        let v = frame(&mut web).await;
        if v["type"] == "welcome" && v["nick"] == "wes" {
            break v;
        }
        before.push(v);
    };
    assert_eq!(welcome["rooms"], json!(["#lobby", "#ops"]), "{welcome}");
    // It was never in a room as a guest: no join but its own, under its nick.
    for v in &before {
        if v["type"] == "welcome" {
            assert_eq!(v["rooms"], json!([]), "{before:#?}");
        }
        if v["type"] == "join" {
            assert_eq!(v["nick"], "wes", "{before:#?}");
        }
    }
    // #lobby saw it come once, as itself: no guest joining, no rename.
    assert_eq!(ana.next().await.unwrap(), "#lobby *** wes joined");
    web.send(Message::text(
        r##"{"type":"say","room":"#lobby","text":"hola"}"##,
    ))
    .await
    .unwrap();
    assert_eq!(ana.next().await.unwrap(), "#lobby <wes> hola");

    // Its room named #lobby: joined once.
    let mut lobby_only = ws(server.http(), "?nick=lu&room=lobby").await;
    let welcome = loop {
        let v = expect_frame(&mut lobby_only, "welcome").await;
        if v["nick"] == "lu" {
            break v;
        }
    };
    assert_eq!(welcome["rooms"], json!(["#lobby"]), "{welcome}");
    assert_eq!(ana.next().await.unwrap(), "#lobby *** lu joined");
}

#[tokio::test]
async fn an_oversized_frame_is_closed_with_1009_and_nobody_else_notices() {
    let server = server().await;
    let mut ana = text_in(&server, "ana", "#ops").await;
    let mut calm = ws(server.http(), "?nick=calm&room=%23ops").await;
    expect_frame(&mut calm, "welcome").await;
    ana.expect("calm joined").await;
    let mut big = ws(server.http(), "?nick=big&room=%23ops").await;
    expect_frame(&mut big, "welcome").await;
    ana.expect("big joined").await;
    expect_frame(&mut calm, "join").await;

    // Far over the bound: refused from its header; the server reads and drops the rest
    // after its close, so the sender's writes are not cut off by a reset.
    big.send(Message::text("x".repeat(1 << 20))).await.unwrap();
    let mut code = None;
    let mut bye = None;
    while let Some(Ok(message)) = tokio::time::timeout(PATIENCE, big.next())
        .await
        .expect("the close in time")
    {
        match message {
            Message::Close(frame) => {
                code = frame.map(|f| f.code);
                break;
            }
            Message::Text(text) if text.contains(r#""type":"bye""#) => bye = Some(text),
            _ => {}
        }
    }
    assert_eq!(code, Some(CloseCode::Size));
    let bye: Value = serde_json::from_str(&bye.expect("a bye before the close")).unwrap();
    assert_eq!(bye["reason"], "line_too_long", "{bye}");

    ana.expect("big left (line too long)").await;
    ana.send("still here").await;
    let message = expect_frame(&mut calm, "message").await;
    assert_eq!(message["text"], "still here");
    calm.send(Message::text(r#"{"type":"say","text":"me too"}"#))
        .await
        .unwrap();
    ana.expect("<calm> me too").await;
}

/// A handshake carrying `origin`: the status the server answers with.
async fn handshake_from(addr: SocketAddr, origin: &str) -> u16 {
    let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Origin", origin.parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Ok((_, response)) => response.status().as_u16(),
        Err(WsError::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn cross_origin_handshakes_are_refused_unless_allowed() {
    let server = server_with(HttpOptions {
        allowed_origins: vec!["https://chat.example.org".into()],
        ..HttpOptions::default()
    })
    .await;
    let http = server.http();
    assert_eq!(handshake_from(http, "https://evil.example").await, 403);
    assert_eq!(handshake_from(http, "https://chat.example.org").await, 101);
    // The listener's own page.
    assert_eq!(handshake_from(http, &format!("http://{http}")).await, 101);

    // Nor may another site's page post through its visitor's browser.
    let from = |origin: &'static str| [("Origin", origin)];
    let reply = post(http, "alerts", &from("https://evil.example"), "csrf").await;
    assert_eq!(reply.status, 403);
    assert_eq!(reply.json()["code"], "forbidden_origin");
    let allowed = post(http, "alerts", &from("https://chat.example.org"), "ok").await;
    assert_eq!(allowed.status, 200);
    assert_eq!(post(http, "alerts", &[], "curl").await.status, 200);
}

#[tokio::test]
async fn the_page_and_health() {
    let server = server().await;
    let http = server.http();
    let health = get(http, "/healthz", &[]).await;
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    let page = get(http, "/?nick=ana&room=ops", &[]).await;
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(page.body.contains(r#"<label for="text""#), "{}", page.body);
    assert!(page.body.contains(">Message</label>"), "{}", page.body);
    for asset in ["/app.js", "/app.css"] {
        assert_eq!(get(http, asset, &[]).await.status, 200, "{asset}");
    }
    // Not a WebSocket handshake.
    assert_eq!(get(http, "/ws", &[]).await.status, 426);
    let nothing = get(http, "/nothing", &[]).await;
    assert_eq!(nothing.status, 404);
    assert_eq!(nothing.json()["code"], "not_found");
}

/// A path asked with a method it does not take is refused as every other request is: 405
/// with the methods it takes in `Allow`, and the error object saying what went wrong.
#[tokio::test]
async fn a_method_a_path_does_not_take_is_405_with_an_error_that_says_so() {
    let server = server().await;
    let http = server.http();
    for (head, allow) in [
        ("GET /rooms/alerts HTTP/1.1", "POST"),
        ("PUT /rooms/alerts HTTP/1.1\r\nContent-Length: 1", "POST"),
        ("DELETE /rooms/alerts/messages HTTP/1.1", "GET,HEAD"),
        ("POST /metrics HTTP/1.1\r\nContent-Length: 1", "GET,HEAD"),
    ] {
        let body: &[u8] = if head.contains("Content-Length") {
            b"x"
        } else {
            b""
        };
        let answer = raw(http, head, body).await;
        assert_eq!(answer.status, 405, "{head}");
        assert_eq!(answer.header("allow"), Some(allow), "{head}");
        let error = answer.json();
        assert_eq!(error["code"], "method_not_allowed", "{head}");
        let (method, rest) = head.split_once(' ').unwrap();
        let path = rest.split(' ').next().unwrap();
        let message = error["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("{path} does not take {method}")),
            "{message}"
        );
    }
    // Nothing was posted by any of them.
    let history = get(http, "/rooms/alerts/messages", &[]).await;
    assert_eq!(history.json()["messages"], json!([]));
}

#[tokio::test]
async fn shutdown_says_goodbye_over_the_websocket_and_closes_idle_http() {
    let server = server().await;
    let mut web = ws(server.http(), "?nick=wes").await;
    expect_frame(&mut web, "welcome").await;
    // A kept-alive HTTP connection between two requests.
    let mut idle = TcpStream::connect(server.http()).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 512];
    let n = idle.read(&mut answer).await.unwrap();
    assert!(answer[..n].starts_with(b"HTTP/1.1 200"));

    let TestServer { shutdown, task, .. } = server;
    shutdown.cancel();
    let bye = expect_frame(&mut web, "bye").await;
    assert_eq!(bye["reason"], "server_shutdown");
    // Reading on answers the server's close frame, as a browser does.
    let mut code = None;
    while let Some(Ok(message)) = tokio::time::timeout(PATIENCE, web.next())
        .await
        .expect("the close in time")
    {
        if let Message::Close(frame) = message {
            code = frame.map(|f| f.code);
        }
    }
    assert_eq!(code, Some(CloseCode::Normal));
    let closed = tokio::time::timeout(PATIENCE, idle.read(&mut answer))
        .await
        .expect("the idle connection closed in time");
    assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
    tokio::time::timeout(PATIENCE, task)
        .await
        .expect("the server stopped in time")
        .unwrap();
}

#[tokio::test]
async fn http_connections_count_against_the_connection_bounds() {
    let limits = Limits {
        max_connections: 1,
        ..Limits::default()
    };
    let server = TestServer::with_http(
        &["tcp://127.0.0.1:0", "http://127.0.0.1:0"],
        limits,
        HttpOptions::default(),
    )
    .await;
    let _holder = server.client().await;
    let reply = get(server.http(), "/healthz", &[]).await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.json()["code"], "server_full");
}

#[tokio::test]
async fn flood_control_is_the_same_over_the_websocket() {
    let limits = Limits {
        flood_burst: 3,
        flood_rate: 1,
        flood_kick_after: 100,
        ..Limits::default()
    };
    let server = TestServer::with_http(
        &["tcp://127.0.0.1:0", "http://127.0.0.1:0"],
        limits,
        HttpOptions::default(),
    )
    .await;
    let mut web = ws(server.http(), "").await;
    expect_frame(&mut web, "welcome").await;
    for i in 0..4 {
        let say = format!(r#"{{"type":"say","text":"line {i}","ref":{i}}}"#);
        web.send(Message::text(say)).await.unwrap();
    }
    // Three acks, then the fourth line is refused, as it would be over TCP.
    let mut answers = Vec::new();
    while answers.len() < 4 {
        let v = frame(&mut web).await;
        match v["type"].as_str() {
            Some("ack") => answers.push("ack".to_string()),
            Some("error") => answers.push(v["code"].as_str().unwrap().to_string()),
            _ => {}
        }
    }
    assert_eq!(answers, ["ack", "ack", "ack", "flood"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_websocket_that_stops_reading_is_cut_off_and_no_one_waits_for_it() {
    let limits = Limits {
        send_queue_bytes: 16 * 1024,
        flood_rate: 0,
        ..Limits::default()
    };
    let server = TestServer::with_http(
        &["tcp://127.0.0.1:0", "http://127.0.0.1:0"],
        limits,
        HttpOptions::default(),
    )
    .await;
    let mut reader = server.named("reader").await;
    let mut sender = server.named("sender").await;
    reader.expect("sender").await;
    // A small receive buffer, so the kernel's buffers fill up fast.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(server.http()).await.unwrap();
    let url = format!("ws://{}/ws?nick=slow&room=%23lobby", server.http());
    let (_slow, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    reader.expect("*** slow joined").await;

    let line = "-".repeat(200);
    let mut sent = 0;
    loop {
        assert!(sent < 100_000, "the slow WebSocket was never cut off");
        let batch: String = (0..32).map(|i| format!("{sent} {i} {line}\n")).collect();
        sender.send_raw(batch.as_bytes()).await;
        sent += 1;
        // The reader gets every line in order, whatever the slow one does.
        let mut got = 0;
        let mut cut_off = false;
        while got < 32 {
            let l = reader.line().await;
            if l == "#lobby *** slow left (send queue exceeded)" {
                cut_off = true;
            } else {
                assert!(
                    l.starts_with(&format!("#lobby <sender> {sent_} ", sent_ = sent - 1)),
                    "{l}"
                );
                got += 1;
            }
        }
        if cut_off {
            break;
        }
    }
}

/// A WebSocket offering `protocols` (`Sec-WebSocket-Protocol`), and the one chosen.
async fn ws_offering(addr: SocketAddr, protocols: &str) -> (Ws, Option<String>) {
    let mut request = format!("ws://{addr}/ws").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", protocols.parse().unwrap());
    let (ws, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("the handshake succeeds");
    let chosen = response.headers().get("sec-websocket-protocol");
    (ws, chosen.map(|v| v.to_str().unwrap().to_string()))
}

/// Frames up to the first containing `needle`: each one IRC line, text or binary as
/// `binary` says, without a line ending.
async fn irc_frame(ws: &mut Ws, needle: &str, binary: bool) -> String {
    loop {
        let message = tokio::time::timeout(PATIENCE, ws.next())
            .await
            .expect("a frame in time")
            .expect("the socket is open")
            .unwrap();
        let line = match message {
            Message::Text(text) if !binary => text.to_string(),
            Message::Binary(data) if binary => String::from_utf8(data.to_vec()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        };
        assert!(!line.contains(['\r', '\n']), "{line:?}");
        if line.contains(needle) {
            return line;
        }
    }
}

#[tokio::test]
async fn web_irc_clients_speak_irc_over_the_ircv3_websocket_subprotocols() {
    let server = server().await;
    let http = server.http();
    let mut ana = text_in(&server, "ana", "#ops").await;
    for (protocols, chosen, nick) in [
        ("text.ircv3.net", "text.ircv3.net", "kiwi"),
        (
            "foo, binary.ircv3.net, text.ircv3.net",
            "binary.ircv3.net",
            "gamja",
        ),
    ] {
        let binary = chosen.starts_with("binary");
        let (mut web, got) = ws_offering(http, protocols).await;
        assert_eq!(got.as_deref(), Some(chosen));
        let send = |line: String| {
            if binary {
                Message::binary(line.into_bytes())
            } else {
                Message::text(line)
            }
        };
        web.send(send(format!("NICK {nick}"))).await.unwrap();
        // A line ending at the end of a frame is not part of the line.
        web.send(send(format!("USER {nick} 0 * :Web\r\n")))
            .await
            .unwrap();
        let welcome = irc_frame(&mut web, " 001 ", binary).await;
        assert!(
            welcome.starts_with(&format!(":charla 001 {nick} :")),
            "{welcome}"
        );
        web.send(send("JOIN #ops".into())).await.unwrap();
        irc_frame(&mut web, &format!(" 366 {nick} #ops "), binary).await;
        web.send(send("PRIVMSG #ops :hola from the web".into()))
            .await
            .unwrap();
        ana.expect(&format!("#ops <{nick}> hola from the web"))
            .await;
        ana.send("hola, web").await;
        assert_eq!(
            irc_frame(&mut web, ":hola, web", binary).await,
            ":ana!ana@charla PRIVMSG #ops :hola, web"
        );
        web.send(send("QUIT".into())).await.unwrap();
        ana.expect(&format!("#ops *** {nick} left (quit)")).await;
    }
    // Offered nothing charla speaks: none is chosen (the JSON protocol is spoken, which
    // this client, having asked for one, refuses).
    let mut request = format!("ws://{http}/ws").into_client_request().unwrap();
    let headers = request.headers_mut();
    headers.insert("Sec-WebSocket-Protocol", "mqtt".parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(WsError::Protocol(e)) => assert!(e.to_string().contains("SubProtocol"), "{e}"),
        other => panic!("{other:?}"),
    }
}
