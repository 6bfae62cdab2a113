//! What a cluster outage (Redis stopped) does to what is not a room message: a private
//! message to a user of another node is refused at once, its sender told why, in every
//! protocol; a nick let go on a node meanwhile is free in Redis once it is back. A real
//! redis-server stopped and started, real `charla serve --cluster` processes.

use std::time::{Duration, Instant};

use crate::cluster::{Node, Redis, member_until, read_until_all};
use crate::support::{Client, PATIENCE, QUIET};

/// What `client` reads up to a line containing `last`.
async fn lines_until(client: &mut Client, last: &str) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let line = client.next().await.expect("a line");
        if line.contains(last) {
            return lines;
        }
        lines.push(line);
    }
}

/// Whether `line` is the late word on the message `before`, sent just before Redis
/// stopped: Redis carried it, but its answer can go with the connection unread, and the
/// node then tells its sender it may not have been delivered, which is all it knows.
fn maybe_not_delivered_before(line: &str) -> bool {
    line.contains(r#" to bob ("before") may not have been delivered"#)
}

/// Reads up to the line containing `needle` and returns it: any line before it is to be
/// the late word on `before` ([`maybe_not_delivered_before`]).
async fn past_word_on_before(client: &mut Client, needle: &str) -> String {
    loop {
        let line = client.next().await.expect("a line");
        if line.contains(needle) {
            return line;
        }
        assert!(
            maybe_not_delivered_before(&line),
            "before {needle:?}: {line}"
        );
    }
}

#[tokio::test]
async fn a_private_message_to_another_node_while_redis_is_down_is_refused_and_said_why() {
    let mut redis = Redis::start();
    let (one, two) = (Node::start(&redis, "one"), Node::start(&redis, "two"));
    let mut bob = two.text("bob").await;
    let mut ana = one.text("ana").await;
    let mut jo = one.json("jo").await;
    let mut ivy = one.irc("ivy").await;
    member_until(&mut ana, "#lobby", "bob").await;
    ana.send("/msg bob before").await;
    bob.expect("(private) <ana> before").await;

    redis.stop();
    ana.expect("*** cross-node delivery interrupted").await;
    bob.expect("*** cross-node delivery interrupted").await;
    assert_eq!(jo.expect_json("cluster").await["state"], "interrupted");
    ivy.expect("cross-node delivery interrupted").await;

    // Refused at once, the cause named, rather than acked and lost: text, JSON (with its
    // ref, in place of the ack), IRC (a server notice, PRIVMSG having no numeric for it).
    ana.send("/msg bob during, text").await;
    let refused = past_word_on_before(&mut ana, "ERROR not_delivered: not delivered to bob").await;
    assert!(
        refused.contains("cross-node delivery interrupted"),
        "{refused}"
    );
    jo.send(r#"{"type":"msg","to":"bob","text":"during, json","ref":"m1"}"#)
        .await;
    let error = jo.expect_json("error").await;
    assert_eq!(error["code"], "not_delivered", "{error}");
    assert_eq!(error["ref"], "m1", "{error}");
    ivy.send_raw(b"PRIVMSG bob :during, irc\r\n").await;
    let notice = ivy.expect(" NOTICE ivy :").await;
    assert!(
        notice.contains("bob") && notice.contains("not delivered"),
        "{notice}"
    );
    // A user of one's own node is reached as ever.
    ana.send("/msg jo still here").await;
    let private = jo.expect_json("private").await;
    assert_eq!(private["text"], "still here");
    if let Ok(Some(line)) = ana.next_within(QUIET).await {
        assert!(
            maybe_not_delivered_before(&line),
            "a private message on one node answered: {line}"
        );
    }

    redis.restart();
    ana.expect("*** cross-node delivery restored").await;
    bob.expect("*** cross-node delivery restored").await;
    ivy.expect("cross-node delivery restored").await;
    // Once back, private messages cross again; none refused meanwhile arrives late.
    ana.send("/msg bob after, text").await;
    let before = lines_until(&mut bob, "(private) <ana> after, text").await;
    ivy.send_raw(b"PRIVMSG bob :after, irc\r\n").await;
    let between = lines_until(&mut bob, "(private) <ivy> after, irc").await;
    let during: Vec<&String> = before
        .iter()
        .chain(&between)
        .filter(|l| l.contains("during"))
        .collect();
    assert!(during.is_empty(), "refused, yet delivered: {during:?}");
}

#[tokio::test]
async fn a_private_message_sent_as_redis_froze_is_told_as_maybe_not_delivered() {
    let redis = Redis::start();
    let (one, two) = (Node::start(&redis, "one"), Node::start(&redis, "two"));
    let mut bob = two.text("bob").await;
    let mut jo = one.json("jo").await;
    // Node one knows bob before jo writes to him.
    member_until(&mut one.text("wat").await, "#lobby", "bob").await;
    jo.send(r#"{"type":"msg","to":"bob","text":"before","ref":"b"}"#)
        .await;
    bob.expect("(private) <jo> before").await;

    // Frozen, Redis takes the message and answers nothing: the node acks it (it went out
    // before anything looked wrong), then tells its sender once the pipeline fails.
    redis.signal("STOP");
    jo.send(r#"{"type":"msg","to":"bob","text":"as it froze","ref":"f"}"#)
        .await;
    let error = loop {
        let event = jo.json().await;
        if event["type"] == "error" {
            break event;
        }
    };
    redis.signal("CONT");
    assert_eq!(error["code"], "not_delivered", "{error}");
    // It carries the request's ref, so the client knows which message it was.
    assert_eq!(error["ref"], "f", "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains(r#"to bob ("as it froze")"#)
            && message.contains("may not have been delivered"),
        "{error}"
    );
}

/// A text reader has no references: the late error names the message by its first words.
#[tokio::test]
async fn a_private_message_sent_as_redis_froze_is_named_to_a_text_reader() {
    let redis = Redis::start();
    let (one, two) = (Node::start(&redis, "one"), Node::start(&redis, "two"));
    let mut bob = two.text("bob").await;
    let mut ana = one.text("ana").await;
    member_until(&mut ana, "#lobby", "bob").await;
    ana.send("/msg bob before").await;
    bob.expect("(private) <ana> before").await;

    redis.signal("STOP");
    ana.send("/msg bob the first words of a long line that runs on past the quote")
        .await;
    let error = ana.expect("ERROR not_delivered: ").await;
    redis.signal("CONT");
    assert!(
        error.contains(r#"your message "#)
            && error.contains(
                r#" to bob ("the first words of a long line…") may not have been delivered"#
            ),
        "{error}"
    );
}

/// TAGMSG to a user of another node, and INVITE of one, are refused as a private message
/// is; TAGMSG to a room is heard on its own node only while Redis is down (docs/cluster.md).
#[tokio::test]
async fn tags_and_invitations_to_another_node_while_redis_is_down_are_refused() {
    let mut redis = Redis::start();
    let (one, two) = (Node::start(&redis, "one"), Node::start(&redis, "two"));
    let mut bob = two.irc_with("bob", "message-tags").await;
    let mut carl = one.irc_with("carl", "message-tags").await;
    let mut ivy = one.irc_with("ivy", "message-tags").await;
    ivy.send_raw(b"JOIN #ops\r\n").await;
    ivy.expect(" 366 ivy #ops ").await;
    let mut watcher = one.text("wat").await;
    member_until(&mut watcher, "#lobby", "bob").await;
    ivy.send_raw(b"@+typing=active TAGMSG #lobby\r\n").await;
    bob.expect(" TAGMSG #lobby").await;

    redis.stop();
    ivy.expect("cross-node delivery interrupted").await;
    bob.expect("cross-node delivery interrupted").await;
    carl.expect("cross-node delivery interrupted").await;
    // (Passing by the late word on the tags to #lobby just before, should their answer
    // from Redis have gone with the connection: [`maybe_not_delivered_before`].)
    ivy.send_raw(b"@+typing=active TAGMSG bob\r\n").await;
    ivy.expect(" NOTICE ivy :not delivered to bob: ").await;
    ivy.send_raw(b"INVITE bob #ops\r\n").await;
    ivy.expect(" NOTICE ivy :not delivered to bob: ").await;
    // To a room: heard by its members on this node, and no further.
    ivy.send_raw(b"@+typing=paused TAGMSG #lobby\r\n").await;
    carl.expect("+typing=paused :ivy!").await;

    redis.restart();
    ivy.expect("cross-node delivery restored").await;
    bob.expect("cross-node delivery restored").await;
    ivy.send_raw(b"PRIVMSG #lobby :after\r\n").await;
    let before = lines_until(&mut bob, "PRIVMSG #lobby :after").await;
    let tags: Vec<&String> = before.iter().filter(|l| l.contains("TAGMSG")).collect();
    assert!(tags.is_empty(), "heard late: {tags:?}");
    ivy.send_raw(b"INVITE bob #ops\r\n").await;
    ivy.expect(" 341 ivy bob #ops").await;
    let invited = bob.expect(" INVITE bob ").await;
    assert!(invited.contains("#ops"), "{invited}");
}

/// Waits until Redis's claim on `nick` names node `node` (`""`: until there is none).
fn holder_until(redis: &Redis, nick: &str, node: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let now = holder(redis, nick);
        if now == node {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{nick} held by {now:?}, never by {node:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The number of the node whose claim on `nick` Redis holds (empty: none).
fn holder(redis: &Redis, nick: &str) -> String {
    let reply = redis.command(&["GET", &format!("charla:nick:{nick}")]);
    let value = reply.lines().nth(1).unwrap_or_default();
    value.split(':').next().unwrap_or_default().to_string()
}

#[tokio::test]
async fn nicks_let_go_on_a_node_during_an_outage_are_free_once_redis_is_back() {
    let mut redis = Redis::start();
    let (one, two) = (Node::start(&redis, "one"), Node::start(&redis, "two"));
    let mut fay = one.text("fay").await;
    let mut gus = one.text("gus").await;
    let mut hal = one.text("hal").await;
    let mut bob = two.text("bob").await;
    member_until(&mut bob, "#lobby", "hal").await;
    for nick in ["fay", "gus", "hal"] {
        assert_eq!(holder(&redis, nick), "1", "{nick}");
    }

    // Redis keeps its keys (persistence): node one's claims are still there once back.
    redis.stop_saved();
    for client in [&mut fay, &mut gus, &mut hal, &mut bob] {
        client.expect("*** cross-node delivery interrupted").await;
    }
    // fay quits; gus and hal let their nicks go, and gus takes hal's on the same node.
    fay.send("/quit").await;
    fay.until_closed().await;
    gus.send("/nick gus2").await;
    gus.expect("*** you are now known as gus2").await;
    hal.send("/nick hal2").await;
    hal.expect("*** you are now known as hal2").await;
    gus.send("/nick hal").await;
    gus.expect("*** you are now known as hal").await;

    redis.restart();
    read_until_all(
        &mut bob,
        &[
            "*** cross-node delivery restored",
            "#lobby *** fay left (quit)",
        ],
    )
    .await;
    // Redis no longer holds what node one let go, but still what it took again.
    holder_until(&redis, "fay", "");
    holder_until(&redis, "gus", "");
    holder_until(&redis, "hal", "1");
    // A user of the other node takes them as nicks nobody holds.
    bob.send("/nick fay").await;
    bob.expect("*** you are now known as fay").await;
    let mut cy = two.text("cy").await;
    cy.send("/nick gus").await;
    cy.expect("*** you are now known as gus").await;
    cy.send("/nick hal").await;
    cy.expect("ERROR nick_taken").await;
    // And keeps them: no claim of node one comes back to take them away.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for nick in ["fay", "gus"] {
        assert_eq!(holder(&redis, nick), "2");
    }
    for client in [&mut bob, &mut cy] {
        if let Ok(Some(line)) = client.next_within(QUIET).await {
            assert!(!line.contains("taken"), "{line}");
        }
    }
}
