//! Who holds a nick beyond this node.
//!
//! The hub keeps its own sessions' nicks itself (`nicks.rs`); a [`Directory`] answers for
//! the rest of a cluster, so that a nick is unique across every node. A server alone has
//! [`Alone`]: nobody else holds anything.

use super::SessionId;
use super::event::{WhoEntry, Whois};
use super::names::{Nick, RoomName};
use super::ops::Standing;
use super::room::KeptRoom;
use super::text::MessageText;
use super::who::WhoMask;

/// Whether the asker of a WHO may see a user of another node, by what it shows and the
/// rooms it is in (the hub's visibility rules, applied to either node's users alike).
pub type Seen<'a> = &'a dyn Fn(&Profile, &[(RoomName, Standing)]) -> bool;

/// What other nodes show of a session beyond its nick and rooms (WHO, WHOIS, LUSERS).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    pub away: Option<MessageText>,
    pub account: Option<Nick>,
    /// The user name and real name it gave (IRC's USER).
    pub user: Option<Box<str>>,
    pub realname: Option<MessageText>,
    /// A server operator (`--oper`).
    pub oper: bool,
    /// When it connected, milliseconds since the Unix epoch.
    pub signon: u64,
    /// IRC's user mode `+i`: found by a WHO mask only by those sharing a room with it.
    pub invisible: bool,
    /// When it last said something (or connected), milliseconds since the Unix epoch, as
    /// last told: the cluster tells it every [`crate::limits::CLUSTER_ACTIVITY_EVERY`],
    /// not with each message. `0`: not known.
    pub spoke: u64,
}

impl Profile {
    /// Milliseconds since it last said something, by this machine's clock (`0` when not
    /// known).
    pub fn idle_ms(&self) -> u64 {
        if self.spoke == 0 {
            return 0;
        }
        super::chat::now_ms().saturating_sub(self.spoke)
    }
}

/// What the other nodes of a cluster count, as last heard (LUSERS).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Others {
    /// Their sessions, and those of them invisible (`+i`).
    pub users: usize,
    pub invisible: usize,
    /// The live nodes besides this one.
    pub nodes: usize,
    /// The most sessions of the whole cluster (this node's too) known at once.
    pub peak: usize,
}

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

    /// A session of this node went from `old` to `new`; the same session, not one
    /// leaving and another arriving.
    fn renamed(&self, old: &Nick, new: &Nick, owner: SessionId) {
        self.released(old, owner);
        self.claimed(new, owner);
    }

    /// Session `id` of this node joined `room`, where it is `standing`.
    fn joined(&self, room: &RoomName, id: SessionId, standing: Standing) {
        let _ = (room, id, standing);
    }

    /// Session `id` of this node, a member of `room`, is `standing` there from now on
    /// (made or unmade operator or voiced).
    fn standing(&self, room: &RoomName, id: SessionId, standing: Standing) {
        let _ = (room, id, standing);
    }

    /// Session `id` of this node left `room`.
    fn parted(&self, room: &RoomName, id: SessionId) {
        let _ = (room, id);
    }

    /// `room`'s members on other nodes, in no order, as their nodes last told: as WHO
    /// shows them (so NAMES' `@` and `+` too), idle since their node last told.
    fn members(&self, room: &RoomName) -> Vec<WhoEntry> {
        let _ = room;
        Vec::new()
    }

    /// The users of other nodes `mask` matches that `seen` lets through, at most `limit`,
    /// in no order, as WHO shows them (plain members).
    fn matching(&self, mask: &WhoMask, seen: Seen<'_>, limit: usize) -> Vec<WhoEntry> {
        let _ = (mask, seen, limit);
        Vec::new()
    }

    /// How many of `room`'s members are on other nodes, as their nodes last told.
    fn count(&self, room: &RoomName) -> usize {
        let _ = room;
        0
    }

    /// Rooms with members on other nodes, and how many there.
    fn rooms(&self) -> Vec<(RoomName, usize)> {
        Vec::new()
    }

    /// What the cluster keeps of `room` (its topic, modes, bans, operators' accounts), as
    /// it was last heard; `None` when the cluster has nothing of it, and the store is
    /// asked instead.
    fn kept_room(&self, room: &RoomName) -> Option<KeptRoom> {
        let _ = room;
        None
    }

    /// Session `id` of this node is as `profile` says from now on (away or not, logged in
    /// or not, a server operator or not): for WHO, WHOIS and LUSERS on other nodes.
    fn profile(&self, id: SessionId, profile: Profile) {
        let _ = (id, profile);
    }

    /// How many server operators the other nodes have (LUSERS).
    fn opers(&self) -> usize {
        0
    }

    /// How many users the other nodes have, and live nodes there are (LUSERS).
    fn others(&self) -> Others {
        Others::default()
    }

    /// What is known of `nick`, held on another node: WHOIS's answer.
    fn whois(&self, nick: &Nick) -> Option<Whois> {
        let _ = nick;
        None
    }

    /// Whether session `id` of this node was invited into `room` by an operator on
    /// another node (and has not joined it since).
    fn invited(&self, room: &RoomName, id: SessionId) -> bool {
        let _ = (room, id);
        false
    }
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
