//! The node's two tasks: one sends what the hub publishes to Redis in pipelines; the other
//! listens to the cluster's channel, keeps the node alive in Redis, watches that its own
//! heartbeat comes back (the probe of a subscription that looks alive but delivers
//! nothing), and rebuilds everything after Redis comes back.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock};
use std::time::Instant;

use futures_util::future::BoxFuture;
use futures_util::stream::FuturesOrdered;
use futures_util::{FutureExt, StreamExt};
use redis::aio::{ConnectionManager, MultiplexedConnection, PubSubStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::alerts;
use super::outage::{Held, Outage, proposed};
use super::presence;
use super::recover::{self, Recovered};
use super::room_state;
use super::roster::Remote;
use super::tally::Told;
use super::wire::{self, PRESENCE_FORMS, Wire};
use super::{Cluster, Out, PREFIX, Shared, backoff, now_ms};
use crate::hub::{
    Event, GapCause, Hub, LeaveReason, MessageText, Nick, NoticeTarget, Posted, Profile,
    Publication, RoomChange, RoomName, Said, SessionId, Standing,
};
use crate::limits::{
    CLUSTER_ACTIVITY_BATCH, CLUSTER_ACTIVITY_EVERY, CLUSTER_BACKLOG, CLUSTER_BACKLOG_TTL,
    CLUSTER_BATCH, CLUSTER_HEARTBEAT, CLUSTER_IN_FLIGHT, CLUSTER_NODE_TIMEOUT,
    CLUSTER_PROBE_TIMEOUT, CLUSTER_TALLY_EVERY,
};

/// The body of [`SAID`] and [`SAID_ONCE`]: numbers a message in its room (at least one past
/// the number the node proposed, `ARGV[1]`), appends it to the room's backlog trimmed to
/// the last `ARGV[3]` and kept `ARGV[4]` ms from now ([`CLUSTER_BACKLOG_TTL`]), and
/// publishes it (`ARGV[2]` after its number).
macro_rules! said_script {
    () => {
        "local s = redis.call('INCR', KEYS[1])
local floor = tonumber(ARGV[1])
if s <= floor then s = floor + 1; redis.call('SET', KEYS[1], s) end
local payload = s .. '\\n' .. ARGV[2]
redis.call('RPUSH', KEYS[3], payload)
redis.call('LTRIM', KEYS[3], -tonumber(ARGV[3]), -1)
redis.call('PEXPIRE', KEYS[3], ARGV[4])
redis.call('PUBLISH', KEYS[2], payload)
return s"
    };
}

/// Numbers a message in its room and publishes it, in one step so the numbers are in the
/// order everyone hears. The number is at least the one the node proposed, so a room's
/// numbers never go back, even after Redis lost them.
///
/// It is also appended to the room's backlog, trimmed to the last [`CLUSTER_BACKLOG`]: what
/// a node missed while cut off, or said before it started, is fetched from there
/// (`recover`).
const SAID: &str = said_script!();

/// [`SAID`] for a message sent once already in a pipeline that failed: Redis may have run
/// it then (and every node heard it), or not. Run only if the room's backlog does not
/// have it: its entries are read newest first, [`BACKLOG_PAGE`] at a time (`ARGV[6]`),
/// down to the number the node had heard when it said it (`ARGV[1]`), below which a copy
/// Redis ran cannot be; an entry with its id (`ARGV[5]`, as the JSON writes it) means
/// Redis ran it, and nothing is done. Redis itself refuses the second copy, so every
/// node, and a node started later reading the backlog, has it once; a message that went
/// through the first time costs nothing more.
const SAID_ONCE: &str = concat!(
    "local floor = tonumber(ARGV[1])
local mark = '\"id\":' .. ARGV[5] .. ','
local page = tonumber(ARGV[6])
local function ran()
  local to = -1
  while true do
    local entries = redis.call('LRANGE', KEYS[3], to - page + 1, to)
    for i = #entries, 1, -1 do
      local seq = tonumber(string.match(entries[i], '^(%d+)\\n'))
      if seq and seq <= floor then return false end
      if string.find(entries[i], mark, 1, true) then return true end
    end
    if #entries < page then return false end
    to = to - page
  end
end
if ran() then return 0 end
",
    said_script!()
);

/// Entries of a room's backlog [`SAID_ONCE`] reads at a time, newest first: a copy Redis
/// ran is among the last few, said since its pipeline failed. Default 32.
const BACKLOG_PAGE: usize = 32;

/// Gives the numbers of `ARGV[1]` messages of a room that were not relayed (past what a
/// node holds during an outage) and publishes them as a gap, so that they are a gap in the
/// room's one order on every node; kept in the backlog too (as [`SAID`] keeps a message),
/// for a node that hears it late.
const LOST: &str = "local s = redis.call('INCRBY', KEYS[1], ARGV[1])
local payload = s .. '\\n' .. ARGV[2]
redis.call('RPUSH', KEYS[3], payload)
redis.call('LTRIM', KEYS[3], -tonumber(ARGV[3]), -1)
redis.call('PEXPIRE', KEYS[3], ARGV[4])
redis.call('PUBLISH', KEYS[2], payload)
return s";

/// Takes a nick unless another live node holds it (its key still names the run that
/// claimed it). A claim of this node's own (`ARGV[3]`, its number) is replaced: its nick
/// table decides between its own sessions, and one that let the nick go while Redis was
/// out of reach may still be named.
const CLAIM: &str = "local v = redis.call('GET', KEYS[1])
if v and v ~= ARGV[1] then
  local n, run = string.match(v, '^(%d+):(%w+):%d+$')
  if n and n ~= ARGV[3] and redis.call('GET', ARGV[2] .. 'node:' .. n) == run then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1])
return 1";

/// Founds a room: this node's claim holds unless another live node's does (its key names
/// a node whose key still names the run that claimed it). A claim of this node's own (an
/// earlier founder of the room here, gone since) is replaced. A claim lasts until its node
/// lets it go (the room emptied there: [`ENDED`], held through an outage like any change
/// to a room) or its node is gone (dead, or restarted in another run): so a room made on a
/// node cut off from Redis, claimed only once it is back, is not founded twice however
/// long it was away. The founder's account, if any (`ARGV[4]`), is then remembered as an
/// operator's in the room's hash, and published as a change to it (`ARGV[5]`, after the
/// room's new version, as [`ROOM`] does), for the winner only.
const FOUND: &str = "local v = redis.call('GET', KEYS[1])
if v then
  local n, run = string.match(v, '^(%d+):(%w+):%d+$')
  if n and n ~= ARGV[2] and redis.call('GET', ARGV[3] .. 'node:' .. n) == run then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1])
if ARGV[4] ~= '' then
  local v = redis.call('HINCRBY', KEYS[2], 'v', 1)
  redis.call('HDEL', KEYS[2], 'r')
  redis.call('HSET', KEYS[2], ARGV[4], ARGV[6])
  redis.call('PUBLISH', KEYS[3], v .. '\\n' .. ARGV[5])
end
return 1";

/// Lets go of this node's claim to have founded a room (its number `ARGV[1]`).
const ENDED: &str = "local v = redis.call('GET', KEYS[1])
if v and string.match(v, '^(%d+):') == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1";

/// Gives a nick up, if this session holds it.
const RELEASE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1";

/// Sets (the first `ARGV[2]` pairs after it) and deletes (the rest) fields of a room's
/// kept state and publishes the change (`ARGV[1]`) after the room's new version, in one
/// step: Redis's hash is what every node has once it heard every change in Redis's order.
/// The version (field `v`, one more with each change) keeps the hash even when nothing
/// else is left in it, and a change made live clears the mark (`r`) of a hash written
/// back from a node's copy: a copy written back later never overwrites it
/// (`recover::RESEED`).
const ROOM: &str = "local v = redis.call('HINCRBY', KEYS[1], 'v', 1)
redis.call('HDEL', KEYS[1], 'r')
local n = tonumber(ARGV[2])
for i = 0, n - 1 do redis.call('HSET', KEYS[1], ARGV[3 + 2 * i], ARGV[4 + 2 * i]) end
for i = 3 + 2 * n, #ARGV do redis.call('HDEL', KEYS[1], ARGV[i]) end
redis.call('PUBLISH', KEYS[2], v .. '\\n' .. ARGV[1])
return 1";

/// Sets when a room was first made anywhere (its field `c`, to `ARGV[2]`) unless it is
/// set already, and publishes it (`ARGV[1]`) as a change to the room: set once, by the
/// first node to make the room, so every node shows the same. Not a version of the room's
/// state (published as `0`): a hash it makes holds nothing a node's copy would lose, and
/// is marked as written back (`r`) so that a copy written back after Redis lost its keys
/// still replaces it (`recover::RESEED`), its creation time included.
const CREATED: &str = "if redis.call('HEXISTS', KEYS[1], 'c') == 1 then return 0 end
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('HSET', KEYS[1], 'r', '1') end
redis.call('HSET', KEYS[1], 'c', ARGV[2])
redis.call('PUBLISH', KEYS[2], '0\\n' .. ARGV[1])
return 1";

/// Keeps the node's key alive and publishes its heartbeat, unless another run took its
/// number meanwhile: then neither, so that the others hear one run under each number.
const REFRESH: &str = "local v = redis.call('GET', KEYS[1])
if v == false or v == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('PUBLISH', KEYS[2], ARGV[3])
  return 1
end
return 0";

/// The digest [`SAID`] is run by (`EVALSHA`): loaded once per connection instead of sent
/// with every message.
fn said_sha() -> &'static str {
    static SHA: LazyLock<String> =
        LazyLock::new(|| redis::Script::new(SAID).get_hash().to_string());
    &SHA
}

/// A room's last number.
pub(super) fn seq_key(room: &RoomName) -> String {
    format!("{PREFIX}seq:{}", room.key())
}

/// How long a backlog is kept after its last entry ([`CLUSTER_BACKLOG_TTL`]), as the
/// scripts take it.
fn backlog_ttl_ms() -> u64 {
    CLUSTER_BACKLOG_TTL.as_millis() as u64
}

/// A room's recent messages, as published (`SEQ\nJSON`), oldest first.
pub(super) fn backlog_key(room: &RoomName) -> String {
    format!("{PREFIX}log:{}", room.key())
}

pub(super) fn channel() -> String {
    format!("{PREFIX}bus")
}

fn nick_key(nick: &Nick) -> String {
    format!("{PREFIX}nick:{}", nick.key())
}

/// Which node's user founded a room, while that claim holds.
fn founder_key(room: &RoomName) -> String {
    format!("{PREFIX}founder:{}", room.key())
}

fn claim_value(shared: &Shared, id: SessionId) -> String {
    format!("{}:{}:{}", shared.node.number(), shared.run, id.bits())
}

pub(super) async fn run(cluster: Cluster, hub: Hub, shutdown: CancellationToken) {
    let shared = cluster.shared;
    let sender = Sender {
        shared: shared.clone(),
        hub: hub.clone(),
        client: cluster.client.clone(),
        manager: cluster.redis.clone(),
        conn: Some(cluster.conn),
        holding: false,
        taken: VecDeque::new(),
    };
    let sender = tokio::spawn(send(sender, cluster.queue));
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
    // What was said or changed here while Redis was out of reach is held in memory only,
    // and goes with the node: its speakers still connected were told `unconfirmed`, and
    // the operator is told here, since the other nodes will never have it.
    {
        let outage = shared.outage.lock().unwrap();
        let (held, changes) = (outage.held.len(), outage.changes.len());
        if held + changes > 0 {
            tracing::warn!(
                held,
                changes,
                "stopping while Redis is out of reach: what was said (held) and changed in rooms (changes) here meanwhile was never relayed, and the other nodes will not have it"
            );
        }
    }
    if shared.displaced.is_cancelled() {
        // The node key and the number are the other run's now: neither deleted nor said
        // gone, which the others would take for that run's.
        return;
    }
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

/// What a pipeline asks whose answer is read.
enum Asked {
    /// A nick claimed: `1` won, `0` lost to another node.
    Nick(Nick, SessionId),
    /// A room founded: `1` won, `0` lost to another node.
    Founding(RoomName, SessionId),
    /// A held message published (its id): `0` when Redis had it already ([`SAID_ONCE`]),
    /// else the number Redis gave it.
    Late(u64),
}

/// A pipeline's answer, with what it carried, what it asked, and whether it went on the
/// sender's own connection.
type Answer = (Vec<Out>, Vec<Asked>, bool, redis::RedisResult<Vec<i64>>);

/// The connection a node's messages go to Redis on, one pipeline after another.
pub(super) async fn connect(client: &redis::Client) -> redis::RedisResult<MultiplexedConnection> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CLUSTER_NODE_TIMEOUT))
        .set_response_timeout(Some(CLUSTER_NODE_TIMEOUT));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

/// Sends what the hub queues to Redis, in the order queued: in pipelines of up to
/// [`CLUSTER_BATCH`], without waiting for one pipeline's answer before sending the next
/// (up to [`CLUSTER_IN_FLIGHT`]), so a message waits for its own round trip only. Every
/// pipeline goes on one connection of its own, so Redis runs (and numbers) them in the
/// order sent; once one fails, none goes on another connection until what it carried is
/// published: a message held never has a later one overtake it.
struct Sender {
    shared: Arc<Shared>,
    hub: Hub,
    client: redis::Client,
    /// What the node sends while its own connection is down (presence, claims: nothing
    /// held), on a connection made again as needed.
    manager: ConnectionManager,
    /// The sender's own connection; none from a pipeline failing on it until Redis is back
    /// ([`Out::Resume`]).
    conn: Option<MultiplexedConnection>,
    /// From a pipeline failing, or a message or room change taken while Redis is out of
    /// reach, until [`Out::Resume`]: messages, posts and room changes are held
    /// ([`outage`](super::outage)) and heard here, not sent.
    holding: bool,
    /// Taken from the queue, not yet sent or held, oldest first.
    taken: VecDeque<Out>,
}

async fn send(mut sender: Sender, mut queue: mpsc::Receiver<Out>) {
    let mut in_flight: FuturesOrdered<BoxFuture<'static, Answer>> = FuturesOrdered::new();
    let mut batch = Vec::with_capacity(CLUSTER_BATCH);
    loop {
        // While holding, a message or room change taken waits for every pipeline in
        // flight to settle: one that fails gives back what it carried, heard here before
        // what was said after it.
        let settled = in_flight.is_empty();
        let can_build = in_flight.len() < CLUSTER_IN_FLIGHT
            && sender
                .taken
                .front()
                .is_some_and(|next| settled || !sender.waits(next));
        tokio::select! {
            // Polled first, so a pipeline just pushed is handed to the connection (on its
            // first poll) before the next one is built.
            biased;
            Some(answer) = in_flight.next(), if !in_flight.is_empty() => sender.settle(answer),
            _ = std::future::ready(()), if can_build => {
                if let Some(pipeline) = sender.next_pipeline(settled).await {
                    in_flight.push_back(pipeline);
                }
            }
            n = queue.recv_many(&mut batch, CLUSTER_BATCH), if sender.taken.is_empty() && in_flight.len() < CLUSTER_IN_FLIGHT => {
                if n == 0 {
                    break;
                }
                sender.taken.extend(batch.drain(..));
            }
        }
    }
}

/// `publication` (a message or a post) to be numbered here: its node heard it before
/// Redis numbered it.
fn unnumbered(mut publication: Publication) -> Publication {
    match &mut publication.event {
        Event::Message(said) => said.seq = 0,
        Event::Posted(posted) => posted.seq = 0,
        _ => {}
    }
    publication
}

/// The id of a message (none for anything else): the ack its speaker is owed.
fn message_id(out: &Out) -> Option<u64> {
    match out {
        Out::Said(publication) | Out::Late(Held { publication, .. }) => match &publication.event {
            Event::Message(said) => Some(said.id),
            _ => None,
        },
        _ => None,
    }
}

impl Sender {
    /// Whether `next` is to be held, or is the return that sends what is held: either
    /// waits until no pipeline is in flight.
    fn waits(&self, next: &Out) -> bool {
        match next {
            Out::Resume => self.holding,
            next => {
                next.is_ordered()
                    && (self.holding || !self.shared.reachable.load(Ordering::Relaxed))
            }
        }
    }

    /// The next pipeline, of what was taken oldest first; what is held is heard here
    /// instead (only once no pipeline is in flight: `settled`). `None` when nothing was
    /// left to send.
    async fn next_pipeline(&mut self, settled: bool) -> Option<BoxFuture<'static, Answer>> {
        if self.shared.stale.swap(false, Ordering::Relaxed) {
            // Made again on return ([`Sender::resume`]), once what is in flight on it settled.
            self.conn = None;
            self.holding = true;
        }
        let mut sent = Vec::with_capacity(self.taken.len().min(CLUSTER_BATCH));
        let (mut fallen, mut lost, mut undelivered) = (Vec::new(), Vec::new(), Vec::new());
        while sent.len() < CLUSTER_BATCH {
            let Some(out) = self.taken.pop_front() else {
                break;
            };
            if !settled && self.waits(&out) {
                self.taken.push_front(out);
                break;
            }
            if let Out::Resume = out {
                if self.conn.is_none() && !sent.is_empty() {
                    // What came before goes first; the connection is made again once
                    // nothing is in flight.
                    self.taken.push_front(out);
                    break;
                }
                self.resume().await;
                continue;
            }
            if let Out::Release(nick, id) = out {
                // Sent once Redis is back (`tell_back`, or `resume` if taken before).
                if !self.shared.reachable.load(Ordering::Relaxed) {
                    self.shared.outage.lock().unwrap().release(nick, id);
                    continue;
                }
                sent.push(Out::Release(nick, id));
                continue;
            }
            if !out.is_ordered() && !self.shared.reachable.load(Ordering::Relaxed) {
                // Not sent to a Redis out of reach, as a pipeline that failed would not
                // have carried it ([`Sender::failed`]): presence and claims are told again
                // on return ([`rejoin`]), a private message's sender is told. Sent, it would
                // wait on the connection manager's attempts to connect again, and what is
                // held after it would wait to be heard here as long.
                if let Out::Direct(from, _) = out {
                    undelivered.push(from);
                }
                continue;
            }
            if out.is_ordered() && (self.holding || !self.shared.reachable.load(Ordering::Relaxed))
            {
                self.holding = true;
                self.hold(out, &mut fallen, &mut lost);
                continue;
            }
            sent.push(out);
        }
        self.hear_held(fallen, lost);
        for from in undelivered {
            self.hub.not_delivered(from);
        }
        if sent.is_empty() {
            return None;
        }
        let mut pipe = redis::pipe();
        if !self.shared.scripts_loaded.swap(true, Ordering::Relaxed) {
            pipe.cmd("SCRIPT").arg("LOAD").arg(SAID).ignore();
        }
        let mut asked = Vec::new();
        for out in &sent {
            add(&self.shared, &mut pipe, out, &mut asked);
        }
        Some(match self.conn.clone() {
            Some(mut conn) => Box::pin(async move {
                let answer = pipe.query_async::<Vec<i64>>(&mut conn).await;
                (sent, asked, true, answer)
            }),
            None => {
                let mut manager = self.manager.clone();
                Box::pin(async move {
                    let answer = pipe.query_async::<Vec<i64>>(&mut manager).await;
                    (sent, asked, false, answer)
                })
            }
        })
    }

    /// Holds `out`, never sent: a message or post is heard here now (`fallen`); one past
    /// what is held is not relayed (`lost`).
    fn hold(&self, out: Out, fallen: &mut Vec<Publication>, lost: &mut Vec<u64>) {
        let mut outage = self.shared.outage.lock().unwrap();
        match out {
            Out::Said(publication) => {
                fallen.push(unnumbered(publication.clone()));
                lost.extend(outage.hold(publication, false));
            }
            Out::Late(held) => lost.extend(outage.hold(held.publication, held.sent)),
            Out::Lost(room, count) => *outage.dropped.entry(room).or_default() += count,
            change => outage.hold_change(change),
        }
    }

    /// What was held is heard here, and the speakers of what could not be are told.
    fn hear_held(&self, fallen: Vec<Publication>, lost: Vec<u64>) {
        if !fallen.is_empty() {
            self.hub.fell_back(fallen);
        }
        if !lost.is_empty() {
            self.hub.not_relayed(lost);
        }
    }

    /// Redis is back: the connection is made again if it failed, and what was held goes
    /// first, in order (messages and posts, then gaps for what did not fit, then changes
    /// to rooms, the last Redis hears so that they hold over any made elsewhere while this
    /// node was cut off).
    async fn resume(&mut self) {
        if self.conn.is_none() {
            match connect(&self.client).await {
                Ok(conn) => self.conn = Some(conn),
                Err(e) => {
                    // Still holding: the next return sends it all.
                    tracing::warn!(error = %e, "cannot reach Redis");
                    unreachable(&self.shared, &self.hub);
                    return;
                }
            }
        }
        let releases = self.shared.held_releases();
        let Outage {
            held,
            dropped,
            changes,
            ..
        } = self.shared.outage.lock().unwrap().take();
        if !held.is_empty() {
            tracing::info!(
                count = held.len(),
                "publishing what was said while Redis was out of reach"
            );
        }
        let mut back: Vec<Out> = held.into_iter().map(Out::Late).collect();
        for (room, count) in dropped {
            tracing::warn!(room = %room.as_str(), count, "messages said while Redis was out of reach were not relayed");
            back.push(Out::Lost(room, count));
        }
        back.extend(changes);
        back.extend(releases);
        for out in back.into_iter().rev() {
            self.taken.push_front(out);
        }
        self.holding = false;
    }

    /// What a pipeline's answer means: a claim lost is taken back, a held message
    /// published is acked as its copy comes back; a failed pipeline leaves the other
    /// nodes out of reach, and what it said is heard here and held.
    fn settle(&mut self, (sent, asked, own, answer): Answer) {
        let (shared, hub) = (&*self.shared, &self.hub);
        let answers = match answer {
            Ok(answers) => answers,
            Err(e) => return self.failed(sent, own, e),
        };
        if let Some(id) = sent.iter().rev().find_map(message_id) {
            shared.answered.fetch_max(id, Ordering::Relaxed);
        }
        let (mut relayed, mut resent) = (Vec::new(), Vec::new());
        for (asked, answer) in asked.into_iter().zip(answers) {
            match asked {
                Asked::Late(id) if answer == 0 => relayed.push(id),
                Asked::Late(id) => resent.push(id),
                Asked::Nick(..) | Asked::Founding(..) if answer != 0 => {}
                Asked::Nick(nick, id) => hub.nick_lost(id, &nick),
                Asked::Founding(room, id) => {
                    tracing::info!(room = %room.as_str(), "a room made here at the same moment as on another node is that node's");
                    let mut founded = shared.founded.lock().unwrap();
                    if founded.get(&room) == Some(&id) {
                        founded.remove(&room);
                    }
                    drop(founded);
                    hub.founding_lost(&room, id);
                }
            }
        }
        if !resent.is_empty() {
            hub.resent(resent);
        }
        if !relayed.is_empty() {
            hub.relayed(relayed);
        }
    }

    /// A pipeline failed (on the sender's own connection: `own`). Presence is told again
    /// on return, and claims made again; messages and posts are heard here and held, to be
    /// published then (Redis may have run them: [`SAID_ONCE`]), and so are changes to
    /// rooms, each before what was said or made after it.
    fn failed(&mut self, sent: Vec<Out>, own: bool, e: redis::RedisError) {
        tracing::warn!(error = %e, "cannot send to Redis");
        let (mut fallen, mut lost, mut changes) = (Vec::new(), Vec::new(), Vec::new());
        let (mut undelivered, mut fallen_messages) = (Vec::new(), Vec::new());
        {
            let mut outage = self.shared.outage.lock().unwrap();
            for out in sent {
                match out {
                    Out::Said(publication) => {
                        match &publication.event {
                            // Its copy is skipped once the hub heard it (below).
                            Event::Message(said) => fallen_messages.push(said.id),
                            // The hub hears a post as it falls back, whatever came before:
                            // its copy from the backlog (or the subscription), if Redis ran
                            // it, is skipped from now ([`super::once`]).
                            Event::Posted(posted) => {
                                self.shared.once.lock().unwrap().remember(posted.id);
                                self.shared.fell_back.store(true, Ordering::Relaxed);
                            }
                            _ => continue,
                        }
                        fallen.push(unnumbered(publication.clone()));
                        lost.extend(outage.hold(publication, true));
                    }
                    Out::Late(held) => lost.extend(outage.hold(held.publication, true)),
                    Out::Lost(room, count) => *outage.dropped.entry(room).or_default() += count,
                    change @ (Out::Room(..) | Out::Found(..) | Out::Ended(_) | Out::Made(..)) => {
                        changes.push(change)
                    }
                    Out::Publish(wire) if wire.is_room_event() => {
                        changes.push(Out::Publish(wire));
                    }
                    // Redis may or may not have carried it: its sender is told so.
                    Out::Direct(from, _) => undelivered.push(from),
                    Out::Release(nick, id) => outage.release(nick, id),
                    Out::Publish(_) | Out::Round { .. } | Out::Claim(..) | Out::Resume => {}
                }
            }
            outage.hold_changes_again(changes);
        }
        self.holding = true;
        if own {
            self.conn = None;
        }
        self.hear_held(fallen, lost);
        // Only now, once the hub heard the messages, are their copies from the backlog or
        // the subscription (if Redis ran them) skipped as heard already ([`super::once`]):
        // remembered before, a copy the listener took meanwhile would be skipped as heard
        // here, and the hub, finding its speaker acked, would not hear it as it fell back
        // either. A copy that reaches the hub before them is heard once too (the hub
        // knows which of its messages were heard here already).
        if !fallen_messages.is_empty() {
            let mut once = self.shared.once.lock().unwrap();
            for id in fallen_messages {
                once.remember(id);
            }
            self.shared.fell_back.store(true, Ordering::Relaxed);
        }
        for from in undelivered {
            self.hub.not_delivered(from);
        }
        unreachable(&self.shared, &self.hub);
    }
}

/// Adds `out` to `pipe`; what asks something whose answer is read is added to `asked`.
fn add(shared: &Shared, pipe: &mut redis::Pipeline, out: &Out, asked: &mut Vec<Asked>) {
    match out {
        Out::Said(publication) | Out::Late(Held { publication, .. }) => {
            let (Some(mut wire), Some(proposed)) = (
                Wire::of(shared.node, publication),
                proposed(&publication.event),
            ) else {
                return;
            };
            let sent = match out {
                Out::Late(held) => {
                    wire.make_late();
                    held.sent
                }
                _ => false,
            };
            let json = serde_json::to_string(&wire).expect("plain data serializes");
            let room = &publication.room;
            match sent {
                true => pipe.cmd("EVAL").arg(SAID_ONCE),
                false => pipe.cmd("EVALSHA").arg(said_sha()),
            };
            pipe.arg(3)
                .arg(seq_key(room))
                .arg(channel())
                .arg(backlog_key(room))
                .arg(proposed.saturating_sub(1))
                .arg(json)
                .arg(CLUSTER_BACKLOG)
                .arg(backlog_ttl_ms());
            if sent {
                pipe.arg(wire.entry_id().unwrap_or_default())
                    .arg(BACKLOG_PAGE);
            }
            // A held message's answer says whether Redis has it: its speaker is owed an ack.
            match (out, &publication.event) {
                (Out::Late(_), Event::Message(said)) => asked.push(Asked::Late(said.id)),
                _ => {
                    pipe.ignore();
                }
            }
        }
        Out::Lost(room, count) => {
            let wire = Wire::Lost {
                node: shared.node.number(),
                room: room.as_str().to_string(),
                count: *count,
            };
            let json = serde_json::to_string(&wire).expect("plain data serializes");
            pipe.cmd("EVAL")
                .arg(LOST)
                .arg(3)
                .arg(seq_key(room))
                .arg(channel())
                .arg(backlog_key(room))
                .arg(count)
                .arg(json)
                .arg(CLUSTER_BACKLOG)
                .arg(backlog_ttl_ms())
                .ignore();
        }
        Out::Publish(wire) | Out::Direct(_, wire) => {
            pipe.cmd("PUBLISH")
                .arg(channel())
                .arg(wire.payload(0))
                .ignore();
        }
        Out::Round {
            round,
            sessions,
            batched,
        } => {
            let (node, round) = (shared.node.number(), *round);
            let telling = Wire::Telling { node, round };
            pipe.cmd("PUBLISH")
                .arg(channel())
                .arg(telling.payload(0))
                .ignore();
            if *batched {
                for payload in wire::presents_payloads(node, round, sessions) {
                    pipe.cmd("PUBLISH").arg(channel()).arg(payload).ignore();
                }
            } else {
                for session in sessions {
                    let present = Wire::Present {
                        node,
                        session: session.clone(),
                        again: true,
                        round,
                    };
                    pipe.cmd("PUBLISH")
                        .arg(channel())
                        .arg(present.payload(0))
                        .ignore();
                }
            }
            let told = Wire::Told {
                node,
                round,
                sessions: sessions.len() as u64,
            };
            pipe.cmd("PUBLISH")
                .arg(channel())
                .arg(told.payload(0))
                .ignore();
        }
        Out::Room(room, wire) => {
            let Wire::RoomKept { set, del, .. } = wire else {
                return;
            };
            pipe.cmd("EVAL")
                .arg(ROOM)
                .arg(2)
                .arg(room_state::key(room))
                .arg(channel())
                .arg(serde_json::to_string(wire).expect("plain data serializes"))
                .arg(set.len());
            for (field, value) in set {
                pipe.arg(field).arg(value);
            }
            pipe.arg(del).ignore();
        }
        Out::Claim(nick, id) => {
            pipe.cmd("EVAL")
                .arg(CLAIM)
                .arg(1)
                .arg(nick_key(nick))
                .arg(claim_value(shared, *id))
                .arg(PREFIX)
                .arg(shared.node.number());
            asked.push(Asked::Nick(nick.clone(), *id));
        }
        Out::Found(room, id, account) => {
            let (field, publication) = match account {
                Some(account) => {
                    let change = [RoomChange::OpAccount(account.clone(), true)];
                    let (set, del) = room_state::delta(&change);
                    let field = set[0].0.clone();
                    let wire = Wire::RoomKept {
                        node: shared.node.number(),
                        room: room.as_str().to_string(),
                        set,
                        del,
                        replace: false,
                    };
                    let json = serde_json::to_string(&wire).expect("plain data serializes");
                    (field, json)
                }
                None => (String::new(), String::new()),
            };
            pipe.cmd("EVAL")
                .arg(FOUND)
                .arg(3)
                .arg(founder_key(room))
                .arg(room_state::key(room))
                .arg(channel())
                .arg(claim_value(shared, *id))
                .arg(shared.node.number())
                .arg(PREFIX)
                .arg(field)
                .arg(publication)
                .arg(account.as_ref().map_or("", |a| a.as_str()));
            asked.push(Asked::Founding(room.clone(), *id));
        }
        Out::Made(room, created) => {
            let wire = Wire::RoomKept {
                node: shared.node.number(),
                room: room.as_str().to_string(),
                set: vec![(room_state::CREATED.to_string(), created.to_string())],
                del: Vec::new(),
                replace: false,
            };
            pipe.cmd("EVAL")
                .arg(CREATED)
                .arg(2)
                .arg(room_state::key(room))
                .arg(channel())
                .arg(serde_json::to_string(&wire).expect("plain data serializes"))
                .arg(created)
                .ignore();
        }
        Out::Ended(room) => {
            pipe.cmd("EVAL")
                .arg(ENDED)
                .arg(1)
                .arg(founder_key(room))
                .arg(shared.node.number())
                .ignore();
        }
        Out::Release(nick, id) => {
            pipe.cmd("EVAL")
                .arg(RELEASE)
                .arg(1)
                .arg(nick_key(nick))
                .arg(claim_value(shared, *id))
                .ignore();
        }
        Out::Resume => {}
    }
}

/// The other nodes are out of reach: the sessions here are told, once.
fn unreachable(shared: &Shared, hub: &Hub) {
    // Redis may come back without its scripts (restarted): loaded again with the next
    // pipeline.
    shared.scripts_loaded.store(false, Ordering::Relaxed);
    shared.stale.store(true, Ordering::Relaxed);
    // Under the hub's lock, as its return is ([`back`]): a session's change is recorded
    // and published as of one side of it.
    let was = hub.between_changes(|| shared.reachable.swap(false, Ordering::Relaxed));
    if was {
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
    // Counted apart: once subscribed, Redis answers, and the first command after it came
    // back usually fails only because the connection manager still held the connection
    // to the Redis that went (it connects again as that fails). Waited for with the
    // subscription's failures, a node back in touch would wait the longest backoff again.
    let mut recover_failures = 0;
    let mut first = Some(first);
    while !shutdown.is_cancelled() {
        let subscribed = match first.take() {
            Some(stream) => Ok(stream),
            None => subscribe(client).await,
        };
        match subscribed {
            Ok(stream) => {
                failures = 0;
                // What was published before is not heard: a round of presence begun
                // then is not heard whole.
                shared.roster.lock().unwrap().forget_rounds();
                // A message Redis answered for by now is in its room's backlog, unless
                // Redis lost it: one whose copy the backlogs do not give either was lost.
                let answered = shared.answered.load(Ordering::Relaxed);
                // Subscribed first, so that nothing published meanwhile is missed.
                let recovered = match recover::recover(shared, &mut redis, hub).await {
                    Ok(recovered) => recovered,
                    Err(e) => {
                        recover_failures += 1;
                        tracing::warn!(error = %e, "cannot read what was missed from Redis");
                        unreachable(shared, hub);
                        tokio::select! {
                            _ = tokio::time::sleep(backoff(recover_failures)) => {}
                            _ = shutdown.cancelled() => return,
                        }
                        continue;
                    }
                };
                recover_failures = 0;
                let why = hear(
                    shared, &mut redis, hub, stream, recovered, answered, shutdown,
                )
                .await;
                if shutdown.is_cancelled() || shared.displaced.is_cancelled() {
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
/// `answered`: the newest message of this node Redis had answered for before the
/// backlogs were read ([`Shared::answered`]).
async fn hear(
    shared: &Arc<Shared>,
    redis: &mut ConnectionManager,
    hub: &Hub,
    mut stream: PubSubStream,
    mut recovered: Recovered,
    answered: u64,
    shutdown: &CancellationToken,
) -> &'static str {
    let mut beat = tokio::time::interval(CLUSTER_HEARTBEAT);
    let mut activity = tokio::time::interval(CLUSTER_ACTIVITY_EVERY);
    // Not at once: by the first, every live node's heartbeat was heard (and what forms
    // of presence it reads).
    let start = tokio::time::Instant::now() + CLUSTER_TALLY_EVERY;
    let mut tally = tokio::time::interval_at(start, CLUSTER_TALLY_EVERY);
    let mut heard_own = Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return "shutdown",
            msg = stream.next() => {
                // What else has arrived is heard with it, under one hold of the hub's lock,
                // as a burst of input is on a node alone.
                let mut ended = msg.is_none();
                let mut arrived: Vec<_> = msg.into_iter().collect();
                while !ended && arrived.len() < CLUSTER_BATCH {
                    match stream.next().now_or_never() {
                        Some(Some(msg)) => arrived.push(msg),
                        Some(None) => ended = true,
                        None => break,
                    }
                }
                let mut burst = Vec::with_capacity(arrived.len());
                for msg in arrived {
                    match Wire::parse(msg.get_payload_bytes()) {
                        Ok((_, Wire::Beat { node, .. })) if node == shared.node.number() => {
                            heard_own = Instant::now();
                        }
                        Ok((seq, wire)) => {
                            if let Err(e) = heard(shared, hub, seq, wire, &mut burst, &mut recovered) {
                                tracing::warn!(error = %e, "skipped a bad publication from Redis");
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "skipped a bad publication from Redis"),
                    }
                }
                hub.receive_all(burst);
                if ended {
                    return "the subscription ended";
                }
            }
            _ = activity.tick() => report_activity(shared, hub),
            _ = tally.tick() => shared.tell_tally(),
            _ = beat.tick() => {
                if heard_own.elapsed() > CLUSTER_PROBE_TIMEOUT {
                    return "this node's heartbeat did not come back";
                }
                match alive(shared, redis).await {
                    Ok(false) => {
                        displaced(shared, hub);
                        return "another node took this node's number";
                    }
                    Ok(true) if !shared.reachable.load(Ordering::Relaxed) => {
                        hub.forget_unheard(answered);
                        if rejoin(shared, hub).await {
                            tracing::info!("cross-node delivery restored");
                            hub.tell_all(Event::Cluster { reachable: true });
                        }
                    }
                    Ok(true) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot reach Redis");
                        unreachable(shared, hub);
                    }
                }
                let deadline = Instant::now().checked_sub(CLUSTER_NODE_TIMEOUT);
                if let Some(deadline) = deadline {
                    let gone = shared.roster.lock().unwrap().silent_since(deadline);
                    leave(shared, hub, gone);
                }
                let live = shared.live_nodes();
                shared.alerts.lock().unwrap().keep_only(&live);
            }
        }
    }
}

/// Tells the other nodes when this node's users who spoke since the last report last did
/// ([`Wire::Active`]), and keeps it for the presence told again after an outage.
fn report_activity(shared: &Shared, hub: &Hub) {
    let since = shared.reported.swap(now_ms(), Ordering::Relaxed);
    let spoke = hub.spoke_since(since);
    if spoke.is_empty() {
        return;
    }
    {
        let mut local = shared.local.lock().unwrap();
        for (id, at) in &spoke {
            if let Some(local) = local.sessions.get_mut(id) {
                local.profile.spoke = *at;
            }
        }
    }
    for batch in spoke.chunks(CLUSTER_ACTIVITY_BATCH) {
        shared.send(Out::Publish(Wire::Active {
            node: shared.node.number(),
            spoke: batch.iter().map(|(id, at)| (id.bits(), *at)).collect(),
        }));
    }
}

/// Refreshes the node's key and says it is alive; false when another run holds its
/// number.
async fn alive(shared: &Shared, redis: &mut ConnectionManager) -> redis::RedisResult<bool> {
    let run = &shared.run;
    let beat = Wire::Beat {
        node: shared.node.number(),
        run: run.clone(),
        presence: PRESENCE_FORMS,
    };
    let kept: i64 = redis::cmd("EVAL")
        .arg(REFRESH)
        .arg(2)
        .arg(shared.node_key())
        .arg(channel())
        .arg(run)
        .arg(CLUSTER_NODE_TIMEOUT.as_millis() as u64)
        .arg(beat.payload(0))
        .query_async(redis)
        .await?;
    Ok(kept == 1)
}

/// Another run holds this node's number: it stops serving as that number, at once (its
/// users are told cross-node delivery is interrupted, and nothing more is published as
/// it), and the server stops ([`Cluster::displaced`]).
fn displaced(shared: &Shared, hub: &Hub) {
    if shared.displaced.is_cancelled() {
        return;
    }
    tracing::error!(
        node = shared.node.number(),
        "another node took this node's number while this one was cut off from Redis (Redis lost its keys, or this node was out of reach longer than CLUSTER_NODE_TIMEOUT): stopping rather than be two nodes under one number; start it again to take a free one"
    );
    unreachable(shared, hub);
    shared.displaced.cancel();
}

/// Back in touch: the others are asked who they have, and told who is here (nicks
/// claimed again: one taken meanwhile elsewhere is lost here); the sender publishes what
/// was held meanwhile, in order, before anything said after ([`Out::Resume`]). False when
/// the sender could not be told in time (its queue full): still out of reach, tried again.
async fn rejoin(shared: &Shared, hub: &Hub) -> bool {
    // Reachable before the sender is told: what it takes before `Resume` is held (it
    // holds until then), what it takes after is sent.
    back(shared, hub);
    let told = tokio::time::timeout(CLUSTER_NODE_TIMEOUT, shared.outbox.send(Out::Resume));
    if matches!(told.await, Ok(Ok(()))) {
        return true;
    }
    shared.reachable.store(false, Ordering::Relaxed);
    false
}

/// Back in touch: makes Redis reachable and tells the others who is here
/// ([`tell_back`]), in one step under the hub's lock. A session's change (a join, a
/// leave, a rename) is recorded for the others and published under that lock too,
/// reading whether Redis is reachable: so each is wholly before, told in the round and
/// not published live (what is said while Redis is out of reach), or wholly after,
/// published live and not in the round; never in both, which the others would announce
/// twice. Reachable first: what the sender takes while Redis is out of reach it does not
/// send ([`Sender::next_pipeline`]), and what is told here is to be sent.
pub(super) fn back(shared: &Shared, hub: &Hub) {
    hub.between_changes(|| {
        shared.reachable.store(true, Ordering::Relaxed);
        tell_back(shared);
    });
}

/// Tells the others this node is here, and who is on it: on joining the cluster, and
/// again once back in touch.
pub(super) fn tell_back(shared: &Shared) {
    shared.roster.lock().unwrap().pardon(Instant::now());
    shared.send(Out::Publish(Wire::Hello {
        node: shared.node.number(),
        run: shared.run.clone(),
        presence: PRESENCE_FORMS,
    }));
    // Let go before anything else is told: once the others hear this node's users anew,
    // the nicks they no longer hold are free in Redis too.
    for release in shared.held_releases() {
        shared.send(release);
    }
    let locals: Vec<(SessionId, Nick)> = {
        let local = shared.local.lock().unwrap();
        let sessions = local.sessions.iter();
        sessions.map(|(id, l)| (*id, l.nick.clone())).collect()
    };
    for (id, nick) in locals {
        shared.send(Out::Claim(nick, id));
    }
    shared.tell_everyone();
    shared.tell_departed(true);
}

/// Sessions of other nodes are gone: they leave their rooms here.
fn leave(shared: &Shared, hub: &Hub, gone: Vec<Remote>) {
    presence::left(shared, hub, gone, &LeaveReason::ConnectionLost);
}

/// `node` was heard from, in `run`, reading the forms of presence `presence`: if that is
/// a new run, its earlier one's users are gone.
fn heard_node(shared: &Shared, hub: &Hub, node: u16, run: &str, presence: u32) {
    let gone = shared
        .roster
        .lock()
        .unwrap()
        .heard(node, run, presence, Instant::now());
    leave(shared, hub, gone);
}

/// What another node (or this one, for its messages) published. What its rooms' members
/// hear is added to `burst`, to be handed to the hub together; anything else is handled at
/// once, after what `burst` holds so far, so that everything is heard in Redis's order.
/// One of this node's messages that came back but was heard here already (held) is
/// in Redis: its speaker is acked, in Redis's order too.
fn heard(
    shared: &Shared,
    hub: &Hub,
    seq: u64,
    wire: Wire,
    burst: &mut Vec<Publication>,
    recovered: &mut Recovered,
) -> Result<(), String> {
    let own = wire.node() == shared.node.number();
    // This node's own messages come back to be heard here; those published late were
    // heard here when said. Its own room changes are taken again in Redis's order, so
    // that changes crossing on the way end the same on every node.
    let kept = matches!(wire, Wire::RoomKept { .. });
    // An account this node deleted: the rooms kept in Redis forget it once, from here.
    if own
        && let Wire::Account {
            name,
            registered: false,
            ..
        } = &wire
    {
        shared.forget_account(&wire::nick(name)?);
    }
    if own && !kept && (!wire.is_entry() || wire.is_late()) {
        relayed(hub, &wire, burst);
        return Ok(());
    }
    if !matches!(
        wire,
        Wire::Said { .. }
            | Wire::Posted { .. }
            | Wire::Lost { .. }
            | Wire::Joined { .. }
            | Wire::Left { .. }
    ) {
        hub.receive_all(std::mem::take(burst));
    }
    match wire {
        entry @ (Wire::Said { .. } | Wire::Posted { .. }) => {
            // Looked up only when it may be a copy: published late, or this node's own
            // once one of them fell back.
            if (entry.is_late() || (own && shared.fell_back.load(Ordering::Relaxed)))
                && shared
                    .once
                    .lock()
                    .unwrap()
                    .heard_already(shared.node.number(), &entry)
            {
                if own {
                    relayed(hub, &entry, burst);
                }
                return Ok(());
            }
            let publication = said_publication(shared, seq, entry)?;
            if recovered.fresh(&publication) {
                burst.push(publication);
            }
        }
        lost @ Wire::Lost { .. } => {
            let publication = lost_publication(seq, lost)?;
            if recovered.fresh(&publication) {
                burst.push(publication);
            }
        }
        Wire::Joined {
            room,
            nick,
            count,
            account,
            away,
            ..
        } => {
            let room = wire::room(&room)?;
            let joined = Event::Joined {
                room: room.clone(),
                nick: wire::nick(&nick)?,
                you: false,
                members: Vec::new(),
                count,
                account: account.as_deref().map(wire::nick).transpose()?,
                away: away.as_deref().and_then(MessageText::new),
            };
            burst.push(Publication {
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
                // Each room's leave comes on its own: nothing here knows it is the last.
                told_once: false,
            };
            burst.push(Publication {
                room,
                event: left,
                except: None,
            });
        }
        Wire::Account {
            name, registered, ..
        } => {
            let name = wire::nick(&name)?;
            match registered {
                true => hub.account_created(None, name, None),
                false => hub.account_gone(&name),
            }
        }
        Wire::RoomKept {
            room,
            set,
            del,
            replace,
            ..
        } => {
            let change = room_state::Change {
                version: seq,
                replace,
                set,
                del,
            };
            shared.room_kept(hub, wire::room(&room)?, change);
        }
        event @ (Wire::Topic { .. } | Wire::Modes { .. } | Wire::Kicked { .. }) => {
            hub.room_event_elsewhere(wire::room_event(event)?);
        }
        Wire::Invite {
            to, room, nick, by, ..
        } => {
            let to = SessionId::from_bits(to);
            if to.node() == shared.node {
                let room = wire::room(&room)?;
                shared.invite(to, room.clone());
                let invited = Event::Invited {
                    room,
                    nick: wire::nick(&nick)?,
                    by: wire::nick(&by)?,
                    you: true,
                };
                hub.reply(to, invited, None);
            }
        }
        Wire::Private {
            to,
            id,
            ts,
            from,
            nick,
            text,
            notice,
            account,
            tags,
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
                    account: account.as_deref().map(wire::nick).transpose()?,
                    tags: wire::tags(tags.as_deref())?,
                };
                hub.reply(to, private, None);
            }
        }
        Wire::Tagged {
            room,
            to,
            nick,
            id,
            ts,
            from,
            account,
            tags,
            ..
        } => {
            let session = SessionId::from_bits(to);
            let to = match (room, nick) {
                (Some(room), _) => NoticeTarget::Room(wire::room(&room)?),
                // For a session of another node.
                (None, Some(_)) if session.node() != shared.node => return Ok(()),
                (None, Some(nick)) => NoticeTarget::Nick(wire::nick(&nick)?),
                (None, None) => return Err("tags for no room and no one".to_string()),
            };
            let event = Event::TagsOnly {
                id,
                ts,
                from: wire::nick(&from)?,
                account: account.as_deref().map(wire::nick).transpose()?,
                to: to.clone(),
                tags: wire::tags(Some(&tags))?.ok_or("no client tags")?,
            };
            match to {
                NoticeTarget::Room(room) => hub.receive(Publication {
                    room,
                    event,
                    except: None,
                }),
                NoticeTarget::Nick(_) => {
                    hub.reply(session, event, None);
                }
            }
        }
        Wire::Present {
            node,
            session,
            again,
            round,
        } => present(shared, hub, node, session, again, round)?,
        Wire::Active { node, spoke } => {
            let mut roster = shared.roster.lock().unwrap();
            for (session, at) in spoke {
                roster.spoke(node, SessionId::from_bits(session), at);
            }
        }
        Wire::Absent { session, again, .. } => {
            let gone = shared
                .roster
                .lock()
                .unwrap()
                .remove(SessionId::from_bits(session));
            if let Some(gone) = gone.filter(|_| again) {
                presence::gone(shared, hub, vec![gone]);
            }
        }
        Wire::Beat {
            node,
            run,
            presence,
        } => heard_node(shared, hub, node, &run, presence),
        Wire::Hello {
            node,
            run,
            presence,
        } => {
            heard_node(shared, hub, node, &run, presence);
            shared.tell_everyone();
            shared.tell_departed(false);
            // And what this node's checks and heartbeats report, without waiting.
            shared.alerts_changed.notify_one();
        }
        Wire::Presents {
            node,
            round,
            sessions,
        } => {
            // One bad session is skipped alone, as its own publication would be.
            for session in sessions {
                if let Err(e) = present(shared, hub, node, session, true, round) {
                    tracing::warn!(error = %e, "skipped a bad session of a publication from Redis");
                }
            }
        }
        Wire::Tally {
            node,
            tally,
            sessions,
            digest,
            profiles,
        } => {
            let told = Told {
                sessions,
                digest,
                profiles,
            };
            let ask = {
                let mut roster = shared.roster.lock().unwrap();
                roster.tally(node, told) && roster.all_read(PRESENCE_FORMS)
            };
            if ask {
                tracing::info!(
                    of = node,
                    "what this node knows of another's users differs from its tally: asked it to tell them anew"
                );
                shared.send(Out::Publish(Wire::Ask {
                    node: shared.node.number(),
                    of: node,
                    tally,
                }));
            }
        }
        Wire::Ask { of, tally, .. } => {
            // Not again if a round began since that tally: the asker hears it after it.
            let told_since = shared.tallied_before_round.load(Ordering::Relaxed) >= tally;
            if of == shared.node.number() && !told_since {
                shared.tell_everyone();
            }
        }
        Wire::Telling { node, round } => shared.roster.lock().unwrap().telling(node, round),
        Wire::Told {
            node,
            round,
            sessions,
        } => {
            let gone = shared.roster.lock().unwrap().told(node, round, sessions);
            presence::gone(shared, hub, gone);
        }
        Wire::Alerts {
            node,
            name,
            report,
            items,
            last,
        } => alerts::heard_report(shared, node, &name, report, items, last),
        Wire::Call {
            node,
            to,
            call,
            name,
            asked,
        } => {
            if to.contains(&shared.node.number()) {
                alerts::heard_call(shared, hub, node, call, &name, asked);
            }
        }
        Wire::Answer {
            node,
            to,
            call,
            status,
            error,
        } => {
            if to == shared.node.number() {
                alerts::heard_answer(shared, hub, node, call, status, error)?;
            }
        }
        Wire::Gone { node } => {
            // A node says goodbye only when shut down: its users leave as a single node's
            // do then, not as lost.
            let gone = shared.roster.lock().unwrap().gone(node);
            presence::left(shared, hub, gone, &LeaveReason::ServerShutdown);
        }
    }
    Ok(())
}

/// This node's message or post `entry`, heard here already, came back from Redis: its
/// speaker is acked, after what was heard before it (`heard`).
pub(super) fn relayed(hub: &Hub, entry: &Wire, heard: &mut Vec<Publication>) {
    if let Some(id) = entry.entry_id() {
        hub.receive_all(std::mem::take(heard));
        hub.relayed(vec![id]);
    }
}

/// Session `session` of `node` is as told (`again` and `round` as [`Wire::Present`] has
/// them): the roster takes it, and the members here hear what changed.
fn present(
    shared: &Shared,
    hub: &Hub,
    node: u16,
    session: wire::SessionState,
    again: bool,
    round: u64,
) -> Result<(), String> {
    let wire::SessionState {
        session,
        nick,
        rooms,
        ops,
        voiced,
        away,
        account,
        signon,
        user,
        realname,
        oper,
        invisible,
        spoke,
    } = session;
    let id = SessionId::from_bits(session);
    if id.node().number() != node {
        return Err(format!("session {session} is not of node {node}"));
    }
    let nick = wire::nick(&nick)?;
    let rooms = rooms
        .iter()
        .map(|r| {
            let standing = Standing::of(ops.contains(r), voiced.contains(r));
            Ok((wire::room(r)?, standing))
        })
        .collect::<Result<Vec<(RoomName, Standing)>, String>>()?;
    let names: Vec<RoomName> = rooms.iter().map(|(r, _)| r.clone()).collect();
    let profile = Profile {
        away: away.as_deref().and_then(MessageText::new),
        account: account.as_deref().map(wire::nick).transpose()?,
        user: user.as_deref().and_then(crate::protocol::irc::user_name),
        // Cut as this node cuts its own, whatever another program published.
        realname: realname
            .as_deref()
            .and_then(MessageText::new)
            .and_then(|r| r.cut(crate::limits::REALNAMELEN)),
        oper,
        signon,
        invisible,
        spoke,
    };
    let told = presence::Told {
        nick: nick.clone(),
        rooms: names,
        away: profile.away.clone(),
        account: profile.account.clone(),
    };
    let remote = Remote {
        node,
        nick,
        rooms,
        profile,
    };
    let old = shared.roster.lock().unwrap().present(id, remote, round);
    if old.is_none() {
        shared.count_peak();
    }
    presence::announce(shared, hub, old, told, again);
    Ok(())
}

/// Messages not relayed (`wire` a [`Wire::Lost`], `seq` the last of their numbers): a
/// `gap` for the room's members here.
pub(super) fn lost_publication(seq: u64, wire: Wire) -> Result<Publication, String> {
    let Wire::Lost { room, count, .. } = wire else {
        return Err("not messages lost".to_string());
    };
    let room = wire::room(&room)?;
    let gap = Event::Gap {
        room: room.clone(),
        from: seq.saturating_sub(count.saturating_sub(1)),
        to: seq,
        cause: GapCause::NotRelayed,
    };
    Ok(Publication {
        room,
        event: gap,
        except: None,
    })
}

/// A room message or post as published (`wire` a [`Wire::Said`] or [`Wire::Posted`], `seq`
/// its number), for the hub: one of this node's own messages is not heard back by the
/// session that said it.
pub(super) fn said_publication(
    shared: &Shared,
    seq: u64,
    wire: Wire,
) -> Result<Publication, String> {
    let own = wire.node() == shared.node.number();
    if let Wire::Posted {
        room,
        id,
        ts,
        source,
        alert,
        text,
        fields,
        ..
    } = wire
    {
        let room = wire::room(&room)?;
        let posted = Posted {
            id,
            seq,
            ts,
            room: room.clone(),
            notice: Arc::new(wire::notice(&source, alert, &text, fields)?),
        };
        return Ok(Publication {
            room,
            event: Event::Posted(posted),
            except: None,
        });
    }
    let Wire::Said {
        room,
        id,
        ts,
        from,
        text,
        action,
        notice,
        by,
        account,
        tags,
        ..
    } = wire
    else {
        return Err("not a room message or post".to_string());
    };
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
        account: account.as_deref().map(wire::nick).transpose()?,
        tags: wire::tags(tags.as_deref())?,
    };
    Ok(Publication {
        room,
        event: Event::Message(said),
        except: own.then(|| SessionId::from_bits(by)),
    })
}
