//! Wire formats: bytes in, typed requests out; events in, bytes out. No I/O here.
//!
//! A connection speaks through a [`Codec`]: its framing and decoding, and the [`Encode`]
//! its events are written in. [`LineCodec`] serves `nc`, telnet and programs: it starts in
//! the text format people type, and switches to JSON lines when a program sends a `hello`
//! object (docs/protocol.md).

mod codec;
pub mod framing;
mod help;
pub mod irc;
mod json;
mod lines;
pub mod modes;
mod not_http;
mod text;

pub use codec::{Codec, Sink};
pub use irc::IrcCodec;
pub use lines::LineCodec;

use bytes::Bytes;

use crate::accounts::{AccountRequest, Secret};
use crate::hub::{Encode, ErrorCode, Event, NameError, Nick, Outgoing, Request, RoomName};

/// Human-readable lines, one event per line (a few, such as `/help`, take several): what
/// `nc` and telnet users read.
pub struct TextFormat;

/// One JSON object per line, for programs.
pub struct JsonFormat;

/// The one text format every connection shares.
pub static TEXT: TextFormat = TextFormat;
/// The one JSON-lines format every connection shares.
pub static JSON: JsonFormat = JsonFormat;

impl Encode for TextFormat {
    fn encode(&self, event: &Outgoing) -> Bytes {
        text::encode(event)
    }
}

impl Encode for JsonFormat {
    fn encode(&self, event: &Outgoing) -> Bytes {
        json::encode(event)
    }
}

/// What one received unit (a line, a frame) asks for.
#[derive(Debug)]
pub enum Incoming {
    Request(Request),
    /// Switch to JSON lines, then carry out each step (the nick change, then the joins
    /// asked for) or answer its refusal, in order; with `login`, log in first.
    Hello {
        steps: Vec<Result<Request, Refusal>>,
        reference: Option<String>,
        login: Option<AccountRequest>,
    },
    /// An account request (`/register`, `/login`, `/token`…): carried out off the hub's
    /// lock, and the connection reads nothing more until it is answered.
    Account {
        request: AccountRequest,
        reference: Option<String>,
    },
    /// IRC SASL PLAIN credentials, given before or after registration.
    Sasl(SaslAttempt),
    /// A handshake is complete: make the connection a session, under `nick` (a guest
    /// nick when `None`). Only codecs that hold registration send this. A refusal (the
    /// nick is taken) carries `reference` back.
    Register {
        nick: Option<Nick>,
        reference: Option<String>,
        /// Whether the session starts in `#lobby`, as text and JSON sessions do. An IRC
        /// client expects to start in no channel and joins its own (its autojoin list).
        lobby: bool,
    },
    /// Bytes of the codec's own to write as they are, such as a handshake's answers.
    Answer(Bytes),
    /// A connection that is not a session yet says its last words (IRC's QUIT, or a
    /// wrong server password, before registering) and is closed: these bytes are its
    /// goodbye, written in place of the usual one.
    Close(Bytes),
    /// Nothing to do (an empty line).
    Nothing,
}

/// Credentials a client gave by SASL (or IRC's PASS), and how to write the outcome in its
/// protocol.
#[derive(Debug)]
pub struct SaslAttempt {
    pub account: Nick,
    pub password: Secret,
    /// The client's nick as the answer's numerics name it: the one given, registered or not
    /// (`*` before NICK).
    pub me: String,
    /// The server's name, which the answer's numerics start with (`--server-name`).
    pub server: &'static str,
    /// What the hub's news of a registered session's login answers (it names the client).
    pub reference: Option<String>,
    /// The `label` of the AUTHENTICATE line (IRCv3 labeled-response), for the answer.
    pub label: Option<String>,
    /// The lines that answer the attempt.
    pub answer: fn(server: &str, me: &str, label: Option<&str>, SaslOutcome<'_>) -> Bytes,
}

/// How a SASL attempt ended, for its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslOutcome<'a> {
    /// Proved before registration: the registration that follows logs in to the account.
    Proved(&'a Nick),
    /// Proved by a registered session, which the hub logged in and told so already (its
    /// account news): the answer must not say it again.
    LoggedIn,
    Failed,
}

/// A line that could not be understood; it is answered with an error and the connection
/// stays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
    pub reference: Option<String>,
}

impl Refusal {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
            reference: None,
        }
    }

    /// The error event that answers this refusal.
    pub fn into_reply(self) -> (Event, Option<String>) {
        let event = Event::Error {
            code: self.code,
            message: self.message,
        };
        (event, self.reference)
    }
}

/// Parses one line (already framed, valid UTF-8) of the text format people type.
pub fn parse_text(line: &str) -> Result<Incoming, Refusal> {
    text::parse(line)
}

/// Parses one line (already framed, valid UTF-8) of JSON lines.
pub fn parse_json(line: &str) -> Result<Incoming, Refusal> {
    json::parse(line)
}

fn nick_arg(input: &str) -> Result<Nick, Refusal> {
    Nick::parse(input).map_err(|e| invalid_name(ErrorCode::InvalidNick, input, e))
}

fn room_arg(input: &str) -> Result<RoomName, Refusal> {
    RoomName::parse(input).map_err(|e| invalid_name(ErrorCode::InvalidRoom, input, e))
}

fn invalid_name(code: ErrorCode, input: &str, error: NameError) -> Refusal {
    let what = if code == ErrorCode::InvalidNick {
        "nick"
    } else {
        "room name"
    };
    Refusal::new(code, format!("{input:?} is not a valid {what}: {error}"))
}

fn text_arg(input: &str) -> Result<crate::hub::MessageText, Refusal> {
    crate::hub::MessageText::new(input)
        .ok_or_else(|| Refusal::new(ErrorCode::EmptyMessage, "there is nothing to send"))
}

/// What every format says when a cluster's other nodes become out of reach, or reachable
/// again (`Event::Cluster`).
pub fn cluster_news(reachable: bool) -> &'static str {
    if reachable {
        "cross-node delivery restored: the other nodes hear this one again"
    } else {
        "cross-node delivery interrupted: until it is restored, what is said here is heard by users of this node only"
    }
}

/// How long a `/silence` lasts, as people write it (`30m`, `2h`, `1day`).
fn silence_length(input: &str) -> Result<std::time::Duration, Refusal> {
    humantime::parse_duration(input.trim()).map_err(|e| {
        Refusal::new(
            ErrorCode::InvalidArgument,
            format!("{input:?} is not a duration such as 30m or 2h: {e}"),
        )
    })
}

/// A note or a reason given with an alert action: `None` when blank.
fn note_arg(input: Option<&str>) -> Option<String> {
    input
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
}
