//! Calls into the feeds that alert: a cron job saying it is alive, started, or finished
//! (`charla send --beat`, `charla run --beat`, `POST /beat/NAME`, a UDP `beat NAME`), and
//! people acknowledging or silencing an alert from the chat line (`/ack`, `/silence`,
//! `/unsilence`). The hub knows no feed in particular: a feed registers [`Heartbeats`] or
//! an [`AlertDesk`], and the hub hands it each call and posts what it answers.

use std::time::Duration;

use super::chat::Failure;
use super::event::ErrorCode;
use super::ids::SessionId;
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

/// What a call to a check or heartbeat answers: the room its alerts go to and its status
/// (one per node that did it), or why it was not done.
pub type CallAnswer = Result<(RoomName, Vec<Notice>), Failure>;

/// What became of a call to a check or heartbeat.
#[derive(Debug)]
pub enum Took {
    /// Answered at once.
    Now(CallAnswer),
    /// Sent to the other nodes that run it (`--cluster`), whose alerts go to this room: the
    /// answer goes to the caller once they answered.
    Sent(RoomName),
}

/// Who waits for a call sent to other nodes.
#[derive(Debug)]
pub enum Caller {
    /// A session, answered as its request (`reference`) would have been here.
    Session {
        id: SessionId,
        reference: Option<String>,
    },
    /// A request that waits (HTTP `POST /beat/NAME`).
    Waiting(tokio::sync::oneshot::Sender<CallAnswer>),
    /// Nobody (a UDP datagram).
    Nobody,
}

/// What is asked of another node's check or heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerCall {
    Beat(Beat),
    Act { action: AlertAction, by: Nick },
}

/// The answers of a call so far, from every node that took it.
#[derive(Debug, Default)]
pub struct Gathered {
    room: Option<RoomName>,
    items: Vec<Notice>,
    error: Option<Failure>,
}

impl Gathered {
    /// A node did it: its room and its status now.
    pub fn took(&mut self, (room, status): (RoomName, Notice)) {
        self.room.get_or_insert(room);
        self.items.push(status);
    }

    /// A node did not: the first reason is kept.
    pub fn failed(&mut self, failure: Failure) {
        self.error.get_or_insert(failure);
    }

    /// The status of every node that did it; when none did, the first reason.
    pub fn answer(self) -> CallAnswer {
        match (self.room, self.error) {
            (Some(room), _) if !self.items.is_empty() => Ok((room, self.items)),
            (_, Some(error)) => Err(error),
            _ => Err((ErrorCode::ClusterUnreachable, "no node answered".into())),
        }
    }
}

/// The other nodes of a cluster, as calls to checks and heartbeats reach them
/// (`--cluster`): what theirs report, and calls to them. None on a node alone.
pub trait AlertPeers: Send + Sync {
    /// This node's name (`--node-name`), marked on its own items (`node`).
    fn name(&self) -> &str;
    /// Whether the other nodes can be reached now (Redis answers).
    fn reachable(&self) -> bool;
    /// What the checks and heartbeats of the other live nodes in `room` report, each with
    /// its `node`. Called under the hub's lock: answers from memory.
    fn status(&self, room: &RoomName) -> Vec<Notice>;
    /// The other live nodes that run the check or heartbeat `name` (a heartbeat only, if
    /// `heartbeat`), and the room each posts its alerts to.
    fn runners(&self, name: &str, heartbeat: bool) -> Vec<(u16, RoomName)>;
    /// Has `nodes` do `call` on `name`, in one publication; their answers, with what this
    /// node did (`gathered`), go to `caller`. `Err` with `gathered` and why when it could
    /// not be sent.
    fn call(
        &self,
        nodes: Vec<u16>,
        name: &str,
        call: PeerCall,
        gathered: Gathered,
        caller: Caller,
    ) -> Result<(), Gathered>;
    /// This node's checks or heartbeats changed: the others are told soon.
    fn changed(&self);
    /// Whether this node runs its check or heartbeat `name` now: of the nodes that have
    /// one so named, the one that holds its lease (`name` is claimed from the first time
    /// asked). Answers from memory.
    fn holds(&self, name: &str) -> bool;
    /// The last status another node reported of its check or heartbeat `name` before it
    /// stopped running it (it died, shut down, or let its lease go), once: for this node
    /// taking it over.
    fn taken_over(&self, name: &str) -> Option<Notice>;
}
