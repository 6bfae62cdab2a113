//! A message in flight when Redis fails: its node's pipeline breaks either before Redis
//! ran it or after (the answer lost). Either way, once Redis is reachable again, every
//! node hears it exactly once, a node started later reads it once from the room's
//! backlog, and its speaker has an answer. A relay between node one and a real
//! redis-server breaks the pipeline carrying the message, deterministically.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use crate::cluster::{Node, Redis};
use crate::support::Client;

/// What the relay does to the bytes from the node that carry its needle.
#[derive(Clone, Copy, PartialEq)]
enum Trap {
    /// Dropped, and every connection cut: Redis never runs them.
    Swallowed,
    /// Passed on, and every connection cut once Redis has answered, before the answer (or
    /// what Redis published meanwhile) reaches the node: Redis ran them, the node heard
    /// nothing of it.
    AnswerLost,
    /// Passed on, and the connection that carried them cut once Redis has answered,
    /// before the answer reaches the node; the node's subscription stays, and hears the
    /// message Redis published.
    AnswerLostSubscribed,
    /// Dropped, and everything the node sends on that connection after them, until the
    /// test cuts every connection ([`Traps::cut`]): Redis never runs them, and the node
    /// hears no answer meanwhile (its pipelines stay in flight, what it says next waits).
    Stalled,
}

#[derive(Default)]
struct Traps {
    armed: Option<(Trap, Vec<u8>)>,
    /// Nothing from Redis reaches the node (until the cut).
    mute: bool,
    links: Vec<AbortHandle>,
}

impl Traps {
    /// Drops every connection; new ones are relayed as before.
    fn cut(&mut self) {
        for link in self.links.drain(..) {
            link.abort();
        }
        self.mute = false;
    }
}

/// A TCP relay to Redis that springs its trap on the first bytes from the node that
/// contain a needle.
struct InFlight {
    url: String,
    traps: Arc<Mutex<Traps>>,
}

impl InFlight {
    async fn to(redis: &Redis) -> InFlight {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("redis://{}", listener.local_addr().unwrap());
        let target = redis.url().trim_start_matches("redis://").to_string();
        let traps: Arc<Mutex<Traps>> = Arc::default();
        let traps_ = traps.clone();
        tokio::spawn(async move {
            while let Ok((node, _)) = listener.accept().await {
                let Ok(redis) = TcpStream::connect(&target).await else {
                    continue;
                };
                let link = tokio::spawn(relay(node, redis, traps_.clone()));
                traps_.lock().unwrap().links.push(link.abort_handle());
            }
        });
        InFlight { url, traps }
    }

    fn arm(&self, trap: Trap, needle: &str) {
        self.traps.lock().unwrap().armed = Some((trap, needle.as_bytes().to_vec()));
    }

    /// Drops every connection; new ones are relayed as before.
    fn cut(&self) {
        self.traps.lock().unwrap().cut();
    }
}

/// One connection from the node to Redis, both ways, until either side closes or the
/// relay cuts it.
async fn relay(node: TcpStream, redis: TcpStream, traps: Arc<Mutex<Traps>>) {
    let (mut from_node, mut to_node) = node.into_split();
    let (mut from_redis, mut to_redis) = redis.into_split();
    let answered = Arc::new(Notify::new());
    let sprang_here = AtomicBool::new(false);
    let up = async {
        let mut buf = vec![0; 64 * 1024];
        loop {
            let n = from_node.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                return;
            }
            let chunk = &buf[..n];
            let sprung = {
                let mut traps = traps.lock().unwrap();
                let hit = traps.armed.as_ref().is_some_and(|(_, needle)| {
                    chunk.windows(needle.len()).any(|w| w == needle.as_slice())
                });
                let sprung = hit.then(|| traps.armed.take().unwrap().0);
                if sprung == Some(Trap::AnswerLost) {
                    traps.mute = true;
                }
                sprung
            };
            match sprung {
                Some(Trap::Swallowed) => {
                    traps.lock().unwrap().cut();
                    return;
                }
                Some(Trap::Stalled) => {
                    // Read and dropped until the connection is cut.
                    while from_node.read(&mut buf).await.unwrap_or(0) > 0 {}
                    return;
                }
                Some(trap) => {
                    sprang_here.store(true, Ordering::SeqCst);
                    to_redis.write_all(chunk).await.unwrap();
                    // Redis answers a pipeline once it has run all it read.
                    answered.notified().await;
                    match trap {
                        Trap::AnswerLostSubscribed => return,
                        _ => {
                            traps.lock().unwrap().cut();
                            return;
                        }
                    }
                }
                None => {
                    if to_redis.write_all(chunk).await.is_err() {
                        return;
                    }
                }
            }
        }
    };
    let down = async {
        let mut buf = vec![0; 64 * 1024];
        loop {
            let n = from_redis.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                return;
            }
            // What this connection sprang the trap with is answered: the answer goes no
            // further, nor (muted) does anything else from Redis.
            if sprang_here.load(Ordering::SeqCst) {
                answered.notify_one();
                continue;
            }
            if traps.lock().unwrap().mute {
                continue;
            }
            if to_node.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    // The first to end (the trap sprung, or a side closed) ends the connection.
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}

/// Room `#lobby`'s backlog in Redis, as its raw reply.
fn backlog(redis: &Redis) -> String {
    let addr = redis.url().trim_start_matches("redis://").to_string();
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let key = "charla:log:#lobby";
    let request = format!(
        "*4\r\n$6\r\nLRANGE\r\n${}\r\n{key}\r\n$1\r\n0\r\n$2\r\n-1\r\n*1\r\n$4\r\nQUIT\r\n",
        key.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    reply
}

/// How many of the lines `client` reads up to one containing `last` contain `needle`.
async fn count_until(client: &mut Client, needle: &str, last: &str) -> usize {
    let mut count = 0;
    loop {
        let line = client.next().await.expect("a line");
        if line.contains(last) {
            return count;
        }
        count += usize::from(line.contains(needle));
    }
}

/// Reads `ana` (JSON) until `done` holds for an event; the answers it read meanwhile (to
/// what carried a `ref`) are added to `answers`, as `ref` and kind.
async fn answers_until(
    ana: &mut Client,
    answers: &mut Vec<(String, String)>,
    done: impl Fn(&Value) -> bool,
) {
    loop {
        let event: Value = ana.json().await;
        if let Some(reference) = event["ref"].as_str() {
            let kind = format!("{}:{}", event["type"], event["code"]);
            answers.push((reference.to_string(), kind));
        }
        if done(&event) {
            return;
        }
    }
}

/// ana (JSON) and carl on node one, which reaches Redis through the relay; bob on node
/// two. ana says a line whose pipeline `trap` breaks; once node one is back, every
/// member has it once, and so does a node started afterwards.
async fn said_in_flight(trap: Trap) {
    let redis = Redis::start();
    let relay = InFlight::to(&redis).await;
    let one = Node::start_url(&relay.url, "one");
    let two = Node::start(&redis, "two");
    let mut carl = one.text("carl").await;
    let mut bob = two.text("bob").await;
    let mut ana = one.json("ana").await;
    let say = |text: &str, reference: &str| {
        format!(r##"{{"type":"say","room":"#lobby","text":"{text}","ref":"{reference}"}}"##)
    };
    ana.send(&say("before", "r0")).await;
    bob.expect("#lobby <ana> before").await;
    carl.expect("#lobby <ana> before").await;

    relay.arm(trap, "said in flight");
    ana.send(&say("said in flight", "r1")).await;
    // Node one finds Redis out of reach, and back.
    let mut answers = Vec::new();
    answers_until(&mut ana, &mut answers, |e| e["state"] == "interrupted").await;
    answers_until(&mut ana, &mut answers, |e| e["state"] == "restored").await;
    ana.send(&say("after", "r2")).await;

    let (heard, last) = ("<ana> said in flight", "<ana> after");
    assert_eq!(count_until(&mut bob, heard, last).await, 1, "on node two");
    assert_eq!(count_until(&mut carl, heard, last).await, 1, "on node one");
    // Its speaker is acked once (it is kept on its node), and told nothing else of it.
    answers_until(&mut ana, &mut answers, |e| e["ref"] == "r2").await;
    let of_it: Vec<&String> = answers
        .iter()
        .filter(|(r, _)| r == "r1")
        .map(|(_, kind)| kind)
        .collect();
    assert_eq!(of_it, [r#""ack":null"#], "{answers:?}");
    // Redis has it once: the copy it ran before failing, or (never run) the one published
    // late.
    let kept = backlog(&redis);
    assert_eq!(kept.matches("said in flight").count(), 1, "{kept}");
    let late = kept
        .lines()
        .find(|l| l.contains("said in flight"))
        .unwrap()
        .contains(r#""late":true"#);
    assert_eq!(late, trap == Trap::Swallowed, "{kept}");
    // Every history has it once, and a node started now reads it once from the backlog.
    let three = Node::start(&redis, "three");
    let mut dan = three.text("dan").await;
    for client in [&mut bob, &mut carl, &mut dan] {
        client.send("/history 10").await;
        assert_eq!(count_until(client, heard, last).await, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_redis_never_ran_as_its_pipeline_broke_is_heard_once_everywhere() {
    said_in_flight(Trap::Swallowed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_redis_ran_before_its_pipeline_broke_is_heard_once_everywhere() {
    said_in_flight(Trap::AnswerLost).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_whose_answer_was_lost_but_whose_copy_came_back_is_heard_once_everywhere() {
    said_in_flight(Trap::AnswerLostSubscribed).await;
}

/// How many messages ana says while her node's pipelines stall: more pipelines than a
/// node keeps in flight (`CLUSTER_IN_FLIGHT`, 16), so that the last wait in its queue
/// when Redis fails.
const STALLED: usize = 24;

/// ana says line 1, whose pipeline stalls, then the rest one at a time (each its own
/// pipeline, in flight or queued behind), until the relay cuts her node off. Redis ran
/// none of them; once back, the other node hears them all in the order said, as her own
/// node did, and so does a node started later; ana gets each ack once, and only once
/// Redis has the line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_said_after_one_whose_pipeline_failed_do_not_overtake_it() {
    let redis = Redis::start();
    let relay = InFlight::to(&redis).await;
    let one = Node::start_url(&relay.url, "one");
    let two = Node::start(&redis, "two");
    let mut carl = one.text("carl").await;
    let mut bob = two.text("bob").await;
    let mut ana = one.json("ana").await;
    let say = |n: usize| {
        format!(r##"{{"type":"say","room":"#lobby","text":"said {n} of it","ref":"r{n}"}}"##)
    };
    ana.send(&say(0)).await;
    bob.expect("#lobby <ana> said 0 of it").await;
    carl.expect("#lobby <ana> said 0 of it").await;
    let mut answers = Vec::new();
    answers_until(&mut ana, &mut answers, |e| e["ref"] == "r0").await;

    relay.arm(Trap::Stalled, "said 1 of it");
    for n in 1..=STALLED {
        ana.send(&say(n)).await;
        tokio::time::sleep(std::time::Duration::from_millis(15)).await;
    }
    relay.cut();
    answers_until(&mut ana, &mut answers, |e| e["state"] == "interrupted").await;
    answers_until(&mut ana, &mut answers, |e| e["state"] == "restored").await;
    // Nothing is acked before Redis has it.
    let early: Vec<&(String, String)> = answers.iter().filter(|(r, _)| r != "r0").collect();
    assert!(
        early.is_empty(),
        "answered before Redis had them: {early:?}"
    );
    ana.send(&say(STALLED + 1)).await;

    // Which of ana's lines each line is, in a client's lines or Redis's backlog.
    let order = |lines: Vec<String>| -> Vec<usize> {
        lines
            .iter()
            .filter_map(|l| l.split("said ").nth(1)?.split_once(" of it"))
            .map(|(n, _)| n.parse().unwrap())
            .collect()
    };
    let all: Vec<usize> = (1..=STALLED + 1).collect();
    let last = format!("<ana> said {} of it", STALLED + 1);
    assert_eq!(
        order(lines_until(&mut bob, &last).await),
        all,
        "on node two"
    );
    assert_eq!(
        order(lines_until(&mut carl, &last).await),
        all,
        "on node one"
    );
    // Each line acked once, in the order said, once Redis had it.
    answers_until(&mut ana, &mut answers, |e| {
        e["ref"] == format!("r{}", STALLED + 1)
    })
    .await;
    let acked: Vec<&str> = answers.iter().skip(1).map(|(r, _)| r.as_str()).collect();
    let expected: Vec<String> = (1..=STALLED + 1).map(|n| format!("r{n}")).collect();
    assert_eq!(acked, expected, "{answers:?}");
    assert!(
        answers.iter().all(|(_, kind)| kind == r#""ack":null"#),
        "{answers:?}"
    );
    // Redis's backlog, and a node started now, have them in that order too.
    let kept = backlog(&redis);
    let in_backlog = order(kept.lines().map(str::to_string).collect());
    assert_eq!(in_backlog, (0..=STALLED + 1).collect::<Vec<_>>(), "{kept}");
    let three = Node::start(&redis, "three");
    let mut dan = three.text("dan").await;
    dan.send("/history 40").await;
    let history = order(lines_until(&mut dan, &last).await);
    assert_eq!(
        history,
        (0..=STALLED + 1).collect::<Vec<_>>(),
        "on node three"
    );
}

/// The lines `client` reads up to and including one containing `last`.
async fn lines_until(client: &mut Client, last: &str) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let line = client.next().await.expect("a line");
        let done = line.contains(last);
        lines.push(line);
        if done {
            return lines;
        }
    }
}
