//! What a node's members are told of the others' comings and goings: a join counts the
//! room's members on every node, and what happened while Redis was out of reach is told
//! once it is back. A real redis-server, real `charla serve --cluster` processes.

use serde_json::Value;

use crate::cluster::{Node, Redis, member_until, read_until_all};
use crate::support::Client;

/// Reads `client`'s JSON events until the join of `nick` to `room`.
async fn join_of(client: &mut Client, room: &str, nick: &str) -> Value {
    loop {
        let join = client.expect_json("join").await;
        if join["room"] == room && join["nick"] == nick {
            return join;
        }
    }
}

/// `client` (JSON) joins `room`; returns its own join.
async fn join(client: &mut Client, room: &str) -> Value {
    client
        .send(&format!(r#"{{"type":"join","room":"{room}"}}"#))
        .await;
    loop {
        let join = client.expect_json("join").await;
        if join["room"] == room && join["you"] == true {
            return join;
        }
    }
}

#[tokio::test]
async fn a_join_counts_the_rooms_members_on_every_node() {
    let redis = Redis::start();
    let (one, two) = (Node::start(&redis, "one"), Node::start(&redis, "two"));
    let mut ana = one.json("ana").await;
    assert_eq!(join(&mut ana, "#ops").await["count"], 1);
    // Node two knows ana is in #ops before bob joins it.
    let mut zed = two.text("zed").await;
    member_until(&mut zed, "#ops", "ana").await;
    let mut bob = two.json("bob").await;
    assert_eq!(join(&mut bob, "#ops").await["count"], 2);
    assert_eq!(join_of(&mut ana, "#ops", "bob").await["count"], 2);

    // A third member on node one: both nodes' members are told the room has three, not
    // only node one's two.
    let mut cy = one.json("cy").await;
    assert_eq!(join(&mut cy, "#ops").await["count"], 3);
    assert_eq!(join_of(&mut bob, "#ops", "cy").await["count"], 3);
    assert_eq!(join_of(&mut ana, "#ops", "cy").await["count"], 3);
}

#[tokio::test]
async fn joins_leaves_and_renames_during_an_outage_are_told_to_the_other_nodes_once_it_ends() {
    let mut redis = Redis::start();
    let (one, two) = (Node::start(&redis, "one"), Node::start(&redis, "two"));
    let mut bob = two.text("bob").await;
    bob.send("/join #ops").await;
    bob.expect("#ops *** you joined").await;
    let mut members = Vec::new();
    for nick in ["dee", "ed", "fay"] {
        let mut member = one.text(nick).await;
        crate::cluster_rooms::join_after(&mut member, "#ops", "bob").await;
        bob.expect(&format!("#ops *** {nick} joined")).await;
        members.push(member);
    }
    let mut cy = one.text("cy").await;
    bob.expect("is now known as cy").await;
    let [mut dee, mut ed, mut fay] = members.try_into().ok().unwrap();

    redis.stop();
    bob.expect("*** cross-node delivery interrupted").await;
    cy.expect("*** cross-node delivery interrupted").await;
    // On node one meanwhile: cy joins, dee leaves, ed is renamed, fay quits.
    cy.send("/join #ops").await;
    cy.expect("#ops *** you joined").await;
    dee.send("/leave #ops").await;
    dee.expect("#ops *** you left").await;
    ed.send("/nick eddie").await;
    ed.expect("*** you are now known as eddie").await;
    fay.send("/quit").await;
    fay.until_closed().await;

    redis.restart();
    bob.expect("*** cross-node delivery restored").await;
    // Node two's members hear each, one line apiece, as they would have live.
    read_until_all(
        &mut bob,
        &[
            "#ops *** cy joined",
            "#ops *** dee left (left)",
            "*** ed is now known as eddie",
            "#ops *** fay left (quit)",
        ],
    )
    .await;
    bob.send("/users #ops").await;
    let mut seen = Vec::new();
    let users = loop {
        let line = bob.next().await.expect("an answer");
        if line.contains(" here: ") {
            break line;
        }
        seen.push(line);
    };
    assert!(
        users.ends_with("here: bob, cy, eddie"),
        "{users}; before it {seen:?}"
    );
    // Not told twice, though node one told who it has twice (on its return, and in
    // answer to node two's).
    assert!(
        !seen
            .iter()
            .any(|l| l.contains("joined") || l.contains("left") || l.contains("known as")),
        "{seen:?}"
    );
}
