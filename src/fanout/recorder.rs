//! A recipient for tests: records the events it is sent, in the hub's order, as a
//! connection would write them.

use std::sync::Arc;

use super::lock_order::{Level, Ordered};

use super::recipient::{Overflow, Recipient};
use super::room_log::{Reading, RoomLog, take_in_order};
use crate::hub::{Event, Outgoing};

/// Records events; refuses more once `capacity` are waiting (taken or unread), like a full
/// send queue.
pub(crate) struct Recorder {
    capacity: Option<usize>,
    state: Ordered<Recorded>,
}

#[derive(Default)]
struct Recorded {
    queued: Vec<(u64, Event)>,
    readings: Vec<Reading>,
    closed: Option<Event>,
    /// Told the session is over, its goodbye still to come.
    ended: bool,
}

impl Recorded {
    fn waiting(&self) -> usize {
        let mut n = self.queued.len();
        for reading in &self.readings {
            reading.unread(|_, _| n += 1);
        }
        n
    }
}

impl Default for Recorder {
    fn default() -> Recorder {
        Recorder {
            capacity: None,
            state: Ordered::with_default(Level::Outbox),
        }
    }
}

impl Recorder {
    /// One that refuses more once `capacity` events wait.
    pub fn with_capacity(capacity: usize) -> Recorder {
        Recorder {
            capacity: Some(capacity),
            ..Recorder::default()
        }
    }

    /// What it was sent since the last call, in order, its rooms' logs included.
    pub fn take(&self) -> Vec<Event> {
        let mut state = self.state.lock();
        let Recorded {
            queued, readings, ..
        } = &mut *state;
        let mut events = std::mem::take(queued);
        take_in_order(&mut events, readings, |logged| {
            Some(logged.event().event.clone())
        });
        events.into_iter().map(|(_, event)| event).collect()
    }

    /// The goodbye, once the hub closed it.
    pub fn closed(&self) -> Option<Event> {
        self.state.lock().closed.clone()
    }

    /// Whether the hub ended the session without its goodbye yet ([`Recipient::end`]).
    pub fn ended(&self) -> bool {
        let state = self.state.lock();
        state.ended && state.closed.is_none()
    }
}

impl Recipient for Recorder {
    fn deliver(&self, order: u64, event: &Outgoing) -> Result<(), Overflow> {
        let mut state = self.state.lock();
        if !state.ended && self.capacity.is_some_and(|c| state.waiting() >= c) {
            return Err(Overflow);
        }
        // In order, like a connection's queue: what a log hands over may be older.
        let at = state.queued.partition_point(|&(queued, _)| queued < order);
        state.queued.insert(at, (order, event.event.clone()));
        Ok(())
    }

    fn close(&self, _: u64, last: &Outgoing) {
        let mut state = self.state.lock();
        state.closed = Some(last.event.clone());
        state.readings.clear();
    }

    fn end(&self) {
        let mut state = self.state.lock();
        state.ended = true;
        state.readings.clear();
    }

    fn follow(&self, reading: Reading) {
        self.state.lock().readings.push(reading);
    }

    fn unfollow(&self, log: &Arc<RoomLog>) -> Option<Reading> {
        let mut state = self.state.lock();
        let at = state.readings.iter().position(|r| r.is_in(log))?;
        Some(state.readings.swap_remove(at))
    }

    fn check(&self, log: &Arc<RoomLog>) -> Result<Option<u64>, Overflow> {
        let state = self.state.lock();
        let Some(reading) = state.readings.iter().find(|r| r.is_in(log)) else {
            return Ok(None);
        };
        if self.capacity.is_some_and(|c| state.waiting() > c) {
            return Err(Overflow);
        }
        Ok(Some(reading.next()))
    }

    fn notify(&self) -> Option<std::task::Waker> {
        None
    }
}
