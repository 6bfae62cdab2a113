//! Rooms, members, nicks, history and fan-out.
//!
//! The hub knows nothing of sockets or wire formats: a session is a [`Recipient`] to queue
//! [`Outgoing`] events on, and a [`Command`] is what it asks for. What is said in a room is
//! appended once to the room's [`RoomLog`], which every member reads from its own place.
//! One `std::sync::Mutex` guards the state and is held only inside the short, non-async
//! methods below, never across an `.await`. Queuing never blocks: a recipient whose queue is full is
//! disconnected ("send queue exceeded") before the lock is released.
//!
//! Feeds (file watcher, checks, UDP alerts) are no sessions: they [`Hub::post`] a
//! [`Notice`] into a room and may register a [`RoomStatus`] that newcomers and `/status`
//! hear; the hub knows nothing more of them.

/// `Display` and `Debug` for string newtypes, through their `as_str()`: displayed as the
/// text itself, debugged as a quoted string. Defined before the modules that use it.
macro_rules! str_formatting {
    ($($t:ty),+) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl std::fmt::Debug for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(self.as_str(), f)
            }
        }
    )+};
}

mod command;
mod event;
mod names;
mod nicks;
mod post;
mod recipient;
#[cfg(test)]
pub(crate) mod recorder;
mod room;
mod room_log;
mod text;

use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::{SystemTime, UNIX_EPOCH};

pub use command::{Command, Request};
pub use event::{Encode, Encoded, ErrorCode, Event, FormatKey, LeaveReason, Outgoing, Said};
pub use names::{NameError, Nick, RoomName};
pub use post::{
    Entry, Field, MAX_SOURCE_CHARS, NoSuchRoom, Notice, PostKind, Posted, RoomStatus, Source,
};
pub use recipient::{Overflow, Recipient};
pub use room_log::{Chunk, Logged, Reading, RoomLog, take_in_order};
pub use text::{MessageText, sanitize};

use crate::limits::ANNOUNCE_MAX_MEMBERS;
use nicks::NickTable;
use room::Room;

/// Members named to someone joining a room; the rest are counted. `/users` names them
/// all. Keeps a join into a crowded room from costing a line as long as the room.
pub const MEMBERS_SHOWN_ON_JOIN: usize = 20;

/// Identifies a connected session for as long as this server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(u64);

/// A map keyed by session. The ids are this server's own counter, never chosen by a
/// client, so they need no keyed hash to resist flooding (names, which clients choose,
/// keep std's SipHash). Hashing was 4.9 % of the server when clients join and leave as
/// fast as they can, 2.7 % with this (docs/benchmarks.md).
pub(super) type BySession<V> = HashMap<SessionId, V, foldhash::fast::FixedState>;

/// A cheap-to-clone handle on the shared chat state.
#[derive(Clone)]
pub struct Hub {
    state: Arc<Mutex<State>>,
}

struct Session {
    nick: Nick,
    /// Rooms joined, in the order the session chose them; the last is where its plain
    /// messages go. A boxed slice of exactly that many: a `Vec` would cost every session
    /// a capacity it never uses (idle memory is a target: docs/benchmarks.md).
    rooms: Box<[RoomName]>,
    recipient: Arc<dyn Recipient>,
}

struct State {
    sessions: BySession<Session>,
    nicks: NickTable,
    rooms: HashMap<RoomName, Room>,
    history_per_room: usize,
    next_session: u64,
    next_message: u64,
    /// Stamps everything sent, to a room's log or to one session, so each connection can
    /// put what it has from both back in the hub's order ([`RoomLog`]).
    next_order: u64,
    next_guest: u64,
    /// Set by [`Hub::shutdown`]: later arrivals are sent away.
    shut_down: bool,
    /// Sessions whose queue overflowed during the current operation; each public method
    /// disconnects them before it releases the lock.
    overflowed: Vec<SessionId>,
    /// Connections the current operation gave new lines to read in a room's log, and who
    /// wakes them ([`Hub::set_wake`]).
    woken: Vec<Waker>,
    wake: Arc<WakeAll>,
}

/// Wakes the connections a message gave something to write; it drains the list it is given.
/// Called with the hub's lock held: it must be short.
pub type WakeAll = dyn Fn(&mut Vec<Waker>) + Send + Sync;

impl Hub {
    /// A hub whose rooms each remember `history_per_room` messages.
    pub fn new(history_per_room: usize) -> Hub {
        Hub {
            state: Arc::new(Mutex::new(State {
                sessions: BySession::default(),
                nicks: NickTable::default(),
                rooms: HashMap::new(),
                history_per_room,
                next_session: 1,
                next_message: 1,
                next_order: 1,
                next_guest: 1,
                overflowed: Vec::new(),
                woken: Vec::new(),
                wake: Arc::new(|woken: &mut Vec<Waker>| woken.drain(..).for_each(Waker::wake)),
                shut_down: false,
            })),
        }
    }

    /// Makes an admitted connection a session: under `nick`, or a guest nick when `None`,
    /// greeted and put in `#lobby`. Refused when `nick` is taken; the connection stays
    /// unregistered and may try another.
    pub fn register(
        &self,
        recipient: Arc<dyn Recipient>,
        nick: Option<Nick>,
    ) -> Result<SessionId, (ErrorCode, String)> {
        self.with_state(|state| {
            if let Some(nick) = &nick
                && let Some(holder) = state.nicks.get(nick, &state.sessions)
            {
                let taken = taken(nick, &state.sessions[&holder].nick);
                return Err((ErrorCode::NickTaken, taken));
            }
            let id = SessionId(state.next_session);
            state.next_session += 1;
            if state.shut_down {
                // Registered just as the server began shutting down: goodbye at once.
                recipient.close(
                    state.next_order(),
                    &Outgoing::new(Event::Bye {
                        reason: LeaveReason::ServerShutdown,
                    }),
                );
                return Ok(id);
            }
            let nick = nick.unwrap_or_else(|| state.guest_nick());
            let lobby = RoomName::lobby();
            state.sessions.insert(
                id,
                Session {
                    nick: nick.clone(),
                    rooms: Box::default(),
                    recipient,
                },
            );
            state.nicks.insert(id, &state.sessions);
            let welcome = Event::Welcome {
                nick,
                rooms: vec![lobby.clone()],
            };
            state.send(id, &Outgoing::new(welcome));
            state.join(id, lobby, None);
            Ok(id)
        })
    }

    /// Carries out one request of session `id`.
    pub fn apply(&self, id: SessionId, request: Request) {
        self.with_state(|state| state.apply(id, request));
    }

    /// Sends `event` to session `id` alone, as the answer to `reference`.
    pub fn reply(&self, id: SessionId, event: Event, reference: Option<String>) {
        self.with_state(|state| state.send(id, &Outgoing::reply(event, reference)));
    }

    /// Tells session `id` its nick and rooms again, as the answer to `reference` (a JSON
    /// client's `hello`).
    pub fn welcome(&self, id: SessionId, reference: Option<String>) {
        self.with_state(|state| {
            let Some(session) = state.sessions.get(&id) else {
                return;
            };
            let welcome = Event::Welcome {
                nick: session.nick.clone(),
                rooms: session.rooms.to_vec(),
            };
            state.send(id, &Outgoing::reply(welcome, reference));
        });
    }

    /// Removes session `id`, telling its rooms why; does nothing if it is already gone.
    pub fn disconnect(&self, id: SessionId, reason: LeaveReason) {
        self.with_state(|state| state.remove(id, reason));
    }

    /// Says goodbye to every session and forgets them all; sessions that connect later are
    /// sent away at once.
    pub fn shutdown(&self) {
        self.with_state(|state| {
            let bye = Outgoing::new(Event::Bye {
                reason: LeaveReason::ServerShutdown,
            });
            state.shut_down = true;
            let ids: Vec<SessionId> = state.sessions.keys().copied().collect();
            for id in ids {
                let rooms = state.sessions[&id].rooms.clone();
                for room in &rooms {
                    state.stop_reading(id, room, true);
                }
                let session = state.sessions.remove(&id).expect("listed above");
                session.recipient.close(state.next_order(), &bye);
            }
            state.nicks.clear();
            state.rooms.clear();
        });
    }

    /// Creates `room` if needed and keeps it even when nobody is in it, so what feeds post
    /// there waits in its history for newcomers. For feeds, at start-up.
    pub fn open_room(&self, room: &RoomName) {
        self.with_state(|state| {
            state.open_room(room);
        });
    }

    /// Whether `room` was opened by a feed or [`Hub::open_room`], and so takes posts that
    /// name it from outside (a UDP datagram's `#room`): a room a user made does not. Such a
    /// room stays until shutdown, so the answer does not go stale.
    pub fn is_kept(&self, room: &RoomName) -> bool {
        self.lock().rooms.get(room).is_some_and(|r| r.kept)
    }

    /// Opens `room` (see [`Hub::open_room`]) and has `status` tell everyone who joins it,
    /// and `/status` there, what its feed is doing.
    pub fn add_status(&self, room: &RoomName, status: Arc<dyn RoomStatus>) {
        self.with_state(|state| state.open_room(room).status.push(status));
    }

    /// Posts a feed's notice into `room`: remembered in its history and sent to every
    /// member. Returns the post as stamped, or [`NoSuchRoom`] when the room does not exist
    /// (nobody is in it and no feed opened it).
    pub fn post(&self, room: &RoomName, notice: Notice) -> Result<Posted, NoSuchRoom> {
        self.with_state(|state| {
            let Some(name) = state.rooms.get(room).map(|r| r.name.clone()) else {
                return Err(NoSuchRoom(room.clone()));
            };
            let posted = Posted {
                id: state.next_message_id(),
                ts: now_ms(),
                room: name,
                notice: Arc::new(notice),
            };
            let bound = state.history_per_room;
            let target = state.rooms.get_mut(room).expect("checked above");
            target.remember(posted.clone(), bound);
            state.broadcast(room, Outgoing::new(Event::Posted(posted.clone())), None);
            Ok(posted)
        })
    }

    /// Has `wake` wake the connections that a message in their room gave something to
    /// write, instead of waking them at once (the server wakes them in batches, reading
    /// input in between: `server/dispatch.rs`).
    pub fn set_wake(&self, wake: Arc<WakeAll>) {
        self.lock().wake = wake;
    }

    /// Sessions connected now.
    pub fn session_count(&self) -> usize {
        self.lock().sessions.len()
    }

    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut state = self.lock();
        let result = f(&mut state);
        state.settle();
        if !state.woken.is_empty() {
            let State { woken, wake, .. } = &mut *state;
            wake(woken);
        }
        result
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves state that is still consistent enough to
        // keep chatting; refusing service to everyone would be worse.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl State {
    fn apply(&mut self, id: SessionId, request: Request) {
        let Request { command, reference } = request;
        if !self.sessions.contains_key(&id) {
            return;
        }
        let result = match command {
            Command::Say { room, text, action } => self.say(id, room, text, action),
            Command::Msg { to, text } => self.private(id, to, text),
            Command::Nick(nick) => self.rename(id, nick),
            Command::Join(room) => {
                self.join(id, room, reference.clone());
                Ok(None)
            }
            Command::Leave { room, message } => self.leave(id, room, message),
            Command::Users { room } => self.users(id, room),
            Command::Rooms => Ok(Some(self.rooms())),
            Command::History { room, limit } => self.room_of(id, room).map(|room| {
                let messages = self.rooms[&room].recent(limit);
                Some(Event::History { room, messages })
            }),
            Command::Help => Ok(Some(Event::Help)),
            Command::Status { room } => self.status(id, room),
            Command::Quit { message } => {
                self.remove(id, LeaveReason::Quit(message));
                Ok(None)
            }
        };
        let answer = match result {
            Ok(Some(event)) => event,
            Ok(None) => return,
            Err((code, message)) => Event::Error { code, message },
        };
        self.send(id, &Outgoing::reply(answer, reference));
    }

    fn open_room(&mut self, room: &RoomName) -> &mut Room {
        let target = self
            .rooms
            .entry(room.clone())
            .or_insert_with(|| Room::new(room.clone()));
        target.kept = true;
        target
    }

    /// What the feeds of a room report; any existing room may be looked into, like
    /// `/users`.
    fn status(&self, id: SessionId, room: Option<RoomName>) -> Reply {
        let room = match room {
            Some(room) if self.rooms.contains_key(&room) => room,
            Some(room) => return Err((ErrorCode::InvalidRoom, format!("there is no {room}"))),
            None => self.room_of(id, None)?,
        };
        let target = &self.rooms[&room];
        Ok(Some(Event::Status {
            room: target.name.clone(),
            items: target.status.iter().flat_map(|s| s.status()).collect(),
        }))
    }

    fn guest_nick(&mut self) -> Nick {
        loop {
            let n = self.next_guest;
            self.next_guest += 1;
            let nick = Nick::parse(&format!("guest-{n}")).expect("guest nicks are valid");
            if self.nicks.get(&nick, &self.sessions).is_none() {
                return nick;
            }
        }
    }

    /// The room a command is about: the one named, which the session must be in, or else
    /// the one it talks in now.
    fn room_of(&self, id: SessionId, room: Option<RoomName>) -> Result<RoomName, Failure> {
        let session = &self.sessions[&id];
        match room {
            Some(room) if session.rooms.contains(&room) => Ok(room),
            Some(room) => Err((
                ErrorCode::NotInRoom,
                format!("you are not in {room}; /join {room} first"),
            )),
            None => session.rooms.last().cloned().ok_or_else(|| {
                (
                    ErrorCode::NotInRoom,
                    "you are in no room; /join #room first".to_string(),
                )
            }),
        }
    }

    fn say(
        &mut self,
        id: SessionId,
        room: Option<RoomName>,
        text: MessageText,
        action: bool,
    ) -> Reply {
        let room = self.room_of(id, room)?;
        let said = Said {
            id: self.next_message_id(),
            ts: now_ms(),
            room: room.clone(),
            from: self.sessions[&id].nick.clone(),
            text,
            action,
        };
        let ack = Event::Ack {
            id: said.id,
            ts: said.ts,
        };
        let bound = self.history_per_room;
        let target = self.rooms.get_mut(&room).expect("a joined room exists");
        target.remember(said.clone(), bound);
        self.broadcast(&room, Outgoing::new(Event::Message(said)), Some(id));
        Ok(Some(ack))
    }

    fn private(&mut self, id: SessionId, to: Nick, text: MessageText) -> Reply {
        let Some(target) = self.nicks.get(&to, &self.sessions) else {
            return Err((ErrorCode::NoSuchNick, format!("nobody is called {to}")));
        };
        let (msg_id, ts) = (self.next_message_id(), now_ms());
        let private = Event::Private {
            id: msg_id,
            ts,
            from: self.sessions[&id].nick.clone(),
            to: self.sessions[&target].nick.clone(),
            text,
        };
        self.send(target, &Outgoing::new(private));
        Ok(Some(Event::Ack { id: msg_id, ts }))
    }

    fn rename(&mut self, id: SessionId, new: Nick) -> Reply {
        let old = self.sessions[&id].nick.clone();
        if let Some(holder) = self.nicks.get(&new, &self.sessions)
            && holder != id
        {
            let taken = taken(&new, &self.sessions[&holder].nick);
            return Err((
                ErrorCode::NickTaken,
                format!("{taken}; you are still {old}"),
            ));
        }
        self.nicks.remove(id, &old);
        self.sessions.get_mut(&id).expect("session exists").nick = new.clone();
        self.nicks.insert(id, &self.sessions);
        // Everyone sharing a room hears it once, however many rooms they share.
        let mut told = HashSet::from([id]);
        let notice = Outgoing::new(Event::NickChanged {
            old: old.clone(),
            new: new.clone(),
            you: false,
        });
        let rooms = self.sessions[&id].rooms.clone();
        for room in rooms {
            if !announced(self.rooms[&room].members.len()) {
                continue;
            }
            let members: Vec<_> = self.rooms[&room]
                .members
                .iter()
                .filter(|(member, _)| told.insert(**member))
                .map(|(member, recipient)| (*member, recipient.clone()))
                .collect();
            for (member, recipient) in members {
                self.deliver(member, &*recipient, &notice);
            }
        }
        Ok(Some(Event::NickChanged {
            old,
            new,
            you: true,
        }))
    }

    fn join(&mut self, id: SessionId, room: RoomName, reference: Option<String>) {
        let target = self
            .rooms
            .entry(room.clone())
            .or_insert_with(|| Room::new(room));
        // The room's own name from here on: its spelling, and its one shared string rather
        // than a copy per member (idle memory is a target: docs/benchmarks.md).
        let room = target.name.clone();
        let session = self.sessions.get_mut(&id).expect("session exists");
        let already = session.rooms.contains(&room);
        let mut rooms = std::mem::take(&mut session.rooms).into_vec();
        rooms.retain(|r| r != &room);
        rooms.push(room.clone());
        session.rooms = rooms.into_boxed_slice();
        let nick = session.nick.clone();
        let recipient = session.recipient.clone();
        if !already {
            let messages = target.recent(None);
            recipient.follow(target.log.follow(id));
            target.members.insert(id, recipient);
            let count = target.members.len();
            if !messages.is_empty() {
                let history = Event::History {
                    room: target.name.clone(),
                    messages,
                };
                self.send(id, &Outgoing::reply(history, reference.clone()));
            }
            if announced(count) {
                let joined = Event::Joined {
                    room: room.clone(),
                    nick: nick.clone(),
                    you: false,
                    members: Vec::new(),
                    count,
                };
                self.broadcast(&room, Outgoing::new(joined), Some(id));
            }
        }
        let joined = Event::Joined {
            members: self.member_nicks(&room, Some(MEMBERS_SHOWN_ON_JOIN)),
            count: self.rooms[&room].members.len(),
            room: self.rooms[&room].name.clone(),
            nick,
            you: true,
        };
        self.send(id, &Outgoing::reply(joined, reference));
        if !already && !self.rooms[&room].status.is_empty() {
            // A room with feeds greets each newcomer with what they are doing.
            if let Ok(Some(status @ Event::Status { .. })) = self.status(id, Some(room))
                && !matches!(&status, Event::Status { items, .. } if items.is_empty())
            {
                self.send(id, &Outgoing::new(status));
            }
        }
    }

    fn leave(
        &mut self,
        id: SessionId,
        room: Option<RoomName>,
        message: Option<MessageText>,
    ) -> Reply {
        let room = self.room_of(id, room)?;
        let reason = LeaveReason::Left(message);
        self.part(id, &room, &reason);
        let nick = self.sessions[&id].nick.clone();
        Ok(Some(Event::Left {
            room,
            nick,
            you: true,
            reason,
        }))
    }

    fn users(&self, id: SessionId, room: Option<RoomName>) -> Reply {
        let room = match room {
            // Anyone may look into an existing room before joining it.
            Some(room) if self.rooms.contains_key(&room) => room,
            Some(room) => return Err((ErrorCode::InvalidRoom, format!("there is no {room}"))),
            None => self.room_of(id, None)?,
        };
        Ok(Some(Event::Users {
            nicks: self.member_nicks(&room, None),
            room: self.rooms[&room].name.clone(),
        }))
    }

    fn rooms(&self) -> Event {
        let mut rooms: Vec<_> = self
            .rooms
            .values()
            .map(|room| (room.name.clone(), room.members.len()))
            .collect();
        rooms.sort_by(|a, b| a.0.sort_key().cmp(b.0.sort_key()));
        Event::Rooms { rooms }
    }

    /// The members' nicks in alphabetical order; only the first `limit` when given.
    fn member_nicks(&self, room: &RoomName, limit: Option<usize>) -> Vec<Nick> {
        // Each key found once: finding it in the nick's string for every comparison was
        // a tenth of the server's time when clients join and leave as fast as they can.
        // Keys are unique in a room, so (key, id) pairs sort as the keys do.
        let target = &self.rooms[room];
        let members = target
            .members
            .keys()
            .map(|&member| (self.sessions[&member].nick.sort_key(), member));
        let mut nicks: Vec<(&str, SessionId)> = match limit {
            // A crowd: the first `limit` kept as they come, so a join costs no list as
            // long as the room (allocated anew at every join, such lists left the
            // allocator holding ~50 bytes per idle connection at 10,000).
            Some(limit) if !announced(target.members.len()) => first(members, limit),
            _ => members.collect(),
        };
        if let Some(limit) = limit.filter(|&l| l < nicks.len()) {
            // Linear selection, so a join costs no full sort.
            nicks.select_nth_unstable(limit);
            nicks.truncate(limit);
        }
        nicks.sort_unstable();
        nicks
            .into_iter()
            .map(|(_, member)| self.sessions[&member].nick.clone())
            .collect()
    }

    /// Takes session `id` out of `room` and tells the members left behind.
    fn part(&mut self, id: SessionId, room: &RoomName, reason: &LeaveReason) {
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        let mut rooms = std::mem::take(&mut session.rooms).into_vec();
        rooms.retain(|r| r != room);
        session.rooms = rooms.into_boxed_slice();
        let nick = session.nick.clone();
        // What it was sent in the room before it left still reaches it; not when it is
        // being disconnected for falling behind.
        self.stop_reading(id, room, *reason != LeaveReason::SendQueueExceeded);
        let Some(target) = self.rooms.get_mut(room) else {
            return;
        };
        target.members.remove(&id);
        if target.members.is_empty() && !target.kept && *room != RoomName::lobby() {
            // A room lives while someone is in it; #lobby always does.
            self.rooms.remove(room);
            return;
        }
        if !announced(target.members.len() + 1) {
            return;
        }
        let left = Event::Left {
            room: target.name.clone(),
            nick,
            you: false,
            reason: reason.clone(),
        };
        self.broadcast(room, Outgoing::new(left), None);
    }

    fn remove(&mut self, id: SessionId, reason: LeaveReason) {
        let Some(session) = self.sessions.get(&id) else {
            return;
        };
        for room in session.rooms.clone() {
            self.part(id, &room, &reason);
        }
        let session = self.sessions.remove(&id).expect("session exists");
        self.nicks.remove(id, &session.nick);
        session
            .recipient
            .close(self.next_order(), &Outgoing::new(Event::Bye { reason }));
    }

    fn send(&mut self, id: SessionId, event: &Outgoing) {
        if let Some(session) = self.sessions.get(&id) {
            let recipient = session.recipient.clone();
            self.deliver(id, &*recipient, event);
        }
    }

    /// Appends `event` to the room's log for every member but `except`, and wakes the
    /// members whose connections wait for more. Every
    /// [`LOG_CHECK_EVERY`](crate::limits::LOG_CHECK_EVERY) messages the log drops what all
    /// have read, and whoever has fallen too far behind is disconnected.
    fn broadcast(&mut self, room: &RoomName, event: Outgoing, except: Option<SessionId>) {
        let order = self.next_order();
        let Some(target) = self.rooms.get(room) else {
            return;
        };
        let due = target.log.append(order, except, event);
        for (&member, recipient) in &target.members {
            if Some(member) != except
                && let Some(waker) = recipient.notify()
            {
                self.woken.push(waker);
            }
        }
        if due {
            let mut keep_from = target.log.end();
            for (&member, recipient) in &target.members {
                match recipient.check(&target.log) {
                    Ok(Some(next)) => keep_from = keep_from.min(next),
                    Ok(None) => {}
                    Err(Overflow) => self.overflowed.push(member),
                }
            }
            target.log.trim(keep_from);
        }
    }

    /// Session `id` stops reading `room`'s log; with `hand_over`, what it had not read
    /// there yet is queued to it directly, in its place in the hub's order.
    fn stop_reading(&mut self, id: SessionId, room: &RoomName, hand_over: bool) {
        let (Some(session), Some(target)) = (self.sessions.get(&id), self.rooms.get(room)) else {
            return;
        };
        let Some(mut reading) = session.recipient.unfollow(&target.log) else {
            return;
        };
        if !hand_over {
            return;
        }
        let mut unread = Vec::new();
        reading.read(|order, event| unread.push((order, event.clone())));
        let recipient = session.recipient.clone();
        for (order, event) in unread {
            if recipient.deliver(order, &event).is_err() {
                self.overflowed.push(id);
                return;
            }
        }
    }

    fn deliver(&mut self, id: SessionId, recipient: &dyn Recipient, event: &Outgoing) {
        if recipient.deliver(self.next_order(), event).is_err() {
            self.overflowed.push(id);
        }
    }

    fn next_order(&mut self) -> u64 {
        let order = self.next_order;
        self.next_order += 1;
        order
    }

    /// Disconnects every session that could not keep up. Telling their rooms may overflow
    /// more queues, so this runs until none is left.
    fn settle(&mut self) {
        while let Some(id) = self.overflowed.pop() {
            self.remove(id, LeaveReason::SendQueueExceeded);
        }
    }

    fn next_message_id(&mut self) -> u64 {
        let id = self.next_message;
        self.next_message += 1;
        id
    }
}

/// Whether a room of `members` (the one arriving or leaving included) hears of joins,
/// leaves and nick changes; see [`ANNOUNCE_MAX_MEMBERS`].
fn announced(members: usize) -> bool {
    members <= ANNOUNCE_MAX_MEMBERS
}

/// Why `wanted` cannot be had while `holder` is online: the same nick but for case, or one
/// that looks like it (names compare by their confusable skeleton).
fn taken(wanted: &Nick, holder: &Nick) -> String {
    if wanted.same_spelling(holder) {
        format!("{wanted} is taken")
    } else {
        format!("{wanted} looks like {holder}, which is taken")
    }
}

/// The `n` smallest of `items`, in no order, holding no more than `n` at a time.
fn first<T: Ord>(items: impl Iterator<Item = T>, n: usize) -> Vec<T> {
    let mut kept = BinaryHeap::with_capacity(n);
    for item in items {
        if kept.len() < n {
            kept.push(item);
        } else if let Some(mut last) = kept.peek_mut()
            && item < *last
        {
            // Takes the place of the greatest kept, which sinks.
            *last = item;
        }
    }
    kept.into_vec()
}

/// A command's direct answer, if it has one besides what it broadcasts.
type Reply = Result<Option<Event>, Failure>;
/// An error code and a sentence for the user.
type Failure = (ErrorCode, String);

#[cfg(test)]
mod tests;
