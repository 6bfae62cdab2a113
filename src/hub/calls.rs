//! Calls from jobs that are no session to speak of: a cron job saying it is alive, started,
//! or finished (`charla send --beat`, `charla run --beat`, `POST /beat/NAME`, a UDP
//! `beat NAME`). The hub knows no heartbeat in particular: the feed that keeps them
//! registers [`Heartbeats`], and the hub hands it each call and posts what it answers.

use super::names::RoomName;
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

/// What a call did: what to post (into `room`) and the heartbeat's status now, answered to
/// the caller.
#[derive(Debug, Clone)]
pub struct BeatTaken {
    pub room: RoomName,
    pub post: Option<Notice>,
    pub status: Notice,
}

/// The heartbeats a feed keeps.
pub trait Heartbeats: Send + Sync {
    /// Takes `beat` from the job `name`; `Err` with the reason when there is no such
    /// heartbeat. Called without the hub's lock, and must not call the hub.
    fn beat(&self, name: &str, beat: &Beat) -> Result<BeatTaken, String>;
}
