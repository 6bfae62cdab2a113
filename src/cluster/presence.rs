//! What the presence of another node's session, as told, means for the members here: a
//! rename and a change of away state are announced as they come; and when it is told
//! anew (after an outage, or to a node that joined), the joins and leaves it made while
//! this node could not hear them too, one line per change as live ones look.

use std::collections::HashMap;

use super::Shared;
use super::roster::Remote;
use crate::hub::{Hub, LeaveReason, MessageText, Nick, RoomName};

/// A session of another node as its presence now tells it.
pub(super) struct Told {
    pub nick: Nick,
    pub rooms: Vec<RoomName>,
    pub away: Option<MessageText>,
    pub account: Option<Nick>,
}

/// The session was `old` (when known) and is now `told`; `again`: told anew rather than
/// as it changed ([`super::wire::Wire::Present`]'s `again`), when the joins and leaves it
/// made meanwhile were perhaps not heard.
pub(super) fn announce(shared: &Shared, hub: &Hub, old: Option<Remote>, told: Told, again: bool) {
    let old_rooms: Vec<RoomName> = old
        .iter()
        .flat_map(|o| o.rooms.iter().map(|(room, _)| room.clone()))
        .collect();
    if again && let Some(old) = &old {
        // Counted with it, as it was in them until now.
        let left: Vec<(RoomName, usize)> = {
            let roster = shared.roster.lock().unwrap();
            old_rooms
                .iter()
                .filter(|room| !told.rooms.contains(room))
                .map(|room| (room.clone(), roster.count(room) + 1))
                .collect()
        };
        hub.left_elsewhere(&old.nick, &left, LeaveReason::Left(None));
    }
    if let Some(old) = &old {
        if old.nick != told.nick {
            // Told anew, only the rooms it was in and still is knew it by its old nick.
            let rooms: Vec<RoomName> = match again {
                true => told
                    .rooms
                    .iter()
                    .filter(|room| old_rooms.contains(room))
                    .cloned()
                    .collect(),
                false => told.rooms.clone(),
            };
            hub.renamed_elsewhere(&old.nick, &told.nick, &rooms);
        }
        if old.profile.away != told.away {
            hub.away_elsewhere(&told.nick, told.away.clone(), &told.rooms);
        }
    }
    if again {
        let joined: Vec<(RoomName, usize)> = {
            let roster = shared.roster.lock().unwrap();
            told.rooms
                .iter()
                .filter(|room| !old_rooms.contains(room))
                .map(|room| (room.clone(), roster.count(room)))
                .collect()
        };
        hub.joined_elsewhere(&told.nick, told.account, told.away, &joined);
    }
}

/// Sessions `gone` of another node were told gone anew after an outage
/// ([`super::wire::Wire::Absent`]'s `again`), or left out of their node's presence told
/// whole ([`super::wire::Wire::Told`]), while this node still knew them: they left their
/// rooms meanwhile, how is not known (their word was lost with Redis).
pub(super) fn gone(shared: &Shared, hub: &Hub, gone: Vec<Remote>) {
    left(shared, hub, gone, &LeaveReason::Quit(None));
}

/// Sessions `gone` of other nodes, forgotten already, left their rooms (`reason`): the
/// members here hear each leave as they would have heard it live, one after the other.
/// Whether a room announces it is decided by the room's members on every node as each
/// leaves (those of `gone` still to leave after it counted in), as a live leave is.
pub(super) fn left(shared: &Shared, hub: &Hub, gone: Vec<Remote>, reason: &LeaveReason) {
    if gone.is_empty() {
        return;
    }
    // Each room's members of other nodes still in it as the next of `gone` leaves it.
    let mut members: HashMap<RoomName, usize> = HashMap::new();
    for remote in &gone {
        for (room, _) in &remote.rooms {
            *members.entry(room.clone()).or_default() += 1;
        }
    }
    {
        let roster = shared.roster.lock().unwrap();
        for (room, count) in &mut members {
            *count += roster.count(room);
        }
    }
    for remote in gone {
        let rooms: Vec<(RoomName, usize)> = remote
            .rooms
            .into_iter()
            .map(|(room, _)| {
                let count = members.get_mut(&room).expect("counted above");
                let elsewhere = *count;
                *count -= 1;
                (room, elsewhere)
            })
            .collect();
        hub.left_elsewhere(&remote.nick, &rooms, reason.clone());
    }
}
