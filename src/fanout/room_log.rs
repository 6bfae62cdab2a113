//! A room's fan-out: each event is appended once to the room's log, and every member reads
//! the log from its own place.
//!
//! Queuing a message into each member's queue costs a lock, a reference count and a store
//! into memory gone cold, per member per message (docs/benchmarks.md, "What limits it").
//! With a log, a message costs one append, and a member's connection takes everything new in one go,
//! while it writes.
//!
//! Order: every event the hub sends is stamped from one counter, whether it goes into a
//! log or straight to one session, so a connection that reads several logs and has its
//! own replies queued merges them back into the order the hub decided.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use super::lock_order::{Level, Ordered, OrderedGuard};
use crate::hub::{FormatKey, Outgoing, SessionId};
use crate::limits::LOG_CHECK_EVERY;
use crate::metrics::FanoutProbe;

/// Entries a [`Chunk`] holds. A reader takes a reference to each chunk its unread part
/// spans, not to each line, so this is how many lines share one reference count; a room
/// with anything in its log keeps at least one chunk (about 40 bytes an entry).
const CHUNK_ENTRIES: usize = 32;

/// Wire formats whose running byte totals a log keeps, for the first formats its members
/// ask about; a member speaking yet another has its backlog walked instead (right, and
/// dearer only in a room that mixes more formats than this). Each costs every entry 8 bytes.
const MEASURED_FORMATS: usize = 3;

/// A room's recent events, kept until every member has read them.
pub struct RoomLog {
    state: Ordered<Entries>,
}

#[derive(Default)]
struct Entries {
    /// Position of the first entry kept: the entries before it were read by every member
    /// and dropped.
    first: u64,
    /// Position of the first slot of `chunks[0]`: a multiple of [`CHUNK_ENTRIES`], at or
    /// before `first`.
    base: u64,
    /// Position of the next entry appended.
    end: u64,
    chunks: VecDeque<Arc<Chunk>>,
    /// Appended since the members' places were last checked.
    unchecked: usize,
    /// For each wire format measured, in the order first asked (its index in
    /// [`LogEntry::before`]), the position up to which entries carry their total before them
    /// in it, and the running total of bytes there.
    measured: Vec<(FormatKey, Measured)>,
}

/// How far a log's entries are measured in one wire format. The total starts wherever the
/// measuring starts (entries dropped unmeasured are skipped), so only the difference of two
/// totals means anything.
#[derive(Default, Clone, Copy)]
struct Measured {
    up_to: u64,
    total: u64,
}

/// A stretch of a log. Its slots are filled once, in order, under the log's lock, and
/// never change after: a reader that holds the chunk reads every slot before the end it
/// saw without the lock, and without a reference count per line, which was among the
/// dearest things a busy server did (docs/benchmarks.md, "What limits it").
pub struct Chunk {
    slots: [OnceLock<LogEntry>; CHUNK_ENTRIES],
}

struct LogEntry {
    /// The hub's stamp: where this event stands among everything the hub sent.
    order: u64,
    /// Who must not hear it (the one who said it).
    except: Option<SessionId>,
    event: Arc<Outgoing>,
    /// For each wire format, the log's running total of bytes before this entry, set the
    /// first time a check measures it in that format. A member's backlog is then one
    /// subtraction instead of a walk over it (docs/benchmarks.md, "What limits it").
    /// Atomics only because chunks are shared; they are read and written under the log's
    /// lock.
    before: [AtomicU64; MEASURED_FORMATS],
    /// Set on a sampled message: each member counts it down as it writes the line.
    probe: Option<Arc<FanoutProbe>>,
}

impl Chunk {
    /// The event in `slot`, which a reader was handed by [`take_in_order`].
    pub fn event(&self, slot: usize) -> &Arc<Outgoing> {
        &self.slots[slot]
            .get()
            .expect("a reader is handed only filled slots")
            .event
    }

    /// The fan-out probe of the message in `slot`, if it was sampled.
    pub fn probe(&self, slot: usize) -> Option<&Arc<FanoutProbe>> {
        self.slots[slot]
            .get()
            .and_then(|entry| entry.probe.as_ref())
    }
}

impl Entries {
    /// The entry at `position`, which is kept (at or after `first`, before `end`), with the
    /// chunk and slot it is in.
    fn locate(&self, position: u64) -> (&Arc<Chunk>, usize, &LogEntry) {
        let at = usize::try_from(position - self.base).expect("a log fits in memory");
        let chunk = &self.chunks[at / CHUNK_ENTRIES];
        let slot = at % CHUNK_ENTRIES;
        let entry = chunk.slots[slot]
            .get()
            .expect("slots before the end are filled");
        (chunk, slot, entry)
    }

    /// Where `format`'s totals are kept, taking a place for it if there is one left.
    fn measured_slot(&mut self, format: FormatKey) -> Option<usize> {
        if let Some(at) = self.measured.iter().position(|(key, _)| *key == format) {
            return Some(at);
        }
        if self.measured.len() == MEASURED_FORMATS {
            return None;
        }
        self.measured.push((format, Measured::default()));
        Some(self.measured.len() - 1)
    }

    /// Bytes of the entries from `from` to the end in the wire format of `slot`, as
    /// `measure` gives each, every reader's own lines included. Measures in that format
    /// what was appended since it last did, each entry once.
    fn bytes_from(&mut self, from: u64, slot: usize, measure: impl Fn(&Outgoing) -> u64) -> u64 {
        let mut measured = self.measured[slot].1;
        for position in measured.up_to.max(self.first)..self.end {
            let (_, _, entry) = self.locate(position);
            entry.before[slot].store(measured.total, Ordering::Relaxed);
            measured.total += measure(&entry.event);
        }
        measured.up_to = self.end;
        self.measured[slot].1 = measured;
        let from = from.max(self.first);
        if from >= self.end {
            return 0;
        }
        let (_, _, entry) = self.locate(from);
        measured.total - entry.before[slot].load(Ordering::Relaxed)
    }

    /// What `reading` has not read: the entries from its place (or the first kept, if
    /// later) to the end but for the reader's own, with the chunk and slot each is in. A
    /// place before the log's start belongs to a member the hub is disconnecting for
    /// falling behind: what it missed is gone, and so is it.
    fn unread<'a>(
        &'a self,
        reading: &Reading,
    ) -> impl Iterator<Item = (&'a Arc<Chunk>, usize, &'a LogEntry)> + use<'a> {
        let reader = Some(reading.reader);
        (reading.next.max(self.first)..self.end)
            .map(move |position| self.locate(position))
            .filter(move |(_, _, entry)| entry.except != reader)
    }

    #[cfg(test)]
    fn len(&self) -> u64 {
        self.end - self.first
    }
}

impl RoomLog {
    pub fn new() -> Arc<RoomLog> {
        Arc::new(RoomLog {
            state: Ordered::with_default(Level::Log),
        })
    }

    /// Appends `event`, stamped `order`, for every member but `except`. True when the
    /// members' places are due for a check ([`LOG_CHECK_EVERY`]): who fell too far behind,
    /// and what everyone has read.
    #[cfg(test)]
    pub fn append(&self, order: u64, except: Option<SessionId>, event: Outgoing) -> bool {
        self.append_probed(order, except, event, None)
    }

    /// [`RoomLog::append`], with the fan-out probe of a sampled message, which each member
    /// counts down as it writes it.
    pub fn append_probed(
        &self,
        order: u64,
        except: Option<SessionId>,
        event: Outgoing,
        probe: Option<Arc<FanoutProbe>>,
    ) -> bool {
        let mut state = self.lock();
        let at = usize::try_from(state.end - state.base).expect("a log fits in memory");
        if at / CHUNK_ENTRIES == state.chunks.len() {
            state.chunks.push_back(Arc::new(Chunk {
                slots: Default::default(),
            }));
        }
        let entry = LogEntry {
            order,
            except,
            event: Arc::new(event),
            before: Default::default(),
            probe,
        };
        let filled = state.chunks[at / CHUNK_ENTRIES].slots[at % CHUNK_ENTRIES].set(entry);
        debug_assert!(filled.is_ok(), "each slot is filled once");
        state.end += 1;
        state.unchecked += 1;
        if state.unchecked >= LOG_CHECK_EVERY {
            state.unchecked = 0;
            true
        } else {
            false
        }
    }

    /// A place for `reader` at the end of the log: it reads what is appended from now on.
    pub fn follow(self: &Arc<Self>, reader: SessionId) -> Reading {
        Reading {
            next: self.lock().end,
            log: self.clone(),
            reader,
        }
    }

    /// Where the log ends now: a member whose place is here has read everything.
    pub fn end(&self) -> u64 {
        self.lock().end
    }

    /// Drops the entries before `keep_from`, which every member has read: the chunks
    /// wholly before it go (readers still writing from one keep it alive).
    pub fn trim(&self, keep_from: u64) {
        let mut state = self.lock();
        state.first = state.first.max(keep_from.min(state.end));
        while state.first - state.base >= CHUNK_ENTRIES as u64 {
            state.chunks.pop_front();
            state.base += CHUNK_ENTRIES as u64;
        }
    }

    /// Entries kept.
    #[cfg(test)]
    pub fn kept(&self) -> u64 {
        self.lock().len()
    }

    fn lock(&self) -> OrderedGuard<'_, Entries> {
        self.state.lock()
    }
}

/// One of the lines [`take_in_order`] hands over from a log: the chunk it is in and its
/// slot there. Holding the chunk (a clone of the `Arc`, once for many lines) keeps the
/// event alive after the log's lock is released.
pub struct Logged<'a> {
    pub chunk: &'a Arc<Chunk>,
    pub slot: usize,
}

impl Logged<'_> {
    pub fn event(&self) -> &Arc<Outgoing> {
        self.chunk.event(self.slot)
    }

    pub fn probe(&self) -> Option<&Arc<FanoutProbe>> {
        self.chunk.probe(self.slot)
    }
}

/// Adds to `lines` what each of `readings` has not read yet, as `line` makes it (`None`:
/// nothing to write for that event), and puts them all in the hub's order: how a
/// connection merges its rooms' logs with what was queued to it alone. `line` is called
/// under the log's lock, oldest first: it must be short.
pub fn take_in_order<T>(
    lines: &mut Vec<(u64, T)>,
    readings: &mut [Reading],
    mut line: impl FnMut(Logged<'_>) -> Option<T>,
) {
    let mut sources = usize::from(!lines.is_empty());
    for reading in readings {
        let before = lines.len();
        let state = reading.log.lock();
        let unread = state.unread(reading);
        // One lock for both: room for all of it, then all of it.
        lines.reserve(unread.size_hint().1.unwrap_or(0));
        for (chunk, slot, entry) in unread {
            if let Some(made) = line(Logged { chunk, slot }) {
                lines.push((entry.order, made));
            }
        }
        reading.next = state.end;
        drop(state);
        sources += usize::from(lines.len() > before);
    }
    if sources > 1 {
        // Stamps are unique: the merge is a plain sort.
        lines.sort_unstable_by_key(|&(order, _)| order);
    }
}

/// A member's place in a room's log: the next entry it reads.
pub struct Reading {
    log: Arc<RoomLog>,
    next: u64,
    reader: SessionId,
}

impl Reading {
    /// Hands `each` what this member has not read yet (not its own messages), oldest first,
    /// with each event's order, and moves past it. Called under the log's lock: `each`
    /// must be short.
    pub fn read(&mut self, each: impl FnMut(u64, &Arc<Outgoing>)) {
        self.next = self.visit(each);
    }

    /// Like [`Reading::read`], without moving.
    #[cfg(test)]
    pub fn unread(&self, each: impl FnMut(u64, &Arc<Outgoing>)) {
        self.visit(each);
    }

    /// Whether what this member has not read (not its own messages) comes to more than
    /// `limit` bytes in `format`, `measure` giving each event's size.
    ///
    /// Checked for every member of a room every [`LOG_CHECK_EVERY`] messages: walking each
    /// member's backlog cost up to a tenth of the server in a busy room, and a member near
    /// its bound thousands of visits a check. The log's running totals answer at once; only
    /// when they say "more", and the member's own lines might make the difference, are
    /// its lines counted one by one. That is rare: a connection moves its places past its
    /// own lines each time it runs, so a member over by the totals is nearly always over
    /// in fact, and about to be disconnected.
    pub fn unread_over(
        &self,
        limit: u64,
        format: FormatKey,
        measure: impl Fn(&Outgoing) -> u64,
    ) -> bool {
        let mut state = self.log.lock();
        if let Some(slot) = state.measured_slot(format)
            && state.bytes_from(self.next, slot, &measure) <= limit
        {
            return false;
        }
        let mut unread = 0;
        state.unread(self).any(|(_, _, entry)| {
            unread += measure(&entry.event);
            unread > limit
        })
    }

    /// Whether this is a place in `log`.
    pub fn is_in(&self, log: &Arc<RoomLog>) -> bool {
        Arc::ptr_eq(&self.log, log)
    }

    /// The position of the next entry to read.
    pub fn next(&self) -> u64 {
        self.next
    }

    fn visit(&self, mut each: impl FnMut(u64, &Arc<Outgoing>)) -> u64 {
        let state = self.log.lock();
        for (_, _, entry) in state.unread(self) {
            each(entry.order, &entry.event);
        }
        state.end
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::{Event, NodeId};

    fn session(serial: u64) -> SessionId {
        SessionId::new(NodeId::default(), serial)
    }

    fn event(n: u64) -> Outgoing {
        Outgoing::new(Event::Ack {
            id: n,
            seq: None,
            ts: 0,
        })
    }

    fn ids(reading: &mut Reading) -> Vec<(u64, u64)> {
        let mut seen = Vec::new();
        reading.read(|order, event| match event.event {
            Event::Ack { id, .. } => seen.push((order, id)),
            _ => unreachable!(),
        });
        seen
    }

    #[test]
    fn each_member_reads_from_its_own_place_and_not_its_own_messages() {
        let log = RoomLog::new();
        let (ana, bob) = (session(1), session(2));
        let mut early = log.follow(ana);
        log.append(10, Some(ana), event(1));
        log.append(11, None, event(2));
        let mut late = log.follow(bob);
        log.append(12, Some(bob), event(3));
        log.append(13, None, event(4));
        assert_eq!(ids(&mut early), [(11, 2), (12, 3), (13, 4)]);
        assert_eq!(ids(&mut late), [(13, 4)]);
        assert!(ids(&mut early).is_empty(), "read once");
        log.append(14, None, event(5));
        let mut unread = Vec::new();
        late.unread(|order, _| unread.push(order));
        assert_eq!(unread, [14]);
        assert_eq!(ids(&mut late), [(14, 5)], "looking did not move it");
    }

    #[test]
    fn trimming_drops_only_what_was_read() {
        let log = RoomLog::new();
        let mut reading = log.follow(session(1));
        for n in 0..3 {
            log.append(n, None, event(n));
        }
        assert_eq!(ids(&mut reading).len(), 3);
        log.append(3, None, event(3));
        log.trim(reading.next());
        assert_eq!(log.lock().len(), 1);
        assert_eq!(ids(&mut reading), [(3, 3)]);
        log.trim(log.end());
        assert_eq!(log.lock().len(), 0);
        // A place left behind by trimming reads from the start of what is kept.
        let mut behind = Reading {
            log: log.clone(),
            next: 0,
            reader: session(2),
        };
        log.append(4, None, event(4));
        assert_eq!(ids(&mut behind), [(4, 4)]);
    }

    /// A wire format of its own for each `N`, for its key.
    struct Format<const N: usize>;

    impl<const N: usize> crate::hub::Encode for Format<N> {
        fn encode(&self, _: &Outgoing) -> bytes::Bytes {
            bytes::Bytes::new()
        }
    }

    fn format<const N: usize>() -> FormatKey {
        crate::hub::Encode::key(&Format::<N>)
    }

    #[test]
    fn formats_past_those_measured_are_counted_by_walking() {
        let log = RoomLog::new();
        let ana = session(1);
        let reading = log.follow(session(2));
        for n in [10, 20, 30] {
            log.append(n, Some(ana), event(n));
        }
        let calls = std::cell::Cell::new(0);
        let keys = [format::<0>(), format::<1>(), format::<2>(), format::<3>()];
        assert_eq!(keys.len(), MEASURED_FORMATS + 1);
        for key in keys {
            assert!(!reading.unread_over(60, key, sizes(&calls)));
            assert!(reading.unread_over(59, key, sizes(&calls)));
        }
        // Three formats measure the 3 entries once each, then walk all 3 for the "over";
        // the fourth walks them for both questions.
        assert_eq!(calls.get(), MEASURED_FORMATS * (3 + 3) + 3 + 3);
        assert_eq!(log.lock().measured.len(), MEASURED_FORMATS);
    }

    /// Each event's size, in a test: its id, counting how often it was asked.
    fn sizes(calls: &std::cell::Cell<usize>) -> impl Fn(&Outgoing) -> u64 + '_ {
        move |event| {
            calls.set(calls.get() + 1);
            match event.event {
                Event::Ack { id, .. } => id,
                _ => unreachable!(),
            }
        }
    }

    #[test]
    fn a_backlog_is_measured_once_and_without_the_members_own_lines() {
        let log = RoomLog::new();
        let (ana, bob) = (session(1), session(2));
        let ana_reads = log.follow(ana);
        let mut bob_reads = log.follow(bob);
        // Sizes 10, 20, 30 and 40; ana said the 20 and the 40.
        for (n, said_by) in [(10, None), (20, Some(ana)), (30, None), (40, Some(ana))] {
            log.append(n, said_by, event(n));
        }
        let calls = std::cell::Cell::new(0);
        assert!(!bob_reads.unread_over(100, format::<0>(), sizes(&calls)));
        assert!(bob_reads.unread_over(99, format::<0>(), sizes(&calls)));
        // Ana has 40 to read though the log holds 100 since her place.
        assert!(!ana_reads.unread_over(40, format::<0>(), sizes(&calls)));
        assert!(ana_reads.unread_over(39, format::<0>(), sizes(&calls)));
        // 4 entries measured once each; the walks: bob's 4 once, ana's up to 2 twice.
        assert_eq!(calls.get(), 4 + 4 + 2 * 2);

        // Another wire format keeps its own totals.
        let other = std::cell::Cell::new(0);
        let doubled = |event: &Outgoing| 2 * sizes(&other)(event);
        assert!(!bob_reads.unread_over(200, format::<1>(), doubled));
        assert!(bob_reads.unread_over(199, format::<1>(), doubled));
        assert_eq!(other.get(), 4 + 4);

        // Read, then more appended: only the new part counts, and only it is measured.
        ids(&mut bob_reads);
        log.append(5, None, event(5));
        calls.set(0);
        assert!(!bob_reads.unread_over(5, format::<0>(), sizes(&calls)));
        assert!(bob_reads.unread_over(4, format::<0>(), sizes(&calls)));
        assert_eq!(calls.get(), 1 + 1);

        // Entries dropped before they were measured: a place before the log's start
        // counts from the start, the totals from wherever measuring picks up.
        log.trim(log.end());
        for n in [7, 8] {
            log.append(n, None, event(n));
        }
        log.trim(log.end() - 1);
        assert!(!ana_reads.unread_over(8, format::<0>(), sizes(&calls)));
        assert!(ana_reads.unread_over(7, format::<0>(), sizes(&calls)));
        assert!(!bob_reads.unread_over(8, format::<0>(), sizes(&calls)));
        other.set(0);
        assert!(!bob_reads.unread_over(16, format::<1>(), doubled));
        assert!(bob_reads.unread_over(15, format::<1>(), doubled));
        assert_eq!(
            other.get(),
            1 + 1,
            "the entries dropped unmeasured are skipped"
        );
    }

    #[test]
    fn a_check_falls_due_every_so_many_entries() {
        let log = RoomLog::new();
        let due: Vec<bool> = (0..2 * LOG_CHECK_EVERY as u64)
            .map(|n| log.append(n, None, event(n)))
            .collect();
        assert_eq!(due.iter().filter(|&&d| d).count(), 2);
        assert!(due[LOG_CHECK_EVERY - 1] && due[2 * LOG_CHECK_EVERY - 1]);
    }

    #[test]
    fn lines_taken_across_chunks_outlive_trimming() {
        let log = RoomLog::new();
        let (ana, bob) = (session(1), session(2));
        let mut readings = [log.follow(bob)];
        let total = 3 * CHUNK_ENTRIES as u64 + 5;
        for n in 0..total {
            let except = (n % 7 == 0).then_some(bob);
            log.append(100 + n, except.or(Some(ana)), event(n));
        }
        // Held like a connection holds them: each chunk once, lines by slot.
        let mut held: Vec<Arc<Chunk>> = Vec::new();
        let mut lines = Vec::new();
        take_in_order(&mut lines, &mut readings, |logged| {
            if !held.last().is_some_and(|c| Arc::ptr_eq(c, logged.chunk)) {
                held.push(logged.chunk.clone());
            }
            Some((held.len() - 1, logged.slot))
        });
        assert_eq!(held.len(), 4, "one reference per chunk, not per line");
        // Everything is read: the log lets go of every whole chunk.
        log.trim(readings[0].next());
        assert_eq!(log.lock().len(), 0);
        assert_eq!(
            log.lock().chunks.len(),
            1,
            "the chunk still being filled stays"
        );
        let seen: Vec<u64> = lines
            .iter()
            .map(|&(_, (chunk, slot))| match held[chunk].event(slot).event {
                Event::Ack { id, .. } => id,
                _ => unreachable!(),
            })
            .collect();
        let expected: Vec<u64> = (0..total).filter(|n| n % 7 != 0).collect();
        assert_eq!(seen, expected, "in order, and not bob's own");
        assert!(lines.iter().map(|(order, _)| order).is_sorted());
        // The log goes on filling its last chunk and the next.
        for n in total..total + CHUNK_ENTRIES as u64 {
            log.append(100 + n, None, event(n));
        }
        let mut reading = log.follow(ana);
        log.append(999, None, event(999));
        assert_eq!(ids(&mut reading), [(999, 999)]);
        assert_eq!(ids(&mut readings[0]).len(), CHUNK_ENTRIES + 1);
    }
}
