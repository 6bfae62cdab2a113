//! The hub's only view of a connection: somewhere to queue events, and a reader of its
//! rooms' logs.

use std::sync::Arc;
use std::task::Waker;

use super::room_log::{Reading, RoomLog};
use crate::hub::Outgoing;

/// The recipient's queue is full: it is not keeping up, and the hub disconnects it rather
/// than wait for it or queue without bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow;

/// A session's outgoing queue. Implementations must not block: the hub calls them while it
/// holds its lock.
///
/// What is said in a room reaches a member through the room's log, which it follows from
/// joining to leaving; everything else is delivered to it alone. Both are stamped from one
/// counter (`order`), and a recipient hands its connection what it has in that order.
pub trait Recipient: Send + Sync {
    /// Queues `event`, or refuses it because the queue is full. `order` is usually newer
    /// than anything queued, but not always: what a member had not read yet when it left
    /// a room is handed over this way.
    fn deliver(&self, order: u64, event: &Outgoing) -> Result<(), Overflow>;

    /// Whether `event` would be taken now, within the bound with what is queued: the hub
    /// cuts a history answer until it fits, rather than put its asker out.
    fn fits(&self, _event: &Outgoing) -> bool {
        true
    }

    /// Queues `last` whatever the bound, and accepts nothing more: the connection writes
    /// what is queued and hangs up. It reads no log after this.
    fn close(&self, order: u64, last: &Outgoing);

    /// The session is over, but acks are still owed to it: the connection stops reading
    /// and waits for [`Recipient::close`], writing meanwhile what is delivered (the acks),
    /// which is queued whatever the bound: there are only as many as its messages the store
    /// or the cluster still held. It reads no log after this.
    fn end(&self);

    /// Starts reading a room's log from `reading`. The recipient moves it along by taking
    /// what is new whenever its connection runs, not only when [`Recipient::notify`] woke
    /// it: a member is not notified of its own lines, and a place left before them would
    /// keep the log from dropping anything in a room where only that member talks.
    fn follow(&self, reading: Reading);

    /// Stops reading `log`, giving back its place so the hub can hand over what was not
    /// read yet; `None` if it was not reading it.
    fn unfollow(&self, log: &Arc<RoomLog>) -> Option<Reading>;

    /// Where it reads `log` now, so the log can drop what everyone has read; `Overflow`
    /// when what it has not read there, with what is queued, is over its bound.
    fn check(&self, log: &Arc<RoomLog>) -> Result<Option<u64>, Overflow>;

    /// Something was appended to a log it reads: the waker of its connection if that waits
    /// for more (the hub wakes it as [`super::Hub::set_wake`] says), else `None`. Called for
    /// every member on every message: it must cost next to nothing when the connection is
    /// already awake.
    fn notify(&self) -> Option<Waker>;
}
