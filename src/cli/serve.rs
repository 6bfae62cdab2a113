//! `charla serve`: its options. Every option can also come from the environment variable
//! named in its help (`CHARLA_LISTEN`, …).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use charla::feeds::udp::IngestOptions;
use charla::feeds::{ALERTS_ROOM, CheckSpec, FeedOptions, HeartbeatSpec, WatchSpec};
use charla::hub::RoomName;
use charla::limits::{self, Limits};
use charla::server::{DEFAULT_LISTEN, HttpOptions, ListenAddr, TlsFiles, parse_udp};
use charla::store::{DISK_HISTORY_PER_ROOM, DISK_HISTORY_TOTAL, default_data_dir};

#[derive(Args)]
pub struct Serve {
    /// Where to listen (repeatable, or comma-separated in the variable): tcp://HOST:PORT,
    /// tcp://[::1]:PORT, HOST:PORT, unix:///path/to.sock, irc://HOST:PORT for IRC clients
    /// (irssi, WeeChat, HexChat; 6667 is the custom) in the same rooms, udp://HOST:PORT for
    /// alerts sent as datagrams (see --udp-room), and http://HOST:PORT for the chat page,
    /// the WebSocket (/ws), HTTP publish (POST /rooms/NAME) and Alertmanager's webhook
    /// (POST /alertmanager?room=%23alerts; bodies up to 256 KiB, ALERTMANAGER_BODY_BYTES;
    /// 1,000 alerts firing a room, ALERTMANAGER_MAX_FIRING); tls://, ircs:// and
    /// https:// are the same over TLS (with --tls-cert and --tls-key). Port 0 picks a free
    /// port; every bound address is printed as `listening on ADDR`.
    #[arg(
        short,
        long = "listen",
        env = "CHARLA_LISTEN",
        value_delimiter = ',',
        default_value = DEFAULT_LISTEN,
    )]
    pub listen: Vec<String>,

    /// Read options from this TOML file: each key an option's long name (`check-interval =
    /// "10s"`, `check = ["db=tcp://127.0.0.1:5432"]`), docs/charla.example.toml has them
    /// all. Flags and CHARLA_* variables win over the file; an unknown key or a bad value
    /// is an error naming its line.
    #[arg(long, env = "CHARLA_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Longest line a client may send, in bytes.
    #[arg(long, env = "CHARLA_MAX_LINE", default_value_t = limits::MAX_LINE_BYTES, value_parser = nonzero)]
    pub max_line: usize,

    /// Messages each room remembers and replays to newcomers.
    #[arg(long, env = "CHARLA_HISTORY", default_value_t = limits::HISTORY_PER_ROOM)]
    pub history: usize,

    /// Bytes of history one room keeps; its oldest messages go first past it.
    #[arg(long, env = "CHARLA_HISTORY_ROOM_BYTES", default_value_t = limits::HISTORY_ROOM_BYTES)]
    pub history_room_bytes: usize,

    /// Bytes of history all rooms keep together; the oldest messages of any room go first.
    #[arg(long, env = "CHARLA_HISTORY_BYTES", default_value_t = limits::HISTORY_BYTES)]
    pub history_bytes: usize,

    /// The directory the database (rooms' history, accounts (with --cluster: in Redis
    /// instead), what rooms keep and the Alertmanager alerts firing, in the SQLite file
    /// charla.db) is kept in, so a restart
    /// replays what was said; created if missing, for its user only (0700) [default:
    /// $XDG_STATE_HOME/charla, or ~/.local/state/charla]. `none` keeps all of it in memory
    /// only: a restart forgets it.
    #[arg(long, env = "CHARLA_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,

    /// Only users logged in to an account may talk (say, /me, /msg); others may read. HTTP
    /// posts then need an account's token (or --http-token). Create accounts with `charla
    /// account add NAME --data DIR`, or let users /register. Whatever this says, logins are
    /// limited to 10 attempts a minute from one address and on one account
    /// (LOGIN_ATTEMPTS_PER_ADDRESS, LOGIN_ATTEMPTS_PER_ACCOUNT), 2 password hashes at once
    /// (MAX_CONCURRENT_HASHES).
    #[arg(long, env = "CHARLA_REQUIRE_ACCOUNT")]
    pub require_account: bool,

    /// Run as one node of a cluster whose nodes share rooms, nicks and private messages
    /// through the Redis at this URL (redis://HOST:PORT, or redis://:PASSWORD@HOST:PORT,
    /// better given in the variable, which other users cannot read; logs and errors show
    /// the password as ***): start every node with the same URL. A node that cannot reach
    /// Redis as it starts exits within 5 s saying why. Accounts and rooms' topics, modes and bans are kept in that Redis (turn on its
    /// AOF persistence to keep them across a Redis restart). A node unheard for 5 s (CLUSTER_NODE_TIMEOUT) is taken for dead: its users
    /// leave and their nicks are free. While Redis is out of reach each node serves its own
    /// users and says so; it tries again every 0.1 to 5 s (CLUSTER_RETRY_MIN,
    /// CLUSTER_RETRY_MAX), and once back reads what it missed from each room's last 1,000
    /// messages kept in Redis (CLUSTER_BACKLOG); older ones are a `gap`. What its users
    /// said meanwhile (up to 10,000 messages, CLUSTER_OUTAGE_HELD) is published then; past
    /// that, the other nodes get a `gap`. docs/cluster.md says what is shared. Unset: a server alone, without Redis.
    #[arg(long, env = "CHARLA_CLUSTER", value_name = "URL")]
    pub cluster: Option<String>,

    /// This node's name (with --cluster): in its logs, and shown to users beside the
    /// checks and heartbeats it runs (`/status`'s `(on NAME)`, JSON `node`, the page's
    /// check panel). 1 to 63 bytes of ASCII letters, digits, '.' and '-' [default: node-N,
    /// N its number in the cluster].
    #[arg(
        long,
        env = "CHARLA_NODE_NAME",
        value_name = "NAME",
        requires = "cluster",
        value_parser = node_name
    )]
    pub node_name: Option<String>,

    /// Messages and presence changes that may wait to be sent to Redis (with --cluster);
    /// past it a message is refused and its sender told `store_unavailable`.
    #[arg(
        long,
        env = "CHARLA_CLUSTER_OUTBOX",
        default_value_t = limits::CLUSTER_OUTBOX,
        value_parser = at_least_one,
        requires = "cluster"
    )]
    pub cluster_outbox: usize,

    /// Messages each room keeps in the --data database, even once it is empty and across
    /// restarts; the oldest are deleted past it. --history of them are replayed.
    #[arg(long, env = "CHARLA_HISTORY_KEEP", default_value_t = DISK_HISTORY_PER_ROOM, value_parser = at_least_one)]
    pub history_keep: usize,

    /// Messages all rooms keep in the --data database together; the oldest of any room are
    /// deleted past it.
    #[arg(long, env = "CHARLA_HISTORY_KEEP_TOTAL", default_value_t = DISK_HISTORY_TOTAL, value_parser = at_least_one)]
    pub history_keep_total: usize,

    /// How long messages are kept in the --data database and replayed (30d, 12h); older
    /// ones are deleted within a minute. Unset: kept until --history-keep newer ones push
    /// them out.
    #[arg(long, env = "CHARLA_HISTORY_AGE", value_parser = positive)]
    pub history_age: Option<humantime::Duration>,

    /// Rooms one client may be in at once, #lobby included (at least 1).
    #[arg(long, env = "CHARLA_MAX_ROOMS_PER_CLIENT", default_value_t = limits::MAX_ROOMS_PER_CLIENT, value_parser = nonzero)]
    pub max_rooms_per_client: usize,

    /// Rooms users may have open at once (#lobby and feed rooms aside).
    #[arg(long, env = "CHARLA_MAX_ROOMS", default_value_t = limits::MAX_ROOMS)]
    pub max_rooms: usize,

    /// Bytes that may wait for a client that is not reading before it is disconnected; at
    /// least 16 KiB and 4 × --max-line.
    #[arg(long, env = "CHARLA_SEND_QUEUE", default_value_t = limits::SEND_QUEUE_BYTES, value_parser = nonzero)]
    pub send_queue: usize,

    /// Connections served at once.
    #[arg(long, env = "CHARLA_MAX_CONNECTIONS", default_value_t = limits::MAX_CONNECTIONS, value_parser = nonzero)]
    pub max_connections: usize,

    /// Connections at once from one IP address (0: no bound).
    #[arg(long, env = "CHARLA_MAX_PER_IP", default_value_t = limits::MAX_CONNECTIONS_PER_IP)]
    pub max_per_ip: usize,

    /// Lines a client may send in a burst.
    #[arg(long, env = "CHARLA_FLOOD_BURST", default_value_t = limits::FLOOD_BURST)]
    pub flood_burst: u32,

    /// Lines per second the burst refills at (0: flood control off).
    #[arg(long, env = "CHARLA_FLOOD_RATE", default_value_t = limits::FLOOD_RATE)]
    pub flood_rate: u32,

    /// Refused lines in a row after which a flooding client is disconnected.
    #[arg(long, env = "CHARLA_FLOOD_KICK", default_value_t = limits::FLOOD_KICK_AFTER)]
    pub flood_kick: u32,

    /// Seconds without input after which a client is disconnected (0: never).
    #[arg(long, env = "CHARLA_IDLE_TIMEOUT", default_value_t = limits::IDLE_TIMEOUT.as_secs())]
    pub idle_timeout: u64,

    /// Seconds of silence after which an IRC client is sent a PING; one that stays silent
    /// as long again is disconnected (0: never).
    #[arg(long, env = "CHARLA_PING_INTERVAL", default_value_t = limits::PING_INTERVAL.as_secs())]
    pub ping_interval: u64,

    /// The name the IRC listener gives the server: its numerics' prefix, what PONG and 004
    /// answer with, WHO's server field (letters, digits, `.` and `-`, at most 63 bytes).
    #[arg(long, env = "CHARLA_SERVER_NAME", default_value = limits::SERVER_NAME, value_parser = charla::protocol::irc::server_name)]
    pub server_name: String,

    /// A password IRC clients must give with PASS before registering (IRC's server
    /// password, as irssi's `-password` and WeeChat's `password` send it); a missing or
    /// wrong one is answered 464 and the connection closed. Only the IRC listeners ask for
    /// it: text and JSON connections are not gated by it (docs/protocol.md, IRC). Give it
    /// by the environment rather than the command line, which other users can read.
    #[arg(long, env = "CHARLA_IRC_PASSWORD", hide_env_values = true)]
    pub irc_password: Option<String>,

    /// A server operator, NAME:HASH (repeatable): IRC's `OPER NAME PASSWORD` (text
    /// `/oper`, JSON `oper`) makes a session one, which may kick and change the modes of
    /// any room. HASH is the argon2 hash of the password, as `charla account hash` prints
    /// it: the server is never given the password itself.
    #[arg(
        long = "oper",
        value_name = "NAME:HASH",
        env = "CHARLA_OPER",
        value_parser = charla::accounts::ServerOper::parse
    )]
    pub opers: Vec<charla::accounts::ServerOper>,

    /// Worker threads (0: one per CPU this process may run on). With one, the server runs
    /// on a single-threaded runtime, which is faster on one core (docs/benchmarks.md).
    #[arg(long, env = "CHARLA_THREADS", default_value_t = 0)]
    pub threads: usize,

    /// Post a notice each time PATH changes (repeatable, or comma-separated in the
    /// variable): PATH into #watch, or PATH=#room. PATH must exist at start-up; it may then
    /// be modified, deleted, re-created or replaced. A directory reports its entries.
    #[arg(
        long = "watch",
        value_name = "PATH[=#ROOM]",
        env = "CHARLA_WATCH",
        value_delimiter = ','
    )]
    pub watch: Vec<WatchSpec>,

    /// An alarm check (repeatable, or one per line in the variable): NAME=tcp://HOST:PORT
    /// is up when it accepts a connection, NAME=tls://HOST:PORT when a verified TLS
    /// handshake succeeds; 'NAME=http://URL' or https:// when a GET answers
    /// 2xx or 3xx (redirects followed up to 5, HTTP_CHECK_MAX_REDIRECTS; 64 KiB of the body
    /// read, HTTP_CHECK_BODY_BYTES); 'NAME=exec:COMMAND' when `sh -c COMMAND` exits with
    /// status 0. Options may follow a tcp:// or http(s):// target, separated by spaces:
    /// retries=N, timeout=5s, priority=1..5 (default 4, high); for http(s) also status=200,
    /// keyword=TEXT (the body must contain it; keyword="two words" when quoted) and
    /// ca=FILE (trusted instead of the system's roots). Each change of state is said in
    /// #alerts; `/status` there lists every check, with its uptime over 24 hours (288
    /// buckets of 5 minutes, CHECK_UPTIME_BUCKETS, CHECK_UPTIME_BUCKET).
    #[arg(
        long = "check",
        value_name = "NAME=PROBE",
        env = "CHARLA_CHECK",
        value_delimiter = '\n'
    )]
    pub check: Vec<CheckSpec>,

    /// Time between two runs of each check (500ms, 10s, 1m).
    #[arg(
        long,
        env = "CHARLA_CHECK_INTERVAL",
        default_value_t = limits::CHECK_INTERVAL.into(),
        value_parser = positive,
    )]
    pub check_interval: humantime::Duration,

    /// Time a check may take before it counts as down (a command is then killed); at most
    /// the interval.
    #[arg(
        long,
        env = "CHARLA_CHECK_TIMEOUT",
        default_value_t = limits::CHECK_TIMEOUT.into(),
        value_parser = positive,
    )]
    pub check_timeout: humantime::Duration,

    /// Failed runs in a row before a check is DOWN (an alert); the failures before are
    /// PENDING (a notice). 1: the first failure is DOWN. A check's retries=N wins.
    #[arg(
        long,
        env = "CHARLA_CHECK_RETRIES",
        default_value_t = limits::CHECK_RETRIES,
        value_parser = clap::value_parser!(u32).range(1..=i64::from(limits::MAX_CHECK_RETRIES)),
    )]
    pub check_retries: u32,

    /// Warn this long before the certificate of a tls:// or https:// check expires (an
    /// alert, again at 7 days and 1 day).
    #[arg(
        long,
        env = "CHARLA_CHECK_CERT_WARN",
        default_value_t = limits::CHECK_CERT_WARN.into(),
        value_parser = positive,
    )]
    pub check_cert_warn: humantime::Duration,

    /// Repeat a DOWN alert at this interval (30m, 2h) while the check stays down. Unset:
    /// said once.
    #[arg(long, env = "CHARLA_CHECK_REMIND", value_parser = positive)]
    pub check_remind: Option<humantime::Duration>,

    /// A job that must call in (repeatable, or one per line in the variable):
    /// NAME=PERIOD[+GRACE], such as backup=24h+1h. With no call for PERIOD+GRACE, an alert
    /// `NAME is LATE` in #alerts; the next call, `NAME is UP again`. Calls: `charla send
    /// --beat NAME`, `charla run --beat NAME -- COMMAND…`, POST /beat/NAME on an http://
    /// listener, or a UDP datagram `beat NAME`.
    #[arg(
        long = "heartbeat",
        value_name = "NAME=PERIOD[+GRACE]",
        env = "CHARLA_HEARTBEAT",
        value_delimiter = '\n'
    )]
    pub heartbeat: Vec<HeartbeatSpec>,

    /// Room that UDP datagrams are posted to, unless they start with `#room ` naming a room
    /// that takes feed posts: this one, a room a feed posts to (#alerts, a --watch room), or
    /// a --feed-room; never a room users made.
    #[arg(long, env = "CHARLA_UDP_ROOM", default_value = ALERTS_ROOM, value_parser = room)]
    pub udp_room: RoomName,

    /// Largest UDP datagram posted, in bytes; a bigger one is dropped (and counted in the
    /// log).
    #[arg(long, env = "CHARLA_UDP_MAX_BYTES", default_value_t = limits::UDP_MAX_DATAGRAM)]
    pub udp_max_bytes: usize,

    /// UDP datagrams one source address may send in a burst.
    #[arg(long, env = "CHARLA_UDP_BURST", default_value_t = limits::UDP_BURST)]
    pub udp_burst: u32,

    /// UDP datagrams per second a source's burst refills at; more are dropped (0: no
    /// limit).
    #[arg(long, env = "CHARLA_UDP_RATE", default_value_t = limits::UDP_RATE)]
    pub udp_rate: u32,

    /// UDP datagrams a listener takes in a burst from all sources together.
    #[arg(long, env = "CHARLA_UDP_GLOBAL_BURST", default_value_t = limits::UDP_GLOBAL_BURST)]
    pub udp_global_burst: u32,

    /// UDP datagrams per second a listener takes from all sources together once that burst
    /// is spent; more are dropped and counted, however many sources send them (0: no limit).
    #[arg(long, env = "CHARLA_UDP_GLOBAL_RATE", default_value_t = limits::UDP_GLOBAL_RATE)]
    pub udp_global_rate: u32,

    /// A room that takes feed posts naming it, such as a UDP datagram starting with
    /// `#room ` (repeatable, or comma-separated in the variable). Opened at start-up and
    /// kept without members, like a feed's room.
    #[arg(
        long = "feed-room",
        value_name = "#ROOM",
        env = "CHARLA_FEED_ROOM",
        value_delimiter = ',',
        value_parser = room
    )]
    pub feed_room: Vec<RoomName>,

    /// Token that HTTP publish (Alertmanager's and heartbeats' too) and history need, as `Authorization: Bearer TOKEN`. Without
    /// it, anyone who reaches an http:// listener may post into any room (a listener beyond
    /// loopback without one is warned about at start-up). Prefer the variable: a command
    /// line is visible to every user of the machine.
    #[arg(long, env = "CHARLA_HTTP_TOKEN", hide_env_values = true)]
    pub http_token: Option<String>,

    /// An origin whose pages may open a WebSocket on the http:// listener, such as
    /// https://chat.example.org (repeatable, or comma-separated in the variable). The
    /// listener's own page always may; other cross-origin handshakes are refused.
    #[arg(
        long = "allowed-origin",
        value_name = "ORIGIN",
        env = "CHARLA_ALLOWED_ORIGIN",
        value_delimiter = ','
    )]
    pub allowed_origin: Vec<String>,

    /// The TLS certificate chain (PEM, the server's own certificate first) that tls://,
    /// ircs:// and https:// listeners present. Read again on SIGHUP: new connections get
    /// the new one, open ones are kept. Expired or not yet valid, it is refused at start-up
    /// (and on SIGHUP the current one is kept). A client has 10 s to finish its handshake.
    #[arg(
        long,
        env = "CHARLA_TLS_CERT",
        value_name = "PEM",
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM: PKCS#8, RSA or EC), read again on SIGHUP.
    #[arg(
        long,
        env = "CHARLA_TLS_KEY",
        value_name = "PEM",
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,

    /// HTTP posts one address may make in a burst.
    #[arg(long, env = "CHARLA_HTTP_BURST", default_value_t = limits::HTTP_BURST)]
    pub http_burst: u32,

    /// HTTP posts per second an address's burst refills at; more are answered 429 (0: no
    /// limit).
    #[arg(long, env = "CHARLA_HTTP_RATE", default_value_t = limits::HTTP_RATE)]
    pub http_rate: u32,
}

fn room(input: &str) -> Result<RoomName, String> {
    RoomName::parse(input).map_err(|e| e.to_string())
}

/// A bound that 0 would make serve nobody: no connection, no line, no byte queued, not
/// even #lobby, where every session starts.
fn nonzero(input: &str) -> Result<usize, String> {
    match input.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

fn at_least_one(input: &str) -> Result<usize, String> {
    match input.parse::<usize>() {
        Ok(0) => Err("must be at least 1 (--data none keeps nothing on disk)".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// Where history is kept, as the options say.
pub enum DataDir {
    /// In memory: forgotten on restart (`--data none`).
    None,
    /// In this directory's database, the directory created if missing.
    Dir(PathBuf),
}

/// A duration such as `500ms` or `10s`, more than zero.
fn positive(input: &str) -> Result<humantime::Duration, String> {
    let duration: humantime::Duration = input.parse().map_err(|e| format!("{e}"))?;
    if duration.is_zero() {
        return Err("must be more than zero".into());
    }
    Ok(duration)
}

impl Serve {
    pub fn addresses(&self) -> Result<Vec<ListenAddr>, String> {
        let mut all = Vec::new();
        for spec in &self.listen {
            if parse_udp(spec).is_none() {
                all.extend(ListenAddr::parse_all(spec)?);
            }
        }
        Ok(all)
    }

    /// The `udp://` addresses among `--listen`.
    pub fn udp_addresses(&self) -> Result<Vec<std::net::SocketAddr>, String> {
        self.listen
            .iter()
            .filter_map(|spec| parse_udp(spec))
            .collect()
    }

    /// Where history is kept: in memory with `--data none`, else in the --data directory
    /// or the default one.
    pub fn data_dir(&self) -> Result<DataDir, String> {
        match &self.data {
            Some(dir) if dir.as_os_str() == "none" => Ok(DataDir::None),
            Some(dir) => Ok(DataDir::Dir(dir.clone())),
            None => default_data_dir().map(DataDir::Dir).ok_or_else(|| {
                "no home directory to keep history in: give --data DIR, or --data none".into()
            }),
        }
    }

    pub fn feed_options(&self) -> FeedOptions {
        FeedOptions {
            watches: self.watch.clone(),
            checks: self.check.clone(),
            check_interval: self.check_interval.into(),
            check_timeout: self.check_timeout.into(),
            check_retries: self.check_retries,
            check_remind: self.check_remind.map(Into::into),
            check_cert_warn: self.check_cert_warn.into(),
            heartbeats: self.heartbeat.clone(),
            feed_rooms: self.feed_room.clone(),
            ..FeedOptions::default()
        }
    }

    pub fn ingest_options(&self) -> IngestOptions {
        IngestOptions {
            room: self.udp_room.clone(),
            max_bytes: self.udp_max_bytes,
            rate: self.udp_rate,
            burst: self.udp_burst,
            global_rate: self.udp_global_rate,
            global_burst: self.udp_global_burst,
        }
    }

    pub fn http_options(&self) -> HttpOptions {
        HttpOptions {
            token: self.http_token.clone().filter(|t| !t.is_empty()),
            allowed_origins: self.allowed_origin.clone(),
            rate: self.http_rate,
            burst: self.http_burst,
        }
    }

    /// The certificate and key files, when both are given.
    pub fn tls_files(&self) -> Option<TlsFiles> {
        Some(TlsFiles {
            cert: self.tls_cert.clone()?,
            key: self.tls_key.clone()?,
        })
    }

    pub fn limits(&self) -> Limits {
        Limits {
            max_line_bytes: self.max_line,
            history_per_room: self.history,
            history_room_bytes: self.history_room_bytes,
            history_bytes: self.history_bytes,
            max_rooms: self.max_rooms,
            max_rooms_per_client: self.max_rooms_per_client,
            send_queue_bytes: self.send_queue,
            max_connections: self.max_connections,
            max_connections_per_ip: self.max_per_ip,
            flood_burst: self.flood_burst,
            flood_rate: self.flood_rate,
            flood_kick_after: self.flood_kick,
            idle_timeout: Duration::from_secs(self.idle_timeout),
            ping_interval: Duration::from_secs(self.ping_interval),
            server_name: self.server_name.as_str().into(),
            opers: self.opers.clone(),
            irc_password: self.irc_password.as_deref().map(|password| {
                charla::accounts::ServerPassword::new(&charla::accounts::Secret::new(password))
            }),
        }
    }
}

/// `input` if it may name a node (`--node-name`): what a server's name may be, since it is
/// shown to users on every protocol's lines as one is.
fn node_name(input: &str) -> Result<String, String> {
    charla::protocol::irc::server_name(input).map_err(|_| {
        format!(
            "a node name is 1 to {} bytes of ASCII letters, digits, '.' and '-', starting \
             with a letter or digit",
            limits::MAX_SERVER_NAME_BYTES
        )
    })
}
