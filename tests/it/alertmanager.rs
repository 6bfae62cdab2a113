//! `POST /alertmanager`: Alertmanager's webhook payloads, shaped as its documentation gives
//! them, over a real HTTP connection; what the room is told and what `/status` keeps.

use std::net::SocketAddr;

use charla::limits::{ALERTMANAGER_BODY_BYTES, Limits};
use charla::server::HttpOptions;

use crate::http::{HttpAnswer, post_to, raw_within};
use crate::support::{Client, PATIENCE, TestServer};

/// Two alerts firing: HighLatency (severity critical) and DiskFull (warning).
const FIRING: &str = include_str!("../fixtures/alertmanager.json");

/// The same alerts resolved at 10:12 UTC.
fn resolved() -> String {
    FIRING
        .replace(r#""status": "firing""#, r#""status": "resolved""#)
        .replace("0001-01-01T00:00:00Z", "2026-12-04T10:12:00Z")
}

async fn server(http: HttpOptions) -> TestServer {
    let limits = Limits {
        flood_rate: 0,
        ..Limits::default()
    };
    TestServer::with_http(&["tcp://127.0.0.1:0", "http://127.0.0.1:0"], limits, http).await
}

/// `curl -d BODY http://ADDR/alertmanager?QUERY`, as Alertmanager's webhook sends it.
async fn webhook(
    addr: SocketAddr,
    query: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> HttpAnswer {
    post_to(addr, &format!("/alertmanager{query}"), headers, body).await
}

/// `/status` in #alerts, its lines until the one that contains `last`.
async fn status(c: &mut Client, last: &str) -> Vec<String> {
    c.send("/status").await;
    let mut lines = Vec::new();
    loop {
        let line = c.line().await;
        let done = line.contains(last);
        lines.push(line);
        if done {
            return lines;
        }
    }
}

#[tokio::test]
async fn firing_and_resolved_alerts_are_said_once_and_status_lists_what_fires() {
    let server = server(HttpOptions::default()).await;
    let mut ana = server.named("ana").await;
    ana.send("/join #alerts").await;
    ana.expect("you joined").await;
    let mut bot = server.json("bot").await;
    bot.send(r##"{"type":"join","room":"#alerts"}"##).await;
    bot.expect_json("join").await;

    let reply = webhook(server.http(), "?room=%23alerts", &[], FIRING).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let answer = reply.json();
    assert_eq!(answer["room"], "#alerts");
    assert_eq!(answer["posted"], 2);
    assert_eq!(answer["firing"], 2);
    assert_eq!(
        ana.expect("HighLatency").await,
        "#alerts !!! [am:HighLatency] HighLatency is FIRING: latency above 1s (instance=api-1:9090 job=api severity=critical)"
    );
    assert_eq!(
        ana.expect("DiskFull").await,
        "#alerts !!! [am:DiskFull] DiskFull is FIRING: disk 95% full (instance=db-1:9100 job=node severity=warning)"
    );
    let alert = bot.expect_json("alert").await;
    assert_eq!(alert["alertname"], "HighLatency");
    assert_eq!(alert["fingerprint"], "c4ad3f1a9b2e7d05");
    assert_eq!(alert["state"], "firing");
    assert_eq!(alert["priority"], 5);
    assert_eq!(
        alert["labels"],
        "instance=api-1:9090 job=api severity=critical"
    );
    assert_eq!(alert["summary"], "latency above 1s");
    let alert = bot.expect_json("alert").await;
    assert_eq!(alert["alertname"], "DiskFull");
    assert_eq!(alert["priority"], 3);

    // Sent again (Alertmanager repeats a group): nothing new is said.
    let reply = webhook(server.http(), "", &[], FIRING).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["posted"], 0);
    assert_eq!(reply.json()["firing"], 2);

    // /status lists both, keyed by fingerprint (in fingerprint order).
    let lines = status(&mut ana, "c4ad3f1a9b2e7d05").await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with("#alerts --- [am:DiskFull] DiskFull is FIRING (for ")
            && lines[0].contains("; fingerprint 0d9e1f2a3b4c5d6e): disk 95% full"),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("#alerts --- [am:HighLatency] HighLatency is FIRING (for "),
        "{lines:?}"
    );

    let reply = webhook(server.http(), "?room=%23alerts", &[], &resolved()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["posted"], 2);
    assert_eq!(reply.json()["firing"], 0);
    assert_eq!(
        ana.expect("HighLatency RESOLVED").await,
        "#alerts !!! [am:HighLatency] HighLatency RESOLVED (fired for 12m): latency above 1s (instance=api-1:9090 job=api severity=critical)"
    );
    assert!(
        ana.expect("DiskFull RESOLVED")
            .await
            .contains("DiskFull RESOLVED (fired for 1h 6m): disk 95% full")
    );
    let resolved = bot.expect_json("alert").await;
    let resolved = if resolved["state"] == "firing" {
        bot.expect_json("alert").await
    } else {
        resolved
    };
    assert_eq!(resolved["state"], "resolved");
    assert_eq!(resolved["lasted_ms"], 12 * 60 * 1000);
    let lines = status(&mut ana, "***").await;
    assert_eq!(lines, ["#alerts *** nothing to report: no feed here"]);
}

#[tokio::test]
async fn bad_payloads_are_refused_with_a_reason_and_nothing_is_posted() {
    let server = server(HttpOptions {
        token: Some("s3cret".into()),
        ..HttpOptions::default()
    })
    .await;
    let http = server.http();
    let auth = [("Authorization", "Bearer s3cret")];

    let reply = webhook(http, "", &[], FIRING).await;
    assert_eq!(reply.status, 401, "{}", reply.body);

    let reply = webhook(http, "", &auth, r#"{"version":"4","status":"firing"}"#).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(reply.json()["code"], "invalid_payload");
    assert!(
        reply.json()["message"]
            .as_str()
            .unwrap()
            .contains("missing field `alerts`"),
        "{}",
        reply.body
    );
    let v3 = FIRING.replace(r#""version": "4""#, r#""version": "3""#);
    let reply = webhook(http, "", &auth, &v3).await;
    assert_eq!(reply.status, 400, "{}", reply.body);

    let big = format!("{FIRING}{}", " ".repeat(ALERTMANAGER_BODY_BYTES));
    let reply = webhook(http, "", &auth, &big).await;
    assert_eq!(reply.status, 413, "{}", reply.body);
    assert_eq!(reply.json()["code"], "payload_too_large");

    let reply = webhook(http, "?room=%23nowhere", &auth, FIRING).await;
    assert_eq!(reply.status, 404, "{}", reply.body);
    assert_eq!(reply.json()["code"], "no_such_room");
    let reply = webhook(http, "?room=bad%20room", &auth, FIRING).await;
    assert_eq!(reply.status, 400, "{}", reply.body);

    // None of it reached the room.
    let history = raw_within(
        http,
        "GET /rooms/alerts/messages HTTP/1.1\r\nAuthorization: Bearer s3cret",
        b"",
        PATIENCE,
    )
    .await;
    assert_eq!(history.json()["messages"], serde_json::json!([]));
    let reply = webhook(http, "", &auth, FIRING).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["posted"], 2);
}

/// `/status` of #alerts, as a JSON client asks it: its items.
async fn status_items(c: &mut Client) -> Vec<serde_json::Value> {
    c.send(r##"{"type":"status","room":"#alerts"}"##).await;
    let status = c.expect_json("status").await;
    status["items"].as_array().cloned().unwrap_or_default()
}

/// What fires is kept in the `--data` database: a restarted server lists it in `/status`,
/// does not say it again when Alertmanager repeats it, says how long it fired when it
/// resolves, and forgets it then, across the next restart too.
#[tokio::test(flavor = "multi_thread")]
async fn what_fires_survives_a_restart_until_it_resolves() {
    use crate::store::{json_client, next_listening, serve_with, stop};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let args = [
        "--listen",
        "http://127.0.0.1:0",
        "--data",
        data.to_str().unwrap(),
    ];

    let (charla, tcp) = serve_with(&args, &[]);
    let http = next_listening(&charla, "http");
    let mut ana = json_client(tcp, "ana").await;
    ana.send(r##"{"type":"join","room":"#alerts"}"##).await;
    ana.expect_json("join").await;
    let reply = webhook(http, "?room=%23alerts", &[], FIRING).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["posted"], 2);
    drop(ana);
    stop(charla);

    // Nobody is in #alerts: what fires there keeps the room open.
    let (charla, tcp) = serve_with(&args, &[]);
    let http = next_listening(&charla, "http");
    let mut ana = json_client(tcp, "ana").await;
    let items = status_items(&mut ana).await;
    let fingerprints: Vec<_> = items.iter().map(|i| i["fingerprint"].clone()).collect();
    assert_eq!(
        fingerprints,
        ["0d9e1f2a3b4c5d6e", "c4ad3f1a9b2e7d05"],
        "{items:?}"
    );
    assert!(
        items[1]["text"]
            .as_str()
            .unwrap()
            .starts_with("HighLatency is FIRING (for "),
        "{items:?}"
    );
    assert_eq!(items[1]["priority"], 5, "{items:?}");
    ana.send(r##"{"type":"join","room":"#alerts"}"##).await;
    ana.expect_json("join").await;
    // Alertmanager repeats the group: nothing is said again.
    let reply = webhook(http, "?room=%23alerts", &[], FIRING).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        (
            reply.json()["posted"].clone(),
            reply.json()["firing"].clone()
        ),
        (0.into(), 2.into())
    );
    let reply = webhook(http, "?room=%23alerts", &[], &resolved()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        (
            reply.json()["posted"].clone(),
            reply.json()["firing"].clone()
        ),
        (2.into(), 0.into())
    );
    let alert = ana.expect_json("alert").await;
    assert_eq!(alert["state"], "resolved", "{alert}");
    assert_eq!(alert["lasted_ms"], 12 * 60 * 1000, "{alert}");
    drop(ana);
    stop(charla);

    let (charla, tcp) = serve_with(&args, &[]);
    let mut ana = json_client(tcp, "ana").await;
    ana.send(r##"{"type":"join","room":"#alerts"}"##).await;
    ana.expect_json("join").await;
    assert_eq!(
        status_items(&mut ana).await,
        Vec::<serde_json::Value>::new()
    );
    drop(ana);
    stop(charla);
}
