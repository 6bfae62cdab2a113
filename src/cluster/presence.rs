//! What the presence of another node's session, as told, means for the members here: a
//! rename and a change of away state are announced as they come; and when it is told
//! anew (after an outage, or to a node that joined), the joins and leaves it made while
//! this node could not hear them too, one line per change as live ones look.

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
        let left: Vec<RoomName> = old_rooms
            .iter()
            .filter(|room| !told.rooms.contains(room))
            .cloned()
            .collect();
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
        hub.joined_elsewhere(&told.nick, told.account, &joined);
    }
}

/// Session `gone` of another node was told gone anew after an outage
/// ([`super::wire::Wire::Absent`]'s `again`), or left out of its node's presence told
/// whole ([`super::wire::Wire::Told`]), while this node still knew it: it left its rooms
/// meanwhile, how is not known (its word was lost with Redis).
pub(super) fn gone(hub: &Hub, gone: Remote) {
    let rooms: Vec<RoomName> = gone.rooms.into_iter().map(|(room, _)| room).collect();
    hub.left_elsewhere(&gone.nick, &rooms, LeaveReason::Quit(None));
}
