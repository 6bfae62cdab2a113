//! What the hub tells sessions, and the wrapper that lets each wire format encode an event
//! once however many recipients share it.

use std::any::TypeId;
use std::fmt;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use super::command::NoticeTarget;
use super::names::{Nick, RoomName};
use super::ops::{Ban, ModeChange, Modes, Standing, Topic};
use super::post::{Entry, Notice, Posted};
use super::tags::ClientTags;
use super::text::MessageText;

/// A message said in a room, live or replayed from history.
#[derive(Debug, Clone)]
pub struct Said {
    /// Unique in this server's lifetime, increasing.
    pub id: u64,
    /// Its number in its room: one more than the room's entry before it.
    pub seq: u64,
    /// Server time, milliseconds since the Unix epoch.
    pub ts: u64,
    pub room: RoomName,
    pub from: Nick,
    pub text: MessageText,
    /// Said with `/me`.
    pub action: bool,
    /// Sent as a notice (IRC's NOTICE): never answered automatically.
    pub notice: bool,
    /// The account the sender was logged in to (IRCv3 account-tag); kept in history.
    pub account: Option<Nick>,
    /// What an IRC client attached for other clients; kept in history.
    pub tags: Option<ClientTags>,
}

/// Why a room's entries are missing from what a session gets ([`Event::Gap`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapCause {
    /// No longer kept: past what history keeps, or what a resume replays; in a cluster,
    /// missed while cut off and gone from Redis's backlog since.
    NotKept,
    /// Said on another node of a cluster while it was cut off from Redis, past what it
    /// holds for then: never relayed to the other nodes.
    NotRelayed,
}

impl GapCause {
    /// As JSON's `gap` names it (`reason`).
    pub fn code(self) -> &'static str {
        match self {
            GapCause::NotKept => "not_kept",
            GapCause::NotRelayed => "not_relayed",
        }
    }
}

/// How many are connected and how many rooms exist: sent with the welcome and for a
/// query (IRC's LUSERS).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Census {
    /// Sessions connected to this server now.
    pub users: usize,
    /// Server operators connected, to this node and to every other node of a cluster.
    pub opers: usize,
    /// The most sessions connected at once since the server started.
    pub peak: usize,
    pub rooms: usize,
    /// Sessions connected to every node of a cluster now (`users` for a server alone),
    /// those of them invisible (IRC's user mode `+i`), and the most this node has known
    /// at once.
    pub global_users: usize,
    pub global_invisible: usize,
    pub global_peak: usize,
    /// The nodes of the cluster alive, this one included (1 for a server alone).
    pub servers: usize,
}

/// A user as WHO shows them.
#[derive(Debug, Clone)]
pub struct WhoEntry {
    pub nick: Nick,
    /// What they are in the room asked about (a plain member for WHO of a nick).
    pub standing: Standing,
    /// The user name they gave (IRC's USER), if any.
    pub user: Option<Box<str>>,
    pub realname: Option<MessageText>,
    pub away: bool,
    /// The account they are logged in to (WHOX's `a`).
    pub account: Option<Nick>,
    /// A server operator (`--oper`).
    pub oper: bool,
    /// Invisible (`+i`): left out of a room's WHO for those outside it.
    pub invisible: bool,
    /// Seconds since they last said something (WHOX's `l`).
    pub idle: u64,
}

/// What is known of a user, for a query (IRC's WHOIS).
#[derive(Debug, Clone)]
pub struct Whois {
    pub nick: Nick,
    /// The rooms they are in, and what they are in each.
    pub rooms: Vec<(RoomName, Standing)>,
    pub away: Option<MessageText>,
    /// The user name and real name they gave (IRC's USER), if any.
    pub user: Option<Box<str>>,
    pub realname: Option<MessageText>,
    /// The account they are logged in to, if any.
    pub account: Option<Nick>,
    /// A server operator of this node (`--oper`).
    pub oper: bool,
    /// When they connected, milliseconds since the Unix epoch.
    pub signon: u64,
    /// Milliseconds since they last said something (or connected).
    pub idle: u64,
}

/// A room as `/rooms` (JSON `rooms`, IRC LIST) shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedRoom {
    pub name: RoomName,
    /// Its members, on every node.
    pub members: usize,
    /// Its topic's text, if it has one: IRC's 322 ends with it, as other servers' does.
    pub topic: Option<MessageText>,
}

/// Everything a session can be told.
#[derive(Debug, Clone)]
pub enum Event {
    /// First thing a session hears: its nick and rooms.
    Welcome {
        nick: Nick,
        rooms: Vec<RoomName>,
        census: Census,
    },
    Message(Said),
    Private {
        id: u64,
        ts: u64,
        from: Nick,
        to: Nick,
        text: MessageText,
        notice: bool,
        account: Option<Nick>,
        tags: Option<ClientTags>,
    },
    /// Client-only tags with no message (IRC's TAGMSG) to a room or one user: read by IRC
    /// clients with `message-tags`, written as nothing for everyone else.
    TagsOnly {
        id: u64,
        ts: u64,
        from: Nick,
        account: Option<Nick>,
        to: NoticeTarget,
        tags: ClientTags,
    },
    /// `you`: the recipient is the one who joined; then `members` names who is there (the
    /// first [`crate::limits::MEMBERS_SHOWN_ON_JOIN`] in alphabetical order). `count`: members now.
    Joined {
        room: RoomName,
        nick: Nick,
        you: bool,
        members: Vec<Nick>,
        count: usize,
        /// The account the joiner is logged in to (IRCv3 account-tag).
        account: Option<Nick>,
        /// The joiner's away message when it joins away: IRC's away-notify tells it after
        /// the JOIN, as it tells a change of away state.
        away: Option<MessageText>,
    },
    Left {
        room: RoomName,
        nick: Nick,
        you: bool,
        reason: LeaveReason,
        /// Part of a quit that [`Event::Quit`] told once to each session sharing a room
        /// with the leaver: IRC, which has one QUIT for every channel, writes nothing for
        /// it; text and JSON still write each room's line.
        told_once: bool,
    },
    /// `nick`, who shared a room with the recipient, left the server (`reason`): told once
    /// however many rooms they shared, as IRC's QUIT is. Only IRC writes it; the rooms'
    /// own [`Event::Left`] tell text and JSON clients.
    Quit {
        nick: Nick,
        reason: LeaveReason,
    },
    NickChanged {
        old: Nick,
        new: Nick,
        you: bool,
    },
    /// Replayed messages and feed notices, oldest first; sent on joining a room and for
    /// `/history`.
    History {
        room: RoomName,
        messages: Vec<Entry>,
    },
    /// Entries of `room` numbered `from` to `to`, both included, that a session does not
    /// get, and why: a resume asked for entries no longer kept (or past the most one
    /// replays), or, in a cluster, what another node said was not relayed.
    Gap {
        room: RoomName,
        from: u64,
        to: u64,
        cause: GapCause,
    },
    /// A feed's notice or alert, posted into a room ([`super::Hub::post`]).
    Posted(Posted),
    /// What the room's feeds are doing: sent after joining a room that has feeds, and for
    /// `/status` (then possibly empty).
    Status {
        room: RoomName,
        items: Vec<Notice>,
    },
    /// `standing[i]` is what `nicks[i]` is in the room: operator, voiced or neither;
    /// `away[i]` whether `nicks[i]` is away.
    Users {
        room: RoomName,
        nicks: Vec<Nick>,
        standing: Vec<Standing>,
        away: Vec<bool>,
        /// The room is secret (`+s`): only its members are told who is in it.
        secret: bool,
    },
    /// The answer to a WHO: the members of `room` (none when it does not exist), or the
    /// user of a nick (`room` `None`; none when nobody holds it).
    Who {
        room: Option<RoomName>,
        members: Vec<WhoEntry>,
    },
    /// The room's topic: sent after joining a room that has one, and for a query (then
    /// possibly `None`).
    Topic {
        room: RoomName,
        topic: Option<Topic>,
    },
    /// `by` set the topic (`Some`) or cleared it: told to the whole room.
    TopicChanged {
        room: RoomName,
        by: Nick,
        topic: Option<Topic>,
    },
    /// `by` removed `nick` from the room: told to the whole room, `nick` included.
    Kicked {
        room: RoomName,
        nick: Nick,
        by: Nick,
        reason: Option<MessageText>,
    },
    /// `by` changed the room's modes: told to the whole room.
    ModeChanged {
        room: RoomName,
        by: Nick,
        changes: Vec<ModeChange>,
    },
    /// The room's modes, operators and voiced members, for a query. The key is shown to
    /// members only.
    Modes {
        room: RoomName,
        modes: Modes,
        ops: Vec<Nick>,
        voiced: Vec<Nick>,
        /// When the room was made, milliseconds since the Unix epoch.
        created: u64,
    },
    /// The room's ban list, for a query.
    Bans {
        room: RoomName,
        bans: Vec<Ban>,
    },
    /// `by` invited `nick` into `room`: told to the invitee (`you`) and, as the answer,
    /// to the one who invited.
    Invited {
        room: RoomName,
        nick: Nick,
        by: Nick,
        you: bool,
    },
    Rooms {
        rooms: Vec<ListedRoom>,
    },
    /// How many are here, for a query.
    Census(Census),
    /// The asker's user modes: whether it is invisible (IRC's `+i`), and `changed` when
    /// the request changed that.
    UserModes {
        nick: Nick,
        invisible: bool,
        /// A server operator (`+o`).
        oper: bool,
        /// What the request changed, as IRC writes it (`+i`, `-o`); empty when nothing.
        changed: String,
    },
    /// What is known of a user, for a query.
    Whois(Box<Whois>),
    /// Those of the nicks asked about that someone holds now, as asked (IRC's ISON): only
    /// IRC asks, so only IRC writes it.
    Online(Vec<Nick>),
    /// `nick` is away (`message`) or back (`None`): told to the one who said so (`you`),
    /// and to whoever sends them a private message while they are away.
    Away {
        nick: Nick,
        message: Option<MessageText>,
        you: bool,
    },
    /// `nick` went away or came back: told once to each session sharing a room with them.
    AwayChanged {
        nick: Nick,
        message: Option<MessageText>,
    },
    /// The server accepted a message: its id, its room's number for it (`None` for a
    /// private message, which has none) and its timestamp.
    Ack {
        id: u64,
        seq: Option<u64>,
        ts: u64,
    },
    Error {
        code: ErrorCode,
        message: String,
    },
    Help,
    /// What an account request did (`/register`, `/login`, `/token`…): told to the one
    /// who asked.
    Account(AccountNews),
    /// In a cluster: the other nodes cannot be reached (`reachable: false`), so what is
    /// said here is heard here only, or they can again. Told to every session of the node.
    Cluster {
        reachable: bool,
    },
    /// The last event of a session: why it ends.
    Bye {
        reason: LeaveReason,
    },
}

/// The outcome of an account request.
#[derive(Debug, Clone)]
pub enum AccountNews {
    /// The session's nick is now the registered account `0`, and it is logged in to it.
    Registered(Nick),
    LoggedIn(Nick),
    LoggedOut,
    PasswordChanged,
    Unregistered(Nick),
    /// A new API token: shown this once, never again (only its hash is kept).
    TokenCreated {
        label: String,
        token: String,
    },
    /// The labels of the account's tokens.
    Tokens(Vec<String>),
    TokenRevoked(String),
    /// The session is the server operator of this name (`--oper`) from now on.
    Oper(Nick),
}

impl AccountNews {
    /// A stable word for programs (JSON `event`).
    pub fn code(&self) -> &'static str {
        match self {
            AccountNews::Registered(_) => "registered",
            AccountNews::LoggedIn(_) => "logged_in",
            AccountNews::LoggedOut => "logged_out",
            AccountNews::PasswordChanged => "password_changed",
            AccountNews::Unregistered(_) => "unregistered",
            AccountNews::TokenCreated { .. } => "token_created",
            AccountNews::Tokens(_) => "tokens",
            AccountNews::TokenRevoked(_) => "token_revoked",
            AccountNews::Oper(_) => "oper",
        }
    }

    /// The account it names, if any.
    pub fn account(&self) -> Option<&Nick> {
        match self {
            AccountNews::Registered(name)
            | AccountNews::LoggedIn(name)
            | AccountNews::Unregistered(name) => Some(name),
            _ => None,
        }
    }
}

impl fmt::Display for AccountNews {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccountNews::Registered(name) => write!(
                f,
                "{name} is registered to you; /login {name} PASSWORD takes it back next time"
            ),
            AccountNews::LoggedIn(name) => write!(f, "you are logged in as {name}"),
            AccountNews::LoggedOut => f.write_str("you are logged out"),
            AccountNews::PasswordChanged => f.write_str("your password is changed"),
            AccountNews::Unregistered(name) => {
                write!(f, "the account {name} is deleted; anyone may take the nick")
            }
            AccountNews::TokenCreated { label, token } => write!(
                f,
                "token {label}: {token} (shown this once; keep it secret, /token revoke {label} ends it)"
            ),
            AccountNews::Tokens(labels) if labels.is_empty() => f.write_str("you have no tokens"),
            AccountNews::Tokens(labels) => write!(f, "your tokens: {}", labels.join(", ")),
            AccountNews::TokenRevoked(label) => write!(f, "token {label} revoked"),
            AccountNews::Oper(name) => write!(
                f,
                "you are a server operator ({name}): you may kick and change the modes of any room"
            ),
        }
    }
}

/// Why someone left a room or the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaveReason {
    /// `/leave`, with an optional parting message.
    Left(Option<MessageText>),
    /// `/quit`, with an optional parting message.
    Quit(Option<MessageText>),
    ConnectionLost,
    TimedOut,
    Flooding,
    SendQueueExceeded,
    /// A line the connection cannot go on after: a WebSocket frame over the line bound
    /// (a TCP line over it is refused and the connection goes on).
    LineTooLong,
    ServerShutdown,
}

impl LeaveReason {
    /// A stable word for programs (JSON `reason`).
    pub fn code(&self) -> &'static str {
        match self {
            LeaveReason::Left(_) => "left",
            LeaveReason::Quit(_) => "quit",
            LeaveReason::ConnectionLost => "connection_lost",
            LeaveReason::TimedOut => "timed_out",
            LeaveReason::Flooding => "flooding",
            LeaveReason::SendQueueExceeded => "send_queue_exceeded",
            LeaveReason::LineTooLong => "line_too_long",
            LeaveReason::ServerShutdown => "server_shutdown",
        }
    }

    /// The user's own parting words, if any.
    pub fn message(&self) -> Option<&MessageText> {
        match self {
            LeaveReason::Left(m) | LeaveReason::Quit(m) => m.as_ref(),
            _ => None,
        }
    }
}

impl fmt::Display for LeaveReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words = match self {
            LeaveReason::Left(_) => "left",
            LeaveReason::Quit(_) => "quit",
            LeaveReason::ConnectionLost => "connection lost",
            LeaveReason::TimedOut => "timed out",
            LeaveReason::Flooding => "flooding",
            LeaveReason::SendQueueExceeded => "send queue exceeded",
            LeaveReason::LineTooLong => "line too long",
            LeaveReason::ServerShutdown => "server shutdown",
        };
        match self.message() {
            Some(m) => write!(f, "{words}: {m}"),
            None => f.write_str(words),
        }
    }
}

/// Stable error codes; the text protocol prints them after `ERROR `, JSON puts them in
/// `code`. docs/protocol.md lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    UnknownCommand,
    MissingArgument,
    InvalidArgument,
    InvalidNick,
    NickTaken,
    InvalidRoom,
    NotInRoom,
    NoSuchNick,
    EmptyMessage,
    LineTooLong,
    InvalidUtf8,
    InvalidJson,
    InvalidRequest,
    Flood,
    ServerFull,
    TooManyConnections,
    NotRegistered,
    TooManyRooms,
    /// Only the room's operators may do that.
    NotOperator,
    /// A ban mask matches the one joining or speaking.
    Banned,
    /// The room is `+i` and the one joining was not invited.
    InviteOnly,
    /// The room is `+k` and the key given is missing or wrong.
    BadKey,
    /// The room is `+l` and as full as its limit.
    RoomFull,
    /// The room is `+m` and the sender is neither operator nor voiced.
    Moderated,
    /// A mode letter charla does not have.
    UnknownMode,
    /// The nick a command is about is not in that room.
    TargetNotInRoom,
    /// The nick belongs to a registered account and the session is not logged in to it.
    NickRegistered,
    /// `--require-account`: only users logged in to an account may talk.
    AccountRequired,
    /// A login or password check failed: no such account or the wrong password (which one
    /// is not said).
    BadPassword,
    /// Too many login attempts from this address or on this account; try again later.
    RateLimited,
    /// The request needs the session to be logged in to an account.
    NotLoggedIn,
    /// `/register` for a nick that is registered already.
    AccountExists,
    /// The account store failed (the disk); the request was not carried out.
    StoreFailed,
    /// OPER on a server with no operators (`--oper`).
    NoOperators,
    /// The history store cannot take more now (its writer is far behind the disk): the
    /// message was refused, not said. Worth sending again in a moment.
    StoreUnavailable,
    /// The message was said (delivered live) but its history transaction failed (the disk
    /// full or failing): it is not kept. Sent in place of its `ack`.
    NotStored,
    /// The session ended while acks were owed to it and they did not come within
    /// [`ACK_GRACE`](crate::limits::ACK_GRACE): its messages were said, and are most likely
    /// kept, but their acks will not come. Sent once, before the goodbye.
    Unconfirmed,
    /// A private message (or tags, an invitation) to a user of another node of a cluster
    /// while the nodes are cut off from each other (Redis out of reach): not sent, nor
    /// held; or, told later, lost as the link failed. Worth sending again once delivery
    /// is restored.
    NotDelivered,
    /// In a cluster, the other nodes could not be reached (Redis is down), or did not
    /// answer in time: what was asked of a check or heartbeat of theirs was not done, or
    /// not known to be.
    ClusterUnreachable,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::UnknownCommand => "unknown_command",
            ErrorCode::MissingArgument => "missing_argument",
            ErrorCode::InvalidArgument => "invalid_argument",
            ErrorCode::InvalidNick => "invalid_nick",
            ErrorCode::NickTaken => "nick_taken",
            ErrorCode::InvalidRoom => "invalid_room",
            ErrorCode::NotInRoom => "not_in_room",
            ErrorCode::NoSuchNick => "no_such_nick",
            ErrorCode::EmptyMessage => "empty_message",
            ErrorCode::LineTooLong => "line_too_long",
            ErrorCode::InvalidUtf8 => "invalid_utf8",
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::Flood => "flood",
            ErrorCode::ServerFull => "server_full",
            ErrorCode::TooManyConnections => "too_many_connections",
            ErrorCode::NotRegistered => "not_registered",
            ErrorCode::TooManyRooms => "too_many_rooms",
            ErrorCode::NotOperator => "not_operator",
            ErrorCode::Banned => "banned",
            ErrorCode::InviteOnly => "invite_only",
            ErrorCode::BadKey => "bad_key",
            ErrorCode::RoomFull => "room_full",
            ErrorCode::Moderated => "moderated",
            ErrorCode::UnknownMode => "unknown_mode",
            ErrorCode::TargetNotInRoom => "target_not_in_room",
            ErrorCode::NickRegistered => "nick_registered",
            ErrorCode::AccountRequired => "account_required",
            ErrorCode::BadPassword => "bad_password",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::NotLoggedIn => "not_logged_in",
            ErrorCode::AccountExists => "account_exists",
            ErrorCode::StoreFailed => "store_failed",
            ErrorCode::StoreUnavailable => "store_unavailable",
            ErrorCode::NotStored => "not_stored",
            ErrorCode::Unconfirmed => "unconfirmed",
            ErrorCode::NotDelivered => "not_delivered",
            ErrorCode::NoOperators => "no_operators",
            ErrorCode::ClusterUnreachable => "cluster_unreachable",
        }
    }
}

/// An event encoded for one wire format, shared by every recipient. A thin pointer: a line
/// queued to one session costs its queue 8 bytes rather than `Bytes`' 32. (What is said in
/// a room is not queued per member at all: connections write it from the room's log.)
pub type Encoded = Arc<Bytes>;

/// A wire format as the hub's shared encodings know it: what turns an event into the
/// bytes its readers get. Each codec brings one (`protocol/`); the hub only keys its caches
/// by it, so a new format touches nothing here.
pub trait Encode: Send + Sync + 'static {
    /// One or more complete units (lines, frames) for `event`; empty for an event this
    /// format does not show, such as an acknowledgement in text.
    fn encode(&self, event: &Outgoing) -> Bytes;

    /// What tells this format apart in caches: its type, so two formats can never share
    /// a key by mistake.
    fn key(&self) -> FormatKey {
        FormatKey::variant::<Self>(0)
    }
}

/// Identifies a wire format in the caches that keep something per format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FormatKey(TypeId, u32);

impl FormatKey {
    /// The key of variant `n` of format type `T`: one type may write events in several
    /// ways (IRC, by the capabilities a client asked for), each its own encoding.
    pub fn variant<T: 'static + ?Sized>(n: u32) -> FormatKey {
        FormatKey(TypeId::of::<T>(), n)
    }
}

/// Encodings an [`Outgoing`] keeps in place; more formats chain another block. Two: most
/// rooms hear one or two formats, and each slot is 32 bytes of every event.
const ENCODINGS_PER_BLOCK: usize = 2;

/// An event's encodings, one per format that asked, filled in order and never changed:
/// lock-free to read, and borrowed for as long as the event lives.
#[derive(Default)]
struct Encodings {
    slots: [OnceLock<(FormatKey, Encoded)>; ENCODINGS_PER_BLOCK],
    more: OnceLock<Box<Encodings>>,
}

impl Encodings {
    fn get_or_encode(&self, format: &dyn Encode, event: &Outgoing) -> &Encoded {
        let key = format.key();
        let mut block = self;
        loop {
            for slot in &block.slots {
                // Slots fill in order, so the first empty one is where this format goes
                // unless another thread claims it first (then it is that one's and the
                // search goes on).
                let (found, bytes) = slot.get_or_init(|| (key, Arc::new(format.encode(event))));
                if *found == key {
                    return bytes;
                }
            }
            block = block.more.get_or_init(Box::default);
        }
    }
}

/// An event on its way to one or many sessions. Each wire format encodes it at most once
/// (the first recipient speaking that format pays) and every other recipient shares the
/// bytes, so a message to a thousand members is formatted once per format, not a thousand
/// times. Shared between threads in a room's log, hence `OnceLock`: members are written
/// from whichever worker runs their connection.
pub struct Outgoing {
    pub event: Event,
    /// The client's tag of the request this event answers, for a direct reply.
    pub reference: Option<String>,
    encoded: Encodings,
}

impl Outgoing {
    pub fn new(event: Event) -> Outgoing {
        Outgoing {
            event,
            reference: None,
            encoded: Encodings::default(),
        }
    }

    pub fn reply(event: Event, reference: Option<String>) -> Outgoing {
        Outgoing {
            reference,
            ..Outgoing::new(event)
        }
    }

    /// The bytes in `format`, encoded only the first time any recipient asks.
    pub fn encoded(&self, format: &dyn Encode) -> &Encoded {
        self.encoded.get_or_encode(format, self)
    }
}
