//! What every fuzz target checks of a decoder's output, beyond "it did not panic": text that
//! reaches anyone is non-empty and free of control characters, names keep their bounds, a
//! `ref` is valid JSON, and every reply encodes as one clean line.

use charla::hub::{Command, Encode, Event, MessageText, Nick, Outgoing, Request, RoomName};
use charla::limits::{MAX_NICK_CHARS, MAX_ROOM_CHARS};
use charla::protocol::{Incoming, JSON, Refusal, TEXT};
use serde_json::value::RawValue;

/// Splits `data` into the chunks a socket might deliver it in, with sizes drawn from `seed`
/// (1 to 64 bytes, now and then all that is left), so the same bytes are tried split in
/// many ways.
pub fn chunks(data: &[u8], seed: u8) -> Vec<&[u8]> {
    let mut state = u32::from(seed) | 1;
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        // xorshift: cheap, deterministic, and different for every seed.
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let size = if state % 16 == 0 {
            rest.len()
        } else {
            1 + (state as usize % 64).min(rest.len() - 1)
        };
        let (chunk, tail) = rest.split_at(size);
        out.push(chunk);
        rest = tail;
    }
    out
}

/// Checks what a decoder made of one line.
pub fn check_incoming(incoming: &Incoming) {
    match incoming {
        Incoming::Request(request) => check_request(request),
        Incoming::Hello { steps, reference } => {
            check_reference(reference.as_deref());
            for step in steps {
                match step {
                    Ok(request) => check_request(request),
                    Err(refusal) => check_refusal(refusal),
                }
            }
        }
        Incoming::Register { nick } => {
            if let Some(nick) = nick {
                check_nick(nick);
            }
        }
        Incoming::Answer(_) | Incoming::Nothing => {}
    }
}

/// Checks a refusal, and that its error reply encodes cleanly in both formats.
pub fn check_refusal(refusal: &Refusal) {
    check_reference(refusal.reference.as_deref());
    let (event, reference) = refusal.clone().into_reply();
    check_encoded(&Outgoing::reply(event, reference));
}

fn check_request(request: &Request) {
    check_reference(request.reference.as_deref());
    match &request.command {
        Command::Say { room, text, .. } => {
            room.iter().for_each(check_room);
            check_text(text);
        }
        Command::Msg { to, text } => {
            check_nick(to);
            check_text(text);
        }
        Command::Nick(nick) => check_nick(nick),
        Command::Join(room) => check_room(room),
        Command::Leave { room, message } => {
            room.iter().for_each(check_room);
            message.iter().for_each(check_text);
        }
        Command::Users { room } | Command::History { room, .. } | Command::Status { room } => {
            room.iter().for_each(check_room)
        }
        Command::Quit { message } => message.iter().for_each(check_text),
        Command::Rooms | Command::Help => {}
    }
    // The reply carries the request's `ref`; it must encode as one valid line.
    let ack = Outgoing::reply(Event::Ack { id: 1, ts: 2 }, request.reference.clone());
    check_encoded(&ack);
}

fn check_text(text: &MessageText) {
    let text = text.as_str();
    assert!(!text.trim().is_empty(), "empty text passed: {text:?}");
    assert_printable(text);
}

fn check_nick(nick: &Nick) {
    let nick = nick.as_str();
    assert!(
        (1..=MAX_NICK_CHARS).contains(&nick.chars().count()),
        "nick out of bounds: {nick:?}"
    );
    assert_printable(nick);
    assert!(
        !nick.contains(char::is_whitespace),
        "nick with a space: {nick:?}"
    );
}

fn check_room(room: &RoomName) {
    let room = room.as_str();
    assert!(room.starts_with('#'), "room without #: {room:?}");
    assert!(
        (2..=MAX_ROOM_CHARS).contains(&room.chars().count()),
        "room name out of bounds: {room:?}"
    );
    assert_printable(room);
    assert!(
        !room.contains(char::is_whitespace),
        "room with a space: {room:?}"
    );
}

/// A `ref` is echoed as it was sent, so it must be one valid JSON value.
fn check_reference(reference: Option<&str>) {
    if let Some(raw) = reference {
        assert!(
            serde_json::from_str::<&RawValue>(raw).is_ok(),
            "ref is not JSON: {raw:?}"
        );
    }
}

/// An event written in text is whole lines with no control character but their `\n`; in JSON,
/// one object on one line, its `ref` spelled as the request spelled it.
fn check_encoded(out: &Outgoing) {
    // Text writes nothing for an ack: a person's line is not echoed.
    let text = TEXT.encode(out);
    let text = std::str::from_utf8(&text).expect("text output is UTF-8");
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "unended text: {text:?}"
    );
    text.lines().for_each(assert_printable);

    let json = JSON.encode(out);
    let line = std::str::from_utf8(&json).expect("JSON output is UTF-8");
    let body = line.strip_suffix('\n').expect("a JSON line ends with \\n");
    assert!(!body.contains('\n'), "a JSON reply spans lines: {line:?}");
    #[derive(serde::Deserialize)]
    struct Ref<'a> {
        #[serde(rename = "ref", borrow)]
        reference: Option<&'a RawValue>,
    }
    let parsed: Ref = serde_json::from_str(body).expect("a JSON reply is one valid object");
    assert_eq!(
        parsed.reference.map(RawValue::get),
        out.reference.as_deref(),
        "ref not echoed exactly: {line:?}"
    );
}

fn assert_printable(s: &str) {
    assert!(
        !s.chars().any(char::is_control),
        "control character reaches a reader: {s:?}"
    );
}
