//! A room's fan-out: each event is appended once to the room's log, and every member reads
//! the log from its own place.
//!
//! Queuing a message into each member's queue cost a lock, a reference count and a store
//! into memory gone cold, per member per message: at 5M deliveries a second that was a
//! fifth to a third of the server's core (docs/benchmarks.md, "What limits it"). With a log,
//! a message costs one append, and a member's connection takes everything new in one go,
//! while it writes.
//!
//! Order: every event the hub sends is stamped from one counter, whether it goes into a
//! log or straight to one session, so a connection that reads several logs and has its
//! own replies queued merges them back into the order the hub decided.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use super::SessionId;
use super::event::Outgoing;
use crate::limits::LOG_CHECK_EVERY;

/// A room's recent events, kept until every member has read them.
#[derive(Default)]
pub struct RoomLog {
    state: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    /// Position of `entries[0]` in the room's life: the entries before it were read by
    /// every member and dropped.
    first: u64,
    entries: VecDeque<Entry>,
    /// Appended since the members' places were last checked.
    unchecked: usize,
}

struct Entry {
    /// The hub's stamp: where this event stands among everything the hub sent.
    order: u64,
    /// Who must not hear it (the one who said it).
    except: Option<SessionId>,
    event: Arc<Outgoing>,
}

impl Entries {
    fn end(&self) -> u64 {
        self.first + self.entries.len() as u64
    }
}

impl RoomLog {
    pub(super) fn new() -> Arc<RoomLog> {
        Arc::default()
    }

    /// Appends `event`, stamped `order`, for every member but `except`. True when the
    /// members' places are due for a check ([`LOG_CHECK_EVERY`]): who fell too far behind,
    /// and what everyone has read.
    pub(super) fn append(&self, order: u64, except: Option<SessionId>, event: Outgoing) -> bool {
        let mut state = self.lock();
        state.entries.push_back(Entry {
            order,
            except,
            event: Arc::new(event),
        });
        state.unchecked += 1;
        if state.unchecked >= LOG_CHECK_EVERY {
            state.unchecked = 0;
            true
        } else {
            false
        }
    }

    /// A place for `reader` at the end of the log: it reads what is appended from now on.
    pub(super) fn follow(self: &Arc<Self>, reader: SessionId) -> Reading {
        Reading {
            next: self.lock().end(),
            log: self.clone(),
            reader,
        }
    }

    /// Where the log ends now: a member whose place is here has read everything.
    pub(super) fn end(&self) -> u64 {
        self.lock().end()
    }

    /// Drops the entries before `keep_from`, which every member has read.
    pub(super) fn trim(&self, keep_from: u64) {
        let mut state = self.lock();
        let drop = keep_from.saturating_sub(state.first);
        let drop =
            usize::try_from(drop).map_or(state.entries.len(), |d| d.min(state.entries.len()));
        state.entries.drain(..drop);
        state.first += drop as u64;
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Adds to `lines` what each of `readings` has not read yet, as `line` makes it (`None`:
/// nothing to write for that event), and puts them all in the hub's order: how a
/// connection merges its rooms' logs with what was queued to it alone.
pub fn take_in_order<T>(
    lines: &mut Vec<(u64, T)>,
    readings: &mut [Reading],
    mut line: impl FnMut(&Arc<Outgoing>) -> Option<T>,
) {
    let mut sources = usize::from(!lines.is_empty());
    for reading in readings {
        let before = lines.len();
        let state = reading.log.lock();
        let unread = reading.unread_in(&state);
        // One lock for both: room for all of it, then all of it.
        lines.reserve(unread.size_hint().1.unwrap_or(0));
        lines.extend(unread.filter_map(|entry| Some((entry.order, line(&entry.event)?))));
        let end = state.end();
        drop(state);
        reading.next = end;
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
    pub fn unread(&self, each: impl FnMut(u64, &Arc<Outgoing>)) {
        self.visit(each);
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
        for entry in self.unread_in(&state) {
            each(entry.order, &entry.event);
        }
        state.end()
    }

    /// The entries of `state` (this place's log, locked) after this place, but for the
    /// reader's own.
    fn unread_in<'a>(&self, state: &'a Entries) -> impl Iterator<Item = &'a Entry> + use<'a> {
        // A place before the log's start belongs to a member the hub is disconnecting for
        // falling behind: what it missed is gone, and so is it.
        let skip = self.next.saturating_sub(state.first);
        let skip = usize::try_from(skip).unwrap_or(usize::MAX);
        let reader = Some(self.reader);
        state
            .entries
            .iter()
            .skip(skip)
            .filter(move |entry| entry.except != reader)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::Event;

    fn event(n: u64) -> Outgoing {
        Outgoing::new(Event::Ack { id: n, ts: 0 })
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
        let (ana, bob) = (SessionId(1), SessionId(2));
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
        let mut reading = log.follow(SessionId(1));
        for n in 0..3 {
            log.append(n, None, event(n));
        }
        assert_eq!(ids(&mut reading).len(), 3);
        log.append(3, None, event(3));
        log.trim(reading.next());
        assert_eq!(log.lock().entries.len(), 1);
        assert_eq!(ids(&mut reading), [(3, 3)]);
        log.trim(log.end());
        assert!(log.lock().entries.is_empty());
        // A place left behind by trimming reads from the start of what is kept.
        let mut behind = Reading {
            log: log.clone(),
            next: 0,
            reader: SessionId(2),
        };
        log.append(4, None, event(4));
        assert_eq!(ids(&mut behind), [(4, 4)]);
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
}
