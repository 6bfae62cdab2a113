//! The JSON-lines protocol as a client sees it (docs/protocol.md): the requests it sends and
//! the events it reads, typed. Unknown event types and unknown fields are ignored, so a newer
//! server does not break an older client.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::accounts::Secret;

impl ClientRequest {
    /// Lines the server's flood control counts it as: a hello, one for each of its steps
    /// (the nick, then each room).
    pub fn lines(&self) -> usize {
        match self {
            ClientRequest::Hello {
                nick, rooms, since, ..
            } => {
                let resumed_only = since.keys().filter(|r| !rooms.contains(r)).count();
                (usize::from(nick.is_some()) + rooms.len() + resumed_only).max(1)
            }
            _ => 1,
        }
    }
}

/// A request, without the `ref` that [`encode`] adds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientRequest {
    Hello {
        #[serde(skip_serializing_if = "Option::is_none")]
        nick: Option<String>,
        rooms: Vec<String>,
        /// The last `seq` seen in each room, to resume it exactly.
        #[serde(skip_serializing_if = "BTreeMap::is_empty")]
        since: BTreeMap<String, u64>,
        /// An API token to log in with (`charla send --token`).
        #[serde(skip_serializing_if = "Option::is_none")]
        token: Option<Secret>,
        /// The password of the account `nick`, to log in to it first.
        #[serde(skip_serializing_if = "Option::is_none")]
        password: Option<Secret>,
    },
    Say {
        room: String,
        text: String,
    },
    Me {
        room: String,
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
        #[serde(skip_serializing_if = "Option::is_none")]
        key: Option<String>,
    },
    Leave {
        room: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    Users {
        room: String,
    },
    Rooms,
    History {
        room: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        limit: Option<usize>,
    },
    Status {
        room: String,
    },
    Quit {
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// Asks for the topic, or sets it (`""` clears it).
    Topic {
        room: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        text: Option<String>,
    },
    Kick {
        room: String,
        nick: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Asks for the modes (`modes` absent), the ban list (`+b`), or changes them; the
    /// arguments follow the letters (`+o bob`).
    Mode {
        room: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        modes: Option<String>,
    },
    Invite {
        room: String,
        nick: String,
    },
    Away {
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    Whois {
        nick: String,
    },
    Census,
    Ack {
        name: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    Silence {
        name: String,
        duration: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    Unsilence {
        name: String,
    },
    Register {
        password: Secret,
    },
    Login {
        nick: String,
        password: Secret,
    },
    Logout,
    Password {
        old: Secret,
        new: Secret,
    },
    Unregister {
        password: Secret,
    },
    TokenNew {
        label: String,
    },
    TokenList,
    TokenRevoke {
        label: String,
    },
    Oper {
        name: String,
        password: Secret,
    },
    /// A job calling in to its heartbeat (`charla send --beat`, `charla run --beat`).
    Beat {
        name: String,
        /// `alive` when absent, `start`, or `finish` with the run's outcome.
        #[serde(skip_serializing_if = "Option::is_none")]
        event: Option<&'static str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<i32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        duration_ms: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        output: Option<String>,
    },
}

impl ClientRequest {
    /// Whether `event`, carrying this request's `ref`, is its final reply. Some requests
    /// are answered by more than one event (a join by the room's history, then the join);
    /// an `error` always ends the exchange.
    pub fn is_answered_by(&self, event: &ServerEvent) -> bool {
        matches!(
            (self, event),
            (_, ServerEvent::Error { .. })
                | (ClientRequest::Hello { .. }, ServerEvent::Welcome { .. })
                | (
                    ClientRequest::Say { .. }
                        | ClientRequest::Me { .. }
                        | ClientRequest::Msg { .. },
                    ServerEvent::Ack { .. }
                )
                | (ClientRequest::Nick { .. }, ServerEvent::Nick { .. })
                | (ClientRequest::Join { .. }, ServerEvent::Join { .. })
                | (ClientRequest::Leave { .. }, ServerEvent::Leave { .. })
                | (ClientRequest::Users { .. }, ServerEvent::Users { .. })
                | (ClientRequest::Rooms, ServerEvent::Rooms { .. })
                | (ClientRequest::History { .. }, ServerEvent::History { .. })
                | (
                    ClientRequest::Status { .. } | ClientRequest::Beat { .. },
                    ServerEvent::Status { .. }
                )
                | (ClientRequest::Quit { .. }, ServerEvent::Bye { .. })
                | (ClientRequest::Topic { .. }, ServerEvent::Topic { .. })
                | (ClientRequest::Kick { .. }, ServerEvent::Kick { .. })
                | (
                    ClientRequest::Mode { .. },
                    ServerEvent::Mode { .. } | ServerEvent::Modes { .. } | ServerEvent::Bans { .. }
                )
                | (ClientRequest::Invite { .. }, ServerEvent::Invite { .. })
                | (ClientRequest::Away { .. }, ServerEvent::Away { .. })
                | (ClientRequest::Whois { .. }, ServerEvent::Whois { .. })
                | (ClientRequest::Census, ServerEvent::Census { .. })
                | (
                    ClientRequest::Ack { .. }
                        | ClientRequest::Silence { .. }
                        | ClientRequest::Unsilence { .. },
                    ServerEvent::Status { .. }
                )
                | (
                    ClientRequest::Register { .. }
                        | ClientRequest::Login { .. }
                        | ClientRequest::Logout
                        | ClientRequest::Password { .. }
                        | ClientRequest::Unregister { .. }
                        | ClientRequest::TokenNew { .. }
                        | ClientRequest::TokenList
                        | ClientRequest::TokenRevoke { .. }
                        | ClientRequest::Oper { .. },
                    ServerEvent::Account { .. }
                )
        )
    }
}

/// `request` with `ref` set to `reference`, as one line ending in `\n`.
pub fn encode(request: &ClientRequest, reference: u64) -> String {
    let mut value = serde_json::to_value(request).expect("a request serialises");
    value["ref"] = reference.into();
    let mut line = value.to_string();
    line.push('\n');
    line
}

/// An event and the `ref` of the request it answers, when it answers one of ours (the
/// client's refs are numbers).
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    pub reference: Option<u64>,
    pub event: ServerEvent,
}

/// Parses one line from the server; `None` for anything that is not a JSON event object
/// (the text greeting before `welcome`, or an event of a shape this client does not know).
pub fn decode(line: &str) -> Option<Received> {
    let mut value: Value = serde_json::from_str(line).ok()?;
    let object = value.as_object_mut()?;
    let reference = object.remove("ref").and_then(|r| r.as_u64());
    let event = ServerEvent::deserialize(value).ok()?;
    Some(Received { reference, event })
}

/// Everything the server can say, as far as this client cares.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerEvent {
    Welcome {
        nick: String,
        rooms: Vec<String>,
    },
    Message {
        room: String,
        #[serde(flatten)]
        post: Post,
    },
    /// A feed's notice (a watched file changed, …).
    Notice {
        room: String,
        #[serde(flatten)]
        post: Post,
    },
    /// A feed's alert (a check failed, …).
    Alert {
        room: String,
        #[serde(flatten)]
        post: Post,
    },
    Private {
        id: u64,
        ts: u64,
        from: String,
        to: String,
        text: String,
        /// Sent as an IRC NOTICE: shown `-nick- text`, never answered automatically.
        #[serde(default)]
        notice: bool,
    },
    /// Entries numbered `from` to `to` the client does not get: no longer kept (a resume
    /// asked for them), or, in a cluster, said on another node and not relayed
    /// (`reason` `not_relayed`; none from an older server).
    Gap {
        room: String,
        from: u64,
        to: u64,
        #[serde(default)]
        reason: Option<String>,
    },
    Join {
        room: String,
        nick: String,
        you: bool,
        #[serde(default)]
        members: Vec<String>,
        #[serde(default)]
        count: usize,
    },
    Leave {
        room: String,
        nick: String,
        you: bool,
        reason: String,
        #[serde(default)]
        message: Option<String>,
    },
    Nick {
        old: String,
        new: String,
        you: bool,
    },
    History {
        room: String,
        messages: Vec<Post>,
    },
    Users {
        room: String,
        users: Vec<String>,
    },
    Rooms {
        rooms: Vec<RoomCount>,
    },
    Status {
        room: String,
        items: Vec<StatusItem>,
    },
    /// A message taken: its id, its room's number for it (none for a private message)
    /// and its time.
    Ack {
        id: u64,
        #[serde(default)]
        seq: Option<u64>,
        ts: u64,
    },
    Error {
        code: String,
        message: String,
    },
    Bye {
        reason: String,
        #[serde(default)]
        message: Option<String>,
    },
    /// A room's topic (`text` null when there is none); `changed` when `by` just set it.
    Topic {
        room: String,
        #[serde(default)]
        text: Option<String>,
        #[serde(default)]
        by: Option<String>,
        #[serde(default)]
        changed: bool,
    },
    /// `by` put `nick` out of the room (this client's own nick: it is out).
    Kick {
        room: String,
        nick: String,
        by: String,
        #[serde(default)]
        reason: Option<String>,
    },
    /// `by` changed the room's modes (`+o ana`, `+m`…); empty when nothing changed.
    Mode {
        room: String,
        by: String,
        modes: String,
    },
    /// A room's modes, as asked for (`+klnt sesame 20`).
    Modes {
        room: String,
        modes: String,
    },
    /// A room's ban list, as asked for.
    Bans {
        room: String,
        bans: Vec<Ban>,
    },
    /// `by` invited `nick` into the room (`you`: this client is invited).
    Invite {
        room: String,
        nick: String,
        by: String,
        you: bool,
    },
    /// Whether this client is away now (`you`), or that `nick`, written to, is away.
    Away {
        nick: String,
        you: bool,
        #[serde(default)]
        message: Option<String>,
    },
    /// Someone sharing a room went away (`message`) or came back.
    AwayChanged {
        nick: String,
        #[serde(default)]
        message: Option<String>,
    },
    Whois {
        nick: String,
        #[serde(default)]
        rooms: Vec<WhoisRoom>,
        #[serde(default)]
        away: Option<String>,
        #[serde(default)]
        account: Option<String>,
        #[serde(default)]
        idle_ms: Option<u64>,
    },
    /// How many are connected (on every node of a cluster), at most, and how many rooms.
    Census {
        users: u64,
        peak: u64,
        rooms: u64,
    },
    /// An answer to an account command: `event` is `registered`, `logged_in`, …; the
    /// `message` says it in a sentence (with the token, for `token_created`).
    Account {
        event: String,
        #[serde(default)]
        message: String,
    },
    /// An event type this client does not know.
    #[serde(other)]
    Other,
}

/// Something said in a room, live or in history: by a person (`from`) or by a feed
/// (`source`, with `type` `notice` or `alert` inside a history list).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Post {
    pub id: u64,
    /// Its number in its room; absent from a server older than exact resume.
    #[serde(default)]
    pub seq: Option<u64>,
    pub ts: u64,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    pub text: String,
    /// Said with `/me`.
    #[serde(default)]
    pub action: bool,
    /// Sent as an IRC NOTICE: shown `-nick- text`, never answered automatically.
    #[serde(default)]
    pub notice: bool,
    /// In a history list: `notice` or `alert` for a feed's post.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// A feed post's priority, 1 (min) to 5 (urgent).
    #[serde(default)]
    pub priority: Option<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RoomCount {
    pub name: String,
    pub members: usize,
}

/// One entry of a room's ban list.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Ban {
    pub mask: String,
    pub by: String,
}

/// A room `/whois` names, with the prefix of the one asked about there (`@`, `+` or none).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct WhoisRoom {
    pub name: String,
    #[serde(default)]
    pub prefix: String,
}

/// One line of a room's `/status`: what a feed is doing there.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StatusItem {
    pub kind: String,
    pub source: String,
    pub text: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_their_ref_and_only_the_fields_given() {
        let line = encode(
            &ClientRequest::Say {
                room: "#ops".into(),
                text: "olá 😀".into(),
            },
            7,
        );
        assert!(line.ends_with('\n'));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"say","room":"#ops","text":"olá 😀","ref":7})
        );
        let v: Value = serde_json::from_str(&encode(
            &ClientRequest::Hello {
                nick: None,
                rooms: vec![],
                since: BTreeMap::new(),
                token: None,
                password: None,
            },
            1,
        ))
        .unwrap();
        assert_eq!(v, serde_json::json!({"type":"hello","rooms":[],"ref":1}));
    }

    #[test]
    fn events_decode_with_their_ref() {
        let r = decode(r#"{"type":"ack","id":45,"seq":8,"ts":17,"ref":3}"#).unwrap();
        assert_eq!(r.reference, Some(3));
        assert_eq!(
            r.event,
            ServerEvent::Ack {
                id: 45,
                seq: Some(8),
                ts: 17
            }
        );
        // A private message's ack, or an older server's, has no seq.
        let r = decode(r#"{"type":"ack","id":46,"ts":18}"#).unwrap();
        assert_eq!(
            r.event,
            ServerEvent::Ack {
                id: 46,
                seq: None,
                ts: 18
            }
        );
        let r = decode(
            r##"{"type":"message","id":42,"ts":9,"room":"#lobby","from":"ana","text":"hola"}"##,
        )
        .unwrap();
        let ServerEvent::Message { room, post } = r.event else {
            panic!("{r:?}")
        };
        assert_eq!(
            (room.as_str(), post.from.as_deref()),
            ("#lobby", Some("ana"))
        );
        assert!(!post.action);
    }

    #[test]
    fn the_greeting_and_unknown_events_are_not_errors() {
        assert_eq!(decode("*** Welcome to charla, guest-1!"), None);
        assert_eq!(decode("[1,2]"), None);
        let r = decode(r#"{"type":"weather","sunny":true,"ref":"theirs"}"#).unwrap();
        assert_eq!(r.event, ServerEvent::Other);
        assert_eq!(r.reference, None);
    }

    #[test]
    fn replies_are_matched_to_their_request() {
        let join = ClientRequest::Join {
            room: "#a".into(),
            key: None,
        };
        let history = ServerEvent::History {
            room: "#a".into(),
            messages: vec![],
        };
        assert!(!join.is_answered_by(&history));
        let error = ServerEvent::Error {
            code: "invalid_room".into(),
            message: String::new(),
        };
        assert!(join.is_answered_by(&error));
        let say = ClientRequest::Say {
            room: "#a".into(),
            text: "x".into(),
        };
        assert!(say.is_answered_by(&ServerEvent::Ack {
            id: 1,
            seq: None,
            ts: 1
        }));
    }

    /// The client's request types and the server's parser describe one wire format in two
    /// places (the client always names its room; the server takes it as optional): every
    /// request the client can send must parse on the server as the command it means.
    #[test]
    fn every_request_parses_on_the_server_as_meant() {
        use crate::hub::Command;
        use crate::protocol::{self, Incoming};
        let room = || "#ops".to_string();
        let text = || "olá".to_string();
        let cases = [
            ClientRequest::Say {
                room: room(),
                text: text(),
            },
            ClientRequest::Me {
                room: room(),
                text: text(),
            },
            ClientRequest::Msg {
                to: "ana".into(),
                text: text(),
            },
            ClientRequest::Nick { nick: "bob".into() },
            ClientRequest::Join {
                room: room(),
                key: None,
            },
            ClientRequest::Leave {
                room: room(),
                message: Some("bye".into()),
            },
            ClientRequest::Users { room: room() },
            ClientRequest::Rooms,
            ClientRequest::History {
                room: room(),
                limit: Some(5),
            },
            ClientRequest::Status { room: room() },
            ClientRequest::Quit { message: None },
        ];
        for request in cases {
            let line = encode(&request, 9);
            let Ok(Incoming::Request(parsed)) = protocol::parse_json(line.trim_end()) else {
                panic!("the server refused {line:?}");
            };
            assert_eq!(parsed.reference.as_deref(), Some("9"));
            let named = |r: &Option<crate::hub::RoomName>| r.as_ref().map(|r| r.to_string());
            let ok = match (&request, &parsed.command) {
                (
                    ClientRequest::Say { .. },
                    Command::Say {
                        room,
                        action: false,
                        text,
                    },
                )
                | (
                    ClientRequest::Me { .. },
                    Command::Say {
                        room,
                        action: true,
                        text,
                    },
                ) => named(room).as_deref() == Some("#ops") && text.as_str() == "olá",
                (ClientRequest::Msg { .. }, Command::Msg { to, .. }) => to.as_str() == "ana",
                (ClientRequest::Nick { .. }, Command::Nick(n)) => n.as_str() == "bob",
                (ClientRequest::Join { .. }, Command::Join(r)) => r.as_str() == "#ops",
                (ClientRequest::Leave { .. }, Command::Leave { room, message }) => {
                    named(room).as_deref() == Some("#ops")
                        && message.as_ref().map(|m| m.as_str()) == Some("bye")
                }
                (ClientRequest::Users { .. }, Command::Users { room })
                | (ClientRequest::Status { .. }, Command::Status { room }) => {
                    named(room).as_deref() == Some("#ops")
                }
                (ClientRequest::Rooms, Command::Rooms) => true,
                (ClientRequest::History { .. }, Command::History { room, limit }) => {
                    named(room).as_deref() == Some("#ops") && *limit == Some(5)
                }
                (ClientRequest::Quit { .. }, Command::Quit { message: None }) => true,
                _ => false,
            };
            assert!(ok, "{line:?} parsed as {:?}", parsed.command);
        }
        let hello = encode(
            &ClientRequest::Hello {
                nick: Some("bot".into()),
                rooms: vec![room()],
                since: BTreeMap::from([("#lobby".into(), 4)]),
                token: None,
                password: None,
            },
            1,
        );
        assert!(matches!(
            protocol::parse_json(hello.trim_end()),
            Ok(Incoming::Hello { steps, .. }) if steps.len() == 3 && steps.iter().all(Result::is_ok)
        ));
    }

    /// The same for the room, operator, alert and account commands: each request means on
    /// the server what the client sends it for.
    #[test]
    fn every_other_request_parses_on_the_server_as_meant() {
        use crate::accounts::AccountRequest;
        use crate::hub::{AlertAction, Command};
        use crate::protocol::{self, Incoming};
        let command = |request: ClientRequest| {
            let line = encode(&request, 3);
            match protocol::parse_json(line.trim_end()) {
                Ok(Incoming::Request(parsed)) => parsed.command,
                _ => panic!("the server did not take {line:?} as a request"),
            }
        };
        let room = || "#ops".to_string();
        let in_ops =
            |r: &Option<crate::hub::RoomName>| r.as_ref().map(|r| r.as_str()) == Some("#ops");
        assert!(matches!(
            command(ClientRequest::Join { room: room(), key: Some("sesame".into()) }),
            Command::JoinWithKey { room, key } if room.as_str() == "#ops" && key == "sesame"
        ));
        assert!(matches!(
            command(ClientRequest::Topic { room: room(), text: None }),
            Command::Topic { room } if in_ops(&room)
        ));
        assert!(matches!(
            command(ClientRequest::Topic { room: room(), text: Some("deploys".into()) }),
            Command::SetTopic { room, text: Some(text) } if in_ops(&room) && text.as_str() == "deploys"
        ));
        assert!(matches!(
            command(ClientRequest::Kick { room: room(), nick: "bob".into(), reason: Some("spam".into()) }),
            Command::Kick { room, nick, reason: Some(reason) }
                if in_ops(&room) && nick.as_str() == "bob" && reason.as_str() == "spam"
        ));
        assert!(matches!(
            command(ClientRequest::Mode { room: room(), modes: None }),
            Command::Mode { room, changes } if in_ops(&room) && changes.is_empty()
        ));
        assert!(matches!(
            command(ClientRequest::Mode { room: room(), modes: Some("+o bob".into()) }),
            Command::Mode { room, changes } if in_ops(&room) && changes.len() == 1
        ));
        assert!(matches!(
            command(ClientRequest::Mode { room: room(), modes: Some("+b".into()) }),
            Command::Bans { room } if in_ops(&room)
        ));
        assert!(matches!(
            command(ClientRequest::Invite { room: room(), nick: "bob".into() }),
            Command::Invite { room, nick } if in_ops(&room) && nick.as_str() == "bob"
        ));
        assert!(matches!(
            command(ClientRequest::Away { message: Some("lunch".into()) }),
            Command::Away(Some(m)) if m.as_str() == "lunch"
        ));
        assert!(matches!(
            command(ClientRequest::Away { message: None }),
            Command::Away(None)
        ));
        assert!(matches!(
            command(ClientRequest::Whois { nick: "bob".into() }),
            Command::Whois(n) if n.as_str() == "bob"
        ));
        assert!(matches!(command(ClientRequest::Census), Command::Census));
        assert!(matches!(
            command(ClientRequest::Ack { name: "web".into(), note: Some("on it".into()) }),
            Command::Alert { name, action: AlertAction::Ack { note: Some(note) } }
                if name == "web" && note == "on it"
        ));
        assert!(matches!(
            command(ClientRequest::Silence { name: "web".into(), duration: "1h".into(), reason: None }),
            Command::Alert { name, action: AlertAction::Silence { lasting, .. } }
                if name == "web" && lasting.as_secs() == 3600
        ));
        assert!(matches!(
            command(ClientRequest::Unsilence { name: "web".into() }),
            Command::Alert { name, action: AlertAction::Unsilence } if name == "web"
        ));

        let account = |request: ClientRequest| {
            let line = encode(&request, 4);
            match protocol::parse_json(line.trim_end()) {
                Ok(Incoming::Account { request, reference }) => {
                    assert_eq!(reference.as_deref(), Some("4"));
                    request
                }
                _ => panic!("the server did not take {line:?} as an account request"),
            }
        };
        let secret = |s: &str| Secret::new(s);
        assert!(matches!(
            account(ClientRequest::Register { password: secret("pw-one") }),
            AccountRequest::Register { password } if password == secret("pw-one")
        ));
        assert!(matches!(
            account(ClientRequest::Login { nick: "ana".into(), password: secret("pw-one") }),
            AccountRequest::Login { account, password } if account.as_str() == "ana" && password == secret("pw-one")
        ));
        assert!(matches!(
            account(ClientRequest::Logout),
            AccountRequest::Logout
        ));
        assert!(matches!(
            account(ClientRequest::Password { old: secret("a"), new: secret("b") }),
            AccountRequest::Password { old, new } if old == secret("a") && new == secret("b")
        ));
        assert!(matches!(
            account(ClientRequest::Unregister { password: secret("pw-one") }),
            AccountRequest::Unregister { password } if password == secret("pw-one")
        ));
        assert!(matches!(
            account(ClientRequest::TokenNew { label: "ci".into() }),
            AccountRequest::TokenNew { label } if label == "ci"
        ));
        assert!(matches!(
            account(ClientRequest::TokenList),
            AccountRequest::TokenList
        ));
        assert!(matches!(
            account(ClientRequest::TokenRevoke { label: "ci".into() }),
            AccountRequest::TokenRevoke { label } if label == "ci"
        ));
        assert!(matches!(
            account(ClientRequest::Oper { name: "root".into(), password: secret("pw-one") }),
            AccountRequest::Oper { name, password } if name.as_str() == "root" && password == secret("pw-one")
        ));

        // A hello with the nick's password logs in to it first.
        let hello = encode(
            &ClientRequest::Hello {
                nick: Some("ana".into()),
                rooms: vec![room()],
                since: BTreeMap::new(),
                token: None,
                password: Some(secret("pw-one")),
            },
            1,
        );
        assert!(matches!(
            protocol::parse_json(hello.trim_end()),
            Ok(Incoming::Hello { login: Some(AccountRequest::Login { account, password }), .. })
                if account.as_str() == "ana" && password == secret("pw-one")
        ));
    }
}
