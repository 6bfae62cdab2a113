//! What a cluster tells the hub of other nodes: nick changes there, nicks lost to them, and
//! whether they can be reached at all; and what it asks: the last message heard in each room.

use std::collections::HashSet;

use super::event::{Event, Outgoing};
use super::names::{Nick, RoomName};
use super::store::Owed;
use super::{Hub, SessionId};

impl Hub {
    /// A session of another node went from `old` to `new`: everyone here sharing one of its
    /// `rooms` hears it once.
    pub fn renamed_elsewhere(&self, old: &Nick, new: &Nick, rooms: &[RoomName]) {
        self.with_chat(|chat| {
            let notice = Outgoing::new(Event::NickChanged {
                old: old.clone(),
                new: new.clone(),
                you: false,
            });
            let mut told = HashSet::new();
            for room in rooms {
                let Some(target) = chat.rooms.get(room) else {
                    continue;
                };
                if !target.settings.announces(target.members.len() + 1) {
                    continue;
                }
                told.extend(target.members.keys().copied());
            }
            for member in told {
                chat.send(member, &notice);
            }
        });
    }

    /// Another node took `nick` at the same moment as session `id` here, and first: the
    /// session is told and renamed to a guest, if it still holds `nick`.
    pub fn nick_lost(&self, id: SessionId, nick: &Nick) {
        self.with_chat(|chat| {
            if chat.sessions.get(&id).is_none_or(|s| s.nick != *nick) {
                return;
            }
            let lost = Event::Error {
                code: super::ErrorCode::NickTaken,
                message: format!("{nick} was taken on another node at the same moment"),
            };
            chat.send(id, &Outgoing::new(lost));
            chat.evict(id);
        });
    }

    /// Tells every session here whether the other nodes can be reached.
    pub fn tell_all(&self, event: Event) {
        self.with_chat(|chat| {
            let event = Outgoing::new(event);
            let ids: Vec<SessionId> = chat.sessions.keys().copied().collect();
            for id in ids {
                chat.send(id, &event);
            }
        });
    }

    /// The number of the last message heard in each of `rooms` and of the rooms here: what
    /// a cluster node fetches what it missed after.
    pub fn last_heard(&self, rooms: Vec<RoomName>) -> Vec<(RoomName, u64)> {
        self.with_chat(|chat| {
            let mut rooms: HashSet<RoomName> = rooms.into_iter().collect();
            rooms.extend(chat.rooms.keys().cloned());
            rooms
                .into_iter()
                .map(|room| {
                    let last = if chat.rooms.contains_key(&room) {
                        chat.last_seq(&room)
                    } else {
                        chat.store.last_seq(&room)
                    };
                    (room, last)
                })
                .collect()
        })
    }

    /// The other nodes are reachable again and what was missed has been heard: a message of
    /// this node still not handed back was lost with Redis (sent, never kept there). Its
    /// speaker is told instead of waiting for an `ack` forever.
    pub fn forget_unheard(&self) {
        self.with_chat(|chat| {
            let owed: Vec<Owed> = chat.unheard.drain().map(|(_, owed)| owed).collect();
            for owed in owed {
                let lost = Event::Error {
                    code: super::ErrorCode::NotStored,
                    message: format!(
                        "message {} may not have reached the other nodes: Redis failed as it was sent",
                        owed.id
                    ),
                };
                chat.send(owed.session, &Outgoing::reply(lost, owed.reference));
            }
        });
    }
}
