//! JSON lines: one object per line, `type` naming what it is (docs/protocol.md).

use std::borrow::Cow;
use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::help::COMMANDS;
use super::modes::ModeRequest;
use super::{Incoming, Refusal, nick_arg, note_arg, room_arg, silence_length, text_arg};
use crate::accounts::{AccountRequest, Secret};
use crate::hub::{
    AccountNews, AlertAction, Beat, Command, Entry, ErrorCode, Event, Field, Mark, MessageText,
    Nick, Notice, Outgoing, Posted, Request, RoomName, Said, Topic, Window, describe_changes,
};
use crate::limits::CHATHISTORY_MAX;

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum JsonRequest {
    Hello {
        nick: Option<String>,
        #[serde(default)]
        rooms: Vec<String>,
        /// Rooms to resume: the last entry number (`seq`) seen in each.
        #[serde(default)]
        since: BTreeMap<String, u64>,
        /// Logs in to the account `nick` instead of only taking the nick.
        password: Option<String>,
        /// Logs in with an API token.
        token: Option<String>,
    },
    Register {
        password: String,
    },
    Login {
        nick: String,
        password: String,
    },
    Logout,
    Password {
        old: String,
        new: String,
    },
    Unregister {
        password: String,
    },
    Oper {
        name: String,
        password: String,
    },
    TokenNew {
        label: String,
    },
    TokenList,
    TokenRevoke {
        label: String,
    },
    Say {
        room: Option<String>,
        text: String,
    },
    Me {
        room: Option<String>,
        text: String,
    },
    Msg {
        to: String,
        text: String,
    },
    Nick {
        nick: String,
    },
    Join {
        room: String,
        key: Option<String>,
    },
    /// With no `text`, asks for the topic; `""` clears it.
    Topic {
        room: Option<String>,
        text: Option<String>,
    },
    Kick {
        room: Option<String>,
        nick: String,
        reason: Option<String>,
    },
    /// `modes` as IRC writes them (`"+kl"`, arguments in `args` or after the letters
    /// in the same string); none asks for the modes, `"+b"` alone for the ban list.
    Mode {
        room: Option<String>,
        modes: Option<String>,
        #[serde(default)]
        args: Vec<String>,
    },
    Invite {
        room: Option<String>,
        nick: String,
    },
    Leave {
        room: Option<String>,
        message: Option<String>,
    },
    Users {
        room: Option<String>,
    },
    Rooms,
    Census,
    /// With no `message` (or an empty one), back.
    Away {
        message: Option<String>,
    },
    Whois {
        nick: String,
    },
    History {
        room: Option<String>,
        limit: Option<usize>,
        /// Every entry after this message id instead of the last `limit`.
        since: Option<u64>,
        /// The `limit` entries before this message id instead of the last: older history.
        before: Option<u64>,
    },
    Help,
    Status {
        room: Option<String>,
    },
    Quit {
        message: Option<String>,
    },
    /// `/ack NAME [note]`.
    Ack {
        name: String,
        note: Option<String>,
    },
    /// `/silence NAME DURATION [reason]`, the duration as `30m` or `2h`.
    Silence {
        name: String,
        duration: String,
        reason: Option<String>,
    },
    Unsilence {
        name: String,
    },
    /// A job calling in to its heartbeat: `event` `alive` (the default), `start`, or
    /// `finish` with the run's exit `status`, `duration_ms` and last `output`.
    Beat {
        name: String,
        event: Option<String>,
        status: Option<i32>,
        duration_ms: Option<u64>,
        output: Option<String>,
    },
}

/// A request with the client's optional `ref`, kept as the exact JSON text it sent (a
/// `Value` would turn a big integer into a float) and echoed on its reply. A named field
/// beside a `flatten` is read straight from the input, so the `RawValue` works here.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "ref", borrow, default)]
    reference: Option<&'a RawValue>,
    #[serde(flatten)]
    request: JsonRequest,
}

/// Just the `ref` of a request that failed to parse, so the error can still carry it.
#[derive(Deserialize)]
struct RefOnly<'a> {
    #[serde(rename = "ref", borrow, default)]
    reference: Option<&'a RawValue>,
}

pub fn parse(line: &str) -> Result<Incoming, Refusal> {
    let envelope: Envelope = serde_json::from_str(line).map_err(|e| {
        let code = if e.is_data() {
            ErrorCode::InvalidRequest
        } else {
            ErrorCode::InvalidJson
        };
        let reference = serde_json::from_str::<RefOnly>(line)
            .ok()
            .and_then(|r| reference_text(r.reference));
        Refusal {
            reference,
            ..Refusal::new(code, e.to_string())
        }
    })?;
    let reference = reference_text(envelope.reference);
    let with_ref = |mut refusal: Refusal| {
        refusal.reference = reference.clone();
        refusal
    };
    let room = |r: Option<String>| r.as_deref().map(room_arg).transpose();
    let optional_text = |m: Option<String>| m.as_deref().and_then(MessageText::new);
    let account = |request| {
        Ok(Incoming::Account {
            request,
            reference: reference.clone(),
        })
    };
    let parsed = (|| {
        let command = match envelope.request {
            JsonRequest::Hello {
                nick,
                rooms,
                since,
                password,
                token,
            } => {
                let request = |command| Request {
                    command,
                    reference: reference.clone(),
                };
                let login = match (&nick, password, token) {
                    (_, Some(_), Some(_)) => {
                        return Err(Refusal::new(
                            ErrorCode::InvalidRequest,
                            "a hello logs in with a password or a token, not both",
                        ));
                    }
                    (Some(nick), Some(password), None) => Some(AccountRequest::Login {
                        account: nick_arg(nick)?,
                        password: Secret::new(password),
                    }),
                    (None, Some(_), None) => {
                        return Err(Refusal::new(
                            ErrorCode::MissingArgument,
                            "a hello with a password names the account as its nick",
                        ));
                    }
                    (_, None, token) => token.map(|t| AccountRequest::TokenLogin {
                        token: Secret::new(t),
                    }),
                };
                // Logging in gives the account's nick: no nick step of its own.
                let nick = nick
                    .filter(|_| !matches!(login, Some(AccountRequest::Login { .. })))
                    .map(|n| nick_arg(&n).map(Command::Nick));
                // Each room once: those in `rooms` in their order, then the rest of `since`;
                // a room named in `since` is resumed rather than joined afresh.
                let mut resumes = Vec::new();
                for (name, after) in &since {
                    resumes.push((room_arg(name), *after));
                }
                let resumed = |room: &RoomName| {
                    resumes
                        .iter()
                        .find(|(r, _)| r.as_ref().is_ok_and(|r| r == room))
                        .map(|(_, after)| *after)
                };
                let mut steps_rooms: Vec<Result<Command, Refusal>> = Vec::new();
                for name in &rooms {
                    steps_rooms.push(room_arg(name).map(|room| match resumed(&room) {
                        Some(after) => Command::Resume { room, after },
                        None => Command::Join(room),
                    }));
                }
                for (room, after) in resumes {
                    let listed = room.as_ref().is_ok_and(|room| {
                        rooms
                            .iter()
                            .any(|name| room_arg(name).is_ok_and(|r| r == *room))
                    });
                    if !listed {
                        steps_rooms.push(room.map(|room| Command::Resume { room, after }));
                    }
                }
                let joins = steps_rooms.into_iter();
                let steps = nick
                    .into_iter()
                    .chain(joins)
                    .map(|step| step.map(request).map_err(with_ref))
                    .collect();
                return Ok(Incoming::Hello {
                    steps,
                    reference: reference.clone(),
                    login,
                });
            }
            JsonRequest::Register { password } => {
                return account(AccountRequest::Register {
                    password: Secret::new(password),
                });
            }
            JsonRequest::Login { nick, password } => {
                return account(AccountRequest::Login {
                    account: nick_arg(&nick)?,
                    password: Secret::new(password),
                });
            }
            JsonRequest::Logout => return account(AccountRequest::Logout),
            JsonRequest::Password { old, new } => {
                return account(AccountRequest::Password {
                    old: Secret::new(old),
                    new: Secret::new(new),
                });
            }
            JsonRequest::Unregister { password } => {
                return account(AccountRequest::Unregister {
                    password: Secret::new(password),
                });
            }
            JsonRequest::Oper { name, password } => {
                return account(AccountRequest::Oper {
                    name: nick_arg(&name)?,
                    password: Secret::new(password),
                });
            }
            JsonRequest::TokenNew { label } => return account(AccountRequest::TokenNew { label }),
            JsonRequest::TokenList => return account(AccountRequest::TokenList),
            JsonRequest::TokenRevoke { label } => {
                return account(AccountRequest::TokenRevoke { label });
            }
            JsonRequest::Say { room: r, text } => Command::Say {
                room: room(r)?,
                text: text_arg(&text)?,
                action: false,
            },
            JsonRequest::Me { room: r, text } => Command::Say {
                room: room(r)?,
                text: text_arg(&text)?,
                action: true,
            },
            JsonRequest::Msg { to, text } => Command::Msg {
                to: nick_arg(&to)?,
                text: text_arg(&text)?,
            },
            JsonRequest::Nick { nick } => Command::Nick(nick_arg(&nick)?),
            JsonRequest::Join { room, key: None } => Command::Join(room_arg(&room)?),
            JsonRequest::Join {
                room,
                key: Some(key),
            } => Command::JoinWithKey {
                room: room_arg(&room)?,
                key,
            },
            JsonRequest::Topic { room: r, text } => match text {
                Some(text) => Command::SetTopic {
                    room: room(r)?,
                    text: MessageText::new(&text),
                },
                None => Command::Topic { room: room(r)? },
            },
            JsonRequest::Kick {
                room: r,
                nick,
                reason,
            } => Command::Kick {
                room: room(r)?,
                nick: nick_arg(&nick)?,
                reason: optional_text(reason),
            },
            JsonRequest::Mode {
                room: r,
                modes,
                args,
            } => {
                let room = room(r)?;
                let modes = modes.unwrap_or_default();
                let mut words = modes.split_whitespace();
                let letters = words.next().unwrap_or("");
                let args: Vec<&str> = words.chain(args.iter().map(String::as_str)).collect();
                match super::modes::parse(letters, &args)? {
                    ModeRequest::Query => Command::Mode {
                        room,
                        changes: Vec::new(),
                    },
                    ModeRequest::Bans => Command::Bans { room },
                    ModeRequest::Change(changes) => Command::Mode { room, changes },
                }
            }
            JsonRequest::Invite { room: r, nick } => Command::Invite {
                room: room(r)?,
                nick: nick_arg(&nick)?,
            },
            JsonRequest::Leave { room: r, message } => Command::Leave {
                room: room(r)?,
                message: optional_text(message),
            },
            JsonRequest::Users { room: r } => Command::Users { room: room(r)? },
            JsonRequest::Rooms => Command::Rooms,
            JsonRequest::Census => Command::Census,
            JsonRequest::Away { message } => Command::Away(optional_text(message)),
            JsonRequest::Whois { nick } => Command::Whois(nick_arg(&nick)?),
            JsonRequest::History {
                since: Some(_),
                before: Some(_),
                ..
            } => {
                return Err(Refusal::new(
                    ErrorCode::InvalidArgument,
                    "history takes since or before, not both",
                ));
            }
            JsonRequest::History {
                room: r,
                since: Some(after),
                ..
            } => Command::HistorySince {
                room: room(r)?,
                after,
            },
            JsonRequest::History {
                room: r,
                limit,
                before: Some(id),
                ..
            } => Command::HistoryWindow {
                room: room(r)?,
                window: Window::Before(Mark::Message(id)),
                limit: limit.unwrap_or(CHATHISTORY_MAX),
            },
            JsonRequest::History {
                room: r,
                limit,
                since: None,
                before: None,
            } => Command::History {
                room: room(r)?,
                limit,
            },
            JsonRequest::Help => Command::Help,
            JsonRequest::Status { room: r } => Command::Status { room: room(r)? },
            JsonRequest::Quit { message } => Command::Quit {
                message: optional_text(message),
            },
            JsonRequest::Beat {
                name,
                event,
                status,
                duration_ms,
                output,
            } => {
                let beat = match (event.as_deref().unwrap_or("alive"), status) {
                    ("alive", _) => Beat::Alive,
                    ("start", _) => Beat::Started,
                    ("finish", Some(status)) => Beat::Finished {
                        status,
                        took_ms: duration_ms.unwrap_or(0),
                        output,
                    },
                    ("finish", None) => {
                        return Err(Refusal::new(
                            ErrorCode::MissingArgument,
                            "a finish beat says the run's exit status",
                        ));
                    }
                    _ => {
                        return Err(Refusal::new(
                            ErrorCode::InvalidArgument,
                            "a beat's event is alive, start or finish",
                        ));
                    }
                };
                Command::Beat { name, beat }
            }
            JsonRequest::Ack { name, note } => Command::Alert {
                name,
                action: AlertAction::Ack {
                    note: note_arg(note.as_deref()),
                },
            },
            JsonRequest::Silence {
                name,
                duration,
                reason,
            } => Command::Alert {
                name,
                action: AlertAction::Silence {
                    lasting: silence_length(&duration)?,
                    reason: note_arg(reason.as_deref()),
                },
            },
            JsonRequest::Unsilence { name } => Command::Alert {
                name,
                action: AlertAction::Unsilence,
            },
        };
        Ok(Incoming::Request(Request {
            command,
            reference: reference.clone(),
        }))
    })();
    parsed.map_err(with_ref)
}

/// The `ref` as the JSON text to echo back verbatim. `null` deserialises to `None`, so it
/// counts as absent.
fn reference_text(raw: Option<&RawValue>) -> Option<String> {
    raw.map(|raw| without_control_whitespace(raw.get()))
}

/// `json` without the tabs, CRs and LFs it may have between tokens: valid JSON
/// whitespace, but a reader that splits lines on a CR would see the reply cut in two. The
/// tokens themselves are kept as spelled (a JSON string holds no raw control character).
fn without_control_whitespace(json: &str) -> String {
    if !json.contains(['\t', '\r', '\n']) {
        return json.to_string();
    }
    let (mut in_string, mut escaped) = (false, false);
    json.chars()
        .filter(|&c| {
            if in_string {
                match (escaped, c) {
                    (true, _) => escaped = false,
                    (false, '\\') => escaped = true,
                    (false, '"') => in_string = false,
                    _ => {}
                }
                return true;
            }
            in_string = c == '"';
            !matches!(c, '\t' | '\r' | '\n')
        })
        .collect()
}

/// A message, the hot path of fan-out: serialised straight from borrowed fields.
#[derive(Serialize)]
struct MessageOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: u64,
    seq: u64,
    ts: u64,
    room: &'a str,
    from: &'a str,
    /// Without formatting codes, which JSON readers are not expected to show.
    text: Cow<'a, str>,
    #[serde(skip_serializing_if = "is_false")]
    action: bool,
    #[serde(skip_serializing_if = "is_false")]
    notice: bool,
    /// The account the sender is logged in to, if any (on whichever node).
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<&'a str>,
}

fn is_false(b: &bool) -> bool {
    !b
}

impl<'a> MessageOut<'a> {
    fn new(said: &'a Said) -> MessageOut<'a> {
        MessageOut {
            kind: "message",
            id: said.id,
            seq: said.seq,
            ts: said.ts,
            room: said.room.as_str(),
            from: said.from.as_str(),
            text: said.text.plain(),
            action: said.action,
            notice: said.notice,
            account: said.account.as_ref().map(Nick::as_str),
        }
    }
}

/// The hub's refusals of a user not logged in point to the text client's `/login`, which
/// JSON has not: a JSON (or WebSocket) client logs in with a `login` request or with
/// `password` in its `hello`, and registers with a `register` request.
fn advice(code: ErrorCode, message: &str) -> Cow<'_, str> {
    const LOGIN: &str = r#"{"type":"login","nick":…,"password":…}, or "password" in "hello""#;
    match code {
        // The hub's message names the nick first; one worded otherwise is passed on as it is.
        ErrorCode::NickRegistered => match message.split_once(" is registered;") {
            Some((nick, _)) => {
                let quoted = Value::from(nick).to_string();
                let login = LOGIN.replacen('…', &quoted, 1);
                format!("{nick} is registered; if it is yours, log in: {login}").into()
            }
            None => message.into(),
        },
        ErrorCode::AccountRequired => {
            format!("this server lets only users with an account talk: log in: {LOGIN}").into()
        }
        ErrorCode::NotLoggedIn => format!(
            r#"you are not logged in: log in: {LOGIN}; or {{"type":"register","password":…}}"#
        )
        .into(),
        _ => message.into(),
    }
}

pub fn encode(out: &Outgoing) -> Bytes {
    let mut line = match &out.event {
        // Client-only tags are for IRC clients that asked for them.
        Event::TagsOnly { .. } => return Bytes::new(),
        // User modes are IRC's: only an IRC client asks for them.
        Event::UserModes { .. } | Event::Online(_) => return Bytes::new(),
        // Each room's `leave` says it.
        Event::Quit { .. } => return Bytes::new(),
        Event::Message(said) => {
            serde_json::to_vec(&MessageOut::new(said)).expect("a message serialises")
        }
        event => serde_json::to_vec(&to_value(event)).expect("a JSON value serialises"),
    };
    // The `ref` is spliced in as the text the client sent, so it comes back exactly as
    // sent; only a valid JSON value is, so the line stays one valid object.
    let reference = out
        .reference
        .as_deref()
        .filter(|r| serde_json::from_str::<&RawValue>(r).is_ok());
    if let Some(reference) = reference {
        debug_assert_eq!(line.last(), Some(&b'}'), "every event is an object");
        line.pop();
        line.extend_from_slice(b",\"ref\":");
        line.extend_from_slice(reference.as_bytes());
        line.push(b'}');
    }
    line.push(b'\n');
    Bytes::from(line)
}

fn names<T: AsRef<str>>(items: impl IntoIterator<Item = T>) -> Value {
    items
        .into_iter()
        .map(|n| Value::String(n.as_ref().to_string()))
        .collect()
}

impl AsRef<str> for Nick {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for RoomName {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

fn to_value(event: &Event) -> Value {
    match event {
        // `encode` writes nothing for them.
        Event::TagsOnly { .. }
        | Event::UserModes { .. }
        | Event::Quit { .. }
        | Event::Online(_) => Value::Null,
        Event::Welcome { nick, rooms, .. } => json!({
            "type": "welcome",
            "nick": nick.as_str(),
            "rooms": names(rooms),
            "server": concat!("charla ", env!("CARGO_PKG_VERSION")),
        }),
        Event::Message(said) => {
            serde_json::to_value(MessageOut::new(said)).expect("a message serialises")
        }
        Event::Private {
            id,
            ts,
            from,
            to,
            text,
            notice,
            account,
            ..
        } => {
            let mut v = json!({
                "type": "private", "id": id, "ts": ts,
                "from": from.as_str(), "to": to.as_str(), "text": text.plain(),
            });
            if *notice {
                v["notice"] = true.into();
            }
            if let Some(account) = account {
                v["account"] = account.as_str().into();
            }
            v
        }
        Event::Joined {
            room,
            nick,
            you,
            members,
            count,
            account,
            // JSON clients hear away states from `away` events and `whois`.
            away: _,
        } => {
            let mut v =
                json!({"type": "join", "room": room.as_str(), "nick": nick.as_str(), "you": you});
            if *you {
                v["members"] = names(members);
            }
            v["count"] = (*count).into();
            // The account the joiner is logged in to, on whichever node (as a message's).
            if let Some(account) = account {
                v["account"] = account.as_str().into();
            }
            v
        }
        Event::Left {
            room,
            nick,
            you,
            reason,
            ..
        } => {
            let mut v = json!({
                "type": "leave", "room": room.as_str(), "nick": nick.as_str(), "you": you,
                "reason": reason.code(),
            });
            if let Some(m) = reason.message() {
                v["message"] = m.plain().into();
            }
            v
        }
        Event::NickChanged { old, new, you } => json!({
            "type": "nick", "old": old.as_str(), "new": new.as_str(), "you": you,
        }),
        Event::History { room, messages } => json!({
            "type": "history",
            "room": room.as_str(),
            "messages": messages.iter().map(|entry| match entry {
                Entry::Said(m) => {
                    let mut v = json!({"id": m.id, "seq": m.seq, "ts": m.ts, "from": m.from.as_str(), "text": m.text.plain()});
                    if m.action {
                        v["action"] = true.into();
                    }
                    if let Some(account) = &m.account {
                        v["account"] = account.as_str().into();
                    }
                    v
                }
                Entry::Posted(posted) => {
                    let mut v = posted_value(posted);
                    v.as_object_mut().expect("an object").remove("room");
                    v
                }
            }).collect::<Vec<_>>(),
        }),
        Event::Gap {
            room,
            from,
            to,
            cause,
        } => json!({
            "type": "gap", "room": room.as_str(), "from": from, "to": to,
            "reason": cause.code(),
        }),
        Event::Posted(posted) => posted_value(posted),
        Event::Status { room, items } => json!({
            "type": "status",
            "room": room.as_str(),
            "items": items.iter().map(|notice| {
                let mut v = json!({"kind": notice.kind.as_str()});
                add_notice(&mut v, notice);
                v
            }).collect::<Vec<_>>(),
        }),
        // Who is an operator or voiced is in `modes` (a `mode` request): these lines stay
        // as programs already read them.
        Event::Users {
            room,
            nicks,
            standing,
            away,
            ..
        } => {
            // Each mark as a list of the nicks it applies to, so a program that only wants
            // the names reads `users` as before.
            let marked = |mark: &dyn Fn(usize) -> bool| -> Vec<&str> {
                (0..nicks.len())
                    .filter(|&i| mark(i))
                    .map(|i| nicks[i].as_str())
                    .collect()
            };
            json!({
                "type": "users", "room": room.as_str(), "users": names(nicks),
                "ops": marked(&|i| standing.get(i).is_some_and(|s| s.is_op())),
                "voiced": marked(&|i| standing.get(i).is_some_and(|s| s.is_voiced())),
                "away": marked(&|i| away.get(i).copied().unwrap_or(false)),
            })
        }
        // Only IRC asks WHO; said here as `users`, should anything else.
        Event::Who { room, members } => json!({
            "type": "users", "room": room.as_ref().map(RoomName::as_str),
            "users": members.iter().map(|m| m.nick.as_str()).collect::<Vec<_>>(),
        }),
        Event::Topic { room, topic } => topic_value(room, topic.as_ref(), false),
        Event::TopicChanged { room, by, topic } => {
            let mut v = topic_value(room, topic.as_ref(), true);
            v["by"] = by.as_str().into();
            v
        }
        Event::Kicked {
            room,
            nick,
            by,
            reason,
        } => {
            let mut v = json!({
                "type": "kick", "room": room.as_str(), "nick": nick.as_str(), "by": by.as_str(),
            });
            if let Some(reason) = reason {
                v["reason"] = reason.plain().into();
            }
            v
        }
        Event::ModeChanged { room, by, changes } => json!({
            "type": "mode",
            "room": room.as_str(),
            "by": by.as_str(),
            "modes": describe_changes(changes),
            "changes": changes.iter().map(|c| {
                let mut v = json!({"set": c.add, "mode": c.mode.letter().to_string()});
                if let Some(arg) = c.arg() {
                    v["arg"] = arg.into();
                }
                v
            }).collect::<Vec<_>>(),
        }),
        Event::Modes {
            room,
            modes,
            ops,
            voiced,
            created,
        } => {
            let mut v = json!({
                "created": created,
                "type": "modes", "room": room.as_str(), "modes": modes.describe(true),
                "ops": names(ops), "voiced": names(voiced),
            });
            if let Some(key) = &modes.key {
                v["key"] = key.as_str().into();
            }
            if let Some(limit) = modes.limit {
                v["limit"] = limit.into();
            }
            v
        }
        Event::Bans { room, bans } => json!({
            "type": "bans",
            "room": room.as_str(),
            "bans": bans.iter().map(|b| {
                let mut ban = json!({"mask": b.mask.as_str(), "by": b.by.as_str(), "ts": b.at});
                if let Some(account) = &b.account {
                    ban["account"] = account.as_str().into();
                }
                ban
            }).collect::<Vec<_>>(),
        }),
        Event::Invited {
            room,
            nick,
            by,
            you,
        } => json!({
            "type": "invite", "room": room.as_str(), "nick": nick.as_str(), "by": by.as_str(),
            "you": you,
        }),
        Event::Rooms { rooms } => json!({
            "type": "rooms",
        "rooms": rooms.iter().map(|room| {
                let mut listed = json!({"name": room.name.as_str(), "members": room.members});
                if let Some(topic) = &room.topic {
                    listed["topic"] = json!(topic.as_str());
                }
                listed
            }).collect::<Vec<_>>(),
        }),
        // Counted over every node of a cluster, as IRC's LUSERS counts them.
        Event::Census(census) => json!({
            "type": "census", "users": census.global_users, "peak": census.global_peak,
            "rooms": census.rooms,
        }),
        Event::Whois(whois) => json!({
            "type": "whois", "nick": whois.nick.as_str(),
            "rooms": whois.rooms.iter().map(|(room, standing)| json!({
                "name": room.as_str(), "prefix": standing.prefix(),
            })).collect::<Vec<_>>(),
            "away": whois.away.as_ref().map(|a| a.plain()),
            "realname": whois.realname.as_ref().map(|r| r.plain()),
            "account": whois.account.as_ref().map(Nick::as_str),
            "signon": whois.signon, "idle_ms": whois.idle,
        }),
        Event::Away { nick, message, you } => json!({
            "type": "away", "nick": nick.as_str(), "you": you,
            "message": message.as_ref().map(|m| m.plain()),
        }),
        Event::AwayChanged { nick, message } => json!({
            "type": "away_changed", "nick": nick.as_str(),
            "message": message.as_ref().map(|m| m.plain()),
        }),
        Event::Ack { id, seq, ts } => {
            let mut v = json!({"type": "ack", "id": id});
            // A private message has no room, so no number.
            if let Some(seq) = seq {
                v["seq"] = (*seq).into();
            }
            v["ts"] = (*ts).into();
            v
        }
        Event::Account(news) => {
            let mut v =
                json!({"type": "account", "event": news.code(), "message": news.to_string()});
            if let Some(account) = news.account() {
                v["account"] = account.as_str().into();
            }
            match news {
                AccountNews::TokenCreated { label, token } => {
                    v["label"] = label.as_str().into();
                    v["token"] = token.as_str().into();
                }
                AccountNews::TokenRevoked(label) => v["label"] = label.as_str().into(),
                AccountNews::Tokens(labels) => v["labels"] = names(labels),
                _ => {}
            }
            v
        }
        Event::Error { code, message } => json!({
            "type": "error", "code": code.as_str(), "message": advice(*code, message),
        }),
        Event::Help => json!({
            "type": "help",
            "commands": COMMANDS.iter().map(|(usage, about)| json!({"usage": usage, "about": about})).collect::<Vec<_>>(),
        }),
        Event::Cluster { reachable } => json!({
            "type": "cluster",
            "state": if *reachable { "restored" } else { "interrupted" },
            "message": super::cluster_news(*reachable),
        }),
        Event::Bye { reason } => {
            let mut v = json!({"type": "bye", "reason": reason.code()});
            if let Some(m) = reason.message() {
                v["message"] = m.plain().into();
            }
            v
        }
    }
}

/// `{"type":"topic"}`: `text` null when none is set; `changed` when someone just set or
/// cleared it.
fn topic_value(room: &RoomName, topic: Option<&Topic>, changed: bool) -> Value {
    let mut v = json!({"type": "topic", "room": room.as_str(), "text": Value::Null});
    if let Some(topic) = topic {
        v["text"] = topic.text.plain().into();
        v["by"] = topic.by.as_str().into();
        v["ts"] = topic.at.into();
    }
    if changed {
        v["changed"] = true.into();
    }
    v
}

/// A feed's post: typed `notice` or `alert`, with its details beside the text.
fn posted_value(posted: &Posted) -> Value {
    let mut v = json!({
        "type": posted.notice.kind.as_str(),
        "id": posted.id,
        "seq": posted.seq,
        "ts": posted.ts,
        "room": posted.room.as_str(),
    });
    add_notice(&mut v, &posted.notice);
    v
}

/// Members every feed notice carries, so they cannot be overwritten by a detail.
const NOTICE_RESERVED: &[&str] = &["type", "kind", "id", "seq", "ts", "room", "source", "text"];

fn add_notice(v: &mut Value, notice: &Notice) {
    v["source"] = notice.source.as_str().into();
    v["text"] = notice.text.plain().into();
    for (name, field) in &notice.fields {
        if NOTICE_RESERVED.contains(&&**name) {
            continue;
        }
        v[&**name] = match field {
            Field::Text(t) => t.as_str().into(),
            Field::Number(n) => (*n).into(),
            Field::Flag(b) => (*b).into(),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::{LeaveReason, Request};

    fn request(line: &str) -> Request {
        match parse(line) {
            Ok(Incoming::Request(r)) => r,
            other => panic!("{line:?} gave {other:?}"),
        }
    }

    #[test]
    fn refusals_of_a_guest_say_how_json_logs_in() {
        let said = |code, message: &str| {
            let out = Outgoing::new(Event::Error {
                code,
                message: message.into(),
            });
            let v: Value = serde_json::from_slice(&encode(&out)).unwrap();
            v["message"].as_str().unwrap().to_string()
        };
        assert_eq!(
            said(
                ErrorCode::NickRegistered,
                "bob is registered; if it is yours, /login bob PASSWORD"
            ),
            r#"bob is registered; if it is yours, log in: {"type":"login","nick":"bob","password":…}, or "password" in "hello""#
        );
        let required = said(ErrorCode::AccountRequired, "… /login NICK PASSWORD");
        assert!(required.contains(r#"{"type":"login""#), "{required}");
        let not_in = said(ErrorCode::NotLoggedIn, "… /login NICK PASSWORD");
        assert!(not_in.contains(r#"{"type":"register""#), "{not_in}");
        for message in [required, not_in] {
            assert!(!message.contains("/login"), "{message}");
        }
        // Worded otherwise, the hub's words as they are.
        assert_eq!(
            said(ErrorCode::NickRegistered, "that nick is registered"),
            "that nick is registered"
        );
        // Other refusals are the hub's words.
        assert_eq!(said(ErrorCode::NickTaken, "bob is taken"), "bob is taken");
    }

    #[test]
    fn beats_say_what_the_job_did() {
        let beat = |line: &str| match request(line).command {
            Command::Beat { name, beat } => (name, beat),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            beat(r#"{"type":"beat","name":"backup"}"#),
            ("backup".into(), Beat::Alive)
        );
        assert_eq!(
            beat(r#"{"type":"beat","name":"b","event":"start"}"#).1,
            Beat::Started
        );
        assert_eq!(
            beat(r#"{"type":"beat","name":"b","event":"finish","status":3,"output":"x"}"#).1,
            Beat::Finished {
                status: 3,
                took_ms: 0,
                output: Some("x".into())
            }
        );
        for (line, code) in [
            (
                r#"{"type":"beat","name":"b","event":"finish"}"#,
                ErrorCode::MissingArgument,
            ),
            (
                r#"{"type":"beat","name":"b","event":"dance"}"#,
                ErrorCode::InvalidArgument,
            ),
        ] {
            assert!(matches!(parse(line), Err(r) if r.code == code), "{line}");
        }
    }

    fn json_of(out: Outgoing) -> Value {
        let bytes = encode(&out);
        assert_eq!(bytes.last(), Some(&b'\n'));
        assert_eq!(bytes.iter().filter(|&&b| b == b'\n').count(), 1);
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn operator_requests_and_events() {
        assert!(matches!(
            request(r#"{"type":"topic"}"#).command,
            Command::Topic { room: None }
        ));
        assert!(matches!(
            request(r#"{"type":"topic","text":""}"#).command,
            Command::SetTopic { text: None, .. }
        ));
        assert!(
            matches!(request(r##"{"type":"join","room":"#a","key":"k"}"##).command,
            Command::JoinWithKey { key, .. } if key == "k")
        );
        let mode = request(r#"{"type":"mode","modes":"+kl k","args":["5"],"ref":1}"#);
        assert!(matches!(&mode.command,
            Command::Mode { changes, .. } if describe_changes(changes) == "+kl k 5"));
        assert_eq!(mode.reference.as_deref(), Some("1"));
        assert!(matches!(
            request(r#"{"type":"mode","modes":"+b"}"#).command,
            Command::Bans { room: None }
        ));
        assert!(matches!(
            request(r#"{"type":"away","message":"at lunch"}"#).command,
            Command::Away(Some(m)) if m.as_str() == "at lunch"
        ));
        for back in [r#"{"type":"away"}"#, r#"{"type":"away","message":""}"#] {
            assert!(
                matches!(request(back).command, Command::Away(None)),
                "{back}"
            );
        }
        assert!(matches!(
            request(r#"{"type":"whois","nick":"bob"}"#).command,
            Command::Whois(n) if n.as_str() == "bob"
        ));
        let refused = parse(r#"{"type":"mode","modes":"+q","ref":2}"#).unwrap_err();
        assert_eq!(
            (refused.code, refused.reference.as_deref()),
            (ErrorCode::UnknownMode, Some("2"))
        );
        let kicked = Event::Kicked {
            room: RoomName::parse("#ops").unwrap(),
            nick: Nick::parse("bob").unwrap(),
            by: Nick::parse("ana").unwrap(),
            reason: MessageText::new("spam"),
        };
        assert_eq!(
            json_of(Outgoing::new(kicked)),
            json!({"type":"kick","room":"#ops","nick":"bob","by":"ana","reason":"spam"})
        );
    }

    #[test]
    fn requests_parse_with_their_ref() {
        let r = request(r#"{"type":"say","text":"olá 😀","ref":"a1"}"#);
        assert_eq!(r.reference.as_deref(), Some(r#""a1""#));
        assert!(
            matches!(r.command, Command::Say { text, action: false, room: None } if text.as_str() == "olá 😀")
        );
        let r = request(r#"{"type":"join","room":"ops","ref":7}"#);
        assert_eq!(r.reference.as_deref(), Some("7"));
        assert!(matches!(r.command, Command::Join(room) if room.as_str() == "#ops"));
        assert!(matches!(
            request(r#"{"type":"rooms"}"#).command,
            Command::Rooms
        ));
        assert!(matches!(
            request(r#"{"type":"census"}"#).command,
            Command::Census
        ));
        assert!(matches!(
            request(r#"{"type":"help"}"#).command,
            Command::Help
        ));
        assert!(matches!(
            request(r##"{"type":"history","room":"#ops","since":41}"##).command,
            Command::HistorySince {
                after: 41,
                room: Some(_)
            }
        ));
        assert!(matches!(
            request(r##"{"type":"history","room":"#ops","before":41,"limit":50}"##).command,
            Command::HistoryWindow {
                window: Window::Before(Mark::Message(41)),
                limit: 50,
                room: Some(_)
            }
        ));
        assert!(matches!(
            request(r#"{"type":"history","before":41}"#).command,
            Command::HistoryWindow {
                limit: CHATHISTORY_MAX,
                room: None,
                ..
            }
        ));
        assert!(matches!(
            request(r#"{"type":"history","limit":3}"#).command,
            Command::History {
                limit: Some(3),
                room: None
            }
        ));
        assert!(matches!(
            request(r##"{"type":"me","room":"#x","text":"waves"}"##).command,
            Command::Say {
                action: true,
                room: Some(_),
                ..
            }
        ));
    }

    #[test]
    fn bad_input_is_refused_with_a_code_and_the_ref() {
        let e = parse(r#"{"type":"say","text":"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidJson);
        let e = parse(r#"{"type":"shout","text":"x","ref":"r9"}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        assert_eq!(e.reference.as_deref(), Some(r#""r9""#));
        let e = parse(r#"{"type":"say","ref":1}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        let e = parse(r#"{"type":"nick","nick":"a b","ref":2}"#).unwrap_err();
        assert_eq!(
            (e.code, e.reference.as_deref()),
            (ErrorCode::InvalidNick, Some("2"))
        );
        let e = parse(r#"{"type":"history","since":1,"before":9,"ref":3}"#).unwrap_err();
        assert_eq!(
            (e.code, e.reference.as_deref()),
            (ErrorCode::InvalidArgument, Some("3"))
        );
        // Escaped control characters are sanitised like typed ones.
        let r = request(r#"{"type":"say","text":"a\u001b[31mb\u0007"}"#);
        assert!(matches!(r.command, Command::Say { text, .. } if text.as_str() == "ab"));
    }

    #[test]
    fn ref_is_echoed_exactly_as_sent() {
        let big = "123456789012345678901234567890";
        let line = format!(r#"{{"type":"rooms","ref":{big}}}"#);
        let r = request(&line);
        assert_eq!(r.reference.as_deref(), Some(big));
        let reply = encode(&Outgoing::reply(
            Event::Ack {
                id: 1,
                seq: None,
                ts: 2,
            },
            r.reference,
        ));
        assert_eq!(
            &reply[..],
            format!("{{\"type\":\"ack\",\"id\":1,\"ts\":2,\"ref\":{big}}}\n").as_bytes()
        );
        // Every kind of value, spelled as sent; `null` is no ref.
        for sent in [
            "1.50",
            "-0",
            "1e400",
            r#""\u00e9""#,
            r#"{"b":[1, 2.0],"a":null}"#,
        ] {
            let r = request(&format!(r#"{{"type":"help","ref":{sent}}}"#));
            assert_eq!(r.reference.as_deref(), Some(sent));
        }
        assert_eq!(request(r#"{"type":"help","ref":null}"#).reference, None);
        // Found by the `parse_json` fuzz target (fuzz/): tabs and line breaks between a
        // ref's tokens were echoed, cutting the reply line for a reader that splits on CR.
        let r = request("{\"type\":\"help\",\"ref\":[1,\r\n\t\"a\\\" \\\\\" ,\r2 ]}");
        assert_eq!(r.reference.as_deref(), Some(r#"[1,"a\" \\" ,2 ]"#));
        // A request that fails to parse still has its ref echoed exactly.
        let e = parse(&format!(r#"{{"type":"say","ref":{big}}}"#)).unwrap_err();
        assert_eq!(
            (e.code, e.reference.as_deref()),
            (ErrorCode::InvalidRequest, Some(big))
        );
        let (event, reference) = e.into_reply();
        let reply = encode(&Outgoing::reply(event, reference));
        let text = std::str::from_utf8(&reply).unwrap();
        assert!(text.ends_with(&format!(",\"ref\":{big}}}\n")), "{text}");
        // A ref that is not JSON (no codec makes one) is left out, not spliced in.
        let reply = encode(&Outgoing::reply(
            Event::Ack {
                id: 1,
                seq: None,
                ts: 2,
            },
            Some("}{".into()),
        ));
        assert_eq!(&reply[..], b"{\"type\":\"ack\",\"id\":1,\"ts\":2}\n");
    }

    #[test]
    fn events_encode_as_one_typed_object_per_line() {
        let said = Said {
            id: 4,
            seq: 3,
            ts: 99,
            room: RoomName::lobby(),
            from: Nick::parse("Begoña").unwrap(),
            text: MessageText::new("\u{2}¡hola!\u{f}").unwrap(),
            action: false,
            notice: false,
            account: None,
            tags: None,
        };
        // JSON readers get text without IRC formatting codes, as text readers do.
        assert_eq!(
            json_of(Outgoing::new(Event::Message(said))),
            json!({"type":"message","id":4,"seq":3,"ts":99,"room":"#lobby","from":"Begoña","text":"¡hola!"})
        );
        // The ack of a room message carries its number, in the order a message has it;
        // a private message's has none.
        let acked = encode(&Outgoing::reply(
            Event::Ack {
                id: 4,
                seq: Some(3),
                ts: 99,
            },
            Some(r#""a1""#.into()),
        ));
        assert_eq!(
            std::str::from_utf8(&acked).unwrap(),
            "{\"type\":\"ack\",\"id\":4,\"seq\":3,\"ts\":99,\"ref\":\"a1\"}\n"
        );
        assert_eq!(
            json_of(Outgoing::reply(
                Event::Ack {
                    id: 5,
                    seq: None,
                    ts: 99
                },
                Some(r#""p1""#.into())
            )),
            json!({"type":"ack","id":5,"ts":99,"ref":"p1"})
        );
        assert_eq!(
            json_of(Outgoing::new(Event::Bye {
                reason: LeaveReason::SendQueueExceeded
            })),
            json!({"type":"bye","reason":"send_queue_exceeded"})
        );
    }

    #[test]
    fn feed_posts_are_typed_with_their_details() {
        use crate::hub::{Notice, PostKind, Posted, Source};
        let notice = Notice::new(
            Source::new("watch").unwrap(),
            PostKind::Notice,
            MessageText::new("target.txt was modified (3 bytes)").unwrap(),
        )
        .with("file", "target.txt")
        .with("size", 3u64)
        // A detail may not overwrite what every notice carries.
        .with("type", "forged");
        let posted = Posted {
            id: 7,
            seq: 5,
            ts: 99,
            room: RoomName::lobby(),
            notice: std::sync::Arc::new(notice.clone()),
        };
        assert_eq!(
            json_of(Outgoing::new(Event::Posted(posted.clone()))),
            json!({"type":"notice","id":7,"seq":5,"ts":99,"room":"#lobby","source":"watch",
                   "text":"target.txt was modified (3 bytes)","file":"target.txt","size":3})
        );
        assert_eq!(
            json_of(Outgoing::new(Event::History {
                room: RoomName::lobby(),
                messages: vec![posted.into()],
            })),
            json!({"type":"history","room":"#lobby","messages":[
                {"type":"notice","id":7,"seq":5,"ts":99,"source":"watch",
                 "text":"target.txt was modified (3 bytes)","file":"target.txt","size":3}]})
        );
        assert_eq!(
            json_of(Outgoing::new(Event::Status {
                room: RoomName::lobby(),
                items: vec![notice],
            })),
            json!({"type":"status","room":"#lobby","items":[
                {"kind":"notice","source":"watch","text":"target.txt was modified (3 bytes)",
                 "file":"target.txt","size":3}]})
        );
        assert!(matches!(
            request(r#"{"type":"status"}"#).command,
            Command::Status { room: None }
        ));
    }
}
