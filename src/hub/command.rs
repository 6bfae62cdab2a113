//! What a client asks the hub to do, whatever wire format it spoke.

use super::calls::{AlertAction, Beat};
use super::chathistory::Window;
use super::names::{Nick, RoomName};
use super::ops::ModeChange;
use super::tags::ClientTags;
use super::text::MessageText;
use super::who::WhoMask;

/// One request from a session. Every request gets exactly one direct reply (its result or
/// an error); `reference` is the client's own tag for it, echoed in that reply.
#[derive(Debug, Clone)]
pub struct Request {
    pub command: Command,
    pub reference: Option<String>,
}

impl From<Command> for Request {
    fn from(command: Command) -> Request {
        Request {
            command,
            reference: None,
        }
    }
}

/// The commands of the chat; `room: None` means the room the session is talking in now.
#[derive(Debug, Clone)]
pub enum Command {
    /// A message to a room; `action` for `/me` (shown as `* nick waves`).
    Say {
        room: Option<RoomName>,
        text: MessageText,
        action: bool,
    },
    /// A private message to one user wherever they are.
    Msg {
        to: Nick,
        text: MessageText,
    },
    Nick(Nick),
    /// Join a room (if not yet a member) and talk in it from now on.
    Join(RoomName),
    Leave {
        room: Option<RoomName>,
        message: Option<MessageText>,
    },
    Users {
        room: Option<RoomName>,
    },
    Rooms,
    History {
        room: Option<RoomName>,
        limit: Option<usize>,
    },
    /// Every entry of a room after message id `after`, oldest first, at most
    /// [`crate::limits::HISTORY_SINCE_MAX`]: a client resuming where it left off.
    HistorySince {
        room: Option<RoomName>,
        after: u64,
    },
    Help,
    /// What the feeds of a room (any existing one) are doing: watched files, checks.
    Status {
        room: Option<RoomName>,
    },
    Quit {
        message: Option<MessageText>,
    },
    /// Joins `room` (or stays in it) and replays exactly the entries numbered after `after`
    /// ([`crate::hub::Entry::seq`]), once and in order, before anything live from it: a
    /// client resuming where it left off. What is no longer kept is named by a `Gap`.
    Resume {
        room: RoomName,
        after: u64,
    },
    /// [`Command::Join`] with the key a `+k` room asks for.
    JoinWithKey {
        room: RoomName,
        key: String,
    },
    /// What the room's topic is.
    Topic {
        room: Option<RoomName>,
    },
    /// Sets the room's topic, or clears it (`None`).
    SetTopic {
        room: Option<RoomName>,
        text: Option<MessageText>,
    },
    /// An operator removes `nick` from the room.
    Kick {
        room: Option<RoomName>,
        nick: Nick,
        reason: Option<MessageText>,
    },
    /// Changes the room's modes, in order; with none, asks what they are.
    Mode {
        room: Option<RoomName>,
        changes: Vec<ModeChange>,
    },
    /// The room's ban list.
    Bans {
        room: Option<RoomName>,
    },
    /// A notice (IRC's NOTICE) to a room the session may speak in, or to one user.
    Notice {
        to: NoticeTarget,
        text: MessageText,
    },
    /// Leaves every room the session is in (IRC's `JOIN 0`).
    LeaveAll {
        message: Option<MessageText>,
    },
    /// What is known of a user.
    Whois(Nick),
    /// Which of these nicks someone holds now (IRC's ISON).
    Online(Vec<Nick>),
    /// `command` (a message, a private message or a notice) carrying an IRC client's
    /// client-only tags to its readers.
    Tagged {
        tags: ClientTags,
        command: Box<Command>,
    },
    /// Client-only tags alone (IRC's TAGMSG), to a room the session may speak in or to one
    /// user.
    TagsOnly {
        to: NoticeTarget,
        tags: ClientTags,
    },
    /// A window of the room's history, at most `limit` entries (IRC's CHATHISTORY, a JSON
    /// `history … before`).
    HistoryWindow {
        room: Option<RoomName>,
        window: Window,
        limit: usize,
    },
    /// The session's user name and real name, as IRC's USER gives them, shown by WHO and
    /// WHOIS; the real name cut to [`crate::limits::REALNAMELEN`], the user name as the
    /// codec made it (at most [`crate::limits::USERLEN`] bytes of `[A-Za-z0-9._-]`).
    User {
        user: Option<Box<str>>,
        realname: Option<MessageText>,
    },
    /// The members of a room, the user of a nick or the users a mask matches, as WHO
    /// shows them; `opers_only` (WHO's `o`) keeps server operators alone.
    Who {
        of: WhoOf,
        opers_only: bool,
    },
    /// The session's user modes (IRC's MODE of oneself): `invisible` changes `+i` when
    /// given, `oper: Some(false)` drops `+o` (which only OPER gives); answered with the
    /// modes either way.
    UserModes {
        invisible: Option<bool>,
        oper: Option<bool>,
    },
    /// Marks the session away with a message, or back with `None`.
    Away(Option<MessageText>),
    /// How many are connected, and how many rooms there are.
    Census,
    /// Lets `nick` into the room even while it is invite-only (`+i`), and tells them.
    Invite {
        room: Option<RoomName>,
        nick: Nick,
    },
    /// A job calls in to its heartbeat (`--heartbeat NAME=PERIOD`); answered with the
    /// heartbeat's status.
    Beat {
        name: String,
        beat: Beat,
    },
    /// `/ack`, `/silence`, `/unsilence` of the check `name`; answered with its status.
    Alert {
        name: String,
        action: AlertAction,
    },
}

impl Command {
    /// Whether its answer may come after [`Hub::apply`](super::Hub::apply) returned: a
    /// call another node of a cluster takes is answered once it answered, with the
    /// request's reference.
    pub fn answered_later(&self) -> bool {
        matches!(self, Command::Beat { .. } | Command::Alert { .. })
    }
}

/// What a WHO asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WhoOf {
    Room(RoomName),
    Nick(Nick),
    Mask(WhoMask),
}

/// Where a notice goes.
#[derive(Debug, Clone)]
pub enum NoticeTarget {
    Room(RoomName),
    Nick(Nick),
}
