//! Who holds a nick beyond this node.
//!
//! The hub keeps its own sessions' nicks itself (`nicks.rs`); a [`Directory`] answers for
//! the rest of a cluster, so that a nick is unique across every node. A server alone has
//! [`Alone`]: nobody else holds anything.

use super::SessionId;
use super::names::Nick;

/// Nicks held by sessions of other nodes. Called under the hub's lock: an implementation
/// answers from what it already knows (a replica fed by the bus), never waiting on the
/// network.
pub trait Directory: Send + Sync {
    /// The session of another node holding `nick`, if any.
    fn holder(&self, nick: &Nick) -> Option<SessionId>;

    /// A session of this node took `nick`.
    fn claimed(&self, nick: &Nick, owner: SessionId);

    /// A session of this node gave `nick` up.
    fn released(&self, nick: &Nick, owner: SessionId);
}

/// The directory of a server alone: no other node, so no nick is held elsewhere.
pub struct Alone;

impl Directory for Alone {
    fn holder(&self, _: &Nick) -> Option<SessionId> {
        None
    }

    fn claimed(&self, _: &Nick, _: SessionId) {}

    fn released(&self, _: &Nick, _: SessionId) {}
}
