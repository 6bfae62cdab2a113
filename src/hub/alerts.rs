//! Calls to checks and heartbeats (a job's beat, `/ack`, `/silence`, `/unsilence`): done by
//! the feed of this node that keeps the one named and, in a cluster, sent to every other
//! live node that runs one so named ([`AlertPeers`]), whose answers are gathered into one.
//! Two nodes running a check or heartbeat of the same name are both called: each does it
//! as its own, and the answer holds the status of each.

use std::sync::Arc;

use super::calls::{
    AlertAction, AlertDesk, AlertPeers, Answered, Beat, CallAnswer, Caller, Gathered, Heartbeats,
    PeerCall, Took,
};
use super::chat::ChatState;
use super::{ErrorCode, Event, Failure, Hub, Nick, Notice, RoomName, RoomStatus, SessionId};
use super::{Stamps, sanitize};

impl Hub {
    /// Has the calls of jobs ([`Hub::beat`]) taken by `heartbeats`; the first one set
    /// stays.
    pub fn set_heartbeats(&self, heartbeats: Arc<dyn Heartbeats>) {
        let _ = self.heartbeats.set(heartbeats);
    }

    /// Has people's `/ack`, `/silence` and `/unsilence` of its alerts taken by `desk`.
    pub fn add_desk(&self, desk: Arc<dyn AlertDesk>) {
        self.desks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(desk);
    }

    /// Has the checks and heartbeats of the other nodes of a cluster reached through
    /// `peers`: listed by `/status`, called by name. The first one set stays.
    pub fn set_peers(&self, peers: Arc<dyn AlertPeers>) {
        if self.peers.set(peers.clone()).is_ok() {
            self.with_chat(|chat| chat.peers = Some(peers));
        }
    }

    /// What this node's checks and heartbeats report now, by room, for the other nodes.
    pub fn shared_status(&self) -> Vec<(RoomName, Vec<Notice>)> {
        let shared = self
            .shared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        shared
            .into_iter()
            .map(|(room, status)| (room, status.status()))
            .collect()
    }

    /// Registers `status` for the other nodes too, when it is of checks or heartbeats.
    pub(super) fn share_status(&self, room: &RoomName, status: &Arc<dyn RoomStatus>) {
        if status.shared() {
            self.shared
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((room.clone(), status.clone()));
        }
    }

    /// `notice`, of a check or heartbeat of this node, marked in a cluster with this
    /// node's name (`node`): clients tell apart two nodes' checks of one name by it. As
    /// it was on a node alone.
    pub fn of_this_node(&self, notice: Notice) -> Notice {
        match self.peers.get() {
            Some(peers) => notice.with("node", peers.name().to_string()),
            None => notice,
        }
    }

    /// A check or heartbeat of this node changed: the other nodes of a cluster are told
    /// soon. Nothing on a node alone.
    pub fn alerts_changed(&self) {
        if let Some(peers) = self.peers.get() {
            peers.changed();
        }
    }

    /// Takes a job's call to the heartbeat `name`: here when this node keeps it, and on
    /// every other live node that runs it (`--cluster`), whose answers go to `caller`.
    pub fn beat(&self, name: &str, beat: &Beat, caller: Caller) -> Took {
        let here = match self.heartbeats.get() {
            Some(heartbeats) => heartbeats
                .beat(name, beat)
                .map(|taken| self.took(taken))
                .map_err(|message| (ErrorCode::InvalidArgument, message)),
            None => Err((
                ErrorCode::InvalidArgument,
                format!("no heartbeat {name:?}: this server keeps none (--heartbeat NAME=PERIOD)"),
            )),
        };
        let Some(peers) = self.peers.get() else {
            return Took::Now(here.map(|(room, status)| (room, vec![status])));
        };
        let elsewhere = peers.runners(name, true);
        let here = match here {
            Ok(took) => Some(Ok(took)),
            Err(failure) if elsewhere.is_empty() => {
                return Took::Now(Err(nowhere(peers.as_ref(), failure)));
            }
            Err(_) => None,
        };
        self.send_call(name, here, elsewhere, PeerCall::Beat(beat.clone()), caller)
    }

    /// Session `id` acts on the alert `name` (`/ack`, `/silence`, `/unsilence`), answered
    /// as `reference`: allowed to the members of the room its alerts go to, and when that
    /// room has operators, to them alone. Done here when this node runs `name`, and by
    /// every other live node that does (`--cluster`).
    pub(super) fn alert_action(
        &self,
        id: SessionId,
        name: &str,
        action: &AlertAction,
        reference: Option<String>,
    ) -> Stamps {
        let desks = self.desks.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let desk = desks
            .iter()
            .find_map(|d| Some((d.clone(), d.room_of(name)?)));
        let peers = self.peers.get();
        let elsewhere = peers.map_or_else(Vec::new, |p| p.runners(name, false));
        if desk.is_none() && elsewhere.is_empty() {
            let failure = (
                ErrorCode::InvalidArgument,
                format!(
                    "no check or heartbeat named {:?}; /status in #alerts lists them",
                    sanitize(name)
                ),
            );
            let failure = match peers {
                Some(peers) => nowhere(peers.as_ref(), failure),
                None => failure,
            };
            return self.answer_call(id, Err(failure), reference);
        }
        // Whether the session may act in each room its alerts go to.
        let (here, elsewhere, refused, by) = self.with_chat(|chat| {
            let mut refused = None;
            let mut by = None;
            let mut may = |room: &RoomName| match chat.may_act(id, room) {
                Ok(nick) => {
                    by = Some(nick);
                    true
                }
                Err(failure) => {
                    refused.get_or_insert(failure);
                    false
                }
            };
            let here = desk.filter(|(_, room)| may(room));
            let elsewhere: Vec<(u16, RoomName)> = elsewhere
                .into_iter()
                .filter(|(_, room)| may(room))
                .collect();
            (here, elsewhere, refused, by)
        });
        let Some(by) = by else {
            let refused = refused.expect("refused where it may not act");
            return self.answer_call(id, Err(refused), reference);
        };
        let here = here.map(|(desk, _)| {
            desk.act(name, action, &by)
                .map(|taken| self.took(taken))
                .map_err(|message| (ErrorCode::InvalidArgument, message))
        });
        let call = PeerCall::Act {
            action: action.clone(),
            by,
        };
        let caller = Caller::Session {
            id,
            reference: reference.clone(),
        };
        match self.send_call(name, here, elsewhere, call, caller) {
            Took::Now(answer) => self.answer_call(id, answer, reference),
            Took::Sent(_) => 0..0,
        }
    }

    /// `here` (what this node did, if it runs `name`) answered at once when no other node
    /// runs it; else `call` sent to those that do, the answer to `caller` once they answered.
    fn send_call(
        &self,
        name: &str,
        here: Option<Result<(RoomName, Notice), Failure>>,
        elsewhere: Vec<(u16, RoomName)>,
        call: PeerCall,
        caller: Caller,
    ) -> Took {
        let mut gathered = Gathered::default();
        match here {
            Some(Ok(took)) => gathered.took(took),
            Some(Err(failure)) => gathered.failed(failure),
            None => {}
        }
        let (Some(peers), Some((_, room))) = (self.peers.get(), elsewhere.first()) else {
            return Took::Now(gathered.answer());
        };
        let room = room.clone();
        let nodes = elsewhere.into_iter().map(|(node, _)| node).collect();
        match peers.call(nodes, name, call, gathered, caller) {
            Ok(()) => Took::Sent(room),
            Err(gathered) => Took::Now(gathered.answer()),
        }
    }

    /// Another node asks this one to do `call` on its check or heartbeat `name`, for a
    /// session the asking node let do it: done as a call here is, and answered.
    pub fn take_call(&self, name: &str, call: &PeerCall) -> Result<(RoomName, Notice), Failure> {
        let done = match call {
            PeerCall::Beat(beat) => match self.heartbeats.get() {
                Some(heartbeats) => heartbeats.beat(name, beat),
                None => Err(format!("no heartbeat {name:?} on this node")),
            },
            PeerCall::Act { action, by } => {
                let desks = self.desks.lock().unwrap_or_else(|p| p.into_inner()).clone();
                match desks.iter().find(|d| d.room_of(name).is_some()) {
                    Some(desk) => desk.act(name, action, by),
                    None => Err(format!("no check or heartbeat named {name:?} on this node")),
                }
            }
        };
        done.map(|taken| self.took(taken))
            .map_err(|message| (ErrorCode::InvalidArgument, message))
    }

    /// What a call did here: its post posted, the other nodes told, its post and status
    /// marked with this node's name in a cluster.
    fn took(&self, taken: Answered) -> (RoomName, Notice) {
        if let Some(post) = taken.post {
            self.post_said(&taken.room, self.of_this_node(post));
        }
        self.alerts_changed();
        (taken.room, self.of_this_node(taken.status))
    }

    /// Posts what a call said; one the store cannot take now is logged, not lost unsaid.
    fn post_said(&self, room: &RoomName, post: Notice) {
        if let Err(e) = self.post(room, post.clone()) {
            tracing::warn!(%room, error = ?e, text = %post.text, "a call's post was not kept");
        }
    }

    /// Answers a call with the status of what it called, or the error.
    pub(super) fn answer_call(
        &self,
        id: SessionId,
        answered: CallAnswer,
        reference: Option<String>,
    ) -> Stamps {
        let answer = match answered {
            Ok((room, items)) => Event::Status { room, items },
            Err((code, message)) => Event::Error { code, message },
        };
        self.reply(id, answer, reference)
    }

    /// Answers whoever waits for a call the other nodes took.
    pub fn answer_caller(&self, caller: Caller, answer: CallAnswer) {
        match caller {
            Caller::Session { id, reference } => {
                self.answer_call(id, answer, reference);
            }
            Caller::Waiting(waiting) => {
                let _ = waiting.send(answer);
            }
            Caller::Nobody => {}
        }
    }
}

/// Why a call for `name` was not done, on a node of a cluster where neither it nor any
/// other live node it knows of runs `name`: `failure`, or that the others are out of reach.
fn nowhere(peers: &dyn AlertPeers, (code, message): Failure) -> Failure {
    if peers.reachable() {
        (code, format!("{message}; no other live node runs it"))
    } else {
        (
            ErrorCode::ClusterUnreachable,
            format!(
                "{message}; the other nodes are out of reach (Redis), so whether one runs it is not known"
            ),
        )
    }
}

impl ChatState {
    /// Session `id` as who may act on the alerts that go to `room`: a member, and an
    /// operator when the room has any.
    fn may_act(&self, id: SessionId, room: &RoomName) -> Result<Nick, Failure> {
        let nick = self.sessions.get(&id).map(|s| s.nick.clone());
        match (nick, self.rooms.get(room)) {
            (Some(nick), Some(r)) if r.members.contains_key(&id) => {
                if r.ops.is_empty() || r.is_op(id) {
                    Ok(nick)
                } else {
                    Err((
                        ErrorCode::NotOperator,
                        format!("only {room}'s operators may do that to its alerts"),
                    ))
                }
            }
            _ => Err((
                ErrorCode::NotInRoom,
                format!("join {room} to act on its alerts"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::hub::{MessageText, PostKind, Source};
    use crate::limits::Limits;

    /// A call sent to other nodes: to which, what, what was gathered here, and who waits.
    type Sent = (Vec<u16>, PeerCall, Gathered, Caller);

    /// Other nodes as a test sets them: who runs what, and the calls sent to them.
    struct Fake {
        runs: Vec<(u16, &'static str)>,
        reachable: bool,
        sent: Mutex<Vec<Sent>>,
    }

    impl AlertPeers for Fake {
        fn name(&self) -> &str {
            "n1"
        }

        fn reachable(&self) -> bool {
            self.reachable
        }

        fn status(&self, _: &RoomName) -> Vec<Notice> {
            Vec::new()
        }

        fn runners(&self, name: &str, _: bool) -> Vec<(u16, RoomName)> {
            let room = RoomName::parse("#alerts").unwrap();
            let runs = self.runs.iter().filter(|(_, n)| *n == name);
            runs.map(|(node, _)| (*node, room.clone())).collect()
        }

        fn call(
            &self,
            nodes: Vec<u16>,
            _: &str,
            call: PeerCall,
            gathered: Gathered,
            caller: Caller,
        ) -> Result<(), Gathered> {
            self.sent
                .lock()
                .unwrap()
                .push((nodes, call, gathered, caller));
            Ok(())
        }

        fn changed(&self) {}
    }

    fn status(node: &str) -> (RoomName, Notice) {
        let notice = Notice::new(
            Source::new("beat:backup").unwrap(),
            PostKind::Notice,
            MessageText::new("backup is up").unwrap(),
        )
        .with("node", node.to_string());
        (RoomName::parse("#alerts").unwrap(), notice)
    }

    /// A beat for a heartbeat only another node runs goes to it (to every node that runs
    /// it), and the caller hears their answers gathered; a name nobody runs is refused at
    /// once, and while the others are out of reach the refusal says so.
    #[tokio::test]
    async fn a_beat_goes_to_the_nodes_that_run_it_and_their_answers_are_gathered() {
        let hub = Hub::new(&Limits::default());
        let peers = Arc::new(Fake {
            runs: vec![(2, "backup"), (3, "backup")],
            reachable: true,
            sent: Mutex::default(),
        });
        hub.set_peers(peers.clone());
        let (waiting, answer) = tokio::sync::oneshot::channel();
        let took = hub.beat("backup", &Beat::Alive, Caller::Waiting(waiting));
        assert!(
            matches!(&took, Took::Sent(room) if room.as_str() == "#alerts"),
            "{took:?}"
        );
        let (nodes, call, mut gathered, caller) = peers.sent.lock().unwrap().remove(0);
        assert_eq!((nodes, call), (vec![2, 3], PeerCall::Beat(Beat::Alive)));
        // Node 3 no longer runs it; node 2 did it: the answer is node 2's status.
        gathered.failed((ErrorCode::InvalidArgument, "no heartbeat here".into()));
        gathered.took(status("n2"));
        hub.answer_caller(caller, gathered.answer());
        let (room, items) = answer.await.unwrap().unwrap();
        assert_eq!(room.as_str(), "#alerts");
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].fields, [("node".into(), "n2".into())]);

        let Took::Now(Err((code, message))) = hub.beat("nope", &Beat::Alive, Caller::Nobody) else {
            panic!("a beat nobody runs was taken");
        };
        assert_eq!(code, ErrorCode::InvalidArgument);
        assert!(
            message.ends_with("; no other live node runs it"),
            "{message}"
        );
        assert!(peers.sent.lock().unwrap().is_empty());

        let alone = Hub::new(&Limits::default());
        alone.set_peers(Arc::new(Fake {
            runs: Vec::new(),
            reachable: false,
            sent: Mutex::default(),
        }));
        let Took::Now(Err((code, _))) = alone.beat("backup", &Beat::Alive, Caller::Nobody) else {
            panic!("taken while the others are out of reach");
        };
        assert_eq!(code, ErrorCode::ClusterUnreachable);
    }

    /// Nodes that all failed answer the first reason; none answering is an error too.
    #[test]
    fn gathered_answers_prefer_what_was_done_then_the_first_reason() {
        let mut gathered = Gathered::default();
        gathered.failed((ErrorCode::InvalidArgument, "web is not down".into()));
        gathered.failed((ErrorCode::ClusterUnreachable, "no answer from n3".into()));
        assert_eq!(
            gathered.answer().unwrap_err(),
            (ErrorCode::InvalidArgument, "web is not down".into())
        );
        assert!(Gathered::default().answer().is_err());
    }
}
