//! IRC, the client protocol irssi, WeeChat and HexChat speak, on the same hub as text and
//! JSON lines (`--listen irc://HOST:PORT`; docs/protocol.md, "IRC").
//!
//! [`IrcCodec`] frames and parses lines ([`message`]), holds registration until the
//! client's CAP/NICK/USER handshake completes, answers what needs no hub itself (PING,
//! CAP, mode queries, its own numerics) and turns the rest into hub commands.
//! [`IrcFormat`] writes events as IRC lines: what is said in a room is encoded once for
//! every IRC reader, so nothing in it names its recipient.
//!
//! Numerics do name their recipient first. The hub's direct replies carry the request's
//! reference back; the codec tags each request it hands the hub with an [`Asked`] — its
//! own nick, the command and its subject — so the format can write `401 ana bob :…` from
//! the reply alone, with no per-connection state in the format.

mod codec;
mod encode;
pub mod message;
pub mod numeric;
mod sasl;

pub use codec::IrcCodec;

use std::sync::{Mutex, OnceLock};

use bytes::Bytes;

use crate::hub::{Encode, Outgoing};

/// The name the server gives itself in prefixes and numerics.
pub const SERVER_NAME: &str = "charla";

/// The host part of every user's `nick!nick@host`: charla does not show addresses.
pub const USER_HOST: &str = "charla";

/// The IRC wire format. The one setting that varies between servers is in it (the
/// rooms one connection may be in, advertised as CHANLIMIT); see [`IrcFormat::for_limits`].
#[derive(Debug, PartialEq, Eq)]
pub struct IrcFormat {
    /// `--max-rooms-per-client`.
    pub max_rooms_per_client: usize,
}

impl IrcFormat {
    /// The format for a server running with `limits`, made once per distinct setting and
    /// kept for the process's life (a connection holds its format as `&'static`). Formats
    /// share one cache key, which is sound: the only line that differs, the welcome, goes
    /// to one session alone, and one server has one setting.
    pub fn for_limits(limits: &crate::limits::Limits) -> &'static IrcFormat {
        static MADE: OnceLock<Mutex<Vec<&'static IrcFormat>>> = OnceLock::new();
        let wanted = IrcFormat {
            max_rooms_per_client: limits.max_rooms_per_client,
        };
        let mut made = MADE
            .get_or_init(Mutex::default)
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(found) = made.iter().find(|f| ***f == wanted) {
            return found;
        }
        let format: &'static IrcFormat = Box::leak(Box::new(wanted));
        made.push(format);
        format
    }
}

impl Encode for IrcFormat {
    fn encode(&self, event: &Outgoing) -> Bytes {
        encode::encode(self, event)
    }
}

/// What the codec asked the hub, as the reference of the request: `nick VERB subject`,
/// `*` standing for what is not known (the nick before registration). The hub hands it
/// back with the reply, and the format reads it to write the numeric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asked<'a> {
    pub nick: &'a str,
    pub verb: &'a str,
    pub subject: &'a str,
}

impl<'a> Asked<'a> {
    pub fn new(nick: Option<&'a str>, verb: &'a str, subject: &'a str) -> Asked<'a> {
        Asked {
            nick: nick.unwrap_or("*"),
            verb,
            subject: if subject.is_empty() { "*" } else { subject },
        }
    }

    /// The reference to send with the request.
    pub fn reference(self) -> Option<String> {
        Some(format!("{} {} {}", self.nick, self.verb, self.subject))
    }

    /// What a reply's reference says; all `*` when there is none (a refusal the
    /// connection made itself, such as flood control).
    pub fn read(reference: Option<&'a str>) -> Asked<'a> {
        let mut words = reference.unwrap_or("").split(' ');
        let mut next = || words.next().filter(|w| !w.is_empty()).unwrap_or("*");
        Asked {
            nick: next(),
            verb: next(),
            subject: next(),
        }
    }
}
