//! The hub's edges: what it hands its bus, store and directory, and the bounds on rooms.

use std::sync::{Arc, Mutex, OnceLock};

use super::tests::hub_keeping;
use super::*;
use crate::fanout::recorder::Recorder;
use crate::limits::Limits;

fn member(hub: &Hub, nick: &str) -> (SessionId, Arc<Recorder>) {
    let inbox = Arc::new(Recorder::default());
    let id = hub
        .register(inbox.clone(), Some(Nick::parse(nick).unwrap()))
        .unwrap();
    inbox.take();
    (id, inbox)
}

fn room(name: &str) -> RoomName {
    RoomName::parse(name).unwrap()
}

fn say(room_name: &str, text: &str) -> Request {
    Command::Say {
        room: Some(room(room_name)),
        text: MessageText::new(text).unwrap(),
        action: false,
    }
    .into()
}

fn join(name: &str) -> Request {
    Command::Join(room(name)).into()
}

fn errors(events: &[Event]) -> Vec<ErrorCode> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Error { code, .. } => Some(*code),
            _ => None,
        })
        .collect()
}

fn said(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message(said) => Some(said.text.to_string()),
            _ => None,
        })
        .collect()
}

/// Records what is published; hands it back at once (`now`) or keeps it for later.
struct TestBus {
    now: bool,
    published: Mutex<Vec<Publication>>,
}

impl Bus for TestBus {
    fn publish(&self, publication: Publication) -> Option<Publication> {
        self.published.lock().unwrap().push(publication.clone());
        self.now.then_some(publication)
    }
}

fn hub_on(bus: Arc<TestBus>, directory: Arc<dyn Directory>) -> Hub {
    let limits = Limits::default();
    let edges = Edges {
        bus,
        directory,
        ..Edges::alone(&limits)
    };
    Hub::with_edges(&limits, edges)
}

#[test]
fn a_message_is_published_once_for_the_room_not_once_per_member() {
    let bus = Arc::new(TestBus {
        now: true,
        published: Mutex::default(),
    });
    let hub = hub_on(bus.clone(), Arc::new(Alone));
    let members: Vec<_> = ["ana", "bob", "cy"]
        .iter()
        .map(|nick| member(&hub, nick))
        .collect();
    bus.published.lock().unwrap().clear();
    hub.apply(members[0].0, say("#lobby", "hola"));
    let published = bus.published.lock().unwrap().clone();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].room, room("#lobby"));
    assert_eq!(published[0].except, Some(members[0].0));
    for (_, inbox) in &members[1..] {
        assert_eq!(said(&inbox.take()), ["hola"]);
    }
    assert!(said(&members[0].1.take()).is_empty(), "not to the sender");
}

#[test]
fn what_the_bus_hands_back_later_is_heard_then() {
    let bus = Arc::new(TestBus {
        now: false,
        published: Mutex::default(),
    });
    let hub = hub_on(bus.clone(), Arc::new(Alone));
    let (ana, _) = member(&hub, "ana");
    let (_, bob) = member(&hub, "bob");
    bus.published.lock().unwrap().clear();
    hub.apply(ana, say("#lobby", "over the wire"));
    assert!(
        said(&bob.take()).is_empty(),
        "not before the bus gives it back"
    );
    let publication = bus.published.lock().unwrap().pop().unwrap();
    hub.receive(publication);
    assert_eq!(said(&bob.take()), ["over the wire"]);
}

/// Holds `ana` on another node; records what this node claims and releases.
#[derive(Default)]
struct Elsewhere {
    changes: Mutex<Vec<String>>,
}

impl Directory for Elsewhere {
    fn holder(&self, nick: &Nick) -> Option<SessionId> {
        (*nick == Nick::parse("ana").unwrap()).then(|| SessionId::new(NodeId::new(1).unwrap(), 7))
    }

    fn claimed(&self, nick: &Nick, _: SessionId) {
        self.changes.lock().unwrap().push(format!("+{nick}"));
    }

    fn released(&self, nick: &Nick, _: SessionId) {
        self.changes.lock().unwrap().push(format!("-{nick}"));
    }
}

#[test]
fn a_nick_held_on_another_node_is_taken_here_too() {
    let directory = Arc::new(Elsewhere::default());
    let bus = Arc::new(TestBus {
        now: true,
        published: Mutex::default(),
    });
    let hub = hub_on(bus, directory.clone());
    let refused = hub.register(
        Arc::new(Recorder::default()),
        Some(Nick::parse("ANA").unwrap()),
    );
    assert_eq!(refused.unwrap_err().0, ErrorCode::NickTaken);
    let (bob, inbox) = member(&hub, "bob");
    hub.apply(bob, Command::Nick(Nick::parse("ana").unwrap()).into());
    assert_eq!(errors(&inbox.take()), [ErrorCode::NickTaken]);
    hub.apply(bob, Command::Nick(Nick::parse("beto").unwrap()).into());
    hub.disconnect(bob, LeaveReason::ConnectionLost);
    assert_eq!(
        *directory.changes.lock().unwrap(),
        ["+bob", "-bob", "+beto", "-beto"]
    );
}

/// A store that asks the hub something while it answers a `/history`: under the hub's lock
/// that would deadlock (and, in debug builds, panic on the lock order).
struct Reentrant {
    memory: MemoryHistory,
    hub: OnceLock<Hub>,
}

impl HistoryStore for Reentrant {
    fn append(&self, entry: Entry, owed: Option<Owed>) -> Result<Option<Owed>, StoreFull> {
        self.memory.append(entry, owed)
    }

    fn recent(&self, room: &RoomName, limit: Option<usize>) -> Vec<Entry> {
        if limit.is_some() {
            // Only a `/history` asks with a limit; joining asks for all, under the lock.
            assert!(self.hub.get().unwrap().session_count() > 0);
        }
        self.memory.recent(room, limit)
    }

    fn since(&self, room: &RoomName, after: u64, limit: usize) -> Vec<Entry> {
        assert!(
            self.hub.get().unwrap().session_count() > 0,
            "asked under the lock"
        );
        self.memory.since(room, after, limit)
    }

    fn forget(&self, room: &RoomName) {
        self.memory.forget(room);
    }
}

#[test]
fn history_is_asked_of_the_store_without_the_hubs_lock() {
    let limits = Limits::default();
    let store = Arc::new(Reentrant {
        memory: MemoryHistory::new(limits.history_bounds()),
        hub: OnceLock::new(),
    });
    let edges = Edges {
        store: store.clone(),
        ..Edges::alone(&limits)
    };
    let hub = Hub::with_edges(&limits, edges);
    store.hub.set(hub.clone()).ok().unwrap();
    let (ana, inbox) = member(&hub, "ana");
    for n in 0..5 {
        hub.apply(ana, say("#lobby", &format!("line {n}")));
    }
    inbox.take();
    hub.apply(
        ana,
        Command::History {
            room: None,
            limit: Some(2),
        }
        .into(),
    );
    let events = inbox.take();
    let Some(Event::History { messages, .. }) = events.last() else {
        panic!("{events:?}");
    };
    let texts: Vec<_> = messages.iter().map(|m| m.text().to_string()).collect();
    assert_eq!(texts, ["line 3", "line 4"]);
    let after = messages[0].id();
    hub.apply(ana, Command::HistorySince { room: None, after }.into());
    let events = inbox.take();
    let Some(Event::History { messages, .. }) = events.last() else {
        panic!("{events:?}");
    };
    let texts: Vec<_> = messages.iter().map(|m| m.text().to_string()).collect();
    assert_eq!(texts, ["line 4"], "every entry after the id");
    // Not in the room: refused, and the store is not asked.
    hub.apply(
        ana,
        Command::History {
            room: Some(room("#elsewhere")),
            limit: Some(2),
        }
        .into(),
    );
    assert_eq!(errors(&inbox.take()), [ErrorCode::NotInRoom]);
}

fn hub_with_rooms(per_client: usize, all: usize) -> Hub {
    Hub::new(&Limits {
        max_rooms_per_client: per_client,
        max_rooms: all,
        ..Limits::default()
    })
}

#[test]
fn a_session_joins_at_most_its_bound_of_rooms() {
    let hub = hub_with_rooms(3, 100);
    let (ana, inbox) = member(&hub, "ana");
    for name in ["#a", "#b", "#c", "#d"] {
        hub.apply(ana, join(name));
    }
    // #lobby, #a and #b: the third and fourth joins are refused.
    assert_eq!(
        errors(&inbox.take()),
        [ErrorCode::TooManyRooms, ErrorCode::TooManyRooms]
    );
    // Joining a room it is in is no new room; leaving one makes room for another.
    hub.apply(ana, join("#a"));
    hub.apply(
        ana,
        Command::Leave {
            room: Some(room("#b")),
            message: None,
        }
        .into(),
    );
    hub.apply(ana, join("#c"));
    assert!(errors(&inbox.take()).is_empty());
}

#[test]
fn rooms_in_all_are_bounded_and_existing_ones_stay_open() {
    let hub = hub_with_rooms(100, 2);
    hub.open_room(&room("#alerts"));
    let (ana, ana_inbox) = member(&hub, "ana");
    let (bob, bob_inbox) = member(&hub, "bob");
    hub.apply(ana, join("#one"));
    hub.apply(ana, join("#two"));
    hub.apply(bob, join("#three"));
    assert_eq!(errors(&bob_inbox.take()), [ErrorCode::TooManyRooms]);
    // The lobby and feed rooms are the server's own: not counted, always open.
    hub.apply(bob, join("#one"));
    hub.apply(bob, join("#alerts"));
    assert!(errors(&bob_inbox.take()).is_empty());
    // A room ends with its last member, and a new one may be made.
    hub.apply(
        ana,
        Command::Leave {
            room: Some(room("#two")),
            message: None,
        }
        .into(),
    );
    hub.apply(bob, join("#three"));
    assert!(errors(&bob_inbox.take()).is_empty());
    assert!(errors(&ana_inbox.take()).is_empty());
}

#[test]
fn a_session_in_many_rooms_leaves_every_one_of_them() {
    let hub = hub_with_rooms(100, 1000);
    let (ana, _) = member(&hub, "ana");
    let (bob, bob_inbox) = member(&hub, "bob");
    let names: Vec<String> = (0..50).map(|n| format!("#r{n}")).collect();
    for name in &names {
        hub.apply(ana, join(name));
        hub.apply(bob, join(name));
    }
    bob_inbox.take();
    hub.disconnect(ana, LeaveReason::ConnectionLost);
    let left = bob_inbox
        .take()
        .into_iter()
        .filter(|e| matches!(e, Event::Left { you: false, .. }))
        .count();
    assert_eq!(left, names.len() + 1, "every room, #lobby included");
    assert_eq!(hub.session_count(), 1);
    // Its nick is free again.
    member(&hub, "ana");
}

#[test]
fn history_kept_in_memory_is_bounded_in_bytes_per_room_and_in_all() {
    let text = |n: usize| MessageText::new(&format!("{n:>1000}")).unwrap();
    let entry = |room_name: &str, n: usize| {
        Entry::Said(Said {
            id: n as u64,
            seq: n as u64,
            ts: 0,
            room: room(room_name),
            from: Nick::parse("ana").unwrap(),
            text: text(n),
            action: false,
            notice: false,
            account: None,
            tags: None,
        })
    };
    let size = stored_bytes(&entry("#a", 0));
    let store = MemoryHistory::new(HistoryBounds {
        per_room: 100,
        room_bytes: 3 * size,
        total_bytes: 5 * size,
    });
    let ids = |room_name: &str| -> Vec<u64> {
        store
            .recent(&room(room_name), None)
            .iter()
            .map(Entry::id)
            .collect()
    };
    for n in 0..5 {
        store.append(entry("#a", n), None).unwrap();
    }
    assert_eq!(
        ids("#a"),
        [2, 3, 4],
        "a room keeps its bytes' worth, newest"
    );
    for n in 5..8 {
        store.append(entry("#b", n), None).unwrap();
    }
    // Six entries are over the bound for all: the oldest of any room went first.
    assert_eq!(ids("#a"), [3, 4]);
    assert_eq!(ids("#b"), [5, 6, 7]);
    store.forget(&room("#b"));
    for n in 8..11 {
        store.append(entry("#c", n), None).unwrap();
    }
    assert_eq!(
        ids("#a"),
        [3, 4],
        "a forgotten room's bytes were given back"
    );
    assert_eq!(ids("#c"), [8, 9, 10]);
    // Many entries through a small room leave the oldest-first list swept, not growing.
    for n in 11..2000 {
        store.append(entry("#a", n), None).unwrap();
    }
    assert_eq!(ids("#a"), [1997, 1998, 1999]);
    assert_eq!(ids("#c"), [9, 10]);
    assert!(store.ages_len() <= 2 * 5 + 64 + 1, "{}", store.ages_len());
}

#[test]
fn rooms_keep_no_history_when_told_to_keep_none() {
    let hub = hub_keeping(0);
    let (ana, _) = member(&hub, "ana");
    hub.apply(ana, say("#lobby", "gone"));
    let (_, bob) = member(&hub, "bob");
    hub.apply(ana, say("#lobby", "heard"));
    assert_eq!(said(&bob.take()), ["heard"]);
}

/// A cluster's bus as the hub sees it: it numbers messages and hands them back later, or,
/// cut off (`cut_off`), hands everything back at once.
/// Full (`full`), it refuses messages, as a cluster's full queue to Redis does.
#[derive(Default)]
struct NumberingBus {
    cut_off: std::sync::atomic::AtomicBool,
    full: std::sync::atomic::AtomicBool,
    published: Mutex<Vec<Publication>>,
}

impl Bus for NumberingBus {
    fn publish_numbered(
        &self,
        publication: Publication,
    ) -> Result<Option<Publication>, super::BusFull> {
        if self.full.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(super::BusFull);
        }
        Ok(self.publish(publication))
    }

    fn publish(&self, publication: Publication) -> Option<Publication> {
        if self.cut_off.load(std::sync::atomic::Ordering::Relaxed) {
            return Some(publication);
        }
        self.published.lock().unwrap().push(publication);
        None
    }

    fn numbers_messages(&self) -> bool {
        true
    }
}

/// A hub whose bus numbers its messages, as a cluster's does, and that bus.
fn hub_on_a_numbering_bus() -> (Arc<NumberingBus>, Hub) {
    let bus = Arc::new(NumberingBus::default());
    let limits = Limits::default();
    let edges = Edges {
        bus: bus.clone(),
        ..Edges::alone(&limits)
    };
    let hub = Hub::with_edges(&limits, edges);
    (bus, hub)
}

fn seqs(entries: &[Entry]) -> Vec<u64> {
    entries.iter().map(Entry::seq).collect()
}

#[test]
fn a_message_numbered_by_the_bus_is_kept_and_heard_when_it_comes_back() {
    let (bus, hub) = hub_on_a_numbering_bus();
    let (ana, _) = member(&hub, "ana");
    let (_, bob) = member(&hub, "bob");
    let lobby = room("#lobby");
    hub.apply(ana, say("#lobby", "one"));
    assert!(
        said(&bob.take()).is_empty(),
        "not before the bus numbers it"
    );
    assert!(
        hub.room_history(&lobby, None, None, None)
            .unwrap()
            .1
            .is_empty()
    );
    let mut publication = bus.published.lock().unwrap().pop().unwrap();
    let Event::Message(proposed) = &mut publication.event else {
        panic!("{publication:?}");
    };
    assert_eq!(proposed.seq, 1, "one past the last this node heard");
    // Another node's messages took the numbers before it.
    proposed.seq = 7;
    hub.receive(publication);
    assert_eq!(said(&bob.take()), ["one"]);
    let (_, kept) = hub.room_history(&lobby, None, None, None).unwrap();
    assert_eq!(seqs(&kept), [7]);

    // Cut off from the cluster: numbered after the last heard, kept, heard here at once.
    bus.cut_off
        .store(true, std::sync::atomic::Ordering::Relaxed);
    hub.apply(ana, say("#lobby", "two"));
    assert_eq!(said(&bob.take()), ["two"]);
    let (_, kept) = hub.room_history(&lobby, None, None, None).unwrap();
    assert_eq!(seqs(&kept), [7, 8]);
}

#[test]
fn a_message_the_bus_refuses_is_not_said_and_its_sender_told() {
    let (bus, hub) = hub_on_a_numbering_bus();
    let (ana, ana_inbox) = member(&hub, "ana");
    let (_, bob) = member(&hub, "bob");
    let lobby = room("#lobby");
    ana_inbox.take();
    bus.published.lock().unwrap().clear();
    bus.full.store(true, std::sync::atomic::Ordering::Relaxed);
    hub.apply(ana, say("#lobby", "refused"));
    assert_eq!(errors(&ana_inbox.take()), [ErrorCode::StoreUnavailable]);
    assert!(bus.published.lock().unwrap().is_empty());
    assert!(said(&bob.take()).is_empty());
    let (_, kept) = hub.room_history(&lobby, None, None, None).unwrap();
    assert!(kept.is_empty());
    // A feed's post is refused too.
    assert!(matches!(
        hub.post(
            &lobby,
            Notice::new(
                Source::new("t").unwrap(),
                PostKind::Notice,
                MessageText::new("refused").unwrap()
            )
        ),
        Err(Unposted::StoreFull)
    ));
    assert!(bus.published.lock().unwrap().is_empty());
}

#[test]
fn a_message_heard_back_before_its_sending_failed_is_not_heard_again() {
    let (bus, hub) = hub_on_a_numbering_bus();
    let (ana, _) = member(&hub, "ana");
    let (_, bob) = member(&hub, "bob");
    let lobby = room("#lobby");
    hub.apply(ana, say("#lobby", "once"));
    hub.apply(ana, say("#lobby", "fell back"));
    let (heard, unheard) = {
        let mut published = bus.published.lock().unwrap();
        let unheard = published.pop().unwrap();
        (published.pop().unwrap(), unheard)
    };
    // The bus published the first and it came back; then sending both failed.
    let mut live = heard.clone();
    if let Event::Message(said) = &mut live.event {
        said.seq = 3;
    }
    hub.receive(live);
    assert_eq!(said(&bob.take()), ["once"]);
    let unnumbered = |mut publication: Publication| {
        if let Event::Message(said) = &mut publication.event {
            said.seq = 0;
        }
        publication
    };
    hub.fell_back(vec![unnumbered(heard), unnumbered(unheard)]);
    assert_eq!(said(&bob.take()), ["fell back"]);
    let (_, kept) = hub.room_history(&lobby, None, None, None).unwrap();
    assert_eq!(seqs(&kept), [3, 4]);
}

/// The other order: a message's sending failed after the bus had published it, and it
/// was heard here as it fell back before the copy the bus had handed over (taken before
/// the failure was known) reached the hub. Heard once, and its speaker acked once.
#[test]
fn a_message_heard_as_it_fell_back_is_not_heard_again_when_its_copy_comes_after() {
    let (bus, hub) = hub_on_a_numbering_bus();
    let (ana, ana_inbox) = member(&hub, "ana");
    let (_, bob) = member(&hub, "bob");
    let lobby = room("#lobby");
    ana_inbox.take();
    hub.apply(ana, say("#lobby", "in flight"));
    let publication = bus.published.lock().unwrap().pop().unwrap();
    let Event::Message(proposed) = &publication.event else {
        panic!("{publication:?}");
    };
    let id = proposed.id;
    let mut fallen = publication.clone();
    let mut copy = publication;
    if let (Event::Message(fallen), Event::Message(copy)) = (&mut fallen.event, &mut copy.event) {
        fallen.seq = 0;
        copy.seq = 5;
    }
    hub.fell_back(vec![fallen]);
    assert_eq!(said(&bob.take()), ["in flight"]);
    assert_eq!(
        acks(&ana_inbox.take()),
        0,
        "held: not acked before the bus has it"
    );
    hub.receive(copy);
    assert!(said(&bob.take()).is_empty(), "heard once");
    assert_eq!(acks(&ana_inbox.take()), 1, "the bus has it");
    let (_, kept) = hub.room_history(&lobby, None, None, None).unwrap();
    assert_eq!(seqs(&kept), [1], "kept once, as numbered when it fell back");
    // Sent again once the bus is back, which had it already: nothing more.
    hub.relayed(vec![id]);
    assert!(ana_inbox.take().is_empty());
    assert!(said(&bob.take()).is_empty());
}

/// A store that keeps in memory but acks later, as a durable one does once it has
/// committed, and refuses everything while `full`.
#[derive(Default)]
struct Deferred {
    memory: Option<MemoryHistory>,
    held: Mutex<Vec<Owed>>,
    sink: OnceLock<Arc<AckSink>>,
    full: std::sync::atomic::AtomicBool,
}

impl Deferred {
    /// Settles what is held, as a commit (`kept`) or a failed transaction.
    fn settle(&self, kept: bool) {
        let held = std::mem::take(&mut *self.held.lock().unwrap());
        (self.sink.get().unwrap())(held, kept);
    }
}

impl HistoryStore for Deferred {
    fn append(&self, entry: Entry, owed: Option<Owed>) -> Result<Option<Owed>, StoreFull> {
        if self.full.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(StoreFull);
        }
        let memory = self.memory.as_ref().unwrap();
        memory.append(entry, None)?;
        self.held.lock().unwrap().extend(owed);
        Ok(None)
    }

    fn on_settled(&self, sink: Arc<AckSink>) {
        self.sink.set(sink).ok().unwrap();
    }

    fn recent(&self, room: &RoomName, limit: Option<usize>) -> Vec<Entry> {
        self.memory.as_ref().unwrap().recent(room, limit)
    }

    fn forget(&self, room: &RoomName) {
        self.memory.as_ref().unwrap().forget(room);
    }
}

#[test]
fn acks_wait_for_the_store_and_a_full_store_refuses_what_would_go_unkept() {
    let limits = Limits::default();
    let store = Arc::new(Deferred {
        memory: Some(MemoryHistory::new(limits.history_bounds())),
        ..Deferred::default()
    });
    let hub = Hub::with_edges(
        &limits,
        Edges {
            store: store.clone(),
            ..Edges::alone(&limits)
        },
    );
    let (ana, ana_inbox) = member(&hub, "ana");
    let (_bob, bob_inbox) = member(&hub, "bob");
    let said_by_ana = |text: &str| Request {
        reference: Some(format!("\"{text}\"")),
        ..say("#lobby", text)
    };
    ana_inbox.take();
    hub.apply(ana, said_by_ana("one"));
    assert_eq!(said(&bob_inbox.take()), ["one"], "fan-out does not wait");
    assert!(ana_inbox.take().is_empty(), "no ack before the commit");
    store.settle(true);
    let acks = ana_inbox.take();
    assert!(matches!(acks[..], [Event::Ack { .. }]), "{acks:?}");

    // Full: refused, not said, and its number goes to the next.
    store.full.store(true, std::sync::atomic::Ordering::Relaxed);
    hub.apply(ana, said_by_ana("two"));
    assert_eq!(errors(&ana_inbox.take()), [ErrorCode::StoreUnavailable]);
    assert!(bob_inbox.take().is_empty(), "nobody heard it");
    assert!(matches!(
        hub.post(
            &room("#lobby"),
            Notice::new(
                Source::new("t").unwrap(),
                PostKind::Notice,
                MessageText::new("x").unwrap()
            )
        ),
        Err(Unposted::StoreFull)
    ));
    store
        .full
        .store(false, std::sync::atomic::Ordering::Relaxed);
    hub.apply(ana, said_by_ana("three"));
    let seqs: Vec<u64> = hub
        .room_history(&room("#lobby"), None, None, None)
        .unwrap()
        .1
        .iter()
        .map(Entry::seq)
        .collect();
    assert_eq!(seqs, [1, 2], "no number lost to the refused one");
    assert_eq!(said(&bob_inbox.take()), ["three"]);
    // The transaction failed: said, not kept, and the sender is told so.
    store.settle(false);
    assert_eq!(errors(&ana_inbox.take()), [ErrorCode::NotStored]);
}

fn deferred_hub() -> (Hub, Arc<Deferred>) {
    let limits = Limits::default();
    let store = Arc::new(Deferred {
        memory: Some(MemoryHistory::new(limits.history_bounds())),
        ..Deferred::default()
    });
    let edges = Edges {
        store: store.clone(),
        ..Edges::alone(&limits)
    };
    (Hub::with_edges(&limits, edges), store)
}

/// Why the hub said goodbye to `inbox`, once it did.
fn bye(inbox: &Recorder) -> Option<LeaveReason> {
    match inbox.closed() {
        Some(Event::Bye { reason }) => Some(reason),
        _ => None,
    }
}

fn acks(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::Ack { .. }))
        .count()
}

#[test]
fn a_session_ended_with_acks_owed_gets_them_and_then_its_goodbye() {
    let (hub, store) = deferred_hub();
    let (ana, ana_inbox) = member(&hub, "ana");
    let (bob, bob_inbox) = member(&hub, "bob");
    ana_inbox.take();
    hub.apply(ana, say("#lobby", "one"));
    hub.apply(ana, say("#lobby", "two"));
    assert_eq!(said(&bob_inbox.take()), ["one", "two"]);
    hub.disconnect(ana, LeaveReason::Flooding);
    // Gone from the room at once; its connection waits, reading no more.
    assert!(bob_inbox.take().iter().any(|e| matches!(
        e,
        Event::Left {
            reason: LeaveReason::Flooding,
            ..
        }
    )),);
    assert!(ana_inbox.ended(), "ended, its goodbye held back");
    assert_eq!(hub.session_count(), 1);
    store.settle(true);
    assert_eq!(acks(&ana_inbox.take()), 2);
    assert_eq!(bye(&ana_inbox), Some(LeaveReason::Flooding));
    // Nothing owed: the goodbye at once.
    hub.disconnect(bob, LeaveReason::Quit(None));
    assert!(bob_inbox.closed().is_some() && !bob_inbox.ended());
}

#[test]
fn a_failed_commit_pays_what_was_owed_with_its_error() {
    let (hub, store) = deferred_hub();
    let (ana, ana_inbox) = member(&hub, "ana");
    hub.apply(ana, say("#lobby", "one"));
    hub.apply(ana, Command::Quit { message: None }.into());
    assert!(ana_inbox.ended());
    store.settle(false);
    assert_eq!(errors(&ana_inbox.take()), [ErrorCode::NotStored]);
    assert!(matches!(ana_inbox.closed(), Some(Event::Bye { .. })));
}

#[test]
fn acks_that_do_not_come_in_time_are_told_unconfirmed_and_none_come_after() {
    let (hub, store) = deferred_hub();
    let (ana, ana_inbox) = member(&hub, "ana");
    for text in ["one", "two", "three"] {
        hub.apply(ana, say("#lobby", text));
    }
    hub.disconnect(ana, LeaveReason::TimedOut);
    hub.close_now(ana);
    let told = ana_inbox.take();
    let [Event::Error { code, message }] = &told[..] else {
        panic!("{told:?}")
    };
    assert_eq!(*code, ErrorCode::Unconfirmed);
    assert!(message.starts_with("3 of your messages"), "{message}");
    assert_eq!(bye(&ana_inbox), Some(LeaveReason::TimedOut));
    let metrics = hub.metrics().render();
    assert!(
        metrics.contains("\ncharla_acks_unconfirmed_total 3\n"),
        "{metrics}"
    );
    store.settle(true);
    assert!(ana_inbox.take().is_empty(), "the session is gone for good");
    // Nothing owed, nothing waits: closing now does nothing.
    hub.close_now(ana);
    assert!(ana_inbox.take().is_empty());
}

#[test]
fn a_shutdown_sends_the_acks_owed_before_each_goodbye() {
    let (hub, store) = deferred_hub();
    let (ana, ana_inbox) = member(&hub, "ana");
    let (_bob, bob_inbox) = member(&hub, "bob");
    hub.apply(ana, say("#lobby", "one"));
    hub.shutdown();
    assert!(ana_inbox.ended());
    let shutdown = Some(LeaveReason::ServerShutdown);
    assert_eq!(bye(&bob_inbox), shutdown, "nothing owed to bob");
    store.settle(true);
    assert_eq!(acks(&ana_inbox.take()), 1);
    assert_eq!(bye(&ana_inbox), shutdown);
}

#[test]
fn a_refused_or_at_once_acked_message_leaves_nothing_owed() {
    let (hub, store) = deferred_hub();
    let (ana, ana_inbox) = member(&hub, "ana");
    store.full.store(true, std::sync::atomic::Ordering::Relaxed);
    hub.apply(ana, say("#lobby", "refused"));
    assert_eq!(errors(&ana_inbox.take()), [ErrorCode::StoreUnavailable]);
    hub.disconnect(ana, LeaveReason::Quit(None));
    assert!(ana_inbox.closed().is_some(), "closed at once");

    // A store that keeps at once acks at once.
    let memory = Hub::new(&Limits::default());
    let (bob, bob_inbox) = member(&memory, "bob");
    memory.apply(bob, say("#lobby", "kept"));
    assert_eq!(acks(&bob_inbox.take()), 1);
    memory.disconnect(bob, LeaveReason::Quit(None));
    assert!(bob_inbox.closed().is_some(), "closed at once");
}

#[test]
fn unconfirmed_messages_held_for_other_nodes_are_said_to_be_held_not_kept() {
    let (bus, hub) = hub_on_a_numbering_bus();
    let (ana, ana_inbox) = member(&hub, "ana");
    hub.apply(ana, say("#lobby", "sent"));
    hub.apply(ana, say("#lobby", "held"));
    // The second's sending failed: the bus holds it, and it is heard here, unnumbered.
    let mut held = bus.published.lock().unwrap().pop().unwrap();
    let Event::Message(said) = &mut held.event else {
        panic!("{held:?}");
    };
    said.seq = 0;
    hub.fell_back(vec![held]);
    ana_inbox.take();
    hub.disconnect(ana, LeaveReason::Quit(None));
    hub.close_now(ana);
    let told = ana_inbox.take();
    let [Event::Error { code, message }, ..] = &told[..] else {
        panic!("{told:?}")
    };
    assert_eq!(*code, ErrorCode::Unconfirmed);
    assert!(
        message.starts_with("2 of your messages")
            && message.contains("; 1 of them, said while the other nodes were out of reach")
            && message.contains("relayed once Redis is back, unless this node stops first")
            && !message.contains("history shows"),
        "{message}"
    );
}
