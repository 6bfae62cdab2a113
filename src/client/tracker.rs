//! Requests sent and not yet answered, found again by the `ref` their replies carry.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use super::wire::{ClientRequest, ServerEvent};
use crate::hub::RoomName;

/// How long the server may take to answer a request before the client gives up on the
/// connection. The server answers at once; only a hung server or a dead link is this slow.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a request was sent, which decides how its replies are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The user asked: show the replies.
    Typed,
    /// After a reconnect, to restore the session: show only messages not seen before,
    /// marked as missed, and errors.
    CatchUp,
}

#[derive(Debug, Clone)]
pub struct Unacked {
    pub request: ClientRequest,
    pub purpose: Purpose,
    /// For a `/join`: the room typed into before it (see [`super::conversation::Action`]).
    pub room_before: Option<RoomName>,
    pub sent: Instant,
}

#[derive(Debug, Default)]
pub struct Tracker {
    waiting: BTreeMap<u64, Unacked>,
}

impl Tracker {
    pub fn add(&mut self, reference: u64, pending: Unacked) {
        self.waiting.insert(reference, pending);
    }

    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    pub fn purpose(&self, reference: u64) -> Option<Purpose> {
        self.waiting.get(&reference).map(|p| p.purpose)
    }

    /// The request `event` answers for good, removed; `None` when `event` is not a final
    /// reply to one of ours.
    pub fn settle(&mut self, reference: u64, event: &ServerEvent) -> Option<Unacked> {
        let pending = self.waiting.get(&reference)?;
        if pending.request.is_answered_by(event) {
            self.waiting.remove(&reference)
        } else {
            None
        }
    }

    /// When the oldest unanswered request must have been answered.
    pub fn deadline(&self) -> Option<Instant> {
        self.waiting.values().map(|p| p.sent + REPLY_TIMEOUT).min()
    }

    /// Forgets every request (the connection they were sent on is gone); returns them.
    pub fn drain(&mut self) -> Vec<Unacked> {
        std::mem::take(&mut self.waiting).into_values().collect()
    }
}
