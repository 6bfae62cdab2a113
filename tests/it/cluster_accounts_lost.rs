//! Redis restarted without persistence forgets the cluster's accounts: every node then
//! forgets them too, so their nicks are free to take and register again, rather than
//! protected on every node for accounts that no longer exist until each node restarts.

use crate::cluster::{Node, Redis};

#[tokio::test]
async fn accounts_redis_lost_are_forgotten_on_every_node_and_their_nicks_free() {
    let mut redis = Redis::start();
    let (one, two) = (Node::start(&redis, "one"), Node::start(&redis, "two"));
    let mut ana = one.text("ana").await;
    ana.send("/register correct-horse").await;
    ana.expect("*** ana is registered to you").await;
    let mut bob = two.text("bob").await;
    // Node two protects ana's nick once it has heard the registration.
    crate::cluster::ask_until(&mut bob, "/nick ana", "ERROR nick_registered").await;

    redis.stop();
    bob.expect("*** cross-node delivery interrupted").await;
    redis.restart();
    bob.expect("*** cross-node delivery restored").await;
    ana.expect("*** cross-node delivery restored").await;

    // Ana still holds her nick on node one; on node two a newcomer may not take it
    // while she does, but nothing says it is registered any more.
    bob.send("/nick ana").await;
    let answer = bob.expect("ERROR").await;
    assert!(answer.contains("nick_taken"), "{answer}");
    ana.send("/quit").await;
    crate::cluster::ask_until(&mut bob, "/nick ana", "*** you are now known as ana").await;
    bob.send("/register battery-staple").await;
    bob.expect("*** ana is registered to you").await;
}
