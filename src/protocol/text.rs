//! The text format: what people type into `nc` or telnet, and what they read back.
//!
//! Every line the server writes starts with a marker a program can match on:
//! `#room <nick> text` a message, `#room * nick text` an action, `#room *** …` a room
//! notice, `#room [history HH:MM UTC] …` a replayed message, `(private) <nick> text` a
//! private message, `*** …` a server notice, `ERROR code: sentence` an error. Feeds (file
//! watcher, checks, UDP) speak with `#room >>> [source] text` (a notice), `#room !!! [source]
//! text` (an alert) and `#room --- [source] text` (a status line); a nick never contains
//! `[` or `]` and a person's line never starts with those markers, so nobody can forge one.

use std::fmt::Write;

use bytes::Bytes;

use super::help::COMMANDS;
use super::modes::ModeRequest;
use super::{
    Incoming, Refusal, cluster_news, json, nick_arg, note_arg, room_arg, silence_length, text_arg,
};
use crate::accounts::{AccountRequest, Secret};
use crate::hub::{
    AlertAction, Command, Entry, ErrorCode, Event, GapCause, Nick, Notice, Outgoing, PostKind,
    Posted, Request, RoomName, Said, describe_changes,
};

/// The reference `/history since ID` carries, the id after it: its reply says what an empty
/// answer means.
const SINCE_REFERENCE: &str = "since ";

pub fn parse(line: &str) -> Result<Incoming, Refusal> {
    if line.trim().is_empty() {
        return Ok(Incoming::Nothing);
    }
    if line.trim_start().starts_with('{') {
        match json::parse(line) {
            Ok(hello @ Incoming::Hello { .. }) => return Ok(hello),
            // A hello asking for a bad nick or room is refused, not said to the room.
            Err(refusal) if is_hello(line) => return Err(refusal),
            _ => {}
        }
    }
    let Some(command_line) = line.strip_prefix('/') else {
        return say(line);
    };
    if command_line.starts_with('/') {
        return say(command_line);
    }
    let (word, rest) = command_line
        .split_once(char::is_whitespace)
        .unwrap_or((command_line, ""));
    let rest = rest.trim();
    let command = match word.to_lowercase().as_str() {
        "nick" => Command::Nick(nick_arg(required(rest, "/nick NAME")?)?),
        "join" => {
            let (room, key) = split_word(required(rest, "/join #room [key]")?);
            let room = room_arg(room)?;
            match optional(key) {
                Some(key) => Command::JoinWithKey {
                    room,
                    key: key.to_string(),
                },
                None => Command::Join(room),
            }
        }
        "topic" => {
            let (room, text) = room_first(rest)?;
            match optional(text) {
                Some(text) => Command::SetTopic {
                    room,
                    text: crate::hub::MessageText::new(text),
                },
                None => Command::Topic { room },
            }
        }
        "kick" => {
            let (nick, reason) = split_word(required(rest, "/kick NICK [reason]")?);
            Command::Kick {
                room: None,
                nick: nick_arg(nick)?,
                reason: crate::hub::MessageText::new(reason),
            }
        }
        "ban" | "unban" | "op" | "deop" | "voice" | "devoice" => {
            let usage = format!("/{word} NICK");
            let (target, _) = split_word(required(rest, &usage)?);
            let word = word.to_lowercase();
            let add = !word.starts_with('d') && word != "unban";
            let letter = match word.as_str() {
                "ban" | "unban" => "b",
                "op" | "deop" => "o",
                _ => "v",
            };
            let letters = format!("{}{letter}", if add { '+' } else { '-' });
            mode_command(None, &letters, &[target])?
        }
        "mode" => {
            let (room, rest) = room_first(rest)?;
            let mut words = rest.split_whitespace();
            let letters = words.next().unwrap_or("");
            let args: Vec<&str> = words.collect();
            mode_command(room, letters, &args)?
        }
        "invite" => {
            let (nick, room) = split_word(required(rest, "/invite NICK [#room]")?);
            Command::Invite {
                room: optional(room).map(room_arg).transpose()?,
                nick: nick_arg(nick)?,
            }
        }
        "leave" | "part" => {
            let (room, message) = match rest.strip_prefix('#') {
                Some(_) => {
                    let (room, message) = rest.split_once(' ').unwrap_or((rest, ""));
                    (Some(room_arg(room)?), message)
                }
                None => (None, rest),
            };
            Command::Leave {
                room,
                message: crate::hub::MessageText::new(message),
            }
        }
        "users" | "who" | "names" => Command::Users {
            room: optional(rest).map(room_arg).transpose()?,
        },
        "rooms" | "list" => Command::Rooms,
        "lusers" => Command::Census,
        "msg" => {
            let usage = "/msg NAME text";
            let (to, text) = required(rest, usage)?
                .split_once(char::is_whitespace)
                .ok_or_else(|| missing(usage))?;
            Command::Msg {
                to: nick_arg(to)?,
                text: text_arg(text)?,
            }
        }
        "me" => Command::Say {
            room: None,
            text: text_arg(required(rest, "/me action")?)?,
            action: true,
        },
        "history" if rest.starts_with("since") => {
            let after: u64 = rest["since".len()..].trim().parse().map_err(|_| {
                Refusal::new(
                    ErrorCode::InvalidArgument,
                    "give the id of a message: /history since 41".to_string(),
                )
            })?;
            // The reply names the id, so that nothing after it reads as such, not as a
            // room without history.
            return Ok(Incoming::Request(Request {
                command: Command::HistorySince { room: None, after },
                reference: Some(format!("{SINCE_REFERENCE}{after}")),
            }));
        }
        "history" => Command::History {
            room: None,
            limit: optional(rest)
                .map(|n| match n.parse() {
                    Ok(0) | Err(_) => Err(Refusal::new(
                        ErrorCode::InvalidArgument,
                        format!("{n:?} is not a count of messages; try /history 20"),
                    )),
                    Ok(n) => Ok(n),
                })
                .transpose()?,
        },
        "quit" | "exit" => Command::Quit {
            message: crate::hub::MessageText::new(rest),
        },
        "help" | "?" => Command::Help,
        "away" => Command::Away(crate::hub::MessageText::new(rest)),
        "whois" => Command::Whois(nick_arg(required(rest, "/whois NAME")?)?),
        "status" => Command::Status {
            room: optional(rest).map(room_arg).transpose()?,
        },
        "ack" => {
            let (name, note) = split_word(required(rest, "/ack NAME [note]")?);
            Command::Alert {
                name: name.to_string(),
                action: AlertAction::Ack {
                    note: note_arg(Some(note)),
                },
            }
        }
        "silence" => {
            let usage = "/silence NAME DURATION [reason]";
            let (name, rest) = split_word(required(rest, usage)?);
            let (lasting, reason) = split_word(required(rest, usage)?);
            Command::Alert {
                name: name.to_string(),
                action: AlertAction::Silence {
                    lasting: silence_length(lasting)?,
                    reason: note_arg(Some(reason)),
                },
            }
        }
        "unsilence" => Command::Alert {
            name: split_word(required(rest, "/unsilence NAME")?).0.to_string(),
            action: AlertAction::Unsilence,
        },
        "register" | "login" | "identify" | "logout" | "password" | "unregister" | "token"
        | "oper" => {
            return account_command(&word.to_lowercase(), rest);
        }
        _ => {
            return Err(Refusal::new(
                ErrorCode::UnknownCommand,
                format!(
                    "/{word} is not a command; /help lists them (//text sends a line starting with /)"
                ),
            ));
        }
    };
    Ok(Incoming::Request(command.into()))
}

/// `/register`, `/login` and the other account commands. A password is one word: the
/// first space ends it, so `/password OLD NEW` is unambiguous.
fn account_command(word: &str, rest: &str) -> Result<Incoming, Refusal> {
    let secret = |usage: &str| required(rest, usage).map(|p| Secret::new(split_word(p).0));
    let request = match word {
        "register" => AccountRequest::Register {
            password: secret("/register PASSWORD")?,
        },
        "login" | "identify" => {
            let usage = format!("/{word} NICK PASSWORD");
            let (nick, password) = split_word(required(rest, &usage)?);
            AccountRequest::Login {
                account: nick_arg(nick)?,
                password: Secret::new(split_word(required(password, &usage)?).0),
            }
        }
        "logout" => AccountRequest::Logout,
        "oper" => {
            let usage = "/oper NAME PASSWORD";
            let (name, password) = split_word(required(rest, usage)?);
            AccountRequest::Oper {
                name: nick_arg(name)?,
                password: Secret::new(split_word(required(password, usage)?).0),
            }
        }
        "password" => {
            let usage = "/password OLD NEW";
            let (old, new) = split_word(required(rest, usage)?);
            AccountRequest::Password {
                old: Secret::new(old),
                new: Secret::new(split_word(required(new, usage)?).0),
            }
        }
        "unregister" => AccountRequest::Unregister {
            password: secret("/unregister PASSWORD")?,
        },
        _ => {
            let usage = "/token new LABEL, /token list or /token revoke LABEL";
            let (action, label) = split_word(required(rest, usage)?);
            match action.to_lowercase().as_str() {
                "new" => AccountRequest::TokenNew {
                    label: required(label, usage)?.to_string(),
                },
                "list" => AccountRequest::TokenList,
                "revoke" => AccountRequest::TokenRevoke {
                    label: required(label, usage)?.to_string(),
                },
                _ => return Err(missing(usage)),
            }
        }
    };
    Ok(Incoming::Account {
        request,
        reference: None,
    })
}

/// The first word of `rest` and what follows it, trimmed.
fn split_word(rest: &str) -> (&str, &str) {
    let (word, after) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    (word, after.trim())
}

/// A leading `#room`, if `rest` starts with one, and the rest.
fn room_first(rest: &str) -> Result<(Option<RoomName>, &str), Refusal> {
    if !rest.starts_with('#') {
        return Ok((None, rest));
    }
    let (room, after) = split_word(rest);
    Ok((Some(room_arg(room)?), after))
}

/// `/mode`, `/op`, `/ban`… as the hub's command: a query, the ban list, or changes.
fn mode_command(room: Option<RoomName>, letters: &str, args: &[&str]) -> Result<Command, Refusal> {
    Ok(match super::modes::parse(letters, args)? {
        ModeRequest::Query => Command::Mode {
            room,
            changes: Vec::new(),
        },
        ModeRequest::Bans => Command::Bans { room },
        ModeRequest::Change(changes) => Command::Mode { room, changes },
    })
}

/// Whether `line` is a JSON object of type `hello`, valid or not.
fn is_hello(line: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(line).is_ok_and(|v| v["type"] == "hello")
}

fn say(text: &str) -> Result<Incoming, Refusal> {
    let command = Command::Say {
        room: None,
        text: text_arg(text)?,
        action: false,
    };
    Ok(Incoming::Request(Request::from(command)))
}

fn optional(rest: &str) -> Option<&str> {
    (!rest.is_empty()).then_some(rest)
}

fn required<'a>(rest: &'a str, usage: &str) -> Result<&'a str, Refusal> {
    optional(rest).ok_or_else(|| missing(usage))
}

fn missing(usage: &str) -> Refusal {
    Refusal::new(ErrorCode::MissingArgument, format!("usage: {usage}"))
}

/// Room for a typical line at once: growing the string step by step cost several
/// reallocations per message (seen in a profile of the rooms scenario).
const LINE_CAPACITY: usize = 256;

pub fn encode(out: &Outgoing) -> Bytes {
    let mut s = String::with_capacity(LINE_CAPACITY);
    // Writing to a String cannot fail.
    let _ = match (&out.event, out.reference.as_deref()) {
        (Event::History { room, messages }, Some(asked)) if messages.is_empty() => {
            match asked.strip_prefix(SINCE_REFERENCE) {
                Some(after) => writeln!(s, "{room} *** nothing was said after message {after}"),
                None => write_event(&mut s, &out.event),
            }
        }
        _ => write_event(&mut s, &out.event),
    };
    Bytes::from(s)
}

fn write_event(s: &mut String, event: &Event) -> std::fmt::Result {
    match event {
        Event::Welcome { nick, .. } => writeln!(
            s,
            "*** Welcome to charla, {nick}! Type /help for commands, /nick NAME to choose your name."
        ),
        Event::Message(said) => write_said(s, said, None),
        // Client-only tags are for IRC clients that asked for them.
        Event::TagsOnly { .. } => Ok(()),
        // Each room's leave says it, as a line of that room.
        Event::Quit { .. } => Ok(()),
        Event::Private {
            from,
            text,
            notice: true,
            ..
        } => writeln!(s, "(private) -{from}- {text}"),
        Event::Private { from, text, .. } => writeln!(s, "(private) <{from}> {text}"),
        Event::Joined {
            room,
            you: true,
            members,
            count,
            ..
        } => {
            write!(s, "{room} *** you joined; here now: {}", list(members))?;
            match count.saturating_sub(members.len()) {
                0 => s.push('\n'),
                more => writeln!(s, " and {more} more (/users lists all)")?,
            }
            Ok(())
        }
        Event::Joined { room, nick, .. } => writeln!(s, "{room} *** {nick} joined"),
        Event::Left {
            room, you: true, ..
        } => writeln!(s, "{room} *** you left"),
        Event::Left {
            room, nick, reason, ..
        } => writeln!(s, "{room} *** {nick} left ({reason})"),
        Event::NickChanged { new, you: true, .. } => {
            writeln!(s, "*** you are now known as {new}")
        }
        Event::NickChanged { old, new, .. } => writeln!(s, "*** {old} is now known as {new}"),
        Event::History { room, messages } if messages.is_empty() => {
            writeln!(s, "{room} *** no history yet")
        }
        Event::History { messages, .. } => {
            for entry in messages {
                match entry {
                    Entry::Said(said) => write_said(s, said, Some(said.ts))?,
                    Entry::Posted(posted) => write_posted(s, posted, Some(posted.ts))?,
                }
            }
            Ok(())
        }
        Event::Gap {
            room,
            from,
            to,
            cause: GapCause::NotKept,
        } => writeln!(s, "{room} *** messages {from} to {to} are no longer kept"),
        Event::Gap {
            room,
            from,
            to,
            cause: GapCause::NotRelayed,
        } => writeln!(
            s,
            "{room} *** messages {from} to {to} were said on another node during a cluster outage and not relayed here"
        ),
        Event::Posted(posted) => write_posted(s, posted, None),
        Event::Status { room, items } if items.is_empty() => {
            writeln!(s, "{room} *** nothing to report: no feed here")
        }
        Event::Status { room, items } => {
            for notice in items {
                write!(s, "{room} --- [{}] {}", notice.source, notice.text)?;
                // In a cluster, the node that runs it.
                match notice.node() {
                    Some(node) => writeln!(s, " (on {node})")?,
                    None => writeln!(s)?,
                }
            }
            Ok(())
        }
        // Plain nicks, as before operators existed (programs match these lines); `/mode`
        // names the operators.
        Event::Users { room, nicks, .. } => {
            writeln!(s, "{room} *** {} here: {}", nicks.len(), list(nicks))
        }
        // Only IRC asks WHO; said here as who is there, should anything else.
        Event::Who { room, members } => {
            let nicks: Vec<Nick> = members.iter().map(|m| m.nick.clone()).collect();
            let room = room.as_ref().map_or("*", RoomName::as_str);
            writeln!(s, "{room} *** {} here: {}", nicks.len(), list(&nicks))
        }
        Event::Topic {
            room,
            topic: Some(topic),
        } => writeln!(s, "{room} *** topic: {} (set by {})", topic.text, topic.by),
        Event::Topic { room, topic: None } => writeln!(s, "{room} *** no topic is set"),
        Event::TopicChanged {
            room,
            by,
            topic: Some(topic),
        } => writeln!(s, "{room} *** {by} set the topic: {}", topic.text),
        Event::TopicChanged {
            room,
            by,
            topic: None,
        } => writeln!(s, "{room} *** {by} cleared the topic"),
        Event::Kicked {
            room,
            nick,
            by,
            reason,
        } => {
            write!(s, "{room} *** {nick} was kicked by {by}")?;
            match reason {
                Some(reason) => writeln!(s, " ({reason})"),
                None => writeln!(s),
            }
        }
        Event::ModeChanged { room, changes, .. } if changes.is_empty() => {
            writeln!(s, "{room} *** no mode changed")
        }
        Event::ModeChanged { room, by, changes } => {
            writeln!(s, "{room} *** {by} set mode {}", describe_changes(changes))
        }
        Event::Modes {
            room,
            modes,
            ops,
            voiced,
            ..
        } => {
            let some = |nicks: &[Nick]| match nicks {
                [] => "none".to_string(),
                nicks => list(nicks),
            };
            writeln!(
                s,
                "{room} *** modes {}; operators: {}; voiced: {}",
                modes.describe(true),
                some(ops),
                some(voiced)
            )
        }
        Event::Bans { room, bans } if bans.is_empty() => writeln!(s, "{room} *** no bans"),
        Event::Bans { room, bans } => {
            let masks: Vec<String> = bans
                .iter()
                .map(|b| match &b.account {
                    Some(account) => format!("{} (account {account})", b.mask),
                    None => b.mask.to_string(),
                })
                .collect();
            writeln!(s, "{room} *** bans: {}", masks.join(", "))
        }
        Event::Invited {
            room,
            by,
            you: true,
            ..
        } => writeln!(s, "*** {by} invites you to {room}: /join {room}"),
        Event::Invited { room, nick, .. } => writeln!(s, "*** you invited {nick} to {room}"),
        Event::Rooms { rooms } => {
            s.push_str("*** rooms:");
            for (i, room) in rooms.iter().enumerate() {
                let sep = if i == 0 { " " } else { ", " };
                write!(s, "{sep}{} ({})", room.name, room.members)?;
            }
            s.push('\n');
            Ok(())
        }
        // User modes are IRC's: only an IRC client asks for them.
        Event::UserModes { .. } | Event::Online(_) => Ok(()),
        // Counted over every node of a cluster, as IRC's LUSERS counts them.
        Event::Census(census) => writeln!(
            s,
            "*** {} connected (at most {} at once), {} room{}",
            census.global_users,
            census.global_peak,
            census.rooms,
            if census.rooms == 1 { "" } else { "s" }
        ),
        Event::Whois(whois) => {
            let rooms: Vec<String> = whois
                .rooms
                .iter()
                .map(|(room, standing)| format!("{}{room}", standing.prefix()))
                .collect();
            let rooms = if rooms.is_empty() {
                "no room".to_string()
            } else {
                rooms.join(" ")
            };
            let away = whois
                .away
                .as_ref()
                .map(|away| format!("; away: {away}"))
                .unwrap_or_default();
            let idle = whois.idle / 1000;
            writeln!(s, "*** {} is in {rooms}; idle {idle}s{away}", whois.nick)
        }
        Event::Away {
            you: true,
            message: Some(message),
            ..
        } => writeln!(s, "*** you are marked away: {message}"),
        Event::Away { you: true, .. } => writeln!(s, "*** you are back"),
        Event::Away {
            nick,
            message: Some(message),
            ..
        } => writeln!(s, "*** {nick} is away: {message}"),
        // Who went away is shown when they are written to, not to everyone around them.
        Event::Away { .. } | Event::AwayChanged { .. } => Ok(()),
        // The text format does not echo what a person typed.
        Event::Ack { .. } => Ok(()),
        // A refusal may quote what was typed (`/\x07x is not a command`): its control
        // characters must not reach the terminal, even the sender's own.
        Event::Error { code, message } => {
            let message = crate::hub::sanitize(message);
            writeln!(s, "ERROR {}: {message}", code.as_str())
        }
        Event::Help => {
            s.push_str("*** commands (a line without / goes to the room you are in):\n");
            for (usage, about) in COMMANDS {
                writeln!(s, "***   {usage:<26} {about}")?;
            }
            Ok(())
        }
        Event::Account(news) => writeln!(s, "*** {news}"),
        Event::Cluster { reachable } => writeln!(s, "*** {}", cluster_news(*reachable)),
        Event::Bye { reason } => writeln!(s, "*** goodbye ({reason})"),
    }
}

fn write_said(s: &mut String, said: &Said, history: Option<u64>) -> std::fmt::Result {
    write!(s, "{} ", said.room)?;
    if let Some(ts) = history {
        write_history_time(s, ts)?;
    }
    if said.action {
        writeln!(s, "* {} {}", said.from, said.text)
    } else if said.notice {
        writeln!(s, "-{}- {}", said.from, said.text)
    } else {
        writeln!(s, "<{}> {}", said.from, said.text)
    }
}

fn write_posted(s: &mut String, posted: &Posted, history: Option<u64>) -> std::fmt::Result {
    write!(s, "{} ", posted.room)?;
    if let Some(ts) = history {
        write_history_time(s, ts)?;
    }
    let Notice {
        source, kind, text, ..
    } = &*posted.notice;
    let marker = match kind {
        PostKind::Notice => ">>>",
        PostKind::Alert => "!!!",
    };
    writeln!(s, "{marker} [{source}] {text}")
}

fn write_history_time(s: &mut String, ts: u64) -> std::fmt::Result {
    let minutes = ts / 60_000;
    write!(
        s,
        "[history {:02}:{:02} UTC] ",
        minutes / 60 % 24,
        minutes % 60
    )
}

fn list(nicks: &[Nick]) -> String {
    let names: Vec<&str> = nicks.iter().map(Nick::as_str).collect();
    names.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::{LeaveReason, MessageText, RoomName};

    fn request(line: &str) -> Command {
        match parse(line) {
            Ok(Incoming::Request(r)) => r.command,
            other => panic!("{line:?} gave {other:?}"),
        }
    }

    fn refusal(line: &str) -> ErrorCode {
        parse(line).unwrap_err().code
    }

    #[test]
    fn plain_lines_are_messages_to_the_current_room() {
        match request("hola, ¿qué tal? 😀") {
            Command::Say {
                room: None,
                text,
                action: false,
            } => assert_eq!(text.as_str(), "hola, ¿qué tal? 😀"),
            other => panic!("{other:?}"),
        }
        match request("//etc/passwd is a path") {
            Command::Say { text, .. } => assert_eq!(text.as_str(), "/etc/passwd is a path"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse("   "), Ok(Incoming::Nothing)));
    }

    #[test]
    fn commands_parse_with_their_arguments() {
        assert!(matches!(request("/nick Begoña"), Command::Nick(n) if n.as_str() == "Begoña"));
        assert!(matches!(request("/JOIN ops"), Command::Join(r) if r.as_str() == "#ops"));
        assert!(matches!(request("/msg ana hi there"),
            Command::Msg { to, text } if to.as_str() == "ana" && text.as_str() == "hi there"));
        assert!(matches!(
            request("/me waves"),
            Command::Say { action: true, .. }
        ));
        assert!(matches!(
            request("/history 5"),
            Command::History { limit: Some(5), .. }
        ));
        assert!(matches!(
            request("/history since 41"),
            Command::HistorySince {
                after: 41,
                room: None
            }
        ));
        assert!(matches!(request("/users"), Command::Users { room: None }));
        assert!(matches!(request("/rooms"), Command::Rooms));
        assert!(matches!(request("/LUSERS"), Command::Census));
        assert!(matches!(request("/help"), Command::Help));
        assert!(
            matches!(request("/away at lunch"), Command::Away(Some(m)) if m.as_str() == "at lunch")
        );
        assert!(matches!(request("/away"), Command::Away(None)));
        assert!(matches!(request("/whois Begoña"), Command::Whois(n) if n.as_str() == "Begoña"));
        match request("/leave #ops see you") {
            Command::Leave {
                room: Some(r),
                message: Some(m),
            } => assert_eq!((r.as_str(), m.as_str()), ("#ops", "see you")),
            other => panic!("{other:?}"),
        }
        match request("/quit off to lunch") {
            Command::Quit { message: Some(m) } => assert_eq!(m.as_str(), "off to lunch"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn mistakes_get_recognisable_refusals() {
        assert_eq!(refusal("/frobnicate"), ErrorCode::UnknownCommand);
        assert_eq!(refusal("/nick"), ErrorCode::MissingArgument);
        assert_eq!(refusal("/nick two words"), ErrorCode::InvalidNick);
        // `/join #a b` is a join with key `b` now that rooms have keys (+k).
        assert_eq!(refusal("/join #a!b"), ErrorCode::InvalidRoom);
        assert!(matches!(request("/join #a b"),
            Command::JoinWithKey { room, key } if room.as_str() == "#a" && key == "b"));
        assert_eq!(refusal("/msg ana"), ErrorCode::MissingArgument);
        assert_eq!(refusal("/history lots"), ErrorCode::InvalidArgument);
        assert_eq!(refusal("/history since"), ErrorCode::InvalidArgument);
        assert_eq!(refusal("/history since then"), ErrorCode::InvalidArgument);
        assert_eq!(refusal("\u{1b}[2J"), ErrorCode::EmptyMessage);
    }

    #[test]
    fn a_json_hello_switches_format() {
        assert!(matches!(
            parse(r#"{"type":"hello","nick":"bot"}"#),
            Ok(Incoming::Hello { steps, .. }) if steps.len() == 1
        ));
        // Other braces are just chat.
        assert!(matches!(
            parse("{not json}"),
            Ok(Incoming::Request(Request {
                command: Command::Say { .. },
                ..
            }))
        ));
    }

    fn said(text: &str, action: bool) -> Said {
        Said {
            id: 1,
            seq: 1,
            ts: 13 * 3_600_000 + 5 * 60_000,
            room: RoomName::lobby(),
            from: Nick::parse("João").unwrap(),
            text: MessageText::new(text).unwrap(),
            action,
            notice: false,
            account: None,
            tags: None,
        }
    }

    fn text_of(event: Event) -> String {
        String::from_utf8(encode(&Outgoing::new(event)).to_vec()).unwrap()
    }

    #[test]
    fn operator_commands_parse_into_the_hubs_requests() {
        assert!(matches!(request("/topic"), Command::Topic { room: None }));
        assert!(matches!(
            request("/topic #ops"),
            Command::Topic { room: Some(_) }
        ));
        assert!(matches!(request("/topic #ops new one"),
            Command::SetTopic { room: Some(_), text: Some(t) } if t.as_str() == "new one"));
        assert!(matches!(request("/kick bob go away"),
            Command::Kick { nick, reason: Some(r), .. } if nick.as_str() == "bob" && r.as_str() == "go away"));
        assert!(matches!(request("/ban bob"),
            Command::Mode { changes, .. } if describe_changes(&changes) == "+b bob!*@*"));
        assert!(matches!(request("/unban bo*"),
            Command::Mode { changes, .. } if describe_changes(&changes) == "-b bo*!*@*"));
        assert!(matches!(request("/op bob"),
            Command::Mode { changes, .. } if describe_changes(&changes) == "+o bob"));
        assert!(matches!(request("/devoice bob"),
            Command::Mode { changes, .. } if describe_changes(&changes) == "-v bob"));
        assert!(
            matches!(request("/mode"), Command::Mode { room: None, changes } if changes.is_empty())
        );
        assert!(matches!(
            request("/mode #ops +b"),
            Command::Bans { room: Some(_) }
        ));
        assert!(matches!(request("/mode -k+l * 5"),
            Command::Mode { changes, .. } if describe_changes(&changes) == "-k+l * 5"));
        assert!(matches!(request("/invite bob #ops"),
            Command::Invite { room: Some(_), nick } if nick.as_str() == "bob"));
        assert_eq!(refusal("/mode +q"), ErrorCode::UnknownMode);
        assert_eq!(refusal("/kick"), ErrorCode::MissingArgument);
    }

    #[test]
    fn text_readers_get_messages_without_formatting_codes() {
        assert_eq!(
            text_of(Event::Message(said("\u{2}olá\u{2} \u{3}4red", false))),
            "#lobby <João> olá red\n"
        );
    }

    #[test]
    fn events_are_single_prefixed_lines() {
        assert_eq!(
            text_of(Event::Message(said("olá", false))),
            "#lobby <João> olá\n"
        );
        assert_eq!(
            text_of(Event::Message(said("acena", true))),
            "#lobby * João acena\n"
        );
        assert_eq!(
            text_of(Event::History {
                room: RoomName::lobby(),
                messages: vec![said("antes", false).into()]
            }),
            "#lobby [history 13:05 UTC] <João> antes\n"
        );
        assert_eq!(
            text_of(Event::Left {
                room: RoomName::lobby(),
                nick: Nick::parse("ana").unwrap(),
                you: false,
                reason: LeaveReason::Quit(MessageText::new("bye")),
                told_once: true,
            }),
            "#lobby *** ana left (quit: bye)\n"
        );
        assert_eq!(
            text_of(Event::Error {
                code: ErrorCode::NickTaken,
                message: "ana is taken; you are still guest-1".into()
            }),
            "ERROR nick_taken: ana is taken; you are still guest-1\n"
        );
        assert_eq!(
            text_of(Event::Ack {
                id: 1,
                seq: None,
                ts: 2
            }),
            ""
        );
    }

    /// Found by the `parse_text` fuzz target (fuzz/): an unknown command word was quoted
    /// in its refusal with its control characters, which then reached the terminal.
    #[test]
    fn a_refusal_quoting_what_was_typed_writes_no_control_character() {
        let (event, _) = parse("/o\x04G\x1b[2J").unwrap_err().into_reply();
        assert_eq!(
            text_of(event),
            "ERROR unknown_command: /oG is not a command; /help lists them (//text sends a line starting with /)\n"
        );
    }

    fn posted(kind: crate::hub::PostKind) -> crate::hub::Posted {
        crate::hub::Posted {
            id: 9,
            seq: 2,
            ts: 13 * 3_600_000 + 5 * 60_000,
            room: RoomName::parse("#alerts").unwrap(),
            notice: std::sync::Arc::new(
                Notice::new(
                    crate::hub::Source::new("udp:192.0.2.7").unwrap(),
                    kind,
                    MessageText::new("disk full").unwrap(),
                )
                .with("addr", "192.0.2.7:5000"),
            ),
        }
    }

    #[test]
    fn feed_posts_have_their_own_markers() {
        assert_eq!(
            text_of(Event::Posted(posted(PostKind::Alert))),
            "#alerts !!! [udp:192.0.2.7] disk full\n"
        );
        assert_eq!(
            text_of(Event::Posted(posted(PostKind::Notice))),
            "#alerts >>> [udp:192.0.2.7] disk full\n"
        );
        assert_eq!(
            text_of(Event::History {
                room: RoomName::lobby(),
                messages: vec![posted(PostKind::Alert).into(), said("after", false).into()],
            }),
            "#alerts [history 13:05 UTC] !!! [udp:192.0.2.7] disk full\n\
             #lobby [history 13:05 UTC] <João> after\n"
        );
        let status = Event::Status {
            room: RoomName::parse("#alerts").unwrap(),
            items: vec![posted(PostKind::Alert).notice.as_ref().clone()],
        };
        assert_eq!(text_of(status), "#alerts --- [udp:192.0.2.7] disk full\n");
        let empty = Event::Status {
            room: RoomName::lobby(),
            items: vec![],
        };
        assert_eq!(
            text_of(empty),
            "#lobby *** nothing to report: no feed here\n"
        );
        assert!(matches!(
            request("/status #alerts"),
            Command::Status { room: Some(r) } if r.as_str() == "#alerts"
        ));
    }
}
