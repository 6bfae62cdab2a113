//! Calls into the feeds that alert: a cron job saying it is alive, started, or finished
//! (`charla send --beat`, `charla run --beat`, `POST /beat/NAME`, a UDP `beat NAME`), and
//! people acknowledging or silencing an alert from the chat line (`/ack`, `/silence`,
//! `/unsilence`). The hub knows no feed in particular: a feed registers [`Heartbeats`] or
//! an [`AlertDesk`], and the hub hands it each call and posts what it answers.

use std::time::Duration;

use super::names::{Nick, RoomName};
use super::post::Notice;

/// What a job says when it calls in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Beat {
    /// It is alive (a plain call).
    Alive,
    /// It started a run (`charla run`).
    Started,
    /// A run ended (`charla run`): `status` 0 is success.
    Finished {
        /// The exit status, or 128 + the signal that killed it.
        status: i32,
        took_ms: u64,
        /// The last lines it printed, sanitised by the taker.
        output: Option<String>,
    },
}

/// What a call did: what to post (into `room`) and the status of what it called now,
/// answered to the caller.
#[derive(Debug, Clone)]
pub struct Answered {
    pub room: RoomName,
    pub post: Option<Notice>,
    pub status: Notice,
}

/// The heartbeats a feed keeps.
pub trait Heartbeats: Send + Sync {
    /// Takes `beat` from the job `name`; `Err` with the reason when there is no such
    /// heartbeat. Called without the hub's lock, and must not call the hub.
    fn beat(&self, name: &str, beat: &Beat) -> Result<Answered, String>;
}

/// What someone in the room asks of an alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertAction {
    /// Seen: stop the reminders until its state changes again.
    Ack {
        note: Option<String>,
    },
    /// Say its changes only to `/status` for this long.
    Silence {
        lasting: Duration,
        reason: Option<String>,
    },
    Unsilence,
}

/// A feed whose alerts people may acknowledge and silence from the chat line.
pub trait AlertDesk: Send + Sync {
    /// The room `name`'s alerts go to, when this desk has it.
    fn room_of(&self, name: &str) -> Option<RoomName>;
    /// Does `action` for `by`; `Err` with the reason when it makes no sense now (nothing to
    /// acknowledge). Called without the hub's lock, and must not call the hub.
    fn act(&self, name: &str, action: &AlertAction, by: &Nick) -> Result<Answered, String>;
}
