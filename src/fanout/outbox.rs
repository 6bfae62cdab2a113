//! A connection's outgoing queue, bounded in bytes, and its places in its rooms' logs.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Waker;

use super::lock_order::{Level, Ordered, OrderedGuard};
use super::pending::{Pending, Stamped};
use super::recipient::{Overflow, Recipient};
use super::room_log::{Reading, RoomLog};
use crate::hub::{Encode, Encoded, Outgoing};

/// What waits to be written to one connection: events sent to it alone, queued here, and
/// whatever is new in the logs of the rooms it is in, taken when it writes. The hub never
/// waits on it. Bytes count against the bound from the moment they are queued (or, for a
/// room's log, appended) until they are written, so a client that stops reading passes it
/// and is disconnected ([`crate::limits::SEND_QUEUE_BYTES`]).
///
/// The task is woken once a round: taking arms the outbox, and the first message or line
/// after that wakes the task and disarms it. Every later message rides on that wake-up, so
/// while a connection is busy writing, a message to its room costs it one load of a flag.
///
/// The task's waker is kept under the same lock as the queue: the task hands it over as it
/// takes, one lock for both.
pub struct Outbox {
    /// u32, like the count, to keep the outbox small: every idle connection has one. A `--send-queue` over 4 GiB counts as 4 GiB.
    bound: u32,
    /// The task took what there was and wants to hear of anything new.
    armed: AtomicBool,
    state: Ordered<Queued>,
}

/// Where a connection's session is, as [`Outbox::take`] finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Open,
    /// Over, with acks still owed ([`Recipient::end`]): the connection stops reading, writes
    /// what comes and waits for the close.
    Ending,
    /// Closed: nothing more comes after what was taken.
    Closed,
}

struct Queued {
    /// How the connection is written; under the lock, which every use takes anyway.
    format: &'static dyn Encode,
    /// In the hub's order.
    queue: Vec<Stamped>,
    /// A place in the log of each room the session is in. A boxed slice of exactly that
    /// many: it changes only on joining and leaving, and a `Vec` would cost every idle
    /// connection its spare capacity and a word.
    readings: Box<[Reading]>,
    /// Woken when something new comes after the task armed the outbox, or on close.
    task: Option<Waker>,
    /// Queued or taken, and not yet written; saturates at `u32::MAX`.
    unwritten: u32,
    phase: Phase,
}

impl Outbox {
    /// An outbox of `bound` bytes for a connection written in `format`.
    pub fn new(bound: usize, format: &'static dyn Encode) -> Outbox {
        Outbox {
            bound: u32::try_from(bound).unwrap_or(u32::MAX),
            armed: AtomicBool::new(false),
            state: Ordered::new(
                Level::Outbox,
                Queued {
                    format,
                    queue: Vec::new(),
                    readings: Box::default(),
                    task: None,
                    unwritten: 0,
                    phase: Phase::Open,
                },
            ),
        }
    }

    /// What is queued from now on is written in `format`.
    pub fn set_format(&self, format: &'static dyn Encode) {
        self.lock().format = format;
    }

    /// Queues `event` as an answer of the connection's own (before it is a session, no
    /// hub stamps it), after everything queued.
    pub fn answer(&self, event: &Outgoing) -> Result<(), Overflow> {
        let state = self.lock();
        let bytes = event.encoded(state.format).clone();
        self.answer_locked(state, bytes)
    }

    /// Queues bytes a codec wrote itself (a handshake's answers), after everything queued.
    pub fn answer_bytes(&self, bytes: Encoded) -> Result<(), Overflow> {
        self.answer_locked(self.lock(), bytes)
    }

    fn answer_locked(
        &self,
        state: OrderedGuard<'_, Queued>,
        bytes: Encoded,
    ) -> Result<(), Overflow> {
        if bytes.is_empty() {
            return Ok(());
        }
        let order = state.queue.last().map_or(0, |&(order, ..)| order);
        self.push(state, order, bytes, false)
    }

    /// Everything queued and everything new in the rooms' logs, in the hub's order, and
    /// where the session is ([`Phase::Closed`]: nothing more will come after what was
    /// taken). `waker`, when given, is woken when anything more comes (or the session ends
    /// or closes); nothing that comes after this call goes unnoticed.
    pub fn take(&self, waker: Option<&Waker>) -> (Pending, Phase) {
        let mut state = self.lock();
        if let Some(waker) = waker {
            match &mut state.task {
                Some(kept) if kept.will_wake(waker) => {}
                slot => *slot = Some(waker.clone()),
            }
        }
        // Before reading the logs: an append they do not show yet notifies after it.
        self.armed.store(true, Ordering::SeqCst);
        let mut pending = Pending::new(state.format, std::mem::take(&mut state.queue));
        let taken = pending.read_logs(&mut state.readings);
        let taken = u32::try_from(taken).unwrap_or(u32::MAX);
        state.unwritten = state.unwritten.saturating_add(taken);
        (pending, state.phase)
    }

    /// Puts back, ahead of anything queued since, what was taken and could not be written
    /// yet. Only a connection whose socket is full does this; the task then waits for room
    /// in the socket rather than for this outbox.
    pub fn give_back(&self, rest: Pending) {
        let mut queue = rest.into_lines();
        let mut state = self.lock();
        self.armed.store(false, Ordering::SeqCst);
        queue.append(&mut state.queue);
        state.queue = queue;
    }

    /// Replaces the lines stamped within any of `stamps`, wherever they wait (queued, or
    /// in the rooms' logs), and then `own`, by the one piece `wrap` makes of them all, in
    /// the place of the first; at the end when none waits. For IRC's labeled-response,
    /// which wraps everything that answered one command: it runs on the connection's task
    /// between its writes, so nothing stamped within is written yet. The task is not
    /// woken: it writes what there is next anyway.
    pub fn relabel(
        &self,
        stamps: &[Range<u64>],
        own: Vec<Encoded>,
        wrap: &mut dyn FnMut(Vec<Encoded>) -> Encoded,
    ) {
        let mut state = self.lock();
        let mut pending = Pending::new(state.format, std::mem::take(&mut state.queue));
        let read = pending.read_logs(&mut state.readings);
        let mut kept = Vec::new();
        let mut answered = Vec::new();
        let mut at = None;
        for line in pending.into_lines() {
            if stamps.iter().any(|within| within.contains(&line.0)) {
                at.get_or_insert((kept.len(), line.0));
                answered.push(line.1);
            } else {
                kept.push(line);
            }
        }
        let last = kept.last().map_or(0, |&(order, ..)| order);
        let (at, order) = at.unwrap_or((kept.len(), last));
        let replaced: usize = answered.iter().map(|bytes| bytes.len()).sum();
        let wrapped = wrap(answered.into_iter().chain(own).collect());
        let grown = (read + wrapped.len()).saturating_sub(replaced);
        state.unwritten = state
            .unwritten
            .saturating_add(u32::try_from(grown).unwrap_or(u32::MAX));
        if !wrapped.is_empty() {
            kept.insert(at, (order, wrapped, None));
        }
        state.queue = kept;
    }

    /// `n` taken bytes reached the socket.
    pub fn written(&self, n: usize) {
        let mut state = self.lock();
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        state.unwritten = state.unwritten.saturating_sub(n);
    }

    /// Queues `bytes`; `last` closes the session after them.
    fn push(
        &self,
        mut state: OrderedGuard<'_, Queued>,
        order: u64,
        bytes: Encoded,
        last: bool,
    ) -> Result<(), Overflow> {
        if state.phase == Phase::Closed {
            return Ok(());
        }
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        // The goodbye, and the acks an ending session is owed, go whatever the bound.
        if !last
            && state.phase == Phase::Open
            && u64::from(state.unwritten) + u64::from(len) > u64::from(self.bound)
        {
            return Err(Overflow);
        }
        state.unwritten = state.unwritten.saturating_add(len);
        // Usually the newest; what a room's log hands over when its reader leaves may not be.
        // After any of the same order: a connection's own answers share one.
        let at = state.queue.partition_point(|&(queued, ..)| queued <= order);
        state.queue.insert(at, (order, bytes, None));
        if last {
            state.phase = Phase::Closed;
            state.readings = Box::default();
        }
        let task = if self.armed.swap(false, Ordering::SeqCst) || last {
            state.task.clone()
        } else {
            None
        };
        drop(state);
        if let Some(task) = task {
            task.wake();
        }
        Ok(())
    }

    fn lock(&self) -> OrderedGuard<'_, Queued> {
        self.state.lock()
    }
}

impl Recipient for Outbox {
    fn deliver(&self, order: u64, event: &Outgoing) -> Result<(), Overflow> {
        let state = self.lock();
        let bytes = event.encoded(state.format);
        if bytes.is_empty() {
            return Ok(());
        }
        let bytes = bytes.clone();
        self.push(state, order, bytes, false)
    }

    fn fits(&self, event: &Outgoing) -> bool {
        let state = self.lock();
        let len = event.encoded(state.format).len() as u64;
        u64::from(state.unwritten) + len <= u64::from(self.bound)
    }

    fn close(&self, order: u64, last: &Outgoing) {
        let state = self.lock();
        let bytes = last.encoded(state.format).clone();
        let _ = self.push(state, order, bytes, true);
    }

    fn end(&self) {
        let mut state = self.lock();
        if state.phase == Phase::Open {
            state.phase = Phase::Ending;
            state.readings = Box::default();
        }
        let task = state.task.clone();
        drop(state);
        if let Some(task) = task {
            task.wake();
        }
    }

    fn follow(&self, reading: Reading) {
        let mut state = self.lock();
        if state.phase == Phase::Open {
            let mut readings = std::mem::take(&mut state.readings).into_vec();
            readings.push(reading);
            state.readings = readings.into_boxed_slice();
        }
    }

    fn unfollow(&self, log: &Arc<RoomLog>) -> Option<Reading> {
        let mut state = self.lock();
        let at = state.readings.iter().position(|r| r.is_in(log))?;
        let mut readings = std::mem::take(&mut state.readings).into_vec();
        let reading = readings.swap_remove(at);
        state.readings = readings.into_boxed_slice();
        Some(reading)
    }

    fn check(&self, log: &Arc<RoomLog>) -> Result<Option<u64>, Overflow> {
        let state = self.lock();
        let Some(reading) = state.readings.iter().find(|r| r.is_in(log)) else {
            return Ok(None);
        };
        let format = state.format;
        let Some(room_left) = self.bound.checked_sub(state.unwritten) else {
            return Err(Overflow);
        };
        let measure = |event: &Outgoing| event.encoded(format).len() as u64;
        if reading.unread_over(room_left.into(), format.key(), measure) {
            return Err(Overflow);
        }
        Ok(Some(reading.next()))
    }

    fn notify(&self) -> Option<Waker> {
        // A plain load first: a busy connection, already woken this round, costs no write.
        if self.armed.load(Ordering::Relaxed) && self.armed.swap(false, Ordering::SeqCst) {
            self.lock().task.clone()
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::wake_counter::WakeCounter;
    use super::*;
    use crate::hub::{Event, Hub, Request};
    use crate::protocol::TEXT;

    fn line(text: &str) -> Encoded {
        Arc::new(bytes::Bytes::from(text.to_string()))
    }

    fn text(pending: Pending) -> String {
        pending
            .into_lines()
            .iter()
            .map(|(_, bytes, _)| std::str::from_utf8(bytes).unwrap())
            .collect()
    }

    #[test]
    fn wakes_once_a_round_and_counts_bytes_until_written() {
        let outbox = Outbox::new(10, &TEXT);
        let counter = WakeCounter::new();
        let waker = counter.waker();
        let wakes = || counter.count();

        let (taken, closed) = outbox.take(Some(&waker));
        assert!(taken.is_empty() && closed == Phase::Open);
        outbox.push(outbox.lock(), 1, line("ab\n"), false).unwrap();
        outbox.push(outbox.lock(), 2, line("cd\n"), false).unwrap();
        assert!(outbox.notify().is_none(), "a room's news rides on it too");
        assert_eq!(wakes(), 1, "what came later rides on the first wake-up");

        let (taken, closed) = outbox.take(Some(&waker));
        assert_eq!(closed, Phase::Open);
        assert_eq!(text(taken), "ab\ncd\n");
        // Taken but not written still counts against the bound.
        assert_eq!(
            outbox.push(outbox.lock(), 3, line("efghi\n"), false),
            Err(Overflow)
        );
        outbox.written(6);
        // Taking armed it again: news from a room hands its waker over, once.
        outbox.notify().expect("armed").wake();
        assert!(outbox.notify().is_none());
        outbox
            .push(outbox.lock(), 3, line("efghi\n"), false)
            .unwrap();
        assert_eq!(wakes(), 2);
    }

    #[test]
    fn closing_wakes_even_a_busy_outbox_and_takes_nothing_more() {
        let outbox = Outbox::new(100, &TEXT);
        let counter = WakeCounter::new();
        let waker = counter.waker();
        let mut taken = String::new();
        taken += &text(outbox.take(Some(&waker)).0);
        outbox.push(outbox.lock(), 1, line("a\n"), false).unwrap();
        taken += &text(outbox.take(Some(&waker)).0);
        outbox.push(outbox.lock(), 2, line("b\n"), false).unwrap();
        outbox.push(outbox.lock(), 3, line("bye\n"), true).unwrap();
        // "a" woke the task; "b", after it took again, woke it again; the close wakes it
        // even though it was woken already.
        assert_eq!(counter.count(), 3);
        outbox
            .push(outbox.lock(), 4, line("late\n"), false)
            .unwrap();
        let (last, closed) = outbox.take(None);
        assert_eq!(closed, Phase::Closed);
        taken += &text(last);
        assert_eq!(taken, "a\nb\nbye\n");
    }

    #[test]
    fn an_ending_outbox_wakes_its_task_and_takes_what_is_owed_past_its_bound() {
        let outbox = Outbox::new(4, &TEXT);
        let counter = WakeCounter::new();
        let waker = counter.waker();
        assert_eq!(outbox.take(Some(&waker)).1, Phase::Open);
        outbox
            .push(outbox.lock(), 1, line("full\n"), false)
            .unwrap_err();
        outbox.end();
        assert_eq!(
            counter.count(),
            1,
            "the end wakes the task: it stops reading"
        );
        // The acks still owed are queued whatever the bound.
        outbox
            .push(outbox.lock(), 2, line("ack 1\n"), false)
            .unwrap();
        outbox
            .push(outbox.lock(), 3, line("ack 2\n"), false)
            .unwrap();
        let (taken, phase) = outbox.take(Some(&waker));
        assert_eq!(phase, Phase::Ending);
        assert_eq!(text(taken), "ack 1\nack 2\n");
        outbox.close(4, &Outgoing::new(Event::Help));
        assert_eq!(outbox.take(None).1, Phase::Closed);
    }

    #[test]
    fn what_was_given_back_goes_out_first_and_no_one_is_woken_for_it() {
        let outbox = Outbox::new(100, &TEXT);
        let counter = WakeCounter::new();
        let waker = counter.waker();
        outbox.take(Some(&waker));
        outbox.push(outbox.lock(), 1, line("a\n"), false).unwrap();
        outbox.push(outbox.lock(), 2, line("b\n"), false).unwrap();
        let (mut taken, _) = outbox.take(Some(&waker));
        // The socket took "a\n" only.
        taken.advance(2);
        outbox.written(2);
        outbox.give_back(taken);
        outbox.push(outbox.lock(), 3, line("c\n"), false).unwrap();
        assert!(outbox.notify().is_none());
        assert_eq!(
            counter.count(),
            1,
            "an outbox holding what was given back is not armed: the task waits for the socket"
        );
        let (taken, _) = outbox.take(None);
        assert_eq!(text(taken), "b\nc\n");
        // The bytes given back still count against the bound until written.
        assert_eq!(
            outbox.push(outbox.lock(), 4, line(&"x".repeat(97)), false),
            Err(Overflow)
        );
    }

    #[test]
    fn an_older_line_handed_over_takes_its_place_in_the_order() {
        let outbox = Outbox::new(100, &TEXT);
        outbox
            .push(outbox.lock(), 5, line("reply\n"), false)
            .unwrap();
        outbox
            .push(outbox.lock(), 9, line("later\n"), false)
            .unwrap();
        outbox
            .push(outbox.lock(), 7, line("from the room\n"), false)
            .unwrap();
        assert_eq!(text(outbox.take(None).0), "reply\nfrom the room\nlater\n");
    }

    /// Through a hub: what two rooms' logs hold and the replies queued to the connection
    /// come out in the order the hub sent them.
    #[test]
    fn rooms_and_replies_come_out_in_the_hubs_order() {
        use crate::hub::{Command, MessageText, RoomName};
        let hub = Hub::new(&crate::limits::Limits {
            history_per_room: 0,
            ..Default::default()
        });
        let ana = Arc::new(Outbox::new(1 << 20, &TEXT));
        let bob = Arc::new(Outbox::new(1 << 20, &TEXT));
        let a = hub.register(ana.clone(), None).unwrap();
        let b = hub.register(bob.clone(), None).unwrap();
        let say = |room: &str, text: &str| -> Request {
            Command::Say {
                room: Some(RoomName::parse(room).unwrap()),
                text: MessageText::new(text).unwrap(),
                action: false,
            }
            .into()
        };
        for id in [a, b] {
            hub.apply(id, Command::Join(RoomName::parse("#two").unwrap()).into());
        }
        bob.take(None);
        hub.apply(a, say("#lobby", "one"));
        hub.apply(a, say("#two", "two"));
        hub.reply(b, Event::Help, None);
        hub.apply(a, say("#lobby", "three"));
        let said = text(bob.take(None).0);
        let order: Vec<usize> = ["one", "two", "*** commands", "three"]
            .iter()
            .map(|word| {
                said.find(word)
                    .unwrap_or_else(|| panic!("{word} in {said}"))
            })
            .collect();
        assert!(order.is_sorted(), "{said}");
    }

    #[test]
    fn a_member_far_behind_its_rooms_log_is_over_its_bound() {
        let hub = Hub::new(&crate::limits::Limits {
            history_per_room: 0,
            ..Default::default()
        });
        let ana = Arc::new(Outbox::new(1 << 20, &TEXT));
        let slow = Arc::new(Outbox::new(4096, &TEXT));
        let a = hub.register(ana.clone(), None).unwrap();
        hub.register(slow.clone(), None).unwrap();
        let long = crate::hub::MessageText::new(&"x".repeat(100)).unwrap();
        for _ in 0..2 * crate::limits::LOG_CHECK_EVERY {
            let say = crate::hub::Command::Say {
                room: None,
                text: long.clone(),
                action: false,
            };
            hub.apply(a, say.into());
            ana.take(None);
        }
        assert_eq!(hub.session_count(), 1, "the slow reader was disconnected");
        let (last, closed) = slow.take(None);
        assert_eq!(closed, Phase::Closed);
        let last = text(last);
        assert!(last.ends_with("(send queue exceeded)\n"), "{last}");
    }
}
