//! IRCv3 client-only tags (`message-tags`) across the nodes of a cluster: a message's tags
//! and TAGMSG reach the IRC clients that asked for them on every node, the speaker's own
//! included, and nobody else. A real redis-server, real `charla serve --cluster` processes.

use crate::cluster::{Node, Redis, member_until};
use crate::support::QUIET;

#[tokio::test]
async fn client_tags_reach_the_irc_clients_of_every_node() {
    let redis = Redis::start();
    let (one, two) = (Node::start(&redis, "one"), Node::start(&redis, "two"));
    let mut ana = one.irc_with("ana", "message-tags").await;
    let mut eve = one.irc_with("eve", "message-tags").await;
    let mut cy = two.irc_with("cy", "message-tags").await;
    let mut dan = two.irc("dan").await;
    let mut zed = two.text("zed").await;
    for nick in ["ana", "eve"] {
        member_until(&mut zed, "#lobby", nick).await;
    }

    // A message's tags: those a client may send, as it sent them, after the server's own.
    ana.send_raw("@label=x;+draft/react=👍;+bad\u{1}=1 PRIVMSG #lobby :hola\r\n".as_bytes())
        .await;
    for client in [&mut eve, &mut cy] {
        let said = client.expect("PRIVMSG #lobby :hola").await;
        let (tags, _) = said.split_once(' ').unwrap();
        assert!(tags.starts_with("@msgid="), "{said}");
        assert!(tags.ends_with(";+draft/react=👍"), "{said}");
    }
    let said = dan.expect("PRIVMSG #lobby :hola").await;
    assert!(
        said.starts_with(':'),
        "no tags without message-tags: {said}"
    );

    // TAGMSG to the room: to message-tags clients only.
    ana.send_raw(b"@+typing=active TAGMSG #lobby\r\n").await;
    for client in [&mut eve, &mut cy] {
        let tagged = client.expect(" TAGMSG #lobby").await;
        let tagged = tagged.trim_end();
        assert!(
            tagged.ends_with(";+typing=active :ana!ana@charla TAGMSG #lobby"),
            "{tagged}"
        );
    }
    // To a nick on another node: a private message's tags, and TAGMSG.
    ana.send_raw(b"@+draft/reply=42 PRIVMSG cy :psst\r\n").await;
    let private = cy.expect("PRIVMSG cy :psst").await;
    assert!(private.starts_with("@msgid="), "{private}");
    assert!(private.contains(";+draft/reply=42 :ana!"), "{private}");
    ana.send_raw(b"@+typing=paused TAGMSG cy\r\n").await;
    let tagged = cy.expect(" TAGMSG cy").await;
    let tagged = tagged.trim_end();
    assert!(
        tagged.ends_with(";+typing=paused :ana!ana@charla TAGMSG cy"),
        "{tagged}"
    );
    // Nothing of the TAGMSGs reached the text and the plain IRC clients: their next
    // line is what ana says next.
    ana.send_raw(b"PRIVMSG #lobby :plain\r\n").await;
    for (client, last) in [
        (&mut dan, ":ana!ana@charla PRIVMSG #lobby :plain"),
        (&mut zed, "#lobby <ana> plain"),
    ] {
        loop {
            let line = client.line().await;
            assert!(
                !line.contains("TAGMSG") && !line.contains("typing"),
                "{line}"
            );
            if line.trim_end() == last {
                break;
            }
        }
    }
    dan.silent_for(QUIET).await;

    // A newcomer on node two reads the tags in the room's history there.
    let mut fay = two.irc_with("fay", "message-tags").await;
    fay.send_raw(b"CHATHISTORY LATEST #lobby * 5\r\n").await;
    let replayed = fay.expect("PRIVMSG #lobby :[history ").await;
    assert!(replayed.trim_end().ends_with("] hola"), "{replayed}");
    assert!(replayed.contains("+draft/react=👍"), "{replayed}");
}
