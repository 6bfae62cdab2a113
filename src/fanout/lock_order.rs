//! The one order the fan-out's locks are taken in, checked in debug builds.
//!
//! The hub holds its lock while it queues to outboxes and appends to logs, and an outbox
//! holds its own while it reads its rooms' logs: taking them the other way round anywhere
//! would deadlock under load, rarely and far from the cause. Every such lock is an
//! [`Ordered`] of a [`Level`]; in debug builds (every test) taking one while the thread
//! holds one of the same or a later level panics at the line that did it. Release builds
//! keep a plain mutex and no bookkeeping.

use std::ops::{Deref, DerefMut};
use std::sync::{Mutex, MutexGuard};

/// Where a lock stands in the order: a thread holding one may take only later ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// The hub's state (`hub::Hub`).
    Hub,
    /// Rooms' history in memory (`hub::MemoryHistory`).
    Store,
    /// One connection's queue and places ([`super::Outbox`]).
    Outbox,
    /// One room's log ([`super::RoomLog`]).
    Log,
    /// The connections waiting for their turn to write ([`super::Dispatcher`]).
    Dispatch,
}

/// A mutex that knows its [`Level`]. A poisoned lock is taken anyway: a panic while holding
/// it leaves state consistent enough to keep chatting, and refusing everyone would be worse.
pub struct Ordered<T> {
    /// Read only by the debug builds' check.
    #[cfg_attr(not(debug_assertions), allow(dead_code))]
    level: Level,
    inner: Mutex<T>,
}

/// The guard of an [`Ordered`] lock; in debug builds it also marks the level as held until
/// dropped.
pub struct OrderedGuard<'a, T> {
    guard: MutexGuard<'a, T>,
    #[cfg(debug_assertions)]
    level: Level,
}

impl<T> Ordered<T> {
    pub const fn new(level: Level, value: T) -> Ordered<T> {
        Ordered {
            level,
            inner: Mutex::new(value),
        }
    }

    /// Locks it; in debug builds, panics if this thread holds a lock of this level or a
    /// later one.
    pub fn lock(&self) -> OrderedGuard<'_, T> {
        #[cfg(debug_assertions)]
        held::take(self.level);
        OrderedGuard {
            guard: self.inner.lock().unwrap_or_else(|p| p.into_inner()),
            #[cfg(debug_assertions)]
            level: self.level,
        }
    }
}

impl<T: Default> Ordered<T> {
    pub fn with_default(level: Level) -> Ordered<T> {
        Ordered::new(level, T::default())
    }
}

impl<T> Deref for OrderedGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.guard
    }
}

impl<T> DerefMut for OrderedGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.guard
    }
}

#[cfg(debug_assertions)]
impl<T> Drop for OrderedGuard<'_, T> {
    fn drop(&mut self) {
        held::release(self.level);
    }
}

/// The levels this thread holds, in the order taken.
#[cfg(debug_assertions)]
mod held {
    use std::cell::RefCell;

    use super::Level;

    thread_local! {
        static HELD: RefCell<Vec<Level>> = const { RefCell::new(Vec::new()) };
    }

    #[track_caller]
    pub fn take(level: Level) {
        HELD.with_borrow_mut(|held| {
            if let Some(&last) = held.iter().max() {
                assert!(
                    last < level,
                    "lock order: taking the {level:?} lock while holding the {last:?} lock \
                     (the order is Hub, Store, Outbox, Log, Dispatch)"
                );
            }
            held.push(level);
        });
    }

    pub fn release(level: Level) {
        HELD.with_borrow_mut(|held| {
            if let Some(at) = held.iter().rposition(|&l| l == level) {
                held.remove(at);
            }
        });
    }
}

#[cfg(all(test, debug_assertions))]
mod tests {
    use super::*;

    #[test]
    fn locks_taken_in_order_pass_and_release_on_drop() {
        let (hub, outbox, log) = (
            Ordered::new(Level::Hub, 1),
            Ordered::new(Level::Outbox, 2),
            Ordered::new(Level::Log, 3),
        );
        {
            let _h = hub.lock();
            let _o = outbox.lock();
            let _l = log.lock();
        }
        // All released: any level may be taken again first.
        let _l = log.lock();
        drop(_l);
        let o = outbox.lock();
        assert_eq!(*o, 2);
    }

    #[test]
    #[should_panic(expected = "taking the Outbox lock while holding the Log lock")]
    fn a_lock_taken_against_the_order_panics() {
        let (outbox, log) = (
            Ordered::new(Level::Outbox, ()),
            Ordered::new(Level::Log, ()),
        );
        let _l = log.lock();
        let _o = outbox.lock();
    }

    #[test]
    #[should_panic(expected = "taking the Outbox lock while holding the Outbox lock")]
    fn two_locks_of_one_level_at_once_panic() {
        let (a, b) = (
            Ordered::new(Level::Outbox, ()),
            Ordered::new(Level::Outbox, ()),
        );
        let _a = a.lock();
        let _b = b.lock();
    }
}
