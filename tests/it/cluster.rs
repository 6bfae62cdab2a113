//! Several charla nodes on one Redis (`--cluster`): a real redis-server on a free loopback
//! port, real `charla serve` processes, real clients on each.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use crate::binary::{self, Binary};
use crate::support::{Client, PATIENCE};

/// A redis-server of the test's own, without persistence, killed when the test ends.
pub(crate) struct Redis {
    child: Option<Child>,
    port: u16,
    /// Its working directory, where [`Redis::stop_saved`] leaves what it held.
    dir: tempfile::TempDir,
}

impl Redis {
    pub(crate) fn start() -> Redis {
        loop {
            let mut redis = Redis {
                child: None,
                port: redis_port(),
                dir: tempfile::tempdir().unwrap(),
            };
            // Another Redis (of a test run in another process) may have taken the port
            // since it was found free: this one then exits, and another port is tried.
            if redis.launch() {
                return redis;
            }
        }
    }

    /// Starts the server (again) on its port, empty (or with what [`Redis::stop_saved`]
    /// saved), and waits until it answers.
    pub(crate) fn restart(&mut self) {
        assert!(
            self.launch(),
            "port {} was taken while this test's Redis was stopped",
            self.port
        );
    }

    /// Starts the server on its port and waits until it answers, as this test's own (a
    /// Redis of another test on the port would have the test's nodes share it, each
    /// taking the other's node numbers and nicks); false when it could not listen there.
    fn launch(&mut self) -> bool {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/test.sh installs it)");
        let pid = child.id();
        self.child = Some(child);
        let deadline = Instant::now() + PATIENCE;
        loop {
            let child = self.child.as_mut().expect("just started");
            if child.try_wait().unwrap().is_some() {
                self.child = None;
                return false;
            }
            if self.answers_as(pid) {
                return true;
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the Redis on the port answers, and is process `pid`.
    fn answers_as(&self, pid: u32) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let mut info = String::new();
        stream.write_all(b"INFO server\r\nQUIT\r\n").is_ok()
            && stream.read_to_string(&mut info).is_ok()
            && info.lines().any(|l| l == format!("process_id:{pid}"))
    }

    /// Runs one command, the way redis-cli would, and returns the raw reply.
    pub(crate) fn command(&self, args: &[&str]) -> String {
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut reply = [0; 256];
        let n = stream.read(&mut reply).unwrap();
        String::from_utf8_lossy(&reply[..n]).into_owned()
    }

    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Saves what the server holds to its directory, then stops it: restarted, it has
    /// its keys, as a Redis with persistence does.
    pub(crate) fn stop_saved(&mut self) {
        let saved = self.command(&["SAVE"]);
        assert!(saved.starts_with("+OK"), "SAVE answered {saved:?}");
        self.stop();
    }

    /// Pauses (`STOP`) or resumes (`CONT`) the server: connections stay open and
    /// unanswered, as with a Redis that froze.
    pub(crate) fn signal(&self, which: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let status = Command::new("kill")
            .args([&format!("-{which}"), &pid])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{which} {pid}");
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

/// Where the test Redis servers listen: below the kernel's ephemeral ports (Linux's
/// `ip_local_port_range` starts at 32768), which `bind` to port 0 and outgoing
/// connections take. A port found by binding port 0 and let go could be handed to another
/// test's Redis while this one is stopped to be started again on it, or before it starts:
/// the two tests' nodes would then share one Redis, taking each other's node numbers and
/// nicks.
const REDIS_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// The next port of [`REDIS_PORTS`] to try, counted across the tests of this process;
/// started at a place of the process's own, so that test runs side by side try apart.
static REDIS_NEXT: AtomicU16 = AtomicU16::new(0);

/// A port of [`REDIS_PORTS`] free now, none this process handed out before.
fn redis_port() -> u16 {
    let span = REDIS_PORTS.end - REDIS_PORTS.start;
    let start = (std::process::id() % u32::from(span)) as u16;
    loop {
        let n = REDIS_NEXT.fetch_add(1, Ordering::Relaxed);
        let port = REDIS_PORTS.start + start.wrapping_add(n) % span;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A `charla serve --cluster` process with a text, an IRC, an HTTP and a UDP listener.
/// Should the test fail, what the node logged is printed with the failure.
pub(crate) struct Node {
    name: String,
    pub(crate) process: Binary,
    pub(crate) tcp: SocketAddr,
    pub(crate) irc: SocketAddr,
    pub(crate) http: SocketAddr,
    pub(crate) udp: SocketAddr,
}

impl Node {
    pub(crate) fn start(redis: &Redis, name: &str) -> Node {
        Node::start_with(redis, name, &[])
    }

    /// [`Node::start`] with `more` arguments to `charla serve` (`--oper NAME:HASH`).
    pub(crate) fn start_with(redis: &Redis, name: &str, more: &[&str]) -> Node {
        Node::start_at(&redis.url(), name, more)
    }

    /// [`Node::start`] with Redis at `url` (through a relay, say).
    pub(crate) fn start_url(url: &str, name: &str) -> Node {
        Node::start_at(url, name, &[])
    }

    fn start_at(url: &str, name: &str, more: &[&str]) -> Node {
        let mut args = vec![
            "serve",
            "--listen",
            "tcp://127.0.0.1:0",
            "--listen",
            "irc://127.0.0.1:0",
            "--listen",
            "http://127.0.0.1:0",
            "--listen",
            "udp://127.0.0.1:0",
            "--cluster",
            url,
            "--node-name",
            name,
        ];
        args.extend_from_slice(more);
        // Flood control off so tests can type fast, unless `more` sets it.
        if !more.contains(&"--flood-rate") {
            args.extend(["--flood-rate", "0"]);
        }
        let process = Binary::start(binary::command(&args));
        let addr = |scheme: &str| -> SocketAddr {
            let line = process
                .stdout
                .recv_timeout(PATIENCE)
                .expect("a `listening on` line");
            let rest = line
                .strip_prefix("listening on ")
                .and_then(|a| a.strip_prefix(scheme))
                .unwrap_or_else(|| panic!("unexpected output {line:?}"));
            rest.parse().unwrap()
        };
        let tcp = addr("tcp://");
        let irc = addr("irc://");
        let http = addr("http://");
        let udp = addr("udp://");
        Node {
            name: name.to_string(),
            process,
            tcp,
            irc,
            http,
            udp,
        }
    }

    /// Pauses the node's process (SIGSTOP), cut off from Redis and its users as a machine
    /// that froze is, and waits until every thread of it stopped: a thread in the middle of
    /// a system call finishes it first, so a command to Redis it was writing (a heartbeat
    /// that keeps its number) could otherwise reach Redis after what the test does next.
    pub(crate) fn freeze(&self) {
        let pid = self.process.child.id();
        self.signal(nix::sys::signal::Signal::SIGSTOP);
        let deadline = Instant::now() + PATIENCE;
        while !all_threads_stopped(pid) {
            assert!(
                Instant::now() < deadline,
                "node {} never stopped",
                self.name
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Resumes the node [`Node::freeze`] paused (SIGCONT).
    pub(crate) fn thaw(&self) {
        self.signal(nix::sys::signal::Signal::SIGCONT);
    }

    fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.process.child.id() as i32);
        nix::sys::signal::kill(pid, signal).unwrap();
    }

    /// A text client that took `nick`.
    pub(crate) async fn text(&self, nick: &str) -> Client {
        let mut c = Client::tcp(self.tcp).await;
        c.expect("you joined").await;
        c.send(&format!("/nick {nick}")).await;
        c.expect(&format!("*** you are now known as {nick}")).await;
        c
    }

    /// A JSON client registered as `nick`, in #lobby (which its hello names).
    pub(crate) async fn json(&self, nick: &str) -> Client {
        let mut c = Client::tcp(self.tcp).await;
        c.expect("*** Welcome").await;
        c.send(&format!(
            r##"{{"type":"hello","nick":"{nick}","rooms":["#lobby"]}}"##
        ))
        .await;
        let welcome = c.expect_json("welcome").await;
        assert_eq!(welcome["nick"], nick);
        c
    }

    /// An IRC client registered as `nick`, in #lobby (an IRC session starts in no room),
    /// read up to the end of its names.
    pub(crate) async fn irc(&self, nick: &str) -> Client {
        let mut c = Client::tcp(self.irc).await;
        let register = format!("NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\nJOIN #lobby\r\n");
        c.send_raw(register.as_bytes()).await;
        c.expect(" 366 ").await;
        c
    }

    /// [`Node::irc`] with the IRCv3 capabilities `caps` (space-separated) acknowledged
    /// first.
    pub(crate) async fn irc_with(&self, nick: &str, caps: &str) -> Client {
        let mut c = Client::tcp(self.irc).await;
        c.send_raw(format!("CAP REQ :{caps}\r\n").as_bytes()).await;
        c.expect(" ACK ").await;
        let register =
            format!("NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\nCAP END\r\nJOIN #lobby\r\n");
        c.send_raw(register.as_bytes()).await;
        c.expect(" 366 ").await;
        c
    }
}

/// Whether every thread of process `pid` is stopped (state `T` in its `stat`).
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|task| {
        std::fs::read_to_string(task.path().join("stat")).is_ok_and(|stat| {
            // The state follows the command name, which is in parentheses.
            stat.rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('T') || rest.starts_with('t'))
        })
    })
}

impl Drop for Node {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.process.child.kill();
            let _ = self.process.child.wait();
            eprintln!(
                "--- node {} logged ---\n{}",
                self.name,
                self.process.stderr()
            );
        }
    }
}

/// Sends `line` until `client` reads a line containing `needle` in answer: for what
/// another node learns a moment later (who is in a room), asked again rather than
/// waited for a fixed time.
pub(crate) async fn ask_until(client: &mut Client, line: &str, needle: &str) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        client.send(line).await;
        let answer = client.next().await.expect("an answer");
        if answer.contains(needle) {
            return answer;
        }
        assert!(
            Instant::now() < deadline,
            "{line:?} never answered {needle:?}; last {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Asks `client`'s node who is in `room` until it names `nick` among the members: for
/// what it learns of another node a moment later. Only the answer itself is read as one
/// (a line that merely names `nick`, such as a late rename notice, is not).
pub(crate) async fn member_until(client: &mut Client, room: &str, nick: &str) {
    let deadline = Instant::now() + PATIENCE;
    let members = format!("{room} *** ");
    loop {
        client.send(&format!("/users {room}")).await;
        let answer = loop {
            let line = client.next().await.expect("an answer");
            if (line.starts_with(&members) && line.contains(" here: ")) || line.starts_with("ERROR")
            {
                break line;
            }
        };
        let named = answer
            .split_once(" here: ")
            .is_some_and(|(_, nicks)| nicks.split(", ").any(|n| n == nick));
        if named {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{room} never had {nick} on this node's list; last {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads `client` until a line containing each of `needles` has arrived, in any order;
/// returns where each was first seen (for the order of those that must keep one).
pub(crate) async fn read_until_all(client: &mut Client, needles: &[&str]) -> Vec<usize> {
    let mut seen: Vec<Option<usize>> = vec![None; needles.len()];
    let mut lines = Vec::new();
    while seen.iter().any(Option::is_none) {
        let Ok(Some(line)) = client.next_within(PATIENCE).await else {
            panic!("not all of {needles:?} arrived; saw {lines:#?}");
        };
        for (needle, at) in needles.iter().zip(&mut seen) {
            if at.is_none() && line.contains(needle) {
                *at = Some(lines.len());
            }
        }
        lines.push(line);
    }
    seen.into_iter().flatten().collect()
}

/// A newcomer on `node` is refused `nick` once the node has heard who holds it elsewhere.
async fn refused_once_known(node: &Node, nick: &str) {
    let mut newcomer = Client::tcp(node.tcp).await;
    newcomer.expect("you joined").await;
    ask_until(&mut newcomer, &format!("/nick {nick}"), "ERROR nick_taken").await;
}

#[tokio::test]
async fn a_room_is_one_room_across_nodes_and_protocols() {
    let redis = Redis::start();
    let (one, two, three) = (
        Node::start(&redis, "one"),
        Node::start(&redis, "two"),
        Node::start(&redis, "three"),
    );
    let mut ana = one.text("ana").await;
    let mut bob = two.json("bob").await;
    ana.expect("#lobby *** bob joined").await;
    let mut cy = three.irc("cy").await;
    ana.expect("#lobby *** cy joined").await;
    bob.expect(r#""nick":"cy""#).await;

    ana.send("hola desde uno").await;
    let said = bob.expect_json("message").await;
    assert_eq!(said["text"], "hola desde uno");
    assert_eq!(said["from"], "ana");
    cy.expect(":ana!ana@charla PRIVMSG #lobby :hola desde uno")
        .await;
    cy.send_raw(b"PRIVMSG #lobby :y desde tres\r\n").await;
    ana.expect("#lobby <cy> y desde tres").await;
    let said_too = bob.expect_json("message").await;
    assert_eq!(said_too["from"], "cy");
    // One order, numbered by the room: what came later has the higher number.
    assert!(
        said_too["seq"].as_u64() > said["seq"].as_u64(),
        "{said} {said_too}"
    );

    // Everyone's room list and member list is the cluster's.
    ask_until(&mut ana, "/users #lobby", "3 here: ana, bob, cy").await;
    cy.send_raw(b"NAMES #lobby\r\n").await;
    let names = cy.expect(" 353 ").await;
    for nick in ["ana", "bob", "cy"] {
        assert!(names.contains(nick), "{names}");
    }

    // Nick changes, joins and leaves are heard on every node.
    ana.send("/nick anita").await;
    cy.expect(":ana!ana@charla NICK :anita").await;
    // bob is in before cy comes, so cy's join is an event bob hears (had cy been first,
    // bob would find cy among the members its own join lists instead).
    bob.send(r##"{"type":"join","room":"#ops"}"##).await;
    bob.expect(r##""room":"#ops","nick":"bob","you":true"##)
        .await;
    cy.send_raw(b"JOIN #ops\r\n").await;
    bob.expect(r#""nick":"cy""#).await;
    cy.send_raw(b"PRIVMSG #ops :only in ops\r\n").await;
    let ops = bob.expect_json("message").await;
    assert_eq!(ops["room"], "#ops");
    cy.send_raw(b"PART #ops :bye\r\n").await;
    let left = bob.expect_json("leave").await;
    assert_eq!(left["nick"], "cy");
    assert_eq!(left["message"], "bye");

    // The speaker is acked once Redis has numbered and kept the message, and it was
    // heard on the other nodes in that number. The ack carries Redis's number, not the
    // one bob's node proposed: Redis is made to number past it.
    assert_eq!(
        redis.command(&["SET", "charla:seq:#lobby", "100"]),
        "+OK\r\n"
    );
    bob.send(r##"{"type":"say","room":"#lobby","text":"kept","ref":"m-1"}"##)
        .await;
    let ack = bob.expect_json("ack").await;
    assert_eq!(
        (ack["ref"].as_str(), ack["seq"].as_u64()),
        (Some("m-1"), Some(101)),
        "{ack}"
    );
    cy.expect(":bob!bob@charla PRIVMSG #lobby :kept").await;
    bob.send(r##"{"type":"history","room":"#lobby","limit":1}"##)
        .await;
    let history = bob.expect_json("history").await;
    assert_eq!(history["messages"][0]["seq"], 101, "{history}");
    drop((one, two, three));
}

#[tokio::test]
async fn a_nick_is_unique_and_private_messages_cross_nodes() {
    let redis = Redis::start();
    let (one, two) = (Node::start(&redis, "one"), Node::start(&redis, "two"));
    let mut ana = one.text("ana").await;
    let mut bob = two.text("bob").await;
    ana.expect("is now known as bob").await;
    // Node two knows of ana once it has heard her presence; then the nick is refused.
    refused_once_known(&two, "ANA").await;

    bob.send("/msg ana psst, from two").await;
    ana.expect("(private) <bob> psst, from two").await;
    ana.send("/msg bob got it").await;
    bob.expect("(private) <ana> got it").await;
    bob.send("/msg nobody hello?").await;
    bob.expect("ERROR no_such_nick").await;
}

/// Whether `client`'s `/nick NICK` was refused (or else accepted), by its node.
async fn refused(client: &mut Client, nick: &str) -> bool {
    let accepted = format!("*** you are now known as {nick}");
    loop {
        let line = client.next().await.expect("an answer");
        if line.starts_with("ERROR nick_taken") {
            return true;
        }
        if line == accepted {
            return false;
        }
    }
}

/// A test's Redis is its own: one started on a port another Redis holds is not taken
/// for it (the two tests' nodes would share one Redis, as a test's nodes once did with
/// another's, taking node numbers and nicks from each other), and a test's Redis restarted
/// after its port was taken says so.
#[test]
fn a_redis_on_a_port_another_holds_is_not_the_tests_own() {
    let held = Redis::start();
    let mut second = Redis {
        child: None,
        port: held.port,
        dir: tempfile::tempdir().unwrap(),
    };
    assert!(!second.launch(), "started on port {} as if free", held.port);
    assert!(second.child.is_none());
    // A Redis started anew is on another port, and answers as itself.
    let other = Redis::start();
    assert_ne!(other.port, held.port);
    assert!(other.command(&["PING"]).starts_with("+PONG"));
    // Stopped, and its port taken meanwhile: restarting it fails rather than share.
    let mut stopped = Redis::start();
    stopped.stop();
    let mut taker = Redis {
        child: None,
        port: stopped.port,
        dir: tempfile::tempdir().unwrap(),
    };
    assert!(taker.launch());
    let restarted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| stopped.restart()));
    assert!(
        restarted.is_err(),
        "restarted on a port another Redis holds"
    );
}

#[tokio::test]
async fn two_nodes_taking_one_nick_at_once_leave_exactly_one_holder() {
    let redis = Redis::start();
    let (one, two) = (Node::start(&redis, "one"), Node::start(&redis, "two"));
    for nick in ["zed", "yak", "vox", "jay", "kit"] {
        let mut a = Client::tcp(one.tcp).await;
        let mut b = Client::tcp(two.tcp).await;
        a.expect("you joined").await;
        b.expect("you joined").await;
        let wanted = format!("/nick {nick}");
        tokio::join!(a.send(&wanted), b.send(&wanted));
        // Each node answers from what it knows: both may accept; Redis decides.
        let taken_here = [refused(&mut a, nick).await, refused(&mut b, nick).await];
        let key = format!("charla:nick:{nick}");
        let deadline = Instant::now() + PATIENCE;
        let holder = loop {
            let reply = redis.command(&["GET", &key]);
            if let Some(value) = reply.lines().nth(1) {
                break value.split(':').next().unwrap().to_string();
            }
            assert!(Instant::now() < deadline, "{nick} never claimed: {reply:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let (winner, loser, loser_refused) = match holder.as_str() {
            "1" => (&mut a, &mut b, taken_here[1]),
            "2" => (&mut b, &mut a, taken_here[0]),
            other => panic!("{nick} held by node {other}"),
        };
        if !loser_refused {
            loser
                .expect(&format!(
                    "{nick} was taken on another node at the same moment"
                ))
                .await;
            let renamed = loser.expect("you are now known as").await;
            assert!(renamed.contains("guest-"), "{renamed}");
        }
        // The winner keeps it, and hears of the loser's new nick a moment later.
        let deadline = Instant::now() + PATIENCE;
        loop {
            winner.send("/users #lobby").await;
            let users = winner.expect("here:").await;
            if users.matches(nick).count() == 1 {
                break;
            }
            assert!(Instant::now() < deadline, "{users}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test]
async fn a_node_killed_leaves_and_frees_its_nicks_and_bad_data_is_skipped() {
    let redis = Redis::start();
    let (one, mut two) = (Node::start(&redis, "one"), Node::start(&redis, "two"));
    let mut ana = one.text("ana").await;
    let mut bob = two.text("bob").await;
    ana.expect("is now known as bob").await;
    // Foreign and malformed publications on the cluster's channel are logged and skipped.
    for junk in [
        &["PUBLISH", "charla:bus", "hello"][..],
        &["PUBLISH", "charla:bus", "1\n{}"],
        &["PUBLISH", "charla:bus", "0\n{\"t\":\"said\",\"node\":9}"],
        &[
            "PUBLISH",
            "charla:bus",
            "0\n{\"t\":\"present\",\"node\":9,\"session\":1,\"nick\":\"9x\",\"rooms\":[]}",
        ],
        &[
            "PUBLISH",
            "charla:bus",
            "0\n{\"t\":\"present\",\"node\":9,\"session\":1,\"nick\":\"ana\",\"rooms\":[],\"invisible\":\"yes\"}",
        ],
        &[
            "PUBLISH",
            "charla:bus",
            "0\n{\"t\":\"active\",\"node\":9,\"spoke\":[[\"x\",1]]}",
        ],
        &[
            "PUBLISH",
            "charla:bus",
            "0\n{\"t\":\"active\",\"node\":9,\"spoke\":[[1,1],[99999999999,18446744073709551615]]}",
        ],
        &["SET", "charla:nick:eve", "garbage"],
    ] {
        assert!(!redis.command(junk).starts_with('-'), "{junk:?}");
    }
    bob.send("still here").await;
    ana.expect("#lobby <bob> still here").await;

    two.process.child.kill().unwrap(); // SIGKILL: no goodbye
    two.process.child.wait().unwrap();
    ana.expect("#lobby *** bob left (connection lost)").await;
    let mut again = one.text("eve").await;
    again.send("/nick bob").await;
    again.expect("you are now known as bob").await;
    drop(bob);
}

#[tokio::test]
async fn a_node_shut_down_says_its_users_left_for_the_shutdown_not_as_lost() {
    let redis = Redis::start();
    let (one, mut two) = (Node::start(&redis, "one"), Node::start(&redis, "two"));
    let mut ana = one.text("ana").await;
    let mut cy = one.irc("cy").await;
    let _bob = two.text("bob").await;
    ask_until(&mut ana, "/users #lobby", "bob").await;
    ask_until(&mut cy, "NAMES #lobby", "bob").await;

    // SIGTERM: the node says goodbye, and its users leave as a lone server's do.
    let pid = nix::unistd::Pid::from_raw(two.process.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    two.process.child.wait().unwrap();
    ana.expect("#lobby *** bob left (server shutdown)").await;
    assert_eq!(
        cy.expect(" QUIT ").await,
        ":bob!bob@charla QUIT :server shutdown\r"
    );
}

/// A node's users leave with it all at once: an IRC client sharing two rooms with one of
/// them reads one QUIT, as for a quit on its own node.
#[tokio::test]
async fn a_node_gone_is_one_quit_per_user_for_an_irc_client_sharing_two_rooms() {
    let redis = Redis::start();
    let (one, mut two) = (Node::start(&redis, "one"), Node::start(&redis, "two"));
    let mut cy = one.irc("cy").await;
    cy.send("JOIN #dev").await;
    cy.expect(" 366 cy #dev ").await;
    let mut bob = two.text("bob").await;
    bob.send("/join #dev").await;
    bob.expect("#dev *** you joined").await;
    ask_until(&mut cy, "NAMES #dev", "bob").await;

    let pid = nix::unistd::Pid::from_raw(two.process.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    two.process.child.wait().unwrap();
    assert_eq!(
        cy.expect(" QUIT ").await,
        ":bob!bob@charla QUIT :server shutdown\r"
    );
    cy.send("PING :after").await;
    loop {
        let line = cy.next().await.expect("a line");
        assert!(!line.contains(" QUIT "), "a second QUIT: {line}");
        if line.ends_with(":after\r") {
            break;
        }
    }
}

#[tokio::test]
async fn redis_stopped_and_started_again_interrupts_then_restores_delivery() {
    let mut redis = Redis::start();
    let (one, two) = (Node::start(&redis, "one"), Node::start(&redis, "two"));
    let mut ana = one.text("ana").await;
    let mut bob = two.text("bob").await;
    ana.expect("is now known as bob").await;
    let mut cy = one.text("cy").await;
    bob.expect("is now known as cy").await;

    redis.stop();
    ana.expect("*** cross-node delivery interrupted").await;
    bob.expect("*** cross-node delivery interrupted").await;
    cy.expect("*** cross-node delivery interrupted").await;
    // Local users are still served meanwhile; what they say is held for the others.
    ana.send("said in the outage").await;
    cy.expect("#lobby <ana> said in the outage").await;
    ana.send("/me still talking").await;
    cy.expect("#lobby * ana still talking").await;
    bob.send("and on two").await;

    redis.restart();
    // Once back, what was said on each node during the outage reaches the other, in the
    // order it was said there (before or after the node says it is back: it may have
    // read it from Redis first), and is not heard twice where it was said.
    let restored = "*** cross-node delivery restored";
    let heard = read_until_all(
        &mut bob,
        &[restored, "<ana> said in the outage", "* ana still talking"],
    )
    .await;
    assert!(heard[1] < heard[2], "{heard:?}");
    read_until_all(&mut ana, &[restored, "#lobby <bob> and on two"]).await;
    cy.expect("#lobby <bob> and on two").await;
    // Presence and nicks are rebuilt from the live nodes.
    ask_until(&mut bob, "/users #lobby", "3 here: ana, bob, cy").await;
    refused_once_known(&two, "ana").await;
    bob.send("back across").await;
    ana.expect("#lobby <bob> back across").await;
    cy.expect("#lobby <bob> back across").await;
}

#[tokio::test]
async fn past_what_an_outage_holds_the_others_get_a_gap_and_the_speaker_is_told() {
    let mut redis = Redis::start();
    let (one, two) = (Node::start(&redis, "one"), Node::start(&redis, "two"));
    let mut ana = one.text("ana").await;
    let mut bob = two.text("bob").await;
    ana.expect("is now known as bob").await;
    let mut bot = two.json("bot").await;
    let mut cy = two.irc("cy").await;
    ana.expect("#lobby *** cy joined").await;
    ana.send("before").await;
    bob.expect("#lobby <ana> before").await;
    cy.expect("PRIVMSG #lobby :before").await;

    redis.stop();
    ana.expect("*** cross-node delivery interrupted").await;
    bob.expect("*** cross-node delivery interrupted").await;
    let held = charla::limits::CLUSTER_OUTAGE_HELD;
    for n in 1..=held + 3 {
        ana.send(&format!("outage line {n}")).await;
    }
    // Node one has taken every line (its outage queue is full) before Redis is back. Ten
    // thousand lines are a burst a loaded machine may take more than one PATIENCE over.
    ana.send("/users #lobby").await;
    loop {
        match ana.next_within(PATIENCE * 6).await {
            Ok(Some(line)) if line.contains("here:") => break,
            Ok(Some(_)) => {}
            other => panic!("no answer to /users after the burst: {other:?}"),
        }
    }

    // Node two's JSON and IRC clients read as it all arrives, not to fall behind.
    let bot = tokio::spawn(async move {
        loop {
            // Node two may have missed some of the held lines too, past the backlog: a
            // `gap` no longer kept first.
            let gap = bot.expect_json("gap").await;
            if gap["reason"] != "not_kept" {
                return gap;
            }
        }
    });
    let cy = tokio::spawn(async move {
        cy.expect("3 messages said on another node during a cluster outage")
            .await
    });
    redis.restart();
    // The held lines arrive in order (all of them live, or the backlog's last ones after
    // a gap when node two hears them late); then the three past the bound are a gap.
    let last = format!("#lobby <ana> outage line {held}");
    loop {
        let line = bob.next().await.expect("a line");
        if line == last {
            break;
        }
    }
    let gap = bob.expect("#lobby *** messages").await;
    let numbers: Vec<u64> = gap
        .split(' ')
        .filter_map(|word| word.parse().ok())
        .collect();
    // Said what it is: not messages no longer kept, but messages never relayed.
    assert!(
        gap.ends_with("were said on another node during a cluster outage and not relayed here")
            && numbers[1] - numbers[0] == 2,
        "{gap}"
    );
    // JSON's `gap` says so in `reason`, IRC's in a server notice.
    let (gap, notice) = (bot.await.unwrap(), cy.await.unwrap());
    assert_eq!(gap["reason"], "not_relayed", "{gap}");
    assert_eq!(gap["to"].as_u64().unwrap(), numbers[1], "{gap}");
    assert_eq!(gap["from"].as_u64().unwrap(), numbers[0], "{gap}");
    assert!(
        notice.starts_with(":charla NOTICE #lobby :*** 3 messages"),
        "{notice}"
    );
    // Each of the three is answered so, instead of an ack.
    for _ in 0..3 {
        let lost = ana.expect("ERROR not_stored: message ").await;
        assert!(lost.contains("was heard on this node only"), "{lost}");
    }
    // Nothing past the bound was relayed.
    bob.send("/history 1").await;
    let last = bob.expect("outage line").await;
    assert!(last.ends_with(&format!("outage line {held}")), "{last}");
}

#[tokio::test]
async fn feeds_on_one_node_post_into_the_clusters_rooms() {
    let redis = Redis::start();
    let (one, two) = (Node::start(&redis, "one"), Node::start(&redis, "two"));
    let mut bob = two.text("bob").await;
    bob.send("/join #alerts").await;
    bob.expect("#alerts *** you joined").await;
    let mut cy = two.json("cy").await;
    cy.send(r##"{"type":"join","room":"#ops"}"##).await;
    cy.expect_json("join").await;

    // A UDP alert on node one (whose feed opened #alerts) reaches #alerts on node two.
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(b"disk full\n", one.udp)
        .unwrap();
    bob.expect("#alerts !!! [udp:127.0.0.1] disk full").await;

    // An HTTP post on node one into #ops, whose only member is on node two: taken once
    // node one knows of cy there, and heard by cy with its details.
    let deadline = Instant::now() + PATIENCE;
    let reply = loop {
        let reply =
            crate::http::post(one.http, "ops", &[("Priority", "high")], "backup done").await;
        if reply.status == 200 || Instant::now() > deadline {
            break reply;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(reply.status, 200, "{}", reply.body);
    let id = reply.json()["id"].as_u64().expect("an id");
    let alert = cy.expect_json("alert").await;
    assert_eq!(alert["id"], id);
    assert_eq!(alert["room"], "#ops");
    assert_eq!(alert["text"], "backup done");
    assert_eq!(alert["source"], "http:127.0.0.1");
    assert!(alert["seq"].as_u64().is_some(), "{alert}");
    // Its poster is answered the number Redis gave it, which every node has.
    assert_eq!(reply.json()["seq"], alert["seq"], "{}", reply.body);

    // Both are in the rooms' history on node two, for whoever joins later.
    let mut dee = two.text("dee").await;
    dee.send("/join #alerts").await;
    dee.expect("#alerts *** you joined").await;
    dee.send("/history 5").await;
    dee.expect("!!! [udp:127.0.0.1] disk full").await;
}

#[tokio::test]
async fn history_and_resume_are_the_rooms_on_every_node() {
    let redis = Redis::start();
    let (one, two) = (Node::start(&redis, "one"), Node::start(&redis, "two"));
    let mut bob = two.json("bob").await;
    let mut ana = one.text("ana").await;
    ana.send("/join #ops").await;
    ana.expect("#ops *** you joined").await;
    for n in 1..=3 {
        ana.send(&format!("line {n}")).await;
    }
    // Redis gives node two everything in one order: once bob hears this in #lobby,
    // node two has kept the lines said in #ops before it, though nobody there was in #ops.
    ana.send("/join #lobby").await;
    ana.expect("#lobby *** you joined").await;
    ana.send("done").await;
    loop {
        let said = bob.expect_json("message").await;
        if said["text"] == "done" {
            break;
        }
    }
    bob.send(r##"{"type":"join","room":"#ops"}"##).await;
    let history = bob.expect_json("history").await;
    let seqs: Vec<u64> = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs.len(), 3, "{history}");
    // A client that saw the first resumes on node two with exactly the rest.
    let mut cy = Client::tcp(two.tcp).await;
    cy.expect("*** Welcome").await;
    let hello = format!(
        r##"{{"type":"hello","nick":"cy","rooms":["#ops"],"since":{{"#ops":{}}}}}"##,
        seqs[0]
    );
    cy.send(&hello).await;
    let replay = cy.expect_json("history").await;
    let texts: Vec<&str> = replay["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["line 2", "line 3"], "{replay}");
}

/// `CLUSTER_BACKLOG_TTL`, in ms.
const BACKLOG_TTL_MS: i64 = 30 * 24 * 60 * 60 * 1000;

/// How long Redis keeps `key` yet, in ms (`-1`: for ever; `-2`: it has no such key).
fn pttl(redis: &Redis, key: &str) -> i64 {
    let reply = redis.command(&["PTTL", key]);
    reply
        .trim()
        .trim_start_matches(':')
        .parse()
        .unwrap_or_else(|_| panic!("{reply:?}"))
}

/// Waits until the backlog `key` holds `count` entries.
async fn backlog_until(redis: &Redis, key: &str, count: usize) {
    let deadline = Instant::now() + PATIENCE;
    while redis.command(&["LLEN", key]) != format!(":{count}\r\n") {
        assert!(Instant::now() < deadline, "{key} never held {count}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_rooms_backlog_in_redis_is_kept_for_a_while_after_each_message_then_goes() {
    let redis = Redis::start();
    let one = Node::start(&redis, "one");
    let mut ana = one.text("ana").await;
    ana.send("/join #ops").await;
    ana.expect("#ops *** you joined").await;
    ana.send("line 1").await;
    let key = "charla:log:#ops";
    backlog_until(&redis, key, 1).await;
    // Kept for CLUSTER_BACKLOG_TTL from its last message (less the moments since).
    let left = pttl(&redis, key);
    assert!(
        left > BACKLOG_TTL_MS - 60_000 && left <= BACKLOG_TTL_MS,
        "{left}"
    );

    // Nearly gone: the next message keeps it whole again.
    redis.command(&["PEXPIRE", key, "60000"]);
    ana.send("line 2").await;
    backlog_until(&redis, key, 2).await;
    let left = pttl(&redis, key);
    assert!(left > BACKLOG_TTL_MS - 60_000, "{left}");

    // Gone (the room unused that long): its numbers go on where they were, in a backlog
    // begun again.
    redis.command(&["PEXPIRE", key, "1"]);
    let deadline = Instant::now() + PATIENCE;
    while pttl(&redis, key) != -2 {
        assert!(Instant::now() < deadline, "{key} never went");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(redis.command(&["GET", "charla:seq:#ops"]), "$1\r\n2\r\n");
    ana.send("line 3").await;
    backlog_until(&redis, key, 1).await;
    let kept = redis.command(&["LRANGE", key, "0", "-1"]);
    assert!(kept.contains("3\n{") && kept.contains("line 3"), "{kept:?}");
}

#[tokio::test]
async fn a_node_started_later_has_the_rooms_earlier_history_from_redis() {
    let redis = Redis::start();
    let one = Node::start(&redis, "one");
    let mut ana = one.text("ana").await;
    ana.send("/join #ops").await;
    ana.expect("#ops *** you joined").await;
    for n in 1..=3 {
        ana.send(&format!("line {n}")).await;
    }
    // All three are in the room's backlog in Redis before node two starts, so it can have
    // heard them from nowhere else.
    let deadline = Instant::now() + PATIENCE;
    while redis.command(&["LLEN", "charla:log:#ops"]) != ":3\r\n" {
        assert!(Instant::now() < deadline, "the backlog never held 3");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let two = Node::start(&redis, "two");
    let mut bob = two.text("bob").await;
    bob.send("/join #ops").await;
    bob.expect("#ops *** you joined").await;
    ask_until(&mut bob, "/history 3", "<ana> line 1").await;
    bob.expect("<ana> line 2").await;
    bob.expect("<ana> line 3").await;
}
