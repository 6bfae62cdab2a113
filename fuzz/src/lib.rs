//! What every fuzz target checks of a decoder's output, beyond "it did not panic": text that
//! reaches anyone is non-empty and free of control characters (IRC's formatting codes aside,
//! which only IRC readers get), names keep their bounds, a `ref` is valid JSON (an IRC
//! request's is `nick VERB subject`), and every reply encodes as clean lines.

use charla::hub::{
    Command, Encode, ErrorCode, Event, LeaveReason, MessageText, Nick, Outgoing, Request, RoomName,
    Said,
};
use charla::limits::{Limits, MAX_NICK_CHARS, MAX_ROOM_CHARS};
use charla::protocol::irc::message::{MAX_LINE_BYTES, Message};
use charla::protocol::irc::{Asked, IrcFormat};
use charla::protocol::{Incoming, JSON, Refusal, TEXT};
use serde_json::value::RawValue;

/// Which wire a decoder serves: what its references look like and how replies are written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wire {
    /// Text and JSON lines: a `ref` is a JSON value, replies are written in both formats.
    Lines,
    /// IRC: a reference is `nick VERB subject`, replies are written as IRC lines.
    Irc,
}

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

/// Checks what a text or JSON decoder made of one line.
pub fn check_incoming(incoming: &Incoming) {
    check_incoming_on(incoming, Wire::Lines);
}

/// Checks what the IRC codec handed its connection; its own answers
/// ([`check_irc_answer`]) included.
pub fn check_irc_incoming(incoming: &Incoming) {
    check_incoming_on(incoming, Wire::Irc);
}

fn check_incoming_on(incoming: &Incoming, wire: Wire) {
    match incoming {
        Incoming::Request(request) => check_request(request, wire),
        Incoming::Hello { steps, reference } => {
            assert!(wire == Wire::Lines, "an IRC codec said hello");
            check_reference(reference.as_deref());
            for step in steps {
                match step {
                    Ok(request) => check_request(request, wire),
                    Err(refusal) => check_refusal(refusal),
                }
            }
        }
        Incoming::Register { nick, reference } => {
            match wire {
                Wire::Lines => check_reference(reference.as_deref()),
                Wire::Irc => {
                    let asked = check_irc_reference(reference.as_deref());
                    // The refusal of a taken nick is written from it: `433 * nick`.
                    assert_eq!(asked.verb, "NICK", "registration asked as {asked:?}");
                    assert_eq!(
                        Some(asked.subject),
                        nick.as_ref().map(Nick::as_str),
                        "registration's reference names another nick"
                    );
                    let refused = Event::Error {
                        code: ErrorCode::NickTaken,
                        message: format!("{:?} is taken", asked.subject),
                    };
                    check_irc_encoded(&Outgoing::reply(refused, reference.clone()));
                }
            }
            if let Some(nick) = nick {
                check_nick(nick);
            }
        }
        Incoming::Answer(bytes) => {
            assert!(wire == Wire::Irc, "a line codec answered on its own");
            check_irc_answer(bytes);
        }
        Incoming::Nothing => {}
    }
}

/// Checks a refusal, and that its error reply encodes cleanly in both formats.
pub fn check_refusal(refusal: &Refusal) {
    check_reference(refusal.reference.as_deref());
    let (event, reference) = refusal.clone().into_reply();
    check_encoded(&Outgoing::reply(event, reference));
}

fn check_request(request: &Request, wire: Wire) {
    if wire == Wire::Lines {
        check_reference(request.reference.as_deref());
    }
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
    match wire {
        // The reply carries the request's `ref`; it must encode as one valid line.
        Wire::Lines => {
            let ack = Outgoing::reply(Event::Ack { id: 1, ts: 2 }, request.reference.clone());
            check_encoded(&ack);
        }
        Wire::Irc => check_irc_request(request),
    }
}

/// Message text may keep IRC's formatting codes (`hub::text`), which IRC readers get as
/// sent; every other control, a bidi control and a line separator are gone, and without
/// the codes, what text and JSON readers get, it is printable and not blank.
fn check_text(text: &MessageText) {
    let raw = text.as_str();
    assert!(
        !raw.chars()
            .any(|c| (c.is_control() && !is_formatting(c)) || is_bidi_or_separator(c)),
        "a control beyond formatting codes passed: {raw:?}"
    );
    let plain = text.plain();
    assert!(!plain.trim().is_empty(), "empty text passed: {raw:?}");
    assert_printable(&plain);
}

/// IRC's formatting codes (bold, colour, hex colour, reset, monospace, reverse, italic,
/// strikethrough, underline), as `hub::text` keeps them.
fn is_formatting(c: char) -> bool {
    matches!(
        c,
        '\u{2}'
            | '\u{3}'
            | '\u{4}'
            | '\u{f}'
            | '\u{11}'
            | '\u{16}'
            | '\u{1d}'
            | '\u{1e}'
            | '\u{1f}'
    )
}

/// Bidi embeddings, overrides and isolates, and the line and paragraph separators: none
/// reaches a reader.
fn is_bidi_or_separator(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
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

/// An IRC request's reference is `nick VERB subject`, three words the format reads back to
/// write the numeric: the nick `*` or a nick, the verb a command word, the subject `*`, a
/// nick or a room. Returns it read.
fn check_irc_reference(reference: Option<&str>) -> Asked<'_> {
    let reference = reference.expect("an IRC request carries a reference");
    let words: Vec<&str> = reference.split(' ').collect();
    assert!(
        words.len() == 3 && words.iter().all(|w| !w.is_empty()),
        "reference is not `nick VERB subject`: {reference:?}"
    );
    assert_printable(reference);
    let (nick, verb, subject) = (words[0], words[1], words[2]);
    assert!(
        nick == "*" || Nick::parse(nick).is_ok_and(|n| n.as_str() == nick),
        "reference names no nick: {reference:?}"
    );
    assert!(
        !verb.is_empty() && verb.bytes().all(|b| b.is_ascii_uppercase()),
        "reference's verb: {reference:?}"
    );
    assert!(
        subject == "*" || Nick::parse(subject).is_ok() || RoomName::parse(subject).is_ok(),
        "reference's subject is no nick or room: {reference:?}"
    );
    let asked = Asked::read(Some(reference));
    assert_eq!(
        (asked.nick, asked.verb, asked.subject),
        (nick, verb, subject)
    );
    asked
}

/// An IRC request: its reference, and every reply and event it can lead to, written as IRC
/// lines with that reference (an ack, each error, what the hub tells others of it).
fn check_irc_request(request: &Request) {
    let reference = request.reference.clone();
    let asked = check_irc_reference(reference.as_deref());
    let me = Nick::parse(asked.nick).unwrap_or_else(|_| Nick::parse("ana").unwrap());
    let reply = |event: Event| check_irc_encoded(&Outgoing::reply(event, reference.clone()));
    reply(Event::Ack { id: 1, ts: 2 });
    // The hub's sentences quote what was asked; the format must clean them.
    let quoted = format!("{:?} and {:?}: refused", asked.subject, request.command);
    for code in ERROR_CODES {
        reply(Event::Error {
            code,
            message: quoted.clone(),
        });
    }
    let said = |room: &RoomName, text: &MessageText, action: bool| Said {
        id: 1,
        ts: 1_700_000_000_000,
        room: room.clone(),
        from: me.clone(),
        text: text.clone(),
        action,
        notice: false,
    };
    let lobby = RoomName::lobby();
    match &request.command {
        Command::Say { room, text, action } => {
            let said = said(room.as_ref().unwrap_or(&lobby), text, *action);
            let history = Event::History {
                room: said.room.clone(),
                messages: vec![charla::hub::Entry::Said(said.clone())],
            };
            reply(Event::Message(said));
            let asked = format!("{} HISTORY {}", me, lobby);
            check_irc_encoded(&Outgoing::reply(history, Some(asked)));
        }
        Command::Msg { to, text } => reply(Event::Private {
            id: 1,
            ts: 2,
            from: me.clone(),
            to: to.clone(),
            text: text.clone(),
            notice: false,
        }),
        Command::Nick(new) => reply(Event::NickChanged {
            old: me.clone(),
            new: new.clone(),
            you: true,
        }),
        Command::Join(room) => reply(Event::Joined {
            room: room.clone(),
            nick: me.clone(),
            you: true,
            members: vec![me.clone()],
            count: 1,
        }),
        Command::Leave { room, message } => reply(Event::Left {
            room: room.clone().unwrap_or(lobby),
            nick: me.clone(),
            you: false,
            reason: LeaveReason::Left(message.clone()),
        }),
        Command::Quit { message } => {
            let reason = LeaveReason::Quit(message.clone());
            reply(Event::Left {
                room: lobby,
                nick: me.clone(),
                you: false,
                reason: reason.clone(),
            });
            reply(Event::Bye { reason });
        }
        Command::Users { room } | Command::History { room, .. } | Command::Status { room } => {
            let users = Outgoing::reply(
                Event::Users {
                    room: room.clone().unwrap_or(lobby),
                    nicks: vec![me.clone(); 40],
                },
                reference.clone(),
            );
            check_irc_encoded(&users);
            check_every_member_named(&users, asked.verb, me.as_str(), 40);
        }
        Command::Rooms => reply(Event::Rooms {
            rooms: vec![(lobby, 3)],
        }),
        Command::Help => reply(Event::Help),
    }
}

/// A member list names every member whole, however long the names: one `352` each for
/// WHO, else `353`s whose nicks are the members, none cut short by the line bound.
fn check_every_member_named(out: &Outgoing, verb: &str, member: &str, count: usize) {
    let bytes = IrcFormat::for_limits(&Limits::default()).encode(out);
    let text = std::str::from_utf8(&bytes).expect("IRC output is UTF-8");
    let messages: Vec<Message> = text
        .split_terminator("\r\n")
        .filter_map(|line| Message::parse(line).ok())
        .collect();
    let named: Vec<&str> = if verb == "WHO" {
        messages
            .iter()
            .filter(|m| m.command == "352")
            .map(|m| m.params.get(5).copied().unwrap_or(""))
            .collect()
    } else {
        messages
            .iter()
            .filter(|m| m.command == "353")
            .flat_map(|m| m.params.last().copied().unwrap_or("").split(' '))
            .collect()
    };
    assert!(
        named.len() == count && named.iter().all(|n| *n == member),
        "{count} members named as {named:?}: {text:?}"
    );
}

const ERROR_CODES: [ErrorCode; 18] = [
    ErrorCode::UnknownCommand,
    ErrorCode::MissingArgument,
    ErrorCode::InvalidArgument,
    ErrorCode::InvalidNick,
    ErrorCode::NickTaken,
    ErrorCode::InvalidRoom,
    ErrorCode::NotInRoom,
    ErrorCode::NoSuchNick,
    ErrorCode::EmptyMessage,
    ErrorCode::LineTooLong,
    ErrorCode::InvalidUtf8,
    ErrorCode::InvalidJson,
    ErrorCode::InvalidRequest,
    ErrorCode::Flood,
    ErrorCode::ServerFull,
    ErrorCode::TooManyConnections,
    ErrorCode::NotRegistered,
    ErrorCode::TooManyRooms,
];

/// A line the IRC codec writes itself: one whole line, ended by CRLF, of at most 512 bytes
/// with it, with no other control character.
pub fn check_irc_answer(bytes: &[u8]) {
    let text = std::str::from_utf8(bytes).expect("an IRC answer is UTF-8");
    let line = text
        .strip_suffix("\r\n")
        .unwrap_or_else(|| panic!("an IRC answer is not CRLF-ended: {text:?}"));
    assert!(
        bytes.len() <= MAX_LINE_BYTES,
        "{} bytes: {text:?}",
        bytes.len()
    );
    assert_printable(line);
    check_irc_line(line);
}

/// An event written as IRC lines: whole CRLF-ended lines, each at most 512 bytes with it,
/// holding no control character but formatting codes and CTCP's `\x01`, each a message an
/// IRC parser reads.
pub fn check_irc_encoded(out: &Outgoing) {
    let bytes = IrcFormat::for_limits(&Limits::default()).encode(out);
    let text = std::str::from_utf8(&bytes).expect("IRC output is UTF-8");
    assert!(
        text.is_empty() || text.ends_with("\r\n"),
        "unended IRC output: {text:?}"
    );
    for line in text.split_terminator("\r\n") {
        assert!(
            line.len() + 2 <= MAX_LINE_BYTES,
            "an IRC line of {} bytes: {line:?}",
            line.len() + 2
        );
        assert!(
            !line
                .chars()
                .any(|c| c.is_control() && !is_formatting(c) && c != '\u{1}'),
            "a control character in an IRC line: {line:?}"
        );
        assert!(
            !line.chars().any(is_bidi_or_separator),
            "a bidi control or separator in an IRC line: {line:?}"
        );
        check_irc_line(line);
    }
}

/// A line charla writes parses as a message from `charla` (or a user, or a feed), or is
/// `ERROR`.
fn check_irc_line(line: &str) {
    assert!(!line.is_empty(), "an empty IRC line");
    let message = Message::parse(line).unwrap_or_else(|e| panic!("{e:?}: {line:?}"));
    assert!(
        message.prefix.is_some() || message.is("ERROR"),
        "an IRC line with no prefix: {line:?}"
    );
    assert!(message.tags.is_none(), "tags written: {line:?}");
}
