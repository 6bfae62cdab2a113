//! Who is on the other nodes: their sessions, nicks and rooms, as their presence messages
//! told, and when each node was last heard.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use super::tally::{Digests, NodeTally, Told};
use crate::hub::{Nick, Profile, RoomName, Seen, SessionId, Standing, WhoEntry, WhoMask};

/// A session of another node.
pub struct Remote {
    pub node: u16,
    pub nick: Nick,
    /// Its rooms, and what it is in each.
    pub rooms: Vec<(RoomName, Standing)>,
    pub profile: Profile,
}

/// The replica of the other nodes' sessions.
#[derive(Default)]
pub struct Roster {
    sessions: HashMap<SessionId, Remote>,
    nicks: HashMap<Nick, SessionId>,
    rooms: HashMap<RoomName, HashSet<SessionId>>,
    /// How many of `sessions` are server operators, kept as they come and go: every
    /// welcome (LUSERS) asks, and a walk over every session would cost each one.
    opers: usize,
    /// How many of `sessions` are invisible (`+i`), kept as `opers` is.
    invisible: usize,
    /// Each node heard from.
    nodes: HashMap<u16, KnownNode>,
    /// Each node telling all its sessions anew, heard from its start ([`Roster::telling`]).
    rounds: HashMap<u16, Round>,
    /// Each node's sessions here, in three numbers ([`super::tally`]), kept as they come
    /// and go.
    tallies: HashMap<u16, NodeTally>,
    /// How each node's tallies compared with `tallies` lately ([`Roster::tally`]).
    checks: HashMap<u16, TallyCheck>,
}

/// A node heard from.
struct KnownNode {
    /// The run it is in (empty until its heartbeat or hello is heard).
    run: String,
    /// When it was last heard.
    last: Instant,
    /// The forms of presence it reads ([`super::wire::PRESENCE_FORMS`]; 1 until known).
    presence: u32,
}

impl KnownNode {
    fn new(now: Instant) -> KnownNode {
        KnownNode {
            run: String::new(),
            last: now,
            presence: 1,
        }
    }
}

/// How a node's tallies compared with what this node knows of its sessions.
#[derive(Default)]
struct TallyCheck {
    /// A round of it ended (`Told`) since this node subscribed: what this node knows of
    /// it is all it could hear, and a tally that differs means something was lost.
    synced: bool,
    /// Its last tally differed.
    differed: bool,
    /// Rounds asked of it without a tally agreeing since.
    asked: u32,
    /// Its tallies to let go by before asking again.
    wait: u64,
}

/// The most tallies let go by between two rounds asked of a node whose tallies still
/// differ (something there cannot be heard here), as the wait doubles: 63, about five
/// minutes at the default [`crate::limits::CLUSTER_TALLY_EVERY`].
const MOST_TALLIES_WAITED: u64 = 63;

/// A round of a node's presence told anew, as heard so far.
struct Round {
    round: u64,
    /// How many of the round's own presences were heard.
    heard: u64,
    /// The node's sessions told since the round began, in it or as they changed.
    told: HashSet<SessionId>,
}

impl Roster {
    pub fn holder(&self, nick: &Nick) -> Option<SessionId> {
        self.nicks.get(nick).copied()
    }

    /// The session of another node holding `nick`, if any.
    pub fn remote(&self, nick: &Nick) -> Option<&Remote> {
        self.sessions.get(self.nicks.get(nick)?)
    }

    pub fn members(&self, room: &RoomName) -> Vec<WhoEntry> {
        self.rooms.get(room).map_or_else(Vec::new, |ids| {
            ids.iter()
                .map(|id| {
                    let remote = &self.sessions[id];
                    let standing = remote
                        .rooms
                        .iter()
                        .find(|(r, _)| r == room)
                        .map_or(Standing::Member, |(_, s)| *s);
                    WhoEntry {
                        nick: remote.nick.clone(),
                        standing,
                        user: remote.profile.user.clone(),
                        realname: remote.profile.realname.clone(),
                        away: remote.profile.away.is_some(),
                        account: remote.profile.account.clone(),
                        oper: remote.profile.oper,
                        invisible: remote.profile.invisible,
                        idle: remote.profile.idle_ms() / 1000,
                    }
                })
                .collect()
        })
    }

    /// The sessions `mask` matches that `seen` lets through, at most `limit`.
    pub fn matching(&self, mask: &WhoMask, seen: Seen<'_>, limit: usize) -> Vec<WhoEntry> {
        self.sessions
            .values()
            .filter(|r| mask.matches(&r.nick, r.profile.user.as_deref()))
            .filter(|r| seen(&r.profile, &r.rooms))
            .take(limit)
            .map(|r| WhoEntry {
                nick: r.nick.clone(),
                standing: Standing::Member,
                user: r.profile.user.clone(),
                realname: r.profile.realname.clone(),
                away: r.profile.away.is_some(),
                account: r.profile.account.clone(),
                oper: r.profile.oper,
                invisible: r.profile.invisible,
                idle: r.profile.idle_ms() / 1000,
            })
            .collect()
    }

    /// Session `id` of `node` last said something at `spoke` (ms since the Unix epoch).
    pub fn spoke(&mut self, node: u16, id: SessionId, spoke: u64) {
        if let Some(remote) = self.sessions.get_mut(&id).filter(|r| r.node == node) {
            remote.profile.spoke = remote.profile.spoke.max(spoke);
        }
    }

    /// How many of the other nodes' sessions are server operators.
    pub fn opers(&self) -> usize {
        self.opers
    }

    /// How many sessions and live nodes the others have, and how many of those sessions
    /// are invisible.
    pub fn counts(&self) -> (usize, usize, usize) {
        (self.sessions.len(), self.invisible, self.nodes.len())
    }

    /// How many of the others' sessions are in `room`.
    pub fn count(&self, room: &RoomName) -> usize {
        self.rooms.get(room).map_or(0, HashSet::len)
    }

    pub fn rooms(&self) -> Vec<(RoomName, usize)> {
        self.rooms
            .iter()
            .map(|(room, ids)| (room.clone(), ids.len()))
            .collect()
    }

    /// Records what `id` is now, told in `round` of its node's presence told anew (`0`:
    /// as it changed); returns what it was, if it was known. A node first heard of this
    /// way is timed from now, so that it is forgotten if it dies before its first
    /// heartbeat.
    pub fn present(&mut self, id: SessionId, remote: Remote, round: u64) -> Option<Remote> {
        self.nodes
            .entry(remote.node)
            .or_insert_with(|| KnownNode::new(Instant::now()));
        if let Some(telling) = self.rounds.get_mut(&remote.node) {
            telling.heard += u64::from(round != 0 && round == telling.round);
            telling.told.insert(id);
        }
        let old = self.remove(id);
        // Were two sessions to claim one nick, the later word wins here; Redis decides which
        // keeps it, and the other's node renames it.
        self.nicks.insert(remote.nick.clone(), id);
        for (room, _) in &remote.rooms {
            self.rooms.entry(room.clone()).or_default().insert(id);
        }
        self.opers += usize::from(remote.profile.oper);
        self.invisible += usize::from(remote.profile.invisible);
        let digests = Digests::of(id.bits(), &remote.nick, &remote.rooms, &remote.profile);
        self.tallies.entry(remote.node).or_default().add(digests);
        self.sessions.insert(id, remote);
        old
    }

    /// Forgets session `id`; returns what it was.
    pub fn remove(&mut self, id: SessionId) -> Option<Remote> {
        let remote = self.sessions.remove(&id)?;
        if let Some(tally) = self.tallies.get_mut(&remote.node) {
            tally.remove(Digests::of(
                id.bits(),
                &remote.nick,
                &remote.rooms,
                &remote.profile,
            ));
        }
        self.opers -= usize::from(remote.profile.oper);
        self.invisible -= usize::from(remote.profile.invisible);
        if self.nicks.get(&remote.nick) == Some(&id) {
            self.nicks.remove(&remote.nick);
        }
        for (room, _) in &remote.rooms {
            if let Some(ids) = self.rooms.get_mut(room) {
                ids.remove(&id);
                if ids.is_empty() {
                    self.rooms.remove(room);
                }
            }
        }
        Some(remote)
    }

    /// `node`, in `run`, reading the forms of presence `presence`, was heard now. Returns
    /// the sessions of its previous run when this is a new one (it restarted): they are
    /// gone.
    pub fn heard(&mut self, node: u16, run: &str, presence: u32, now: Instant) -> Vec<Remote> {
        // A run not known yet (the node was first heard of by a session's presence) is
        // the one this heartbeat names.
        let restarted = match self.nodes.get(&node) {
            Some(peer) => !peer.run.is_empty() && peer.run != run,
            None => false,
        };
        let peer = KnownNode {
            run: run.to_string(),
            last: now,
            presence,
        };
        self.nodes.insert(node, peer);
        if restarted {
            self.forget_node(node)
        } else {
            Vec::new()
        }
    }

    /// Every node is given until `now` plus the timeout again (after this node was cut off
    /// from them, through no fault of theirs).
    pub fn pardon(&mut self, now: Instant) {
        for peer in self.nodes.values_mut() {
            peer.last = now;
        }
    }

    /// The other live nodes: those heard within the node timeout, not gone.
    pub fn live(&self) -> Vec<u16> {
        self.nodes.keys().copied().collect()
    }

    /// Forgets the nodes not heard since `deadline`; returns their sessions.
    pub fn silent_since(&mut self, deadline: Instant) -> Vec<Remote> {
        let silent: Vec<u16> = self
            .nodes
            .iter()
            .filter(|(_, peer)| peer.last < deadline)
            .map(|(node, _)| *node)
            .collect();
        let mut gone = Vec::new();
        for node in silent {
            self.nodes.remove(&node);
            gone.extend(self.forget_node(node));
        }
        gone
    }

    /// `node` said it is shutting down: forgets it and its sessions; returns them.
    pub fn gone(&mut self, node: u16) -> Vec<Remote> {
        self.nodes.remove(&node);
        self.forget_node(node)
    }

    /// `node` begins to tell all its sessions anew, in `round`.
    pub fn telling(&mut self, node: u16, round: u64) {
        let told = HashSet::new();
        let heard = 0;
        self.rounds.insert(node, Round { round, heard, told });
    }

    /// `node` told all its `sessions` in `round`. If this node heard that round whole
    /// (from its start, every one of them), it forgets the sessions of `node` the round
    /// did not tell, and returns them: they ended while their end could not be heard.
    pub fn told(&mut self, node: u16, round: u64, sessions: u64) -> Vec<Remote> {
        self.checks.entry(node).or_default().synced = true;
        let Some(telling) = self.rounds.remove(&node) else {
            return Vec::new();
        };
        if telling.round != round || telling.heard != sessions {
            return Vec::new();
        }
        let gone: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(id, remote)| remote.node == node && !telling.told.contains(id))
            .map(|(id, _)| *id)
            .collect();
        gone.into_iter().filter_map(|id| self.remove(id)).collect()
    }

    /// This node subscribed again: what was published before is not heard, so no round
    /// begun then is heard whole.
    pub fn forget_rounds(&mut self) {
        self.rounds.clear();
        // Nor is what this node knows of the others whole until their rounds (which its
        // hello asks for) end.
        for check in self.checks.values_mut() {
            check.synced = false;
            check.differed = false;
        }
    }

    /// Whether every node heard from reads the forms of presence `presence`.
    pub fn all_read(&self, presence: u32) -> bool {
        self.nodes.values().all(|peer| peer.presence >= presence)
    }

    /// `node` tells its sessions are `told` ([`tally`]): whether to ask it to tell them
    /// all anew, what this node knows of them differing. Not while this node is waiting
    /// for its round after subscribing (unless its tallies differ twice in a row, in case
    /// that round's end was lost), nor again before the wait since the last round asked
    /// of it is over: one tally more after the first round asked, then doubling up to
    /// [`MOST_TALLIES_WAITED`], while they still differ.
    pub fn tally(&mut self, node: u16, told: Told) -> bool {
        let known = self.tallies.get(&node).copied().unwrap_or_default();
        let check = self.checks.entry(node).or_default();
        if known.agrees(&told) {
            let synced = check.synced;
            *check = TallyCheck {
                synced,
                ..TallyCheck::default()
            };
            return false;
        }
        let differed = std::mem::replace(&mut check.differed, true);
        if check.wait > 0 {
            check.wait -= 1;
            return false;
        }
        if !check.synced && !differed {
            return false;
        }
        check.wait = ((1u64 << check.asked.min(6)) - 1).min(MOST_TALLIES_WAITED);
        check.asked += 1;
        true
    }

    /// Forgets every session of `node`; returns them.
    pub fn forget_node(&mut self, node: u16) -> Vec<Remote> {
        self.rounds.remove(&node);
        self.checks.remove(&node);
        let ids: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, remote)| remote.node == node)
            .map(|(id, _)| *id)
            .collect();
        let gone = ids.into_iter().filter_map(|id| self.remove(id)).collect();
        self.tallies.remove(&node);
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::{MessageText, NodeId};
    use std::time::Duration;

    fn remote(node: u16, nick: &str, rooms: &[&str]) -> Remote {
        Remote {
            node,
            nick: Nick::parse(nick).unwrap(),
            rooms: rooms
                .iter()
                .map(|r| (RoomName::parse(r).unwrap(), Standing::Member))
                .collect(),
            profile: Profile::default(),
        }
    }

    #[test]
    fn sessions_rename_move_and_go_with_their_node() {
        let mut roster = Roster::default();
        let ana = SessionId::new(NodeId::new(2).unwrap(), 1);
        let ops = RoomName::parse("#ops").unwrap();
        let t0 = Instant::now();
        roster.heard(2, "r1", 2, t0);
        assert!(
            roster
                .present(ana, remote(2, "ana", &["#ops"]), 0)
                .is_none()
        );
        assert_eq!(roster.holder(&Nick::parse("ANA").unwrap()), Some(ana));
        let mut anita = remote(2, "anita", &["#ops", "#dev"]);
        anita.rooms[0].1 = Standing::Operator;
        anita.profile.away = MessageText::new("lunch");
        let old = roster.present(ana, anita, 0);
        assert_eq!(old.map(|o| o.nick), Some(Nick::parse("ana").unwrap()));
        assert_eq!(roster.holder(&Nick::parse("ana").unwrap()), None);
        let members = roster.members(&ops);
        assert_eq!(members.len(), 1);
        assert_eq!(members[0].nick, Nick::parse("anita").unwrap());
        assert_eq!(members[0].standing, Standing::Operator);
        assert!(members[0].away && !members[0].oper);
        let mut oper = remote(2, "anita", &["#ops", "#dev"]);
        oper.profile.oper = true;
        roster.present(ana, oper, 0);
        assert!(roster.members(&ops)[0].oper);
        assert_eq!(roster.opers(), 1);
        assert_eq!(roster.counts(), (1, 0, 1));
        let dev = RoomName::parse("#dev").unwrap();
        assert_eq!(roster.members(&dev)[0].standing, Standing::Member);
        assert_eq!(roster.rooms().len(), 2);
        assert_eq!((roster.count(&ops), roster.count(&dev)), (1, 1));
        // A mask finds her, unless what decides who may see her says no.
        let mask = WhoMask::parse("ANI*").unwrap();
        assert_eq!(roster.matching(&mask, &|_, _| true, 10).len(), 1);
        assert!(roster.matching(&mask, &|p, _| !p.oper, 10).is_empty());
        assert!(
            roster
                .matching(&WhoMask::parse("b*").unwrap(), &|_, _| true, 10)
                .is_empty()
        );
        assert!(roster.silent_since(t0).is_empty());
        let gone = roster.silent_since(t0 + Duration::from_secs(1));
        assert_eq!(gone.len(), 1);
        assert!(roster.members(&ops).is_empty() && roster.rooms().is_empty());
        assert_eq!(roster.opers(), 0);
        // A node heard in a new run lost the sessions of its last one.
        roster.heard(2, "r1", 2, t0);
        roster.present(ana, remote(2, "ana", &[]), 0);
        assert_eq!(roster.heard(2, "r2", 2, t0).len(), 1);
        assert_eq!(roster.holder(&Nick::parse("ana").unwrap()), None);
        // A node heard of only through a session is forgotten when it stays silent, and
        // its first heartbeat is no restart.
        let bob = SessionId::new(NodeId::new(3).unwrap(), 1);
        roster.present(bob, remote(3, "bob", &["#ops"]), 0);
        assert!(roster.heard(3, "r9", 2, Instant::now()).is_empty());
        let later = Instant::now() + Duration::from_secs(60);
        assert!(roster.silent_since(later).iter().any(|r| r.node == 3));
    }

    #[test]
    fn a_round_heard_whole_forgets_the_sessions_it_left_out() {
        let mut roster = Roster::default();
        let two = NodeId::new(2).unwrap();
        let (ana, bob, cy) = (
            SessionId::new(two, 1),
            SessionId::new(two, 2),
            SessionId::new(two, 3),
        );
        roster.present(ana, remote(2, "ana", &["#ops"]), 0);
        roster.present(bob, remote(2, "bob", &["#ops"]), 0);
        // Round 1 tells ana only, and cy arrives as it is told: bob ended unheard.
        roster.telling(2, 1);
        roster.present(ana, remote(2, "ana", &["#ops"]), 1);
        roster.present(cy, remote(2, "cy", &[]), 0);
        let gone = roster.told(2, 1, 1);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].nick, Nick::parse("bob").unwrap());
        assert_eq!(roster.holder(&Nick::parse("bob").unwrap()), None);
        assert_eq!(roster.counts().0, 2);
        // A round not heard whole (begun before this node subscribed, one of its
        // presences missed, or its start not heard) forgets nothing.
        roster.telling(2, 2);
        roster.forget_rounds();
        assert!(roster.told(2, 2, 0).is_empty());
        roster.telling(2, 3);
        roster.present(ana, remote(2, "ana", &["#ops"]), 3);
        assert!(roster.told(2, 3, 2).is_empty());
        assert!(roster.told(2, 4, 0).is_empty());
        assert_eq!(roster.counts().0, 2);
        // A node with no session left, told whole, has none here either.
        roster.telling(2, 5);
        assert_eq!(roster.told(2, 5, 0).len(), 2);
        assert_eq!(roster.counts().0, 0);
    }

    #[test]
    fn a_tally_that_differs_asks_for_a_round_at_once_once_synced_and_less_often_after() {
        let mut roster = Roster::default();
        let two = NodeId::new(2).unwrap();
        let (ana, bob) = (SessionId::new(two, 1), SessionId::new(two, 2));
        roster.heard(2, "r1", 2, Instant::now());
        roster.present(ana, remote(2, "ana", &["#ops"]), 0);
        roster.present(bob, remote(2, "bob", &[]), 0);
        let rooms = [(RoomName::parse("#ops").unwrap(), Standing::Member)];
        let plain = Profile::default();
        let bob_digests = Digests::of(bob.bits(), &Nick::parse("bob").unwrap(), &[], &plain);
        let mut tallied = NodeTally::default();
        tallied.add(Digests::of(
            ana.bits(),
            &Nick::parse("ana").unwrap(),
            &rooms,
            &plain,
        ));
        tallied.add(bob_digests);
        let whole = Told::from(tallied);
        assert!(!roster.tally(2, whole));
        // Not synced yet (no round of node 2 ended since subscribing): asked only when
        // its tallies differ twice in a row.
        let mut without_bob = tallied;
        without_bob.remove(bob_digests);
        let without_bob = Told::from(without_bob);
        assert!(!roster.tally(2, without_bob));
        assert!(roster.tally(2, without_bob));
        // A round ended, not heard whole (it prunes nothing): a tally that differs asks at
        // once; while they keep differing, the next one asks again, then one is let go by,
        // then three, …
        roster.telling(2, 1);
        assert!(roster.told(2, 1, 5).is_empty());
        assert!(!roster.tally(2, whole));
        let asked: Vec<bool> = (0..8).map(|_| roster.tally(2, without_bob)).collect();
        assert_eq!(asked, [true, true, false, true, false, false, false, true]);
        // Once they agree, the next difference asks at once again.
        assert!(!roster.tally(2, whole));
        assert!(roster.tally(2, without_bob));
        // Subscribing again forgets that a round was heard; a rename changes the digest.
        roster.forget_rounds();
        roster.present(bob, remote(2, "robert", &[]), 0);
        assert!(!roster.tally(2, whole));
        assert!(roster.tally(2, whole));
        // A node forgotten has no tally left here, and nothing to ask of.
        roster.forget_node(2);
        assert!(!roster.tally(2, NodeTally::default().into()));
        assert!(roster.all_read(2));
        roster.heard(3, "r1", 1, Instant::now());
        assert!(!roster.all_read(2));
    }
}
