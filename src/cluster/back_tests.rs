//! A node's return, at the instant one of its sessions changes: the change is told to
//! the others once, in the round told on return or live, never in both; and what its
//! sessions did while Redis was out of reach is told then only.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::mpsc;

use super::wire::Wire;
use super::{ClusterBus, ClusterDirectory, Out, Shared, link};
use crate::fanout::recorder::Recorder;
use crate::hub::{
    Bus, BusFull, Command, Edges, Event, Hub, LeaveReason, Nick, NodeId, Publication, RoomChange,
    RoomName, SessionId,
};
use crate::limits::Limits;

/// The cluster's bus, which brings the node back at the instant the hub publishes a join
/// into `#ops`: after the join was recorded for the others (the directory is told
/// first), before it is published, under the hub's lock.
struct BackMidJoin {
    bus: ClusterBus,
    hub: OnceLock<Hub>,
    returned: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Bus for BackMidJoin {
    fn publish(&self, publication: Publication) -> Option<Publication> {
        if let Event::Joined { room, .. } = &publication.event
            && room.as_str() == "#ops"
        {
            let (shared, hub) = (self.bus.0.clone(), self.hub.get().unwrap().clone());
            let returning = std::thread::spawn(move || link::back(&shared, &hub));
            // Time for the return to happen now if it could: it cannot, until the hub
            // lets go of its lock (whatever the wait, the outcome is the same).
            std::thread::sleep(Duration::from_millis(100));
            *self.returned.lock().unwrap() = Some(returning);
        }
        self.bus.publish(publication)
    }

    fn numbers_messages(&self) -> bool {
        self.bus.numbers_messages()
    }

    fn publish_numbered(&self, publication: Publication) -> Result<Option<Publication>, BusFull> {
        self.bus.publish_numbered(publication)
    }

    fn share_room(&self, room: &RoomName, changes: Vec<RoomChange>) {
        self.bus.share_room(room, changes)
    }

    fn found(&self, room: &RoomName, founder: SessionId, account: Option<Nick>) {
        self.bus.found(room, founder, account)
    }

    fn ended(&self, room: &RoomName) {
        self.bus.ended(room)
    }
}

/// Node 1's shared state, and the queue of what it would send Redis.
fn node_one() -> (NodeId, Arc<Shared>, mpsc::Receiver<Out>) {
    let (outbox, queue) = mpsc::channel(1024);
    let node = NodeId::new(1).unwrap();
    let shared = Shared::new(node, "0123456789abcdef".into(), "node-1".into(), outbox);
    (node, Arc::new(shared), queue)
}

/// Everything queued for Redis so far.
fn queued(queue: &mut mpsc::Receiver<Out>) -> Vec<Out> {
    std::iter::from_fn(|| queue.try_recv().ok()).collect()
}

/// The live joins into `room` among `outs`.
fn live_joins(outs: &[Out], room: &str) -> usize {
    outs.iter()
        .filter(|out| matches!(out, Out::Publish(Wire::Joined { room: r, .. }) if r == room))
        .count()
}

#[test]
fn a_join_as_the_node_comes_back_is_told_in_its_round_or_live_not_both() {
    let (node, shared, mut queue) = node_one();
    let bus = Arc::new(BackMidJoin {
        bus: ClusterBus(shared.clone()),
        hub: OnceLock::new(),
        returned: Default::default(),
    });
    let limits = Limits::default();
    let edges = Edges {
        node,
        bus: bus.clone(),
        directory: Arc::new(ClusterDirectory(shared.clone())),
        ..Edges::alone(&limits)
    };
    let hub = Hub::with_edges(&limits, edges);
    bus.hub.set(hub.clone()).ok().unwrap();
    // Redis out of reach (as a node is until it has told the others who it is).
    let ana = hub.register(Arc::new(Recorder::default()), None).unwrap();
    queued(&mut queue);

    hub.apply(ana, Command::Join(RoomName::parse("#ops").unwrap()).into());
    let returned = bus
        .returned
        .lock()
        .unwrap()
        .take()
        .expect("the node came back");
    returned.join().unwrap();
    let outs = queued(&mut queue);
    let rounds: Vec<&Vec<super::wire::SessionState>> = outs
        .iter()
        .filter_map(|out| match out {
            Out::Round { sessions, .. } => Some(sessions),
            _ => None,
        })
        .collect();
    assert_eq!(rounds.len(), 1, "one round told on return");
    let in_round = rounds[0]
        .iter()
        .any(|s| s.session == ana.bits() && s.rooms.iter().any(|r| r == "#ops"));
    // The join was recorded before the return (the round has it), and so not published
    // live: the others announce it once, from the round.
    assert!(in_round, "the round tells ana in #ops");
    assert_eq!(
        live_joins(&outs, "#ops"),
        0,
        "and the join is not published live too"
    );

    // Once back, a join is published live, and its presence told as a change.
    hub.apply(ana, Command::Join(RoomName::parse("#dev").unwrap()).into());
    let outs = queued(&mut queue);
    assert_eq!(live_joins(&outs, "#dev"), 1);
    let changed = outs.iter().any(|out| {
        matches!(out, Out::Publish(Wire::Present { session, again: false, .. })
            if session.rooms.iter().any(|r| r == "#dev"))
    });
    assert!(changed, "the join's presence is a change, not told anew");
    assert!(!outs.iter().any(|out| matches!(out, Out::Round { .. })));
}

/// Whether `out` tells the others of session `id` as it changed or is now: a
/// [`Wire::Present`] or [`Wire::Absent`] of it, or a round naming it.
fn tells(out: &Out, id: SessionId) -> bool {
    match out {
        Out::Publish(Wire::Present { session, .. }) => session.session == id.bits(),
        Out::Publish(Wire::Absent { session, .. }) => *session == id.bits(),
        Out::Round { sessions, .. } => sessions.iter().any(|s| s.session == id.bits()),
        _ => false,
    }
}

/// A user who quits while Redis is out of reach: nothing of it is queued then (what
/// would reach Redis only once it is back, its quit told as a leave of each room), and
/// on return it is told gone, once, and in no round.
#[test]
fn a_quit_while_out_of_reach_is_told_on_return_as_gone_and_nothing_before() {
    let (node, shared, mut queue) = node_one();
    let limits = Limits::default();
    let edges = Edges {
        node,
        bus: Arc::new(ClusterBus(shared.clone())),
        directory: Arc::new(ClusterDirectory(shared.clone())),
        ..Edges::alone(&limits)
    };
    let hub = Hub::with_edges(&limits, edges);
    link::back(&shared, &hub);
    let fay = hub.register(Arc::new(Recorder::default()), None).unwrap();
    hub.apply(fay, Command::Join(RoomName::parse("#ops").unwrap()).into());
    let live = queued(&mut queue);
    assert!(
        live.iter()
            .any(|out| matches!(out, Out::Publish(Wire::Present { again: false, .. }))),
        "told as it changes while Redis is reachable"
    );

    shared
        .reachable
        .store(false, std::sync::atomic::Ordering::Relaxed);
    hub.disconnect(fay, LeaveReason::Quit(None));
    let meanwhile = queued(&mut queue);
    assert!(
        !meanwhile.iter().any(|out| tells(out, fay)),
        "nothing of fay queued while Redis is out of reach"
    );

    link::back(&shared, &hub);
    let told: Vec<Out> = queued(&mut queue)
        .into_iter()
        .filter(|out| tells(out, fay))
        .collect();
    assert_eq!(told.len(), 1, "told once on return");
    assert!(
        matches!(told[0], Out::Publish(Wire::Absent { again: true, .. })),
        "as gone"
    );
}
