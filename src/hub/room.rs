//! A room: its members, the log they read what is said from, and its settings.

use std::sync::Arc;

use super::BySession;
use super::names::RoomName;
use super::post::RoomStatus;
use crate::fanout::{Recipient, RoomLog};
use crate::limits::{ANNOUNCE_MAX_MEMBERS, MEMBERS_SHOWN_ON_JOIN};

pub(super) struct Room {
    pub name: RoomName,
    /// Members and their queues, so fan-out needs no look-up per recipient.
    pub members: BySession<Arc<dyn Recipient>>,
    /// What is said here, appended once and read by every member from its own place.
    pub log: Arc<RoomLog>,
    /// Opened by a feed: lives on without members, so its history waits for newcomers.
    pub kept: bool,
    /// Feeds that tell newcomers and `/status` what they are doing here.
    pub status: Vec<Arc<dyn RoomStatus>>,
    pub settings: RoomSettings,
}

/// How a room speaks to its members about itself; each room starts with the hub's.
#[derive(Debug, Clone, Copy)]
pub struct RoomSettings {
    /// Members named to someone joining; the rest are counted, and `/users` names them all.
    pub shown_on_join: usize,
    /// Members above which joins, leaves and nick changes are not announced.
    pub announce_max_members: usize,
}

impl Default for RoomSettings {
    fn default() -> RoomSettings {
        RoomSettings {
            shown_on_join: MEMBERS_SHOWN_ON_JOIN,
            announce_max_members: ANNOUNCE_MAX_MEMBERS,
        }
    }
}

impl RoomSettings {
    /// Whether a room of `members` (the one arriving or leaving included) hears of joins,
    /// leaves and nick changes.
    pub fn announces(&self, members: usize) -> bool {
        members <= self.announce_max_members
    }
}

impl Room {
    pub fn new(name: RoomName, settings: RoomSettings) -> Room {
        Room {
            name,
            members: BySession::default(),
            log: RoomLog::new(),
            kept: false,
            status: Vec::new(),
            settings,
        }
    }
}
