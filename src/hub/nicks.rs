//! Which session holds each nick.

use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;

use super::chat::Participant as Session;
use super::names::Nick;
use super::{BySession, SessionId};

/// Which session holds each nick: a set of session ids, found by hashing a nick and
/// compared through the nick their session holds. The nick itself is kept once, in the
/// session; a map from nick to id would keep a second name per
/// session, on every idle connection.
///
/// Every id here must be in the sessions map under the nick it was inserted with: remove
/// an id before its session's nick changes, and insert it after.
#[derive(Default)]
pub(super) struct NickTable {
    ids: HashTable<SessionId>,
    hasher: RandomState,
}

impl NickTable {
    /// The session holding `nick`, if any.
    pub fn get(&self, nick: &Nick, sessions: &BySession<Session>) -> Option<SessionId> {
        let hash = self.hasher.hash_one(nick);
        self.ids
            .find(hash, |id| sessions[id].nick == *nick)
            .copied()
    }

    /// Records that session `id`, already in `sessions`, holds its nick.
    pub fn insert(&mut self, id: SessionId, sessions: &BySession<Session>) {
        let hasher = &self.hasher;
        let hash = hasher.hash_one(&sessions[&id].nick);
        self.ids
            .insert_unique(hash, id, |other| hasher.hash_one(&sessions[other].nick));
    }

    /// Forgets that session `id` holds `nick`.
    pub fn remove(&mut self, id: SessionId, nick: &Nick) {
        let hash = self.hasher.hash_one(nick);
        if let Ok(entry) = self.ids.find_entry(hash, |&other| other == id) {
            entry.remove();
        }
    }

    pub fn clear(&mut self) {
        self.ids.clear();
    }
}
