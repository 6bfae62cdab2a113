//! Where rooms' history is kept, behind an interface the hub asks without knowing where.
//!
//! A [`HistoryStore`] keeps what was said and posted in each room and answers for the
//! latest of it: newcomers get it on joining, `/history` asks for it. [`MemoryHistory`]
//! keeps it in this process, bounded in entries and bytes per room and in bytes for all
//! rooms together; a durable store keeps it on disk.

use std::collections::{HashMap, VecDeque};
use std::mem::size_of;

use crate::fanout::{Level, Ordered};

use super::ids::{NodeId, SessionId};
use super::names::{Nick, RoomName};
use super::post::{Entry, Field};
use super::room::KeptRoom;

/// The `ack` owed to the session that said an entry: sent once the store has kept it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owed {
    pub session: SessionId,
    /// The entry's message id and time, as the `ack` carries them.
    pub id: u64,
    pub ts: u64,
    /// Its room's number for it, as the `ack` carries it; `None` until a cluster's bus has
    /// numbered it.
    pub seq: Option<u64>,
    /// The request's `ref`, echoed in the `ack`.
    pub reference: Option<String>,
}

impl Owed {
    /// The `ack` itself.
    pub fn ack(&self) -> super::Event {
        super::Event::Ack {
            id: self.id,
            seq: self.seq,
            ts: self.ts,
        }
    }
}

/// What a durable store hands the acks it owed once their entries are settled: `true` when
/// committed (each gets its `ack`), `false` when their transaction failed (each gets an
/// error: delivered live, not kept). Called on the store's writer thread, holding none of
/// the store's locks.
pub type AckSink = dyn Fn(Vec<Owed>, bool) + Send + Sync;

/// An Alertmanager alert firing in a room, kept under its room and fingerprint, so a
/// restart still knows what fires (`feeds/alertmanager.rs` decides what it means).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiringAlert {
    /// Its `alertname`, what was said of it (summary and labels), its priority 1–5, and
    /// when it started firing (ms since the epoch).
    pub name: String,
    pub said: String,
    pub priority: u8,
    pub starts_ms: i64,
}

/// The store cannot take an entry now (its writer is that far behind, or it has closed):
/// the entry is refused rather than said, so nothing said goes unkept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the history store cannot take more now")]
pub struct StoreFull;

/// Keeps rooms' history. Has a lock of its own: the hub calls it under its lock to
/// remember, and without it to answer a `/history`.
pub trait HistoryStore: Send + Sync {
    /// Keeps `entry` as the newest of its room's history, or refuses it. `owed`, the ack
    /// of whoever said it, comes back when the entry is kept already (send it now); a
    /// store that keeps it later holds it and hands it to its [`AckSink`] then. Never
    /// waits: called under the hub's lock.
    fn append(&self, entry: Entry, owed: Option<Owed>) -> Result<Option<Owed>, StoreFull>;

    /// Where to hand the acks [`HistoryStore::append`] held; a store that never holds
    /// one ignores it.
    fn on_settled(&self, sink: std::sync::Arc<AckSink>) {
        let _ = sink;
    }

    /// The last `limit` entries of `room` (as many as kept when `None`), oldest first.
    fn recent(&self, room: &RoomName, limit: Option<usize>) -> Vec<Entry>;

    /// The entries of `room` after message id `after`, oldest first, at most `limit`.
    fn since(&self, room: &RoomName, after: u64, limit: usize) -> Vec<Entry> {
        self.recent(room, None)
            .into_iter()
            .filter(|entry| entry.id() > after)
            .take(limit)
            .collect()
    }

    /// The last `limit` entries of `room` before message id `before`, oldest first; none
    /// when that message is not kept. A store that keeps more than it replays (on disk)
    /// reads back past what [`HistoryStore::recent`] gives.
    fn before(&self, room: &RoomName, before: u64, limit: usize) -> Vec<Entry> {
        let window = super::Window::Before(super::Mark::Message(before));
        super::chathistory::select(self.recent(room, None), window, limit)
    }

    /// The entries of `room` numbered after `after` ([`Entry::seq`]), oldest first, at
    /// most `limit`.
    fn after_seq(&self, room: &RoomName, after: u64, limit: usize) -> Vec<Entry> {
        self.recent(room, None)
            .into_iter()
            .filter(|entry| entry.seq() > after)
            .take(limit)
            .collect()
    }

    /// The number of the last entry of `room` kept, 0 when none is. Asked once for each
    /// room, when its first entry since it began (or since the server started) is
    /// numbered, under the hub's lock.
    fn last_seq(&self, room: &RoomName) -> u64 {
        self.recent(room, None).last().map_or(0, Entry::seq)
    }

    /// The room is gone (its last member left): what it kept may go too.
    fn forget(&self, room: &RoomName);

    /// Keeps what `room` is now (`None`: nothing a new room would not have) for when it is
    /// made again, after it empties or a restart. Never waits: called under the hub's
    /// lock. A store that forgets rooms with their members ignores it.
    fn keep_room(&self, room: &RoomName, kept: Option<KeptRoom>) {
        let _ = (room, kept);
    }

    /// The account `name` was deleted: every room kept forgets it
    /// ([`KeptRoom::forget_account`]), after every state handed to
    /// [`HistoryStore::keep_room`] before, so none of those writes it back. Never waits:
    /// called under the hub's lock.
    fn forget_account(&self, name: &Nick) {
        let _ = name;
    }

    /// What [`HistoryStore::keep_room`] kept of `room`; asked under the hub's lock as the
    /// room is made, so one indexed read at most.
    fn kept_room(&self, room: &RoomName) -> Option<KeptRoom> {
        let _ = room;
        None
    }

    /// Keeps the alert `fingerprint` of `room` as firing (`Some`) or forgets it (`None`:
    /// it resolved), for [`HistoryStore::kept_firing`] after a restart. Never waits. A
    /// store that forgets everything on restart ignores it.
    fn keep_firing(&self, room: &RoomName, fingerprint: &str, alert: Option<&FiringAlert>) {
        let _ = (room, fingerprint, alert);
    }

    /// Every alert [`HistoryStore::keep_firing`] kept firing, with its room and
    /// fingerprint; read once at start-up.
    fn kept_firing(&self) -> Vec<(RoomName, String, FiringAlert)> {
        Vec::new()
    }

    /// The largest message id `node` minted that this store kept from before this
    /// process started, so the hub's ids continue after it; `None` for a store that
    /// starts empty.
    fn last_id(&self, node: NodeId) -> Option<u64> {
        let _ = node;
        None
    }
}

/// How much history [`MemoryHistory`] keeps; the oldest goes first past any bound.
#[derive(Debug, Clone, Copy)]
pub struct HistoryBounds {
    /// Entries a room keeps (`--history`); 0 keeps none.
    pub per_room: usize,
    /// Bytes a room's entries may take (`--history-room-bytes`).
    pub room_bytes: usize,
    /// Bytes all rooms' entries may take together (`--history-bytes`).
    pub total_bytes: usize,
}

/// History in this process's memory, forgotten on restart.
pub struct MemoryHistory {
    bounds: HistoryBounds,
    state: Ordered<Kept>,
}

#[derive(Default)]
struct Kept {
    rooms: HashMap<RoomName, RoomHistory>,
    /// Every entry kept, oldest first, by room and number: the order entries go in when
    /// all rooms together are over their bound. Holds numbers of entries a room already
    /// dropped, skipped when met and swept when they outnumber the live ones.
    ages: VecDeque<(RoomName, u64)>,
    /// Entries in `ages` still kept by their room.
    live: usize,
    bytes: usize,
    /// The number of the next entry kept, in any room.
    next: u64,
}

#[derive(Default)]
struct RoomHistory {
    /// Oldest first, each with its number and its size.
    entries: VecDeque<(u64, usize, Entry)>,
    bytes: usize,
}

impl MemoryHistory {
    pub fn new(bounds: HistoryBounds) -> MemoryHistory {
        MemoryHistory {
            bounds,
            state: Ordered::with_default(Level::Store),
        }
    }
}

impl MemoryHistory {
    /// Keeps `entry`, dropping the oldest past any bound; one over a bound on its own is
    /// not kept (it was delivered live).
    fn keep(&self, entry: Entry) {
        let size = stored_bytes(&entry);
        let bounds = self.bounds;
        if bounds.per_room == 0 || size > bounds.room_bytes.min(bounds.total_bytes) {
            return;
        }
        let mut kept = self.state.lock();
        let kept = &mut *kept;
        let number = kept.next;
        kept.next += 1;
        let name = entry.room().clone();
        let room = kept.rooms.entry(name.clone()).or_default();
        room.entries.push_back((number, size, entry));
        room.bytes += size;
        kept.bytes += size;
        kept.ages.push_back((name, number));
        kept.live += 1;
        while room.entries.len() > bounds.per_room || room.bytes > bounds.room_bytes {
            let (_, size, _) = room
                .entries
                .pop_front()
                .expect("over a bound, so not empty");
            room.bytes -= size;
            kept.bytes -= size;
            kept.live -= 1;
        }
        while kept.bytes > bounds.total_bytes {
            kept.drop_oldest();
        }
        if kept.ages.len() > 2 * kept.live + 64 {
            kept.sweep();
        }
    }

    /// Entries in the oldest-first list, dropped ones not swept yet included.
    #[cfg(test)]
    pub fn ages_len(&self) -> usize {
        self.state.lock().ages.len()
    }
}

impl HistoryStore for MemoryHistory {
    fn append(&self, entry: Entry, owed: Option<Owed>) -> Result<Option<Owed>, StoreFull> {
        self.keep(entry);
        Ok(owed)
    }

    fn recent(&self, room: &RoomName, limit: Option<usize>) -> Vec<Entry> {
        let kept = self.state.lock();
        let Some(history) = kept.rooms.get(room) else {
            return Vec::new();
        };
        let len = history.entries.len();
        let n = limit.map_or(len, |l| l.min(len));
        history
            .entries
            .iter()
            .skip(len - n)
            .map(|(_, _, entry)| entry.clone())
            .collect()
    }

    fn last_seq(&self, room: &RoomName) -> u64 {
        let kept = self.state.lock();
        let last = kept.rooms.get(room).and_then(|r| r.entries.back());
        last.map_or(0, |(_, _, entry)| entry.seq())
    }

    fn forget(&self, room: &RoomName) {
        let mut kept = self.state.lock();
        if let Some(history) = kept.rooms.remove(room) {
            kept.bytes -= history.bytes;
            kept.live -= history.entries.len();
        }
    }
}

impl Kept {
    /// Drops the oldest entry of all rooms.
    fn drop_oldest(&mut self) {
        while let Some((name, number)) = self.ages.pop_front() {
            let Some(room) = self.rooms.get_mut(&name) else {
                continue;
            };
            if room.entries.front().is_some_and(|&(n, _, _)| n == number) {
                let (_, size, _) = room.entries.pop_front().expect("checked");
                room.bytes -= size;
                self.bytes -= size;
                self.live -= 1;
                return;
            }
        }
    }

    /// Keeps in `ages` only the entries rooms still hold.
    fn sweep(&mut self) {
        let rooms = &self.rooms;
        self.ages.retain(|(name, number)| {
            rooms
                .get(name)
                .and_then(|room| room.entries.front())
                .is_some_and(|&(first, _, _)| *number >= first)
        });
    }
}

/// What keeping `entry` costs, near enough: its text, names and tags, its fields, and the
/// structures around them. docs/benchmarks.md compares it with what the process grows by.
pub fn stored_bytes(entry: &Entry) -> usize {
    const OVERHEAD: usize = size_of::<(u64, usize, Entry)>() + size_of::<(RoomName, u64)>();
    let variable = match entry {
        Entry::Said(said) => {
            said.text.as_str().len()
                + said.from.as_str().len()
                + said.account.as_ref().map_or(0, |a| a.as_str().len())
                + said.tags.as_ref().map_or(0, |t| t.as_str().len())
        }
        Entry::Posted(posted) => {
            let notice = &posted.notice;
            let fields: usize = notice
                .fields
                .iter()
                .map(|(_, field)| match field {
                    Field::Text(text) => text.len() + size_of::<(&str, Field)>(),
                    _ => size_of::<(&str, Field)>(),
                })
                .sum();
            notice.text.as_str().len() + notice.source.as_str().len() + fields
        }
    };
    OVERHEAD + variable
}
