//! Where the hub publishes what happens in a room, so that every node's members hear it.
//!
//! The hub hands each room event to its [`Bus`] once, whoever and wherever the members are.
//! A server alone has [`LocalBus`], which gives the event straight back for this node's
//! members; a cluster's bus would carry it to the other nodes and give it back, in the
//! room's one order, through [`super::Hub::receive`].

use super::SessionId;
use super::command::NoticeTarget;
use super::event::Event;
use super::names::{Nick, RoomName};
use super::room::RoomChange;
use crate::limits::UNDELIVERED_QUOTE_CHARS;

/// One event for a room's members.
#[derive(Debug, Clone)]
pub struct Publication {
    pub room: RoomName,
    pub event: Event,
    /// Who must not hear it: the one who said it.
    pub except: Option<SessionId>,
}

/// The bus cannot take a message now ([`Bus::publish_numbered`]): it was not said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusFull;

/// Why the bus could not carry an event to another node's session ([`Bus::direct`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undelivered {
    /// The other nodes are out of reach (a cluster outage): nothing reaches them until
    /// it ends, and a private message is not held for them.
    OutOfReach,
    /// The queue to the other nodes is full.
    Full,
}

/// Who sent something to a session of another node ([`Bus::direct`]) and what it was,
/// kept so that, should it be lost on the way, its sender is told which it was
/// ([`super::Hub::not_delivered`]): by its request's reference (JSON `ref`) and in words.
#[derive(Debug, Clone)]
pub struct DirectSender {
    pub id: SessionId,
    /// The reference of the request that sent it, which the late error carries.
    pub reference: Option<String>,
    /// What it was, for a reader without references: `your message 45 to bob ("hi…")`.
    pub what: String,
}

impl DirectSender {
    /// Session `id` sends `event` (a private message or notice, client-only tags, an
    /// invitation) by the request tagged `reference`.
    pub fn new(id: SessionId, event: &Event, reference: Option<String>) -> DirectSender {
        let what = match event {
            Event::Private {
                id,
                to,
                text,
                notice,
                ..
            } => {
                let kind = if *notice { "notice" } else { "message" };
                format!("your {kind} {id} to {to} (\"{}\")", quote(&text.plain()))
            }
            Event::TagsOnly { id, to, .. } => format!("your tags {id} to {}", to_name(to)),
            Event::Invited { room, nick, .. } => format!("your invitation of {nick} to {room}"),
            _ => "what you just sent".to_string(),
        };
        DirectSender {
            id,
            reference,
            what,
        }
    }
}

/// The start of `text`, cut after [`UNDELIVERED_QUOTE_CHARS`] characters (marked `…`).
fn quote(text: &str) -> String {
    match text.char_indices().nth(UNDELIVERED_QUOTE_CHARS) {
        Some((end, _)) => format!("{}…", text[..end].trim_end()),
        None => text.to_string(),
    }
}

/// Whom client-only tags went to.
fn to_name(to: &NoticeTarget) -> &str {
    match to {
        NoticeTarget::Room(room) => room.as_str(),
        NoticeTarget::Nick(nick) => nick.as_str(),
    }
}

/// Carries room events between the nodes serving a chat. Called under the hub's lock:
/// an implementation must not block (queue the event, and send it from a task of its own).
pub trait Bus: Send + Sync {
    /// Publishes `publication` to the room's members on every node. Returns it when this
    /// node's members are to hear it at once; `None` when the bus hands it back later
    /// through [`super::Hub::receive`].
    fn publish(&self, publication: Publication) -> Option<Publication>;

    /// Whether the bus numbers room messages itself, so that a room has one order on every
    /// node: the hub then stamps a message with the number it proposes (one past the last
    /// it heard) and keeps it in history when the bus hands it back numbered.
    fn numbers_messages(&self) -> bool {
        false
    }

    /// Publishes a message or a feed's post of a bus that numbers them
    /// ([`Bus::numbers_messages`]), as [`Bus::publish`] does; [`BusFull`] when the bus
    /// cannot take it now (its queue to the other nodes is full): then nobody hears it,
    /// here or elsewhere, and its sender is told. Only called when the bus numbers
    /// messages.
    fn publish_numbered(&self, publication: Publication) -> Result<Option<Publication>, BusFull> {
        Ok(self.publish(publication))
    }

    /// Carries `event` from session `from` to session `to` of another node (a private
    /// message, an invitation, client-only tags). [`Undelivered`] when it cannot now:
    /// then nobody gets it, and `from` is to be told. Should it be lost on the way after
    /// all (the link to the other nodes failing as it is sent), `from` is told through
    /// [`super::Hub::not_delivered`], which it was named. A server alone has no other
    /// node, so it is never asked.
    fn direct(&self, from: DirectSender, to: SessionId, event: Event) -> Result<(), Undelivered> {
        let _ = (from, to, event);
        Ok(())
    }

    /// Shares `changes` to what `room` keeps (its topic, modes, bans, operators'
    /// accounts) with the other nodes, before the event that announces them is
    /// published, and keeps them where a node started later finds them. A server alone
    /// has nobody to share them with.
    fn share_room(&self, room: &RoomName, changes: Vec<RoomChange>) {
        let _ = (room, changes);
    }

    /// Session `founder` (logged in to `account`, if any) made `room`, which had no
    /// member on any node this one knows of, and is its operator here. Another node's
    /// user may have made it at the same moment: the bus lets exactly one of them keep
    /// it and tells the others' nodes through [`super::Hub::founding_lost`]. The
    /// founder's account, if any, is remembered as an operator's only for the one kept.
    fn found(&self, room: &RoomName, founder: SessionId, account: Option<Nick>) {
        let _ = (room, founder, account);
    }

    /// `room` was made on this node at `created` (milliseconds since the Unix epoch), and
    /// the cluster did not say when it was first made anywhere: the bus keeps that time
    /// for every node, unless another node's is kept already, and hands the one kept back
    /// through [`super::Hub::room_kept`] ([`super::KeptRoom::created`]). A server alone
    /// keeps its own.
    fn made(&self, room: &RoomName, created: u64) {
        let _ = (room, created);
    }

    /// `room` has no member on this node any more: a user of any node may found it again.
    fn ended(&self, room: &RoomName) {
        let _ = room;
    }
}

/// The bus of a server alone: every member is here, so an event is heard as it is
/// published.
pub struct LocalBus;

impl Bus for LocalBus {
    fn publish(&self, publication: Publication) -> Option<Publication> {
        Some(publication)
    }
}
