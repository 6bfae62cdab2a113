//! What a node's members are told of the others' comings and goings: a join counts the
//! room's members on every node. A real redis-server, real `charla serve --cluster`
//! processes.

use serde_json::Value;

use crate::cluster::{Node, Redis, member_until};
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
