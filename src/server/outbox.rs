//! A connection's outgoing queue, bounded in bytes.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Waker;

use crate::hub::{Encoded, Outgoing, Overflow, Recipient};
use crate::protocol::{self, Format};

/// Encoded events waiting to be written to one connection. The hub fills it without ever
/// waiting; the connection task drains it. Bytes count against the bound from the moment
/// they are queued until they are written, so a client that stops reading fills it and is
/// disconnected ([`crate::limits::SEND_QUEUE_BYTES`]).
///
/// The task is woken only when the queue goes from empty to not empty (or closes): it
/// always takes everything, so later lines ride on the same wake-up. A message to a room
/// of a thousand thus costs a thousand pushes but only as many wake-ups as there are
/// connections that had nothing waiting.
///
/// The task's waker is kept under the same lock as the queue: the task hands it over as it
/// takes, and a push to an empty queue takes it back out to wake the task — one lock for
/// both, and a smaller block than a separate `AtomicWaker`.
pub struct Outbox {
    /// u32, like the count: this keeps the whole outbox in an 80-byte block (idle memory is
    /// a target: docs/benchmarks.md). A `--send-queue` over 4 GiB counts as 4 GiB.
    bound: u32,
    json: AtomicBool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    queue: Vec<Encoded>,
    /// Woken when something is queued to an empty queue, or on close.
    task: Option<Waker>,
    /// Queued or taken, and not yet written; saturates at `u32::MAX`.
    unwritten: u32,
    closed: bool,
}

impl Outbox {
    pub fn new(bound: usize) -> Outbox {
        Outbox {
            bound: u32::try_from(bound).unwrap_or(u32::MAX),
            json: AtomicBool::new(false),
            state: Mutex::default(),
        }
    }

    pub fn set_format(&self, format: Format) {
        self.json.store(format == Format::Json, Ordering::Relaxed);
    }

    fn format(&self) -> Format {
        if self.json.load(Ordering::Relaxed) {
            Format::Json
        } else {
            Format::Text
        }
    }

    /// Everything queued, and whether the session is closed (nothing more will come after
    /// what was taken). `waker`, when given, is woken when something more is queued to an
    /// empty queue (or the session closes); nothing pushed after this call goes unnoticed.
    pub fn take(&self, waker: Option<&Waker>) -> (VecDeque<Encoded>, bool) {
        let mut state = self.lock();
        if let Some(waker) = waker {
            match &mut state.task {
                Some(kept) if kept.will_wake(waker) => {}
                slot => *slot = Some(waker.clone()),
            }
        }
        // Reuses the queue's buffer: no copy, no allocation.
        let taken = VecDeque::from(std::mem::take(&mut state.queue));
        (taken, state.closed)
    }

    /// Puts back, ahead of anything queued since, what was taken and could not be written
    /// yet. Only a connection whose socket is full does this; the task then waits for room
    /// in the socket rather than for this queue, which is no longer empty.
    pub fn give_back(&self, rest: VecDeque<Encoded>) {
        let mut state = self.lock();
        let mut queue = Vec::from(rest);
        queue.append(&mut state.queue);
        state.queue = queue;
    }

    /// `n` taken bytes reached the socket.
    pub fn written(&self, n: usize) {
        let mut state = self.lock();
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        state.unwritten = state.unwritten.saturating_sub(n);
    }

    fn push(&self, bytes: Encoded, bounded: bool) -> Result<(), Overflow> {
        let mut state = self.lock();
        if state.closed {
            return Ok(());
        }
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        if bounded && u64::from(state.unwritten) + u64::from(len) > u64::from(self.bound) {
            return Err(Overflow);
        }
        state.unwritten = state.unwritten.saturating_add(len);
        let was_empty = state.queue.is_empty();
        state.queue.push(bytes);
        state.closed = !bounded;
        let task = if was_empty || !bounded {
            state.task.take()
        } else {
            None
        };
        drop(state);
        if let Some(task) = task {
            task.wake();
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Recipient for Outbox {
    fn deliver(&self, event: &Outgoing) -> Result<(), Overflow> {
        let bytes = protocol::encode(self.format(), event);
        if bytes.is_empty() {
            return Ok(());
        }
        self.push(bytes, true)
    }

    fn close(&self, last: &Outgoing) {
        let bytes = protocol::encode(self.format(), last);
        let _ = self.push(bytes, false);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    use super::*;

    /// Counts its wake-ups.
    #[derive(Default)]
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn line(text: &'static str) -> Encoded {
        Arc::new(bytes::Bytes::from_static(text.as_bytes()))
    }

    #[test]
    fn wakes_once_per_empty_queue_and_counts_bytes_until_written() {
        let outbox = Outbox::new(10);
        let counter = Arc::new(Counter::default());
        let waker = Waker::from(counter.clone());
        let wakes = || counter.0.load(Ordering::Relaxed);

        let (taken, closed) = outbox.take(Some(&waker));
        assert!(taken.is_empty() && !closed);
        outbox.push(line("ab\n"), true).unwrap();
        outbox.push(line("cd\n"), true).unwrap();
        assert_eq!(wakes(), 1, "the second line rides on the first wake-up");

        let (taken, closed) = outbox.take(Some(&waker));
        assert!(!closed);
        assert_eq!(taken, [line("ab\n"), line("cd\n")]);
        // Taken but not written still counts against the bound.
        assert_eq!(outbox.push(line("efghi\n"), true), Err(Overflow));
        outbox.written(6);
        outbox.push(line("efghi\n"), true).unwrap();
        assert_eq!(wakes(), 2, "an empty queue wakes again");
    }

    #[test]
    fn closing_wakes_even_a_busy_queue_and_takes_nothing_more() {
        let outbox = Outbox::new(100);
        let counter = Arc::new(Counter::default());
        let waker = Waker::from(counter.clone());
        let mut taken = Vec::new();
        taken.extend(outbox.take(Some(&waker)).0);
        outbox.push(line("a\n"), true).unwrap();
        taken.extend(outbox.take(Some(&waker)).0);
        outbox.push(line("b\n"), true).unwrap();
        outbox.push(line("bye\n"), false).unwrap();
        assert_eq!(
            counter.0.load(Ordering::Relaxed),
            2,
            "the push to a busy queue did not wake"
        );
        outbox.push(line("late\n"), true).unwrap();
        let (last, closed) = outbox.take(None);
        assert!(closed, "closed");
        taken.extend(last);
        assert_eq!(taken, [line("a\n"), line("b\n"), line("bye\n")]);
    }

    #[test]
    fn what_was_given_back_goes_out_first_and_no_one_is_woken_for_it() {
        let outbox = Outbox::new(100);
        let counter = Arc::new(Counter::default());
        let waker = Waker::from(counter.clone());
        outbox.take(Some(&waker));
        outbox.push(line("a\n"), true).unwrap();
        outbox.push(line("b\n"), true).unwrap();
        let (mut taken, _) = outbox.take(Some(&waker));
        // The socket took "a\n" only.
        taken.pop_front();
        outbox.written(2);
        outbox.give_back(taken);
        outbox.push(line("c\n"), true).unwrap();
        assert_eq!(
            counter.0.load(Ordering::Relaxed),
            1,
            "a queue holding what was given back is not empty: the task waits for the socket"
        );
        let (taken, _) = outbox.take(None);
        assert_eq!(taken, [line("b\n"), line("c\n")]);
        // The bytes given back still count against the bound until written.
        let long = Arc::new(bytes::Bytes::from("x".repeat(97)));
        assert_eq!(outbox.push(long, true), Err(Overflow));
    }
}
