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
mod labeled;
pub mod message;
pub mod numeric;
mod sasl;

pub use codec::{IrcCodec, user_name};

use std::sync::{Mutex, OnceLock};

use bytes::Bytes;

use crate::hub::{Encode, Outgoing};

/// The host part of every user's `nick!nick@host`: charla does not show addresses.
pub const USER_HOST: &str = "charla";

/// The WHOX fields charla answers (IRCv3 WHOX), in the order the reply gives them: token,
/// channel, user, IP, host, server, nick, flags, hops, idle, account, op level, real name.
pub const WHOX_FIELDS: &str = "tcuihsnfdlaor";

/// `input` if it may be the server's name (`--server-name`): 1 to
/// [`MAX_SERVER_NAME_BYTES`](crate::limits::MAX_SERVER_NAME_BYTES) bytes of ASCII letters,
/// digits, `.` and `-`, starting with a letter or digit. Anything else could be read as
/// another part of the line (a space, `!`, `@`, `:`) or look like a nick's prefix.
pub fn server_name(input: &str) -> Result<String, String> {
    let fine = input.len() <= crate::limits::MAX_SERVER_NAME_BYTES
        && input.starts_with(|c: char| c.is_ascii_alphanumeric())
        && input
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    if fine {
        Ok(input.to_string())
    } else {
        Err(format!(
            "a server name is 1 to {} bytes of ASCII letters, digits, '.' and '-', starting \
             with a letter or digit",
            crate::limits::MAX_SERVER_NAME_BYTES
        ))
    }
}

/// The IRC wire format: one per set of IRCv3 capabilities, since what a client asked for
/// changes its lines (a `@time` tag, an echo, several prefixes), and each is encoded once
/// for every client that asked for the same. The one setting that varies between servers
/// are in it too (the rooms one connection may be in, advertised as CHANLIMIT, and the
/// server's name); see
/// [`IrcFormat::for_limits`].
#[derive(Debug, PartialEq, Eq)]
pub struct IrcFormat {
    /// `--max-rooms-per-client`.
    pub max_rooms_per_client: usize,
    /// `--server-name`: the prefix of the server's own lines.
    pub server: Box<str>,
    pub caps: Caps,
}

/// IRCv3 capabilities charla implements, as a set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Caps(u16);

impl Caps {
    /// Each capability's name and bit, in the order `CAP LS` lists them.
    pub const ALL: [(&'static str, Caps); 10] = [
        ("account-tag", Caps::ACCOUNT_TAG),
        ("away-notify", Caps::AWAY_NOTIFY),
        ("batch", Caps::BATCH),
        ("draft/chathistory", Caps::CHATHISTORY),
        ("echo-message", Caps::ECHO_MESSAGE),
        ("labeled-response", Caps::LABELED_RESPONSE),
        ("message-tags", Caps::MESSAGE_TAGS),
        ("multi-prefix", Caps::MULTI_PREFIX),
        ("server-time", Caps::SERVER_TIME),
        ("userhost-in-names", Caps::USERHOST_IN_NAMES),
    ];
    pub const AWAY_NOTIFY: Caps = Caps(1);
    pub const ECHO_MESSAGE: Caps = Caps(2);
    pub const MULTI_PREFIX: Caps = Caps(4);
    pub const SERVER_TIME: Caps = Caps(8);
    pub const MESSAGE_TAGS: Caps = Caps(16);
    pub const ACCOUNT_TAG: Caps = Caps(32);
    pub const BATCH: Caps = Caps(64);
    /// Changes no line (CHATHISTORY works without it): left out of the format.
    pub const CHATHISTORY: Caps = Caps(128);
    /// Changes no format either: the codec labels what answers a labeled line itself.
    pub const LABELED_RESPONSE: Caps = Caps(256);
    /// NAMES (`353`) names each member as `nick!user@host`.
    pub const USERHOST_IN_NAMES: Caps = Caps(512);
    /// Those that put tags on lines about messages.
    pub const TAGGING: Caps = Caps(8 | 16 | 32);

    /// The set without those that change no line: what a format is made for.
    pub fn wire(self) -> Caps {
        self.with(Caps::CHATHISTORY, false)
            .with(Caps::LABELED_RESPONSE, false)
    }

    /// Whether any of `caps` is in the set.
    pub fn any(self, caps: Caps) -> bool {
        self.0 & caps.0 != 0
    }

    /// The capability called `name`, if charla has it.
    pub fn named(name: &str) -> Option<Caps> {
        Caps::ALL
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, cap)| *cap)
    }

    pub fn has(self, cap: Caps) -> bool {
        self.0 & cap.0 == cap.0
    }

    pub fn with(self, cap: Caps, on: bool) -> Caps {
        if on {
            Caps(self.0 | cap.0)
        } else {
            Caps(self.0 & !cap.0)
        }
    }

    /// The names of those in the set, space-separated.
    pub fn names(self) -> String {
        let on = Caps::ALL.iter().filter(|(_, cap)| self.has(*cap));
        on.map(|(name, _)| *name).collect::<Vec<_>>().join(" ")
    }
}

impl IrcFormat {
    /// The format for a server running with `limits`, no capability asked for.
    pub fn for_limits(limits: &crate::limits::Limits) -> &'static IrcFormat {
        IrcFormat::made(IrcFormat {
            max_rooms_per_client: limits.max_rooms_per_client,
            server: limits.server_name.clone(),
            caps: Caps::default(),
        })
    }

    /// This format with capabilities `caps` instead.
    pub fn with_caps(&self, caps: Caps) -> &'static IrcFormat {
        IrcFormat::made(IrcFormat {
            max_rooms_per_client: self.max_rooms_per_client,
            server: self.server.clone(),
            caps,
        })
    }

    /// `wanted`, made once per distinct setting and set of capabilities and kept for the
    /// process's life (a connection holds its format as `&'static`). Formats of different
    /// settings but the same capabilities share one cache key, which is sound: the only
    /// line that differs, the welcome, goes to one session alone, and one server has one
    /// setting.
    fn made(wanted: IrcFormat) -> &'static IrcFormat {
        static MADE: OnceLock<Mutex<Vec<&'static IrcFormat>>> = OnceLock::new();
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

    fn key(&self) -> crate::hub::FormatKey {
        crate::hub::FormatKey::variant::<IrcFormat>(u32::from(self.caps.0))
    }
}

/// What the codec asked the hub, as the reference of the request: `nick VERB subject`,
/// `*` standing for what is not known (the nick before registration). The hub hands it
/// back with the reply, and the format reads it to write the numeric. A message from a
/// client with echo-message also carries its text (`nick PRIVMSG #room p text`, `a` for an
/// action), so the format can echo it from the hub's acknowledgement. A request the hub
/// may answer later ([`Command::answered_later`](crate::hub::Command::answered_later))
/// carries its IRCv3 `label` first (`@label nick VERB subject`), and the format writes
/// the answer labeled, whenever it comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asked<'a> {
    pub nick: &'a str,
    pub verb: &'a str,
    pub subject: &'a str,
    /// What follows the subject: the text to echo, if any.
    pub rest: &'a str,
    /// The label the answer carries, if any.
    pub label: Option<&'a str>,
}

impl<'a> Asked<'a> {
    pub fn new(nick: Option<&'a str>, verb: &'a str, subject: &'a str) -> Asked<'a> {
        Asked {
            nick: nick.unwrap_or("*"),
            verb,
            subject: if subject.is_empty() { "*" } else { subject },
            rest: "",
            label: None,
        }
    }

    /// The reference to send with the request.
    pub fn reference(self) -> Option<String> {
        let Asked {
            nick,
            verb,
            subject,
            rest,
            label,
        } = self;
        let mut reference = match label {
            Some(label) => format!("@{label} {nick} {verb} {subject}"),
            None => format!("{nick} {verb} {subject}"),
        };
        if !rest.is_empty() {
            reference.push(' ');
            reference.push_str(rest);
        }
        Some(reference)
    }

    /// What a reply's reference says; all `*` when there is none (a refusal the
    /// connection made itself, such as flood control).
    pub fn read(reference: Option<&'a str>) -> Asked<'a> {
        let reference = reference.unwrap_or("");
        // A label has no space (it is a tag) and a nick no `@`.
        let (label, reference) = match reference.strip_prefix('@') {
            Some(labeled) => {
                let (label, rest) = labeled.split_once(' ').unwrap_or((labeled, ""));
                (Some(label), rest)
            }
            None => (None, reference),
        };
        let mut words = reference.splitn(4, ' ');
        let mut next = || words.next().filter(|w| !w.is_empty()).unwrap_or("*");
        let (nick, verb, subject) = (next(), next(), next());
        Asked {
            nick,
            verb,
            subject,
            rest: words.next().unwrap_or(""),
            label,
        }
    }
}
