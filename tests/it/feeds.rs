//! Feeds over real sockets and real files: the file watcher, alarm checks and UDP alerts,
//! each seen by subscribers connected over TCP or a Unix socket, in text and in JSON.

use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

use charla::feeds::udp::IngestOptions;
use charla::feeds::{self, CheckSpec, FeedOptions, WatchSpec};
use charla::hub::{Hub, RoomName};
use charla::limits::Limits;
use charla::server::{self, Datagrams, ListenAddr};
use tokio_util::sync::CancellationToken;

use crate::support::{self, Client, QUIET};

/// A server in this process with feeds, on system-chosen ports; stopped when dropped.
pub(crate) struct FeedServer {
    addrs: Vec<ListenAddr>,
    pub(crate) udp: Vec<SocketAddr>,
    shutdown: CancellationToken,
    _dir: tempfile::TempDir,
}

impl FeedServer {
    /// Listens on `specs` (`unix://NAME` in a fresh directory), on `udp` if given, and runs
    /// the feeds `options` asks for.
    pub(crate) async fn start(
        specs: &[&str],
        udp: Option<IngestOptions>,
        options: FeedOptions,
    ) -> FeedServer {
        let dir = tempfile::tempdir().unwrap();
        let addrs = support::listen_addrs(specs, dir.path());
        let bound = server::bind(&addrs).unwrap();
        let addrs = bound.iter().map(|b| b.local_addr()).collect();
        let mut datagrams = Datagrams::default();
        if let Some(options) = udp {
            datagrams.sockets = vec![server::bind_udp("127.0.0.1:0".parse().unwrap()).unwrap()];
            datagrams.options = options;
        }
        let udp = datagrams.sockets.iter().map(|s| s.local_addr()).collect();
        let limits = Limits {
            flood_rate: 0,
            ..Limits::default()
        };
        let shutdown = CancellationToken::new();
        let hub = Hub::new(&limits);
        feeds::start(&hub, &options, shutdown.clone()).unwrap();
        tokio::spawn(server::run_with(
            hub,
            bound,
            datagrams,
            limits,
            shutdown.clone(),
        ));
        FeedServer {
            addrs,
            udp,
            shutdown,
            _dir: dir,
        }
    }

    pub(crate) fn tcp(&self) -> SocketAddr {
        self.addrs
            .iter()
            .find_map(|a| match a {
                ListenAddr::Tcp(sa) => Some(*sa),
                _ => None,
            })
            .expect("a TCP listener")
    }

    pub(crate) fn http(&self) -> SocketAddr {
        support::first_http(&self.addrs)
    }

    pub(crate) fn irc(&self) -> SocketAddr {
        support::first_irc(&self.addrs)
    }

    fn unix(&self) -> PathBuf {
        self.addrs
            .iter()
            .find_map(|a| match a {
                ListenAddr::Unix(p) => Some(p.clone()),
                _ => None,
            })
            .expect("a Unix listener")
    }

    /// A text client over TCP in `room` (joined unless it is #lobby), greeting read up to
    /// its own join line.
    pub(crate) async fn client_in(&self, room: &str) -> Client {
        let mut c = Client::tcp(self.tcp()).await;
        c.expect("*** Welcome to charla").await;
        if room != "#lobby" {
            // Typed at once, as a person may: in #lobby first, then in `room`.
            c.send(&format!("/join {room}")).await;
        }
        c.expect("#lobby *** you joined").await;
        if room != "#lobby" {
            c.expect(&format!("{room} *** you joined")).await;
        }
        c
    }
}

impl Drop for FeedServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn room(name: &str) -> RoomName {
    RoomName::parse(name).unwrap()
}

fn watching(path: &Path, room_name: &str) -> FeedOptions {
    FeedOptions {
        watches: vec![WatchSpec {
            path: path.to_path_buf(),
            room: room(room_name),
        }],
        ..FeedOptions::default()
    }
}

// ---- File watcher -----------------------------------------------------------------------------

/// The seed's net-watcher: subscribers over TCP and a Unix socket are told what is
/// watched, then get exactly one notice per edit, however the file is edited.
#[tokio::test(flavor = "multi_thread")]
async fn a_watched_file_edited_three_ways_gives_one_notice_each() {
    let files = tempfile::tempdir().unwrap();
    let target = files.path().join("target.txt");
    std::fs::write(&target, "one\n").unwrap();
    let shown = target.display().to_string();
    let server = FeedServer::start(
        &["tcp://127.0.0.1:0", "unix://w.sock"],
        None,
        watching(&target, "#lobby"),
    )
    .await;

    let mut over_tcp = Client::tcp(server.tcp()).await;
    greeted_with_status(
        &mut over_tcp,
        format!("#lobby --- [watch] now watching {shown} for changes"),
    )
    .await;
    let mut over_unix = Client::unix(&server.unix()).await;
    greeted_with_status(
        &mut over_unix,
        format!("#lobby --- [watch] now watching {shown} for changes"),
    )
    .await;
    // The first sees the second arrive; then nothing else is pending.
    over_tcp.expect("joined").await;

    // 1. Append.
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&target)
        .unwrap();
    file.write_all(b"two\n").unwrap();
    drop(file);
    for c in [&mut over_tcp, &mut over_unix] {
        assert_eq!(
            c.line().await,
            format!("#lobby >>> [watch] {shown} was modified (8 bytes)")
        );
    }

    // 2. Truncate and write.
    std::fs::write(&target, "fresh\n").unwrap();
    for c in [&mut over_tcp, &mut over_unix] {
        assert_eq!(
            c.line().await,
            format!("#lobby >>> [watch] {shown} was modified (6 bytes)")
        );
    }

    // 3. An editor's atomic save: a new file renamed over the old one.
    let temporary = files.path().join(".target.txt.swp");
    std::fs::write(&temporary, "saved by an editor\n").unwrap();
    std::fs::rename(&temporary, &target).unwrap();
    for c in [&mut over_tcp, &mut over_unix] {
        assert_eq!(
            c.line().await,
            format!("#lobby >>> [watch] {shown} was replaced by a new file (19 bytes)")
        );
    }

    // One save, one notice: nothing follows.
    over_tcp.silent_for(QUIET).await;
    over_unix.silent_for(QUIET).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn json_subscribers_get_typed_notices_with_the_file_and_time() {
    let files = tempfile::tempdir().unwrap();
    let target = files.path().join("target.txt");
    std::fs::write(&target, "").unwrap();
    let server = FeedServer::start(&["tcp://127.0.0.1:0"], None, watching(&target, "#watch")).await;

    let mut bot = Client::tcp(server.tcp()).await;
    bot.expect("*** Welcome").await;
    bot.send(r##"{"type":"hello","nick":"bot","rooms":["#watch"]}"##)
        .await;
    let status = bot.expect_json("status").await;
    assert_eq!(status["room"], "#watch");
    assert_eq!(status["items"][0]["source"], "watch");
    assert_eq!(status["items"][0]["file"], target.display().to_string());
    assert_eq!(status["items"][0]["exists"], true);
    bot.expect_json("welcome").await;

    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    std::fs::write(&target, "x").unwrap();
    let notice = bot.json().await;
    assert_eq!(notice["type"], "notice", "{notice}");
    assert_eq!(notice["room"], "#watch");
    assert_eq!(notice["source"], "watch");
    assert_eq!(notice["file"], target.display().to_string());
    assert_eq!(notice["change"], "modified");
    assert_eq!(notice["size"], 1);
    let ts = notice["ts"].as_u64().expect("a timestamp");
    assert!(ts + 1000 >= before, "{ts} is long before {before}");
    assert!(notice["id"].as_u64().is_some());

    // A person cannot pass for the watcher: their line is a message from them.
    bot.send(r##"{"type":"say","room":"#watch","text":">>> [watch] fake"}"##)
        .await;
    bot.expect_json("ack").await;
    // A newcomer sees the notice and the message in history, each for what it is.
    let mut person = server.client_in("#lobby").await;
    person.send("/join #watch").await;
    let notice = person.line().await;
    assert!(
        notice.starts_with("#watch [history ")
            && notice.ends_with(&format!(
                "] >>> [watch] {} was modified (1 byte)",
                target.display()
            )),
        "{notice:?}"
    );
    let typed = person.line().await;
    assert!(typed.ends_with("] <bot> >>> [watch] fake"), "{typed:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_and_recreating_a_watched_file_is_followed() {
    let files = tempfile::tempdir().unwrap();
    let target = files.path().join("target.txt");
    std::fs::write(&target, "x").unwrap();
    let shown = target.display().to_string();
    let server = FeedServer::start(&["tcp://127.0.0.1:0"], None, watching(&target, "#watch")).await;
    let mut c = server.client_in("#watch").await;
    c.expect("now watching").await;

    std::fs::remove_file(&target).unwrap();
    assert_eq!(
        c.line().await,
        format!("#watch >>> [watch] {shown} was deleted")
    );

    // Newcomers are told it is missing, and see the deletion in the history.
    let mut late = server.client_in("#lobby").await;
    late.send("/join #watch").await;
    late.expect("was deleted").await;
    late.expect("#watch *** you joined").await;
    assert_eq!(
        late.line().await,
        format!("#watch --- [watch] now watching {shown} for changes (missing now)")
    );
    c.expect("#watch *** guest-2 joined").await;

    std::fs::write(&target, "back").unwrap();
    assert_eq!(
        c.line().await,
        format!("#watch >>> [watch] {shown} was created (4 bytes)")
    );
    // Moved away is told apart from deleted.
    std::fs::rename(&target, files.path().join("elsewhere.txt")).unwrap();
    assert_eq!(
        c.line().await,
        format!("#watch >>> [watch] {shown} was renamed away")
    );
    // Other files in the same directory are not the watcher's business.
    std::fs::write(files.path().join("other.txt"), "y").unwrap();
    c.silent_for(QUIET).await;
    assert_eq!(
        late.expect(">>> [watch]").await,
        format!("#watch >>> [watch] {shown} was created (4 bytes)")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watched_directory_reports_its_entries() {
    let files = tempfile::tempdir().unwrap();
    let dir = files.path().join("logs");
    std::fs::create_dir(&dir).unwrap();
    let shown = dir.display().to_string();
    let server = FeedServer::start(&["tcp://127.0.0.1:0"], None, watching(&dir, "#watch")).await;
    let mut c = server.client_in("#watch").await;
    assert_eq!(
        c.line().await,
        format!("#watch --- [watch] now watching the directory {shown} for changes")
    );
    std::fs::write(dir.join("a.log"), "hello").unwrap();
    assert_eq!(
        c.line().await,
        format!("#watch >>> [watch] {shown}/a.log was created (5 bytes)")
    );
    std::fs::remove_file(dir.join("a.log")).unwrap();
    assert_eq!(
        c.line().await,
        format!("#watch >>> [watch] {shown}/a.log was deleted")
    );
}

#[tokio::test]
async fn a_missing_path_is_refused_at_start_up() {
    let files = tempfile::tempdir().unwrap();
    let missing = files.path().join("nope.txt");
    let hub = Hub::new(&charla::limits::Limits {
        history_per_room: 10,
        ..Default::default()
    });
    let error = feeds::start(
        &hub,
        &watching(&missing, "#watch"),
        CancellationToken::new(),
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("does not exist"), "{error}");
    assert!(error.contains("nope.txt"), "{error}");
}

// ---- Alarm checks ---------------------------------------------------------------------------

/// A TCP service the test starts and stops on a port it keeps: stopped, a socket stays
/// bound to the port without listening (connections are refused), so no other test can take
/// the port in between.
struct Service {
    addr: SocketAddr,
    listening: Option<tokio::task::JoinHandle<()>>,
    idle: Option<tokio::net::TcpSocket>,
}

impl Service {
    fn socket(addr: SocketAddr) -> tokio::net::TcpSocket {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_reuseport(true).unwrap();
        socket.bind(addr).unwrap();
        socket
    }

    fn start() -> Service {
        let socket = Service::socket("127.0.0.1:0".parse().unwrap());
        let mut service = Service {
            addr: socket.local_addr().unwrap(),
            listening: None,
            idle: Some(socket),
        };
        service.resume();
        service
    }

    /// Listens (again) on the kept port.
    fn resume(&mut self) {
        let listener = self.idle.take().unwrap().listen(64).unwrap();
        self.listening = Some(tokio::spawn(async move {
            loop {
                let _ = listener.accept().await;
            }
        }));
    }

    /// Stops listening, keeping the port.
    async fn stop(&mut self) {
        self.idle = Some(Service::socket(self.addr));
        let task = self.listening.take().unwrap();
        task.abort();
        let _ = task.await;
    }
}

/// A check's first failure after [`Service::stop`] as if refused: a connect under way as the
/// listener closes is reset by the kernel with whatever its queue held, an honest reason the
/// test cannot time away; every later connect is refused.
fn as_refused(line: String) -> String {
    line.replace(": Connection reset by peer", ": Connection refused")
}

fn checking(spec: &str) -> FeedOptions {
    FeedOptions {
        checks: vec![spec.parse::<CheckSpec>().unwrap()],
        check_interval: Duration::from_millis(100),
        check_timeout: Duration::from_secs(2),
        ..FeedOptions::default()
    }
}

/// `/status` until `needle` shows: the checks have run at least once.
async fn status_until(c: &mut Client, needle: &str) {
    for _ in 0..100 {
        c.send("/status").await;
        loop {
            let line = c.line().await;
            assert!(line.starts_with("#alerts --- ["), "{line:?}");
            if line.contains(needle) {
                return;
            }
            if line.contains("[check:") {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{needle:?} never showed in /status");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_port_that_stops_and_starts_gives_one_down_and_one_up_alert() {
    let mut service = Service::start();
    let addr = service.addr;
    let server = FeedServer::start(
        &["tcp://127.0.0.1:0"],
        None,
        checking(&format!("web=tcp://{addr}")),
    )
    .await;
    let mut c = server.client_in("#alerts").await;
    c.expect("[check:web]").await;
    status_until(&mut c, "web is up").await;
    let mut bot = Client::tcp(server.tcp()).await;
    bot.expect("*** Welcome").await;
    bot.send(r##"{"type":"hello","nick":"bot","rooms":["#alerts"]}"##)
        .await;
    bot.expect_json("welcome").await;
    c.expect("bot joined").await;

    service.stop().await;
    let down = as_refused(c.line().await);
    assert!(
        down.starts_with(&format!(
            "#alerts !!! [check:web] web is DOWN: cannot connect to {addr}: Connection refused (was up for "
        )),
        "{down:?}"
    );
    let alert = bot.expect_json("alert").await;
    assert_eq!(alert["source"], "check:web");
    assert_eq!(alert["check"], "web");
    assert_eq!(alert["state"], "down");
    assert_eq!(alert["previous"], "up");
    assert!(alert["lasted_ms"].as_u64().is_some(), "{alert}");
    assert!(as_refused(alert["reason"].as_str().unwrap().to_string()).contains("refused"));

    // Several more checks fail: no repeat while the state holds.
    c.silent_for(Duration::from_millis(500)).await;

    service.resume();
    let up = c.line().await;
    assert!(
        up.starts_with(&format!(
            "#alerts !!! [check:web] web is UP again: connected to {addr} (was down for "
        )),
        "{up:?}"
    );
    let alert = bot.expect_json("alert").await;
    assert_eq!(alert["state"], "up");
    assert_eq!(alert["previous"], "down");
    c.silent_for(Duration::from_millis(500)).await;

    // Newcomers see both alerts in history and the state now.
    let mut late = server.client_in("#lobby").await;
    late.send("/join #alerts").await;
    late.expect("web is DOWN").await;
    late.expect("web is UP again").await;
    late.expect("#alerts *** you joined").await;
    let status = late.line().await;
    assert!(
        status.starts_with("#alerts --- [check:web] web is up (for "),
        "{status:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_command_check_follows_its_exit_status() {
    let files = tempfile::tempdir().unwrap();
    let flag = files.path().join("healthy");
    std::fs::write(&flag, "").unwrap();
    let spec = format!(
        "disk=exec:test -e '{}' || {{ echo 'disk 97% full' >&2; exit 1; }}",
        flag.display()
    );
    let server = FeedServer::start(&["tcp://127.0.0.1:0"], None, checking(&spec)).await;
    let mut c = server.client_in("#alerts").await;
    c.expect("[check:disk]").await;
    status_until(&mut c, "disk is up").await;

    std::fs::remove_file(&flag).unwrap();
    let down = c.line().await;
    assert!(
        down.starts_with(
            "#alerts !!! [check:disk] disk is DOWN: exit status 1: disk 97% full (was up for "
        ),
        "{down:?}"
    );
    std::fs::write(&flag, "").unwrap();
    let up = c.line().await;
    assert!(
        up.starts_with("#alerts !!! [check:disk] disk is UP again: exit status 0 (was down for "),
        "{up:?}"
    );
    c.silent_for(QUIET).await;
}

/// With retries, the first failures are PENDING notices and only the third in a row an
/// alert; a DOWN check is recalled every --check-remind until it is up again.
#[tokio::test(flavor = "multi_thread")]
async fn failures_are_pending_before_down_and_down_is_recalled() {
    let mut service = Service::start();
    let addr = service.addr;
    let options = FeedOptions {
        check_remind: Some(Duration::from_millis(400)),
        ..checking(&format!("web=tcp://{addr} retries=3 priority=urgent"))
    };
    let server = FeedServer::start(&["tcp://127.0.0.1:0"], None, options).await;
    let mut c = server.client_in("#alerts").await;
    c.expect("[check:web]").await;
    status_until(&mut c, "web is up").await;

    service.stop().await;
    assert_eq!(
        as_refused(c.line().await),
        format!(
            "#alerts >>> [check:web] web is PENDING: cannot connect to {addr}: Connection refused (failed check 1 of 3)"
        )
    );
    let down = c.line().await;
    assert!(
        down.starts_with(&format!(
            "#alerts !!! [check:web] web is DOWN after 3 failed checks: cannot connect to {addr}: Connection refused (was up for "
        )),
        "{down:?}"
    );
    // /status says since when, and how long the last try took.
    c.send("/status").await;
    let status = c.line().await;
    assert!(
        status.starts_with("#alerts --- [check:web] web is DOWN (for ")
            && status.contains("; answered in ")
            && status.contains("% up in 24h): "),
        "{status:?}"
    );
    for _ in 0..2 {
        let reminder = c.line().await;
        assert!(
            reminder.starts_with(&format!(
                "#alerts !!! [check:web] web is still DOWN: cannot connect to {addr}: Connection refused (for "
            )) && reminder.ends_with("; reminded every 400ms)"),
            "{reminder:?}"
        );
    }
    let mut bot = Client::tcp(server.tcp()).await;
    bot.expect("*** Welcome").await;
    bot.send(r##"{"type":"hello","nick":"bot","rooms":["#alerts"]}"##)
        .await;
    bot.expect_json("welcome").await;
    let reminder = bot.expect_json("alert").await;
    assert_eq!(reminder["reminder"], true, "{reminder}");
    assert_eq!(reminder["priority"], 5, "{reminder}");
    assert_eq!(reminder["state"], "down", "{reminder}");
    // The status item carries the uptime and the chart's response times.
    bot.send(r##"{"type":"status","room":"#alerts"}"##).await;
    let status = bot.expect_json("status").await;
    let item = &status["items"][0];
    let permille = item["uptime_permille"].as_u64().expect("an uptime");
    assert!(permille < 1000, "{item}");
    assert_eq!(item["responses_bucket_ms"], 300_000, "{item}");
    let responses = item["responses"].as_str().expect("response times");
    assert_eq!(responses.split(',').count(), 72, "{item}");
    assert!(
        responses.split(',').any(|ms| ms.parse::<u64>().is_ok()),
        "{item}"
    );

    service.resume();
    c.expect("web is UP again").await;
    c.silent_for(Duration::from_millis(600)).await;
}

/// `/ack` stops a DOWN check's reminders and tells the room who saw to it; `/silence`
/// keeps its changes to `/status`, `/unsilence` says its state once. A member of #alerts
/// may, someone elsewhere may not.
#[tokio::test(flavor = "multi_thread")]
async fn people_acknowledge_and_silence_checks_from_the_chat_line() {
    let mut service = Service::start();
    let addr = service.addr;
    let options = FeedOptions {
        check_remind: Some(Duration::from_millis(300)),
        ..checking(&format!("web=tcp://{addr}"))
    };
    let server = FeedServer::start(&["tcp://127.0.0.1:0"], None, options).await;
    let mut c = server.client_in("#alerts").await;
    status_until(&mut c, "web is up").await;
    let mut outsider = server.client_in("#lobby").await;
    outsider.send("/ack web").await;
    outsider
        .expect("ERROR not_in_room: join #alerts to act on its alerts")
        .await;

    c.send("/ack web").await;
    c.expect("ERROR invalid_argument: web is not down: nothing to acknowledge")
        .await;
    service.stop().await;
    c.expect("web is DOWN").await;
    c.send("/ack web looking into it").await;
    let acked = c.expect("acknowledged web").await;
    assert!(
        acked.starts_with("#alerts >>> [check:web] ") && acked.ends_with(": looking into it"),
        "{acked:?}"
    );
    let answer = c.line().await;
    assert!(answer.ends_with("[acknowledged by guest-1]"), "{answer:?}");
    // No reminder while it is acknowledged.
    c.silent_for(Duration::from_millis(900)).await;

    c.send("/silence web 1h maintenance").await;
    c.expect("silenced web for 1h: maintenance").await;
    c.line().await;
    service.resume();
    // Up again, but silenced: only /status knows.
    status_until(&mut c, "web is up").await;
    c.send("/unsilence web").await;
    let said = c.expect("ended the silence on web: web is up (for ").await;
    assert!(said.starts_with("#alerts >>> [check:web] "), "{said:?}");
    c.line().await;
    c.send("/silence web soon").await;
    c.expect("ERROR invalid_argument").await;
    // The bound reads as a person writes it.
    c.send("/silence web 31d").await;
    assert_eq!(
        c.expect("ERROR invalid_argument").await,
        "ERROR invalid_argument: a silence lasts more than nothing and at most 30 days"
    );
    c.send("/ack nope").await;
    c.expect("ERROR invalid_argument: no check or heartbeat named \"nope\"")
        .await;
}

/// `/unsilence` of a check still DOWN says so, and its reminders go on from then: the next
/// one comes a whole `--check-remind` after the unsilence, not at once, however long the
/// check was DOWN before.
#[tokio::test(flavor = "multi_thread")]
async fn reminders_go_on_an_interval_after_an_unsilence() {
    let remind = Duration::from_millis(1500);
    let mut service = Service::start();
    let options = FeedOptions {
        check_remind: Some(remind),
        ..checking(&format!("web=tcp://{}", service.addr))
    };
    let server = FeedServer::start(&["tcp://127.0.0.1:0"], None, options).await;
    let mut c = server.client_in("#alerts").await;
    status_until(&mut c, "web is up").await;
    service.stop().await;
    c.expect("web is DOWN").await;
    c.send("/silence web 1h").await;
    c.expect("silenced web for 1h").await;
    c.line().await;
    // Most of an interval goes by silenced: without a fresh start, the reminder would be
    // due right after the unsilence.
    c.silent_for(remind * 2 / 3).await;

    let unsilenced = std::time::Instant::now();
    c.send("/unsilence web").await;
    c.expect("ended the silence on web: web is DOWN (for ")
        .await;
    c.line().await;
    c.expect("web is still DOWN").await;
    assert!(
        unsilenced.elapsed() >= remind,
        "reminded {:?} after the unsilence",
        unsilenced.elapsed()
    );
}

/// A `tls://` check is up when a verified handshake succeeds, and warns of a certificate
/// that expires within --check-cert-warn (14 days by default).
#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_about_to_expire_is_an_alert() {
    let pki = crate::tls::Pki::new();
    let (addr, task) = pki.handshakes_expiring_in(10);
    let spec = format!(
        "site=tls://localhost:{} ca={}",
        addr.port(),
        pki.ca().display()
    );
    let server = FeedServer::start(&["tcp://127.0.0.1:0"], None, checking(&spec)).await;
    let mut c = server.client_in("#lobby").await;
    // The first run may warn before this client is in the room: the warning then comes in
    // the history its join replays, before "you joined".
    c.send("/join #alerts").await;
    let warned = c.expect("site's certificate expires in ").await;
    let live = warned.starts_with("#alerts !!! [check:site] ");
    let replayed =
        warned.starts_with("#alerts [history ") && warned.contains("] !!! [check:site] ");
    assert!(live || replayed, "{warned:?}");
    if replayed {
        c.expect("#alerts *** you joined").await;
    }
    status_until(&mut c, "site is up").await;
    // Said once, not at every run.
    let again = tokio::time::timeout(Duration::from_millis(500), c.expect("certificate")).await;
    assert!(again.is_err(), "{again:?}");
    task.abort();
}

/// A `tls://` check that fails says why in words, not in rustls's type names: a
/// certificate no trusted CA signed, and a port that does not speak TLS.
#[tokio::test(flavor = "multi_thread")]
async fn a_tls_check_that_fails_says_why_in_words() {
    let pki = crate::tls::Pki::new();
    let (signed, task) = pki.handshakes_expiring_in(100);
    // A plain service that greets in text, as a chat server's plain port does.
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let plain_port = plain.local_addr().unwrap().port();
    let greeter = tokio::spawn(async move {
        loop {
            let (mut stream, _) = plain.accept().await.unwrap();
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let _ = stream.write_all(b"*** welcome, who are you?\r\n").await;
                let _ = stream.read(&mut [0; 1024]).await;
            });
        }
    });
    // No ca= for site: the system's roots do not know the test's CA.
    let mut options = checking(&format!("site=tls://localhost:{}", signed.port()));
    options.checks.push(
        format!(
            "plain=tls://127.0.0.1:{plain_port} ca={}",
            pki.ca().display()
        )
        .parse::<CheckSpec>()
        .unwrap(),
    );
    let server = FeedServer::start(&["tcp://127.0.0.1:0"], None, options).await;
    let mut c = server.client_in("#alerts").await;
    let (mut site, mut plain) = (None, None);
    for _ in 0..100 {
        c.send("/status").await;
        // Two checks, so two lines.
        for _ in 0..2 {
            let line = c.line().await;
            if line.contains("[check:site] site is DOWN") {
                site = Some(line);
            } else if line.contains("[check:plain] plain is DOWN") {
                plain = Some(line);
            }
        }
        if site.is_some() && plain.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let site = site.expect("site never DOWN in /status");
    assert!(
        site.contains(
            "TLS error: the certificate is not trusted (unknown issuer: it is self-signed, or signed by a CA this machine does not trust)"
        ),
        "{site:?}"
    );
    let plain = plain.expect("plain never DOWN in /status");
    assert!(
        plain.contains("TLS error: 127.0.0.1 did not answer in TLS"),
        "{plain:?}"
    );
    task.abort();
    greeter.abort();
}

/// What the web service a test checks answers, switched while it runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Answer {
    Healthy,
    Unavailable,
    WrongBody,
}

/// A web service on port 0 answering `GET /health` as told, and `GET /moved` with a redirect
/// to it.
struct WebService {
    addr: SocketAddr,
    answer: std::sync::Arc<std::sync::Mutex<Answer>>,
    task: tokio::task::JoinHandle<()>,
}

impl WebService {
    async fn start() -> WebService {
        use axum::http::StatusCode;
        use axum::response::{IntoResponse, Redirect};
        let answer = std::sync::Arc::new(std::sync::Mutex::new(Answer::Healthy));
        let current = answer.clone();
        let health = move || {
            let answer = *current.lock().unwrap();
            async move {
                match answer {
                    Answer::Healthy => (StatusCode::OK, "all ok\n").into_response(),
                    Answer::Unavailable => {
                        (StatusCode::SERVICE_UNAVAILABLE, "busy\n").into_response()
                    }
                    Answer::WrongBody => (StatusCode::OK, "maintenance\n").into_response(),
                }
            }
        };
        let app = axum::Router::new()
            .route("/health", axum::routing::get(health))
            // The keyword past the bound of what a check reads.
            .route(
                "/big",
                axum::routing::get(|| async {
                    "x".repeat(charla::limits::HTTP_CHECK_BODY_BYTES) + "ok"
                }),
            )
            .route(
                "/moved",
                axum::routing::get(|| async { Redirect::temporary("/health") }),
            )
            // Never answers in time.
            .route(
                "/slow",
                axum::routing::get(|| async {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    "all ok\n"
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        WebService { addr, answer, task }
    }

    fn answer(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }
}

impl Drop for WebService {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An HTTP check follows a redirect and says why it is down: the status, the missing
/// keyword, the time it gave up after (its own `timeout=`); an https check on a plain HTTP
/// port, the TLS error.
/// A body is read only up to its bound.
#[tokio::test(flavor = "multi_thread")]
async fn an_http_check_says_why_a_site_is_down() {
    let web = WebService::start().await;
    let addr = web.addr;
    let options = FeedOptions {
        checks: vec![
            // A quoted keyword keeps its space.
            format!(r#"web=http://{addr}/moved keyword="all ok""#)
                .parse()
                .unwrap(),
            format!("tls=https://{addr}/health").parse().unwrap(),
            format!("big=http://{addr}/big keyword=ok").parse().unwrap(),
            // A short timeout only where timing out is the point: `web` had one, and on a
            // loaded machine an answer that should have been a 503 or a missing keyword
            // sometimes timed out first, so the alert the test waited for never came.
            format!("slow=http://{addr}/slow timeout=400ms")
                .parse()
                .unwrap(),
        ],
        // Time for `slow`'s tries to time out before the next starts, and for the others'
        // (whose timeout is the interval) to finish on a loaded machine: at 500 ms the TLS
        // check's refused handshake was sometimes cut short as a timeout.
        check_interval: Duration::from_secs(1),
        ..checking("unused=tcp://127.0.0.1:1")
    };
    let server = FeedServer::start(&["tcp://127.0.0.1:0"], None, options).await;
    let mut c = server.client_in("#alerts").await;
    // The first results come in either order, as alerts or (when they came before the
    // client joined) in the status it is greeted with.
    let (mut tls, mut big, mut slow) = (None, None, None);
    while tls.is_none() || big.is_none() || slow.is_none() {
        let line = c.line().await;
        if line.contains("tls is DOWN") {
            tls = Some(line);
        } else if line.contains("big is DOWN") {
            big = Some(line);
        } else if line.contains("slow is DOWN") {
            slow = Some(line);
        }
    }
    let slow = slow.unwrap();
    assert!(
        slow.contains("): timed out after 400ms")
            || slow.contains("slow is DOWN: timed out after 400ms"),
        "{slow:?}"
    );
    let tls = tls.unwrap();
    assert!(
        tls.contains("): TLS error: ") || tls.contains("tls is DOWN: TLS error: "),
        "{tls:?}"
    );
    let big = big.unwrap();
    assert!(
        big.contains(r#"keyword "ok" missing (status 200 in "#),
        "{big:?}"
    );
    status_until(&mut c, "web is up").await;

    web.answer(Answer::Unavailable);
    let down = c.expect("[check:web] web is DOWN: status 503 in ").await;
    assert!(down.contains("(was up for "), "{down:?}");
    web.answer(Answer::Healthy);
    c.expect("[check:web] web is UP again: status 200 in ")
        .await;

    web.answer(Answer::WrongBody);
    c.expect(r#"[check:web] web is DOWN: keyword "all ok" missing (status 200 in "#)
        .await;
    web.answer(Answer::Healthy);
    c.expect("[check:web] web is UP again").await;

    // /status shows each check's state and its last response time.
    c.send("/status").await;
    let web_status = c.expect("[check:web] web is up (for ").await;
    assert!(web_status.contains("; answered in "), "{web_status:?}");
}

// ---- UDP alerts -------------------------------------------------------------------------------

/// What `echo "$1" | nc -u -w0 HOST PORT` does: one datagram from a fresh port.
pub(crate) fn nc_u(to: SocketAddr, payload: &[u8]) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.send_to(payload, to).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_datagram_reaches_everyone_in_alerts() {
    let server = FeedServer::start(
        &["tcp://127.0.0.1:0"],
        Some(IngestOptions {
            max_bytes: 64,
            ..IngestOptions::default()
        }),
        // #lobby takes UDP posts that name it only because it is opted in.
        FeedOptions {
            feed_rooms: vec![RoomName::lobby()],
            ..FeedOptions::default()
        },
    )
    .await;
    let udp = server.udp[0];
    let mut ana = server.client_in("#alerts").await;
    let status = ana.line().await;
    assert_eq!(
        status,
        format!(
            "#alerts --- [udp] UDP alerts are accepted on udp://{udp} (best-effort): 0 posted, 0 dropped so far"
        )
    );
    let mut bot = Client::tcp(server.tcp()).await;
    bot.expect("*** Welcome").await;
    bot.send(r##"{"type":"hello","nick":"bot","rooms":["#alerts"]}"##)
        .await;
    bot.expect_json("welcome").await;
    ana.expect("bot joined").await;
    let mut lobby = server.client_in("#lobby").await;
    ana.expect("joined").await;

    nc_u(udp, b"disk full\n");
    assert_eq!(ana.line().await, "#alerts !!! [udp:127.0.0.1] disk full");
    let alert = bot.expect_json("alert").await;
    assert_eq!(alert["room"], "#alerts");
    assert_eq!(alert["source"], "udp:127.0.0.1");
    assert_eq!(alert["text"], "disk full");
    assert!(alert["addr"].as_str().unwrap().starts_with("127.0.0.1:"));

    // Oversize, not UTF-8, or nothing printable: dropped.
    nc_u(udp, &[b'x'; 65]);
    nc_u(udp, b"\xff\xfe\n");
    nc_u(udp, b"\x1b[2J\x07\n");
    // A room that takes feed posts, and control characters removed as from chat.
    nc_u(udp, b"#lobby deploy \x1b[31mdone\x1b[0m\n");
    assert_eq!(lobby.line().await, "#lobby !!! [udp:127.0.0.1] deploy done");
    // Ana is in #lobby too; the dropped datagrams showed nowhere.
    assert_eq!(ana.line().await, "#lobby !!! [udp:127.0.0.1] deploy done");
    ana.silent_for(QUIET).await;

    // Nobody can forge an alert by typing one.
    ana.send("!!! [udp:127.0.0.1] fake").await;
    let forged = bot.expect_json("message").await;
    assert_eq!(forged["from"], "guest-1");
    let mut late = server.client_in("#lobby").await;
    late.send("/join #alerts").await;
    assert_eq!(
        late.expect("disk full").await.split_once("] ").unwrap().1,
        "!!! [udp:127.0.0.1] disk full"
    );
    let typed = late.expect("fake").await;
    assert!(typed.contains("] <guest-1> !!! [udp"), "{typed:?}");
    late.expect("#alerts *** you joined").await;
    let status = late.line().await;
    assert!(status.ends_with("2 posted, 3 dropped so far"), "{status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn each_udp_source_is_rate_limited() {
    let server = FeedServer::start(
        &["tcp://127.0.0.1:0"],
        Some(IngestOptions {
            burst: 2,
            rate: 1,
            ..IngestOptions::default()
        }),
        FeedOptions::default(),
    )
    .await;
    let udp = server.udp[0];
    let mut c = server.client_in("#alerts").await;
    c.expect("UDP alerts are accepted").await;
    for i in 1..=5 {
        nc_u(udp, format!("alert {i}").as_bytes());
    }
    assert_eq!(c.line().await, "#alerts !!! [udp:127.0.0.1] alert 1");
    assert_eq!(c.line().await, "#alerts !!! [udp:127.0.0.1] alert 2");
    c.silent_for(QUIET).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_datagram_names_only_rooms_that_take_feed_posts() {
    let path = tempfile::NamedTempFile::new().unwrap();
    let server = FeedServer::start(
        &["tcp://127.0.0.1:0"],
        Some(IngestOptions::default()),
        FeedOptions {
            feed_rooms: vec![room("#ops")],
            ..watching(path.path(), "#builds")
        },
    )
    .await;
    let udp = server.udp[0];
    let mut ana = server.client_in("#alerts").await;
    ana.expect("UDP alerts are accepted").await;
    for name in ["#ops", "#builds", "#chat"] {
        ana.send(&format!("/join {name}")).await;
        ana.expect(&format!("{name} *** you joined")).await;
        if name == "#builds" {
            ana.expect("#builds --- [watch]").await;
        }
    }
    // The --feed-room, a feed's room and the UDP room take what names them ...
    nc_u(udp, b"#ops deploy done");
    assert_eq!(ana.line().await, "#ops !!! [udp:127.0.0.1] deploy done");
    nc_u(udp, b"#builds build 7 failed");
    assert_eq!(
        ana.line().await,
        "#builds !!! [udp:127.0.0.1] build 7 failed"
    );
    nc_u(udp, b"#alerts disk full");
    assert_eq!(ana.line().await, "#alerts !!! [udp:127.0.0.1] disk full");
    // ... a room a user made does not, nor #lobby: the whole text goes to #alerts.
    nc_u(udp, b"#chat you have been hacked");
    assert_eq!(
        ana.line().await,
        "#alerts !!! [udp:127.0.0.1] #chat you have been hacked"
    );
    nc_u(udp, b"#lobby hi all");
    assert_eq!(
        ana.line().await,
        "#alerts !!! [udp:127.0.0.1] #lobby hi all"
    );
    ana.silent_for(QUIET).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn udp_from_many_sources_is_bounded_in_all() {
    const SOURCES: usize = 50;
    const EACH: usize = 2;
    let (global_burst, global_rate) = (10, 1);
    let server = FeedServer::start(
        &["tcp://127.0.0.1:0"],
        // Each source stays well inside its own allowance (burst 20), all of them together
        // do not.
        Some(IngestOptions {
            global_burst,
            global_rate,
            ..IngestOptions::default()
        }),
        FeedOptions::default(),
    )
    .await;
    let udp = server.udp[0];
    // The one asking comes first, so ana's next lines are alerts only.
    let mut asker = server.client_in("#lobby").await;
    let mut ana = server.client_in("#alerts").await;
    ana.expect("UDP alerts are accepted").await;
    let started = std::time::Instant::now();
    // Distinct source addresses, as the allowance is per IP: all of 127.0.0.0/8 is
    // loopback.
    let sockets: Vec<UdpSocket> = (0..SOURCES)
        .map(|n| UdpSocket::bind(format!("127.0.0.{}:0", n + 2)).unwrap())
        .collect();
    for i in 0..EACH {
        for (n, socket) in sockets.iter().enumerate() {
            socket
                .send_to(format!("alert {n}.{i}").as_bytes(), udp)
                .unwrap();
        }
    }
    // Until every datagram is accounted for, posted or dropped.
    let sent = (SOURCES * EACH) as u64;
    let (posted, dropped) = loop {
        asker.send("/status #alerts").await;
        let status = asker.expect("#alerts --- [udp]").await;
        let counts = status.rsplit_once(": ").unwrap().1;
        let numbers: Vec<u64> = counts
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|w| w.parse().ok())
            .collect();
        if let [posted, dropped] = numbers[..]
            && posted + dropped == sent
        {
            break (posted, dropped);
        }
        assert!(started.elapsed() < support::PATIENCE, "{status:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // The burst, plus at most what the rate refilled while the test ran; without the
    // global bound all of them would be posted.
    let refilled = (started.elapsed().as_secs_f64() * f64::from(global_rate)).ceil() as u64;
    assert!(
        (u64::from(global_burst)..=u64::from(global_burst) + refilled).contains(&posted),
        "{posted} posted, {dropped} dropped"
    );
    for _ in 0..posted {
        let alert = ana.line().await;
        assert!(
            alert.starts_with("#alerts !!! [udp:127.0.0.") && alert.contains("] alert "),
            "{alert:?}"
        );
    }
    ana.silent_for(QUIET).await;
}

/// Reads the greeting of a client that lands in a room with a watcher: the welcome, the
/// join, then the watcher's status line, which must be `status`.
async fn greeted_with_status(c: &mut Client, status: impl AsRef<str>) {
    c.expect("*** Welcome to charla").await;
    c.expect("#lobby *** you joined").await;
    assert_eq!(c.line().await, status.as_ref());
}
