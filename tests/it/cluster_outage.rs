//! What holds after Redis was out of reach: a room made on two nodes meanwhile has one
//! operator once Redis is back, and a node cut off while Redis restarted empty does not
//! write its older copy of a room over a newer one. A real redis-server stopped and
//! started, real `charla serve --cluster` processes (paused with SIGSTOP to cut one off).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};

use crate::cluster::{Node, Redis, ask_until, member_until, read_until_all};
use crate::support::{Client, PATIENCE};

/// Who `client`'s node says the operators of `room` are (its `/mode` answer).
async fn operators(client: &mut Client, room: &str) -> String {
    client.send(&format!("/mode {room}")).await;
    let modes = client.expect(&format!("{room} *** modes ")).await;
    let (_, rest) = modes.split_once("operators: ").expect("operators listed");
    rest.split(';').next().unwrap().to_string()
}

/// Asks both nodes who `room`'s operators are until they name the same one, ana or bob;
/// returns it.
async fn one_operator(ana: &mut Client, bob: &mut Client, room: &str) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (seen_one, seen_two) = (operators(ana, room).await, operators(bob, room).await);
        if seen_one == seen_two && (seen_one == "ana" || seen_one == "bob") {
            return seen_one;
        }
        assert!(
            Instant::now() < deadline,
            "node one says {seen_one}, node two {seen_two}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_room_made_on_two_nodes_during_an_outage_has_one_operator_once_redis_is_back() {
    let mut redis = Redis::start();
    let (one, two) = (Node::start(&redis, "one"), Node::start(&redis, "two"));
    let mut ana = one.text("ana").await;
    let mut bob = two.text("bob").await;
    ana.expect("is now known as bob").await;

    redis.stop();
    ana.expect("*** cross-node delivery interrupted").await;
    bob.expect("*** cross-node delivery interrupted").await;
    // Each node serves its own meanwhile: each founder is the room's operator there.
    ana.send("/join #split").await;
    ana.expect("#split *** you joined").await;
    bob.send("/join #split").await;
    bob.expect("#split *** you joined").await;
    assert_eq!(operators(&mut ana, "#split").await, "ana");
    assert_eq!(operators(&mut bob, "#split").await, "bob");

    redis.restart();
    ana.expect("*** cross-node delivery restored").await;
    bob.expect("*** cross-node delivery restored").await;
    // Once back, Redis's founding decides: both nodes name the same one operator.
    member_until(&mut ana, "#split", "bob").await;
    member_until(&mut bob, "#split", "ana").await;
    let op = one_operator(&mut ana, &mut bob, "#split").await;
    let (winner, loser) = match op.as_str() {
        "ana" => (&mut ana, &mut bob),
        _ => (&mut bob, &mut ana),
    };
    loser.send("/topic #split mine").await;
    loser
        .expect("only #split's operators may set its topic")
        .await;
    winner.send("/topic #split kept").await;
    loser
        .expect(&format!("#split *** {op} set the topic: kept"))
        .await;
    // And it stays so: neither founding claim comes back to make the other operator.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(operators(winner, "#split").await, op);
    assert_eq!(operators(loser, "#split").await, op);
}

/// A TCP relay to Redis that can be cut (its connections dropped, new ones closed at once)
/// and restored: one node cut off from Redis while the others are not.
struct Relay {
    url: String,
    open: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Relay {
    async fn to(redis: &Redis) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("redis://{}", listener.local_addr().unwrap());
        let target = redis.url().trim_start_matches("redis://").to_string();
        let open = Arc::new(AtomicBool::new(true));
        let links: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (open_, links_) = (open.clone(), links.clone());
        tokio::spawn(async move {
            while let Ok((mut node, _)) = listener.accept().await {
                if !open_.load(Ordering::SeqCst) {
                    continue;
                }
                let Ok(mut redis) = TcpStream::connect(&target).await else {
                    continue;
                };
                let link = tokio::spawn(async move {
                    let _ = tokio::io::copy_bidirectional(&mut node, &mut redis).await;
                });
                links_.lock().unwrap().push(link.abort_handle());
            }
        });
        Relay { url, open, links }
    }

    fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

/// Polls Redis until `room`'s topic field contains `needle` (`None`: has no topic).
fn topic_until(redis: &Redis, room: &str, needle: Option<&str>) {
    let key = format!("charla:room:{room}");
    let deadline = Instant::now() + PATIENCE;
    loop {
        let value = redis.command(&["HGET", &key, "topic"]);
        let holds = match needle {
            Some(needle) => value.contains(needle),
            None => value.starts_with("$-1"),
        };
        if holds {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{key}'s topic never {needle:?}: {value:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

// Two threads: the relay relays while the test waits, blocking, for a node to start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_while_redis_restarted_empty_does_not_write_back_older_room_state() {
    let mut redis = Redis::start();
    let relay = Relay::to(&redis).await;
    let one = Node::start(&redis, "one");
    let two = Node::start_url(&relay.url, "two");
    let mut ana = Client::tcp(one.irc).await;
    ana.send_raw(b"NICK ana\r\nUSER ana 0 * :Ana\r\nJOIN #a\r\nJOIN #b\r\n")
        .await;
    ana.expect(" 366 ana #b ").await;
    ana.send_raw(b"TOPIC #a :old a\r\nTOPIC #b :old b\r\n")
        .await;
    ana.expect(" TOPIC #b :old b").await;
    let mut bob = two.text("bob").await;
    bob.send("/join #a").await;
    bob.expect("#a *** you joined").await;
    bob.send("/join #b").await;
    bob.expect("#b *** you joined").await;
    ask_until(&mut bob, "/topic #a", "old a").await;
    ask_until(&mut bob, "/topic #b", "old b").await;

    // Node two is cut off with the old state; node one clears #a's topic and changes #b's.
    relay.cut();
    bob.expect("*** cross-node delivery interrupted").await;
    ana.send_raw(b"TOPIC #a :\r\nTOPIC #b :new b\r\n").await;
    ana.expect(" TOPIC #b :new b").await;
    topic_until(&redis, "#a", None);
    topic_until(&redis, "#b", Some("new b"));

    // Redis restarts empty while node one is frozen; node two comes back first and
    // writes back what it has, then node one, with newer state.
    one.freeze();
    redis.stop();
    redis.restart();
    relay.restore();
    bob.expect("*** cross-node delivery restored").await;
    topic_until(&redis, "#b", Some("old b"));
    one.thaw();

    // The newer state wins, in Redis and on both nodes, whoever wrote first.
    topic_until(&redis, "#b", Some("new b"));
    topic_until(&redis, "#a", None);
    ask_until(&mut bob, "/topic #b", "new b").await;
    ask_until(&mut bob, "/topic #a", "no topic is set").await;
    let three = Node::start(&redis, "three");
    let mut cy = three.text("cy").await;
    member_until(&mut cy, "#b", "ana").await;
    cy.send("/join #b").await;
    cy.expect("#b *** topic: new b (set by ana)").await;
    cy.send("/join #a").await;
    cy.expect("#a *** you joined").await;
    ask_until(&mut cy, "/topic #a", "no topic is set").await;
}

/// Nodes one and two, node two through a relay; ana on one and bob on two. Node two is
/// cut off, then ana makes `room` (her node claims it in Redis) and bob makes it on his
/// node, where he is its operator for now.
async fn founded_on_both_sides(redis: &Redis, room: &str) -> (Relay, Node, Node, Client, Client) {
    let relay = Relay::to(redis).await;
    let one = Node::start(redis, "one");
    let two = Node::start_url(&relay.url, "two");
    let mut ana = one.text("ana").await;
    let mut bob = two.text("bob").await;
    ana.expect("is now known as bob").await;
    relay.cut();
    bob.expect("*** cross-node delivery interrupted").await;
    ana.send(&format!("/join {room}")).await;
    ana.expect(&format!("{room} *** you joined")).await;
    bob.send(&format!("/join {room}")).await;
    bob.expect(&format!("{room} *** you joined")).await;
    assert_eq!(operators(&mut bob, room).await, "bob");
    (relay, one, two, ana, bob)
}

// Two threads: the relay relays while the test waits, blocking, for a node to start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_made_on_a_node_cut_off_for_long_is_the_founders_made_before() {
    let redis = Redis::start();
    // Node two is cut off; ana makes #late with Redis's word, bob makes it on his node.
    let (relay, _one, _two, mut ana, mut bob) = founded_on_both_sides(&redis, "#late").await;
    // Longer than any founding claim used to last: ana's still holds when bob's node
    // claims #late on its return, so bob is not its operator.
    tokio::time::sleep(Duration::from_secs(11)).await;
    relay.restore();
    bob.expect("*** cross-node delivery restored").await;
    member_until(&mut ana, "#late", "bob").await;
    assert_eq!(one_operator(&mut ana, &mut bob, "#late").await, "ana");
    bob.send("/topic #late mine").await;
    bob.expect("only #late's operators may set its topic").await;
}

// Two threads: the relay relays while the test waits, blocking, for a node to start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_founder_keeps_its_room_after_redis_restarted_empty_against_a_node_cut_off() {
    let mut redis = Redis::start();
    // ana founds #kept with Redis's word; node two is cut off, and bob makes it there.
    let (relay, _one, _two, mut ana, mut bob) = founded_on_both_sides(&redis, "#kept").await;
    // Redis restarts empty: node one claims its founding again as it comes back, before
    // node two, back later, claims its own.
    redis.stop();
    ana.expect("*** cross-node delivery interrupted").await;
    redis.restart();
    ana.expect("*** cross-node delivery restored").await;
    let deadline = Instant::now() + PATIENCE;
    while redis
        .command(&["EXISTS", "charla:founder:#kept"])
        .starts_with(":0")
    {
        assert!(
            Instant::now() < deadline,
            "node one never claimed #kept again"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    relay.restore();
    bob.expect("*** cross-node delivery restored").await;
    member_until(&mut ana, "#kept", "bob").await;
    assert_eq!(one_operator(&mut ana, &mut bob, "#kept").await, "ana");
    bob.send("/topic #kept mine").await;
    bob.expect("only #kept's operators may set its topic").await;
}

/// What `nick` said, as `client` reads it live or replayed, up to `last`.
async fn said_until(client: &mut Client, nick: &str, last: &str) -> Vec<String> {
    let said_by = format!("<{nick}> ");
    let mut said = Vec::new();
    loop {
        let line = client.next().await.expect("a line");
        if let Some((_, text)) = line.split_once(&said_by) {
            if text == last {
                return said;
            }
            said.push(text.to_string());
        }
    }
}

#[tokio::test]
async fn a_message_past_the_queue_to_redis_is_refused_and_heard_nowhere() {
    let redis = Redis::start();
    // A queue to Redis of two, so that a frozen Redis fills it at once.
    let one = Node::start_with(&redis, "one", &["--cluster-outbox", "2"]);
    let two = Node::start(&redis, "two");
    let mut ana = one.text("ana").await;
    let mut carl = one.text("carl").await;
    let mut bob = two.text("bob").await;
    ana.send("before").await;
    bob.expect("#lobby <ana> before").await;
    carl.expect("#lobby <ana> before").await;

    // Frozen, Redis takes what is sent and answers nothing: the node's pipelines in flight
    // and its queue fill, and what is said past them is refused. Resumed well within
    // CLUSTER_PROBE_TIMEOUT, so the node never takes Redis for gone.
    redis.signal("STOP");
    const SENT: usize = 40;
    for n in 1..=SENT {
        ana.send(&format!("burst {n}")).await;
    }
    ana.send("/users #lobby").await;
    let mut refused = 0;
    loop {
        let line = ana.next().await.expect("a line");
        if line.contains("here:") {
            break;
        }
        if line.starts_with("ERROR store_unavailable: ") {
            assert!(line.contains("nothing was said"), "{line}");
            refused += 1;
        }
    }
    redis.signal("CONT");
    assert!(
        refused > 0,
        "a frozen Redis and a queue of two refused nothing"
    );

    ana.send("after").await;
    // Refusals fall where the queue was full (the node drains it into pipelines as Redis
    // takes them): what was accepted reaches every member on both nodes, in order, and
    // the refused ones nobody, here or there.
    let heard_there = said_until(&mut bob, "ana", "after").await;
    let heard_here = said_until(&mut carl, "ana", "after").await;
    assert_eq!(heard_here, heard_there);
    assert_eq!(heard_there.len(), SENT - refused, "{heard_there:?}");
    let numbers: Vec<usize> = heard_there
        .iter()
        .map(|line| line.strip_prefix("burst ").unwrap().parse().unwrap())
        .collect();
    assert!(numbers.is_sorted(), "{numbers:?}");
    // The node's history has what was heard, nothing refused.
    ana.send("/history 50").await;
    let kept = said_until(&mut ana, "ana", "after").await;
    assert_eq!(kept[kept.len() - heard_there.len()..], heard_there[..]);
    assert_eq!(
        kept.iter().filter(|l| l.starts_with("burst ")).count(),
        SENT - refused
    );
}

/// Who `client`'s node says is in `room` (its `/users` answer).
async fn users(client: &mut Client, room: &str) -> String {
    client.send(&format!("/users {room}")).await;
    let users = client.expect(" here: ").await;
    let (_, here) = users.split_once(" here: ").unwrap();
    here.to_string()
}

// Two threads: the relay relays while the test waits, blocking, for a node to start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_who_quit_while_a_node_was_cut_off_for_long_is_gone_there_once_it_is_back() {
    let redis = Redis::start();
    let relay = Relay::to(&redis).await;
    let one = Node::start(&redis, "one");
    let two = Node::start_url(&relay.url, "two");
    let mut bob = two.text("bob").await;
    bob.send("/join #ops").await;
    bob.expect("#ops *** you joined").await;
    let mut fay = one.text("fay").await;
    crate::cluster_rooms::join_after(&mut fay, "#ops", "bob").await;
    bob.expect("#ops *** fay joined").await;
    assert_eq!(users(&mut bob, "#ops").await, "bob, fay");

    // Node two is cut off; fay quits on node one, which is told at once by Redis.
    relay.cut();
    bob.expect("*** cross-node delivery interrupted").await;
    fay.send("/quit").await;
    fay.until_closed().await;
    // Longer than node one remembers a departure to tell it again (twice
    // CLUSTER_NODE_TIMEOUT while Redis is reachable): only what it has now tells node two
    // that fay is gone.
    tokio::time::sleep(Duration::from_secs(11)).await;
    relay.restore();
    read_until_all(
        &mut bob,
        &[
            "*** cross-node delivery restored",
            "#ops *** fay left (quit)",
        ],
    )
    .await;
    assert_eq!(users(&mut bob, "#ops").await, "bob");
    bob.send("/nick fay").await;
    bob.expect("*** you are now known as fay").await;
}

/// While Redis is down a message is heard on its node at once but not acked: its ack
/// comes once Redis has it, after the node is back, as the other node hears it. An HTTP
/// post meanwhile is answered at once, without the number Redis would give it.
#[tokio::test]
async fn a_message_said_while_redis_is_down_is_acked_once_redis_has_it() {
    let mut redis = Redis::start();
    let (one, two) = (Node::start(&redis, "one"), Node::start(&redis, "two"));
    let mut carl = one.text("carl").await;
    let mut bob = two.text("bob").await;
    let mut ana = one.json("ana").await;
    carl.expect("ana joined").await;
    ana.send(r##"{"type":"say","room":"#lobby","text":"before","ref":"b"}"##)
        .await;
    bob.expect("#lobby <ana> before").await;
    let ack = ana.expect_json("ack").await;
    assert_eq!(ack["ref"], "b");

    redis.stop();
    let interrupted = ana.expect_json("cluster").await;
    assert_eq!(interrupted["state"], "interrupted");
    carl.expect("*** cross-node delivery interrupted").await;
    ana.send(r##"{"type":"say","room":"#lobby","text":"held","ref":"h"}"##)
        .await;
    // Heard on its node at once; no answer while Redis does not have it.
    carl.expect("#lobby <ana> held").await;
    if let Ok(Some(line)) = ana.next_within(Duration::from_secs(1)).await {
        panic!("answered while Redis was down: {line}");
    }
    // A post meanwhile is answered at once (held, not numbered by Redis yet).
    carl.send("/join #ops").await;
    carl.expect("#ops *** you joined").await;
    let asked = Instant::now();
    let reply = crate::http::post(one.http, "ops", &[], "posted while down").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let answer = reply.json();
    assert!(answer["id"].as_u64().is_some(), "{answer}");
    assert!(answer.get("seq").is_none(), "{answer}");
    assert!(
        asked.elapsed() < charla::limits::CLUSTER_POST_WAIT,
        "waited"
    );
    carl.expect("#ops >>> [http:127.0.0.1] posted while down")
        .await;

    redis.restart();
    let mut seen = Vec::new();
    let held = loop {
        let event: serde_json::Value = ana.json().await;
        if event["type"] == "ack" {
            assert_eq!(event["ref"], "h", "{event}");
            break event;
        }
        seen.push(event);
    };
    // Acked after the node is back, not before.
    assert!(
        seen.iter().any(|e| e["state"] == "restored"),
        "acked before the node was back: {seen:?}"
    );
    bob.expect("#lobby <ana> held").await;
    // Its ack carries the number its own node heard it under, which a resume there
    // starts from (the other node numbers it as Redis did: docs/cluster.md).
    ana.send(r##"{"type":"history","room":"#lobby"}"##).await;
    let history = ana.expect_json("history").await;
    let kept = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["text"] == "held")
        .unwrap_or_else(|| panic!("{history}"));
    assert!(held["seq"].is_u64(), "{held}");
    assert_eq!(held["seq"], kept["seq"], "{history}");
    // And only once.
    ana.send(r##"{"type":"say","room":"#lobby","text":"after","ref":"a"}"##)
        .await;
    loop {
        let event: serde_json::Value = ana.json().await;
        assert_ne!(event["ref"], "h", "answered twice: {event}");
        if event["ref"] == "a" {
            assert_eq!(event["type"], "ack", "{event}");
            break;
        }
    }
}

/// A node stopped before Redis is back takes what it held with it: its speaker is told
/// `unconfirmed`, and the operator is told in the node's log how much the others never had.
/// The room is joined during the outage: what is said after a join is held (and heard on
/// its node) at once, not once the join's presence failed to reach Redis, seconds later.
#[tokio::test]
async fn a_node_stopped_during_an_outage_logs_what_it_held_and_never_relayed() {
    let mut redis = Redis::start();
    let mut one = Node::start(&redis, "one");
    let mut ana = one.json("ana").await;
    redis.stop();
    ana.expect(r#""state":"interrupted""#).await;
    ana.send(r##"{"type":"join","room":"#held"}"##).await;
    ana.expect(r#""type":"join""#).await;
    ana.send(r##"{"type":"say","room":"#held","text":"held here","ref":"h"}"##)
        .await;
    ana.send(r##"{"type":"topic","room":"#held","text":"set meanwhile","ref":"t"}"##)
        .await;
    ana.expect("set meanwhile").await;

    let pid = nix::unistd::Pid::from_raw(one.process.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let unconfirmed = ana.expect(r#""code":"unconfirmed""#).await;
    // Not "history shows them once kept": the other nodes never will.
    assert!(
        unconfirmed.contains("1 of them, said while the other nodes were out of reach")
            && unconfirmed.contains("the other nodes will never have them")
            && !unconfirmed.contains("history shows"),
        "{unconfirmed}"
    );
    one.process.exit_status();
    let logged = one.process.stderr();
    assert!(
        logged.contains("stopping while Redis is out of reach")
            && logged.contains("held=1 changes="),
        "{logged}"
    );
}
