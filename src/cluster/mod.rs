//! Several charla nodes behaving as one server, through Redis (`--cluster redis://…`).
//!
//! The hub reaches the other nodes only through its [`Bus`] and [`Directory`]; this module
//! implements both. A room message is one Redis call (a script that numbers it in its room
//! and publishes it on the cluster's channel); every node, the speaker's included, hears
//! it from the channel in Redis's one order and fans it out to its own members. Joins,
//! leaves and presence go on the same channel, and so do changes to what a room keeps
//! (its topic, modes, bans: a hash per room in Redis, [`room_state`]); accounts are kept
//! in Redis too ([`accounts`]). Nicks are claimed
//! in Redis, valid while the
//! claiming node's key lives; each node refreshes its key with its heartbeat. docs/cluster.md
//! says what is shared and what is not yet.

mod accounts;
mod alerts;
#[cfg(test)]
mod back_tests;
mod leases;
mod link;
mod once;
mod outage;
mod presence;
mod reach;
mod recover;
mod room_state;
mod roster;
mod tally;
mod wire;

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection, PubSubStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::hub::SessionId;
use crate::hub::{AccountStore, KeptRoom, RoomChange, Standing, Whois};
use crate::hub::{
    Bus, BusFull, DirectSender, Directory, Event, Hub, MAX_NODES, Nick, NodeId, NoticeTarget,
    Publication, RoomName, Undelivered,
};
use crate::hub::{Others, Profile, Seen, WhoEntry, WhoMask};
use crate::limits::{
    CLUSTER_DEPARTED_KEPT, CLUSTER_NODE_TIMEOUT, CLUSTER_RETRY_MAX, CLUSTER_RETRY_MIN,
    MAX_INVITES_PER_ROOM,
};
use once::Once;
use outage::Outage;
use roster::Roster;
use tally::NodeTally;
use wire::Wire;

pub use reach::JoinError;

/// Where everything of a cluster is kept in Redis.
const PREFIX: &str = "charla:";

/// What waits to be sent to Redis.
enum Out {
    /// A room message or a feed's post, to be numbered and published.
    Said(Publication),
    /// One said while Redis was out of reach, or sent in a pipeline that failed,
    /// published once it is back.
    Late(outage::Held),
    /// Messages of a room past what an outage holds: a `gap` for the other nodes.
    Lost(RoomName, u64),
    /// Anything else, published as it is.
    Publish(Wire),
    /// Something for a session of another node (a private message, tags, an invitation)
    /// from `.0` here: its sender is told, which it was, if it is lost on the way.
    Direct(DirectSender, Wire),
    /// Every session here told anew, as round `round` ([`Shared::tell_everyone`]): in
    /// batches ([`Wire::Presents`]) when every live node reads them, else one
    /// [`Wire::Present`] each; serialized by the task that sends to Redis.
    Round {
        round: u64,
        sessions: Vec<wire::SessionState>,
        batched: bool,
    },
    /// Changes to what a room keeps, and their publication ([`Wire::RoomKept`]).
    Room(RoomName, Wire),
    /// A nick taken or given up by a session here.
    Claim(Nick, SessionId),
    Release(Nick, SessionId),
    /// A room made here by a session (logged in to an account, or not) that is its
    /// operator, if no other node's user made it at the same moment.
    Found(RoomName, SessionId, Option<Nick>),
    /// A room with no member here any more: anyone may found it again.
    Ended(RoomName),
    /// A room made here at this time (ms since the Unix epoch), when the cluster did not
    /// say when it was first made: kept unless another node's time is.
    Made(RoomName, u64),
    /// Redis is back ([`link::rejoin`]): what was held is sent from here, before anything
    /// queued after.
    Resume,
}

impl Out {
    /// Whether it is part of the one order every node hears a room's messages and changes
    /// in: while anything is held ([`outage`]) it is held too, never sent before it.
    fn is_ordered(&self) -> bool {
        match self {
            Out::Said(_) | Out::Late(_) | Out::Lost(..) => true,
            Out::Room(..) | Out::Found(..) | Out::Ended(_) | Out::Made(..) => true,
            Out::Publish(wire) => wire.is_room_event(),
            Out::Direct(..) | Out::Claim(..) | Out::Release(..) => false,
            Out::Round { .. } | Out::Resume => false,
        }
    }
}

/// A session of this node, as the other nodes are told it.
struct Local {
    nick: Nick,
    rooms: Vec<(RoomName, Standing)>,
    profile: Profile,
}

impl Local {
    /// Its digests, as the others' tallies count them ([`tally`]).
    fn digests(&self, id: SessionId) -> tally::Digests {
        tally::Digests::of(id.bits(), &self.nick, &self.rooms, &self.profile)
    }
}

/// The sessions of this node, and their tally ([`tally`]), kept as they change.
#[derive(Default)]
struct Locals {
    sessions: HashMap<SessionId, Local>,
    tally: NodeTally,
}

impl Locals {
    fn insert(&mut self, id: SessionId, local: Local) {
        self.remove(id);
        self.tally.add(local.digests(id));
        self.sessions.insert(id, local);
    }

    fn remove(&mut self, id: SessionId) -> Option<Local> {
        let local = self.sessions.remove(&id)?;
        self.tally.remove(local.digests(id));
        Some(local)
    }

    /// Applies `change` to session `id`, if it is here.
    fn change(&mut self, id: SessionId, change: impl FnOnce(&mut Local)) {
        if let Some(local) = self.sessions.get_mut(&id) {
            let before = local.digests(id);
            change(local);
            self.tally.change(before, local.digests(id));
        }
    }
}

struct Shared {
    node: NodeId,
    /// Tells this run of the node from an earlier one with the same number.
    run: String,
    reachable: AtomicBool,
    /// The other nodes went out of reach since the sender last looked: its own
    /// connection may have died with Redis, unnoticed until used. The sender drops it and
    /// holds what is ordered until Redis is back, rather than find out by failing the
    /// first pipeline after (and telling every user delivery was interrupted again).
    stale: AtomicBool,
    /// Redis has the message script ([`link`]'s `SAID`) on the connection's current run.
    scripts_loaded: AtomicBool,
    outbox: mpsc::Sender<Out>,
    roster: Mutex<Roster>,
    local: Mutex<Locals>,
    /// What was said here while Redis was out of reach.
    outage: Mutex<Outage>,
    /// Messages heard here that Redis may carry again ([`once`]).
    once: Mutex<Once>,
    /// A message of this node fell back ([`once`]): its own messages coming back are
    /// looked up there; until then none is, on the path of every message.
    fell_back: AtomicBool,
    /// The newest of this node's messages (by id, minted in the order said) in a pipeline
    /// Redis answered: one of them still owed its `ack` once the node is back and has
    /// read the backlogs was lost with Redis (`link::hear`).
    answered: AtomicU64,
    /// Every room's kept state as Redis has it ([`room_state`]), as last heard.
    rooms: Mutex<HashMap<RoomName, room_state::Fields>>,
    /// What `charla:epoch` held when last read: another value means Redis lost its keys
    /// meanwhile ([`recover`]).
    epoch: Mutex<Option<String>>,
    /// Another run holds this node's number in Redis (it started while this node was cut
    /// off and Redis had lost the key): this node stops rather than be a second node under
    /// one number, whose ids and sessions the others would mix up ([`Cluster::displaced`]).
    displaced: CancellationToken,
    /// The rooms founded here and not let go, and by whom: claimed again after Redis lost
    /// its keys (`recover`), so that a room made meanwhile on a node that was cut off is not
    /// founded twice.
    founded: Mutex<HashMap<RoomName, SessionId>>,
    /// The most sessions of the whole cluster known at once (LUSERS's `266`).
    peak: AtomicUsize,
    /// Messages and posts refused since the node started, the queue to Redis being full.
    refused: AtomicU64,
    /// When the others were last told who spoke here (`link::report_activity`), ms since
    /// the Unix epoch.
    reported: AtomicU64,
    /// How many times this node has told all its sessions anew ([`Shared::tell_everyone`]).
    rounds: AtomicU64,
    /// How many tallies this node has published ([`Shared::tell_tally`]), and how many it
    /// had when it last told all its sessions anew: a round asked for after a tally
    /// ([`Wire::Ask`]) is not told again if one began since. Both changed under `local`'s
    /// lock.
    tallies: AtomicU64,
    tallied_before_round: AtomicU64,
    /// Sessions here that ended lately, and when ([`Shared::depart`]).
    departed: Mutex<VecDeque<(Instant, SessionId)>>,
    /// Invitations of sessions here by operators of other nodes, not used yet: at most
    /// [`MAX_INVITES_PER_ROOM`] each, the oldest forgotten first.
    invites: Mutex<HashMap<SessionId, Vec<RoomName>>>,
    /// This node's name (`--node-name`), as its checks and heartbeats are marked.
    name: String,
    /// The other nodes' checks and heartbeats, and the calls to them waiting ([`alerts`]).
    alerts: Mutex<alerts::Alerts>,
    /// A check or heartbeat of this node changed: the others are told soon.
    alerts_changed: tokio::sync::Notify,
    /// A call to other nodes was sent: its deadline is watched.
    called: tokio::sync::Notify,
    /// Which of this node's checks and heartbeats it runs for the cluster ([`leases`]).
    leases: Mutex<leases::Leases>,
}

impl Shared {
    /// Node `node` in run `run`, sending to Redis through `outbox`; not reachable until
    /// it has told the others who it is ([`link::back`]).
    fn new(node: NodeId, run: String, name: String, outbox: mpsc::Sender<Out>) -> Shared {
        Shared {
            node,
            run,
            reachable: AtomicBool::new(false),
            scripts_loaded: AtomicBool::new(false),
            outbox,
            roster: Mutex::default(),
            local: Mutex::default(),
            outage: Mutex::default(),
            once: Mutex::default(),
            fell_back: AtomicBool::new(false),
            stale: AtomicBool::new(false),
            answered: AtomicU64::new(0),
            rooms: Mutex::default(),
            epoch: Mutex::default(),
            displaced: CancellationToken::new(),
            founded: Mutex::default(),
            peak: AtomicUsize::new(0),
            refused: AtomicU64::new(0),
            reported: AtomicU64::new(now_ms()),
            invites: Mutex::default(),
            departed: Mutex::default(),
            rounds: AtomicU64::new(0),
            tallies: AtomicU64::new(0),
            tallied_before_round: AtomicU64::new(0),
            name,
            alerts: Mutex::default(),
            alerts_changed: tokio::sync::Notify::new(),
            called: tokio::sync::Notify::new(),
            leases: Mutex::default(),
        }
    }

    fn send(&self, out: Out) -> bool {
        match self.outbox.try_send(out) {
            Ok(()) => true,
            Err(_) => {
                tracing::warn!("the queue to Redis is full; not sent to the other nodes");
                false
            }
        }
    }

    /// The nicks let go here while Redis was out of reach ([`Outage::released`]), to let
    /// go in Redis now; none a session here holds again (its claim is sent anew).
    fn held_releases(&self) -> Vec<Out> {
        let released = std::mem::take(&mut self.outage.lock().unwrap().released);
        let local = self.local.lock().unwrap();
        released
            .into_iter()
            .filter(|(nick, id)| local.sessions.get(id).is_none_or(|l| l.nick != *nick))
            .map(|(nick, id)| Out::Release(nick, id))
            .collect()
    }

    /// Applies `change` to session `id` here and tells the others what it is now, as it is
    /// at this moment, so that every change is heard even when several wait to be sent.
    fn change_presence(&self, id: SessionId, change: impl FnOnce(&mut Local)) {
        let mut local = self.local.lock().unwrap();
        local.change(id, change);
        self.queue_presence(&local, id);
    }

    /// Queues what session `id` here is now in `local`, under the lock of `local`: a
    /// presence told anew by another task (to a node that joined) is queued wholly before
    /// or after a change, never an older state after it, which would have the others
    /// announce a join twice; and a tally ([`Shared::tell_tally`]) counts the sessions as
    /// the presences queued before it tell them.
    ///
    /// Nothing is queued while Redis is out of reach: the round told on return
    /// ([`link::back`]) tells each session as it is then, and those that ended as gone
    /// ([`Shared::tell_departed`]). A change queued meanwhile could still reach Redis once
    /// it is back (its connection made again as it waits), a step of what happened told
    /// late: a user's quit, for one, as a leave of each of its rooms (`left (left)`).
    fn queue_presence(&self, local: &Locals, id: SessionId) {
        if !self.reachable.load(Ordering::Relaxed) {
            return;
        }
        let node = self.node.number();
        let wire = match local.sessions.get(&id) {
            Some(session) => Wire::Present {
                node,
                session: self.session(id, session),
                again: false,
                round: 0,
            },
            None => Wire::Absent {
                node,
                session: id.bits(),
                again: false,
            },
        };
        self.send(Out::Publish(wire));
    }

    /// What the others are told of session `id` here.
    fn session(&self, id: SessionId, session: &Local) -> wire::SessionState {
        let Local {
            nick,
            rooms,
            profile,
        } = session;
        wire::SessionState {
            session: id.bits(),
            nick: nick.as_str().to_string(),
            rooms: rooms.iter().map(|(r, _)| r.as_str().to_string()).collect(),
            ops: names_where(rooms, Standing::is_op),
            voiced: names_where(rooms, Standing::is_voiced),
            away: profile.away.as_ref().map(|a| a.as_str().to_string()),
            account: profile.account.as_ref().map(|a| a.as_str().to_string()),
            signon: profile.signon,
            user: profile.user.as_deref().map(str::to_string),
            realname: profile.realname.as_ref().map(|r| r.as_str().to_string()),
            oper: profile.oper,
            invisible: profile.invisible,
            spoke: profile.spoke,
        }
    }

    /// Tells the others every session here anew (after an outage, to a node that joined,
    /// or asked by one whose copy differed from a tally), as one numbered round between
    /// [`Wire::Telling`] and [`Wire::Told`]: a node that hears it whole forgets the
    /// sessions of this node it knew and the round did not name, however long ago they
    /// ended. Queued wholly under the lock, so that no change here falls between its start
    /// and its sessions; in batches of sessions when every live node reads them.
    fn tell_everyone(&self) {
        let batched = {
            let roster = self.roster.lock().unwrap();
            roster.all_read(wire::PRESENCE_FORMS)
        };
        let local = self.local.lock().unwrap();
        let round = self.rounds.fetch_add(1, Ordering::Relaxed) + 1;
        let tallies = self.tallies.load(Ordering::Relaxed);
        self.tallied_before_round.store(tallies, Ordering::Relaxed);
        let sessions = local
            .sessions
            .iter()
            .map(|(id, session)| self.session(*id, session))
            .collect();
        self.send(Out::Round {
            round,
            sessions,
            batched,
        });
    }

    /// Tells the others how many sessions this node has and their digests ([`tally`]),
    /// when every live node reads it: queued under the lock of the sessions, after every
    /// presence told before, so that a node that heard those has the same.
    fn tell_tally(&self) {
        if !self.reachable.load(Ordering::Relaxed)
            || !self.roster.lock().unwrap().all_read(wire::PRESENCE_FORMS)
        {
            return;
        }
        let local = self.local.lock().unwrap();
        let tally = self.tallies.fetch_add(1, Ordering::Relaxed) + 1;
        self.send(Out::Publish(Wire::Tally {
            node: self.node.number(),
            tally,
            sessions: local.tally.sessions,
            digest: local.tally.digest,
            profiles: Some(local.tally.profiles),
        }));
    }

    /// Session `id` here ended: remembered for a while, to be told again after an outage
    /// that may have lost its `Absent` ([`Shared::tell_departed`]).
    fn depart(&self, id: SessionId) {
        let mut departed = self.departed.lock().unwrap();
        self.forget_departed(&mut departed);
        if departed.len() >= CLUSTER_DEPARTED_KEPT {
            departed.pop_front();
        }
        departed.push_back((Instant::now(), id));
    }

    /// While Redis is reachable, the sessions that ended more than twice
    /// [`CLUSTER_NODE_TIMEOUT`] ago are forgotten: a pipeline fails within its response
    /// timeout, so their `Absent` was heard, or its failure made Redis out of reach and
    /// they were told again on its return. Kept as long as Redis is not.
    fn forget_departed(&self, departed: &mut VecDeque<(Instant, SessionId)>) {
        if !self.reachable.load(Ordering::Relaxed) {
            return;
        }
        let now = Instant::now();
        while departed
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > 2 * CLUSTER_NODE_TIMEOUT)
        {
            departed.pop_front();
        }
    }

    /// Back in touch after an outage (`returning`), or asked by a node that (re)joined:
    /// the sessions here that ended lately are told gone again ([`Wire::Absent`]'s
    /// `again`), so that a node that missed it announces their leaving and forgets them.
    /// On return every one kept through the outage is told, and kept as long again from
    /// now, however long ago it ended: what told it before may have been lost.
    fn tell_departed(&self, returning: bool) {
        let mut departed = self.departed.lock().unwrap();
        if returning {
            let now = Instant::now();
            departed.iter_mut().for_each(|(at, _)| *at = now);
        } else {
            self.forget_departed(&mut departed);
        }
        for (_, id) in departed.iter() {
            self.send(Out::Publish(Wire::Absent {
                node: self.node.number(),
                session: id.bits(),
                again: true,
            }));
        }
    }

    /// A session arrived, here or elsewhere: the most known at once may be more.
    fn count_peak(&self) {
        let here = self.local.lock().unwrap().sessions.len();
        let (elsewhere, _, _) = self.roster.lock().unwrap().counts();
        self.peak.fetch_max(here + elsewhere, Ordering::Relaxed);
    }

    fn node_key(&self) -> String {
        format!("{PREFIX}node:{}", self.node.number())
    }

    /// The other nodes heard within the node timeout.
    fn live_nodes(&self) -> Vec<u16> {
        self.roster.lock().unwrap().live()
    }
}

/// A node of a cluster: connected to its Redis, with a number of its own.
pub struct Cluster {
    shared: Arc<Shared>,
    redis: ConnectionManager,
    /// The connection messages are sent on ([`link`]'s sender).
    conn: MultiplexedConnection,
    client: redis::Client,
    queue: mpsc::Receiver<Out>,
    /// The subscription made on joining, so that nothing published from the start is
    /// missed.
    subscription: PubSubStream,
    name: String,
}

impl Cluster {
    /// Connects to the Redis at `url` and claims the lowest free node number. `name` is
    /// what logs call this node; `outbox` is how much may wait to be sent to Redis
    /// ([`crate::limits::CLUSTER_OUTBOX`] by default).
    pub async fn join(
        url: &str,
        name: Option<String>,
        outbox: usize,
    ) -> Result<Cluster, JoinError> {
        let unreachable = |source| JoinError::of(url, source);
        let client = redis::Client::open(url).map_err(unreachable)?;
        reach::probe(&client, url).await?;
        let config = ConnectionManagerConfig::new()
            .set_min_delay(CLUSTER_RETRY_MIN)
            .set_max_delay(CLUSTER_RETRY_MAX)
            .set_connection_timeout(Some(CLUSTER_NODE_TIMEOUT))
            .set_response_timeout(Some(CLUSTER_NODE_TIMEOUT));
        let mut redis = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(unreachable)?;
        let run = format!("{:016x}", RandomState::new().hash_one(std::process::id()));
        let ttl = CLUSTER_NODE_TIMEOUT.as_millis() as u64;
        let mut node = None;
        for n in 1..MAX_NODES {
            let set: Option<String> = redis::cmd("SET")
                .arg(format!("{PREFIX}node:{n}"))
                .arg(&run)
                .arg("NX")
                .arg("PX")
                .arg(ttl)
                .query_async(&mut redis)
                .await
                .map_err(unreachable)?;
            if set.is_some() {
                node = NodeId::new(n);
                break;
            }
        }
        let node = node.ok_or(JoinError::Full)?;
        let subscription = link::subscribe(&client).await.map_err(unreachable)?;
        let conn = link::connect(&client).await.map_err(unreachable)?;
        let name = name.unwrap_or_else(|| format!("node-{}", node.number()));
        let url = reach::shown(url);
        tracing::info!(node = node.number(), %name, url, "joined the cluster");
        let (outbox, queue) = mpsc::channel(outbox.max(1));
        let shared = Arc::new(Shared::new(node, run, name.clone(), outbox));
        // Nothing is held yet: the sender starts sending.
        shared.reachable.store(true, Ordering::Relaxed);
        link::tell_back(&shared);
        Ok(Cluster {
            shared,
            redis,
            conn,
            client,
            queue,
            subscription,
            name,
        })
    }

    /// This node's number: the ids it mints carry it.
    pub fn node(&self) -> NodeId {
        self.shared.node
    }

    /// Cancelled when another run took this node's number while it was cut off from
    /// Redis: the server is to stop, saying so, and be started again to take a free one.
    pub fn displaced(&self) -> CancellationToken {
        self.shared.displaced.clone()
    }

    pub fn bus(&self) -> Arc<dyn Bus> {
        Arc::new(ClusterBus(self.shared.clone()))
    }

    /// Where the cluster's accounts are kept: in its Redis, for every node.
    pub fn accounts(&self) -> Arc<dyn AccountStore> {
        Arc::new(accounts::RedisAccounts::new(
            self.client.clone(),
            Some(self.shared.clone()),
        ))
    }

    pub fn directory(&self) -> Arc<dyn Directory> {
        Arc::new(ClusterDirectory(self.shared.clone()))
    }

    /// Starts carrying `hub`'s publications to the other nodes and theirs to it, until
    /// `shutdown`; returns when the node has told the others it is gone.
    pub fn start(self, hub: Hub, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        hub.set_peers(Arc::new(alerts::Peers(self.shared.clone())));
        tokio::spawn(alerts::run(
            self.shared.clone(),
            hub.clone(),
            shutdown.clone(),
        ));
        let leases = tokio::spawn(leases::run(
            self.shared.clone(),
            self.redis.clone(),
            shutdown.clone(),
        ));
        let link = tokio::spawn(link::run(self, hub, shutdown));
        // The node is gone once its leases are let go too, so that another takes its
        // checks and heartbeats over at once.
        tokio::spawn(async move {
            let _ = leases.await;
            let _ = link.await;
        })
    }
}

/// The accounts of the cluster whose Redis is at `url`, for a program that is no node
/// (`charla account add --cluster URL`): an account it creates is published as a node's
/// registration is, so every node protects its nick at once. Asks Redis once first, so a
/// wrong address is told as a node tells it.
pub fn accounts_at(url: &str) -> Result<Arc<dyn AccountStore>, JoinError> {
    let client = redis::Client::open(url).map_err(|source| JoinError::of(url, source))?;
    reach::probe_blocking(&client, url)?;
    Ok(Arc::new(accounts::RedisAccounts::new(client, None)))
}

/// The bus of a node in a cluster.
struct ClusterBus(Arc<Shared>);

impl Bus for ClusterBus {
    fn publish(&self, publication: Publication) -> Option<Publication> {
        let shared = &self.0;
        debug_assert!(
            outage::proposed(&publication.event).is_none(),
            "messages go through publish_numbered"
        );
        if !shared.reachable.load(Ordering::Relaxed) {
            // What operators did is told to the other nodes once Redis is back, with the
            // changes it made (`share_room`: held until then by the sender, in order);
            // joins and leaves are not: presence is rebuilt then.
            if let Some(wire) = Wire::of(shared.node, &publication).filter(Wire::is_room_event) {
                shared.send(Out::Publish(wire));
            }
            return Some(publication);
        }
        if let Some(wire) = Wire::of(shared.node, &publication) {
            shared.send(Out::Publish(wire));
        }
        Some(publication)
    }

    fn publish_numbered(&self, publication: Publication) -> Result<Option<Publication>, BusFull> {
        let shared = &self.0;
        // Heard here too only when Redis hands it back, numbered, or when the sender holds
        // it (Redis out of reach: [`link`]), in the order said either way; one the queue
        // cannot take is refused rather than heard here only, which the other nodes would
        // miss.
        match shared.outbox.try_send(Out::Said(publication)) {
            Ok(()) => Ok(None),
            Err(_) => {
                // Logged at the 1st, 2nd, 4th, 8th… so a flood of them is not a flood of logs.
                let refused = shared.refused.fetch_add(1, Ordering::Relaxed) + 1;
                if refused.is_power_of_two() {
                    tracing::warn!(
                        refused,
                        "the queue to Redis is full: messages refused, their senders told store_unavailable"
                    );
                }
                Err(BusFull)
            }
        }
    }

    fn numbers_messages(&self) -> bool {
        true
    }

    fn share_room(&self, room: &RoomName, changes: Vec<RoomChange>) {
        self.0.share_room(room, &changes);
    }

    fn found(&self, room: &RoomName, founder: SessionId, account: Option<Nick>) {
        self.0.founded.lock().unwrap().insert(room.clone(), founder);
        self.0.send(Out::Found(room.clone(), founder, account));
    }

    fn made(&self, room: &RoomName, created: u64) {
        self.0.send(Out::Made(room.clone(), created));
    }

    fn ended(&self, room: &RoomName) {
        self.0.founded.lock().unwrap().remove(room);
        // Held through an outage, after the founding it ends: a claim now lasts until let go.
        self.0.send(Out::Ended(room.clone()));
    }

    fn direct(&self, from: DirectSender, to: SessionId, event: Event) -> Result<(), Undelivered> {
        let shared = &self.0;
        // Refused rather than held through an outage as a room message is: who the nick
        // names by the time Redis is back (gone, renamed, someone else) cannot be known
        // now, and a room keeps history for late readers where a person does not.
        if !shared.reachable.load(Ordering::Relaxed) {
            return Err(Undelivered::OutOfReach);
        }
        let node = shared.node.number();
        let wire = match event {
            Event::Invited { room, nick, by, .. } => Wire::Invite {
                node,
                to: to.bits(),
                room: room.as_str().to_string(),
                nick: nick.as_str().to_string(),
                by: by.as_str().to_string(),
            },
            Event::Private {
                id,
                ts,
                from,
                to: nick,
                text,
                notice,
                account,
                tags,
            } => Wire::Private {
                node,
                to: to.bits(),
                id,
                ts,
                from: from.as_str().to_string(),
                nick: nick.as_str().to_string(),
                text: text.as_str().to_string(),
                notice,
                account: account.map(|a| a.as_str().to_string()),
                tags: tags.map(|t| t.as_str().to_string()),
            },
            Event::TagsOnly {
                id,
                ts,
                from,
                account,
                to: NoticeTarget::Nick(nick),
                tags,
            } => Wire::Tagged {
                node,
                room: None,
                to: to.bits(),
                nick: Some(nick.as_str().to_string()),
                id,
                ts,
                from: from.as_str().to_string(),
                account: account.map(|a| a.as_str().to_string()),
                tags: tags.as_str().to_string(),
            },
            _ => return Ok(()),
        };
        match shared.send(Out::Direct(from, wire)) {
            true => Ok(()),
            false => Err(Undelivered::Full),
        }
    }
}

/// The directory of a node in a cluster: the roster of the others, and this node's own
/// sessions told to them.
struct ClusterDirectory(Arc<Shared>);

impl ClusterDirectory {
    fn local(&self, id: SessionId, change: impl FnOnce(&mut Local)) {
        self.0.change_presence(id, change);
    }
}

impl Directory for ClusterDirectory {
    fn holder(&self, nick: &Nick) -> Option<SessionId> {
        self.0.roster.lock().unwrap().holder(nick)
    }

    fn claimed(&self, nick: &Nick, owner: SessionId) {
        let session = Local {
            nick: nick.clone(),
            rooms: Vec::new(),
            profile: Profile {
                signon: now_ms(),
                spoke: now_ms(),
                ..Profile::default()
            },
        };
        self.0.send(Out::Claim(nick.clone(), owner));
        {
            // Its presence queued under the same hold as it is counted (a tally between
            // them would count it before the others could).
            let mut local = self.0.local.lock().unwrap();
            local.insert(owner, session);
            self.0.queue_presence(&local, owner);
        }
        self.0.count_peak();
    }

    fn released(&self, nick: &Nick, owner: SessionId) {
        self.0.invites.lock().unwrap().remove(&owner);
        self.0.send(Out::Release(nick.clone(), owner));
        {
            let mut local = self.0.local.lock().unwrap();
            local.remove(owner);
            self.0.queue_presence(&local, owner);
        }
        self.0.depart(owner);
    }

    fn renamed(&self, old: &Nick, new: &Nick, owner: SessionId) {
        self.0.send(Out::Release(old.clone(), owner));
        self.0.send(Out::Claim(new.clone(), owner));
        self.local(owner, |local| local.nick = new.clone());
    }

    fn joined(&self, room: &RoomName, id: SessionId, standing: Standing) {
        if let Some(invites) = self.0.invites.lock().unwrap().get_mut(&id) {
            invites.retain(|r| r != room);
        }
        self.local(id, |local| local.rooms.push((room.clone(), standing)));
    }

    fn standing(&self, room: &RoomName, id: SessionId, standing: Standing) {
        self.local(id, |local| {
            for (r, s) in &mut local.rooms {
                if r == room {
                    *s = standing;
                }
            }
        });
    }

    fn parted(&self, room: &RoomName, id: SessionId) {
        self.local(id, |local| local.rooms.retain(|(r, _)| r != room));
    }

    fn members(&self, room: &RoomName) -> Vec<WhoEntry> {
        self.0.roster.lock().unwrap().members(room)
    }

    fn matching(&self, mask: &WhoMask, seen: Seen<'_>, limit: usize) -> Vec<WhoEntry> {
        self.0.roster.lock().unwrap().matching(mask, seen, limit)
    }

    fn count(&self, room: &RoomName) -> usize {
        self.0.roster.lock().unwrap().count(room)
    }

    fn rooms(&self) -> Vec<(RoomName, usize)> {
        self.0.roster.lock().unwrap().rooms()
    }

    fn profile(&self, id: SessionId, profile: Profile) {
        self.local(id, |local| local.profile = profile);
    }

    fn opers(&self) -> usize {
        self.0.roster.lock().unwrap().opers()
    }

    fn others(&self) -> Others {
        let (users, invisible, nodes) = self.0.roster.lock().unwrap().counts();
        Others {
            users,
            invisible,
            nodes,
            peak: self.0.peak.load(Ordering::Relaxed),
        }
    }

    fn whois(&self, nick: &Nick) -> Option<Whois> {
        let roster = self.0.roster.lock().unwrap();
        let remote = roster.remote(nick)?;
        Some(Whois {
            nick: remote.nick.clone(),
            rooms: remote.rooms.clone(),
            away: remote.profile.away.clone(),
            user: remote.profile.user.clone(),
            realname: remote.profile.realname.clone(),
            account: remote.profile.account.clone(),
            oper: remote.profile.oper,
            signon: remote.profile.signon,
            idle: remote.profile.idle_ms(),
        })
    }

    fn kept_room(&self, room: &RoomName) -> Option<KeptRoom> {
        let rooms = self.0.rooms.lock().unwrap();
        rooms.get(room).map(|fields| room_state::kept(room, fields))
    }

    fn invited(&self, room: &RoomName, id: SessionId) -> bool {
        let invites = self.0.invites.lock().unwrap();
        invites.get(&id).is_some_and(|rooms| rooms.contains(room))
    }
}

/// The rooms of `rooms` where a session's standing is `is`, as the wire names them.
fn names_where(rooms: &[(RoomName, Standing)], is: fn(Standing) -> bool) -> Vec<String> {
    rooms
        .iter()
        .filter(|(_, standing)| is(*standing))
        .map(|(room, _)| room.as_str().to_string())
        .collect()
}

impl Shared {
    /// Session `id` here was invited into `room` by an operator of another node.
    fn invite(&self, id: SessionId, room: RoomName) {
        let mut invites = self.invites.lock().unwrap();
        let rooms = invites.entry(id).or_default();
        rooms.retain(|r| *r != room);
        if rooms.len() >= MAX_INVITES_PER_ROOM {
            rooms.remove(0);
        }
        rooms.push(room);
    }

    /// Hands Redis `changes` to what `room` keeps, for every node.
    fn share_room(&self, room: &RoomName, changes: &[RoomChange]) {
        let (set, del) = room_state::delta(changes);
        let wire = Wire::RoomKept {
            node: self.node.number(),
            room: room.as_str().to_string(),
            set,
            del,
            replace: false,
        };
        self.send(Out::Room(room.clone(), wire));
    }

    /// The account `name` was deleted on this node, as Redis's order has it now: every
    /// room the cluster keeps forgets it ([`crate::hub::forget_account`]), those no node
    /// has made now included, which no hub would otherwise change. From the copy here,
    /// which holds every room's fields as heard up to the deletion.
    fn forget_account(&self, name: &Nick) {
        let changed: Vec<(RoomName, Vec<RoomChange>)> = {
            let rooms = self.rooms.lock().unwrap();
            rooms
                .iter()
                .filter_map(|(room, fields)| {
                    let mut kept = room_state::kept(room, fields);
                    let changes =
                        crate::hub::forget_account(&mut kept.op_accounts, &mut kept.bans, name);
                    (!changes.is_empty()).then(|| (room.clone(), changes))
                })
                .collect()
        };
        for (room, changes) in changed {
            self.share_room(&room, &changes);
        }
    }

    /// `room`'s kept state changed: the copy here follows, and the hub's room takes it.
    fn room_kept(&self, hub: &Hub, room: RoomName, change: room_state::Change) {
        let kept = {
            let mut rooms = self.rooms.lock().unwrap();
            let fields = rooms.entry(room.clone()).or_default();
            room_state::apply(fields, change);
            room_state::kept(&room, fields)
        };
        hub.room_kept(&room, kept);
    }
}

/// Milliseconds since the Unix epoch, as sign-on and activity times are told.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The wait after `failures` failed attempts to reach Redis: doubling from the least to
/// the most.
fn backoff(failures: u32) -> Duration {
    CLUSTER_RETRY_MIN
        .saturating_mul(1 << failures.min(16))
        .min(CLUSTER_RETRY_MAX)
}
