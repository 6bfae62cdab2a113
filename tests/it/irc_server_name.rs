//! `--server-name`: the name an IRC server gives itself in its own lines, over real
//! sockets.

use charla::limits::Limits;

use crate::irc::Irc;
use crate::support::TestServer;

#[tokio::test]
async fn the_server_name_prefixes_numerics_and_answers_ping_004_and_who() {
    let limits = Limits {
        flood_rate: 0,
        server_name: "My.Little.Server".into(),
        ..Limits::default()
    };
    let server = TestServer::on(&["irc://127.0.0.1:0"], limits).await;
    let mut ana = Irc::connect(&server).await;
    ana.send("NICK ana").await;
    ana.send("USER ana 0 * :Ana").await;
    assert_eq!(
        ana.line().await,
        ":My.Little.Server 001 ana :Welcome to charla, ana"
    );
    let yourhost = ana.line().await;
    assert!(
        yourhost.starts_with(":My.Little.Server 002 ana :Your host is My.Little.Server, "),
        "{yourhost}"
    );
    let myinfo = ana.expect(" 004 ").await;
    let words: Vec<&str> = myinfo.split(' ').collect();
    assert_eq!(
        words[..4],
        [":My.Little.Server", "004", "ana", "My.Little.Server"]
    );
    ana.expect(":My.Little.Server 422 ana ").await;

    ana.send("PING :LAG1").await;
    ana.expect(":My.Little.Server PONG My.Little.Server :LAG1")
        .await;
    ana.send("FROB").await;
    ana.expect(":My.Little.Server 421 ana FROB :").await;
    ana.send("JOIN #ops").await;
    ana.expect(":My.Little.Server 366 ana #ops ").await;
    ana.send("WHO #ops").await;
    let reply = ana.expect(" 352 ").await;
    let words: Vec<&str> = reply.split(' ').collect();
    assert_eq!(words[..3], [":My.Little.Server", "352", "ana"], "{reply}");
    assert_eq!(words[6], "My.Little.Server", "the server field of {reply}");
}
