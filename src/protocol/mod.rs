//! Wire formats: lines in, typed requests out; events in, bytes out. No I/O here.
//!
//! Every connection starts in the text format that `nc` and telnet users type; a program
//! switches to JSON lines by sending a `hello` object (docs/protocol.md).

pub mod framing;
mod help;
mod json;
mod text;

use crate::hub::{Encoded, ErrorCode, Event, NameError, Nick, Outgoing, Request, RoomName};

/// How a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Human-readable lines, one event per line (a few, such as `/help`, take several).
    Text,
    /// One JSON object per line.
    Json,
}

impl Format {
    /// This format's slot in an [`Outgoing`]'s cache and wherever else the hub keeps
    /// something per wire format.
    pub fn slot(self) -> usize {
        self as usize
    }
}

/// What one received line asks for.
#[derive(Debug)]
pub enum Incoming {
    Request(Request),
    /// Switch to JSON lines, then carry out each step (the nick change, then the joins
    /// asked for) or answer its refusal, in order.
    Hello {
        steps: Vec<Result<Request, Refusal>>,
        reference: Option<String>,
    },
    /// Nothing to do (an empty line).
    Nothing,
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

/// Parses one line (already framed and valid UTF-8) spoken in `format`.
pub fn parse(format: Format, line: &str) -> Result<Incoming, Refusal> {
    match format {
        Format::Text => text::parse(line),
        Format::Json => json::parse(line),
    }
}

/// The bytes of `event` in `format`, one or more complete lines (none for an event the
/// format does not show, such as an acknowledgement in text). Encoded once per format and
/// shared by every recipient of the same `Outgoing`.
pub fn encode(format: Format, event: &Outgoing) -> Encoded {
    encoded(format, event).clone()
}

/// The bytes of `event` in `format`, borrowed from the event (encoding it, once, if no
/// one has yet): for a connection writing straight from a room's log, and to measure a
/// line without taking a share of it.
pub fn encoded(format: Format, event: &Outgoing) -> &Encoded {
    event.encoded(format.slot(), |event| match format {
        Format::Text => text::encode(event),
        Format::Json => json::encode(event),
    })
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
