//! A connection's outgoing queue, bounded in bytes.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Waker;

use bytes::Bytes;
use futures_util::task::AtomicWaker;

use crate::hub::{Outgoing, Overflow, Recipient};
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
pub struct Outbox {
    /// u32, beside `json`: with a `Vec` for the queue this keeps the whole outbox, counts
    /// included, in a 96-byte block (idle memory is a target: docs/benchmarks.md). A
    /// `--send-queue` over 4 GiB counts as 4 GiB.
    bound: u32,
    json: AtomicBool,
    state: Mutex<State>,
    task: AtomicWaker,
}

#[derive(Default)]
struct State {
    queue: Vec<Bytes>,
    /// Queued or taken, and not yet written.
    unwritten: usize,
    closed: bool,
}

impl Outbox {
    pub fn new(bound: usize) -> Outbox {
        Outbox {
            bound: u32::try_from(bound).unwrap_or(u32::MAX),
            json: AtomicBool::new(false),
            state: Mutex::default(),
            task: AtomicWaker::new(),
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

    /// Moves everything queued to `into`; true once the session is closed (nothing more
    /// will come after what was taken).
    pub fn take(&self, into: &mut VecDeque<Bytes>) -> bool {
        let mut state = self.lock();
        if into.is_empty() {
            // Reuses the queue's buffer: no copy, no allocation.
            *into = VecDeque::from(std::mem::take(&mut state.queue));
        } else {
            into.extend(state.queue.drain(..));
        }
        state.closed
    }

    /// `n` taken bytes reached the socket.
    pub fn written(&self, n: usize) {
        let mut state = self.lock();
        state.unwritten = state.unwritten.saturating_sub(n);
    }

    /// Wakes `waker` when something is queued to an empty queue or the session closes.
    /// Register before [`Outbox::take`], so nothing pushed in between goes unnoticed.
    pub fn register(&self, waker: &Waker) {
        self.task.register(waker);
    }

    fn push(&self, bytes: Bytes, bounded: bool) -> Result<(), Overflow> {
        let mut state = self.lock();
        if state.closed {
            return Ok(());
        }
        if bounded && state.unwritten + bytes.len() > self.bound as usize {
            return Err(Overflow);
        }
        state.unwritten += bytes.len();
        let was_empty = state.queue.is_empty();
        state.queue.push(bytes);
        state.closed = !bounded;
        drop(state);
        if was_empty || !bounded {
            self.task.wake();
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

    fn line(text: &'static str) -> Bytes {
        Bytes::from_static(text.as_bytes())
    }

    #[test]
    fn wakes_once_per_empty_queue_and_counts_bytes_until_written() {
        let outbox = Outbox::new(10);
        let counter = Arc::new(Counter::default());
        let waker = Waker::from(counter.clone());
        let wakes = || counter.0.load(Ordering::Relaxed);

        outbox.register(&waker);
        outbox.push(line("ab\n"), true).unwrap();
        outbox.push(line("cd\n"), true).unwrap();
        assert_eq!(wakes(), 1, "the second line rides on the first wake-up");

        let mut taken = VecDeque::new();
        outbox.register(&waker);
        assert!(!outbox.take(&mut taken));
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
        outbox.register(&Waker::from(counter.clone()));
        outbox.push(line("a\n"), true).unwrap();
        outbox.register(&Waker::from(counter.clone()));
        outbox.push(line("bye\n"), false).unwrap();
        assert_eq!(counter.0.load(Ordering::Relaxed), 2);
        outbox.push(line("late\n"), true).unwrap();
        let mut taken = VecDeque::new();
        assert!(outbox.take(&mut taken), "closed");
        assert_eq!(taken, [line("a\n"), line("bye\n")]);
    }
}
