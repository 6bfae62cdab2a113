//! The checks and heartbeats of every node as one server's: `/status` lists them all, and
//! a call for one another node runs (a job's beat, `/ack`, `/silence`, `/unsilence`) is
//! done by that node.
//!
//! Each node with checks or heartbeats reports their status ([`Wire::Alerts`]) every
//! [`CLUSTER_ALERTS_EVERY`] and soon after one changed; the others keep each live node's
//! last report, so `/status` answers at once from memory. Reports rather than asking the
//! others at each `/status`: the page asks for a room's status on every join (and again
//! while a check is not run yet), and a node slow to answer would hold every one of those;
//! a report costs each node one publication per interval however often people ask. Its
//! price: another node's "for 3m" is as of its last report (a change of state is reported
//! at once).
//!
//! A call is one publication to every node that runs the name ([`Wire::Call`]); each does
//! it as its own and answers ([`Wire::Answer`]); the caller hears one answer gathering
//! theirs (and this node's, when it runs the name too) once all answered, or at
//! [`CLUSTER_CALL_TIMEOUT`] with what came.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::wire::{self, AlertItem, CallWire, Wire};
use super::{Out, Shared};
use crate::hub::{
    AlertPeers, Caller, ErrorCode, Gathered, Hub, Notice, PeerCall, RoomName, sanitize,
};
use crate::limits::{
    CLUSTER_ALERTS_BATCH_BYTES, CLUSTER_ALERTS_EVERY, CLUSTER_ALERTS_GAP, CLUSTER_ALERTS_ITEMS,
    CLUSTER_CALL_TIMEOUT, CLUSTER_CALLS_WAITING,
};

/// What this node knows of the others' checks and heartbeats, and the calls it waits on.
#[derive(Default)]
pub(super) struct Alerts {
    nodes: HashMap<u16, NodeReport>,
    calls: HashMap<u64, CallWaiting>,
    /// The last call's number (`0` is a call nobody waits for).
    last_call: u64,
    /// The last report's number.
    last_report: u64,
    /// The last status of each check or heartbeat that left the report of the node that ran
    /// it (the node died, shut down or let its lease go), for the node taking it over: at
    /// most [`CLUSTER_ALERTS_ITEMS`].
    left: HashMap<String, Notice>,
}

/// One node's last report, and the one being heard (its publications come in order).
#[derive(Default)]
struct NodeReport {
    name: String,
    /// Its report named it with what is not a node name, logged once until a good one.
    bad_name: bool,
    items: Vec<(RoomName, Notice)>,
    hearing: Option<(u64, Vec<(RoomName, Notice)>)>,
}

/// A call sent to other nodes, waiting for their answers.
struct CallWaiting {
    nodes: Vec<u16>,
    gathered: Gathered,
    caller: Caller,
    deadline: Instant,
}

/// The other nodes, as the hub's alert calls reach them.
pub(super) struct Peers(pub(super) Arc<Shared>);

impl AlertPeers for Peers {
    fn name(&self) -> &str {
        &self.0.name
    }

    fn reachable(&self) -> bool {
        self.0.reachable.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn status(&self, room: &RoomName) -> Vec<Notice> {
        if !self.reachable() {
            return Vec::new();
        }
        let live = self.0.live_nodes();
        let alerts = self.0.alerts.lock().unwrap();
        let mut nodes: Vec<(&u16, &NodeReport)> = alerts
            .nodes
            .iter()
            .filter(|(node, _)| live.contains(node))
            .collect();
        nodes.sort_by_key(|(node, _)| **node);
        nodes
            .into_iter()
            .flat_map(|(_, report)| report.items.iter())
            .filter(|(r, _)| r == room)
            .map(|(_, notice)| notice.clone())
            .collect()
    }

    fn runners(&self, name: &str, heartbeat: bool) -> Vec<(u16, RoomName)> {
        if !self.reachable() {
            return Vec::new();
        }
        let live = self.0.live_nodes();
        let alerts = self.0.alerts.lock().unwrap();
        let mut runners: Vec<(u16, RoomName)> = alerts
            .nodes
            .iter()
            .filter(|(node, _)| live.contains(node))
            .filter_map(|(node, report)| {
                let (room, _) = report
                    .items
                    .iter()
                    .find(|(_, n)| names(n, name, heartbeat))?;
                Some((*node, room.clone()))
            })
            .collect();
        runners.sort_by_key(|(node, _)| *node);
        runners
    }

    fn call(
        &self,
        nodes: Vec<u16>,
        name: &str,
        call: PeerCall,
        mut gathered: Gathered,
        caller: Caller,
    ) -> Result<(), Gathered> {
        let shared = &self.0;
        let id = {
            let mut alerts = shared.alerts.lock().unwrap();
            if matches!(caller, Caller::Nobody) {
                0
            } else if alerts.calls.len() >= CLUSTER_CALLS_WAITING {
                gathered.failed((
                    ErrorCode::ClusterUnreachable,
                    format!(
                        "{CLUSTER_CALLS_WAITING} calls already wait for other nodes' answers; try again in a moment"
                    ),
                ));
                return Err(gathered);
            } else {
                alerts.last_call += 1;
                let id = alerts.last_call;
                alerts.calls.insert(
                    id,
                    CallWaiting {
                        nodes: nodes.clone(),
                        gathered,
                        caller,
                        deadline: Instant::now() + CLUSTER_CALL_TIMEOUT,
                    },
                );
                id
            }
        };
        let sent = shared.send(Out::Publish(Wire::Call {
            node: shared.node.number(),
            to: nodes,
            call: id,
            name: name.to_string(),
            asked: wire::call_wire(&call),
        }));
        if !sent && id != 0 {
            // The queue to Redis is full: the call was not sent; answered at once.
            let waiting = shared.alerts.lock().unwrap().calls.remove(&id);
            if let Some(mut waiting) = waiting {
                waiting.gathered.failed((
                    ErrorCode::ClusterUnreachable,
                    "the queue to the other nodes is full; try again in a moment".into(),
                ));
                return Err(waiting.gathered);
            }
        }
        shared.called.notify_one();
        Ok(())
    }

    fn changed(&self) {
        self.0.alerts_changed.notify_one();
    }

    fn taken_over(&self, name: &str) -> Option<Notice> {
        let mut alerts = self.0.alerts.lock().unwrap();
        if let Some(last) = alerts.left.remove(name) {
            return Some(last);
        }
        // A node that died may be taken for dead only after its lease expired: its last
        // report is then still here.
        alerts
            .nodes
            .values()
            .flat_map(|report| report.items.iter())
            .map(|(_, notice)| notice)
            .find(|notice| name_of(notice) == Some(name))
            .cloned()
    }

    fn holds(&self, name: &str) -> bool {
        // Out of reach of Redis, whether another node runs it cannot be known: run here, as
        // on a node alone, rather than let nobody run it.
        self.0.leases.lock().unwrap().holds(name) || !self.reachable()
    }
}

/// Whether `notice` is the status of the check or heartbeat `name` (a heartbeat only, if
/// `heartbeat`).
fn names(notice: &Notice, name: &str, heartbeat: bool) -> bool {
    let keys: &[&str] = if heartbeat {
        &["heartbeat"]
    } else {
        &["check", "heartbeat"]
    };
    notice.fields.iter().any(|(key, value)| {
        keys.contains(&key.as_ref())
            && matches!(value, crate::hub::Field::Text(text) if text == name)
    })
}

/// Reports this node's checks and heartbeats every [`CLUSTER_ALERTS_EVERY`], and soon
/// after one changed (at most once a [`CLUSTER_ALERTS_GAP`]); answers the calls whose
/// nodes did not answer in time. Until `shutdown`.
pub(super) async fn run(shared: Arc<Shared>, hub: Hub, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(CLUSTER_ALERTS_EVERY);
    loop {
        let next = shared.alerts.lock().unwrap().next_deadline();
        let expiry = async {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => tell(&shared, &hub),
            _ = shared.alerts_changed.notified() => {
                tell(&shared, &hub);
                // Changes in a burst (a flood of beats) are told together, after the gap.
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(CLUSTER_ALERTS_GAP) => {}
                }
            }
            _ = shared.called.notified() => {}
            _ = expiry => expire(&shared, &hub),
        }
    }
}

/// Publishes this node's checks and heartbeats as they are now, in as many publications
/// as [`CLUSTER_ALERTS_BATCH_BYTES`] needs; nothing from a node that has none.
fn tell(shared: &Shared, hub: &Hub) {
    if !shared.reachable.load(std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    let rooms = hub.shared_status();
    if rooms.is_empty() {
        return;
    }
    let items: Vec<AlertItem> = rooms
        .iter()
        .flat_map(|(room, notices)| notices.iter().map(|n| wire::alert_item(room, n)))
        .collect();
    let report = {
        let mut alerts = shared.alerts.lock().unwrap();
        alerts.last_report += 1;
        alerts.last_report
    };
    let batches = wire::batches(items, CLUSTER_ALERTS_BATCH_BYTES);
    let count = batches.len();
    for (n, items) in batches.into_iter().enumerate() {
        shared.send(Out::Publish(Wire::Alerts {
            node: shared.node.number(),
            name: shared.name.clone(),
            report,
            items,
            last: n + 1 == count,
        }));
    }
}

/// Answers the calls whose time is up with what came, and an error for the nodes that did
/// not answer.
fn expire(shared: &Shared, hub: &Hub) {
    let now = Instant::now();
    let expired: Vec<CallWaiting> = {
        let mut alerts = shared.alerts.lock().unwrap();
        let ids: Vec<u64> = alerts
            .calls
            .iter()
            .filter(|(_, w)| w.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        ids.iter()
            .filter_map(|id| alerts.calls.remove(id))
            .collect()
    };
    let names: Vec<(u16, String)> = {
        let alerts = shared.alerts.lock().unwrap();
        alerts
            .nodes
            .iter()
            .map(|(node, report)| (*node, report.name.clone()))
            .collect()
    };
    for mut waiting in expired {
        let nodes: Vec<String> = waiting
            .nodes
            .iter()
            .map(|n| match names.iter().find(|(node, _)| node == n) {
                Some((_, name)) => name.clone(),
                None => format!("node {n}"),
            })
            .collect();
        waiting.gathered.failed((
            ErrorCode::ClusterUnreachable,
            format!(
                "no answer from {} within {}",
                nodes.join(", "),
                crate::feeds::human(CLUSTER_CALL_TIMEOUT)
            ),
        ));
        hub.answer_caller(waiting.caller, waiting.gathered.answer());
    }
}

impl Alerts {
    fn next_deadline(&self) -> Option<Instant> {
        self.calls.values().map(|w| w.deadline).min()
    }

    /// Forgets the reports of the nodes not in `live`, but for the last status of each of
    /// their checks and heartbeats.
    pub(super) fn keep_only(&mut self, live: &[u16]) {
        let gone: Vec<u16> = self
            .nodes
            .keys()
            .filter(|node| !live.contains(node))
            .copied()
            .collect();
        for node in gone {
            if let Some(report) = self.nodes.remove(&node) {
                self.leave(report.items, &[]);
            }
        }
    }

    /// Keeps the last status of each of `items` no longer in `now`.
    fn leave(&mut self, items: Vec<(RoomName, Notice)>, now: &[(RoomName, Notice)]) {
        for (_, notice) in items {
            let Some(name) = name_of(&notice) else {
                continue;
            };
            if now.iter().any(|(_, n)| name_of(n) == Some(name)) {
                continue;
            }
            if self.left.len() >= CLUSTER_ALERTS_ITEMS && !self.left.contains_key(name) {
                continue;
            }
            self.left.insert(name.to_string(), notice);
        }
    }
}

/// A part of `node`'s report `report` heard: the report replaces the one before once its
/// last part came. Bad items are logged and skipped; past [`CLUSTER_ALERTS_ITEMS`] a
/// node's items are not kept.
pub(super) fn heard_report(
    shared: &Shared,
    node: u16,
    name: &str,
    report: u64,
    items: Vec<AlertItem>,
    last: bool,
) {
    let mut alerts = shared.alerts.lock().unwrap();
    let known = alerts.nodes.entry(node).or_default();
    // Shown to users as `--node-name` is, so held to its rule: whatever else Redis holds
    // (control characters, a name as long as a payload) is never shown.
    let name = match crate::protocol::irc::server_name(name) {
        Ok(name) => {
            known.bad_name = false;
            name
        }
        Err(_) => {
            if !std::mem::replace(&mut known.bad_name, true) {
                tracing::warn!(
                    node,
                    bytes = name.len(),
                    "a node's report names it with what is not a node name; its number is shown instead"
                );
            }
            format!("node {node}")
        }
    };
    let hearing = match &mut known.hearing {
        Some((r, items)) if *r == report => items,
        other => &mut other.insert((report, Vec::new())).1,
    };
    for item in items {
        if hearing.len() >= CLUSTER_ALERTS_ITEMS {
            tracing::warn!(
                node,
                "a node reports more checks and heartbeats than are kept; the rest skipped"
            );
            break;
        }
        match wire::read_item(item) {
            Ok((room, notice)) => hearing.push((room, notice.with("node", name.clone()))),
            Err(e) => {
                tracing::warn!(node, error = %e, "skipped a bad check or heartbeat from Redis")
            }
        }
    }
    if last && let Some((_, items)) = known.hearing.take() {
        let before = std::mem::replace(&mut known.items, items);
        known.name = name;
        let now = known.items.clone();
        for (_, notice) in &now {
            if let Some(name) = name_of(notice) {
                alerts.left.remove(name);
            }
        }
        alerts.leave(before, &now);
    }
}

/// The name of the check or heartbeat whose status `notice` is.
fn name_of(notice: &Notice) -> Option<&str> {
    notice.fields.iter().find_map(|(key, value)| match value {
        crate::hub::Field::Text(text) if key == "check" || key == "heartbeat" => {
            Some(text.as_str())
        }
        _ => None,
    })
}

/// Another node asks this one to take a call (`asked`) for `name`: done here as this node's
/// own, and answered unless nobody waits (`call` 0).
pub(super) fn heard_call(
    shared: &Shared,
    hub: &Hub,
    from: u16,
    call: u64,
    name: &str,
    asked: CallWire,
) {
    let taken = match wire::peer_call(asked) {
        Ok(asked) => hub.take_call(name, &asked),
        Err(e) => {
            tracing::warn!(node = from, error = %e, "a bad call from Redis");
            Err((ErrorCode::InvalidArgument, format!("a bad call: {e}")))
        }
    };
    if call == 0 {
        return;
    }
    let (status, error) = match taken {
        Ok((room, notice)) => (Some(wire::alert_item(&room, &notice)), None),
        Err((_, message)) => (None, Some(message)),
    };
    shared.send(Out::Publish(Wire::Answer {
        node: shared.node.number(),
        to: from,
        call,
        status,
        error,
    }));
}

/// `node` answered call `call` of this node: once every node asked answered, the caller
/// is.
pub(super) fn heard_answer(
    shared: &Shared,
    hub: &Hub,
    node: u16,
    call: u64,
    status: Option<AlertItem>,
    error: Option<String>,
) -> Result<(), String> {
    let done = {
        let mut alerts = shared.alerts.lock().unwrap();
        let Some(waiting) = alerts.calls.get_mut(&call) else {
            // Answered after its time was up, or not a call of this node's run.
            return Ok(());
        };
        if !waiting.nodes.contains(&node) {
            return Err(format!("node {node} answered call {call}, not asked"));
        }
        waiting.nodes.retain(|n| *n != node);
        match (status, error) {
            (Some(item), _) => match wire::read_item(item) {
                Ok(answer) => waiting.gathered.took(answer),
                Err(e) => waiting
                    .gathered
                    .failed((ErrorCode::InvalidArgument, format!("a bad answer: {e}"))),
            },
            (None, Some(error)) => waiting
                .gathered
                .failed((ErrorCode::InvalidArgument, sanitize(&error))),
            (None, None) => return Err(format!("node {node}'s answer says nothing")),
        }
        if waiting.nodes.is_empty() {
            alerts.calls.remove(&call)
        } else {
            None
        }
    };
    if let Some(waiting) = done {
        hub.answer_caller(waiting.caller, waiting.gathered.answer());
    }
    Ok(())
}
