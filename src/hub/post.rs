//! What feeds say: notices and alerts posted into rooms by things that are not people (a
//! file watcher, a health check, a UDP datagram), and the status they show a newcomer.
//!
//! The hub knows no feed in particular. A feed hands it a [`Notice`] — who says it, whether it
//! is a plain notice or an alert, the sanitised text, and typed details for programs — and
//! the hub stamps it with an id, a time and a room, remembers it in the room's history and
//! fans it out. A feed that wants newcomers told what it is doing registers a
//! [`RoomStatus`], which the hub asks whenever someone joins the room or types `/status`.

use std::borrow::Cow;
use std::sync::Arc;

use super::event::Said;
use super::names::RoomName;
use super::text::{MessageText, sanitize};

/// Longest source name, in characters.
pub const MAX_SOURCE_CHARS: usize = 64;

/// Who posted a notice: a feed's name such as `watch`, `check:web` or `udp:192.0.2.7`.
///
/// Shown in brackets after the marker in the text protocol (`#alerts !!! [check:web] …`),
/// as `source` in JSON. A person's line always shows a nick between `<` and `>` or after
/// `* `, never a source, so nobody can pass for a feed.
#[derive(Clone, PartialEq, Eq)]
pub struct Source(Arc<str>);

impl Source {
    /// `name` with control characters removed and whitespace and brackets replaced by
    /// `_`, cut to [`MAX_SOURCE_CHARS`]; `None` when nothing is left.
    pub fn new(name: &str) -> Option<Source> {
        let clean: String = sanitize(name)
            .chars()
            .map(|c| {
                if c.is_whitespace() || c == '[' || c == ']' {
                    '_'
                } else {
                    c
                }
            })
            .take(MAX_SOURCE_CHARS)
            .collect();
        (!clean.is_empty()).then(|| Source(clean.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

str_formatting!(Source);

/// How loudly a notice speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostKind {
    /// Something happened: a watched file changed. Text marker `>>>`, JSON type `notice`.
    Notice,
    /// Something needs attention: a check changed state, a UDP alert arrived. Text marker
    /// `!!!`, JSON type `alert`.
    Alert,
}

impl PostKind {
    /// The JSON `type` (live) or `kind` (in a status list).
    pub fn as_str(self) -> &'static str {
        match self {
            PostKind::Notice => "notice",
            PostKind::Alert => "alert",
        }
    }
}

/// A typed detail of a notice, for programs; the text protocol shows only the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Text(String),
    Number(u64),
    Flag(bool),
}

impl From<&str> for Field {
    fn from(s: &str) -> Field {
        Field::Text(s.to_string())
    }
}

impl From<String> for Field {
    fn from(s: String) -> Field {
        Field::Text(s)
    }
}

impl From<u64> for Field {
    fn from(n: u64) -> Field {
        Field::Number(n)
    }
}

impl From<bool> for Field {
    fn from(b: bool) -> Field {
        Field::Flag(b)
    }
}

/// What a feed says, before the hub gives it an id, a time and a room.
#[derive(Debug, Clone)]
pub struct Notice {
    pub source: Source,
    pub kind: PostKind,
    pub text: MessageText,
    /// Details as JSON members beside `text` (`file`, `state`, …). Names the JSON event
    /// already uses (`type`, `kind`, `id`, `ts`, `room`, `source`, `text`) are ignored.
    /// A name is borrowed when a feed gives it, owned when read back from a durable store.
    pub fields: Vec<(Cow<'static, str>, Field)>,
}

impl Notice {
    pub fn new(source: Source, kind: PostKind, text: MessageText) -> Notice {
        Notice {
            source,
            kind,
            text,
            fields: Vec::new(),
        }
    }

    /// Adds the detail `name`.
    pub fn with(mut self, name: &'static str, value: impl Into<Field>) -> Notice {
        self.fields.push((Cow::Borrowed(name), value.into()));
        self
    }

    /// In a cluster's `/status`, the node that runs the check or heartbeat.
    pub fn node(&self) -> Option<&str> {
        self.fields.iter().find_map(|(name, value)| match value {
            Field::Text(node) if name == "node" => Some(node.as_str()),
            _ => None,
        })
    }
}

/// A notice posted into a room, live or replayed from history.
#[derive(Debug, Clone)]
pub struct Posted {
    /// From the same sequence as message ids: unique, increasing.
    pub id: u64,
    /// Its number in its room, as [`Said::seq`].
    pub seq: u64,
    /// Server time, milliseconds since the Unix epoch.
    pub ts: u64,
    pub room: RoomName,
    pub notice: Arc<Notice>,
}

/// One entry of a room's history: something a person said or a feed posted.
#[derive(Debug, Clone)]
pub enum Entry {
    Said(Said),
    Posted(Posted),
}

impl Entry {
    pub fn id(&self) -> u64 {
        match self {
            Entry::Said(s) => s.id,
            Entry::Posted(p) => p.id,
        }
    }

    /// Its number in its room: one more than the room's entry before it.
    pub fn seq(&self) -> u64 {
        match self {
            Entry::Said(s) => s.seq,
            Entry::Posted(p) => p.seq,
        }
    }

    pub fn room(&self) -> &RoomName {
        match self {
            Entry::Said(s) => &s.room,
            Entry::Posted(p) => &p.room,
        }
    }

    pub fn ts(&self) -> u64 {
        match self {
            Entry::Said(s) => s.ts,
            Entry::Posted(p) => p.ts,
        }
    }

    pub fn text(&self) -> &MessageText {
        match self {
            Entry::Said(s) => &s.text,
            Entry::Posted(p) => &p.notice.text,
        }
    }
}

impl From<Said> for Entry {
    fn from(said: Said) -> Entry {
        Entry::Said(said)
    }
}

impl From<Posted> for Entry {
    fn from(posted: Posted) -> Entry {
        Entry::Posted(posted)
    }
}

/// A feed's account of what it is doing in a room ("now watching target.txt", "web is up
/// for 5m"), shown to everyone who joins the room and to `/status`.
pub trait RoomStatus: Send + Sync {
    /// The current status, one notice per line. The hub calls this while it holds its lock:
    /// it must return at once (read a snapshot; no I/O, no waiting) and must not call the
    /// hub.
    fn status(&self) -> Vec<Notice>;

    /// Whether the other nodes of a cluster list it too, and call what it names (checks
    /// and heartbeats).
    fn shared(&self) -> bool {
        false
    }
}

/// [`super::Hub::post`] was given a room that does not exist: nobody is in it and no feed
/// opened it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("there is no room {0}")]
pub struct NoSuchRoom(pub RoomName);

/// Why [`super::Hub::post`] posted nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unposted {
    #[error(transparent)]
    NoSuchRoom(#[from] NoSuchRoom),
    /// The history store ([`super::StoreFull`]), or a cluster's queue to Redis
    /// ([`super::BusFull`]), cannot take more now: not posted.
    #[error("the history store or the queue to the other nodes cannot take more now; not posted")]
    StoreFull,
}
