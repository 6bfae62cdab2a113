//! What a node's users say while Redis is out of reach, or said just before in a pipeline
//! that failed: heard on the node at once, and held (up to [`CLUSTER_OUTAGE_HELD`]) to be
//! published in the order said once Redis is back, so that the other nodes get it late
//! rather than never, and no later message overtakes it. What does not fit is counted by
//! room (the rooms' members elsewhere get a `gap` for it) and its speaker told. Nicks let
//! go meanwhile are held too, to be let go in Redis once it is back.

use std::collections::{HashMap, HashSet, VecDeque};

use super::Out;
use crate::hub::{Event, Nick, Publication, RoomName, SessionId};
use crate::limits::{CLUSTER_OUTAGE_CHANGES, CLUSTER_OUTAGE_HELD, CLUSTER_OUTAGE_RELEASES};

/// A message or a post held to be published once Redis is back.
pub(super) struct Held {
    pub publication: Publication,
    /// It went to Redis once already, in a pipeline that failed: Redis may have run it
    /// (and the other nodes heard it) before failing, so it is published only if its
    /// room's backlog does not have it (`link::SAID_ONCE`).
    pub sent: bool,
}

#[derive(Default)]
pub(super) struct Outage {
    /// Messages and posts not yet published, in the order said (their ids, which this
    /// node mints in that order): whichever way each came to be held (said while holding,
    /// or given back by a failed pipeline later), they are published in that order.
    pub held: VecDeque<Held>,
    /// How many past the bound, by room.
    pub dropped: HashMap<RoomName, u64>,
    /// Changes to rooms (what Redis keeps of them, their announcements, foundings) not
    /// yet sent, oldest first; at most [`CLUSTER_OUTAGE_CHANGES`].
    pub changes: Vec<Out>,
    /// How many of `changes`, at its start, failed pipelines gave back: they were made
    /// before any held since.
    again: usize,
    /// Nicks sessions here let go of (quitting, renamed) that Redis may still name them
    /// for, each once; at most [`CLUSTER_OUTAGE_RELEASES`]. Let go in Redis once it is
    /// back, so that a user of another node may take them.
    pub released: HashSet<(Nick, SessionId)>,
}

impl Outage {
    /// Holds `publication` (a message or a post; `sent` when it went to Redis once) in
    /// its place in the order said. Past the bound the newest held is not relayed:
    /// counted, and its id returned when it is a message, whose speaker is owed an answer.
    pub fn hold(&mut self, publication: Publication, sent: bool) -> Option<u64> {
        let key = id(&publication.event);
        let at = self
            .held
            .partition_point(|h| id(&h.publication.event) < key);
        self.held.insert(at, Held { publication, sent });
        if self.held.len() <= CLUSTER_OUTAGE_HELD {
            return None;
        }
        let newest = self.held.pop_back().expect("over the bound");
        self.lost(newest.publication)
    }

    /// Holds a change to a room, or drops it past the bound: it then holds on this node
    /// only.
    pub fn hold_change(&mut self, change: Out) {
        if self.changes.len() < CLUSTER_OUTAGE_CHANGES {
            self.changes.push(change);
        } else {
            tracing::warn!(
                "too many room changes while Redis is out of reach; kept on this node only"
            );
        }
    }

    /// Holds the release of `nick` by session `id`, to be sent once Redis is back; past
    /// the bound, Redis keeps the claim until this node restarts (logged).
    pub fn release(&mut self, nick: Nick, id: SessionId) {
        let release = (nick, id);
        if self.released.len() < CLUSTER_OUTAGE_RELEASES || self.released.contains(&release) {
            self.released.insert(release);
        } else {
            tracing::warn!(
                nick = %release.0.as_str(),
                "too many nicks let go while Redis is out of reach; this one stays taken in Redis until this node restarts"
            );
        }
    }

    /// Holds again changes that could not be sent after all (Redis failed as they were):
    /// after those failed pipelines gave back before (sent earlier), before those held
    /// since (made later), so the order they were made in is kept.
    pub fn hold_changes_again(&mut self, changes: Vec<Out>) {
        let count = changes.len();
        let at = self.again;
        self.changes.splice(at..at, changes);
        self.again += count;
        self.changes.truncate(CLUSTER_OUTAGE_CHANGES);
        self.again = self.again.min(self.changes.len());
    }

    /// Counts `publication` as not relayed; its id when it is a message.
    pub fn lost(&mut self, publication: Publication) -> Option<u64> {
        *self.dropped.entry(publication.room).or_default() += 1;
        match publication.event {
            Event::Message(said) => Some(said.id),
            _ => None,
        }
    }

    /// Everything held, to be sent now that Redis is back; nothing is held after.
    pub fn take(&mut self) -> Outage {
        std::mem::take(self)
    }

    /// The number this node proposed for the first message it holds in `room`, minus one:
    /// what it heard there from Redis before the outage (its own later numbers in the room
    /// are its own, not the cluster's).
    pub fn heard_before(&self, room: &RoomName) -> Option<u64> {
        self.held
            .iter()
            .find(|h| h.publication.room == *room)
            .and_then(|h| proposed(&h.publication.event))
            .map(|seq| seq.saturating_sub(1))
    }
}

/// The number a message or a post was proposed under (`None` for anything else).
pub(super) fn proposed(event: &Event) -> Option<u64> {
    match event {
        Event::Message(said) => Some(said.seq),
        Event::Posted(posted) => Some(posted.seq),
        _ => None,
    }
}

/// The id of a message or a post, which this node minted in the order said (0 for
/// anything else, which is never held).
fn id(event: &Event) -> u64 {
    match event {
        Event::Message(said) => said.id,
        Event::Posted(posted) => posted.id,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::{MessageText, NodeId, Said};

    /// Message `id` of ana in `room`, proposed as number `seq`.
    fn said(room: &RoomName, id: u64, seq: u64) -> Publication {
        let said = Said {
            id,
            seq,
            ts: 0,
            room: room.clone(),
            from: Nick::parse("ana").unwrap(),
            text: MessageText::new("hola").unwrap(),
            action: false,
            notice: false,
            account: None,
            tags: None,
        };
        Publication {
            room: room.clone(),
            event: Event::Message(said),
            except: Some(SessionId::new(NodeId::new(1).unwrap(), 7)),
        }
    }

    fn ids(outage: &Outage) -> Vec<u64> {
        outage
            .held
            .iter()
            .map(|h| id(&h.publication.event))
            .collect()
    }

    #[test]
    fn what_fits_is_held_in_order_and_the_rest_counted_by_room_and_told() {
        let (ops, lobby) = (RoomName::parse("#ops").unwrap(), RoomName::lobby());
        let mut outage = Outage::default();
        let mut lost = Vec::new();
        for n in 1..=CLUSTER_OUTAGE_HELD as u64 + 2 {
            lost.extend(outage.hold(said(&ops, n, n), false));
        }
        lost.extend(outage.hold(said(&lobby, 20_000, 40), false));
        assert_eq!(outage.held.len(), CLUSTER_OUTAGE_HELD);
        assert_eq!(outage.dropped.get(&ops), Some(&2));
        assert_eq!(outage.dropped.get(&lobby), Some(&1));
        // Each message not relayed is named, for its speaker to be told.
        let bound = CLUSTER_OUTAGE_HELD as u64;
        assert_eq!(lost, [bound + 1, bound + 2, 20_000]);
        // What the room had heard before the outage: one before the first number held.
        assert_eq!(outage.heard_before(&ops), Some(0));
        assert_eq!(outage.heard_before(&lobby), None);

        // Given back by a failed pipeline: first again, in the order said, and the
        // newest past the bound not relayed.
        let again: Vec<Publication> = outage.held.drain(..2).map(|h| h.publication).collect();
        for publication in again {
            assert_eq!(outage.hold(publication, true), None);
        }
        assert_eq!(outage.hold(said(&ops, 90_000, 90), false), Some(90_000));
        assert_eq!(ids(&outage)[..3], [1, 2, 3]);
        let sent: Vec<bool> = outage.held.iter().take(3).map(|h| h.sent).collect();
        assert_eq!(sent, [true, true, false]);
        assert_eq!(outage.held.len(), CLUSTER_OUTAGE_HELD);
    }

    #[test]
    fn what_failed_pipelines_give_back_later_is_held_before_what_was_said_after_it() {
        let ops = RoomName::parse("#ops").unwrap();
        let mut outage = Outage::default();
        // Two pipelines in flight (1 and 2, then 3 and 4) when Redis fails; 5 and 6 said
        // meanwhile are held before the second pipeline gives its messages back.
        outage.hold(said(&ops, 1, 1), true);
        outage.hold(said(&ops, 2, 2), true);
        outage.hold(said(&ops, 5, 5), false);
        outage.hold(said(&ops, 6, 6), false);
        outage.hold(said(&ops, 3, 3), true);
        outage.hold(said(&ops, 4, 4), true);
        assert_eq!(ids(&outage), [1, 2, 3, 4, 5, 6]);
        let sent: Vec<bool> = outage.held.iter().map(|h| h.sent).collect();
        assert_eq!(sent, [true, true, true, true, false, false]);
        assert_eq!(outage.heard_before(&ops), Some(0));
    }

    #[test]
    fn a_nick_let_go_is_held_once_and_no_more_than_the_bound() {
        let nick = |n: &str| Nick::parse(n).unwrap();
        let session = |n| SessionId::new(NodeId::new(1).unwrap(), n);
        let mut outage = Outage::default();
        outage.release(nick("ana"), session(1));
        outage.release(nick("ANA"), session(1));
        outage.release(nick("ana"), session(2));
        assert_eq!(outage.released.len(), 2);
        for n in 0..CLUSTER_OUTAGE_RELEASES as u64 {
            outage.release(nick(&format!("guest{n}")), session(3));
        }
        assert_eq!(outage.released.len(), CLUSTER_OUTAGE_RELEASES);
        assert_eq!(outage.take().released.len(), CLUSTER_OUTAGE_RELEASES);
        assert!(outage.released.is_empty());
    }

    #[test]
    fn changes_failed_pipelines_give_back_come_before_those_held_since() {
        let room = |name: &str| RoomName::parse(name).unwrap();
        let ended = |out: &Out| match out {
            Out::Ended(room) => room.as_str().to_string(),
            _ => unreachable!(),
        };
        let mut outage = Outage::default();
        outage.hold_changes_again(vec![Out::Ended(room("#a")), Out::Ended(room("#b"))]);
        outage.hold_change(Out::Ended(room("#e")));
        outage.hold_changes_again(vec![Out::Ended(room("#c")), Out::Ended(room("#d"))]);
        outage.hold_change(Out::Ended(room("#f")));
        let names: Vec<String> = outage.changes.iter().map(ended).collect();
        assert_eq!(names, ["#a", "#b", "#c", "#d", "#e", "#f"]);
        let taken = outage.take();
        assert_eq!(taken.changes.len(), 6);
        outage.hold_change(Out::Ended(room("#g")));
        outage.hold_changes_again(vec![Out::Ended(room("#h"))]);
        let names: Vec<String> = outage.changes.iter().map(ended).collect();
        assert_eq!(names, ["#h", "#g"]);
    }
}
