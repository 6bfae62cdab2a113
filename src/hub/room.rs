//! A room: its members and the recent messages it replays to newcomers.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::SessionId;
use super::event::Said;
use super::names::RoomName;
use super::recipient::Recipient;

pub(super) struct Room {
    pub name: RoomName,
    /// Members and their queues, so fan-out needs no look-up per recipient.
    pub members: HashMap<SessionId, Arc<dyn Recipient>>,
    history: VecDeque<Said>,
}

impl Room {
    pub fn new(name: RoomName) -> Room {
        Room {
            name,
            members: HashMap::new(),
            history: VecDeque::new(),
        }
    }

    /// Remembers `said`, forgetting the oldest message beyond `bound`.
    pub fn remember(&mut self, said: Said, bound: usize) {
        if bound == 0 {
            return;
        }
        while self.history.len() >= bound {
            self.history.pop_front();
        }
        self.history.push_back(said);
    }

    /// The last `limit` messages (all kept when `None`), oldest first.
    pub fn recent(&self, limit: Option<usize>) -> Vec<Said> {
        let n = limit.map_or(self.history.len(), |l| l.min(self.history.len()));
        self.history
            .iter()
            .skip(self.history.len() - n)
            .cloned()
            .collect()
    }
}
