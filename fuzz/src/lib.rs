//! What every fuzz target checks of a decoder's output, beyond "it did not panic": text that
//! reaches anyone is non-empty and free of control characters (IRC's formatting codes aside,
//! which only IRC readers get), names keep their bounds, a `ref` is valid JSON (an IRC
//! request's is `nick VERB subject`), and every reply encodes as clean lines.

use charla::accounts::AccountRequest;
use charla::hub::{
    Ban, BanMask, Census, Command, Encode, ErrorCode, Event, Field, GapCause, LeaveReason,
    ListedRoom, MessageText, Mode, ModeChange, Modes, Nick, Notice, NoticeTarget, Outgoing, Posted,
    Request, RoomName, Said, Standing, Topic, WhoEntry, WhoOf, Whois,
};
use charla::limits::{Limits, MAX_NICK_CHARS, MAX_ROOM_CHARS};
use charla::protocol::irc::message::{MAX_LINE_BYTES, Message};
use charla::protocol::irc::{Asked, IrcFormat};
use charla::protocol::{Incoming, JSON, Refusal, SaslOutcome, TEXT};
use serde_json::value::RawValue;
use std::sync::{Once, OnceLock};

/// Which wire a decoder serves: what its references look like and how replies are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
        Incoming::Hello {
            steps,
            reference,
            login,
        } => {
            assert!(wire == Wire::Lines, "an IRC codec said hello");
            check_reference(reference.as_deref());
            login.iter().for_each(check_account_request);
            for step in steps {
                match step {
                    Ok(request) => check_request(request, wire),
                    Err(refusal) => check_refusal(refusal),
                }
            }
        }
        Incoming::Register {
            nick,
            reference,
            lobby,
        } => {
            // Text and JSON sessions start in #lobby; an IRC client joins its own rooms.
            assert_eq!(
                *lobby,
                wire == Wire::Lines,
                "registration's lobby for {wire:?}"
            );
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
        Incoming::Account { request, reference } => {
            match wire {
                Wire::Lines => check_reference(reference.as_deref()),
                // IRC's one account request is OPER, asked about the operator's name.
                Wire::Irc => {
                    let asked = check_irc_reference(reference.as_deref());
                    let AccountRequest::Oper { name, .. } = request else {
                        panic!("an IRC codec asked {request:?}");
                    };
                    assert_eq!(
                        (asked.verb, asked.subject),
                        ("OPER", name.as_str()),
                        "OPER's reference"
                    );
                }
            }
            check_account_request(request);
        }
        Incoming::Sasl(attempt) => {
            assert!(wire == Wire::Irc, "a line codec spoke SASL");
            check_nick(&attempt.account);
            let outcomes = [
                SaslOutcome::Proved(&attempt.account),
                SaslOutcome::LoggedIn,
                SaslOutcome::Failed,
            ];
            for outcome in outcomes {
                check_irc_bytes(&(attempt.answer)(
                    attempt.server,
                    &attempt.me,
                    attempt.label.as_deref(),
                    outcome,
                ));
            }
        }
        Incoming::Answer(bytes) => {
            assert!(wire == Wire::Irc, "a line codec answered on its own");
            check_irc_answer(bytes);
        }
        // A connection's last words before it is closed: an HTTP request line's answer,
        // or IRC's QUIT or a wrong password before registering.
        Incoming::Close(bytes) => match wire {
            Wire::Irc => check_irc_answer(bytes),
            Wire::Lines => {
                let text = std::str::from_utf8(bytes).expect("a goodbye is UTF-8");
                let line = text
                    .strip_suffix("\r\n")
                    .unwrap_or_else(|| panic!("a goodbye is not one CRLF-ended line: {text:?}"));
                assert!(!line.is_empty(), "an empty goodbye");
                assert_printable(line);
            }
        },
        Incoming::Nothing => {}
    }
}

/// Checks a feed's notice as it would be posted: its text clean, its source and text
/// details printable single lines, and the event encoding as clean lines in text, JSON and
/// IRC.
pub fn check_notice(notice: &Notice) {
    check_text(&notice.text);
    let source = notice.source.as_str();
    assert!(!source.is_empty(), "an empty source");
    assert_printable(source);
    for (name, field) in &notice.fields {
        if let Field::Text(text) = field {
            assert_printable(text);
            assert!(
                !text.chars().any(is_bidi_or_separator),
                "{name} holds a bidi control or separator: {text:?}"
            );
        }
    }
    let posted = Outgoing::new(Event::Posted(Posted {
        id: 1,
        seq: 1,
        ts: 1_700_000_000_000,
        room: RoomName::parse("#alerts").expect("a room"),
        notice: std::sync::Arc::new(notice.clone()),
    }));
    check_encoded(&posted);
    check_irc_encoded(&posted);
}

/// An account request names a valid nick and printable token labels; its secrets are
/// never written back, so they are not checked.
fn check_account_request(request: &AccountRequest) {
    match request {
        AccountRequest::Login { account, .. } => check_nick(account),
        AccountRequest::Oper { name, .. } => check_nick(name),
        AccountRequest::TokenNew { label } | AccountRequest::TokenRevoke { label } => {
            assert_printable(label)
        }
        AccountRequest::Register { .. }
        | AccountRequest::TokenLogin { .. }
        | AccountRequest::Logout
        | AccountRequest::Password { .. }
        | AccountRequest::Unregister { .. }
        | AccountRequest::TokenList => {}
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
        Command::Join(room) | Command::JoinWithKey { room, .. } => check_room(room),
        Command::Leave { room, message } => {
            room.iter().for_each(check_room);
            message.iter().for_each(check_text);
        }
        Command::Users { room }
        | Command::History { room, .. }
        | Command::HistorySince { room, .. }
        | Command::Status { room }
        | Command::Topic { room }
        | Command::Bans { room } => room.iter().for_each(check_room),
        Command::SetTopic { room, text } => {
            room.iter().for_each(check_room);
            text.iter().for_each(check_text);
        }
        Command::Kick { room, nick, reason } => {
            room.iter().for_each(check_room);
            check_nick(nick);
            reason.iter().for_each(check_text);
        }
        Command::Invite { room, nick } => {
            room.iter().for_each(check_room);
            check_nick(nick);
        }
        Command::Mode { room, changes } => {
            room.iter().for_each(check_room);
            for change in changes {
                match &change.mode {
                    Mode::Op(nick) | Mode::Voice(nick) => check_nick(nick),
                    Mode::Ban(mask) => assert_printable(mask.as_str()),
                    _ => {}
                }
            }
        }
        Command::Quit { message } | Command::LeaveAll { message } => {
            message.iter().for_each(check_text)
        }
        Command::Resume { room, .. } => check_room(room),
        Command::Notice { to, text } => {
            match to {
                NoticeTarget::Room(room) => check_room(room),
                NoticeTarget::Nick(nick) => check_nick(nick),
            }
            check_text(text);
        }
        Command::Whois(nick) => check_nick(nick),
        Command::Online(nicks) => nicks.iter().for_each(check_nick),
        Command::Away(message) => message.iter().for_each(check_text),
        Command::User { user, realname } => {
            if let Some(user) = user {
                assert!(
                    !user.is_empty()
                        && user.len() <= charla::limits::USERLEN
                        && user
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
                    "a user name of {user:?}"
                );
            }
            realname.iter().for_each(check_text);
        }
        Command::Who { of, .. } => match of {
            WhoOf::Room(room) => check_room(room),
            WhoOf::Nick(nick) => check_nick(nick),
            // A mask is matched, never shown; its host part is the protocol's to compare.
            WhoOf::Mask(mask) => assert!(
                !mask.host().contains(char::is_whitespace),
                "a WHO mask's host with a space: {mask:?}"
            ),
        },
        Command::UserModes { .. } => {}
        // A tagged command is checked as the command it carries, with its tags printable.
        Command::Tagged { tags, command } => {
            assert_printable(tags.as_str());
            let inner = Request {
                command: (**command).clone(),
                reference: request.reference.clone(),
            };
            return check_request(&inner, wire);
        }
        Command::TagsOnly { to, tags } => {
            assert_printable(tags.as_str());
            match to {
                NoticeTarget::Room(room) => check_room(room),
                NoticeTarget::Nick(nick) => check_nick(nick),
            }
        }
        Command::HistoryWindow { room, .. } => {
            if let Some(room) = room {
                check_room(room);
            }
        }
        Command::Rooms | Command::Help | Command::Census => {}
        // The names are the feeds' to look up (and refuse); nothing here is shown as parsed.
        Command::Beat { .. } | Command::Alert { .. } => {}
    }
    match wire {
        // The reply carries the request's `ref`; it must encode as one valid line.
        Wire::Lines => {
            for seq in [Some(3), None] {
                let ack =
                    Outgoing::reply(Event::Ack { id: 1, seq, ts: 2 }, request.reference.clone());
                check_encoded(&ack);
            }
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
/// nick or a room. A message's may go on with what to echo (`p text`, `a` for an action,
/// `t tags` for TAGMSG, with echo-message), a WHO's with its WHOX fields (`%…`); a call to a check answered
/// later starts with its IRCv3 label (`@label `). Returns it read.
fn check_irc_reference(reference: Option<&str>) -> Asked<'_> {
    let reference = reference.expect("an IRC request carries a reference");
    let (label, asked) = match reference.strip_prefix('@') {
        Some(labeled) => {
            let (label, asked) = labeled
                .split_once(' ')
                .unwrap_or_else(|| panic!("a label and nothing asked: {reference:?}"));
            assert!(!label.is_empty(), "an empty label: {reference:?}");
            (Some(label), asked)
        }
        None => (None, reference),
    };
    let words: Vec<&str> = asked.splitn(4, ' ').collect();
    assert!(
        words.len() >= 3 && words[..3].iter().all(|w| !w.is_empty()),
        "reference is not `nick VERB subject`: {reference:?}"
    );
    let (nick, verb, subject) = (words[0], words[1], words[2]);
    let rest = words.get(3).copied().unwrap_or("");
    // What is echoed is message text as the hub keeps it, which may hold IRC's formatting
    // codes; nothing else may hold a control character.
    assert_printable(&reference[..reference.len() - rest.len()]);
    assert!(
        !rest
            .chars()
            .any(|c| (c.is_control() && !is_formatting(c)) || is_bidi_or_separator(c)),
        "a control beyond formatting codes in what is echoed: {reference:?}"
    );
    assert!(
        nick == "*" || Nick::parse(nick).is_ok_and(|n| n.as_str() == nick),
        "reference names no nick: {reference:?}"
    );
    assert!(
        !verb.is_empty() && verb.bytes().all(|b| b.is_ascii_uppercase()),
        "reference's verb: {reference:?}"
    );
    let name = |s: &str| Nick::parse(s).is_ok() || RoomName::parse(s).is_ok();
    // KICK and INVITE ask about `#room,nick`.
    let pair = matches!(verb, "KICK" | "INVITE")
        && subject
            .split_once(',')
            .is_some_and(|(room, nick)| RoomName::parse(room).is_ok() && Nick::parse(nick).is_ok());
    // ACK, SILENCE and UNSILENCE ask about a check's or heartbeat's name.
    let item = matches!(verb, "ACK" | "SILENCE" | "UNSILENCE")
        && charla::feeds::check::valid_name(subject);
    // WHO asks about a mask (`ana*`, `*!bob@*`) as well; a mask holds no space.
    let mask = verb == "WHO";
    assert!(
        subject == "*" || name(subject) || pair || item || mask,
        "reference's subject is no nick or room: {reference:?}"
    );
    assert!(
        label.is_none() || item,
        "a label on a request answered now: {reference:?}"
    );
    let echoed = (matches!(verb, "PRIVMSG" | "NOTICE") && rest.starts_with(['p', 'a']))
        || (verb == "TAGMSG" && rest.starts_with('t'));
    let whox = verb == "WHO" && rest.starts_with('%');
    assert!(
        rest.is_empty() || echoed || whox,
        "reference goes on after its subject: {reference:?}"
    );
    let read = Asked::read(Some(reference));
    assert_eq!(
        (read.label, read.nick, read.verb, read.subject, read.rest),
        (label, nick, verb, subject, rest)
    );
    read
}

/// An IRC request: its reference, and every reply and event it can lead to, written as IRC
/// lines with that reference (an ack, each error, what the hub tells others of it).
fn check_irc_request(request: &Request) {
    let reference = request.reference.clone();
    let asked = check_irc_reference(reference.as_deref());
    let me = Nick::parse(asked.nick).unwrap_or_else(|_| Nick::parse("ana").unwrap());
    let reply = |event: Event| check_irc_encoded(&Outgoing::reply(event, reference.clone()));
    // A message to a room is acknowledged with its number there, a private one without.
    reply(Event::Ack {
        id: 1,
        seq: Some(3),
        ts: 2,
    });
    reply(Event::Ack {
        id: 1,
        seq: None,
        ts: 2,
    });
    // The hub's sentences quote what was asked; the format must clean them. Every error
    // is written with this request's reference and a sentence quoting its subject; the long
    // sentence quoting the whole request with the one error its bytes pick (so the fuzzer
    // chooses); every error with the longest names and an unclean sentence of more than a
    // line, once per process.
    check_every_error_at_the_bounds();
    let short = format!("{:?} refused", asked.subject);
    for code in ERROR_CODES {
        reply(Event::Error {
            code,
            message: short.clone(),
        });
    }
    let quoted = format!("{:?} and {:?}: refused", asked.subject, request.command);
    let pick = quoted
        .bytes()
        .fold(0usize, |sum, b| sum.wrapping_add(usize::from(b)));
    reply(Event::Error {
        code: ERROR_CODES[pick % ERROR_CODES.len()],
        message: quoted,
    });
    let said = |room: &RoomName, text: &MessageText, action: bool| Said {
        id: 1,
        seq: 1,
        ts: 1_700_000_000_000,
        room: room.clone(),
        from: me.clone(),
        text: text.clone(),
        action,
        notice: false,
        account: Some(me.clone()),
        tags: None,
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
            account: None,
            tags: None,
        }),
        Command::Nick(new) => reply(Event::NickChanged {
            old: me.clone(),
            new: new.clone(),
            you: true,
        }),
        Command::Join(room) | Command::JoinWithKey { room, .. } => reply(Event::Joined {
            room: room.clone(),
            nick: me.clone(),
            you: true,
            members: vec![me.clone()],
            count: 1,
            account: Some(me.clone()),
        }),
        Command::Leave { room, message } => reply(Event::Left {
            room: room.clone().unwrap_or(lobby),
            nick: me.clone(),
            you: false,
            reason: LeaveReason::Left(message.clone()),
            told_once: false,
        }),
        Command::Quit { message } => {
            let reason = LeaveReason::Quit(message.clone());
            // IRC tells a quit once (QUIT) and writes nothing for each room's leave.
            for told_once in [false, true] {
                reply(Event::Left {
                    room: lobby.clone(),
                    nick: me.clone(),
                    you: false,
                    reason: reason.clone(),
                    told_once,
                });
            }
            reply(Event::Quit {
                nick: me.clone(),
                reason: reason.clone(),
            });
            reply(Event::Bye { reason });
        }
        Command::Users { room }
        | Command::History { room, .. }
        | Command::HistorySince { room, .. }
        | Command::Status { room } => {
            let users = &Outgoing::reply(
                Event::Users {
                    room: room.clone().unwrap_or(lobby),
                    nicks: vec![me.clone(); 40],
                    standing: [Standing::Member, Standing::Voiced, Standing::Operator]
                        .into_iter()
                        .cycle()
                        .take(40)
                        .collect(),
                    away: [false, true].into_iter().cycle().take(40).collect(),
                    secret: false,
                },
                reference.clone(),
            );
            // Encoded once for both checks.
            let lines = irc().encode(users);
            check_irc_bytes(&lines);
            check_every_member_named(&lines, asked.verb, me.as_str(), 40);
        }
        Command::Topic { room } | Command::SetTopic { room, .. } => {
            let room = room.clone().unwrap_or(lobby);
            let text = match &request.command {
                Command::SetTopic { text, .. } => text.clone(),
                _ => None,
            };
            let topic = text.map(|text| Topic {
                text,
                by: me.clone(),
                at: 1_700_000_000_000,
            });
            reply(Event::Topic {
                room: room.clone(),
                topic: topic.clone(),
            });
            reply(Event::TopicChanged {
                room,
                by: me.clone(),
                topic,
            });
        }
        Command::Kick { room, nick, reason } => reply(Event::Kicked {
            room: room.clone().unwrap_or(lobby),
            nick: nick.clone(),
            by: me.clone(),
            reason: reason.clone(),
        }),
        Command::Invite { room, nick } => {
            for you in [true, false] {
                reply(Event::Invited {
                    room: room.clone().unwrap_or(lobby.clone()),
                    nick: nick.clone(),
                    by: me.clone(),
                    you,
                });
            }
        }
        Command::Mode { room, changes } => check_irc_modes(
            room.clone().unwrap_or(lobby),
            &me,
            changes,
            reference.as_deref(),
        ),
        Command::Bans { room } => reply(Event::Bans {
            room: room.clone().unwrap_or(lobby),
            bans: vec![Ban {
                mask: BanMask::parse(me.as_str()).expect("a nick is a ban mask"),
                account: Some(me.clone()),
                by: me.clone(),
                at: 1_700_000_000_000,
            }],
        }),
        Command::Rooms => reply(Event::Rooms {
            rooms: vec![ListedRoom {
                name: lobby,
                members: 3,
                topic: Some(MessageText::new("the lobby").expect("a text")),
            }],
        }),
        Command::Help => reply(Event::Help),
        Command::Tagged { command, .. } => check_irc_request(&Request {
            command: (**command).clone(),
            reference: request.reference.clone(),
        }),
        Command::TagsOnly { to, tags } => reply(Event::TagsOnly {
            id: 1,
            ts: 2,
            from: me.clone(),
            account: Some(me.clone()),
            to: to.clone(),
            tags: tags.clone(),
        }),
        Command::HistoryWindow { room, .. } => {
            let earlier = MessageText::new("earlier").expect("a text");
            let room = room.clone().unwrap_or_else(|| lobby.clone());
            reply(Event::History {
                messages: vec![charla::hub::Entry::Said(said(&room, &earlier, false))],
                room,
            })
        }
        // Answered by the ack alone (IRC clients have no beat or alert commands).
        Command::User { .. } | Command::Beat { .. } | Command::Alert { .. } => {}
        Command::Who { of, .. } => {
            let entry = |nick: &Nick, standing, away| WhoEntry {
                nick: nick.clone(),
                standing,
                user: Some("ana-real".into()),
                realname: Some(MessageText::new("Ana Real").expect("a text")),
                away,
                account: Some(nick.clone()),
                oper: away,
                invisible: !away,
                idle: 5,
            };
            let (room, members) = match of {
                WhoOf::Room(room) => (
                    Some(room.clone()),
                    vec![
                        entry(&me, Standing::Operator, false),
                        WhoEntry {
                            user: None,
                            realname: None,
                            ..entry(&me, Standing::Voiced, true)
                        },
                    ],
                ),
                WhoOf::Nick(nick) => (None, vec![entry(nick, Standing::Member, true)]),
                WhoOf::Mask(_) => (
                    None,
                    vec![
                        entry(&me, Standing::Member, false),
                        WhoEntry {
                            account: None,
                            ..entry(&me, Standing::Member, true)
                        },
                    ],
                ),
            };
            reply(Event::Who { room, members })
        }
        Command::Notice {
            to: NoticeTarget::Room(room),
            text,
        } => reply(Event::Message(Said {
            notice: true,
            ..said(room, text, false)
        })),
        Command::Notice {
            to: NoticeTarget::Nick(to),
            text,
        } => reply(Event::Private {
            id: 1,
            ts: 2,
            from: me.clone(),
            to: to.clone(),
            text: text.clone(),
            notice: true,
            account: None,
            tags: None,
        }),
        Command::LeaveAll { message } => reply(Event::Left {
            room: lobby,
            nick: me.clone(),
            you: true,
            reason: LeaveReason::Left(message.clone()),
            told_once: false,
        }),
        Command::Whois(nick) => reply(Event::Whois(Box::new(Whois {
            nick: nick.clone(),
            rooms: vec![(lobby, Standing::Operator)],
            away: Some(MessageText::new("gone").expect("a text")),
            user: Some("ana-real".into()),
            realname: Some(MessageText::new("Ana Real").expect("a text")),
            account: Some(nick.clone()),
            oper: true,
            signon: 1_700_000_000_000,
            idle: 5,
        }))),
        Command::Online(nicks) => reply(Event::Online(nicks.clone())),
        Command::Away(message) => {
            for you in [true, false] {
                reply(Event::Away {
                    nick: me.clone(),
                    message: message.clone(),
                    you,
                });
            }
            reply(Event::AwayChanged {
                nick: me.clone(),
                message: message.clone(),
            });
        }
        Command::Census => reply(Event::Census(Census {
            users: 3,
            opers: 1,
            peak: 5,
            rooms: 2,
            global_users: 7,
            global_invisible: 2,
            global_peak: 9,
            servers: 2,
        })),
        Command::Resume { room, after } => {
            for cause in [GapCause::NotKept, GapCause::NotRelayed] {
                reply(Event::Gap {
                    room: room.clone(),
                    from: after.saturating_add(1),
                    to: after.saturating_add(10),
                    cause,
                });
            }
        }
        Command::UserModes { invisible, oper } => {
            let changed = [('i', *invisible), ('o', *oper)]
                .iter()
                .filter_map(|&(letter, set)| {
                    set.map(|on| format!("{}{letter}", if on { '+' } else { '-' }))
                })
                .collect();
            for changed in [changed, String::new()] {
                reply(Event::UserModes {
                    nick: me.clone(),
                    invisible: invisible.unwrap_or(false),
                    oper: oper.unwrap_or(false),
                    changed,
                });
            }
        }
    }
}

/// Mode changes as the room is told them, and the room's modes after them as a query
/// answers; only changes the hub takes (`hub::Modes::valid_key`): it refuses the request
/// whole otherwise.
fn check_irc_modes(room: RoomName, me: &Nick, changes: &[ModeChange], reference: Option<&str>) {
    let refused = changes
        .iter()
        .any(|c| matches!((&c.mode, c.add), (Mode::Key(key), true) if !Modes::valid_key(key)));
    if refused {
        return;
    }
    let reply = |event: Event| {
        check_irc_encoded(&Outgoing::reply(event, reference.map(str::to_owned)));
    };
    let mut modes = Modes::new_room();
    for change in changes {
        match &change.mode {
            Mode::Key(key) => modes.key = change.add.then(|| key.clone()),
            Mode::Limit(limit) => modes.limit = change.add.then_some(*limit),
            Mode::Moderated => modes.moderated = change.add,
            Mode::InviteOnly => modes.invite_only = change.add,
            _ => {}
        }
    }
    reply(Event::ModeChanged {
        room: room.clone(),
        by: me.clone(),
        changes: changes.to_vec(),
    });
    reply(Event::Modes {
        room,
        modes,
        ops: vec![me.clone()],
        voiced: Vec::new(),
        created: 1_700_000_000_000,
    });
}

/// A member list names every member whole, however long the names: one `352` each for
/// WHO, else `353`s whose nicks are the members, none cut short by the line bound.
fn check_every_member_named(bytes: &[u8], verb: &str, member: &str, count: usize) {
    let text = std::str::from_utf8(bytes).expect("IRC output is UTF-8");
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
        // An operator is shown `@nick`, a voiced member `+nick`.
        messages
            .iter()
            .filter(|m| m.command == "353")
            .flat_map(|m| m.params.last().copied().unwrap_or("").split(' '))
            .map(|n| n.strip_prefix(['@', '+']).unwrap_or(n))
            .collect()
    };
    assert!(
        named.len() == count && named.iter().all(|n| *n == member),
        "{count} members named as {named:?}: {text:?}"
    );
}

/// Every error as every verb the codec asks with is answered, with the longest nick and
/// room in three-byte characters and a sentence of more than a line holding control
/// characters, an escape sequence, line breaks, bidi controls and four-byte characters:
/// whatever the input, these are the longest prefixes and the worst sentence. Once per
/// process, as nothing of it comes from the input.
fn check_every_error_at_the_bounds() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let nick = "中".repeat(MAX_NICK_CHARS);
        let room = format!("#{}", "中".repeat(MAX_ROOM_CHARS - 1));
        assert!(Nick::parse(&nick).is_ok() && RoomName::parse(&room).is_ok());
        let both = format!("{room},{nick}");
        let sentence = "«中» \u{1b}[31mred\u{7}\r\nnext\u{202e}txt\u{2028}😀 \u{3}4,5x ".repeat(20);
        for verb in VERBS {
            for me in ["*", nick.as_str()] {
                for subject in ["*", nick.as_str(), room.as_str(), both.as_str()] {
                    let reference = Some(format!("{me} {verb} {subject}"));
                    for code in ERROR_CODES {
                        let error = Event::Error {
                            code,
                            message: sentence.clone(),
                        };
                        check_irc_encoded(&Outgoing::reply(error, reference.clone()));
                    }
                }
            }
        }
    });
}

/// Every verb the IRC codec asks the hub with (`protocol::irc::codec`).
const VERBS: [&str; 15] = [
    "NICK", "QUIT", "JOIN", "JOINED", "HISTORY", "TOPIC", "KICK", "INVITE", "PART", "PRIVMSG",
    "NOTICE", "NAMES", "WHO", "LIST", "MODE",
];

const ERROR_CODES: [ErrorCode; 33] = [
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
    ErrorCode::NotOperator,
    ErrorCode::Banned,
    ErrorCode::InviteOnly,
    ErrorCode::BadKey,
    ErrorCode::RoomFull,
    ErrorCode::Moderated,
    ErrorCode::UnknownMode,
    ErrorCode::TargetNotInRoom,
    ErrorCode::NickRegistered,
    ErrorCode::AccountRequired,
    ErrorCode::BadPassword,
    ErrorCode::RateLimited,
    ErrorCode::NotLoggedIn,
    ErrorCode::AccountExists,
    ErrorCode::StoreFailed,
];

/// A line the IRC codec writes itself: one whole line, ended by CRLF, of at most 512 bytes
/// with it (its IRCv3 tags aside, which IRCv3 bounds apart), with no other control
/// character. For a client with labeled-response, the answer to a labeled line carries
/// tags (`label`, and `batch` and `time` inside a batch), and may be several such lines: a
/// batch, its first line labeled.
pub fn check_irc_answer(bytes: &[u8]) {
    let text = std::str::from_utf8(bytes).expect("an IRC answer is UTF-8");
    assert!(
        text.ends_with("\r\n"),
        "an IRC answer is not CRLF-ended: {text:?}"
    );
    let lines: Vec<&str> = text.split_terminator("\r\n").collect();
    assert!(
        lines.len() == 1 || lines[0].starts_with("@label="),
        "an unlabeled IRC answer of several lines: {text:?}"
    );
    for line in lines {
        assert_printable(line);
        let untagged = match line.strip_prefix('@') {
            Some(tagged) => tagged.split_once(' ').map_or("", |(_, rest)| rest),
            None => line,
        };
        assert!(
            untagged.len() + 2 <= MAX_LINE_BYTES,
            "{} bytes besides tags: {text:?}",
            untagged.len() + 2
        );
        check_irc_line(line, true);
    }
}

/// An event written as IRC lines: whole CRLF-ended lines, each at most 512 bytes with it,
/// holding no control character but formatting codes and CTCP's `\x01`, each a message an
/// IRC parser reads.
pub fn check_irc_encoded(out: &Outgoing) {
    // The answer to a labeled request (a call to a check, answered later) is written
    // labeled, whenever it comes.
    let labeled = out.reference.as_deref().is_some_and(|r| r.starts_with('@'));
    check_irc_lines(&irc().encode(out), labeled);
}

/// The IRC format for the default limits, looked up once.
fn irc() -> &'static IrcFormat {
    static FORMAT: OnceLock<&'static IrcFormat> = OnceLock::new();
    FORMAT.get_or_init(|| IrcFormat::for_limits(&Limits::default()))
}

/// What [`check_irc_encoded`] checks, of what the format wrote.
fn check_irc_bytes(bytes: &[u8]) {
    check_irc_lines(bytes, false);
}

/// [`check_irc_bytes`], with the tags of a labeled answer allowed when `labeled` (outside
/// the 512 bytes, as IRCv3 bounds them apart).
fn check_irc_lines(bytes: &[u8], labeled: bool) {
    let text = std::str::from_utf8(bytes).expect("IRC output is UTF-8");
    assert!(
        text.is_empty() || text.ends_with("\r\n"),
        "unended IRC output: {text:?}"
    );
    for line in text.split_terminator("\r\n") {
        let untagged = match line.strip_prefix('@') {
            Some(tagged) if labeled => tagged.split_once(' ').map_or("", |(_, rest)| rest),
            _ => line,
        };
        assert!(
            untagged.len() + 2 <= MAX_LINE_BYTES,
            "an IRC line of {} bytes: {line:?}",
            untagged.len() + 2
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
        check_irc_line(line, labeled);
    }
}

/// A line charla writes parses as a message from `charla` (or a user, or a feed), or is
/// `ERROR`, or SASL's challenge `AUTHENTICATE +` (unprefixed, as IRCv3's SASL spec and other
/// servers write it). It carries IRCv3 tags only when `tags`, and then only the server's
/// own (`label`, `batch`, `time`, `msgid`, `account`) and clients' (`+…`).
fn check_irc_line(line: &str, tags: bool) {
    assert!(!line.is_empty(), "an empty IRC line");
    let message = Message::parse(line).unwrap_or_else(|e| panic!("{e:?}: {line:?}"));
    assert!(
        message.prefix.is_some() || message.is("ERROR") || line == "AUTHENTICATE +",
        "an IRC line with no prefix: {line:?}"
    );
    match message.tags {
        Some(written) if tags => {
            for tag in written.split(';') {
                let key = tag.split_once('=').map_or(tag, |(key, _)| key);
                assert!(
                    key.starts_with('+')
                        || ["label", "batch", "time", "msgid", "account"].contains(&key),
                    "a tag {key:?} written: {line:?}"
                );
            }
        }
        written => assert!(written.is_none(), "tags written: {line:?}"),
    }
}
