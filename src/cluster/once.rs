//! Messages a node must not hear twice. A message whose pipeline failed after Redis had
//! run it was heard here as the failure fell back, and comes again from the room's backlog
//! (or on the subscription). A message held and published again after its pipeline failed
//! is refused by Redis when the room's backlog shows it ran it already
//! (`link::SAID_ONCE`), but past what the backlog holds Redis may carry it twice. Each
//! message's id, minted by its node, tells the copies apart: this memory holds the ids
//! that may come again, so that each is heard once. It fills only after failures, never
//! on the path of a message that went through.

use std::collections::{HashSet, VecDeque};

use super::wire::Wire;
use crate::limits::CLUSTER_ONCE_IDS;

/// The ids of messages heard here that Redis may carry again: this node's that fell back,
/// other nodes' published late. At most [`CLUSTER_ONCE_IDS`], the oldest forgotten first.
#[derive(Default)]
pub(super) struct Once {
    ids: HashSet<u64>,
    order: VecDeque<u64>,
}

impl Once {
    /// Remembers `id`; false when it was remembered already.
    pub fn remember(&mut self, id: u64) -> bool {
        if !self.ids.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > CLUSTER_ONCE_IDS
            && let Some(oldest) = self.order.pop_front()
        {
            self.ids.remove(&oldest);
        }
        true
    }

    /// Whether `entry` (a message or a post from Redis, live or from a backlog) was heard
    /// here already: one of this node's own that fell back, or another node's published
    /// late and heard once (remembered now if not). A message that is neither is not
    /// looked up.
    pub fn heard_already(&mut self, node: u16, entry: &Wire) -> bool {
        let Some(id) = entry.entry_id() else {
            return false;
        };
        if entry.node() == node {
            return self.ids.contains(&id);
        }
        entry.is_late() && !self.remember(id)
    }
}
