//! Rooms, members, nicks and what they say: the chat's rules, with no sockets and no wire
//! formats.
//!
//! A session is a [`Recipient`] to queue [`Outgoing`] events on, and a [`Command`] is what it
//! asks for. The hub reaches beyond this process only through its edges: what happens in a
//! room goes out through a [`Bus`], history is kept by a [`HistoryStore`], and a
//! [`Directory`] says who holds a nick on other nodes. One lock guards the state, held only
//! inside the short, non-async methods below, never across an `.await`. Queuing never
//! blocks: a recipient whose queue is full is disconnected ("send queue exceeded") before
//! the lock is released.
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

mod accounts;
mod alerts;
mod bus;
mod calls;
mod chat;
mod chathistory;
mod command;
mod directory;
mod elsewhere;
mod event;
mod gauges;
mod ids;
mod names;
mod nicks;
mod ops;
mod post;
mod resume;
mod room;
mod secret;
mod store;
mod tags;
mod text;
mod who;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::task::Waker;
use std::time::Instant;

pub use accounts::{AccountError, AccountStore, MemoryAccounts};
pub use bus::{Bus, BusFull, DirectSender, LocalBus, Publication, Undelivered};
pub use calls::{
    AlertAction, AlertDesk, AlertPeers, Answered, Beat, CallAnswer, Caller, Gathered, Heartbeats,
    PeerCall, Took,
};
pub use chat::Failure;
pub use chathistory::{Mark, Window};
pub use command::{Command, NoticeTarget, Request, WhoOf};
pub use directory::{Alone, Directory, Others, Profile, Seen};
pub use event::{
    AccountNews, Census, Encode, Encoded, ErrorCode, Event, FormatKey, GapCause, LeaveReason,
    ListedRoom, Outgoing, Said, WhoEntry, Whois,
};
pub use ids::{MAX_NODES, NodeId, SessionId};

/// The stamps the hub gave out while carrying out one request: everything it sent, to
/// anyone, is ordered by one of them, so what a connection was sent in answer is what it
/// was sent stamped within them.
pub type Stamps = std::ops::Range<u64>;
pub use names::{NameError, Nick, RoomName};
pub use ops::{Ban, BanMask, Mode, ModeChange, Modes, Standing, Topic, describe_changes};
pub use post::{
    Entry, Field, MAX_SOURCE_CHARS, NoSuchRoom, Notice, PostKind, Posted, RoomStatus, Source,
    Unposted,
};
pub use room::{KeptRoom, RoomChange, RoomSettings, forget_account};
pub use store::{
    AckSink, FiringAlert, HistoryBounds, HistoryStore, MemoryHistory, Owed, StoreFull, stored_bytes,
};
pub use tags::{ClientTags, TagsTooLong};
pub use text::{MessageText, sanitize};
pub use who::WhoMask;

use crate::fanout::{Level, Ordered, OrderedGuard, Recipient};
use crate::limits::{CHATHISTORY_MAX, HISTORY_SINCE_MAX, Limits};
use crate::metrics::{FanoutSampler, MessageKind, Metrics};
use chat::{ChatState, Keep, now_ms};
use ids::Mint;
use nicks::NickTable;

/// Rooms a leaving session parts under one hold of the lock: a session in many rooms
/// leaves them a few at a time, and others are served in between.
const ROOMS_PARTED_PER_LOCK: usize = 8;

/// A map keyed by session. The ids are the server's own, never chosen by a client, so
/// they need no keyed hash to resist flooding (names, which clients choose, keep std's
/// SipHash).
pub(crate) type BySession<V> = HashMap<SessionId, V, foldhash::fast::FixedState>;

/// Wakes the connections a message gave something to write; it drains the list it is given.
/// Called with the hub's lock held: it must be short.
pub type WakeAll = dyn Fn(&mut Vec<Waker>) + Send + Sync;

/// Where a post's number comes from once a cluster's bus gives it ([`Hub::post_numbered`]):
/// `None` when the bus holds the post instead.
pub type Numbering = tokio::sync::oneshot::Receiver<Option<u64>>;

/// The error for an account request from a session logged in to none.
pub fn not_logged_in() -> (ErrorCode, String) {
    (
        ErrorCode::NotLoggedIn,
        "you are not logged in: /login NICK PASSWORD, or /register PASSWORD".to_string(),
    )
}

/// Which of a room's history a `/history` asks for.
enum Ask {
    /// The last N, or all kept.
    Recent(Option<usize>),
    /// Every entry after this id, up to [`HISTORY_SINCE_MAX`].
    Since(u64),
    /// A window of what is kept (IRC's CHATHISTORY).
    Window(Window, usize),
}

/// What the hub reaches beyond this process through.
pub struct Edges {
    /// This server's number in its cluster; ids it mints carry it.
    pub node: NodeId,
    pub store: Arc<dyn HistoryStore>,
    pub bus: Arc<dyn Bus>,
    pub directory: Arc<dyn Directory>,
    /// Where the hub counts, and what `GET /metrics` shows; the server and the feeds count
    /// into the same one ([`Hub::metrics`]).
    pub metrics: Arc<Metrics>,
    pub accounts: Arc<dyn AccountStore>,
}

impl Edges {
    /// A server alone, keeping history in memory within `limits`.
    pub fn alone(limits: &Limits) -> Edges {
        Edges {
            node: NodeId::default(),
            store: Arc::new(MemoryHistory::new(limits.history_bounds())),
            bus: Arc::new(LocalBus),
            directory: Arc::new(Alone),
            metrics: Metrics::new(),
            accounts: Arc::new(MemoryAccounts::default()),
        }
    }
}

/// The status of this node's checks and heartbeats, by room ([`RoomStatus::shared`]).
type SharedStatus = Vec<(RoomName, Arc<dyn RoomStatus>)>;

/// A cheap-to-clone handle on the shared chat state.
#[derive(Clone)]
pub struct Hub {
    chat: Arc<Ordered<ChatState>>,
    /// The same store the chat keeps, asked without the lock.
    store: Arc<dyn HistoryStore>,
    metrics: Arc<Metrics>,
    accounts: Arc<dyn AccountStore>,
    /// Where jobs' calls go, once a feed keeps heartbeats.
    heartbeats: Arc<std::sync::OnceLock<Arc<dyn Heartbeats>>>,
    /// The feeds whose alerts people may acknowledge and silence.
    desks: Arc<std::sync::Mutex<Vec<Arc<dyn AlertDesk>>>>,
    /// The other nodes' checks and heartbeats (`--cluster`); unset on a node alone.
    peers: Arc<std::sync::OnceLock<Arc<dyn AlertPeers>>>,
    /// This node's checks and heartbeats, by room, as the other nodes are told them.
    shared: Arc<std::sync::Mutex<SharedStatus>>,
}

impl Hub {
    /// A hub alone, with history in memory, bounded as `limits` says.
    pub fn new(limits: &Limits) -> Hub {
        Hub::with_edges(limits, Edges::alone(limits))
    }

    /// A hub reaching beyond this process through `edges`.
    pub fn with_edges(limits: &Limits, edges: Edges) -> Hub {
        let store = edges.store.clone();
        let metrics = edges.metrics.clone();
        let registered = edges.accounts.names().unwrap_or_else(|e| {
            // Registered nicks go unprotected until a restart reads them: said loudly.
            tracing::error!(error = %e, "cannot read the accounts; no nick is protected");
            Vec::new()
        });
        let chat = ChatState {
            registered: registered.into_iter().collect(),
            require_account: false,
            sessions: BySession::default(),
            nicks: NickTable::default(),
            rooms: HashMap::new(),
            mint: Mint::after(edges.node, edges.store.last_id(edges.node)),
            next_order: 1,
            next_guest: 1,
            guest_prefix: match edges.node.number() {
                0 => "guest-".into(),
                n => format!("guest-{n}-").into(),
            },
            peak_sessions: 0,
            invisible_sessions: 0,
            oper_sessions: 0,
            overflowed: Vec::new(),
            woken: Vec::new(),
            wake: Arc::new(|woken: &mut Vec<Waker>| woken.drain(..).for_each(Waker::wake)),
            shut_down: false,
            store: edges.store,
            bus_numbers: edges.bus.numbers_messages(),
            unheard: HashMap::new(),
            closing: BySession::default(),
            held: HashSet::new(),
            numbering: HashMap::new(),
            bus: edges.bus,
            directory: edges.directory,
            kept_rooms: 0,
            room_settings: RoomSettings::default(),
            max_rooms: limits.max_rooms,
            max_rooms_per_session: limits.max_rooms_per_client,
            metrics: edges.metrics,
            sampler: FanoutSampler::default(),
            taken: None,
            tags: None,
            answers_from: None,
            peers: None,
        };
        let chat = Arc::new(Ordered::new(Level::Hub, chat));
        metrics.add_collector(gauges::HubGauges::of(&chat));
        let weak = Arc::downgrade(&chat);
        store.on_settled(Arc::new(move |owed, kept| {
            if let Some(chat) = weak.upgrade() {
                with_state(&chat, |chat| chat.settle_acks(owed, kept));
            }
        }));
        Hub {
            chat,
            store,
            metrics,
            accounts: edges.accounts,
            heartbeats: Arc::default(),
            desks: Arc::default(),
            peers: Arc::default(),
            shared: Arc::default(),
        }
    }

    /// Makes an admitted connection a session: under `nick`, or a guest nick when `None`,
    /// greeted and put in `#lobby`. Refused when `nick` is taken or registered; the
    /// connection stays unregistered and may try another.
    pub fn register(
        &self,
        recipient: Arc<dyn Recipient>,
        nick: Option<Nick>,
    ) -> Result<SessionId, (ErrorCode, String)> {
        self.register_as(recipient, nick, None, true)
    }

    /// [`Hub::register`], logged in to `account` when the connection proved it owns one
    /// (IRC SASL): then its nick may be the account's, and whoever holds that without the
    /// account is renamed to a guest. Put in `#lobby` only if `lobby` (IRC sessions start
    /// in no room).
    pub fn register_as(
        &self,
        recipient: Arc<dyn Recipient>,
        nick: Option<Nick>,
        account: Option<Nick>,
        lobby: bool,
    ) -> Result<SessionId, (ErrorCode, String)> {
        self.with_chat(|chat| {
            if let Some(nick) = &nick {
                chat.may_hold(nick, account.as_ref())?;
                if let Some(holder) = chat.holder(nick) {
                    // The owner takes its nick back from whoever holds it without the
                    // account; the same account's other sessions keep theirs.
                    if account.is_none() || chat.account_of(holder) == account.as_ref() {
                        return Err((ErrorCode::NickTaken, chat.taken(nick, holder)));
                    }
                    chat.evict(holder);
                }
            }
            let id = chat.mint.session();
            if chat.shut_down {
                // Registered just as the server began shutting down: goodbye at once.
                recipient.close(
                    chat.next_order(),
                    &Outgoing::new(Event::Bye {
                        reason: LeaveReason::ServerShutdown,
                    }),
                );
                return Ok(id);
            }
            let nick = nick.unwrap_or_else(|| chat.guest_nick());
            chat.admit(id, recipient, nick, account, lobby);
            Ok(id)
        })
    }

    /// Carries out one request of session `id`; returns the stamps given out while doing
    /// so, which order everything it sent in answer (IRC's labeled-response finds its
    /// command's replies by them): not the copy of a message to itself, which it reads as
    /// any recipient would.
    pub fn apply(&self, id: SessionId, request: Request) -> Stamps {
        let Request { command, reference } = request;
        match command {
            Command::History { room, limit } => {
                return self.history(id, room, Ask::Recent(limit), reference);
            }
            Command::HistorySince { room, after } => {
                return self.history(id, room, Ask::Since(after), reference);
            }
            Command::HistoryWindow {
                room,
                window,
                limit,
            } => return self.history(id, room, Ask::Window(window, limit), reference),
            Command::Resume { room, after } => return self.resume(id, room, after, reference),
            Command::Beat { name, beat } => {
                let caller = Caller::Session {
                    id,
                    reference: reference.clone(),
                };
                return match self.beat(&name, &beat, caller) {
                    Took::Now(answer) => self.answer_call(id, answer, reference),
                    // Answered once the other nodes did.
                    Took::Sent(_) => 0..0,
                };
            }
            Command::Alert { name, action } => {
                return self.alert_action(id, &name, &action, reference);
            }
            _ => {}
        }
        // A message's fan-out is timed from here, before waiting for the lock.
        let taken = matches!(command, Command::Say { .. }).then(Instant::now);
        self.stamped(|chat| {
            chat.taken = taken;
            chat.apply(id, Request { command, reference });
            chat.taken = None;
        })
    }

    /// Answers `/history` with what the store keeps, asked without the hub's lock: a deep
    /// history from disk holds up no one else. Its stamps are those of the refusal or of
    /// the answer, not what others were sent in between.
    fn history(
        &self,
        id: SessionId,
        room: Option<RoomName>,
        ask: Ask,
        reference: Option<String>,
    ) -> Stamps {
        let mut found = None;
        let refused = self.stamped(|chat| {
            if !chat.sessions.contains_key(&id) {
                return;
            }
            found = chat
                .room_of(id, room)
                .map_err(|failure| chat.answer(id, Err(failure), reference.clone()))
                .ok();
        });
        let Some(room) = found else {
            return refused;
        };
        let (messages, keep) = match ask {
            Ask::Recent(limit) => (self.store.recent(&room, limit), Keep::Newest),
            Ask::Since(after) => (
                self.store.since(&room, after, HISTORY_SINCE_MAX),
                Keep::Oldest,
            ),
            Ask::Window(window, limit) => (
                chathistory::from_store(&*self.store, &room, window, limit),
                Keep::Newest,
            ),
        };
        self.stamped(|chat| chat.send_history(id, &room, messages, reference, keep))
    }

    /// Runs `f` under the hub's lock; returns the stamps it gave out in answer: all of
    /// them but the copy of a message a session sent itself ([`ChatState::answers_from`]).
    fn stamped(&self, f: impl FnOnce(&mut ChatState)) -> Stamps {
        self.with_chat(|chat| {
            chat.answers_from = None;
            let first = chat.next_order;
            f(chat);
            chat.answers_from.take().unwrap_or(first)..chat.next_order
        })
    }

    /// Sends `event` to session `id` alone, as the answer to `reference`.
    pub fn reply(&self, id: SessionId, event: Event, reference: Option<String>) -> Stamps {
        self.stamped(|chat| chat.send(id, &Outgoing::reply(event, reference)))
    }

    /// Tells session `id` its nick and rooms again, as the answer to `reference` (a JSON
    /// client's `hello`).
    pub fn welcome(&self, id: SessionId, reference: Option<String>) {
        self.with_chat(|chat| {
            let Some(session) = chat.sessions.get(&id) else {
                return;
            };
            let welcome = Event::Welcome {
                nick: session.nick.clone(),
                rooms: session.rooms.to_vec(),
                census: chat.census(),
            };
            chat.send(id, &Outgoing::reply(welcome, reference));
        });
    }

    /// Removes session `id`, telling its rooms why; does nothing if it is already gone. A
    /// session in many rooms leaves them [`ROOMS_PARTED_PER_LOCK`] at a time, releasing
    /// the lock in between. Its goodbye waits for the acks still owed to it, if any: its
    /// connection stops reading, and closes once they came or it gives up
    /// ([`Hub::close_now`]).
    pub fn disconnect(&self, id: SessionId, reason: LeaveReason) {
        let done = |chat: &mut ChatState| chat.part_some(id, &reason, ROOMS_PARTED_PER_LOCK);
        if !self.with_chat(|chat| {
            chat.tell_quit(id, &reason);
            done(chat)
        }) {
            while !self.with_chat(done) {}
        }
        self.with_chat(|chat| chat.remove(id, reason));
    }

    /// The connection of session `id`, which ended, waits no more for the acks still owed
    /// to it ([`ACK_GRACE`](crate::limits::ACK_GRACE) passed, or it cannot be written):
    /// it is told how many did not come, and its goodbye. Nothing if none were owed.
    pub fn close_now(&self, id: SessionId) {
        self.with_chat(|chat| chat.close_now(id));
    }

    /// Says goodbye to every session and forgets them all; sessions that connect later are
    /// sent away at once. A session owed acks has them first, as they come
    /// ([`Hub::disconnect`]).
    pub fn shutdown(&self) {
        self.with_chat(|chat| {
            chat.shut_down = true;
            let ids: Vec<SessionId> = chat.sessions.keys().copied().collect();
            for id in ids {
                let rooms = chat.sessions[&id].rooms.clone();
                for room in &rooms {
                    chat.stop_reading(id, room, true);
                }
                let session = chat.sessions.remove(&id).expect("listed above");
                let reason = LeaveReason::ServerShutdown;
                chat.goodbye(id, session.recipient, session.owed, reason);
            }
            chat.nicks.clear();
            chat.rooms.clear();
            chat.kept_rooms = 0;
        });
    }

    /// Creates `room` if needed and keeps it even when nobody is in it, so what feeds post
    /// there waits in its history for newcomers. For feeds, at start-up.
    pub fn open_room(&self, room: &RoomName) {
        self.with_chat(|chat| {
            chat.open_room(room);
        });
    }

    /// Whether `room` was opened by a feed or [`Hub::open_room`], and so takes posts that
    /// name it from outside (a UDP datagram's `#room`): a room a user made does not. Such a
    /// room stays until shutdown, so the answer does not go stale.
    pub fn is_kept(&self, room: &RoomName) -> bool {
        self.lock().rooms.get(room).is_some_and(|r| r.kept)
    }

    /// Whether `room` exists now: someone is in it, or a feed opened it.
    pub fn has_room(&self, room: &RoomName) -> bool {
        self.lock().rooms.contains_key(room)
    }

    /// Opens `room` (see [`Hub::open_room`]) and has `status` tell everyone who joins it,
    /// and `/status` there, what its feed is doing.
    pub fn add_status(&self, room: &RoomName, status: Arc<dyn RoomStatus>) {
        self.share_status(room, &status);
        self.with_chat(|chat| chat.open_room(room).status.push(status));
    }

    /// Keeps what Alertmanager says fires in `room` across restarts, where the store can
    /// ([`HistoryStore::keep_firing`]).
    pub fn keep_firing(&self, room: &RoomName, fingerprint: &str, alert: Option<&FiringAlert>) {
        self.store.keep_firing(room, fingerprint, alert);
    }

    /// What [`Hub::keep_firing`] kept, from before this process started.
    pub fn kept_firing(&self) -> Vec<(RoomName, String, FiringAlert)> {
        self.store.kept_firing()
    }

    /// Posts a feed's notice into `room`: remembered in its history and sent to every
    /// member. Returns the post as stamped; [`Unposted::NoSuchRoom`] when the room does not
    /// exist (nobody is in it and no feed opened it), [`Unposted::StoreFull`] when the
    /// store refused it.
    pub fn post(&self, room: &RoomName, notice: Notice) -> Result<Posted, Unposted> {
        self.post_waiting(room, notice, None)
    }

    /// [`Hub::post`], and where a cluster's bus numbers posts, a receiver of the number it
    /// gives this one (`None` when the bus holds it, the other nodes out of reach); drop
    /// it, or [`Hub::forget_numbering`], to stop waiting.
    pub fn post_numbered(
        &self,
        room: &RoomName,
        notice: Notice,
    ) -> Result<(Posted, Option<Numbering>), Unposted> {
        let (tell, told) = tokio::sync::oneshot::channel();
        let numbers = self.lock().bus_numbers;
        let posted = self.post_waiting(room, notice, numbers.then_some(tell))?;
        Ok((posted, numbers.then_some(told)))
    }

    /// Stops waiting for the number of post `id` ([`Hub::post_numbered`]).
    pub fn forget_numbering(&self, id: u64) {
        self.lock().numbering.remove(&id);
    }

    /// [`Hub::post`]; `tell` is told the number a numbering bus gives the post.
    fn post_waiting(
        &self,
        room: &RoomName,
        notice: Notice,
        tell: Option<tokio::sync::oneshot::Sender<Option<u64>>>,
    ) -> Result<Posted, Unposted> {
        self.with_chat(|chat| {
            let here = chat.rooms.get(room).map(|r| r.name.clone());
            // In a cluster a room with members on other nodes only takes posts too.
            let elsewhere = || chat.bus_numbers && !chat.directory.members(room).is_empty();
            let (name, seq) = match here {
                // A cluster's bus numbers it, and it is kept as it comes back (`receive`).
                Some(name) if chat.bus_numbers => (name.clone(), chat.last_seq(&name) + 1),
                Some(name) => (name.clone(), chat.next_seq(&name)),
                None if elsewhere() => (room.clone(), chat.store.last_seq(room) + 1),
                None => return Err(NoSuchRoom(room.clone()).into()),
            };
            let posted = Posted {
                id: chat.mint.message(),
                seq,
                ts: now_ms(),
                room: name.clone(),
                notice: Arc::new(notice),
            };
            if chat.bus_numbers {
                chat.publish_numbered(name, Event::Posted(posted.clone()), None)
                    .map_err(|BusFull| Unposted::StoreFull)?;
                chat.metrics.received(MessageKind::Post);
                if let Some(tell) = tell {
                    chat.numbering.insert(posted.id, tell);
                }
                return Ok(posted);
            }
            chat.keep(Entry::Posted(posted.clone()), None)
                .map_err(|_| Unposted::StoreFull)?;
            chat.metrics.received(MessageKind::Post);
            chat.publish(name, Event::Posted(posted.clone()), None);
            Ok(posted)
        })
    }

    /// What `room` keeps of its history, oldest first: the last `limit` entries (all kept
    /// when `None`), or with `since`, the first `limit` after that message id (at most
    /// [`HISTORY_SINCE_MAX`]), or with `before` (and no `since`) the last `limit` before
    /// that message id (at most [`CHATHISTORY_MAX`]), as `/history` answers them; for readers that are no session
    /// (HTTP `GET /rooms/NAME/messages`). A room nobody is in now still answers what the
    /// store kept of it; one with neither members nor history is [`NoSuchRoom`]. The store
    /// is asked without the hub's lock, as for `/history`.
    pub fn room_history(
        &self,
        room: &RoomName,
        since: Option<u64>,
        before: Option<u64>,
        limit: Option<usize>,
    ) -> Result<(RoomName, Vec<Entry>), NoSuchRoom> {
        let live = self.lock().rooms.get(room).map(|r| r.name.clone());
        let name = live.clone().unwrap_or_else(|| room.clone());
        let entries = match (since, before) {
            (Some(after), _) => {
                let most = limit.map_or(HISTORY_SINCE_MAX, |l| l.min(HISTORY_SINCE_MAX));
                self.store.since(&name, after, most)
            }
            (None, Some(before)) => {
                let most = limit.map_or(CHATHISTORY_MAX, |l| l.min(CHATHISTORY_MAX));
                self.store.before(&name, before, most)
            }
            (None, None) => self.store.recent(&name, limit),
        };
        // A reader caught up (`since` its last id) or at the start (`before` the first) of
        // a room nobody is in gets no entries, yet the room has history: an empty answer,
        // not a missing room.
        let kept = match (&live, entries.first()) {
            (None, None) if since.is_some() || before.is_some() => {
                self.store.recent(&name, Some(1)).into_iter().next()
            }
            _ => None,
        };
        if live.is_none() && entries.is_empty() && kept.is_none() {
            return Err(NoSuchRoom(room.clone()));
        }
        // A room gone since keeps the spelling its history has.
        let name = match (live, entries.first().or(kept.as_ref())) {
            (Some(live), _) => live,
            (None, Some(entry)) => entry.room().clone(),
            (None, None) => name,
        };
        Ok((name, entries))
    }

    /// Hands this node's members of its room a publication the bus carried here (one its
    /// [`Bus::publish`] did not give back at once).
    pub fn receive(&self, publication: Publication) {
        self.with_chat(|chat| chat.receive(publication));
    }

    /// Messages or posts of this node the bus holds (the other nodes out of reach, or
    /// their sending failed), numbered here (`seq` 0) and heard here ([`Hub::receive`]) in
    /// turn; not a message whose copy from the bus was heard already (the bus had
    /// published it before failing: its speaker was acked then). A message's speaker is
    /// acked once the bus has it after all ([`Hub::relayed`]).
    pub fn fell_back(&self, publications: Vec<Publication>) {
        self.with_chat(|chat| {
            for publication in publications {
                match &publication.event {
                    // Held, its ack waits for the bus, told the number it is heard under
                    // here (`Chat::receive`).
                    Event::Message(said) if chat.unheard.contains_key(&said.id) => {
                        chat.held.insert(said.id);
                    }
                    Event::Message(_) => continue,
                    Event::Posted(posted) => {
                        // Numbered here for now: its poster is not told this number.
                        if let Some(waiting) = chat.numbering.remove(&posted.id) {
                            let _ = waiting.send(None);
                        }
                    }
                    _ => {}
                }
                chat.receive(publication);
            }
        });
    }

    /// The bus has these messages of this node, held until now and heard here already
    /// (their copies came back, or the bus had them all along): each speaker still owed
    /// an answer is acked.
    pub fn relayed(&self, ids: Vec<u64>) {
        self.with_chat(|chat| {
            let owed: Vec<Owed> = ids
                .iter()
                .filter_map(|id| {
                    chat.held.remove(id);
                    chat.unheard.remove(id)
                })
                .collect();
            chat.settle_acks(owed, true);
        });
    }

    /// These held messages were sent to the bus again: each is acked as its copy comes
    /// back, as any message is, or told lost if it never does ([`Hub::forget_unheard`]).
    pub fn resent(&self, ids: Vec<u64>) {
        self.with_chat(|chat| {
            for id in &ids {
                chat.held.remove(id);
            }
        });
    }

    /// These held messages will never reach the other nodes (more were said while they
    /// were out of reach than the bus holds): each speaker is told, instead of an ack.
    pub fn not_relayed(&self, ids: Vec<u64>) {
        self.with_chat(|chat| {
            for id in ids {
                chat.held.remove(&id);
                let Some(owed) = chat.unheard.remove(&id) else {
                    continue;
                };
                let lost = Event::Error {
                    code: ErrorCode::NotStored,
                    message: format!(
                        "message {id} was heard on this node only: more were said while the other nodes were out of reach than are held for them"
                    ),
                };
                chat.pay(owed, lost);
            }
        });
    }

    /// [`Hub::receive`] for each of `publications` in turn, under one hold of the lock.
    pub fn receive_all(&self, publications: Vec<Publication>) {
        if publications.is_empty() {
            return;
        }
        self.with_chat(|chat| publications.into_iter().for_each(|p| chat.receive(p)));
    }

    /// Has `wake` wake the connections that a message in their room gave something to
    /// write, instead of waking them at once (the server wakes them in batches, reading
    /// input in between: `fanout::Dispatcher`).
    pub fn set_wake(&self, wake: Arc<WakeAll>) {
        self.lock().wake = wake;
    }

    /// Where accounts are kept; asked off the lock, on a blocking thread.
    pub fn accounts(&self) -> &Arc<dyn AccountStore> {
        &self.accounts
    }

    /// With `true`, only sessions logged in to an account may say anything
    /// (`--require-account`).
    pub fn require_account(&self, on: bool) {
        self.lock().require_account = on;
    }

    /// Whether only sessions logged in to an account may say anything
    /// (`--require-account`); HTTP publish asks it too.
    pub fn account_required(&self) -> bool {
        self.lock().require_account
    }

    /// The account session `id` is logged in to, if any.
    pub fn account_of(&self, id: SessionId) -> Option<Nick> {
        self.lock().account_of(id).cloned()
    }

    /// The account `name` was created in the store: its nick is protected from now on,
    /// and session `id`, which registered it, is logged in to it.
    pub fn account_created(&self, id: Option<SessionId>, name: Nick, reference: Option<String>) {
        self.with_chat(|chat| {
            chat.registered.insert(name.clone());
            if let Some(id) = id {
                let reply = chat
                    .log_in(id, name.clone())
                    .map(|()| Some(Event::Account(AccountNews::Registered(name))));
                chat.answer(id, reply, reference);
            }
        });
    }

    /// Session `id` proved it owns `account`: logged in, and renamed to it, whoever held
    /// the nick without the account becoming a guest.
    pub fn logged_in(&self, id: SessionId, account: Nick, reference: Option<String>) {
        self.with_chat(|chat| {
            // An account made by `charla account add` while the server ran is protected
            // from its first login on.
            chat.registered.insert(account.clone());
            let reply = chat
                .log_in(id, account.clone())
                .map(|()| Some(Event::Account(AccountNews::LoggedIn(account))));
            chat.answer(id, reply, reference);
        });
    }

    /// Session `id` proved the password of server operator `name` (`--oper`): an operator
    /// from now on, and told so.
    pub fn opered(&self, id: SessionId, name: Nick, reference: Option<String>) {
        self.with_chat(|chat| {
            let Some(session) = chat.sessions.get_mut(&id) else {
                return;
            };
            if !session.oper {
                session.oper = true;
                chat.oper_sessions += 1;
            }
            chat.tell_profile(id);
            let news = Event::Account(AccountNews::Oper(name));
            chat.answer(id, Ok(Some(news)), reference);
        });
    }

    /// Session `id` is logged in to no account from now on; it keeps its nick while
    /// connected.
    pub fn logged_out(&self, id: SessionId, reference: Option<String>) {
        self.with_chat(|chat| {
            let Some(session) = chat.sessions.get_mut(&id) else {
                return;
            };
            let reply = match session.account.take() {
                Some(_) => Ok(Some(Event::Account(AccountNews::LoggedOut))),
                None => Err(not_logged_in()),
            };
            chat.tell_profile(id);
            chat.answer(id, reply, reference);
        });
    }

    /// The account `name` was deleted from the store: its nick is free, and every session
    /// logged in to it is logged out. Session `id`, which asked, is told.
    pub fn account_deleted(&self, id: SessionId, name: Nick, reference: Option<String>) {
        self.with_chat(|chat| {
            chat.forget_account(&name);
            let news = Event::Account(AccountNews::Unregistered(name));
            chat.answer(id, Ok(Some(news)), reference);
        });
    }

    /// The account `name` was deleted on another node: its nick is free here too, and
    /// every session here logged in to it is logged out.
    pub fn account_gone(&self, name: &Nick) {
        self.with_chat(|chat| chat.forget_account(name));
    }

    /// The cluster's Redis lost its accounts (restarted empty): every account not in
    /// `kept` (those registered since) is gone here as one deleted on another node is.
    pub fn accounts_lost(&self, kept: &HashSet<Nick>) {
        self.with_chat(|chat| {
            let lost: Vec<Nick> = chat
                .registered
                .iter()
                .filter(|name| !kept.contains(*name))
                .cloned()
                .collect();
            if !lost.is_empty() {
                tracing::warn!(
                    accounts = lost.len(),
                    "Redis lost the cluster's accounts (restarted without persistence): their nicks are free, their owners must register again"
                );
            }
            lost.iter().for_each(|name| chat.forget_account(name));
        });
    }

    /// The nick session `id` goes by now; `None` once it is gone.
    pub fn nick_of(&self, id: SessionId) -> Option<Nick> {
        self.lock().sessions.get(&id).map(|s| s.nick.clone())
    }

    /// Whether session `id` is in `room` now.
    pub fn is_in(&self, id: SessionId, room: &RoomName) -> bool {
        self.lock()
            .sessions
            .get(&id)
            .is_some_and(|s| s.rooms.contains(room))
    }

    /// What this hub, and the server and feeds around it, count.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Sessions connected now.
    pub fn session_count(&self) -> usize {
        self.lock().sessions.len()
    }

    fn with_chat<T>(&self, f: impl FnOnce(&mut ChatState) -> T) -> T {
        with_state(&self.chat, f)
    }

    fn lock(&self) -> OrderedGuard<'_, ChatState> {
        self.chat.lock()
    }
}

/// Runs `f` under the hub's lock, then disconnects whoever overflowed and wakes whoever
/// has something new to write, before letting go.
fn with_state<T>(chat: &Ordered<ChatState>, f: impl FnOnce(&mut ChatState) -> T) -> T {
    let mut chat = chat.lock();
    let result = f(&mut chat);
    chat.settle();
    if !chat.woken.is_empty() {
        let ChatState { woken, wake, .. } = &mut *chat;
        wake(woken);
    }
    result
}

#[cfg(test)]
mod account_tests;
#[cfg(test)]
mod edge_tests;
#[cfg(test)]
mod ops_tests;
#[cfg(test)]
mod tests;
