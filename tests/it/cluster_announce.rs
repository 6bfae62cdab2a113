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
    // Node two's members hear each, one line apiece, as they would have live. Each node
    // finds Redis back on its own: node two hears node one's return (and tells these)
    // as soon as it listens again, which may be before it tells its own return.
    let told = [
        "#ops *** cy joined",
        "#ops *** dee left (left)",
        "*** ed is now known as eddie",
        "#ops *** fay left (quit)",
    ];
    let mut awaited = told.to_vec();
    awaited.push("*** cross-node delivery restored");
    let mut heard = Vec::new();
    while !awaited
        .iter()
        .all(|a| heard.iter().any(|l: &String| l.contains(a)))
    {
        let Ok(Some(line)) = bob.next_within(crate::support::PATIENCE).await else {
            panic!("not all of {awaited:?} arrived; saw {heard:#?}");
        };
        heard.push(line);
    }
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
    for line in told {
        let times = heard.iter().filter(|l| l.contains(line)).count();
        assert_eq!(times, 1, "{line:?} in {heard:#?}");
    }
    assert!(
        !seen
            .iter()
            .any(|l| l.contains("joined") || l.contains("left") || l.contains("known as")),
        "{seen:?}"
    );
}

/// Asks `client`'s node who is in `room` until it counts `count` members: for the other
/// node's members, which it learns a moment later.
async fn count_until(client: &mut Client, room: &str, count: usize) {
    let deadline = std::time::Instant::now() + crate::support::PATIENCE;
    let wanted = format!("{room} *** {count} here: ");
    loop {
        client.send(&format!("/users {room}")).await;
        let answer = loop {
            let line = client.next().await.expect("an answer");
            if line.starts_with(&format!("{room} *** ")) && line.contains(" here: ") {
                break line;
            }
        };
        if answer.starts_with(&wanted) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{room} never had {count} members; last {answer:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Reads `client` until a line containing `needle`; fails if a line before it contains
/// any of `unwanted`.
async fn none_before(client: &mut Client, needle: &str, unwanted: &[&str]) -> String {
    let mut seen = Vec::new();
    loop {
        let line = client.next().await.expect("a line");
        if line.contains(needle) {
            assert!(
                !seen
                    .iter()
                    .any(|l: &String| unwanted.iter().any(|u| l.contains(u))),
                "{unwanted:?} announced before {needle:?}: {seen:#?}"
            );
            return line;
        }
        seen.push(line);
    }
}

/// A room larger than `ANNOUNCE_MAX_MEMBERS` across the nodes, though neither node has
/// half of that, announces no join, leave or rename on either node; once it is back at
/// the bound, both announce again.
#[tokio::test]
async fn a_room_crowded_only_across_nodes_announces_nothing_on_either_node() {
    use charla::limits::ANNOUNCE_MAX_MEMBERS;
    let redis = Redis::start();
    let (one, two) = (Node::start(&redis, "one"), Node::start(&redis, "two"));
    let mut ana = one.text("ana").await;
    let mut bob = two.text("bob").await;
    ana.expect("is now known as bob").await;
    // #lobby, every text client's first room, filled to the bound: half on each node.
    let half = ANNOUNCE_MAX_MEMBERS / 2 - 1;
    let mut crowd = Vec::new();
    for node in [&one, &two] {
        for _ in 0..half {
            let mut member = Client::tcp(node.tcp).await;
            member.expect("you joined").await;
            crowd.push(member);
        }
    }
    count_until(&mut ana, "#lobby", ANNOUNCE_MAX_MEMBERS).await;
    count_until(&mut bob, "#lobby", ANNOUNCE_MAX_MEMBERS).await;
    // Every join so far was published before these (each node's in its order).
    crowd[0].send("ready on one").await;
    crowd[half].send("ready on two").await;
    for client in [&mut ana, &mut bob] {
        read_until_all(client, &["ready on one", "ready on two"]).await;
    }

    // One more on node one, which has half of the room only: neither node announces
    // the join, the rename, or the leave.
    let mut cy = Client::tcp(one.tcp).await;
    cy.expect("you joined").await;
    cy.send("/nick cy").await;
    cy.expect("*** you are now known as cy").await;
    cy.send("cy was here").await;
    for client in [&mut ana, &mut bob] {
        none_before(client, "<cy> cy was here", &["joined", "known as"]).await;
    }
    cy.send("/quit").await;
    cy.until_closed().await;
    crowd[0].send("cy has gone").await;
    for client in [&mut ana, &mut bob] {
        none_before(client, "cy has gone", &["left ("]).await;
    }

    // Back at the bound, a leave (of one of node two's) and a join (on node one) are
    // announced on both nodes.
    let leaving = crowd.pop().expect("a member");
    drop(leaving);
    for client in [&mut ana, &mut bob] {
        let left = client.expect(" left (").await;
        assert!(left.starts_with("#lobby *** guest-"), "{left}");
    }
    let _dee = one.text("dee").await;
    for client in [&mut ana, &mut bob] {
        client.expect(" joined").await;
        client.expect("is now known as dee").await;
    }
}

/// A JSON `join` names the joiner's account, whichever node it joins on.
#[tokio::test]
async fn a_join_carries_the_joiners_account_on_every_node() {
    let redis = Redis::start();
    let (one, two) = (Node::start(&redis, "one"), Node::start(&redis, "two"));
    let mut bot = one.json("bot").await;
    join(&mut bot, "#ops").await;
    let mut zed = two.text("zed").await;
    member_until(&mut zed, "#ops", "bot").await;
    let mut carl = two.json("carl").await;
    join(&mut carl, "#ops").await;
    join_of(&mut bot, "#ops", "carl").await;

    let mut ana = one.text("ana").await;
    ana.send("/register correct-horse").await;
    ana.expect("*** ana is registered to you").await;
    ana.send("/join #ops").await;
    ana.expect("#ops *** you joined").await;
    assert_eq!(join_of(&mut bot, "#ops", "ana").await["account"], "ana");
    assert_eq!(join_of(&mut carl, "#ops", "ana").await["account"], "ana");

    // Someone logged in to no account: no `account`.
    let mut dan = two.text("dan").await;
    dan.send("/join #ops").await;
    dan.expect("#ops *** you joined").await;
    for client in [&mut bot, &mut carl] {
        let join = join_of(client, "#ops", "dan").await;
        assert!(join.get("account").is_none(), "{join}");
    }
}
