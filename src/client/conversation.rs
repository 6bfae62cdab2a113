//! What the client knows of its own session: its nick, its rooms, the room lines go to,
//! and the newest message seen in each room. It outlives connections, so a reconnect can
//! ask for the same nick and rooms and show only what was missed.

use std::collections::HashMap;

use super::input::{AccountInput, AlertInput, Input};
use super::link::Welcome;
use super::wire::{ClientRequest, Post, ServerEvent};
use crate::accounts::Secret;
use crate::hub::{Nick, RoomName};

/// What a typed line comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Nothing,
    /// A request for the server. `room_before` is the room typed into before a `/join`
    /// switched to the new room, to go back to if the server refuses it.
    Send {
        request: ClientRequest,
        room_before: Option<RoomName>,
    },
    /// `/switch`: lines now go to this room.
    Switched(RoomName),
    Help,
    Quit(Option<String>),
}

/// The newest message seen in a room. Message ids only grow for the life of one server;
/// the timestamp still orders messages across a server restart, which starts ids afresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    id: u64,
    ts: u64,
}

impl Seen {
    fn of(post: &Post) -> Seen {
        Seen {
            id: post.id,
            ts: post.ts,
        }
    }

    /// Whether `post` came after this one.
    fn precedes(&self, post: &Post) -> bool {
        post.id > self.id || post.ts > self.ts
    }
}

#[derive(Debug)]
pub struct Conversation {
    /// The nick to ask for on (re)connecting: `--name`, then every nick the server
    /// confirmed. A refused nick is not remembered.
    wanted_nick: Option<String>,
    /// The nick the server knows us by now.
    nick: String,
    /// The rooms we are in, in the order joined.
    rooms: Vec<RoomName>,
    /// Where plain lines go; `None` after leaving every room.
    current: Option<RoomName>,
    seen: HashMap<RoomName, Seen>,
    /// The last `seq` seen in each room, which a reconnect resumes from exactly.
    seqs: HashMap<RoomName, u64>,
    /// What a reconnect logs in with, so a registered nick comes back with it.
    credentials: Option<Credentials>,
    /// The password of the last `/login`, `/register` or `/password` sent, kept as the
    /// credentials once the server says it worked.
    pending_password: Option<Secret>,
}

/// How the session is logged in to its account.
#[derive(Debug, Clone)]
enum Credentials {
    Token(Secret),
    Password(Secret),
}

impl Conversation {
    /// A conversation about to ask for `nick` and `rooms`, or `#lobby` when none is named
    /// (the server puts a program in no room it did not ask for); lines will go to the last
    /// room. `Err` names a room that is not a valid room name.
    pub fn new(nick: Option<String>, rooms: &[String]) -> Result<Conversation, String> {
        let mut wanted: Vec<RoomName> = Vec::with_capacity(rooms.len().max(1));
        for name in rooms {
            let name = room(name)?;
            if !wanted.contains(&name) {
                wanted.push(name);
            }
        }
        if wanted.is_empty() {
            wanted.push(RoomName::lobby());
        }
        let rooms = wanted;
        let current = rooms.last().cloned();
        Ok(Conversation {
            nick: nick.clone().unwrap_or_default(),
            wanted_nick: nick,
            rooms,
            current,
            seen: HashMap::new(),
            seqs: HashMap::new(),
            credentials: None,
            pending_password: None,
        })
    }

    /// Logs in with an API token, or with the password of the nick asked for, on
    /// connecting and on every reconnect.
    pub fn logged_in_with(
        mut self,
        token: Option<String>,
        password: Option<Secret>,
    ) -> Conversation {
        self.credentials = match (token, password) {
            (Some(token), _) => Some(Credentials::Token(Secret::new(token))),
            (None, Some(password)) => Some(Credentials::Password(password)),
            (None, None) => None,
        };
        self
    }

    /// The hello restoring this conversation: the nick, every room we are in (`#lobby`
    /// too: a program is put in no room it does not name), and the last `seq` seen in each,
    /// so each is resumed exactly; logged in as it was.
    pub fn hello(&self) -> ClientRequest {
        let rooms = self.rooms.iter().map(|r| r.as_str().to_string()).collect();
        let since = self
            .rooms
            .iter()
            .filter_map(|r| Some((r.as_str().to_string(), *self.seqs.get(r)?)))
            .collect();
        let (token, password) = match &self.credentials {
            Some(Credentials::Token(token)) => (Some(token.clone()), None),
            Some(Credentials::Password(password)) => (None, Some(password.clone())),
            None => (None, None),
        };
        ClientRequest::Hello {
            nick: self.wanted_nick.clone(),
            rooms,
            since,
            token,
            password,
        }
    }

    /// Whether a reconnect resumes `room` exactly (its hello named the last `seq` seen),
    /// so its history need not be asked for.
    pub fn resumes(&self, room: &RoomName) -> bool {
        self.seqs.contains_key(room)
    }

    /// Takes in the welcome: the nick and the rooms we ended up in.
    pub fn welcomed(&mut self, welcome: &Welcome, reconnect: bool) {
        self.nick = welcome.nick.clone();
        self.pending_password = None;
        let now: Vec<RoomName> = welcome
            .rooms
            .iter()
            .filter_map(|r| RoomName::parse(r).ok())
            .collect();
        if !reconnect {
            self.rooms = now;
        } else {
            // Keep the order the user joined them in; drop any the server refused.
            self.rooms.retain(|r| now.contains(r));
            for room in now {
                if !self.rooms.contains(&room) {
                    self.rooms.push(room);
                }
            }
        }
        if self
            .current
            .as_ref()
            .is_none_or(|c| !self.rooms.contains(c))
        {
            self.current = self.rooms.last().cloned();
        }
    }

    pub fn nick(&self) -> &str {
        &self.nick
    }

    pub fn rooms(&self) -> &[RoomName] {
        &self.rooms
    }

    pub fn current(&self) -> Option<&RoomName> {
        self.current.as_ref()
    }

    /// What `input` comes to now; `Err` with a sentence for the user when it cannot be
    /// carried out (nothing is sent then). A `/join` or `/leave` moves the room lines go
    /// to at once, so a line typed right after goes where the user expects.
    pub fn interpret(&mut self, input: Input) -> Result<Action, String> {
        let send = |request| Action::Send {
            request,
            room_before: None,
        };
        Ok(match input {
            Input::Nothing => Action::Nothing,
            Input::Say(text) => send(ClientRequest::Say {
                room: self.talking_in()?,
                text,
            }),
            Input::Me(text) => send(ClientRequest::Me {
                room: self.talking_in()?,
                text,
            }),
            Input::Msg { to, text } => send(ClientRequest::Msg {
                to: nick(&to)?,
                text,
            }),
            Input::Nick(name) => send(ClientRequest::Nick { nick: nick(&name)? }),
            Input::Join { room: name, key } => {
                let room = room(&name)?;
                let room_before = self.current.replace(room.clone());
                Action::Send {
                    request: ClientRequest::Join {
                        room: room.as_str().to_string(),
                        key,
                    },
                    room_before,
                }
            }
            Input::Leave {
                room: name,
                message,
            } => {
                let room = match name {
                    Some(name) => self.joined(&name)?,
                    None => self.current.clone().ok_or_else(no_room)?,
                };
                if self.current.as_ref() == Some(&room) {
                    self.current = self.rooms.iter().rev().find(|r| **r != room).cloned();
                }
                send(ClientRequest::Leave {
                    room: room.as_str().to_string(),
                    message,
                })
            }
            Input::Users(name) => send(ClientRequest::Users {
                room: self.named_or_current(name)?,
            }),
            Input::Rooms => send(ClientRequest::Rooms),
            Input::History(limit) => send(ClientRequest::History {
                room: self.talking_in()?,
                limit,
            }),
            Input::Status(name) => send(ClientRequest::Status {
                room: self.named_or_current(name)?,
            }),
            Input::Topic { room, text } => send(ClientRequest::Topic {
                room: self.named_or_current(room)?,
                text,
            }),
            Input::Kick { room, nick, reason } => send(ClientRequest::Kick {
                room: self.named_or_current(room)?,
                nick,
                reason,
            }),
            Input::Mode { room, modes } => send(ClientRequest::Mode {
                room: self.named_or_current(room)?,
                modes,
            }),
            Input::Invite { nick: who, room } => send(ClientRequest::Invite {
                room: self.named_or_current(room)?,
                nick: nick(&who)?,
            }),
            Input::Away(message) => send(ClientRequest::Away { message }),
            Input::Whois(who) => send(ClientRequest::Whois { nick: nick(&who)? }),
            Input::Census => send(ClientRequest::Census),
            Input::Alert(alert) => send(match alert {
                AlertInput::Ack { name, note } => ClientRequest::Ack { name, note },
                AlertInput::Silence {
                    name,
                    duration,
                    reason,
                } => ClientRequest::Silence {
                    name,
                    duration,
                    reason,
                },
                AlertInput::Unsilence { name } => ClientRequest::Unsilence { name },
            }),
            Input::Account(account) => send(self.account(account)),
            Input::Switch(name) => {
                let room = self.joined(&name)?;
                self.current = Some(room.clone());
                Action::Switched(room)
            }
            Input::Help => Action::Help,
            Input::Quit(message) => Action::Quit(message),
        })
    }

    /// An account command as a request, keeping the password that will log a reconnect in.
    fn account(&mut self, account: AccountInput) -> ClientRequest {
        match account {
            AccountInput::Register { password } => {
                self.pending_password = Some(password.clone());
                ClientRequest::Register { password }
            }
            AccountInput::Login { nick, password } => {
                self.pending_password = Some(password.clone());
                ClientRequest::Login { nick, password }
            }
            AccountInput::Password { old, new } => {
                self.pending_password = Some(new.clone());
                ClientRequest::Password { old, new }
            }
            AccountInput::Logout => ClientRequest::Logout,
            AccountInput::Unregister { password } => ClientRequest::Unregister { password },
            AccountInput::TokenNew { label } => ClientRequest::TokenNew { label },
            AccountInput::TokenList => ClientRequest::TokenList,
            AccountInput::TokenRevoke { label } => ClientRequest::TokenRevoke { label },
            AccountInput::Oper { name, password } => ClientRequest::Oper { name, password },
        }
    }

    fn talking_in(&self) -> Result<String, String> {
        self.current
            .as_ref()
            .map(|r| r.as_str().to_string())
            .ok_or_else(no_room)
    }

    fn named_or_current(&self, name: Option<String>) -> Result<String, String> {
        match name {
            Some(name) => Ok(room(&name)?.as_str().to_string()),
            None => self.talking_in(),
        }
    }

    fn joined(&self, name: &str) -> Result<RoomName, String> {
        let room = room(name)?;
        self.rooms
            .iter()
            .find(|r| **r == room)
            .cloned()
            .ok_or_else(|| format!("you are not in {room}; /join {room} first"))
    }

    /// The server refused a `/join`: lines go back to where they went before it.
    pub fn join_refused(&mut self, room_before: Option<RoomName>) {
        self.current = room_before.filter(|r| self.rooms.contains(r));
        if self.current.is_none() {
            self.current = self.rooms.last().cloned();
        }
    }

    /// Takes in what an event says about us: nick changes, joins and leaves, messages
    /// seen. History is taken in by [`Conversation::unseen`].
    pub fn observe(&mut self, event: &ServerEvent) {
        match event {
            ServerEvent::Nick { new, you: true, .. } => {
                self.nick = new.clone();
                self.wanted_nick = Some(new.clone());
            }
            ServerEvent::Join {
                room, you: true, ..
            } => {
                let Ok(room) = RoomName::parse(room) else {
                    return;
                };
                // The server's spelling wins.
                self.rooms.retain(|r| *r != room);
                self.rooms.push(room.clone());
                if self.current.as_ref() == Some(&room) {
                    self.current = Some(room);
                }
            }
            ServerEvent::Leave {
                room, you: true, ..
            } => self.left(room),
            // Kicked out: as good as left.
            ServerEvent::Kick { room, nick, .. } if *nick == self.nick => self.left(room),
            ServerEvent::Message { room, post }
            | ServerEvent::Notice { room, post }
            | ServerEvent::Alert { room, post } => self.saw(room, post),
            ServerEvent::Account { event, .. } => match event.as_str() {
                "registered" | "logged_in" | "password_changed" => {
                    // A login by the hello's own credentials leaves them as they are.
                    if let Some(password) = self.pending_password.take() {
                        self.credentials = Some(Credentials::Password(password));
                    }
                }
                "logged_out" | "unregistered" => self.credentials = None,
                _ => {}
            },
            ServerEvent::Error { .. } => self.pending_password = None,
            _ => {}
        }
    }

    fn left(&mut self, room: &str) {
        let Ok(room) = RoomName::parse(room) else {
            return;
        };
        self.rooms.retain(|r| *r != room);
        if self.current.as_ref() == Some(&room) {
            self.current = self.rooms.last().cloned();
        }
    }

    /// Our own message was acknowledged with this id, number in its room and time: a
    /// reconnect resumes after it, so it is not sent back to us, nor, once the room no
    /// longer keeps it, said to be missed.
    pub fn sent(&mut self, room: &str, id: u64, seq: Option<u64>, ts: u64) {
        let post = Post {
            id,
            seq,
            ts,
            from: None,
            source: None,
            text: String::new(),
            action: false,
            notice: false,
            kind: None,
            priority: None,
        };
        self.saw(room, &post);
    }

    /// The messages of a history list not seen before, oldest first; all of them count as
    /// seen afterwards.
    pub fn unseen<'a>(&mut self, room: &str, messages: &'a [Post]) -> Vec<&'a Post> {
        let seen = RoomName::parse(room)
            .ok()
            .and_then(|r| self.seen.get(&r).copied());
        let fresh: Vec<&Post> = messages
            .iter()
            .filter(|p| seen.is_none_or(|s| s.precedes(p)))
            .collect();
        for post in messages {
            self.saw(room, post);
        }
        fresh
    }

    fn saw(&mut self, room: &str, post: &Post) {
        let Ok(room) = RoomName::parse(room) else {
            return;
        };
        if let Some(seq) = post.seq {
            let last = self.seqs.entry(room.clone()).or_insert(seq);
            *last = (*last).max(seq);
        }
        let newest = self.seen.entry(room).or_insert(Seen::of(post));
        if newest.precedes(post) {
            *newest = Seen::of(post);
        }
    }
}

fn no_room() -> String {
    "you are in no room; /join #room first".to_string()
}

fn nick(name: &str) -> Result<String, String> {
    Nick::parse(name)
        .map(|n| n.as_str().to_string())
        .map_err(|e| format!("{name:?} is not a valid nick: {e}"))
}

fn room(name: &str) -> Result<RoomName, String> {
    RoomName::parse(name).map_err(|e| format!("{name:?} is not a valid room name: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::input::parse;

    fn welcome(nick: &str, rooms: &[&str]) -> Welcome {
        Welcome {
            nick: nick.into(),
            rooms: rooms.iter().map(|r| r.to_string()).collect(),
            replies: Vec::new(),
        }
    }

    fn hello(nick: Option<&str>, rooms: &[&str], since: &[(&str, u64)]) -> ClientRequest {
        ClientRequest::Hello {
            nick: nick.map(str::to_string),
            rooms: rooms.iter().map(|r| r.to_string()).collect(),
            since: since.iter().map(|(r, n)| (r.to_string(), *n)).collect(),
            token: None,
            password: None,
        }
    }

    fn post(id: u64, ts: u64) -> Post {
        Post {
            seq: None,
            id,
            ts,
            from: Some("ana".into()),
            source: None,
            text: format!("m{id}"),
            action: false,
            notice: false,
            kind: None,
            priority: None,
        }
    }

    fn typed(c: &mut Conversation, line: &str) -> Result<Action, String> {
        c.interpret(parse(line).unwrap())
    }

    #[test]
    fn lines_go_to_the_room_joined_last_or_switched_to() {
        let mut c = Conversation::new(Some("bob".into()), &["ops".into()]).unwrap();
        assert_eq!(c.hello(), hello(Some("bob"), &["#ops"], &[]));
        c.welcomed(&welcome("bob", &["#lobby", "#ops"]), false);
        assert_eq!(c.current().unwrap().as_str(), "#ops");
        let Ok(Action::Send {
            request: ClientRequest::Say { room, .. },
            ..
        }) = typed(&mut c, "hola")
        else {
            panic!()
        };
        assert_eq!(room, "#ops");
        assert!(matches!(
            typed(&mut c, "/switch lobby"),
            Ok(Action::Switched(_))
        ));
        assert_eq!(c.current().unwrap().as_str(), "#lobby");
        assert!(typed(&mut c, "/switch #nowhere").is_err());
        let Ok(Action::Send { room_before, .. }) = typed(&mut c, "/join #dev") else {
            panic!()
        };
        assert_eq!(c.current().unwrap().as_str(), "#dev");
        c.join_refused(room_before);
        assert_eq!(c.current().unwrap().as_str(), "#lobby");
    }

    #[test]
    fn being_kicked_is_leaving_and_someone_else_being_kicked_is_not() {
        let mut c = Conversation::new(None, &["#a".into(), "#b".into()]).unwrap();
        c.welcomed(&welcome("guest-1", &["#lobby", "#a", "#b"]), false);
        let kick = |nick: &str| ServerEvent::Kick {
            room: "#b".into(),
            nick: nick.into(),
            by: "ana".into(),
            reason: None,
        };
        c.observe(&kick("bob"));
        assert_eq!(c.rooms().len(), 3);
        c.observe(&kick("guest-1"));
        assert_eq!(c.rooms().len(), 2);
        assert_eq!(c.current().unwrap().as_str(), "#a");
    }

    #[test]
    fn leaving_the_room_typed_into_goes_back_to_the_one_before() {
        let mut c = Conversation::new(None, &["#a".into(), "#b".into()]).unwrap();
        c.welcomed(&welcome("guest-1", &["#lobby", "#a", "#b"]), false);
        typed(&mut c, "/leave").unwrap();
        assert_eq!(c.current().unwrap().as_str(), "#a");
        c.observe(&ServerEvent::Leave {
            room: "#b".into(),
            nick: "guest-1".into(),
            you: true,
            reason: "left".into(),
            message: None,
        });
        assert_eq!(c.rooms().len(), 2);
    }

    #[test]
    fn a_reconnect_restores_the_nick_and_rooms_without_the_lobby_left() {
        let mut c = Conversation::new(Some("bob".into()), &[]).unwrap();
        c.welcomed(&welcome("bob", &["#lobby"]), false);
        c.observe(&ServerEvent::Nick {
            old: "bob".into(),
            new: "Roberto".into(),
            you: true,
        });
        c.observe(&ServerEvent::Join {
            room: "#ops".into(),
            nick: "Roberto".into(),
            you: true,
            members: vec![],
            count: 1,
        });
        c.observe(&ServerEvent::Leave {
            room: "#lobby".into(),
            nick: "Roberto".into(),
            you: true,
            reason: "left".into(),
            message: None,
        });
        assert_eq!(c.hello(), hello(Some("Roberto"), &["#ops"], &[]));
        c.welcomed(&welcome("Roberto", &["#ops"]), true);
        assert_eq!(c.rooms(), &[RoomName::parse("#ops").unwrap()]);
    }

    #[test]
    fn only_messages_after_the_last_seen_are_unseen_even_across_a_restart() {
        let mut c = Conversation::new(None, &[]).unwrap();
        assert_eq!(c.unseen("#lobby", &[post(1, 100), post(2, 200)]).len(), 2);
        c.observe(&ServerEvent::Message {
            room: "#lobby".into(),
            post: post(3, 300),
        });
        let history = [post(2, 200), post(3, 300), post(4, 400)];
        let fresh: Vec<u64> = c.unseen("#lobby", &history).iter().map(|p| p.id).collect();
        assert_eq!(fresh, [4]);
        // A restarted server numbers from 1 again; its messages are newer all the same.
        let fresh: Vec<u64> = c
            .unseen("#LOBBY", &[post(1, 500)])
            .iter()
            .map(|p| p.id)
            .collect();
        assert_eq!(fresh, [1]);
    }

    #[test]
    fn a_reconnect_resumes_each_room_from_the_last_number_seen() {
        let mut c = Conversation::new(Some("bob".into()), &["#ops".into()]).unwrap();
        c.welcomed(&welcome("bob", &["#lobby", "#ops"]), false);
        assert!(!c.resumes(&RoomName::lobby()), "nothing seen yet");
        let numbered = |id, seq| Post {
            seq: Some(seq),
            ..post(id, id * 100)
        };
        c.unseen("#lobby", &[numbered(1, 1), numbered(2, 2)]);
        for (id, seq) in [(4, 7), (3, 6)] {
            c.observe(&ServerEvent::Message {
                room: "#OPS".into(),
                post: numbered(id, seq),
            });
        }
        assert_eq!(
            c.hello(),
            hello(
                Some("bob"),
                &["#lobby", "#ops"],
                &[("#lobby", 2), ("#ops", 7)]
            )
        );
        assert!(c.resumes(&RoomName::parse("#ops").unwrap()));
        // Our own messages count by their ack's number: a resume does not ask for them.
        c.sent("#ops", 5, Some(8), 800);
        c.sent("#lobby", 6, None, 900);
        assert_eq!(
            c.hello(),
            hello(
                Some("bob"),
                &["#lobby", "#ops"],
                &[("#lobby", 2), ("#ops", 8)]
            )
        );
    }

    #[test]
    fn bad_names_are_caught_before_sending() {
        let mut c = Conversation::new(None, &[]).unwrap();
        assert!(
            typed(&mut c, "/nick 9lives")
                .unwrap_err()
                .contains("not a valid nick")
        );
        assert!(
            typed(&mut c, "/join #a,b")
                .unwrap_err()
                .contains("not a valid room")
        );
    }

    /// A reconnect logs in again with the password that last worked, and not after
    /// `/logout`; a password the server refused is never kept.
    #[test]
    fn a_reconnect_logs_in_with_the_password_that_worked() {
        let account = |event: &str| ServerEvent::Account {
            event: event.into(),
            message: String::new(),
        };
        let password_of = |c: &Conversation| match c.hello() {
            ClientRequest::Hello { password, .. } => password,
            other => panic!("{other:?}"),
        };
        let mut c = Conversation::new(Some("ana".into()), &[]).unwrap();
        typed(&mut c, "/login ana wrong-one").unwrap();
        c.observe(&ServerEvent::Error {
            code: "bad_password".into(),
            message: String::new(),
        });
        assert_eq!(password_of(&c), None);
        typed(&mut c, "/login ana right-one").unwrap();
        c.observe(&account("logged_in"));
        assert_eq!(password_of(&c), Some(Secret::new("right-one")));
        typed(&mut c, "/password right-one newer-one").unwrap();
        c.observe(&account("password_changed"));
        assert_eq!(password_of(&c), Some(Secret::new("newer-one")));
        typed(&mut c, "/logout").unwrap();
        c.observe(&account("logged_out"));
        assert_eq!(password_of(&c), None);

        let c = Conversation::new(Some("ana".into()), &[])
            .unwrap()
            .logged_in_with(None, Some(Secret::new("from-the-terminal")));
        assert_eq!(password_of(&c), Some(Secret::new("from-the-terminal")));
        let c = Conversation::new(None, &[])
            .unwrap()
            .logged_in_with(Some("charla_token".into()), None);
        assert!(
            matches!(c.hello(), ClientRequest::Hello { token: Some(t), password: None, .. } if t == Secret::new("charla_token"))
        );
    }
}
