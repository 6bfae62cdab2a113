//! A room: its members, the log they read what is said from, and the recent messages it
//! replays to newcomers.

use std::collections::VecDeque;
use std::sync::Arc;

use super::BySession;
use super::names::RoomName;
use super::post::{Entry, RoomStatus};
use super::recipient::Recipient;
use super::room_log::RoomLog;

pub(super) struct Room {
    pub name: RoomName,
    /// Members and their queues, so fan-out needs no look-up per recipient.
    pub members: BySession<Arc<dyn Recipient>>,
    /// What is said here, appended once and read by every member from its own place.
    pub log: Arc<RoomLog>,
    history: VecDeque<Entry>,
    /// Opened by a feed: lives on without members, so its history waits for newcomers.
    pub kept: bool,
    /// Feeds that tell newcomers and `/status` what they are doing here.
    pub status: Vec<Arc<dyn RoomStatus>>,
}

impl Room {
    pub fn new(name: RoomName) -> Room {
        Room {
            name,
            members: BySession::default(),
            log: RoomLog::new(),
            history: VecDeque::new(),
            kept: false,
            status: Vec::new(),
        }
    }

    /// Remembers `said`, forgetting the oldest message beyond `bound`.
    pub fn remember(&mut self, said: impl Into<Entry>, bound: usize) {
        let said = said.into();
        if bound == 0 {
            return;
        }
        while self.history.len() >= bound {
            self.history.pop_front();
        }
        self.history.push_back(said);
    }

    /// The last `limit` messages (all kept when `None`), oldest first.
    pub fn recent(&self, limit: Option<usize>) -> Vec<Entry> {
        let n = limit.map_or(self.history.len(), |l| l.min(self.history.len()));
        self.history
            .iter()
            .skip(self.history.len() - n)
            .cloned()
            .collect()
    }
}
