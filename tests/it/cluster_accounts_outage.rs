//! Accounts while the cluster's Redis, which keeps them, does not answer: a login is
//! refused at once, saying so, rather than waiting for Redis behind every other login.

use crate::cluster::{Node, Redis};
use crate::support::Client;

#[tokio::test]
async fn logins_while_redis_is_paused_are_refused_at_once_saying_redis_is_out_of_reach() {
    let redis = Redis::start();
    let node = Node::start(&redis, "one");
    let mut ana = node.text("ana").await;
    ana.send("/register correct-horse").await;
    ana.expect("*** ana is registered to you").await;

    redis.signal("STOP");
    ana.expect("*** cross-node delivery interrupted").await;
    // Three logins at once, as users trying again would make them.
    let mut tries = Vec::new();
    for _ in 0..3 {
        let mut c = Client::tcp(node.tcp).await;
        c.expect("you joined").await;
        c.send("/login ana correct-horse").await;
        tries.push(c);
    }
    let mut answers = Vec::new();
    for c in &mut tries {
        answers.push(c.expect("ERROR store_failed").await);
    }
    redis.signal("CONT");
    for answer in answers {
        assert!(
            answer.contains("the cluster's Redis, which keeps the accounts, is out of reach")
                && answer.contains("try again once cross-node delivery is restored"),
            "{answer}"
        );
    }

    // Once Redis answers again, so does the login.
    ana.expect("*** cross-node delivery restored").await;
    let mut late = Client::tcp(node.tcp).await;
    late.expect("you joined").await;
    late.send("/login ana correct-horse").await;
    late.expect("*** you are logged in as ana").await;
}
