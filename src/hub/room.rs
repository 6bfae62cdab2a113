//! A room: its members, the log they read what is said from, and its settings.

use std::sync::Arc;

use super::names::{Nick, RoomName};
use super::ops::{Ban, BanMask, Modes, Standing, Topic};
use super::post::RoomStatus;
use super::{BySession, SessionId};
use crate::fanout::{Recipient, RoomLog};
use crate::limits::{ANNOUNCE_MAX_MEMBERS, MAX_OP_ACCOUNTS_PER_ROOM, MEMBERS_SHOWN_ON_JOIN};

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
    /// Members who may change the topic and modes and kick: the first member of a room a
    /// user made, and whoever an operator makes one.
    pub ops: BySession<()>,
    /// Accounts whose sessions are made operators as they join: operators logged in to
    /// an account when they were made so. At most
    /// [`crate::limits::MAX_OP_ACCOUNTS_PER_ROOM`].
    pub op_accounts: Vec<Nick>,
    /// Members who may speak when the room is moderated (`+m`).
    pub voiced: BySession<()>,
    pub topic: Option<Topic>,
    pub modes: Modes,
    /// At most [`crate::limits::MAX_BANS_PER_ROOM`].
    pub bans: Vec<Ban>,
    /// Sessions invited and not yet joined, who may join while the room is `+i`; at most
    /// [`crate::limits::MAX_INVITES_PER_ROOM`].
    pub invited: Vec<SessionId>,
    /// The number of the last entry said or posted here; `None` until the first, when the
    /// store is asked (a room that ended and began again continues its numbers).
    pub seq: Option<u64>,
    /// When the room was made, milliseconds since the Unix epoch (IRC's 329): here, or
    /// first anywhere in a cluster once its nodes tell it ([`KeptRoom::created`]).
    pub created: u64,
}

/// What a room keeps when it empties and across restarts, in a store that keeps it: its
/// topic, modes, operators' accounts and bans. Members, voice and invitations belong to
/// sessions and go with them.
#[derive(Debug, Clone)]
pub struct KeptRoom {
    pub topic: Option<Topic>,
    pub modes: Modes,
    pub op_accounts: Vec<Nick>,
    pub bans: Vec<Ban>,
    /// When the room was first made anywhere in its cluster, milliseconds since the Unix
    /// epoch; `None` when not known (a store keeps none, nor did older nodes): the room
    /// then shows when it was made on this node.
    pub created: Option<u64>,
}

/// The account `name` was deleted: a room no longer makes its sessions operators, and its
/// bans keep their masks but no longer follow it, so whoever registers the name again
/// inherits neither. The changes made, for a cluster's other nodes; none: nothing was.
pub fn forget_account(
    op_accounts: &mut Vec<Nick>,
    bans: &mut [Ban],
    name: &Nick,
) -> Vec<RoomChange> {
    let mut changes = Vec::new();
    if op_accounts.contains(name) {
        op_accounts.retain(|a| a != name);
        changes.push(RoomChange::OpAccount(name.clone(), false));
    }
    for ban in bans.iter_mut().filter(|b| b.account.as_ref() == Some(name)) {
        ban.account = None;
        changes.push(RoomChange::Ban(ban.mask.clone(), Some(ban.clone())));
    }
    changes
}

impl KeptRoom {
    /// [`forget_account`] of what a room that is not made now keeps.
    pub fn forget_account(&mut self, name: &Nick) -> bool {
        !forget_account(&mut self.op_accounts, &mut self.bans, name).is_empty()
    }

    /// What a new room keeps: no topic, `+nt`, no operators' accounts, no bans.
    pub fn new_room() -> KeptRoom {
        KeptRoom {
            topic: None,
            modes: Modes::new_room(),
            op_accounts: Vec::new(),
            bans: Vec::new(),
            created: None,
        }
    }
}

/// One change to what a room keeps, as a cluster shares it with its other nodes
/// ([`super::Bus::share_room`]): each sets or clears one thing, so that changes made at
/// the same moment on two nodes to different things both hold.
#[derive(Debug, Clone)]
pub enum RoomChange {
    Topic(Option<Topic>),
    /// A mode without an argument, by its letter (`t`, `n`, `m`, `i`, `s`), set or not.
    Flag(char, bool),
    Key(Option<String>),
    Limit(Option<usize>),
    /// A ban set (`Some`) or lifted.
    Ban(BanMask, Option<Ban>),
    /// An operator's account remembered (`true`) or forgotten.
    OpAccount(Nick, bool),
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
    /// [`forget_account`] of this room.
    pub fn forget_account(&mut self, name: &Nick) -> Vec<RoomChange> {
        forget_account(&mut self.op_accounts, &mut self.bans, name)
    }

    /// An operator was made who is logged in to `account` (if any): remembered, within
    /// [`MAX_OP_ACCOUNTS_PER_ROOM`].
    pub fn remember_op(&mut self, account: Option<&Nick>) {
        if let Some(account) = account
            && !self.op_accounts.contains(account)
            && self.op_accounts.len() < MAX_OP_ACCOUNTS_PER_ROOM
        {
            self.op_accounts.push(account.clone());
        }
    }

    /// Makes member `id` (logged in to `account`) an operator (`op`) or voiced, or no
    /// longer (`add` false); whether that changed anything. An operator's account is
    /// remembered or forgotten with it.
    pub fn give(&mut self, id: SessionId, account: Option<&Nick>, op: bool, add: bool) -> bool {
        if op {
            match add {
                true => self.remember_op(account),
                false => self.op_accounts.retain(|a| Some(a) != account),
            }
        }
        let set = if op { &mut self.ops } else { &mut self.voiced };
        if add {
            set.insert(id, ()).is_none()
        } else {
            set.remove(&id).is_some()
        }
    }

    pub fn new(name: RoomName, settings: RoomSettings) -> Room {
        Room {
            name,
            members: BySession::default(),
            log: RoomLog::new(),
            kept: false,
            status: Vec::new(),
            settings,
            ops: BySession::default(),
            voiced: BySession::default(),
            op_accounts: Vec::new(),
            topic: None,
            modes: Modes::new_room(),
            bans: Vec::new(),
            invited: Vec::new(),
            seq: None,
            created: super::chat::now_ms(),
        }
    }

    /// What the store keeps of this room; `None` when nothing differs from a new room's.
    pub fn kept(&self) -> Option<KeptRoom> {
        let plain = self.topic.is_none()
            && self.modes == Modes::new_room()
            && self.op_accounts.is_empty()
            && self.bans.is_empty();
        (!plain).then(|| KeptRoom {
            topic: self.topic.clone(),
            modes: self.modes.clone(),
            op_accounts: self.op_accounts.clone(),
            bans: self.bans.clone(),
            created: None,
        })
    }

    /// Takes back what the store kept of it.
    pub fn restore(&mut self, kept: KeptRoom) {
        self.topic = kept.topic;
        self.modes = kept.modes;
        self.op_accounts = kept.op_accounts;
        self.bans = kept.bans;
        if let Some(created) = kept.created {
            self.created = created;
        }
    }

    /// Whether `account` is one of this room's operators' accounts.
    pub fn has_op_account(&self, account: Option<&Nick>) -> bool {
        account.is_some_and(|a| self.op_accounts.contains(a))
    }

    pub fn is_op(&self, id: SessionId) -> bool {
        self.ops.contains_key(&id)
    }

    /// What member `id` is here: operator, voiced or neither.
    pub fn standing(&self, id: SessionId) -> Standing {
        Standing::of(self.is_op(id), self.voiced.contains_key(&id))
    }

    /// Whether `id` may speak here now that the room is moderated or `id` banned.
    pub fn has_voice(&self, id: SessionId) -> bool {
        self.is_op(id) || self.voiced.contains_key(&id)
    }
}
