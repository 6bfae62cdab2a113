//! Real IRC clients, irssi and WeeChat, in a real terminal (tmux), in the same room as an
//! nc user: what each types reaches the other, accents and emoji intact. Both must be
//! installed (scripts/test.sh installs them); without them these tests fail saying so.

use charla::limits::Limits;

use crate::support::{Client, TestServer};
use crate::tmux::Tmux;

/// A server with a text listener and an IRC one, flood control off.
async fn server() -> TestServer {
    let limits = Limits {
        flood_rate: 0,
        ..Limits::default()
    };
    TestServer::on(&["tcp://127.0.0.1:0", "irc://127.0.0.1:0"], limits).await
}

/// An nc user named `nick` in #ops.
async fn in_ops(server: &TestServer, nick: &str) -> Client {
    let mut client = server.named(nick).await;
    client.send("/join #ops").await;
    client.expect("#ops *** you joined").await;
    client
}

/// Waits, off the async runtime, for `needle` on the screen.
async fn wait_for(tmux: &Tmux, needle: &str) -> Vec<String> {
    tokio::task::block_in_place(|| tmux.wait_for(needle))
}

/// Types a line and presses Enter.
fn say(tmux: &Tmux, line: &str) {
    tmux.type_text(line);
    tmux.press(&["Enter"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn irssi_talks_with_an_nc_user() {
    let server = server().await;
    let mut bob = in_ops(&server, "bob").await;
    let home = tempfile::tempdir().unwrap();
    let irc = server.irc();
    let tmux = Tmux::start(&format!(
        "TERM=xterm-256color irssi --home={} -c {} -p {} -n ana",
        home.path().display(),
        irc.ip(),
        irc.port()
    ));
    wait_for(&tmux, "Welcome to charla, ana").await;
    // An IRC session starts in no room: irssi, given none to join, is in none.
    say(&tmux, "/join #ops");
    wait_for(&tmux, "Total of 2 nicks").await;
    bob.expect("#ops *** ana joined").await;

    say(&tmux, "hola desde irssi, ñandú 😀");
    assert_eq!(
        bob.expect("<ana>").await,
        "#ops <ana> hola desde irssi, ñandú 😀"
    );
    bob.send("olá, ana").await;
    wait_for(&tmux, "olá, ana").await;
    say(&tmux, "/me waves");
    assert_eq!(bob.expect("ana waves").await, "#ops * ana waves");
    // A private message opens a window of its own.
    bob.send("/msg ana psst").await;
    say(&tmux, "/query bob");
    wait_for(&tmux, "<bob> psst").await;
    say(&tmux, "psst back");
    assert_eq!(bob.expect("psst back").await, "(private) <ana> psst back");
}

#[tokio::test(flavor = "multi_thread")]
async fn weechat_talks_with_an_nc_user() {
    let server = server().await;
    let mut bob = in_ops(&server, "bob").await;
    let home = tempfile::tempdir().unwrap();
    let irc = server.irc();
    let commands = format!(
        "/server add charla {}/{};/set irc.server.charla.nicks bea;\
         /set irc.server.charla.autojoin #ops;/connect charla",
        irc.ip(),
        irc.port()
    );
    let tmux = Tmux::start(&format!(
        "TERM=xterm-256color weechat --dir {} -r '{commands}'",
        home.path().display()
    ));
    bob.expect("#ops *** bea joined").await;
    say(&tmux, "/buffer #ops");
    wait_for(&tmux, "bea (bea@charla) has joined #ops").await;

    say(&tmux, "olá do weechat, 日本語");
    assert_eq!(
        bob.expect("<bea>").await,
        "#ops <bea> olá do weechat, 日本語"
    );
    bob.send("hola, bea").await;
    wait_for(&tmux, "hola, bea").await;
}
