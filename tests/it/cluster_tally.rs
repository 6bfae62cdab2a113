//! A node's copy of another's users made whole again without waiting for an event: each
//! node tells its tally every `CLUSTER_TALLY_EVERY`, and a node whose copy differs asks
//! for a round. Publications are lost on purpose by a relay between a node and Redis that
//! drops what it is told to; a real redis-server, real `charla serve --cluster` processes.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::cluster::{Node, Redis};
use crate::support::Client;

/// `CLUSTER_TALLY_EVERY`.
const TALLY_EVERY: Duration = Duration::from_secs(5);

/// The length of the RESP2 frame `buf` begins with, if it holds all of it.
fn frame(buf: &[u8]) -> Option<usize> {
    let line = buf.windows(2).position(|w| w == b"\r\n")?;
    let head = std::str::from_utf8(&buf[1..line]).ok()?;
    let after = line + 2;
    match buf.first()? {
        b'+' | b'-' | b':' => Some(after),
        b'$' => {
            let len: i64 = head.parse().ok()?;
            if len < 0 {
                return Some(after);
            }
            let end = after + len as usize + 2;
            (buf.len() >= end).then_some(end)
        }
        b'*' => {
            let count: i64 = head.parse().ok()?;
            let mut at = after;
            for _ in 0..count.max(0) {
                at += frame(&buf[at..])?;
            }
            Some(at)
        }
        other => panic!("not RESP2: {:?}", *other as char),
    }
}

/// A TCP relay to Redis that drops, from what Redis sends the node, the first
/// publication containing each needle it is given ([`Dropping::drop_next`]).
struct Dropping {
    url: String,
    needles: Arc<Mutex<Vec<String>>>,
    dropped: Arc<Mutex<Vec<String>>>,
}

impl Dropping {
    async fn to(redis: &Redis) -> Dropping {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("redis://{}", listener.local_addr().unwrap());
        let target = redis.url().trim_start_matches("redis://").to_string();
        let needles: Arc<Mutex<Vec<String>>> = Arc::default();
        let dropped: Arc<Mutex<Vec<String>>> = Arc::default();
        let (needles_, dropped_) = (needles.clone(), dropped.clone());
        tokio::spawn(async move {
            while let Ok((node, _)) = listener.accept().await {
                let Ok(redis) = TcpStream::connect(&target).await else {
                    continue;
                };
                let (mut node_read, mut node_write) = node.into_split();
                let (mut redis_read, mut redis_write) = redis.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut node_read, &mut redis_write).await;
                });
                let (needles, dropped) = (needles_.clone(), dropped_.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = vec![0; 64 * 1024];
                    loop {
                        let Ok(n) = redis_read.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let mut out = Vec::new();
                        while let Some(end) = frame(&buf) {
                            let whole: Vec<u8> = buf.drain(..end).collect();
                            let text = String::from_utf8_lossy(&whole).into_owned();
                            let publication = text.starts_with("*3\r\n$7\r\nmessage\r\n");
                            let mut needles = needles.lock().unwrap();
                            let found = needles.iter().position(|n| text.contains(n.as_str()));
                            match found.filter(|_| publication) {
                                Some(at) => {
                                    needles.remove(at);
                                    dropped.lock().unwrap().push(text);
                                }
                                None => out.extend_from_slice(&whole),
                            }
                        }
                        if node_write.write_all(&out).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Dropping {
            url,
            needles,
            dropped,
        }
    }

    /// The next publication containing `needle` is not relayed to the node.
    fn drop_next(&self, needle: &str) {
        self.needles.lock().unwrap().push(needle.to_string());
    }

    /// How many publications were dropped so far.
    fn dropped(&self) -> usize {
        self.dropped.lock().unwrap().len()
    }
}

/// Tries `/nick NICK` until the node takes it; returns how many times it was refused.
async fn take_nick_until(client: &mut Client, nick: &str, deadline: Instant) -> usize {
    let mut refused = 0;
    loop {
        client.send(&format!("/nick {nick}")).await;
        let answer = client.next().await.expect("an answer");
        if answer.ends_with(&format!("known as {nick}")) {
            return refused;
        }
        assert!(answer.starts_with("ERROR nick_taken"), "{answer}");
        refused += 1;
        assert!(
            Instant::now() < deadline,
            "{nick} still held on this node: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// Two threads: the relay relays while the test waits, blocking, for a node to start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_whose_end_was_lost_and_a_round_not_heard_whole_is_gone_within_the_tallies() {
    let redis = Redis::start();
    let relay = Dropping::to(&redis).await;
    let one = Node::start(&redis, "one");
    let two = Node::start_url(&relay.url, "two");
    let mut bob = two.text("bob").await;
    let mut fay = one.text("fay").await;
    bob.expect("is now known as fay").await;

    // Node two loses fay's end (node one is node 1: the first to start), and the start of
    // the next round node one tells: that round is not heard whole, and forgets nothing.
    relay.drop_next(r#""t":"absent","node":1,"#);
    relay.drop_next(r#""t":"telling","node":1,"#);
    fay.send("/quit").await;
    fay.until_closed().await;
    bob.expect("#lobby *** fay left (quit)").await;
    let deadline = Instant::now() + Duration::from_secs(2);
    while relay.dropped() == 0 {
        assert!(Instant::now() < deadline, "fay's end was never relayed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let quit = Instant::now();
    bob.send("/nick fay").await;
    let held = bob.next().await.expect("an answer");
    assert!(held.starts_with("ERROR nick_taken"), "{held}");

    // Node one's tallies differ from what node two knows: node two asks for a round,
    // whose start it loses, then for another, heard whole. fay is gone there within two
    // tallies of her end (and the time their rounds take), with no hello nor outage.
    let deadline = quit + 3 * TALLY_EVERY;
    take_nick_until(&mut bob, "fay", deadline).await;
    assert_eq!(relay.dropped(), 2, "the round's start was never dropped");
}

// Two threads: the relay relays while the test waits, blocking, for a node to start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_away_message_whose_change_was_lost_is_made_whole_within_the_tallies() {
    let redis = Redis::start();
    let relay = Dropping::to(&redis).await;
    let one = Node::start(&redis, "one");
    let two = Node::start_url(&relay.url, "two");
    let mut bob = two.text("bob").await;
    let mut fay = one.text("fay").await;
    bob.expect("is now known as fay").await;

    // Node two loses the one publication saying fay went away (her presence, changed):
    // its copy of her still has the same nick and rooms, and no away message.
    relay.drop_next(r#""away":"at lunch""#);
    fay.send("/away at lunch").await;
    fay.expect("*** you are marked away: at lunch").await;
    let deadline = Instant::now() + Duration::from_secs(2);
    while relay.dropped() == 0 {
        assert!(Instant::now() < deadline, "fay's away was never relayed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let lost = Instant::now();

    // Node one's tallies cover her profile: node two asks for a round, and has it within
    // two tallies (and the time the round takes), with no other change of hers.
    let deadline = lost + 3 * TALLY_EVERY;
    loop {
        bob.send("/whois fay").await;
        let line = bob.expect("*** fay is in").await;
        if line.contains("away: at lunch") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still not away on node two: {line}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(relay.dropped(), 1);
}

/// Every publication on the cluster's channel from now on, as a real subscriber reads
/// them (each payload, `SEQ\nJSON`).
async fn listen(redis: &Redis) -> Arc<Mutex<Vec<String>>> {
    let addr = redis.url().trim_start_matches("redis://").to_string();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"*2\r\n$9\r\nSUBSCRIBE\r\n$10\r\ncharla:bus\r\n")
        .await
        .unwrap();
    let heard: Arc<Mutex<Vec<String>>> = Arc::default();
    let heard_ = heard.clone();
    tokio::spawn(async move {
        let mut buf = Vec::new();
        let mut chunk = vec![0; 64 * 1024];
        while let Ok(n) = stream.read(&mut chunk).await {
            if n == 0 {
                return;
            }
            buf.extend_from_slice(&chunk[..n]);
            while let Some(end) = frame(&buf) {
                let whole: Vec<u8> = buf.drain(..end).collect();
                let text = String::from_utf8_lossy(&whole).into_owned();
                // `*3 $7 message $10 charla:bus $N PAYLOAD`: the payload is the last line.
                if let Some(rest) = text.strip_prefix("*3\r\n$7\r\nmessage\r\n") {
                    let payload = rest.splitn(4, "\r\n").nth(3).unwrap_or_default();
                    heard_.lock().unwrap().push(payload.trim_end().to_string());
                }
            }
        }
    });
    // Subscribed once a publication of its own comes back.
    let deadline = Instant::now() + Duration::from_secs(5);
    while heard.lock().unwrap().is_empty() {
        redis.command(&["PUBLISH", "charla:bus", "subscribed"]);
        assert!(Instant::now() < deadline, "never subscribed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    heard
}

/// Waits until `heard` holds a publication containing every one of `needles`; returns
/// what was heard up to it and forgets it.
async fn heard_until(heard: &Mutex<Vec<String>>, needles: &[&str]) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        {
            let mut heard = heard.lock().unwrap();
            let found = heard
                .iter()
                .position(|p| needles.iter().all(|n| p.contains(n)));
            if let Some(at) = found {
                return heard.drain(..=at).collect();
            }
        }
        assert!(Instant::now() < deadline, "never heard {needles:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_round_goes_in_batches_unless_an_older_node_is_live_which_reads_one_a_session() {
    let redis = Redis::start();
    let one = Node::start(&redis, "one");
    let mut clients = Vec::new();
    for nick in ["ana", "bob", "cy"] {
        clients.push(one.text(nick).await);
    }
    let heard = listen(&redis).await;

    // Node two's hello: node one names its three sessions in one publication.
    let _two = Node::start(&redis, "two");
    heard_until(&heard, &[r#""t":"hello","node":2,"#, r#""presence":2"#]).await;
    let round = heard_until(&heard, &[r#""t":"told","node":1,"#, r#""sessions":3"#]).await;
    let batches: Vec<&String> = round
        .iter()
        .filter(|p| p.contains(r#""t":"presents","node":1,"#))
        .collect();
    assert_eq!(batches.len(), 1, "{round:#?}");
    for nick in ["ana", "bob", "cy"] {
        assert!(
            batches[0].contains(&format!(r#""nick":"{nick}""#)),
            "{round:#?}"
        );
    }
    assert!(!round.iter().any(|p| p.contains(r#""t":"present","#)));
    // Tallies go out too.
    heard_until(&heard, &[r#""t":"tally","node":1,"#, r#""sessions":3"#]).await;

    // An older node (its heartbeat says nothing of the forms it reads) is live: the next
    // round is one presence a session, which it reads, and no tally is sent any more.
    let old_beat = r#"0
{"t":"beat","node":9,"run":"0123456789abcdef"}"#;
    let beating = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let (beating_, url) = (beating.clone(), redis.url());
    let beats = std::thread::spawn(move || {
        let client = redis_client(&url);
        while beating_.load(std::sync::atomic::Ordering::SeqCst) {
            client(&["PUBLISH", "charla:bus", old_beat]);
            std::thread::sleep(Duration::from_millis(500));
        }
    });
    heard_until(&heard, &[r#""t":"beat","node":9,"#]).await;
    // Heard by now by the nodes too (one order); a tally queued before it may follow.
    tokio::time::sleep(Duration::from_millis(200)).await;
    heard.lock().unwrap().clear();
    let _three = Node::start(&redis, "three");
    heard_until(&heard, &[r#""t":"hello","node":3,"#]).await;
    let round = heard_until(&heard, &[r#""t":"told","node":1,"#, r#""sessions":3"#]).await;
    let singles = round
        .iter()
        .filter(|p| p.contains(r#""t":"present","node":1,"#) && p.contains(r#""round":"#))
        .count();
    assert_eq!(singles, 3, "{round:#?}");
    assert!(!round.iter().any(|p| p.contains(r#""t":"presents","#)));
    tokio::time::sleep(TALLY_EVERY + Duration::from_secs(1)).await;
    let later = heard.lock().unwrap().clone();
    assert!(
        !later.iter().any(|p| p.contains(r#""t":"tally","#)),
        "{later:#?}"
    );
    beating.store(false, std::sync::atomic::Ordering::SeqCst);
    beats.join().unwrap();
}

/// Runs commands on the Redis at `url` from a plain thread.
fn redis_client(url: &str) -> impl Fn(&[&str]) {
    let addr = url.trim_start_matches("redis://").to_string();
    move |args: &[&str]| {
        use std::io::{Read, Write};
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut reply = [0; 64];
        let _ = stream.read(&mut reply).unwrap();
    }
}
