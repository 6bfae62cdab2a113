//! The chat's state and its rules: what each command does to sessions, nicks and rooms.
//! Only [`super::Hub`] touches it, under its lock.

use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;
use std::task::Waker;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::bus::{Bus, BusFull, DirectSender, Publication, Undelivered};
use super::calls::AlertPeers;
use super::command::{Command, NoticeTarget, Request};
use super::directory::{Directory, Profile};
use super::event::{Census, ErrorCode, Event, LeaveReason, ListedRoom, Outgoing, Said, Whois};
use super::ids::Mint;
use super::names::{Nick, RoomName};
use super::nicks::NickTable;
use super::ops::{Mode, ModeChange, Standing};
use super::post::Entry;
use super::resume::Resume;
use super::room::{Room, RoomChange, RoomSettings};
use super::store::{HistoryStore, Owed, StoreFull};
use super::tags::ClientTags;
use super::text::MessageText;
use super::{BySession, SessionId, WakeAll};
use crate::fanout::{Overflow, Recipient};
use crate::metrics::{FanoutSampler, MessageKind, Metrics};

/// A connected session as the hub knows it.
pub(super) struct Participant {
    pub nick: Nick,
    /// Rooms joined, in the order the session chose them; the last is where its plain
    /// messages go. A boxed slice of exactly that many: a `Vec`'s spare capacity would
    /// cost every idle connection. At most [`ChatState::max_rooms_per_session`] long, so
    /// looking through it is bounded.
    pub rooms: Box<[RoomName]>,
    pub recipient: Arc<dyn Recipient>,
    /// Set with `/away` (IRC's AWAY): told to whoever sends a private message.
    pub away: Option<MessageText>,
    /// When the session registered, milliseconds since the Unix epoch.
    pub signon: u64,
    /// When it last said something, or registered: WHOIS's idle time.
    pub spoke: u64,
    /// The account it is logged in to.
    pub account: Option<Nick>,
    /// The user name and real name it gave (IRC's USER); WHO and WHOIS show the nick for
    /// those with none.
    pub user: Option<Box<str>>,
    pub realname: Option<MessageText>,
    /// IRC's user mode `+i`: found by a WHO mask only by those sharing a room with it.
    pub invisible: bool,
    /// A server operator (`--oper`, IRC's `+o`): may kick and change the modes of any room.
    pub oper: bool,
    /// Acks owed to it that the store or the bus still holds: a session that ends with
    /// some waits for them ([`Closing`]).
    pub owed: u32,
}

/// A session that ended while acks were owed to it: gone from its rooms and its nick, its
/// connection reads no more and waits, within [`ACK_GRACE`](crate::limits::ACK_GRACE), for
/// the acks to come before its goodbye.
pub(super) struct Closing {
    pub recipient: Arc<dyn Recipient>,
    pub owed: u32,
    pub reason: LeaveReason,
}

pub(super) struct ChatState {
    pub sessions: BySession<Participant>,
    pub nicks: NickTable,
    pub rooms: HashMap<RoomName, Room>,
    pub mint: Mint,
    /// Stamps everything sent, to a room's log or to one session, so each connection can
    /// put what it has from both back in the hub's order (`fanout::RoomLog`).
    pub next_order: u64,
    pub next_guest: u64,
    /// What guest nicks begin with: `guest-`, and in a cluster `guest-N-` on node N, so
    /// that two nodes never hand out the same one.
    pub guest_prefix: Box<str>,
    /// The most sessions connected at once (LUSERS's maximum).
    pub peak_sessions: usize,
    /// Sessions with user mode `+i` (LUSERS's invisible users).
    pub invisible_sessions: usize,
    /// How many sessions here are server operators (LUSERS' `252`), kept as they change
    /// so that a census, sent with every welcome, needs no walk over the sessions.
    pub oper_sessions: usize,
    /// Set by [`super::Hub::shutdown`]: later arrivals are sent away.
    pub shut_down: bool,
    /// Sessions whose queue overflowed during the current operation; each public method
    /// disconnects them before it releases the lock.
    pub overflowed: Vec<SessionId>,
    /// Connections the current operation gave new lines to read in a room's log, and who
    /// wakes them ([`super::Hub::set_wake`]).
    pub woken: Vec<Waker>,
    pub wake: Arc<WakeAll>,
    pub store: Arc<dyn HistoryStore>,
    pub bus: Arc<dyn Bus>,
    /// The bus numbers room messages ([`Bus::numbers_messages`]): asked once.
    pub bus_numbers: bool,
    /// The `ack`s owed for this node's messages that the bus has not handed back yet, by
    /// message id: in a cluster a message is acked once Redis has numbered it and kept it
    /// in its room's backlog.
    pub unheard: HashMap<u64, Owed>,
    /// Sessions ended with acks still owed, until those come or their connection stops
    /// waiting ([`super::Hub::close_now`]).
    pub closing: BySession<Closing>,
    /// Of `unheard`, the messages the bus holds (Redis was out of reach, or their sending
    /// failed): heard here already, acked once Redis has them, however long that takes.
    pub held: HashSet<u64>,
    /// HTTP posts of this node waiting for the bus to number them, by id
    /// ([`super::Hub::post_numbered`]): told the number, or `None` when it is held.
    pub numbering: HashMap<u64, tokio::sync::oneshot::Sender<Option<u64>>>,
    pub directory: Arc<dyn Directory>,
    /// Rooms opened by feeds, which live on empty and are not counted in `max_rooms`.
    pub kept_rooms: usize,
    /// What every new room starts with.
    pub room_settings: RoomSettings,
    /// Rooms in all, kept rooms and `#lobby` aside (`--max-rooms`).
    pub max_rooms: usize,
    /// Rooms one session may be in at once (`--max-rooms-per-client`).
    pub max_rooms_per_session: usize,
    pub metrics: Arc<Metrics>,
    /// Which room messages carry a fan-out probe.
    pub sampler: FanoutSampler,
    /// When the message being carried out was taken in, for its fan-out probe.
    pub taken: Option<Instant>,
    /// The client-only tags of the message being carried out ([`Command::Tagged`]).
    pub tags: Option<ClientTags>,
    /// The names of the registered accounts: nicks only their owners may hold.
    pub registered: HashSet<Nick>,
    /// `--require-account`: only sessions logged in to an account may talk.
    pub require_account: bool,
    /// Where the stamps of the request being carried out begin, when not at its first:
    /// past the copy of a message a session sent itself, which it reads as its recipient
    /// does, not as the answer to its command (IRC's labeled-response labels the answer
    /// alone).
    pub answers_from: Option<u64>,
    /// The other nodes' checks and heartbeats, which `/status` lists with this node's
    /// (`--cluster`); `None` on a node alone.
    pub peers: Option<Arc<dyn AlertPeers>>,
}

/// A command's direct answer, if it has one besides what it broadcasts.
pub(super) type Reply = Result<Option<Event>, Failure>;
/// An error code and a sentence for the user.
pub type Failure = (ErrorCode, String);

pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl ChatState {
    pub fn apply(&mut self, id: SessionId, request: Request) {
        let Request { command, reference } = request;
        if !self.sessions.contains_key(&id) {
            return;
        }
        let result = match command {
            Command::Tagged { tags, command } => {
                self.tags = Some(tags);
                let inner = Request {
                    command: *command,
                    reference,
                };
                self.apply(id, inner);
                self.tags = None;
                return;
            }
            Command::TagsOnly { to, tags } => self.tags_only(id, to, tags, reference.clone()),
            Command::Say { room, text, action } => {
                self.say(id, room, text, action, false, reference.clone())
            }
            Command::Msg { to, text } => self.private(id, to, text, false, reference.clone()),
            Command::Notice {
                to: NoticeTarget::Room(room),
                text,
            } => self.say(id, Some(room), text, false, true, reference.clone()),
            Command::Notice {
                to: NoticeTarget::Nick(to),
                text,
            } => self.private(id, to, text, true, reference.clone()),
            Command::LeaveAll { message } => self.leave_all(id, message),
            Command::Whois(nick) => self.whois(id, nick),
            Command::User { user, realname } => {
                let session = self.sessions.get_mut(&id).expect("checked above");
                session.user = user;
                session.realname = realname.and_then(|name| name.cut(crate::limits::REALNAMELEN));
                self.tell_profile(id);
                Ok(None)
            }
            Command::Who { of, opers_only } => Ok(Some(self.who(id, of, opers_only))),
            Command::UserModes { invisible, oper } => {
                Ok(Some(self.user_modes(id, invisible, oper)))
            }
            Command::Away(message) => self.set_away(id, message),
            Command::Census => Ok(Some(Event::Census(self.census()))),
            Command::Online(nicks) => {
                let nicks = nicks.into_iter().filter(|n| self.holder(n).is_some());
                Ok(Some(Event::Online(nicks.collect())))
            }
            Command::Nick(nick) => self.rename(id, nick),
            Command::Join(room) => self
                .join(id, room, None, reference.clone(), None)
                .map(|()| None),
            Command::JoinWithKey { room, key } => self
                .join(id, room, Some(key), reference.clone(), None)
                .map(|()| None),
            // Reached only through `ChatState::apply` itself: `Hub::apply` reads first.
            Command::Resume { room, after } => {
                let resume = Resume {
                    after,
                    read: Vec::new(),
                };
                self.join(id, room, None, reference.clone(), Some(resume))
                    .map(|()| None)
            }
            Command::Leave { room, message } => self.leave(id, room, message),
            Command::Users { room } => self.users(id, room),
            Command::Rooms => Ok(Some(self.rooms(id))),
            Command::History { room, limit } => self.room_of(id, room).map(|room| {
                let messages = self.store.recent(&room, limit);
                Some(Event::History { room, messages })
            }),
            Command::HistoryWindow {
                room,
                window,
                limit,
            } => self.room_of(id, room).map(|room| {
                let messages = super::chathistory::from_store(&*self.store, &room, window, limit);
                Some(Event::History { room, messages })
            }),
            Command::HistorySince { room, after } => self.room_of(id, room).map(|room| {
                let max = crate::limits::HISTORY_SINCE_MAX;
                let messages = self.store.since(&room, after, max);
                Some(Event::History { room, messages })
            }),
            Command::Help => Ok(Some(Event::Help)),
            Command::Status { room } => self.status(id, room),
            Command::Quit { message } => {
                self.remove(id, LeaveReason::Quit(message));
                Ok(None)
            }
            Command::Topic { room } => self.topic(id, room),
            Command::SetTopic { room, text } => self.set_topic(id, room, text),
            Command::Kick { room, nick, reason } => self.kick(id, room, nick, reason),
            Command::Mode { room, changes } => self.mode(id, room, changes),
            Command::Bans { room } => self.bans(id, room),
            Command::Invite { room, nick } => self.invite(id, room, nick, reference.clone()),
            // `Hub::apply` takes calls outside the lock and never passes one here.
            Command::Beat { .. } | Command::Alert { .. } => Ok(None),
        };
        self.answer(id, result, reference);
    }

    /// Sends `id` the outcome of its request: the answer, or the error.
    pub fn answer(&mut self, id: SessionId, result: Reply, reference: Option<String>) {
        let answer = match result {
            Ok(Some(event)) => event,
            Ok(None) => return,
            Err((code, message)) => Event::Error { code, message },
        };
        self.send(id, &Outgoing::reply(answer, reference));
    }

    /// Who holds `nick`, here or on another node.
    pub fn holder(&self, nick: &Nick) -> Option<SessionId> {
        self.nicks
            .get(nick, &self.sessions)
            .or_else(|| self.directory.holder(nick))
    }

    /// Why `wanted` cannot be had while `holder` is online: the same nick but for case, or
    /// one that looks like it (names compare by their confusable skeleton).
    pub fn taken(&self, wanted: &Nick, holder: SessionId) -> String {
        match self.sessions.get(&holder) {
            Some(session) if !wanted.same_spelling(&session.nick) => {
                format!("{wanted} looks like {}, which is taken", session.nick)
            }
            _ => format!("{wanted} is taken"),
        }
    }

    /// Whether a session logged in to `account` may hold `nick`: any nick but another
    /// account's.
    pub fn may_hold(&self, nick: &Nick, account: Option<&Nick>) -> Result<(), Failure> {
        if self.registered.contains(nick) && account != Some(nick) {
            return Err((
                ErrorCode::NickRegistered,
                format!("{nick} is registered; if it is yours, /login {nick} PASSWORD"),
            ));
        }
        Ok(())
    }

    pub fn account_of(&self, id: SessionId) -> Option<&Nick> {
        self.sessions.get(&id).and_then(|s| s.account.as_ref())
    }

    /// Renames session `holder` to a guest nick: its nick's owner has come for it.
    pub fn evict(&mut self, holder: SessionId) {
        let guest = self.guest_nick();
        let renamed = self.rename(holder, guest);
        self.answer(holder, renamed, None);
    }

    /// The account `name` is no more: its nick is free, and sessions logged in to it are
    /// logged out.
    pub fn forget_account(&mut self, name: &Nick) {
        self.registered.remove(name);
        let mut out = Vec::new();
        for (id, session) in self.sessions.iter_mut() {
            if session.account.as_ref() == Some(name) {
                session.account = None;
                out.push(*id);
            }
        }
        out.into_iter().for_each(|id| self.tell_profile(id));
        let mut changed = Vec::new();
        for (room, target) in self.rooms.iter_mut() {
            let changes = target.forget_account(name);
            if !changes.is_empty() {
                changed.push((room.clone(), changes));
            }
        }
        for (room, changes) in changed {
            self.save_room(&room);
            self.share_room(&room, changes);
        }
        // Rooms not made now whose states still wait for the store's writer (one that
        // emptied just before) would otherwise be written with the account after the
        // account's deletion forgot it in the file.
        self.store.forget_account(name);
    }

    /// Tells the other nodes what session `id` shows as it is now (its away message,
    /// account, user and real name, operator and invisible flags).
    pub fn tell_profile(&self, id: SessionId) {
        if let Some(session) = self.sessions.get(&id) {
            let profile = Profile {
                away: session.away.clone(),
                account: session.account.clone(),
                user: session.user.clone(),
                realname: session.realname.clone(),
                oper: session.oper,
                signon: session.signon,
                invisible: session.invisible,
                spoke: session.spoke,
            };
            self.directory.profile(id, profile);
        }
    }

    /// Logs session `id` in to `account` and gives it the account's nick, renaming
    /// whoever holds it without the account; a session of the same account keeps it, and
    /// so does a session of another node (which may be of the same account: it keeps the
    /// nick, and this one its own).
    pub fn log_in(&mut self, id: SessionId, account: Nick) -> Result<(), Failure> {
        let Some(session) = self.sessions.get_mut(&id) else {
            return Ok(());
        };
        session.account = Some(account.clone());
        self.tell_profile(id);
        self.remember_ops_account(id, &account);
        if self.sessions[&id].nick == account {
            return Ok(());
        }
        match self.holder(&account) {
            Some(holder) if self.account_of(holder) == Some(&account) => return Ok(()),
            Some(holder) if !self.sessions.contains_key(&holder) => return Ok(()),
            Some(holder) => self.evict(holder),
            None => {}
        }
        let renamed = self.rename(id, account)?;
        self.answer(id, Ok(renamed), None);
        Ok(())
    }

    /// Session `id` is logged in to `account` from now on: every room where it is an
    /// operator remembers the account, as if it had been made operator logged in, so the
    /// operator status outlives the session (and, with `--data`, a restart).
    fn remember_ops_account(&mut self, id: SessionId, account: &Nick) {
        let rooms = self.sessions[&id].rooms.clone();
        for room in rooms.iter() {
            let Some(target) = self.rooms.get_mut(room) else {
                continue;
            };
            if !target.is_op(id) || target.has_op_account(Some(account)) {
                continue;
            }
            target.remember_op(Some(account));
            if !target.has_op_account(Some(account)) {
                continue; // The room remembers as many accounts as it may already.
            }
            self.save_room(room);
            self.share_room(room, vec![RoomChange::OpAccount(account.clone(), true)]);
        }
    }

    /// Makes `recipient` session `id` under `nick`, greeted, and put in `#lobby` if
    /// `lobby`.
    pub fn admit(
        &mut self,
        id: SessionId,
        recipient: Arc<dyn Recipient>,
        nick: Nick,
        account: Option<Nick>,
        lobby: bool,
    ) {
        self.sessions.insert(
            id,
            Participant {
                nick: nick.clone(),
                rooms: Box::default(),
                recipient,
                away: None,
                signon: now_ms(),
                spoke: now_ms(),
                account,
                user: None,
                realname: None,
                invisible: false,
                oper: false,
                owed: 0,
            },
        );
        self.peak_sessions = self.peak_sessions.max(self.sessions.len());
        self.nicks.insert(id, &self.sessions);
        self.directory.claimed(&nick, id);
        let rooms = if lobby {
            vec![RoomName::lobby()]
        } else {
            Vec::new()
        };
        let welcome = Event::Welcome {
            nick,
            rooms,
            census: self.census(),
        };
        self.send(id, &Outgoing::new(welcome));
        if lobby {
            let joined = self.join(id, RoomName::lobby(), None, None, None);
            debug_assert!(joined.is_ok(), "#lobby takes everyone");
        }
    }

    pub fn open_room(&mut self, room: &RoomName) -> &mut Room {
        self.make_room(room);
        let target = self.rooms.get_mut(room).expect("made above");
        if !target.kept {
            target.kept = true;
            self.kept_rooms += 1;
        }
        target
    }

    /// `room` as it is, or made with what the cluster or else the store kept of it. A
    /// cluster that does not know when the room was first made is told it was now.
    fn make_room(&mut self, room: &RoomName) -> &mut Room {
        if !self.rooms.contains_key(room) {
            let mut made = Room::new(room.clone(), self.room_settings);
            let shared = self.directory.kept_room(room);
            let known = shared.as_ref().is_some_and(|kept| kept.created.is_some());
            if let Some(kept) = shared.or_else(|| self.store.kept_room(room)) {
                made.restore(kept);
            }
            if self.bus_numbers && !known {
                self.bus.made(room, made.created);
            }
            self.rooms.insert(room.clone(), made);
        }
        self.rooms.get_mut(room).expect("made above")
    }

    /// Hands the other nodes `changes` to what `room` keeps; a server alone (whose bus
    /// does not number messages) has none to tell.
    pub fn share_room(&self, room: &RoomName, changes: Vec<RoomChange>) {
        if self.bus_numbers && !changes.is_empty() {
            self.bus.share_room(room, changes);
        }
    }

    /// Hands the store what `room` is now, to keep after it empties and across restarts.
    pub fn save_room(&self, room: &RoomName) {
        if let Some(target) = self.rooms.get(room) {
            self.store.keep_room(&target.name, target.kept());
        }
    }

    /// What the feeds of a room report; any existing room may be looked into, like
    /// `/users`. In a cluster, a room this node does not have is one when another node
    /// does: its checks post there, or its members are in it.
    fn status(&self, id: SessionId, room: Option<RoomName>) -> Reply {
        let room = match room {
            Some(room) if self.hidden_from(id, &room) => {
                return Err((ErrorCode::InvalidRoom, format!("there is no {room}")));
            }
            Some(room) if self.rooms.contains_key(&room) => room,
            Some(room) => return self.status_elsewhere(room),
            None => self.room_of(id, None)?,
        };
        let target = &self.rooms[&room];
        let mut items = Vec::new();
        for status in &target.status {
            match &self.peers {
                // In a cluster, which node runs each check and heartbeat.
                Some(peers) if status.shared() => {
                    let name = peers.name();
                    items.extend(
                        status
                            .status()
                            .into_iter()
                            .map(|n| n.with("node", name.to_string())),
                    );
                }
                _ => items.extend(status.status()),
            }
        }
        if let Some(peers) = &self.peers {
            items.extend(peers.status(&room));
        }
        Ok(Some(Event::Status {
            room: target.name.clone(),
            items,
        }))
    }

    /// `/status` of a room only other nodes have: what their checks and heartbeats there
    /// report; refused when no node has it.
    fn status_elsewhere(&self, room: RoomName) -> Reply {
        let items = match &self.peers {
            Some(peers) => peers.status(&room),
            None => Vec::new(),
        };
        if items.is_empty() && self.directory.count(&room) == 0 {
            return Err((ErrorCode::InvalidRoom, format!("there is no {room}")));
        }
        Ok(Some(Event::Status { room, items }))
    }

    pub fn guest_nick(&mut self) -> Nick {
        loop {
            let n = self.next_guest;
            self.next_guest += 1;
            let nick =
                Nick::parse(&format!("{}{n}", self.guest_prefix)).expect("guest nicks are valid");
            if self.holder(&nick).is_none() && !self.registered.contains(&nick) {
                return nick;
            }
        }
    }

    /// The room a command is about: the one named, which the session must be in, or else
    /// the one it talks in now.
    pub fn room_of(&self, id: SessionId, room: Option<RoomName>) -> Result<RoomName, Failure> {
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

    /// With `--require-account`, whether session `id` is logged in and so may talk.
    fn may_talk(&self, id: SessionId) -> Result<(), Failure> {
        if self.require_account && self.account_of(id).is_none() {
            return Err((
                ErrorCode::AccountRequired,
                "this server lets only users with an account talk: /login NICK PASSWORD"
                    .to_string(),
            ));
        }
        Ok(())
    }

    fn say(
        &mut self,
        id: SessionId,
        room: Option<RoomName>,
        text: MessageText,
        action: bool,
        notice: bool,
        reference: Option<String>,
    ) -> Reply {
        self.may_talk(id)?;
        let room = self.speaking_room(id, room)?;
        let ts = now_ms();
        // A cluster's bus numbers the message; this node proposes the number after the
        // last it heard, so a room's numbers never go back (`cluster::link`).
        let seq = if self.bus_numbers {
            self.last_seq(&room) + 1
        } else {
            self.next_seq(&room)
        };
        let speaker = self.sessions.get_mut(&id).expect("checked by apply");
        speaker.spoke = ts;
        // Owed until the store or the bus answers; one acked at once is paid back below.
        speaker.owed += 1;
        let said = Said {
            id: self.mint.message(),
            seq,
            ts,
            room: room.clone(),
            from: speaker.nick.clone(),
            text,
            action,
            notice,
            account: speaker.account.clone(),
            tags: self.tags.take(),
        };
        let owed = Owed {
            session: id,
            id: said.id,
            ts: said.ts,
            // A cluster's bus may number it otherwise than proposed: told as it comes back.
            seq: (!self.bus_numbers).then_some(seq),
            reference,
        };
        // In a cluster each node keeps the message as the bus hands it back, and the speaker
        // is acked then (`receive`).
        if self.bus_numbers {
            let msg_id = owed.id;
            self.unheard.insert(msg_id, owed);
            if self
                .publish_numbered(room, Event::Message(said), Some(id))
                .is_err()
            {
                self.unheard.remove(&msg_id);
                self.paid(id);
                return Err((
                    ErrorCode::StoreUnavailable,
                    "the server cannot relay messages to the other nodes right now (its queue to Redis is full); nothing was said: try again in a moment".to_string(),
                ));
            }
            self.metrics.received(MessageKind::Room);
            return Ok(None);
        }
        // Acked now by a store that keeps it at once, else by the store once committed.
        let now = match self.keep(Entry::Said(said.clone()), Some(owed)) {
            Ok(now) => now,
            Err(refused) => {
                self.paid(id);
                return Err(refused);
            }
        };
        self.metrics.received(MessageKind::Room);
        self.publish(room, Event::Message(said), Some(id));
        Ok(now.map(|owed| {
            self.paid(id);
            owed.ack()
        }))
    }

    /// One ack fewer is owed to session `id`: answered at once, or its message refused.
    fn paid(&mut self, id: SessionId) {
        if let Some(session) = self.sessions.get_mut(&id) {
            session.owed -= 1;
        }
    }

    /// Sends each session in `owed` its `ack` (`kept`), or tells it its message was said
    /// but not kept.
    pub fn settle_acks(&mut self, owed: Vec<Owed>, kept: bool) {
        for owed in owed {
            let event = if kept {
                owed.ack()
            } else {
                Event::Error {
                    code: ErrorCode::NotStored,
                    message: format!(
                        "message {} was said but the server could not keep it in history (its disk failed)",
                        owed.id
                    ),
                }
            };
            self.pay(owed, event);
        }
    }

    /// Sends what was owed to a session, its ack or the error in its place: to the session,
    /// or to its connection still waiting for its acks to close ([`Closing`]), which closes
    /// once the last comes; a session gone for good is told nothing.
    pub fn pay(&mut self, owed: Owed, event: Event) {
        let id = owed.session;
        let reply = Outgoing::reply(event, owed.reference);
        if let Some(session) = self.sessions.get_mut(&id) {
            session.owed -= 1;
            let recipient = session.recipient.clone();
            self.deliver(id, &*recipient, &reply);
            return;
        }
        let Some(closing) = self.closing.get_mut(&id) else {
            return;
        };
        closing.owed -= 1;
        let (recipient, done) = (closing.recipient.clone(), closing.owed == 0);
        // An ending connection queues it whatever its bound.
        let _ = recipient.deliver(self.next_order(), &reply);
        if done {
            let closing = self.closing.remove(&id).expect("found above");
            let bye = Outgoing::new(Event::Bye {
                reason: closing.reason,
            });
            closing.recipient.close(self.next_order(), &bye);
        }
    }

    /// Says goodbye to session `id`, just removed, through `recipient`; or, when acks are
    /// still owed to it, has its connection stop reading and wait for them first.
    pub fn goodbye(
        &mut self,
        id: SessionId,
        recipient: Arc<dyn Recipient>,
        owed: u32,
        reason: LeaveReason,
    ) {
        if owed == 0 {
            recipient.close(self.next_order(), &Outgoing::new(Event::Bye { reason }));
            return;
        }
        recipient.end();
        self.closing.insert(
            id,
            Closing {
                recipient,
                owed,
                reason,
            },
        );
    }

    /// Closes the connection of session `id` if it still waits for acks ([`Closing`]),
    /// telling it how many did not come: their messages were said, and most likely kept,
    /// but are not confirmed. Those a cluster's bus holds for the other nodes (Redis out of
    /// reach) are in this node's memory only: said apart, as a shutdown takes them with it.
    pub fn close_now(&mut self, id: SessionId) {
        let Some(closing) = self.closing.remove(&id) else {
            return;
        };
        self.metrics.unconfirmed(closing.owed);
        let held = match self.held.is_empty() {
            true => 0,
            false => self
                .unheard
                .values()
                .filter(|owed| owed.session == id && self.held.contains(&owed.id))
                .count(),
        };
        let mut message = format!(
            "{} of your messages were said but not yet confirmed kept (committed to history, or handed back by the cluster) as the connection closed: their acks will not come",
            closing.owed
        );
        if held == 0 {
            message.push_str("; history shows them once kept");
        } else if closing.reason == LeaveReason::ServerShutdown {
            message.push_str(&format!(
                "; {held} of them, said while the other nodes were out of reach, were heard on this node only and held for them in its memory, which goes as it stops: the other nodes will never have them"
            ));
        } else {
            message.push_str(&format!(
                "; {held} of them, said while the other nodes were out of reach, were heard on this node only and are held for them in its memory: relayed once Redis is back, unless this node stops first"
            ));
        }
        let unconfirmed = Event::Error {
            code: ErrorCode::Unconfirmed,
            message,
        };
        let _ = closing
            .recipient
            .deliver(self.next_order(), &Outgoing::new(unconfirmed));
        let bye = Outgoing::new(Event::Bye {
            reason: closing.reason,
        });
        closing.recipient.close(self.next_order(), &bye);
    }

    /// Hands `entry` to the store before anyone hears it; one the store refuses is not
    /// said, and its room's number is given to the next.
    pub fn keep(&mut self, entry: Entry, owed: Option<Owed>) -> Result<Option<Owed>, Failure> {
        let room = entry.room().clone();
        self.store.append(entry, owed).map_err(|StoreFull| {
            let target = self.rooms.get_mut(&room).expect("the room exists");
            if let Some(seq) = target.seq.as_mut() {
                *seq -= 1;
            }
            (
                ErrorCode::StoreUnavailable,
                "the server cannot keep messages right now (its disk is behind); nothing was said: try again in a moment".to_string(),
            )
        })
    }

    /// Client-only tags with no message (IRC's TAGMSG), to a room as a message would go
    /// (the same rights) or to one user; acknowledged like a message (the answer to
    /// `reference`).
    fn tags_only(
        &mut self,
        id: SessionId,
        to: NoticeTarget,
        tags: ClientTags,
        reference: Option<String>,
    ) -> Reply {
        self.may_talk(id)?;
        let to = match to {
            NoticeTarget::Room(room) => NoticeTarget::Room(self.speaking_room(id, Some(room))?),
            NoticeTarget::Nick(nick) => NoticeTarget::Nick(nick),
        };
        // A nick held on another node of a cluster is reached through the bus.
        let (target, elsewhere) = match &to {
            NoticeTarget::Nick(nick) => match self.nicks.get(nick, &self.sessions) {
                Some(target) => (Some(target), None),
                None => match self.directory.holder(nick) {
                    Some(elsewhere) => (None, Some(elsewhere)),
                    None => {
                        return Err((ErrorCode::NoSuchNick, format!("nobody is called {nick}")));
                    }
                },
            },
            NoticeTarget::Room(_) => (None, None),
        };
        let (msg_id, ts) = (self.mint.message(), now_ms());
        let speaker = &self.sessions[&id];
        let event = Event::TagsOnly {
            id: msg_id,
            ts,
            from: speaker.nick.clone(),
            account: speaker.account.clone(),
            to: to.clone(),
            tags,
        };
        match (to, target) {
            (_, Some(target)) => {
                self.send(target, &Outgoing::new(event));
                self.read_as_recipient(id, target);
            }
            (NoticeTarget::Room(room), None) => self.publish(room, event, Some(id)),
            (NoticeTarget::Nick(nick), None) => {
                if let Some(elsewhere) = elsewhere {
                    let from = DirectSender::new(id, &event, reference);
                    self.bus
                        .direct(from, elsewhere, event)
                        .map_err(|why| undelivered(&nick, why))?;
                }
            }
        }
        Ok(Some(Event::Ack {
            id: msg_id,
            seq: None,
            ts,
        }))
    }

    /// When session `id` just sent `target` something and is `target` itself, what it was
    /// sent is its copy as recipient: the answer to its command begins after it.
    fn read_as_recipient(&mut self, id: SessionId, target: SessionId) {
        if id == target {
            self.answers_from = Some(self.next_order);
        }
    }

    /// A private message or notice, the answer to `reference`; a message to someone away
    /// is answered with their away message too.
    fn private(
        &mut self,
        id: SessionId,
        to: Nick,
        text: MessageText,
        notice: bool,
        reference: Option<String>,
    ) -> Reply {
        self.may_talk(id)?;
        let Some(target) = self.nicks.get(&to, &self.sessions) else {
            return match self.directory.holder(&to) {
                Some(elsewhere) => self
                    .private_elsewhere(id, elsewhere, to, text, notice, reference)
                    .map(Some),
                None => Err((ErrorCode::NoSuchNick, format!("nobody is called {to}"))),
            };
        };
        let (msg_id, ts) = (self.mint.message(), now_ms());
        let speaker = self.sessions.get_mut(&id).expect("checked by apply");
        speaker.spoke = ts;
        let (from, account) = (speaker.nick.clone(), speaker.account.clone());
        let recipient = &self.sessions[&target];
        let (to, away) = (recipient.nick.clone(), recipient.away.clone());
        let private = Event::Private {
            id: msg_id,
            ts,
            from,
            to: to.clone(),
            text,
            notice,
            account,
            tags: self.tags.take(),
        };
        self.metrics.received(MessageKind::Private);
        self.metrics.delivered(1);
        self.send(target, &Outgoing::new(private));
        self.read_as_recipient(id, target);
        // A notice is never answered automatically, not even with an away message.
        if let Some(message) = away.filter(|_| !notice) {
            let away = Event::Away {
                nick: to,
                message: Some(message),
                you: false,
            };
            self.send(id, &Outgoing::reply(away, reference));
        }
        Ok(Some(Event::Ack {
            id: msg_id,
            seq: None,
            ts,
        }))
    }

    /// A private message to session `to` of another node, carried by the bus; answered
    /// with its acknowledgement, and with their away message (as their node last told)
    /// as a message to someone here is. Refused when the bus cannot carry it now.
    fn private_elsewhere(
        &mut self,
        id: SessionId,
        to: SessionId,
        nick: Nick,
        text: MessageText,
        notice: bool,
        reference: Option<String>,
    ) -> Result<Event, (ErrorCode, String)> {
        let (msg_id, ts) = (self.mint.message(), now_ms());
        let speaker = self.sessions.get_mut(&id).expect("checked by apply");
        speaker.spoke = ts;
        let private = Event::Private {
            id: msg_id,
            ts,
            from: speaker.nick.clone(),
            to: nick.clone(),
            text,
            notice,
            account: speaker.account.clone(),
            tags: self.tags.take(),
        };
        let from = DirectSender::new(id, &private, reference.clone());
        self.bus
            .direct(from, to, private)
            .map_err(|why| undelivered(&nick, why))?;
        self.metrics.received(MessageKind::Private);
        let away = self.directory.whois(&nick).and_then(|w| w.away);
        if let Some(message) = away.filter(|_| !notice) {
            let away = Event::Away {
                nick,
                message: Some(message),
                you: false,
            };
            self.send(id, &Outgoing::reply(away, reference));
        }
        Ok(Event::Ack {
            id: msg_id,
            seq: None,
            ts,
        })
    }

    /// Sets `+i` as asked, drops `+o` if asked (only OPER gives it), and answers with the
    /// modes and what changed.
    fn user_modes(&mut self, id: SessionId, invisible: Option<bool>, oper: Option<bool>) -> Event {
        let session = self.sessions.get_mut(&id).expect("checked by apply");
        let mut changed = String::new();
        if let Some(on) = invisible.filter(|&on| on != session.invisible) {
            session.invisible = on;
            changed.push_str(if on { "+i" } else { "-i" });
            self.invisible_sessions = if on {
                self.invisible_sessions + 1
            } else {
                self.invisible_sessions - 1
            };
        }
        if oper == Some(false) && session.oper {
            session.oper = false;
            self.oper_sessions -= 1;
            changed.push_str("-o");
        }
        if !changed.is_empty() {
            self.tell_profile(id);
        }
        let session = &self.sessions[&id];
        Event::UserModes {
            nick: session.nick.clone(),
            invisible: session.invisible,
            oper: session.oper,
            changed,
        }
    }

    /// How many are connected now, at most, and how many rooms there are; here and on
    /// every node of a cluster.
    pub fn census(&self) -> Census {
        let others = self.directory.others();
        let users = self.sessions.len();
        let global_users = users + others.users;
        Census {
            users,
            opers: self.oper_sessions + self.directory.opers(),
            peak: self.peak_sessions,
            rooms: self.rooms.len(),
            global_users,
            global_invisible: self.invisible_sessions + others.invisible,
            global_peak: others.peak.max(self.peak_sessions).max(global_users),
            servers: 1 + others.nodes,
        }
    }

    /// What `asker` may know of `nick`: not the secret rooms it is outside.
    fn whois(&self, asker: SessionId, nick: Nick) -> Reply {
        let Some(target) = self.nicks.get(&nick, &self.sessions) else {
            return match self.directory.whois(&nick) {
                Some(mut whois) => {
                    whois
                        .rooms
                        .retain(|(room, _)| !self.hidden_from(asker, room));
                    Ok(Some(Event::Whois(Box::new(whois))))
                }
                None => Err((ErrorCode::NoSuchNick, format!("nobody is called {nick}"))),
            };
        };
        let session = &self.sessions[&target];
        let rooms = session
            .rooms
            .iter()
            .filter(|name| !self.hidden_from(asker, name))
            .filter_map(|name| {
                let room = self.rooms.get(name)?;
                Some((room.name.clone(), room.standing(target)))
            })
            .collect();
        Ok(Some(Event::Whois(Box::new(Whois {
            nick: session.nick.clone(),
            rooms,
            away: session.away.clone(),
            user: session.user.clone(),
            realname: session.realname.clone(),
            account: session.account.clone(),
            oper: session.oper,
            signon: session.signon,
            idle: now_ms().saturating_sub(session.spoke),
        }))))
    }

    /// Marks `id` away or back, tells it so, and tells each session it shares a room with,
    /// once however many rooms they share.
    fn set_away(&mut self, id: SessionId, message: Option<MessageText>) -> Reply {
        let message = message.and_then(|m| m.cut(crate::limits::AWAYLEN));
        let session = self.sessions.get_mut(&id).expect("checked by apply");
        session.away = message.clone();
        let nick = session.nick.clone();
        self.tell_profile(id);
        let mut told = HashSet::new();
        for name in self.sessions[&id].rooms.clone() {
            let Some(room) = self.rooms.get(&name) else {
                continue;
            };
            told.extend(room.members.keys().copied().filter(|m| *m != id));
        }
        let changed = Outgoing::new(Event::AwayChanged {
            nick: nick.clone(),
            message: message.clone(),
        });
        for member in told {
            self.send(member, &changed);
        }
        Ok(Some(Event::Away {
            nick,
            message,
            you: true,
        }))
    }

    /// Leaves every room, as IRC's `JOIN 0` does: each leave answered as `/leave` is.
    fn leave_all(&mut self, id: SessionId, message: Option<MessageText>) -> Reply {
        for room in self.sessions[&id].rooms.clone() {
            let left = self.leave(id, Some(room), message.clone());
            self.answer(id, left, None);
        }
        Ok(None)
    }

    fn rename(&mut self, id: SessionId, new: Nick) -> Reply {
        let old = self.sessions[&id].nick.clone();
        self.may_hold(&new, self.account_of(id))?;
        if let Some(holder) = self.holder(&new)
            && holder != id
        {
            let taken = self.taken(&new, holder);
            return Err((
                ErrorCode::NickTaken,
                format!("{taken}; you are still {old}"),
            ));
        }
        self.nicks.remove(id, &old);
        self.sessions.get_mut(&id).expect("session exists").nick = new.clone();
        self.nicks.insert(id, &self.sessions);
        self.directory.renamed(&old, &new, id);
        // Everyone sharing a room hears it once, however many rooms they share.
        let mut told = HashSet::from([id]);
        let notice = Outgoing::new(Event::NickChanged {
            old: old.clone(),
            new: new.clone(),
            you: false,
        });
        let rooms = self.sessions[&id].rooms.clone();
        for room in rooms {
            let target = &self.rooms[&room];
            // The room's members on every node decide, so every node decides alike.
            let members = target.members.len() + self.directory.count(&room);
            if !target.settings.announces(members) {
                continue;
            }
            let members: Vec<_> = target
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

    /// Whether session `id` may join `room`: within its own bound and, for a room that
    /// does not exist yet, the server's.
    fn may_join(&self, id: SessionId, room: &RoomName) -> Result<(), Failure> {
        let held = self.sessions[&id].rooms.len();
        if held >= self.max_rooms_per_session {
            return Err((
                ErrorCode::TooManyRooms,
                format!(
                    "you are in {held} room{}, the most one connection may be in; /leave one \
                     before joining {room}",
                    if held == 1 { "" } else { "s" }
                ),
            ));
        }
        // Kept rooms and #lobby are the server's own, not counted against the bound.
        let own = self.kept_rooms + 1;
        if !self.rooms.contains_key(room)
            && *room != RoomName::lobby()
            && self.rooms.len() >= self.max_rooms + own
        {
            return Err((
                ErrorCode::TooManyRooms,
                format!(
                    "the server has {} rooms, as many as it keeps; join one that exists",
                    self.max_rooms
                ),
            ));
        }
        Ok(())
    }

    pub fn join(
        &mut self,
        id: SessionId,
        room: RoomName,
        key: Option<String>,
        reference: Option<String>,
        resume: Option<Resume>,
    ) -> Result<(), Failure> {
        let already = self.sessions[&id].rooms.contains(&room);
        if !already {
            self.may_join(id, &room)?;
        }
        // A room with members on other nodes only is theirs too: made here, not founded.
        let made = !self.rooms.contains_key(&room);
        let alone = made && self.directory.members(&room).is_empty();
        let account = self.sessions[&id].account.clone();
        let target = self.make_room(&room);
        // The first member of a room a user makes is its operator, unless the room kept
        // operators' accounts from before; #lobby is the server's.
        let founder = alone && room != RoomName::lobby() && target.op_accounts.is_empty();
        if !already {
            let target = &self.rooms[&room];
            let entered = if founder {
                self.may_found(id, target, key.as_deref())
            } else {
                self.may_enter(id, target, key.as_deref())
            };
            if let Err(refused) = entered {
                if made {
                    self.rooms.remove(&room);
                }
                return Err(refused);
            }
        }
        let target = self.rooms.get_mut(&room).expect("made above");
        // The room's own name from here on: its spelling, and its one shared string rather
        // than a copy per member.
        let room = target.name.clone();
        let session = self.sessions.get_mut(&id).expect("session exists");
        let mut rooms = std::mem::take(&mut session.rooms).into_vec();
        rooms.retain(|r| r != &room);
        rooms.push(room.clone());
        session.rooms = rooms.into_boxed_slice();
        let nick = session.nick.clone();
        let recipient = session.recipient.clone();
        if already && let Some(resume) = resume {
            return self.resume_member(id, &room, resume, reference);
        }
        // Made operator again as its account came back: told after the join.
        let mut restored = false;
        if !already {
            let replay = resume.map(|resume| self.replay(&room, resume));
            let target = self.rooms.get_mut(&room).expect("made above");
            let resumed = replay.is_some();
            let (gap, messages) = match replay {
                Some(replay) => replay,
                None => (None, self.store.recent(&room, None)),
            };
            recipient.follow(target.log.follow(id));
            target.members.insert(id, recipient);
            target.invited.retain(|&invited| invited != id);
            if founder {
                target.ops.insert(id, ());
                target.remember_op(account.as_ref());
                if account.is_some() {
                    self.store.keep_room(&room, target.kept());
                }
                if self.bus_numbers {
                    // Another node's user may found it at the same moment: the cluster
                    // decides which one is its operator (`Hub::founding_lost`).
                    self.bus.found(&room, id, account.clone());
                }
            } else if target.has_op_account(account.as_ref()) {
                // An operator's account is one here again, whichever session it comes back in.
                target.ops.insert(id, ());
                restored = true;
            }
            self.directory.joined(&room, id, target.standing(id));
            // The room's members on every node, as the joiner's own line counts them:
            // every node shows this count, the other nodes' members included, and a room
            // announces or not by it, so that every node's members hear the same.
            let count = target.members.len() + self.directory.count(&room);
            let announce = target.settings.announces(count);
            if resumed {
                self.send_replay(id, &room, gap, messages, reference.clone());
            } else if !messages.is_empty() {
                self.send_history(id, &room, messages, reference.clone(), Keep::Newest);
            }
            if announce {
                let joined = Event::Joined {
                    room: room.clone(),
                    nick: nick.clone(),
                    you: false,
                    members: Vec::new(),
                    count,
                    account: self.sessions[&id].account.clone(),
                    away: self.sessions[&id].away.clone(),
                };
                self.publish(room.clone(), joined, Some(id));
            }
            if restored {
                // The members, on every node, see it become operator as they would see
                // `/op`: their member lists (IRC clients', the page's) are kept by modes.
                let opped = Event::ModeChanged {
                    room: room.clone(),
                    by: nick.clone(),
                    changes: vec![ModeChange {
                        add: true,
                        mode: Mode::Op(nick.clone()),
                    }],
                };
                self.publish(room.clone(), opped, Some(id));
            }
        }
        let shown = self.rooms[&room].settings.shown_on_join;
        let mut members = self.member_nicks(&room, Some(shown));
        let elsewhere = self.add_elsewhere(&room, &mut members, shown);
        let joined = Event::Joined {
            members,
            count: self.rooms[&room].members.len() + elsewhere,
            room: room.clone(),
            nick,
            you: true,
            account: self.sessions[&id].account.clone(),
            away: self.sessions[&id].away.clone(),
        };
        self.send(id, &Outgoing::reply(joined, reference.clone()));
        if let Some(topic) = &self.rooms[&room].topic {
            // Whoever joins hears the topic, after the join (where IRC clients expect it).
            let topic = Event::Topic {
                room: room.clone(),
                topic: Some(topic.clone()),
            };
            self.send(id, &Outgoing::reply(topic, reference));
        }
        let other_nodes = || {
            self.peers
                .as_ref()
                .is_some_and(|p| !p.status(&room).is_empty())
        };
        if !already && (!self.rooms[&room].status.is_empty() || other_nodes()) {
            // A room with feeds greets each newcomer with what they are doing.
            if let Ok(Some(status @ Event::Status { .. })) = self.status(id, Some(room))
                && !matches!(&status, Event::Status { items, .. } if items.is_empty())
            {
                self.send(id, &Outgoing::new(status));
            }
        }
        Ok(())
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
            told_once: false,
        }))
    }

    fn users(&self, id: SessionId, room: Option<RoomName>) -> Reply {
        if let Some(name) = room.as_ref().filter(|r| self.hidden_from(id, r)) {
            return Err((ErrorCode::InvalidRoom, format!("there is no {name}")));
        }
        let room = match room {
            // Anyone may look into an existing room before joining it.
            Some(room) if self.rooms.contains_key(&room) => room,
            Some(room) => {
                // A room with members on other nodes only, the asker not among them: its
                // visible members, as WHO lists them.
                let mut members = self.directory.members(&room);
                if members.is_empty() {
                    return Err((ErrorCode::InvalidRoom, format!("there is no {room}")));
                }
                members.retain(|m| !m.invisible);
                members.sort_unstable_by(|a, b| a.nick.sort_key().cmp(b.nick.sort_key()));
                let away = members.iter().map(|m| m.away).collect();
                let (nicks, standing) = members.into_iter().map(|m| (m.nick, m.standing)).unzip();
                return Ok(Some(Event::Users {
                    nicks,
                    standing,
                    away,
                    secret: self.is_secret(&room),
                    room,
                }));
            }
            None => self.room_of(id, None)?,
        };
        let target = &self.rooms[&room];
        // Invisible members (`+i`) are named to those in the room only, as WHO does.
        let member = target.members.contains_key(&id);
        let mut ids = self.member_ids(&room, None);
        if !member {
            ids.retain(|m| !self.sessions[m].invisible);
        }
        let mut standing: Vec<Standing> = ids.iter().map(|m| target.standing(*m)).collect();
        let mut away: Vec<bool> = ids
            .iter()
            .map(|m| self.sessions[m].away.is_some())
            .collect();
        let mut nicks = self.nicks_of(ids);
        let mut elsewhere = self.directory.members(&room);
        if !member {
            elsewhere.retain(|m| !m.invisible);
        }
        if !elsewhere.is_empty() {
            // Members of other nodes are operators, voiced or away as their nodes told.
            let mut all: Vec<(Nick, (Standing, bool))> = nicks
                .into_iter()
                .zip(standing.into_iter().zip(away))
                .collect();
            all.extend(
                elsewhere
                    .into_iter()
                    .map(|m| (m.nick, (m.standing, m.away))),
            );
            all.sort_unstable_by(|a, b| a.0.sort_key().cmp(b.0.sort_key()));
            let marks: Vec<(Standing, bool)>;
            (nicks, marks) = all.into_iter().unzip();
            (standing, away) = marks.into_iter().unzip();
        }
        Ok(Some(Event::Users {
            nicks,
            standing,
            away,
            room: target.name.clone(),
            secret: target.modes.secret,
        }))
    }

    /// Every room `id` may see (not the secret ones it is outside), its members and its
    /// topic (for a room only on other nodes, as the cluster last told).
    fn rooms(&self, id: SessionId) -> Event {
        let mut counts: HashMap<RoomName, usize> = self
            .rooms
            .values()
            .map(|room| (room.name.clone(), room.members.len()))
            .collect();
        for (room, members) in self.directory.rooms() {
            *counts.entry(room).or_default() += members;
        }
        counts.retain(|room, _| !self.hidden_from(id, room));
        let mut rooms: Vec<ListedRoom> = counts
            .into_iter()
            .map(|(name, members)| {
                let topic = match self.rooms.get(&name) {
                    Some(room) => room.topic.as_ref().map(|t| t.text.clone()),
                    None => self
                        .directory
                        .kept_room(&name)
                        .and_then(|kept| kept.topic)
                        .map(|t| t.text),
                };
                ListedRoom {
                    name,
                    members,
                    topic,
                }
            })
            .collect();
        rooms.sort_by(|a, b| a.name.sort_key().cmp(b.name.sort_key()));
        Event::Rooms { rooms }
    }

    /// Adds to `nicks` the members of `room` on other nodes, up to `shown` in all;
    /// returns how many there are.
    fn add_elsewhere(&self, room: &RoomName, nicks: &mut Vec<Nick>, shown: usize) -> usize {
        let mut elsewhere: Vec<Nick> = self
            .directory
            .members(room)
            .into_iter()
            .map(|m| m.nick)
            .collect();
        let count = elsewhere.len();
        if count > 0 {
            elsewhere.sort_unstable_by(|a, b| a.sort_key().cmp(b.sort_key()));
            nicks.extend(elsewhere);
            nicks.sort_unstable_by(|a, b| a.sort_key().cmp(b.sort_key()));
            nicks.truncate(shown);
        }
        count
    }

    /// The members' nicks in alphabetical order; only the first `limit` when given.
    fn member_nicks(&self, room: &RoomName, limit: Option<usize>) -> Vec<Nick> {
        self.nicks_of(self.member_ids(room, limit))
    }

    fn nicks_of(&self, ids: Vec<SessionId>) -> Vec<Nick> {
        ids.into_iter()
            .map(|member| self.sessions[&member].nick.clone())
            .collect()
    }

    /// The members in their nicks' alphabetical order; only the first `limit` when given.
    pub(super) fn member_ids(&self, room: &RoomName, limit: Option<usize>) -> Vec<SessionId> {
        // Each key found once, not at every comparison. Keys are unique in a room, so
        // (key, id) pairs sort as the keys do.
        let target = &self.rooms[room];
        let members = target
            .members
            .keys()
            .map(|&member| (self.sessions[&member].nick.sort_key(), member));
        let mut nicks: Vec<(&str, SessionId)> = match limit {
            // A crowd: the first `limit` kept as they come, so a join costs no list as
            // long as the room (allocated anew at every join, such lists left the
            // allocator holding memory on every idle connection).
            Some(limit) if !target.settings.announces(target.members.len()) => {
                first(members, limit)
            }
            _ => members.collect(),
        };
        if let Some(limit) = limit.filter(|&l| l < nicks.len()) {
            // Linear selection, so a join costs no full sort.
            nicks.select_nth_unstable(limit);
            nicks.truncate(limit);
        }
        nicks.sort_unstable();
        nicks.into_iter().map(|(_, member)| member).collect()
    }

    /// Takes session `id` out of `room` and tells the members left behind.
    pub fn part(&mut self, id: SessionId, room: &RoomName, reason: &LeaveReason) {
        self.part_as(id, room, Some(reason));
    }

    /// [`ChatState::part`]; with no `reason`, the members are not told (a kick was
    /// announced already).
    pub fn part_as(&mut self, id: SessionId, room: &RoomName, reason: Option<&LeaveReason>) {
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        let mut rooms = std::mem::take(&mut session.rooms).into_vec();
        rooms.retain(|r| r != room);
        session.rooms = rooms.into_boxed_slice();
        let nick = session.nick.clone();
        // What it was sent in the room before it left still reaches it; not when it is
        // being disconnected for falling behind.
        let hand_over = reason.is_none_or(|r| *r != LeaveReason::SendQueueExceeded);
        self.stop_reading(id, room, hand_over);
        let Some(target) = self.rooms.get_mut(room) else {
            return;
        };
        target.members.remove(&id);
        self.directory.parted(room, id);
        target.ops.remove(&id);
        target.voiced.remove(&id);
        let name = target.name.clone();
        // Counted with the members of every node, as a join is.
        let announce = target
            .settings
            .announces(target.members.len() + 1 + self.directory.count(room));
        if target.members.is_empty() && !target.kept && *room != RoomName::lobby() {
            // A room lives while someone is in it; #lobby always does.
            self.rooms.remove(room);
            if !self.bus_numbers {
                self.store.forget(room);
                return;
            }
            // Members of other nodes may still be there to hear it, and its history is the
            // cluster's: kept. A user of any node may found it again.
            self.bus.ended(room);
        }
        let Some(reason) = reason else {
            return;
        };
        if !announce {
            return;
        }
        let left = Event::Left {
            room: name,
            nick,
            you: false,
            reason: reason.clone(),
            // Only a session ending leaves for another reason, and it told its quit first
            // ([`ChatState::tell_quit`]).
            told_once: !matches!(reason, LeaveReason::Left(_)),
        };
        self.publish(room.clone(), left, None);
    }

    /// Parts at most `most` of session `id`'s rooms, the last joined first; true once it
    /// is in none (or gone).
    pub fn part_some(&mut self, id: SessionId, reason: &LeaveReason, most: usize) -> bool {
        let Some(session) = self.sessions.get(&id) else {
            return true;
        };
        let rooms: Vec<RoomName> = session.rooms.iter().rev().take(most).cloned().collect();
        for room in &rooms {
            self.part(id, room, reason);
        }
        self.sessions.get(&id).is_none_or(|s| s.rooms.is_empty())
    }

    /// Tells every session sharing an announcing room with session `id` that it quits,
    /// once however many rooms they share (as a nick change is told): to be called before
    /// it parts its rooms with `reason`, whose leaves are then marked told.
    pub fn tell_quit(&mut self, id: SessionId, reason: &LeaveReason) {
        let Some(session) = self.sessions.get(&id) else {
            return;
        };
        let mut told = HashSet::from([id]);
        let mut members = Vec::new();
        for room in &session.rooms {
            let Some(target) = self.rooms.get(room) else {
                continue;
            };
            // Counted as its leave will be: it is still a member here.
            if !target
                .settings
                .announces(target.members.len() + self.directory.count(room))
            {
                continue;
            }
            for (member, recipient) in &target.members {
                if told.insert(*member) {
                    members.push((*member, recipient.clone()));
                }
            }
        }
        if members.is_empty() {
            return;
        }
        let quit = Outgoing::new(Event::Quit {
            nick: session.nick.clone(),
            reason: reason.clone(),
        });
        for (member, recipient) in members {
            self.deliver(member, &*recipient, &quit);
        }
    }

    /// Removes session `id` (all its rooms at once) and says goodbye.
    pub fn remove(&mut self, id: SessionId, reason: LeaveReason) {
        self.tell_quit(id, &reason);
        self.part_some(id, &reason, usize::MAX);
        let Some(session) = self.sessions.remove(&id) else {
            return;
        };
        if reason == LeaveReason::SendQueueExceeded {
            self.metrics.send_queue_overflowed();
        }
        self.invisible_sessions -= usize::from(session.invisible);
        self.oper_sessions -= usize::from(session.oper);
        self.nicks.remove(id, &session.nick);
        self.directory.released(&session.nick, id);
        self.goodbye(id, session.recipient, session.owed, reason);
    }

    /// Sends `room`'s `messages` to `id` as one history answer, cut to what its send queue
    /// takes: an answer bigger than the queue would put its asker out for "send queue
    /// exceeded" before it read a line of it. `keep` says which end stays.
    pub fn send_history(
        &mut self,
        id: SessionId,
        room: &RoomName,
        messages: Vec<Entry>,
        reference: Option<String>,
        keep: Keep,
    ) {
        if let Some(answer) = self.fitted_history(id, room, messages, reference, keep) {
            self.send(id, &answer);
        }
    }

    /// [`ChatState::send_history`]'s answer, cut to fit, unsent; `None` when `id` is gone.
    pub fn fitted_history(
        &self,
        id: SessionId,
        room: &RoomName,
        mut messages: Vec<Entry>,
        reference: Option<String>,
        keep: Keep,
    ) -> Option<Outgoing> {
        let recipient = &self.sessions.get(&id)?.recipient;
        loop {
            let count = messages.len();
            let history = Event::History {
                room: room.clone(),
                messages,
            };
            let answer = Outgoing::reply(history, reference.clone());
            if count <= 1 || recipient.fits(&answer) {
                return Some(answer);
            }
            let Event::History { messages: back, .. } = answer.event else {
                unreachable!("made above")
            };
            messages = back;
            match keep {
                Keep::Newest => drop(messages.drain(..count / 2)),
                Keep::Oldest => messages.truncate(count - count / 2),
            }
        }
    }

    pub fn send(&mut self, id: SessionId, event: &Outgoing) {
        if let Some(session) = self.sessions.get(&id) {
            let recipient = session.recipient.clone();
            self.deliver(id, &*recipient, event);
        }
    }

    /// Hands `event` for `room`'s members but `except` to the bus, and on to this node's
    /// members when the bus gives it back at once.
    pub fn publish(&mut self, room: RoomName, event: Event, except: Option<SessionId>) {
        let publication = Publication {
            room,
            event,
            except,
        };
        if let Some(publication) = self.bus.publish(publication) {
            self.heard_at_once(publication);
        }
    }

    /// Hands a message or a feed's post to a bus that numbers them
    /// ([`Bus::publish_numbered`]); [`BusFull`] when it could not take it: nobody hears it.
    pub fn publish_numbered(
        &mut self,
        room: RoomName,
        event: Event,
        except: Option<SessionId>,
    ) -> Result<(), BusFull> {
        let publication = Publication {
            room,
            event,
            except,
        };
        if let Some(publication) = self.bus.publish_numbered(publication)? {
            self.heard_at_once(publication);
        }
        Ok(())
    }

    /// What the bus gave back to be heard here at once.
    fn heard_at_once(&mut self, mut publication: Publication) {
        if !self.bus_numbers {
            return self.fan_out(publication);
        }
        // The cluster is out of reach: numbered here, heard here at once.
        match &mut publication.event {
            Event::Message(said) => said.seq = 0,
            Event::Posted(posted) => posted.seq = 0,
            _ => {}
        }
        self.receive(publication);
    }

    /// Keeps a message heard from the bus, which nobody waits an ack for; one the store
    /// cannot take is still heard, and logged.
    fn keep_heard(&mut self, entry: Entry) {
        if self.store.append(entry, None).is_err() {
            tracing::warn!("history cannot keep up: a message from the cluster is heard, not kept");
        }
    }

    /// Numbers a message heard from the bus in `room` when the bus could not (`seq` 0), or
    /// raises the room's count to the number it came with; false when it came unnumbered
    /// for a room not here, which nothing can number.
    fn number_heard(&mut self, room: &RoomName, seq: &mut u64) -> bool {
        if *seq == 0 {
            if !self.rooms.contains_key(room) {
                return false;
            }
            *seq = self.next_seq(room);
        } else if let Some(target) = self.rooms.get_mut(room) {
            target.seq = Some(target.seq.unwrap_or(0).max(*seq));
        }
        true
    }

    /// A publication the bus carried here. A message is kept in the history of its room,
    /// whether or not the room has members here, so that a newcomer or a resume on any
    /// node finds it; numbered here if the bus could not (0).
    pub fn receive(&mut self, mut publication: Publication) {
        if let Event::Posted(posted) = &mut publication.event {
            if !self.number_heard(&posted.room, &mut posted.seq) {
                return;
            }
            self.keep_heard(Entry::Posted(posted.clone()));
            if !self.numbering.is_empty()
                && let Some(waiting) = self.numbering.remove(&posted.id)
            {
                let _ = waiting.send(Some(posted.seq));
            }
        }
        if let Event::Message(said) = &mut publication.event {
            // This node's own, numbered by the bus, yet heard here already as its sending
            // failed (held): the bus handed this copy over before the failure was known.
            // Heard once; the bus has it, so its speaker is acked now. (Nothing held, as
            // is usual, nothing is looked up.)
            if said.seq != 0 && !self.held.is_empty() && self.held.remove(&said.id) {
                let owed = self.unheard.remove(&said.id);
                self.settle_acks(owed.into_iter().collect(), true);
                return;
            }
            if !self.number_heard(&said.room, &mut said.seq) {
                return;
            }
            self.keep_heard(Entry::Said(said.clone()));
            if let Some(owed) = self.unheard.get_mut(&said.id) {
                owed.seq = Some(said.seq);
                // One held through an outage is acked once the bus has it after all.
                if !self.held.contains(&said.id) {
                    let owed = self.unheard.remove(&said.id).expect("found above");
                    let ack = owed.ack();
                    self.pay(owed, ack);
                }
            }
        }
        self.fan_out(publication);
    }

    /// Appends a publication to the room's log for every member here but its `except`,
    /// and wakes the members whose connections wait for more. Every
    /// [`LOG_CHECK_EVERY`](crate::limits::LOG_CHECK_EVERY) messages the log drops what all
    /// have read, and whoever has fallen too far behind is disconnected.
    pub fn fan_out(&mut self, publication: Publication) {
        let Publication {
            room,
            event,
            except,
        } = publication;
        let order = self.next_order();
        let Some(target) = self.rooms.get(&room) else {
            return;
        };
        let mut probe = None;
        if matches!(event, Event::Message(_) | Event::Posted(_)) {
            let sender_here = except.is_some_and(|id| target.members.contains_key(&id));
            let readers = target.members.len() - usize::from(sender_here);
            self.metrics.delivered(readers as u64);
            let now = Instant::now();
            if readers > 0 && self.sampler.due(now) {
                probe = Some(self.metrics.probe(self.taken.unwrap_or(now), readers));
            }
        }
        let due = target
            .log
            .append_probed(order, except, Outgoing::new(event), probe);
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
    pub fn stop_reading(&mut self, id: SessionId, room: &RoomName, hand_over: bool) {
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

    /// The number of the next entry in `room`, which exists. The room's first asks the
    /// store for the last it kept, once, so a room that ended and began again (or a
    /// server restarted on the same store) continues its numbers.
    pub fn next_seq(&mut self, room: &RoomName) -> u64 {
        let target = self.rooms.get_mut(room).expect("the room exists");
        let store = &self.store;
        let seq = target.seq.get_or_insert_with(|| store.last_seq(room));
        *seq += 1;
        *seq
    }

    pub fn next_order(&mut self) -> u64 {
        let order = self.next_order;
        self.next_order += 1;
        order
    }

    /// Disconnects every session that could not keep up. Telling their rooms may overflow
    /// more queues, so this runs until none is left.
    pub fn settle(&mut self) {
        while let Some(id) = self.overflowed.pop() {
            self.remove(id, LeaveReason::SendQueueExceeded);
        }
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

/// Which end of a history answer [`ChatState::send_history`] keeps when it must cut it.
#[derive(Clone, Copy)]
pub enum Keep {
    /// The newest: a replay on joining, `/history N` (older ones are read back a page at
    /// a time).
    Newest,
    /// The oldest: `/history since ID`, asked again from the last id for more.
    Oldest,
}

/// Why what was sent to `nick`, a user of another node, was not: told to its sender.
pub(super) fn undelivered(nick: &Nick, why: Undelivered) -> (ErrorCode, String) {
    match why {
        Undelivered::OutOfReach => (
            ErrorCode::NotDelivered,
            format!(
                "not delivered to {nick}: cross-node delivery interrupted ({nick} is on another node, out of reach until it is restored); send it again then"
            ),
        ),
        Undelivered::Full => (
            ErrorCode::StoreUnavailable,
            format!(
                "the server cannot relay messages to the other nodes right now (its queue to Redis is full); nothing was sent to {nick}: try again in a moment"
            ),
        ),
    }
}
