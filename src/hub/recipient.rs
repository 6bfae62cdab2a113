//! The hub's only view of a connection: somewhere to queue events.

use super::event::Outgoing;

/// The recipient's queue is full: it is not keeping up, and the hub disconnects it rather
/// than wait for it or queue without bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow;

/// A session's outgoing queue. Implementations must not block: the hub calls them while it
/// holds its lock.
pub trait Recipient: Send + Sync {
    /// Queues `event`, or refuses it because the queue is full.
    fn deliver(&self, event: &Outgoing) -> Result<(), Overflow>;

    /// Queues `last` whatever the bound, and accepts nothing more: the connection writes
    /// what is queued and hangs up.
    fn close(&self, last: &Outgoing);
}
