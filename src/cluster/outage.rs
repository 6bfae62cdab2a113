//! What a node's users say while Redis is out of reach, or said just before in a pipeline
//! that failed: heard on the node at once, and held (up to [`CLUSTER_OUTAGE_HELD`]) to be
//! published in order once Redis is back, so that the other nodes get it late rather than
//! never. What does not fit is counted, by room and by speaker: the rooms' members
//! elsewhere get a `gap` for it, and the speakers are told.

use std::collections::{HashMap, VecDeque};

use super::Out;
use crate::hub::{Event, Publication, RoomName, SessionId};
use crate::limits::{CLUSTER_OUTAGE_CHANGES, CLUSTER_OUTAGE_HELD};

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
    /// Messages and posts not yet published, oldest first.
    pub held: VecDeque<Held>,
    /// How many past the bound, by room.
    pub dropped: HashMap<RoomName, u64>,
    /// How many past the bound, by speaker.
    pub speakers: HashMap<SessionId, u64>,
    /// Changes to rooms (what Redis keeps of them, their announcements, foundings) not
    /// yet sent, oldest first; at most [`CLUSTER_OUTAGE_CHANGES`].
    pub changes: Vec<Out>,
}

impl Outage {
    /// Holds `publication` (a message or a post), or counts it past the bound.
    pub fn hold(&mut self, publication: Publication) {
        if self.held.len() < CLUSTER_OUTAGE_HELD {
            self.held.push_back(Held {
                publication,
                sent: false,
            });
            return;
        }
        self.lost(publication);
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

    /// Holds again, before what is held, changes that could not be sent after all (Redis
    /// failed as they were): the order they were made in is kept.
    pub fn hold_changes_again(&mut self, mut changes: Vec<Out>) {
        changes.append(&mut self.changes);
        changes.truncate(CLUSTER_OUTAGE_CHANGES);
        self.changes = changes;
    }

    /// Counts `publication` as not relayed.
    pub fn lost(&mut self, publication: Publication) {
        *self.dropped.entry(publication.room).or_default() += 1;
        if let (Event::Message(_), Some(speaker)) = (&publication.event, publication.except) {
            *self.speakers.entry(speaker).or_default() += 1;
        }
    }

    /// Holds again what went to Redis in a pipeline that failed (said just before, or
    /// held and published after an outage), marked [`Held::sent`]: after what earlier
    /// failed pipelines gave back, and before what was said since (held, never sent), so
    /// that the order it was said in is kept.
    pub fn hold_again(&mut self, publications: Vec<Publication>) {
        let at = self
            .held
            .iter()
            .position(|h| !h.sent)
            .unwrap_or(self.held.len());
        let mut since = self.held.split_off(at);
        self.held
            .extend(publications.into_iter().map(|publication| Held {
                publication,
                sent: true,
            }));
        self.held.append(&mut since);
        while self.held.len() > CLUSTER_OUTAGE_HELD {
            let newest = self.held.pop_back().expect("over the bound");
            self.lost(newest.publication);
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::{MessageText, Nick, NodeId, Said};

    fn said(room: &RoomName, seq: u64, by: SessionId) -> Publication {
        let said = Said {
            id: seq,
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
            except: Some(by),
        }
    }

    fn seqs(outage: &Outage) -> Vec<u64> {
        outage
            .held
            .iter()
            .filter_map(|h| proposed(&h.publication.event))
            .collect()
    }

    #[test]
    fn what_fits_is_held_in_order_and_the_rest_counted_by_room_and_speaker() {
        let (ops, lobby) = (RoomName::parse("#ops").unwrap(), RoomName::lobby());
        let ana = SessionId::new(NodeId::new(1).unwrap(), 7);
        let mut outage = Outage::default();
        for seq in 1..=CLUSTER_OUTAGE_HELD as u64 + 2 {
            outage.hold(said(&ops, seq, ana));
        }
        outage.hold(said(&lobby, 40, ana));
        assert_eq!(outage.held.len(), CLUSTER_OUTAGE_HELD);
        assert_eq!(outage.dropped.get(&ops), Some(&2));
        assert_eq!(outage.dropped.get(&lobby), Some(&1));
        assert_eq!(outage.speakers.get(&ana), Some(&3));
        // What the room had heard before the outage: one before the first number held.
        assert_eq!(outage.heard_before(&ops), Some(0));
        assert_eq!(outage.heard_before(&lobby), None);

        // Held again after a failed publication: first again, in order, and the newest
        // past the bound counted.
        let again: Vec<Publication> = outage.held.drain(..2).map(|h| h.publication).collect();
        outage.hold(said(&ops, 90, ana));
        outage.hold(said(&ops, 91, ana));
        outage.hold_again(again);
        assert_eq!(seqs(&outage)[..3], [1, 2, 3]);
        // Those held again went to Redis once: published only if Redis did not run them.
        let sent: Vec<bool> = outage.held.iter().take(3).map(|h| h.sent).collect();
        assert_eq!(sent, [true, true, false]);
        assert_eq!(outage.held.len(), CLUSTER_OUTAGE_HELD);
        assert_eq!(outage.dropped.get(&ops), Some(&4));
    }

    #[test]
    fn what_failed_pipelines_gave_back_is_held_in_the_order_sent_before_what_was_said_since() {
        let ops = RoomName::parse("#ops").unwrap();
        let ana = SessionId::new(NodeId::new(1).unwrap(), 7);
        let mut outage = Outage::default();
        // Said once Redis was found out of reach, while two pipelines were in flight.
        outage.hold(said(&ops, 5, ana));
        // The two pipelines fail in the order they were sent.
        outage.hold_again(vec![said(&ops, 1, ana), said(&ops, 2, ana)]);
        outage.hold_again(vec![said(&ops, 3, ana), said(&ops, 4, ana)]);
        assert_eq!(seqs(&outage), [1, 2, 3, 4, 5]);
        let sent: Vec<bool> = outage.held.iter().map(|h| h.sent).collect();
        assert_eq!(sent, [true, true, true, true, false]);
        assert_eq!(outage.heard_before(&ops), Some(0));
    }
}
