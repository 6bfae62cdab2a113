//! A node's start and its place in the cluster: started on a Redis address that does not
//! answer as Redis does, it exits within moments, saying what is wrong with the address,
//! rather than trying silently for most of a minute and then printing what the Redis
//! client library saw; one whose number another node took while it was cut off stops.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Stdio;

use crate::binary::{self, Binary};
use crate::cluster::{Node, Redis};

/// `charla serve --cluster URL` on a port of its own; returns its failure's stderr,
/// after checking that it exited (within the tests' patience) and never listened.
fn refused_start(url: &str) -> String {
    refused_start_named(url, "n1")
}

/// [`refused_start`] with `--node-name NAME`.
fn refused_start_named(url: &str, name: &str) -> String {
    let mut node = Binary::start(binary::command(&[
        "serve",
        "--listen",
        "tcp://127.0.0.1:0",
        "--cluster",
        url,
        "--node-name",
        name,
    ]));
    let status = node.exit_status();
    let stderr = node.stderr();
    assert!(!status.success(), "{status}; stderr: {stderr}");
    let stdout: Vec<String> = node.stdout.try_iter().collect();
    assert!(stdout.is_empty(), "printed {stdout:?}; stderr: {stderr}");
    stderr
}

#[test]
fn a_node_whose_redis_is_paused_exits_saying_it_did_not_answer() {
    let redis = Redis::start();
    redis.signal("STOP");
    let stderr = refused_start(&redis.url());
    redis.signal("CONT");
    assert!(
        stderr.contains(&format!(
            "Redis at {} did not answer within 5s",
            redis.url()
        )),
        "{stderr}"
    );
}

#[test]
fn a_node_pointed_at_another_service_exits_saying_it_is_not_redis() {
    // An HTTP server's answer to whatever it is sent.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut request = [0; 1024];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let stderr = refused_start(&url);
    assert!(
        stderr.contains(&format!(
            "{url} answered, but not as Redis does: is that the address of a Redis server?"
        )),
        "{stderr}"
    );
}

#[test]
fn a_node_given_a_url_that_is_not_redis_s_says_what_to_give() {
    let stderr = refused_start("http://127.0.0.1:6379");
    assert!(
        stderr.contains("--cluster http://127.0.0.1:6379 is not a Redis URL")
            && stderr.contains("give redis://HOST:PORT"),
        "{stderr}"
    );
}

#[test]
fn the_password_in_the_cluster_url_is_never_logged_nor_printed() {
    let redis = Redis::start();
    let set = redis.command(&["CONFIG", "SET", "requirepass", "s3cret-pass"]);
    assert!(set.starts_with("+OK"), "{set}");
    let port = redis.url().rsplit(':').next().unwrap().to_string();
    let url = format!("redis://:s3cret-pass@127.0.0.1:{port}");
    let mut node = Node::start_url(&url, "n1");
    node.process.child.kill().unwrap();
    let logged = node.process.stderr();
    assert!(
        logged.contains(&format!(
            "joined the cluster node=1 name=n1 url=\"redis://:***@127.0.0.1:{port}\""
        )),
        "{logged}"
    );
    assert!(!logged.contains("s3cret-pass"), "{logged}");

    let refused = refused_start(&format!("redis://:wrong-pass@127.0.0.1:{port}"));
    assert!(
        refused.contains(&format!(
            "Redis at redis://:***@127.0.0.1:{port} refused the password"
        )),
        "{refused}"
    );
    assert!(!refused.contains("wrong-pass"), "{refused}");
}

#[test]
fn charla_account_add_on_a_redis_that_does_not_answer_says_so() {
    let redis = Redis::start();
    redis.signal("STOP");
    let mut command = binary::command(&["account", "add", "dora", "--cluster", &redis.url()]);
    command.stdin(Stdio::piped());
    let mut add = Binary::start(command);
    add.stdin
        .take()
        .unwrap()
        .write_all(b"correct-horse-battery\n")
        .unwrap();
    let status = add.exit_status();
    let stderr = add.stderr();
    redis.signal("CONT");
    assert!(!status.success(), "{status}; stderr: {stderr}");
    assert!(
        stderr.contains(&format!(
            "Redis at {} did not answer within 5s",
            redis.url()
        )),
        "{stderr}"
    );
}

/// A node cut off while Redis lost its keys finds its number taken by a node started
/// meanwhile: it stops, saying so, rather than be a second node under one number (the
/// others then mixed both nodes' users up: each run's heartbeat made them forget the
/// other's). The newcomer keeps the number, its key, and its users.
#[tokio::test]
async fn a_node_whose_number_was_taken_while_it_was_cut_off_stops_saying_so() {
    let redis = Redis::start();
    let mut one = Node::start(&redis, "one");
    let mut ana = one.json("ana").await;
    one.freeze();
    // Redis loses its keys (restarted empty) while one is cut off; two starts then and
    // takes the lowest free number, one's.
    let flushed = redis.command(&["FLUSHALL"]);
    assert!(flushed.starts_with("+OK"), "{flushed}");
    let two = Node::start(&redis, "two");
    let mut bob = two.text("bob").await;
    let holder = redis.command(&["GET", "charla:node:1"]);

    one.thaw();
    ana.expect(r#""type":"bye","reason":"server_shutdown""#)
        .await;
    let status = one.process.exit_status();
    let stderr = one.process.stderr();
    assert!(!status.success(), "{status}; stderr: {stderr}");
    assert!(
        stderr.contains("another node took this node's number in the cluster while this one was cut off from Redis; start it again to take a free one"),
        "{stderr}"
    );
    // The number is still two's, and so is bob.
    assert_eq!(redis.command(&["GET", "charla:node:1"]), holder);
    bob.send("/whois bob").await;
    bob.expect("*** bob is in #lobby").await;
}

#[test]
fn a_node_without_the_password_redis_wants_or_with_a_wrong_one_says_which() {
    let redis = Redis::start();
    let set = redis.command(&["CONFIG", "SET", "requirepass", "s3cret-pass"]);
    assert!(set.starts_with("+OK"), "{set}");
    let stderr = refused_start(&redis.url());
    assert!(
        stderr
            .contains("wants a password (its requirepass): give it as redis://:PASSWORD@HOST:PORT"),
        "{stderr}"
    );
    let port = redis.url().rsplit(':').next().unwrap().to_string();
    let stderr = refused_start(&format!("redis://:wrong-pass@127.0.0.1:{port}"));
    assert!(
        stderr.contains(&format!(
            "Redis at redis://:***@127.0.0.1:{port} refused the password the URL gives"
        )),
        "{stderr}"
    );
}

#[test]
fn a_node_name_that_users_could_not_read_on_one_line_is_refused() {
    for name in ["two words", "a\nfake line", &"x".repeat(64)] {
        let stderr = refused_start_named("redis://127.0.0.1:1", name);
        assert!(
            stderr.contains("a node name is 1 to 63 bytes of ASCII letters, digits, '.' and '-'"),
            "{name:?}: {stderr}"
        );
    }
}
