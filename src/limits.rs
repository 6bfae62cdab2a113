//! Every bound charla enforces, with its default, in one place.
//!
//! Each constant is the default of a `charla serve` option of the same meaning; `Limits`
//! carries the values in force so tests and the command line can change them.

use std::time::Duration;

/// Longest line a client may send, in bytes, line ending excluded. Enforced while reading:
/// the bytes past the bound are discarded up to the next newline, the sender gets a
/// `line_too_long` error and stays connected. Default 4096 (`--max-line`).
pub const MAX_LINE_BYTES: usize = 4096;

/// Messages each room remembers and replays to a newcomer. Older ones are forgotten.
/// Default 100 (`--history`); 0 keeps no history.
pub const HISTORY_PER_ROOM: usize = 100;

/// Bytes of history one room keeps, counted as `hub::stored_bytes` estimates them (text,
/// names, fields and the structures around them); past it the room's oldest messages are
/// forgotten. Default 1 MiB (`--history-room-bytes`): a full history of 100 lines of 4 KiB.
pub const HISTORY_ROOM_BYTES: usize = 1024 * 1024;

/// Bytes of history all rooms keep together; past it the oldest messages of any room are
/// forgotten first. Default 64 MiB (`--history-bytes`).
pub const HISTORY_BYTES: usize = 64 * 1024 * 1024;

/// Entries one IRC `CHATHISTORY` request, or one JSON or HTTP history `before` an id,
/// answers at most (IRCv3 draft/chathistory), advertised as ISUPPORT `CHATHISTORY=100`; a
/// larger limit asked for is cut to it. Default 100.
pub const CHATHISTORY_MAX: usize = 100;

/// Entries one `history … since ID` request answers at most: the oldest after ID first, so
/// a client with more to catch up asks again after the last id it got. Default 1,000.
pub const HISTORY_SINCE_MAX: usize = 1_000;

/// Rooms one connection may be in at once. A join past it is refused with
/// `too_many_rooms`; IRC clients are told it as CHANLIMIT. `#lobby` counts, so it is at
/// least 1. Default 100 (`--max-rooms-per-client`).
pub const MAX_ROOMS_PER_CLIENT: usize = 100;

/// Rooms users may have open at once (`#lobby` and rooms opened by feeds are not
/// counted). Joining a room that does not exist yet is refused past it with
/// `too_many_rooms`; a room ends when its last member leaves. Default 10,000
/// (`--max-rooms`).
pub const MAX_ROOMS: usize = 10_000;

/// Bytes that may wait in one connection's outgoing queue. A client that stops reading
/// until its queue passes this bound is disconnected with the reason "send queue exceeded";
/// no sender ever waits for it. Default 1 MiB (`--send-queue`): room for a full history
/// replay (100 lines of up to 4 KiB) on top of live traffic. The bytes of a broadcast are
/// shared by all its recipients, so the memory this bounds is mostly not per client.
pub const SEND_QUEUE_BYTES: usize = 1024 * 1024;

/// The longest lines (`--max-line`) a send queue must hold at least: one such line said in
/// a room comes to nearly twice its size in JSON (each `"` escaped), so a smaller queue
/// would put out every JSON reader of the first long line. With the default `--max-line`,
/// `--send-queue` may not be below 16 KiB. Checked at start-up.
pub const SEND_QUEUE_LINES: usize = 4;

/// The smallest send queue whatever `--max-line`: room for a greeting and the replies to
/// a client's first requests. 16 KiB.
pub const SEND_QUEUE_MIN_BYTES: usize = 16 * 1024;

/// Connections served at once. The next one is told `server_full` and closed.
/// Default 10,000 (`--max-connections`).
pub const MAX_CONNECTIONS: usize = 10_000;

/// Connections served at once from one IP address (Unix-socket clients are not counted).
/// The next one is told `too_many_connections` and closed. Default 100 (`--max-per-ip`);
/// 0 means no per-address bound.
pub const MAX_CONNECTIONS_PER_IP: usize = 100;

/// Lines a client may send in a burst before flood control refuses them. Default 20
/// (`--flood-burst`).
pub const FLOOD_BURST: u32 = 20;

/// Lines per second a client's burst allowance refills at. Default 5 (`--flood-rate`);
/// 0 turns flood control off.
pub const FLOOD_RATE: u32 = 5;

/// Lines refused in a row for flooding after which the client is disconnected with the
/// reason "flooding". Default 20 (`--flood-kick`).
pub const FLOOD_KICK_AFTER: u32 = 20;

/// Time without a single byte from a client after which it is disconnected with the reason
/// "timed out". Default 0, meaning never: an idle `nc` user may lurk for ever; dead peers are
/// found by TCP keepalive instead (`--idle-timeout`, in seconds).
pub const IDLE_TIMEOUT: Duration = Duration::ZERO;

/// How long a new text/JSON line connection may stay silent before it is taken for a person
/// at `nc` and put in `#lobby`, as its first line would if it is text. A program whose first
/// line is a JSON `hello` within this is never put there unless the hello names it, so
/// people in `#lobby` do not see every script come and go. It only delays the lobby for a
/// reader who says nothing; the greeting is written at once. Long enough for a program's
/// hello after one round trip. Default 250 ms (a constant).
pub const LOBBY_GRACE: Duration = Duration::from_millis(250);

/// Characters of a private message quoted in the late `not_delivered` error telling its
/// sender that it may be lost (the link to the other nodes of a cluster failed as it was
/// sent), so that a reader without references can tell which it was; a longer text is
/// cut and marked `…`. Default 30 (a constant).
pub const UNDELIVERED_QUOTE_CHARS: usize = 30;

/// Silence after which an IRC client is sent a PING; one that says nothing for as long
/// again (a PONG is enough) is disconnected as "timed out", and one that has not
/// registered by then is disconnected without a PING. Default 90 s (`--ping-interval`, in
/// seconds): a vanished IRC client is found within 3 minutes. Text and JSON clients are
/// left to TCP keepalive and `--idle-timeout`.
pub const PING_INTERVAL: Duration = Duration::from_secs(90);

/// Idle time before the kernel starts probing a silent TCP peer, the interval between probes,
/// and how many unanswered probes mean the peer is gone ("timed out"): a vanished peer is
/// found in about 60 + 3 × 10 = 90 seconds.
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
/// See [`KEEPALIVE_IDLE`].
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
/// See [`KEEPALIVE_IDLE`].
pub const KEEPALIVE_PROBES: u32 = 3;

/// Length of the kernel's queue of connections not yet accepted, so a storm of connects is
/// queued rather than refused. The kernel caps it at `net.core.somaxconn`.
pub const LISTEN_BACKLOG: i32 = 4096;

/// How long a shutting-down server waits for goodbyes to be written before it exits anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// How long a connection that said its goodbye keeps reading what the peer still sends,
/// waiting for it to hang up, before closing: long enough for the peer to read the goodbye
/// (closing on unread input resets the connection and can destroy it), short enough that
/// a person's `nc`, which never hangs up by itself, does not hold a shutdown for the whole
/// [`SHUTDOWN_GRACE`] (and `charla port --kill` to SIGKILL). Default 500 ms.
pub const GOODBYE_LINGER: Duration = Duration::from_millis(500);

/// How long a session that ends while acks are still owed to it (its messages said but not
/// yet committed to the history file, or in a cluster not yet handed back by Redis) waits
/// for them before its goodbye: put out for flooding, its own quit, an idle timeout, a send
/// queue that overflowed, the server shutting down. Reading stops at once; what is still
/// owed after this long is told as one `unconfirmed` error before the goodbye. The goodbye
/// is then written within [`SHUTDOWN_GRACE`]. Default 2 s.
pub const ACK_GRACE: Duration = Duration::from_secs(2);

/// Members above which a room stops announcing joins, leaves and nick changes. In a crowd
/// they are noise, and each costs a line to every member: a thousand people joining a
/// thousand-member room would be half a million lines. Whoever joins still gets their own
/// join with the member count, and `/users` names everyone. Default 100.
pub const ANNOUNCE_MAX_MEMBERS: usize = 100;

/// Members named to someone joining a room; the rest are counted, and `/users` names them
/// all. Keeps a join into a crowded room from costing a line as long as the room. A room
/// setting (`hub::RoomSettings`); default 20.
pub const MEMBERS_SHOWN_ON_JOIN: usize = 20;

/// Longest nick, in characters (not bytes): `Begoña` is 6.
pub const MAX_NICK_CHARS: usize = 24;

/// Longest room name, in characters, including the leading `#`.
pub const MAX_ROOM_CHARS: usize = 32;

/// Longest room topic, in bytes of UTF-8 (IRC counts TOPICLEN in bytes). A longer topic is
/// cut on a character boundary when it is set, in every protocol; IRC clients are told it
/// as TOPICLEN.
pub const TOPICLEN: usize = 390;

/// Longest away message (`/away`, IRC's AWAY), in bytes of UTF-8. A longer one is cut on
/// a character boundary when it is set, in every protocol; IRC clients are told it as
/// AWAYLEN.
pub const AWAYLEN: usize = 200;

/// Most bytes of tags one message from an IRC client may carry (IRCv3 message-tags bounds
/// all the tags a client sends, client-only `+name=value` or not); a message with more is
/// refused with 417.
pub const MAX_CLIENT_TAGS_BYTES: usize = 4094;

/// Longest real name (IRC's USER, shown by WHOIS), in bytes of UTF-8. A longer one is cut
/// on a character boundary when it is given.
pub const REALNAMELEN: usize = 64;

/// Longest user name (IRC's USER, shown by WHO and WHOIS), in bytes: ASCII letters,
/// digits, `-`, `_` and `.` are kept, anything else dropped, and the rest cut to this.
/// Default 16.
pub const USERLEN: usize = 16;

/// Mode changes that take a parameter (`+b`, `+k`, `+l`, `+o`, `+v`) one mode request may
/// make. A request with more is refused whole with `invalid_argument`, in every protocol;
/// IRC clients are told it as MODES.
pub const MAX_MODE_ARGS: usize = 12;

/// Ban masks one room keeps. Setting another past it is refused with `invalid_argument`
/// (an operator lifts one first); IRC clients are told it as MAXLIST=b:50.
pub const MAX_BANS_PER_ROOM: usize = 50;

/// Invitations one room holds for people who have not used them yet. Past it, invitations
/// whose invitee has left the server are dropped, and if none has, the invitation is
/// refused with `invalid_argument`.
pub const MAX_INVITES_PER_ROOM: usize = 100;

/// Accounts one room remembers as its operators, so they are operators again when they come
/// back while the room lives (after a reconnect, from another connection). Past it, a
/// newly made operator is one for this session only. Default 100.
pub const MAX_OP_ACCOUNTS_PER_ROOM: usize = 100;

/// Longest key (`+k`) a room may have, in bytes; a longer one is refused with
/// `invalid_argument`.
pub const MAX_KEY_BYTES: usize = 32;

/// Bytes of queued lines copied into one write, whole lines only (a longer line goes out
/// in parts of this size). A client that has fallen behind catches up in writes of up to
/// this much: about 256 lines of 100-byte chat. Smaller writes left an overloaded server
/// behind for good, larger ones stalled in the sockets' buffers (docs/benchmarks.md, "What
/// limits it").
pub const MAX_WRITE_BYTES: usize = 32 * 1024;

/// Messages appended to a room's log between two checks of its members' places: the log
/// then drops what everyone has read, and a member whose unread part of it plus its own
/// queue is over its send queue bound ([`SEND_QUEUE_BYTES`]) is disconnected. A member
/// that stops reading is thus noticed within this many messages, and a log keeps at most
/// this many entries beyond what its slowest member still has to read.
pub const LOG_CHECK_EVERY: usize = 64;

// ---- Feeds: file watcher, checks, UDP alerts, `charla port` ---------------------------------

/// How long the file watcher gathers the events of one watched path before it posts one
/// notice for all of them: an editor's save (write a temporary file, rename it over the
/// old one) or `truncate` + `write` is one notice, not five. The window opens at the
/// first event, so a notice is posted at most this long after the change (plus the
/// kernel's own delay); a writer slower than that gets one notice per window.
pub const WATCH_DEBOUNCE: Duration = Duration::from_millis(50);

/// File-system events waiting for the watcher's task. Past it further events are dropped,
/// which loses nothing but detail: the path is already due for a notice, and the notice
/// describes the file as it then is.
pub const WATCH_EVENT_QUEUE: usize = 1024;

/// Time between two runs of each `--check`. Default 10 s (`--check-interval`).
pub const CHECK_INTERVAL: Duration = Duration::from_secs(10);

/// The checks' first runs are spread over the first `--check-interval` in steps of this
/// (so are all their runs after): a thousand checks do not all open a connection at once,
/// and the runtime still wakes for several runs at a time. Default 250 ms.
pub const CHECK_SPREAD_STEP: Duration = Duration::from_millis(250);

/// Time a check may take (a TCP connect, a command) before it counts as failed ("timed
/// out") and, for a command, its process group is killed. Default 5 s
/// (`--check-timeout`), and never more than the interval.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Failed runs in a row before a check is DOWN; the failures before are PENDING (a notice,
/// not an alert). Default 1 (`--check-retries`, or `retries=N` on one check): the first
/// failure is DOWN.
pub const CHECK_RETRIES: u32 = 1;

/// Most `retries=N` (or `--check-retries`) a check may ask for: 100. Beyond it a check
/// would take so long to say DOWN that it says nothing useful; a larger value is refused
/// at start-up.
pub const MAX_CHECK_RETRIES: u32 = 100;

/// Redirects an HTTP check follows before it counts as failed ("more than 5 redirects").
/// Default 5: a health URL that needs more is broken.
pub const HTTP_CHECK_MAX_REDIRECTS: usize = 5;

/// Bytes of an HTTP check's response body read and searched for its `keyword=`; the rest
/// is never downloaded. Default 64 KiB.
pub const HTTP_CHECK_BODY_BYTES: usize = 64 * 1024;

/// Characters of a `charla run` job's last output lines shown in its FAILED alert; the end
/// is kept, where the error usually is. Default 300.
pub const BEAT_OUTPUT_CHARS: usize = 300;

/// Bytes of each of a `charla run` command's outputs (stdout, stderr) kept to send with
/// its end; the rest passes through and is forgotten. Default 1024, so the call fits a
/// line of the default --max-line.
pub const RUN_OUTPUT_BYTES: usize = 1024;

/// How long before the certificate of a `tls://` or `https://` check expires it is an
/// alert; again at 7 days and at 1 day. Default 14 days (`--check-cert-warn`).
pub const CHECK_CERT_WARN: Duration = Duration::from_secs(14 * 86_400);

/// Length of one bucket of a check's recent runs (its uptime over the last day and the
/// page's chart of its response time): runs are counted per bucket, so a check keeps the
/// same memory however often it runs. Default 5 minutes.
pub const CHECK_UPTIME_BUCKET: Duration = Duration::from_secs(5 * 60);

/// Buckets of [`CHECK_UPTIME_BUCKET`] a check keeps: its uptime in `/status` is over these
/// (24 hours), at 4 bytes each (runs and failed runs). Default 288.
pub const CHECK_UPTIME_BUCKETS: usize = 288;

/// Buckets of the last hours a check's status item carries as `responses` for the page's
/// chart (6 hours); the time runs took is kept for these only, at 4 bytes each. Default 72.
pub const CHECK_CHART_BUCKETS: usize = 72;

/// Longest `/silence NAME DURATION`: a check silenced for longer is as good as removed, and
/// should be. Default 30 days.
pub const MAX_SILENCE: Duration = Duration::from_secs(30 * 86_400);

/// Characters of an `/ack` note or a `/silence` reason kept and shown; the rest is cut.
/// Default 200.
pub const ALERT_NOTE_CHARS: usize = 200;

/// Bytes of a `POST /alertmanager` body read; a longer one is answered 413 Payload Too Large
/// and nothing of it is posted (Alertmanager's `max_alerts` keeps its payloads under this).
/// Default 256 KiB.
pub const ALERTMANAGER_BODY_BYTES: usize = 256 * 1024;

/// Alerts from Alertmanager kept firing in one room (for `/status`). A payload that would
/// start more is answered 503 and nothing of it posted, so Alertmanager retries it once some
/// resolved. Default 1,000.
pub const ALERTMANAGER_MAX_FIRING: usize = 1000;

/// Characters kept of an Alertmanager alert's summary and of its labels, each; the rest is
/// cut and marked `…`. Default 300.
pub const ALERTMANAGER_TEXT_CHARS: usize = 300;

/// Bytes of a check command's output kept to explain a failure; the rest is discarded.
pub const CHECK_OUTPUT_BYTES: usize = 4096;

/// Characters of a failure's reason shown in an alert.
pub const CHECK_REASON_CHARS: usize = 200;

/// Largest UDP datagram posted, in bytes. A bigger one is dropped whole (and counted in
/// the log), never cut. Default 4096 (`--udp-max-bytes`), the same as a chat line.
pub const UDP_MAX_DATAGRAM: usize = 4096;

/// Datagrams one source address may have posted in a burst. Default 20 (`--udp-burst`).
pub const UDP_BURST: u32 = 20;

/// Datagrams per second a source's burst refills at; a datagram over the allowance is
/// dropped and counted. Default 5 (`--udp-rate`); 0 turns the limit off.
pub const UDP_RATE: u32 = 5;

/// Datagrams one UDP listener may post in a burst, from all sources together. Default 200
/// (`--udp-global-burst`).
pub const UDP_GLOBAL_BURST: u32 = 200;

/// Datagrams per second one UDP listener posts at most, from all sources together, once its
/// burst is spent: the per-source allowance alone lets a thousand source addresses post
/// 5,000 alerts a second. A datagram within its source's allowance but over this one is
/// dropped and counted (`global_rate_limited`). Default 100 (`--udp-global-rate`); 0 turns
/// the limit off.
pub const UDP_GLOBAL_RATE: u32 = 100;

/// Source addresses whose allowance is tracked at once. When full, sources whose allowance
/// is whole again are forgotten; if none is, datagrams from new sources are dropped until
/// one is.
pub const UDP_MAX_SOURCES: usize = 1024;

/// Shortest time between two log lines that count dropped datagrams; drops in between are
/// added up into the next one.
pub const UDP_DROP_REPORT_EVERY: Duration = Duration::from_secs(10);

/// Posts one address may make to an `http://` listener's `POST /rooms/NAME` in a burst.
/// Default 20 (`--http-burst`).
pub const HTTP_BURST: u32 = 20;

/// Posts per second an address's burst refills at; a post over the allowance is answered
/// 429 Too Many Requests and not posted. Default 5 (`--http-rate`); 0 turns the limit off.
pub const HTTP_RATE: u32 = 5;

/// Addresses whose publish allowance is tracked at once. When full, addresses whose
/// allowance is whole again are forgotten; if none is, posts from new addresses are
/// answered 429 until one is.
pub const HTTP_MAX_SOURCES: usize = 1024;

/// Characters of a post's `Title` and of its `Tags` header kept; the rest is cut.
pub const HTTP_HEADER_CHARS: usize = 256;

/// Time an HTTP client has to send a request's headers (the first, or the next on a kept
/// connection); a slower one is disconnected, so idle HTTP connections do not hold their
/// place for ever.
pub const HTTP_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Time a client of a `tls://`, `ircs://` or `https://` listener has to finish the TLS
/// handshake, counted from its connection; a slower one is logged and disconnected. It
/// holds a place among the connection bounds meanwhile, so a crowd of slow handshakes meets
/// `--max-connections` and `--max-per-ip` like any other crowd. Default 10 s.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Silence after which the server pings a WebSocket client (a frame of any kind from it
/// resets the wait), so proxies between them, which close connections idle for a minute or
/// so, keep it open. A dead peer is found by TCP keepalive, as for any client.
pub const WS_PING_INTERVAL: Duration = Duration::from_secs(30);

/// Bytes of the read buffer each WebSocket connection keeps (tungstenite's, allocated at
/// once and kept for the connection's life; it grows while a bigger frame is read). Its
/// default, 128 KiB, made an idle WebSocket cost over 100 times an idle TCP client.
pub const WS_READ_BUFFER_BYTES: usize = 1024;

/// Messages `GET /rooms/NAME/messages` returns when not given `limit`; the room's whole
/// history is at most `--history`.
pub const HTTP_HISTORY_DEFAULT: usize = 50;

/// How long `charla port PORT --kill` waits after SIGTERM before it sends SIGKILL to the
/// processes still running. Default 3 s (`--grace`).
pub const PORT_KILL_GRACE: Duration = Duration::from_secs(3);

/// Password hashes (argon2) computed at once, on blocking threads, never on the hub's lock
/// or a runtime worker. Argon2 is slow by design (tens of milliseconds and 19 MiB each):
/// more logins wait their turn, each connection at most one, so the wait is bounded by the
/// connections served. Default 2.
pub const MAX_CONCURRENT_HASHES: usize = 2;

/// Login attempts (password or SASL) one address may make in [`LOGIN_WINDOW`]; past it
/// each attempt is refused with `rate_limited` before any hash is computed. Default 10.
pub const LOGIN_ATTEMPTS_PER_ADDRESS: u32 = 10;

/// Registrations (`/register`) one address may make in [`LOGIN_WINDOW`]: each is a hash
/// and an account kept for good, so past it each is refused with `rate_limited` before
/// any hash is computed. Default 10.
pub const REGISTRATIONS_PER_ADDRESS: u32 = 10;

/// Login attempts on one account, from anywhere, in [`LOGIN_WINDOW`]: guessing one
/// account's password from many addresses is slowed as much. Default 10.
pub const LOGIN_ATTEMPTS_PER_ACCOUNT: u32 = 10;

/// The window login attempts are counted in; the count starts again after it. Default
/// 60 s.
pub const LOGIN_WINDOW: Duration = Duration::from_secs(60);

/// Addresses and accounts whose login attempts are counted at once; past it, those whose
/// window has ended are forgotten, and if none has, a new one is refused with
/// `rate_limited` (memory stays bounded under a spray of addresses). Default 10,000.
pub const LOGIN_TRACKED: usize = 10_000;

/// Longest password accepted, in bytes: argon2 would take any length, this bounds the
/// work and memory an attempt costs. Shorter than [`MIN_PASSWORD_CHARS`] is refused too.
/// Default 256.
pub const MAX_PASSWORD_BYTES: usize = 256;

/// Shortest password a registration or `/password` accepts, in characters. Default 8.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// API tokens one account may hold; `/token new` past it is refused until one is
/// revoked. Default 20.
pub const MAX_TOKENS_PER_ACCOUNT: usize = 20;

/// Longest token label, in characters (letters, digits, `-`, `_`, `.`). Default 32.
pub const MAX_TOKEN_LABEL_CHARS: usize = 32;

/// The name an IRC server gives itself (`--server-name`): the prefix of its numerics and
/// notices, what PONG and 004 answer with. Default `charla`.
pub const SERVER_NAME: &str = "charla";

/// Longest `--server-name`, in bytes (a DNS label's bound: 63). Default 63.
pub const MAX_SERVER_NAME_BYTES: usize = 63;

/// The bounds a running server applies to connections; `Default` gives the constants above.
/// (The feeds' bounds travel in `feeds::FeedOptions` and `feeds::udp::IngestOptions`.)
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_line_bytes: usize,
    pub history_per_room: usize,
    pub history_room_bytes: usize,
    pub history_bytes: usize,
    pub max_rooms: usize,
    pub max_rooms_per_client: usize,
    pub send_queue_bytes: usize,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    pub flood_burst: u32,
    pub flood_rate: u32,
    pub flood_kick_after: u32,
    pub idle_timeout: Duration,
    pub ping_interval: Duration,
    /// Not a bound, but the other setting each IRC connection's codec needs: the name
    /// it gives the server ([`SERVER_NAME`]).
    pub server_name: Box<str>,
    /// Nor is this: the password IRC's PASS must give before registering
    /// (`--irc-password`), if one is set.
    pub irc_password: Option<crate::accounts::ServerPassword>,
    /// `--oper NAME:HASH`: the server operators, none by default.
    pub opers: Vec<crate::accounts::ServerOper>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line_bytes: MAX_LINE_BYTES,
            history_per_room: HISTORY_PER_ROOM,
            history_room_bytes: HISTORY_ROOM_BYTES,
            history_bytes: HISTORY_BYTES,
            max_rooms: MAX_ROOMS,
            max_rooms_per_client: MAX_ROOMS_PER_CLIENT,
            send_queue_bytes: SEND_QUEUE_BYTES,
            max_connections: MAX_CONNECTIONS,
            max_connections_per_ip: MAX_CONNECTIONS_PER_IP,
            flood_burst: FLOOD_BURST,
            flood_rate: FLOOD_RATE,
            flood_kick_after: FLOOD_KICK_AFTER,
            idle_timeout: IDLE_TIMEOUT,
            ping_interval: PING_INTERVAL,
            server_name: SERVER_NAME.into(),
            irc_password: None,
            opers: Vec::new(),
        }
    }
}

impl Limits {
    /// Bounds that would put every client out at its first long line or its greeting: a
    /// send queue below [`SEND_QUEUE_LINES`] of the longest lines, or below
    /// [`SEND_QUEUE_MIN_BYTES`].
    pub fn check(&self) -> Result<(), String> {
        let least = SEND_QUEUE_MIN_BYTES.max(SEND_QUEUE_LINES.saturating_mul(self.max_line_bytes));
        if self.send_queue_bytes < least {
            return Err(format!(
                "--send-queue {} is too small: give at least {least} bytes ({SEND_QUEUE_LINES} lines of --max-line {}, and never below {SEND_QUEUE_MIN_BYTES}), or every client is put out at its greeting or the first long line",
                self.send_queue_bytes, self.max_line_bytes
            ));
        }
        Ok(())
    }

    /// How much history rooms keep in memory.
    pub fn history_bounds(&self) -> crate::hub::HistoryBounds {
        crate::hub::HistoryBounds {
            per_room: self.history_per_room,
            room_bytes: self.history_room_bytes,
            total_bytes: self.history_bytes,
        }
    }
}

/// How often a cluster node (`--cluster`) says it is alive: it refreshes its key in Redis
/// and publishes a heartbeat, which also comes back to it as the probe of its own
/// subscription. Default 1 s.
pub const CLUSTER_HEARTBEAT: Duration = Duration::from_secs(1);

/// How often a cluster node (`--cluster`) tells the others when its users last said
/// something (WHOIS's and WHO's idle time of a user of another node): one publication per
/// [`CLUSTER_ACTIVITY_BATCH`] users who spoke since the last, none on the message path.
/// Another node's idle time is that much too long at most. Default 5 s.
pub const CLUSTER_ACTIVITY_EVERY: Duration = Duration::from_secs(5);

/// The most users one report of activity ([`CLUSTER_ACTIVITY_EVERY`]) names; more are
/// told in several, so that each stays well under [`CLUSTER_PAYLOAD_BYTES`]. Default 1,000.
pub const CLUSTER_ACTIVITY_BATCH: usize = 1000;

/// The most a publication of a cluster node's sessions told anew (a round, after a
/// `hello` or an outage) holds, in bytes of JSON: as many sessions as fit are told in one
/// (about 150 to 300 bytes each, so a hundred or more), rather than one publication each.
/// A session alone longer than it (a hundred rooms with long names) is told alone. Well
/// under [`CLUSTER_PAYLOAD_BYTES`], which every node reads. Default 32 KiB.
pub const CLUSTER_PRESENCE_BATCH_BYTES: usize = 32 * 1024;

/// How often a cluster node with checks or heartbeats reports their status to the others
/// (`/status` on any node lists them), besides soon after one changed state: what another
/// node's items say of durations ("up for 3m") is that old at most. One publication per
/// node per interval (more past [`CLUSTER_ALERTS_BATCH_BYTES`]), none from a node without
/// them. Default 5 s.
pub const CLUSTER_ALERTS_EVERY: Duration = Duration::from_secs(5);

/// The least time between two reports of a node's checks and heartbeats made because one
/// changed: changes in a burst (a flood of beats) are told together. Default 250 ms.
pub const CLUSTER_ALERTS_GAP: Duration = Duration::from_millis(250);

/// The most one publication of a node's report of its checks and heartbeats holds, in
/// bytes of JSON (an item is about 300 to 700 bytes, its response-time chart included);
/// a longer report goes in several. Well under [`CLUSTER_PAYLOAD_BYTES`]. Default 32 KiB.
pub const CLUSTER_ALERTS_BATCH_BYTES: usize = 32 * 1024;

/// The most checks and heartbeats of one other node kept (and listed by `/status`); past
/// them its report is cut, and logged. Default 10,000.
pub const CLUSTER_ALERTS_ITEMS: usize = 10_000;

/// How long a call sent to another node's check or heartbeat (a job's beat, `/ack`,
/// `/silence`, `/unsilence` on a node that does not run it) waits for its answer; past it
/// the caller is told the node did not answer (`cluster_unreachable`). Default 5 s, the
/// node timeout: a node that does not answer within it is as good as gone.
pub const CLUSTER_CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// The most calls to other nodes' checks and heartbeats waiting for their answers at once
/// on a node; past it one is refused (`cluster_unreachable`). Default 1,000.
pub const CLUSTER_CALLS_WAITING: usize = 1000;

/// How often a cluster node tells the others how many sessions it has and a digest of
/// them (their ids, nicks, rooms and standing in each): one small publication per node
/// per interval, queued after the presences it told before, none on the message path. A
/// node whose copy of them differs (a presence not heard, a round not heard whole) asks
/// it to tell them all anew, so a user gone unheard leaves the lists within about this
/// long. Default 5 s.
pub const CLUSTER_TALLY_EVERY: Duration = Duration::from_secs(5);

/// How long a cluster node may go unheard before the others take it for dead: its users
/// leave their rooms everywhere, and its key in Redis (which makes its nicks valid) expires
/// after the same time, so their nicks are free. Default 5 s.
pub const CLUSTER_NODE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long an HTTP post (`POST /rooms/NAME`) on a cluster node waits for Redis to number
/// it, to answer its `seq` as a node alone does: longer than a pipeline to Redis takes to
/// fail (its response timeout, [`CLUSTER_NODE_TIMEOUT`]), when the post is held and
/// answered at once without its number. Past it (its copy lost on the way back) it is
/// answered without its number too. Default 6 s.
pub const CLUSTER_POST_WAIT: Duration = Duration::from_secs(6);

/// How long a node's own heartbeat may take to come back through its subscription before
/// the subscription is taken for dead (alive but delivering nothing) and made again.
/// Default 3 s.
pub const CLUSTER_PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// What may wait to be sent to Redis, in messages and presence changes (`--cluster-outbox`).
/// Past it, a message or a feed's post is refused, not said: its sender is told
/// `store_unavailable` (as when the history writer is behind), so that no message is heard
/// on its own node only; never does a sender wait. Default 65,536.
pub const CLUSTER_OUTBOX: usize = 65_536;

/// Ids of messages a cluster node remembers because Redis may carry them twice: its own
/// whose pipeline failed (heard here as they fell back, and perhaps run by Redis before it
/// failed) and other nodes' published after an outage (published again if that failed and
/// the room's backlog no longer shows that Redis ran it).
/// Each is heard once while remembered; filled only after failures, the oldest forgotten
/// first (about 40 bytes each). Default 65,536.
pub const CLUSTER_ONCE_IDS: usize = 65_536;

/// What is sent to Redis in one pipeline, at most. Default 512.
pub const CLUSTER_BATCH: usize = 512;

/// Pipelines sent to Redis and not answered yet, at most; past it what waits is sent when
/// one is answered (in larger pipelines). Default 16.
pub const CLUSTER_IN_FLIGHT: usize = 16;

/// Messages and feed posts a cluster node holds while Redis is out of reach, all rooms
/// together, to publish in order once it is back (the node's own users hear them at once).
/// Past it, what is said is heard on its own node only: once Redis is back the rooms'
/// members on the other nodes get a `gap` for them and each speaker is told how many of its
/// messages were not relayed. Default 10,000.
pub const CLUSTER_OUTAGE_HELD: usize = 10_000;

/// Sessions of a cluster node that ended lately (within twice `CLUSTER_NODE_TIMEOUT`, or
/// since Redis went out of reach) that it remembers, to tell the other nodes again that
/// they are gone once Redis is back, and any node that (re)joins: their first word may
/// have been lost with Redis. Past it, the oldest is forgotten. Default 10,000.
pub const CLUSTER_DEPARTED_KEPT: usize = 10_000;

/// Changes to rooms (a topic, modes, bans, a room founded, and their announcements) a
/// cluster node holds while Redis is out of reach, to publish once it is back. Past it,
/// a change holds on its own node only (logged) until the next change to the same things.
/// Default 1,000.
pub const CLUSTER_OUTAGE_CHANGES: usize = 1_000;

/// Nicks a cluster node's users let go of (quitting, renaming) while Redis is out of
/// reach, held to be let go in Redis once it is back, so that users of other nodes may
/// take them. Past it, such a nick stays taken in Redis until the node restarts (logged).
/// Default 10,000.
pub const CLUSTER_OUTAGE_RELEASES: usize = 10_000;

/// Messages of each room kept in Redis (its backlog, trimmed as each is added): what a node
/// that was cut off from Redis, or started later, reads back; numbers older than it are a
/// `gap` for the room's members. Default 1,000.
pub const CLUSTER_BACKLOG: usize = 1_000;

/// How long a room's backlog stays in Redis after the last message added to it: each one
/// added sets it again, so the backlogs of rooms nobody uses any more go by themselves
/// (and are not read after every subscription). A node cut off, or started, after that
/// reads nothing of the room from Redis (numbers it missed are a `gap`). The room's last
/// number does not go, so its numbers never go back. Default 30 days.
pub const CLUSTER_BACKLOG_TTL: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// The shortest and the longest wait between two attempts to reach Redis again; each
/// failure doubles the wait. Defaults 100 ms and 5 s.
pub const CLUSTER_RETRY_MIN: Duration = Duration::from_millis(100);
pub const CLUSTER_RETRY_MAX: Duration = Duration::from_secs(5);

/// Longest publication read from Redis, in bytes; a longer one is logged and skipped.
/// Default 64 KiB: a message at the longest line, its names and its JSON around it.
pub const CLUSTER_PAYLOAD_BYTES: usize = 64 * 1024;

/// Longest mask a WHO matches users against (`ana*`, `*!bob@*`), in characters. The mask
/// is matched against every user of the server under the hub's lock, so its length bounds
/// that work; a longer mask matches nobody (IRC's `315` alone). Default 64.
pub const MAX_WHO_MASK_CHARS: usize = 64;

/// Most users one WHO by mask lists (`WHO *` on a big server): the rest are left out, so
/// one request cannot build a reply the size of the server under the hub's lock. WHO of a
/// room lists all its members, as NAMES does. Default 500.
pub const MAX_WHO_MASK_REPLIES: usize = 500;

/// How long a cluster node's claim to run a check or heartbeat (`charla:runs:NAME` in
/// Redis) lasts unless renewed; the node renews it every [`CLUSTER_HEARTBEAT`]. A node
/// that dies holds its names this long before another node that has them takes over.
/// Default 5 s (as [`CLUSTER_NODE_TIMEOUT`]).
pub const CLUSTER_LEASE_TTL: Duration = CLUSTER_NODE_TIMEOUT;

/// The most checks and heartbeats one cluster node claims in Redis to run once for the
/// whole cluster; past them a name is run by this node alone, unclaimed (as before
/// leases), and logged. Default 10,000 (as [`CLUSTER_ALERTS_ITEMS`]).
pub const CLUSTER_LEASES: usize = 10_000;
