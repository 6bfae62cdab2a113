//! A browser or HTTP client on a line or IRC port: closed at its request line, so neither
//! its headers nor a form's body (the cross-protocol trick: a web page making its
//! visitor's browser post chat lines) reach anyone.

use charla::limits::Limits;

use crate::support::{Client, TestServer};

/// A form a web page could make its visitor's browser post (`enctype="text/plain"`):
/// the request line and headers, then `body` as the lines a chat port would read.
fn form_post(body: &str) -> String {
    format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: session=secret\r\n\
         Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[tokio::test]
async fn an_http_request_on_the_line_port_is_closed_and_says_nothing() {
    let server = TestServer::on(
        &["tcp://127.0.0.1:0", "irc://127.0.0.1:0"],
        Limits::default(),
    )
    .await;
    let mut ana = server.named("ana").await;
    let mut browser = Client::tcp(server.tcp()).await;
    browser
        .send_raw(form_post("hello from a web page\r\n/nick evil\r\n/join #ops\r\n").as_bytes())
        .await;
    let seen = browser.until_closed().await;
    assert!(
        seen.iter().any(
            |l| l.starts_with("error: this port speaks charla's text and JSON lines, not HTTP")
        ),
        "{seen:#?}"
    );
    assert!(!seen.iter().any(|l| l.contains("evil")), "{seen:#?}");
    // Whatever the browser's connection did reached ana before this, in order: bob
    // coming, his name, his line, and nothing else.
    let mut bob = server.named("bob").await;
    bob.send("after the browser").await;
    let mut lines = Vec::new();
    for _ in 0..3 {
        lines.push(ana.next().await.unwrap());
    }
    assert!(lines[0].starts_with("#lobby *** guest-"), "{lines:#?}");
    assert!(lines[1].ends_with(" is now known as bob"), "{lines:#?}");
    assert_eq!(lines[2], "#lobby <bob> after the browser");
    // Nothing of it was kept either.
    ana.send("/history 10").await;
    let mut history = Vec::new();
    loop {
        let line = ana.next().await.unwrap();
        let last = line.ends_with("<bob> after the browser");
        history.push(line);
        if last {
            break;
        }
    }
    assert!(
        !history
            .iter()
            .any(|l| l.contains("HTTP") || l.contains("web page")),
        "{history:#?}"
    );
}

#[tokio::test]
async fn an_http_request_on_the_irc_port_registers_nobody() {
    let server = TestServer::on(
        &["tcp://127.0.0.1:0", "irc://127.0.0.1:0"],
        Limits::default(),
    )
    .await;
    let mut ana = server.named("ana").await;
    let mut browser = Client::tcp(server.irc()).await;
    browser
        .send_raw(
            form_post("NICK evil\r\nUSER evil 0 * :evil\r\nPRIVMSG ana :hi from a web page\r\n")
                .as_bytes(),
        )
        .await;
    let seen = browser.until_closed().await;
    assert_eq!(
        seen,
        ["ERROR :Closing link: this port speaks IRC, not HTTP\r"]
    );
    let mut bob = server.named("bob").await;
    bob.send("/msg ana after the browser").await;
    assert_eq!(
        ana.expect("(private)").await,
        "(private) <bob> after the browser"
    );
    // The nick the form asked for was never taken.
    bob.send("/nick evil").await;
    bob.expect("*** you are now known as evil").await;
}
