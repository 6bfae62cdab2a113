//! Secret rooms (`+s`): to a session outside one, it does not exist. `/rooms` (LIST) leaves
//! it out, looking into it (NAMES, WHO, TOPIC and MODE queries, `/status`) is answered as for
//! a room that does not exist, and WHOIS does not name it, as IRC servers hide them
//! (modern.ircdocs.horse). Whoever knows its name may still join it: secret is not closed
//! (`+i`, `+k` close it).

use super::SessionId;
use super::chat::ChatState;
use super::names::RoomName;

impl ChatState {
    /// Whether `room` is secret and session `id` is not in it. A room whose members are
    /// all on other nodes is as secret as the cluster keeps it.
    pub(super) fn hidden_from(&self, id: SessionId, room: &RoomName) -> bool {
        let secret = match self.rooms.get(room) {
            Some(target) => target.modes.secret,
            None => self
                .directory
                .kept_room(room)
                .is_some_and(|kept| kept.modes.secret),
        };
        secret
            && !self
                .sessions
                .get(&id)
                .is_some_and(|s| s.rooms.contains(room))
    }

    /// Whether `room` is secret, for the one in it who asks (IRC's NAMES marks it `@`).
    pub(super) fn is_secret(&self, room: &RoomName) -> bool {
        self.rooms
            .get(room)
            .is_some_and(|target| target.modes.secret)
    }
}
