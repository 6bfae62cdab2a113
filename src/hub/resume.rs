//! Exact resume: a client that saw a room up to entry number N gets what came after N,
//! once and in order, before anything live, or hears what is no longer kept.
//!
//! A deep history is read from the store without the hub's lock ([`Hub::resume`]); what
//! was added meanwhile is taken under the lock from the newest entries the store holds in
//! memory, and the member starts reading the room's live log at that same moment, so the
//! replay ends exactly where live messages begin.

use super::chat::{ChatState, Failure, Keep};
use super::event::{Event, GapCause, Outgoing};
use super::names::RoomName;
use super::post::Entry;
use super::{Hub, SessionId};
use crate::limits::HISTORY_SINCE_MAX;

/// What a resume read of the store before taking the hub's lock.
pub(super) struct Resume {
    /// The last entry number the client saw.
    pub after: u64,
    /// Entries after `after` (or after the start of the newest [`HISTORY_SINCE_MAX`]),
    /// oldest first, as the store had them then.
    pub read: Vec<Entry>,
}

impl Hub {
    /// [`super::Command::Resume`]: reads the store first, without the lock, then joins.
    pub(super) fn resume(
        &self,
        id: SessionId,
        room: RoomName,
        after: u64,
        reference: Option<String>,
    ) -> super::Stamps {
        let last = self.store.last_seq(&room);
        let read = if last > after {
            let start = after.max(last.saturating_sub(HISTORY_SINCE_MAX as u64));
            self.store.after_seq(&room, start, HISTORY_SINCE_MAX)
        } else {
            Vec::new()
        };
        self.stamped(|chat| {
            if !chat.sessions.contains_key(&id) {
                return;
            }
            let resume = Resume { after, read };
            if let Err(failure) = chat.join(id, room, None, reference.clone(), Some(resume)) {
                chat.answer(id, Err(failure), reference);
            }
        })
    }
}

impl ChatState {
    /// The last entry number of `room`, which exists: asked of the store once per room.
    pub fn last_seq(&mut self, room: &RoomName) -> u64 {
        let target = self.rooms.get_mut(room).expect("the room exists");
        let store = &self.store;
        *target.seq.get_or_insert_with(|| store.last_seq(room))
    }

    /// What a resume of `room` (which exists) replays, under the lock: what was read
    /// before it, then what the store added since, up to the room's last entry now;
    /// with the gap, if any, before it.
    pub(super) fn replay(
        &mut self,
        room: &RoomName,
        resume: Resume,
    ) -> (Option<Event>, Vec<Entry>) {
        let last = self.last_seq(room);
        // Numbers beyond the room's last: it began again (history in memory only).
        let after = if resume.after > last { 0 } else { resume.after };
        let mut entries = resume.read;
        entries.retain(|entry| entry.seq() > after && entry.seq() <= last);
        let newest = entries.last().map_or(after, Entry::seq);
        if newest < last {
            // Usually all in the newest entries the store keeps in memory; when more came
            // while the store was read, read the rest here.
            let mut added: Vec<Entry> = self.store.recent(room, None);
            added.retain(|entry| entry.seq() > newest);
            if added.first().is_none_or(|entry| entry.seq() != newest + 1) {
                added = self.store.after_seq(room, newest, HISTORY_SINCE_MAX);
            }
            entries.extend(added.into_iter().filter(|entry| entry.seq() <= last));
        }
        entries.drain(..entries.len().saturating_sub(HISTORY_SINCE_MAX));
        let first = entries.first().map_or(last + 1, Entry::seq);
        let gap = (first > after + 1).then(|| Event::Gap {
            room: room.clone(),
            from: after + 1,
            to: first - 1,
            cause: GapCause::NotKept,
        });
        (gap, entries)
    }

    /// A member resuming a room it is in: what it has not read of the room's log yet is
    /// either in the replay (entries) or handed over first (everything else), and it reads
    /// the log on from its end.
    pub(super) fn resume_member(
        &mut self,
        id: SessionId,
        room: &RoomName,
        resume: Resume,
        reference: Option<String>,
    ) -> Result<(), Failure> {
        let (gap, entries) = self.replay(room, resume);
        let recipient = self.sessions[&id].recipient.clone();
        let log = self.rooms[room].log.clone();
        if let Some(mut reading) = recipient.unfollow(&log) {
            let mut unread = Vec::new();
            reading.read(|order, event| {
                if !matches!(event.event, Event::Message(_) | Event::Posted(_)) {
                    unread.push((order, event.clone()));
                }
            });
            for (order, event) in unread {
                if recipient.deliver(order, &event).is_err() {
                    self.overflowed.push(id);
                    return Ok(());
                }
            }
        }
        self.send_replay(id, room, gap, entries, reference);
        recipient.follow(log.follow(id));
        Ok(())
    }

    /// Sends a resume's gap, if any, then its entries (a `History`, even when empty, so the
    /// client knows the resume is done). Entries cut to fit the client's send queue, the
    /// oldest, are in the gap.
    pub(super) fn send_replay(
        &mut self,
        id: SessionId,
        room: &RoomName,
        gap: Option<Event>,
        entries: Vec<Entry>,
        reference: Option<String>,
    ) {
        let first = entries.first().map(Entry::seq);
        let Some(answer) = self.fitted_history(id, room, entries, reference.clone(), Keep::Newest)
        else {
            return;
        };
        let kept = match &answer.event {
            Event::History { messages, .. } => messages.first().map(Entry::seq),
            _ => None,
        };
        let gap = match (first, kept) {
            (Some(first), Some(kept)) if kept > first => Some(Event::Gap {
                room: room.clone(),
                from: match gap {
                    Some(Event::Gap { from, .. }) => from,
                    _ => first,
                },
                to: kept - 1,
                cause: GapCause::NotKept,
            }),
            _ => gap,
        };
        if let Some(gap) = gap {
            self.send(id, &Outgoing::reply(gap, reference));
        }
        self.send(id, &answer);
    }
}
