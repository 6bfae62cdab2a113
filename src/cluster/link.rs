//! The node's two tasks: one sends what the hub publishes to Redis in pipelines; the other
//! listens to the cluster's channel, keeps the node alive in Redis, watches that its own
//! heartbeat comes back (the probe of a subscription that looks alive but delivers
//! nothing), and rebuilds everything after Redis comes back.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use futures_util::StreamExt;
use redis::aio::{ConnectionManager, PubSubStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::roster::Remote;
use super::wire::{self, Wire};
use super::{Cluster, Out, PREFIX, Shared, backoff};
use crate::hub::{Event, Hub, LeaveReason, Nick, Publication, RoomName, Said, SessionId};
use crate::limits::{
    CLUSTER_BATCH, CLUSTER_HEARTBEAT, CLUSTER_NODE_TIMEOUT, CLUSTER_PROBE_TIMEOUT,
};

/// Numbers a message in its room and publishes it, in one step so the numbers are in the
/// order everyone hears. The number is at least the one the node proposed, so a room's
/// numbers never go back, even after Redis lost them.
const SAID: &str = "local s = redis.call('INCR', KEYS[1])
local floor = tonumber(ARGV[1])
if s <= floor then s = floor + 1; redis.call('SET', KEYS[1], s) end
redis.call('PUBLISH', KEYS[2], s .. '\\n' .. ARGV[2])
return s";

/// Takes a nick unless a live node holds it (its key still names the run that claimed it).
const CLAIM: &str = "local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[1] then
  local n, run = string.match(v, '^(%d+):(%w+):%d+$')
  if n and redis.call('GET', ARGV[2] .. 'node:' .. n) == run then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1])
return 1";

/// Gives a nick up, if this session holds it.
const RELEASE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1";

/// Keeps the node's key alive, unless another run took its number meanwhile.
const REFRESH: &str = "local v = redis.call('GET', KEYS[1])
if v == false or v == ARGV[1] then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]); return 1 end
return 0";

fn channel() -> String {
    format!("{PREFIX}bus")
}

fn nick_key(nick: &Nick) -> String {
    format!("{PREFIX}nick:{}", nick.key())
}

fn claim_value(shared: &Shared, id: SessionId) -> String {
    format!("{}:{}:{}", shared.node.number(), shared.run, id.bits())
}

pub(super) async fn run(cluster: Cluster, hub: Hub, shutdown: CancellationToken) {
    let shared = cluster.shared;
    let sender = tokio::spawn(send(
        shared.clone(),
        cluster.redis.clone(),
        hub.clone(),
        cluster.queue,
    ));
    let first = cluster.subscription;
    listen(
        &shared,
        cluster.redis.clone(),
        &cluster.client,
        first,
        &hub,
        &shutdown,
    )
    .await;
    sender.abort();
    // Best effort: the others would find out within the node timeout anyway.
    let (mut redis, name) = (cluster.redis, cluster.name);
    let mut goodbye = redis::pipe();
    goodbye
        .cmd("PUBLISH")
        .arg(channel())
        .arg(
            Wire::Gone {
                node: shared.node.number(),
            }
            .payload(0),
        )
        .ignore()
        .cmd("DEL")
        .arg(shared.node_key())
        .ignore();
    let sent = tokio::time::timeout(CLUSTER_HEARTBEAT, goodbye.query_async::<()>(&mut redis));
    if !matches!(sent.await, Ok(Ok(()))) {
        tracing::warn!(%name, "could not tell the cluster this node is leaving");
    }
}

/// Sends what waits, in pipelines of up to [`CLUSTER_BATCH`].
async fn send(
    shared: Arc<Shared>,
    mut redis: ConnectionManager,
    hub: Hub,
    mut queue: mpsc::Receiver<Out>,
) {
    let mut batch = Vec::with_capacity(CLUSTER_BATCH);
    while queue.recv_many(&mut batch, CLUSTER_BATCH).await > 0 {
        let mut pipe = redis::pipe();
        let mut claims = Vec::new();
        for out in &batch {
            add(&shared, &mut pipe, out, &mut claims);
        }
        match pipe.query_async::<Vec<i64>>(&mut redis).await {
            Ok(won) => {
                for ((nick, id), won) in claims.into_iter().zip(won) {
                    if won == 0 {
                        hub.nick_lost(id, &nick);
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot send to Redis");
                unreachable(&shared, &hub);
                // What was said is heard here at least; presence is told again on return.
                for out in batch.drain(..) {
                    if let Out::Said(mut publication) = out {
                        if let Event::Message(said) = &mut publication.event {
                            said.seq = 0;
                        }
                        hub.receive(publication);
                    }
                }
            }
        }
        batch.clear();
    }
}

/// Adds `out` to `pipe`; a nick claim, whose answer is read, is added to `claims`.
fn add(
    shared: &Shared,
    pipe: &mut redis::Pipeline,
    out: &Out,
    claims: &mut Vec<(Nick, SessionId)>,
) {
    match out {
        Out::Said(publication) => {
            let (Some(wire), Event::Message(said)) =
                (Wire::of(shared.node, publication), &publication.event)
            else {
                return;
            };
            let json = serde_json::to_string(&wire).expect("plain data serializes");
            pipe.cmd("EVAL")
                .arg(SAID)
                .arg(2)
                .arg(format!("{PREFIX}seq:{}", said.room.key()))
                .arg(channel())
                .arg(said.seq.saturating_sub(1))
                .arg(json)
                .ignore();
        }
        Out::Publish(wire) => {
            pipe.cmd("PUBLISH")
                .arg(channel())
                .arg(wire.payload(0))
                .ignore();
        }
        Out::Claim(nick, id) => {
            pipe.cmd("EVAL")
                .arg(CLAIM)
                .arg(1)
                .arg(nick_key(nick))
                .arg(claim_value(shared, *id))
                .arg(PREFIX);
            claims.push((nick.clone(), *id));
        }
        Out::Release(nick, id) => {
            pipe.cmd("EVAL")
                .arg(RELEASE)
                .arg(1)
                .arg(nick_key(nick))
                .arg(claim_value(shared, *id))
                .ignore();
        }
    }
}

/// The other nodes are out of reach: the sessions here are told, once.
fn unreachable(shared: &Shared, hub: &Hub) {
    if shared.reachable.swap(false, Ordering::Relaxed) {
        tracing::warn!("cross-node delivery interrupted");
        hub.tell_all(Event::Cluster { reachable: false });
    }
}

/// Subscribes, listens, and subscribes again whenever the subscription fails, until
/// `shutdown`.
async fn listen(
    shared: &Arc<Shared>,
    mut redis: ConnectionManager,
    client: &redis::Client,
    first: PubSubStream,
    hub: &Hub,
    shutdown: &CancellationToken,
) {
    let mut failures = 0;
    let mut first = Some(first);
    while !shutdown.is_cancelled() {
        let subscribed = match first.take() {
            Some(stream) => Ok(stream),
            None => subscribe(client).await,
        };
        match subscribed {
            Ok(stream) => {
                failures = 0;
                let why = hear(shared, &mut redis, hub, stream, shutdown).await;
                if shutdown.is_cancelled() {
                    return;
                }
                tracing::warn!(why, "subscription to the cluster lost; subscribing again");
                unreachable(shared, hub);
            }
            Err(e) => {
                failures += 1;
                tracing::warn!(error = %e, "cannot subscribe to the cluster");
                unreachable(shared, hub);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff(failures)) => {}
            _ = shutdown.cancelled() => return,
        }
    }
}

pub(super) async fn subscribe(client: &redis::Client) -> redis::RedisResult<PubSubStream> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channel()).await?;
    Ok(pubsub.into_on_message())
}

/// Hears the channel until the subscription ends or its probe fails; returns why.
async fn hear(
    shared: &Arc<Shared>,
    redis: &mut ConnectionManager,
    hub: &Hub,
    mut stream: PubSubStream,
    shutdown: &CancellationToken,
) -> &'static str {
    let mut beat = tokio::time::interval(CLUSTER_HEARTBEAT);
    let mut heard_own = Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return "shutdown",
            msg = stream.next() => {
                let Some(msg) = msg else {
                    return "the subscription ended";
                };
                match Wire::parse(msg.get_payload_bytes()) {
                    Ok((_, Wire::Beat { node, .. })) if node == shared.node.number() => {
                        heard_own = Instant::now();
                    }
                    Ok((seq, wire)) => {
                        if let Err(e) = heard(shared, hub, seq, wire) {
                            tracing::warn!(error = %e, "skipped a bad publication from Redis");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "skipped a bad publication from Redis"),
                }
            }
            _ = beat.tick() => {
                if heard_own.elapsed() > CLUSTER_PROBE_TIMEOUT {
                    return "this node's heartbeat did not come back";
                }
                match alive(shared, redis).await {
                    Ok(()) if !shared.reachable.load(Ordering::Relaxed) => {
                        rejoin(shared);
                        tracing::info!("cross-node delivery restored");
                        hub.tell_all(Event::Cluster { reachable: true });
                    }
                    Ok(()) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot reach Redis");
                        unreachable(shared, hub);
                    }
                }
                let deadline = Instant::now().checked_sub(CLUSTER_NODE_TIMEOUT);
                if let Some(deadline) = deadline {
                    let gone = shared.roster.lock().unwrap().silent_since(deadline);
                    leave(hub, gone);
                }
            }
        }
    }
}

/// Refreshes the node's key and says it is alive.
async fn alive(shared: &Shared, redis: &mut ConnectionManager) -> redis::RedisResult<()> {
    let run = &shared.run;
    let beat = Wire::Beat {
        node: shared.node.number(),
        run: run.clone(),
    };
    let (kept,): (i64,) = redis::pipe()
        .cmd("EVAL")
        .arg(REFRESH)
        .arg(1)
        .arg(shared.node_key())
        .arg(run)
        .arg(CLUSTER_NODE_TIMEOUT.as_millis() as u64)
        .cmd("PUBLISH")
        .arg(channel())
        .arg(beat.payload(0))
        .ignore()
        .query_async(redis)
        .await?;
    if kept == 0 {
        tracing::error!(
            node = shared.node.number(),
            "another node took this node's number while Redis was out of reach"
        );
    }
    Ok(())
}

/// Back in touch: the others are asked who they have, and told who is here (nicks
/// claimed again: one taken meanwhile elsewhere is lost here).
pub(super) fn rejoin(shared: &Shared) {
    shared.roster.lock().unwrap().pardon(Instant::now());
    shared.send(Out::Publish(Wire::Hello {
        node: shared.node.number(),
        run: shared.run.clone(),
    }));
    let locals: Vec<(SessionId, Nick)> = {
        let local = shared.local.lock().unwrap();
        local.iter().map(|(id, l)| (*id, l.nick.clone())).collect()
    };
    for (id, nick) in locals {
        shared.send(Out::Claim(nick, id));
        shared.send_presence(id);
    }
    shared.reachable.store(true, Ordering::Relaxed);
}

/// Sessions of other nodes are gone: they leave their rooms here.
fn leave(hub: &Hub, gone: Vec<Remote>) {
    for remote in gone {
        for room in remote.rooms {
            let left = Event::Left {
                room: room.clone(),
                nick: remote.nick.clone(),
                you: false,
                reason: LeaveReason::ConnectionLost,
            };
            hub.receive(Publication {
                room,
                event: left,
                except: None,
            });
        }
    }
}

/// `node` was heard from, in `run`: if that is a new run, its earlier one's users are gone.
fn heard_node(shared: &Shared, hub: &Hub, node: u16, run: &str) {
    let gone = shared
        .roster
        .lock()
        .unwrap()
        .heard(node, run, Instant::now());
    leave(hub, gone);
}

/// What another node (or this one, for its messages) published.
fn heard(shared: &Shared, hub: &Hub, seq: u64, wire: Wire) -> Result<(), String> {
    let own = wire.node() == shared.node.number();
    if own && !matches!(wire, Wire::Said { .. }) {
        return Ok(());
    }
    match wire {
        Wire::Said {
            room,
            id,
            ts,
            from,
            text,
            action,
            notice,
            by,
            ..
        } => {
            let room = wire::room(&room)?;
            let said = Said {
                id,
                seq,
                ts,
                room: room.clone(),
                from: wire::nick(&from)?,
                text: wire::text(&text)?,
                action,
                notice,
                // Accounts and client tags do not cross nodes yet (docs/cluster.md).
                account: None,
                tags: None,
            };
            let except = own.then(|| SessionId::from_bits(by));
            hub.receive(Publication {
                room,
                event: Event::Message(said),
                except,
            });
        }
        Wire::Joined {
            room, nick, count, ..
        } => {
            let room = wire::room(&room)?;
            let joined = Event::Joined {
                room: room.clone(),
                nick: wire::nick(&nick)?,
                you: false,
                members: Vec::new(),
                count,
                account: None,
            };
            hub.receive(Publication {
                room,
                event: joined,
                except: None,
            });
        }
        Wire::Left {
            room,
            nick,
            reason,
            message,
            ..
        } => {
            let room = wire::room(&room)?;
            let left = Event::Left {
                room: room.clone(),
                nick: wire::nick(&nick)?,
                you: false,
                reason: wire::reason(&reason, message.as_deref())?,
            };
            hub.receive(Publication {
                room,
                event: left,
                except: None,
            });
        }
        Wire::Private {
            to,
            id,
            ts,
            from,
            nick,
            text,
            notice,
            ..
        } => {
            let to = SessionId::from_bits(to);
            if to.node() == shared.node {
                let private = Event::Private {
                    id,
                    ts,
                    from: wire::nick(&from)?,
                    to: wire::nick(&nick)?,
                    text: wire::text(&text)?,
                    notice,
                    account: None,
                    tags: None,
                };
                hub.reply(to, private, None);
            }
        }
        Wire::Present {
            node,
            session,
            nick,
            rooms,
        } => {
            let id = SessionId::from_bits(session);
            if id.node().number() != node {
                return Err(format!("session {session} is not of node {node}"));
            }
            let nick = wire::nick(&nick)?;
            let rooms = rooms
                .iter()
                .map(|r| wire::room(r))
                .collect::<Result<Vec<RoomName>, String>>()?;
            let remote = Remote {
                node,
                nick: nick.clone(),
                rooms: rooms.clone(),
            };
            let renamed = shared.roster.lock().unwrap().present(id, remote);
            if let Some(old) = renamed {
                hub.renamed_elsewhere(&old, &nick, &rooms);
            }
        }
        Wire::Absent { session, .. } => {
            shared
                .roster
                .lock()
                .unwrap()
                .remove(SessionId::from_bits(session));
        }
        Wire::Beat { node, run } => heard_node(shared, hub, node, &run),
        Wire::Hello { node, run } => {
            heard_node(shared, hub, node, &run);
            let ids: Vec<SessionId> = shared.local.lock().unwrap().keys().copied().collect();
            for id in ids {
                shared.send_presence(id);
            }
        }
        Wire::Gone { node } => {
            let gone = shared.roster.lock().unwrap().forget_node(node);
            leave(hub, gone);
        }
    }
    Ok(())
}
