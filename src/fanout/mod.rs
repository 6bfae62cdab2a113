//! How what the hub sends reaches connections: room logs read by each connection from its
//! own place, per-connection queues bounded in bytes, and writes of many lines at once.
//!
//! The hub appends what is said in a room once to the room's [`RoomLog`] and queues what is
//! for one session alone to that session's [`Recipient`]. A connection's [`Outbox`] is its
//! recipient: it keeps the connection's places in its rooms' logs and its own queue, and
//! when the connection's task runs, [`Outbox::take`] hands it everything new as one
//! [`Pending`] batch in the hub's order, whose lines the task copies into its writes. The
//! [`Dispatcher`] wakes the connections a message gave something to write, a batch at a
//! time, so input is read between the batches.
//!
//! # What a transport implements
//!
//! A connection over any byte stream uses an [`Outbox`] as it is (`server::connection`).
//! A transport that writes differently implements [`Recipient`] (seven short methods that
//! must not block) and, to write, takes from its logs with [`take_in_order`].
//!
//! # Lock order
//!
//! The locks on the data path are taken in one order, never the other way round: the hub's
//! state, then its history store, then an outbox, then a room log; the dispatcher's list is
//! taken last. Each is an [`Ordered`] lock, which debug builds check on every lock
//! (`lock_order.rs`).
//!
//! # A connection moves past its own lines
//!
//! A member is not told of its own messages, so nothing wakes it for them; a log drops
//! only what every member has read. An outbox therefore moves all its places to the end
//! of its logs each time it takes, whether or not it was woken: a member who talks where
//! nobody answers does not keep the log whole (`tests::a_talker_alone_does_not_hold_its_rooms_log`).

mod dispatch;
mod lock_order;
mod outbox;
mod pending;
mod recipient;
#[cfg(test)]
pub(crate) mod recorder;
mod room_log;
#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) mod wake_counter;

pub use dispatch::Dispatcher;
pub use lock_order::{Level, Ordered, OrderedGuard};
pub use outbox::{Outbox, Phase};
pub use pending::{Pending, Stamped};
pub use recipient::{Overflow, Recipient};
pub use room_log::{Chunk, Logged, Reading, RoomLog, take_in_order};
