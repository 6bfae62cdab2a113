//! Reading first: the connections a message has new lines for are woken a batch at a time,
//! and the runtime reads the sockets between batches.
//!
//! Woken all at once, a thousand writers go ahead of everything in the runtime's queue, and
//! a sender whose next message has arrived is read only after all of them — a whole round
//! of writes later (docs/benchmarks.md, "What limits it"). Here, between two batches, the
//! dispatcher yields, and a task that yields runs again only after the runtime has polled
//! the sockets; so input is read and fanned out (one append to a room's log) before the
//! writes it would otherwise wait for, and each write carries more of it. Under overload a
//! batch is never under an eighth of what waits, so output is never starved by input.
//!
//! A connection is woken once however often it was handed over since the last batch. A
//! sender is also polled for its input, and each poll arms its outbox again, so without
//! this it would be handed over again at the next message, and written to again and again in
//! one round (docs/benchmarks.md).

use std::future::poll_fn;
use std::mem;
use std::sync::Arc;
use std::task::{Poll, Waker};

use tokio_util::sync::CancellationToken;

use super::lock_order::{Level, Ordered, OrderedGuard};

/// Connections woken between two polls of the sockets, at least.
const WAKE_BATCH: usize = 32;

/// What waits is woken in at most this many batches: when many connections wait, batches
/// grow, so a busy server does not give input a turn per 32 writers.
const WAKE_SLICES: usize = 8;

/// The connections waiting for their turn to write, and the dispatcher's task.
pub struct Dispatcher {
    state: Ordered<Waiting>,
}

#[derive(Default)]
struct Waiting {
    wakers: Vec<Waker>,
    task: Option<Waker>,
    /// The dispatcher has stopped (shutdown): what is handed over is woken at once.
    stopped: bool,
}

impl Default for Dispatcher {
    fn default() -> Dispatcher {
        Dispatcher {
            state: Ordered::with_default(Level::Dispatch),
        }
    }
}

impl Dispatcher {
    /// Takes the wakers of connections that have new lines; they are woken in turn.
    pub fn hand_over(&self, woken: &mut Vec<Waker>) {
        let mut state = self.lock();
        if state.stopped {
            drop(state);
            woken.drain(..).for_each(Waker::wake);
            return;
        }
        state.wakers.append(woken);
        let task = state.task.take();
        drop(state);
        if let Some(task) = task {
            task.wake();
        }
    }

    /// Wakes what is handed over, batch by batch, until `shutdown`; then wakes the rest, and
    /// whatever is handed over later at once.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            let mut batch = tokio::select! {
                batch = self.next_batch() => batch,
                () = shutdown.cancelled() => break,
            };
            // Whatever comes after the poll one wake-up leads to arms the outbox and hands
            // the connection over again: once is enough. Sorted by task, each connection
            // also keeps its place in the round from one round to the next.
            batch.sort_unstable_by_key(task_of);
            batch.dedup_by_key(|waker| task_of(waker));
            let size = (batch.len() / WAKE_SLICES).max(WAKE_BATCH);
            for chunk in batch.chunks(size) {
                chunk.iter().for_each(Waker::wake_by_ref);
                // Runs again after the runtime has polled the sockets.
                tokio::task::yield_now().await;
            }
        }
        let rest = {
            let mut state = self.lock();
            state.stopped = true;
            mem::take(&mut state.wakers)
        };
        rest.into_iter().for_each(Waker::wake);
    }

    async fn next_batch(&self) -> Vec<Waker> {
        poll_fn(|cx| {
            let mut state = self.lock();
            if state.wakers.is_empty() {
                state.task = Some(cx.waker().clone());
                Poll::Pending
            } else {
                Poll::Ready(mem::take(&mut state.wakers))
            }
        })
        .await
    }

    fn lock(&self) -> OrderedGuard<'_, Waiting> {
        self.state.lock()
    }
}

/// What tells two wakers apart: equal for wakers of the same task ([`Waker::will_wake`]).
fn task_of(waker: &Waker) -> (usize, usize) {
    (
        waker.data() as usize,
        std::ptr::from_ref(waker.vtable()) as usize,
    )
}

#[cfg(test)]
mod tests {
    use super::super::wake_counter::WakeCounter;
    use super::*;

    /// How often each of `counters` was woken.
    fn counts(counters: &[Arc<WakeCounter>]) -> Vec<usize> {
        counters.iter().map(|c| c.count()).collect()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn wakes_everything_handed_over_in_batches_with_turns_between() {
        let dispatcher = Arc::new(Dispatcher::default());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(dispatcher.clone().run(shutdown.clone()));
        let counters: Vec<_> = (0..3 * WAKE_BATCH).map(|_| WakeCounter::new()).collect();
        let woken = || counts(&counters).iter().sum::<usize>();
        let mut wakers: Vec<_> = counters.iter().map(WakeCounter::waker).collect();
        dispatcher.hand_over(&mut wakers);
        assert!(wakers.is_empty(), "taken");
        // The dispatcher's first turn wakes one batch, then yields.
        tokio::task::yield_now().await;
        assert_eq!(woken(), WAKE_BATCH);
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(counts(&counters), vec![1; 3 * WAKE_BATCH], "each once");
        // What is handed over at shutdown is woken too, and later at once.
        dispatcher.hand_over(&mut vec![counters[0].waker()]);
        shutdown.cancel();
        task.await.unwrap();
        assert_eq!(woken(), 3 * WAKE_BATCH + 1);
        dispatcher.hand_over(&mut vec![counters[1].waker()]);
        assert_eq!(woken(), 3 * WAKE_BATCH + 2);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_connection_handed_over_again_before_its_turn_is_woken_once() {
        let dispatcher = Arc::new(Dispatcher::default());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(dispatcher.clone().run(shutdown.clone()));
        let sender = WakeCounter::new();
        let members: Vec<_> = (0..2 * WAKE_BATCH).map(|_| WakeCounter::new()).collect();
        // The sender is handed over among the members after every few of them.
        for chunk in members.chunks(10) {
            let mut wakers: Vec<_> = chunk.iter().map(WakeCounter::waker).collect();
            wakers.push(sender.waker());
            dispatcher.hand_over(&mut wakers);
        }
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(sender.count(), 1);
        assert_eq!(
            counts(&members),
            vec![1; 2 * WAKE_BATCH],
            "the others each once"
        );
        // Handed over after its wake-up, it is woken again.
        dispatcher.hand_over(&mut vec![sender.waker()]);
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        assert_eq!(sender.count(), 2);
        shutdown.cancel();
        task.await.unwrap();
    }
}
