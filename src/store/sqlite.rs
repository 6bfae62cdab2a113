//! Rooms' history in an SQLite file, so a restart replays exactly what was said.
//!
//! The hub appends under its lock, so [`SqliteHistory::append`] never touches the disk: it
//! queues the entry for one writer thread, which commits what has queued up in one
//! commit at a time. A commit appends one record holding its entries, of any rooms, encoded
//! in one blob (`sqlite/chunk.rs`), to the commit file beside the database
//! (`charla.db-commits`, `sqlite/commits.rs`): one write, no transaction. Every
//! [`MERGE_INTERVAL`] the writer moves what it committed into the database's `chunks` table
//! in one transaction (WAL mode, `synchronous = NORMAL`): for each room said in, one row
//! holding that room's entries in its order (`sqlite/chunks.rs`), and the number of the
//! last commit moved; then it writes the commit file from its start again. An entry so
//! costs a share of one row insert and of one index entry, where one row an entry with two
//! room indexes wrote a page of each index for nearly every entry of a busy server
//! (docs/benchmarks.md). The writer keeps what it committed in memory until the move, so
//! the move encodes rather than reads.
//! Until it is in `chunks`, an entry is also held in memory as *pending*, and
//! [`SqliteHistory::recent`] adds the pending entries of the room to what it reads from the
//! file, so a newcomer never misses a line that was said just before it joined. A restart
//! moves what a crash left in the commit file before anything is read. Readers use
//! connections of their own, never the writer's; a read decodes the few rows of a room it
//! needs, newest or oldest first, and a row that cannot be decoded is logged and skipped.
//!
//! Joining asks for a room's history under the hub's lock, where a read from the file
//! (hundreds of microseconds) would hold up everyone. So the newest entries of the rooms
//! people are in are also cached in memory, within the same bounds the memory store
//! keeps (`--history`, `--history-room-bytes`, `--history-bytes`): a room is read from the
//! file once, when first asked for, then kept up to date by appends, and dropped when it
//! empties or when all rooms' cached bytes pass their bound (the rooms cached first go
//! first).
//!
//! An entry appended with an ack owed ([`Owed`]) is acked through the hub's [`AckSink`]
//! only after its commit is written, so an acked message survives the process being
//! killed (`kill -9`). On power loss or an operating-system crash, WAL with `synchronous =
//! NORMAL` may take back the transactions committed since the last checkpoint (the log is
//! synced only then), never the file's consistency, and the commit file (never synced) what
//! was not moved yet: docs/protocol.md says what that means for clients.
//!
//! A room's order is that of its numbers (`seq`), which is the order its entries were
//! appended in; reads by message id (`since`, `before`) select by id in that order, which
//! for one server is the ids' own (in a cluster, ids of several nodes interleave).

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use tracing::{error, warn};

use super::schema::{self, SCHEMA_VERSION};
use crate::fanout::{Level, Ordered};
use crate::hub::{
    AckSink, Entry, FiringAlert, HistoryBounds, HistoryStore, KeptRoom, Nick, NodeId, Owed,
    RoomName, StoreFull, stored_bytes,
};
use chunk::{Names, Row};
use commits::CommitFile;
pub(super) use convert::rows_to_chunks;
use failure_log::FailureLog;
pub(super) use rooms::forget_account;

/// Entries waiting for the writer thread. Past it, an entry is refused: not said, its sender
/// told `store_unavailable`, counted in [`StoreStats::refused`] and logged (at the 1st, 2nd,
/// 4th, 8th… refusal, so a stalled disk does not flood the log). Appending never waits for
/// the disk: it is called under the hub's lock. At the writer's usual pace (tens of
/// thousands of entries a second) the queue fills only when the disk stalls for a second or
/// more.
pub const WRITE_QUEUE: usize = 65_536;

/// Entries the writer commits at once at most; more waiting are committed in the next
/// commit. A commit costs one write to the commit file whatever its size, and a move one
/// transaction: batching is what makes tens of thousands of entries a second cheap.
pub const WRITE_BATCH: usize = 4_096;

/// The least time between the starts of two commits. An entry that arrives after a quiet
/// spell is committed at once; while entries keep coming, the writer gathers them for what
/// is left of this interval, so a busy server pays one transaction per interval rather than
/// one per message, and the writer, which shares the machine's cores with fan-out, wakes
/// less often. An `ack` can wait this much longer under load.
pub const WRITE_INTERVAL: Duration = Duration::from_millis(2);

/// The longest a committed entry waits in the commit file before the writer moves it into
/// `chunks` (see the module documentation). The longer, the more entries of a room share
/// one chunk row and its index entry; an entry waiting is also held in memory, so this
/// bounds that memory along with [`MERGE_ROWS`], and it is as long as an acked entry
/// waits, not synced anywhere, before it is in the database's log (docs/protocol.md). No
/// `ack` waits for it: an entry is acked once its commit is written.
pub const MERGE_INTERVAL: Duration = Duration::from_millis(250);

/// Entries committed and not moved at most: at this many the writer moves them without waiting for
/// [`MERGE_INTERVAL`], so the entries held pending in memory stay within [`WRITE_QUEUE`]
/// plus this, and one move does a bounded amount of work.
pub const MERGE_ROWS: u64 = 16_384;

/// The writer connection's page cache, in KiB (SQLite's default is 2,000 KiB). A move
/// touches the index page holding the newest chunk of every room said in since the last;
/// when those do not fit, each move reads them back from the file. Filled only as the
/// writer touches pages, and then held: a busy server's memory grows by up to this much, a
/// store that is not written to stays small.
pub const WRITER_CACHE_KIB: i64 = 8_192;

/// The page size, in bytes, of a history file made new (SQLite's default is 4,096). The
/// writer's bytes are mostly whole blobs, a commit's and a chunk's: on larger pages they
/// take fewer pages, so fewer log frames (each written on its own) and fewer overflow pages
/// to chain and free. A file made with another page size keeps it (WAL mode cannot change
/// it).
pub const PAGE_SIZE: i64 = 16_384;

/// Bytes of the write-ahead log after which a commit checkpoints it into the file, whatever
/// the file's page size: SQLite counts this in pages (1,000 by default, 4 MB of its default
/// pages), and as many of [`PAGE_SIZE`] would let a power loss take back four times as
/// much (the log is synced only at a checkpoint, docs/protocol.md).
pub const WAL_CHECKPOINT_BYTES: i64 = 4 * 1024 * 1024;

/// Entries each room keeps, counted by the room's numbers (`seq`): what is this many
/// numbers older than the newest is never read, and the writer deletes the chunks holding
/// only such entries in the same transaction that adds new ones (a number lost to a full
/// disk is not made up for). Kept for ever otherwise (also after the room empties and
/// across restarts). What a newcomer is replayed is the newest of them, bounded by
/// `--history` and `--history-room-bytes` as before. Default 10,000 (`--history-keep`).
pub const DISK_HISTORY_PER_ROOM: usize = 10_000;

/// Entries the file keeps in all rooms together; past it the writer deletes the oldest
/// chunks of any room, after the move that passed it, until at most this many are left. Rooms end when they empty but their history
/// stays, so without this bound a file would grow with every room ever made. Default
/// 10,000,000, a few GB (`--history-keep-total`).
pub const DISK_HISTORY_TOTAL: usize = 10_000_000;

/// How often the writer deletes what is older than `--history-age`, when one is given:
/// after a commit or, when nothing is said, on its own.
const EXPIRE_EVERY: Duration = Duration::from_secs(60);

/// How long a connection waits for another that holds the file's lock (another process
/// reading the file, a backup) before its statement fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Idle reader connections kept open for the next read; more are opened when readers
/// overlap, and closed after use.
const IDLE_READERS: usize = 4;

/// Why the history file could not be used; `charla serve` stops with it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot use the history database {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "the history database {path} has schema version {found}, newer than this charla's {SCHEMA_VERSION}: use a newer charla or another --data"
    )]
    NewerSchema { path: PathBuf, found: i64 },
    #[error(
        "the history database {path} is in use by another charla: stop it, or give this one another --data (or --data none)"
    )]
    InUse { path: PathBuf },
    #[error("cannot open the history database {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the history writer: {0}")]
    Thread(#[from] std::io::Error),
}

/// How a [`SqliteHistory`] is set up; `Default` is what `charla serve` uses.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// What is replayed: `--history`, `--history-room-bytes`.
    pub bounds: HistoryBounds,
    /// Entries a room keeps on disk ([`DISK_HISTORY_PER_ROOM`]).
    pub keep_per_room: usize,
    /// Entries all rooms keep on disk together ([`DISK_HISTORY_TOTAL`]).
    pub keep_total: usize,
    /// How long an entry is kept and replayed (`--history-age`); `None`: until
    /// `keep_per_room` newer ones push it out. The writer deletes older ones every
    /// [`EXPIRE_EVERY`]; replays leave them out at once.
    pub max_age: Option<Duration>,
    /// [`WRITE_QUEUE`].
    pub queue: usize,
    /// How long the writer waits for a lock another connection holds.
    pub busy_timeout: Duration,
}

impl Default for SqliteOptions {
    fn default() -> SqliteOptions {
        SqliteOptions {
            bounds: crate::limits::Limits::default().history_bounds(),
            keep_per_room: DISK_HISTORY_PER_ROOM,
            keep_total: DISK_HISTORY_TOTAL,
            max_age: None,
            queue: WRITE_QUEUE,
            busy_timeout: BUSY_TIMEOUT,
        }
    }
}

/// What the writer has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Entries committed to disk.
    pub written: u64,
    /// Entries accepted but not written: their transaction failed (disk full, I/O error).
    /// Each was delivered live, and its sender told `not_stored` instead of an `ack`.
    pub lost: u64,
    /// Entries refused: the writer's queue was full or the store closed. None was said.
    pub refused: u64,
}

/// History kept in an SQLite file. See the module documentation.
pub struct SqliteHistory {
    path: PathBuf,
    options: SqliteOptions,
    shared: Arc<WriterShared>,
    /// Idle reader connections.
    readers: Ordered<Vec<Connection>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    /// The largest id of each node in the file at start-up, read once: later ids are the
    /// hub's own.
    last_ids: HashMap<NodeId, Option<u64>>,
    /// An exclusive `flock` on the file, held while the store is open: two servers writing
    /// one file would hand out the same ids. (SQLite's own locks are `fcntl` locks, which
    /// do not meet `flock`'s on Linux.)
    _lock: Flock<std::fs::File>,
}

/// What the appending side and the writer thread share.
struct WriterShared {
    queue: Ordered<Queue>,
    /// The largest message id appended, stored or not; 0 before any.
    highest: AtomicU64,
    written: AtomicU64,
    lost: AtomicU64,
    refused: AtomicU64,
    /// Where acks go once their entries are settled; set once, by the hub.
    sink: std::sync::OnceLock<Arc<AckSink>>,
    /// Accounts deleted while the writer's queue was full, each with the number the
    /// deletion would have been sent under: the rooms kept forget it once every job sent
    /// before is written, which may name it ([`HistoryStore::forget_account`]).
    owed_forgets: Mutex<Vec<(u64, Nick)>>,
}

struct Queue {
    /// `None` once closed.
    sender: Option<SyncSender<Job>>,
    /// Entries sent to the writer and not yet in `chunks` (or given up), oldest first, by
    /// the number they were sent under.
    pending: VecDeque<(u64, Entry)>,
    /// Rooms' states sent to the writer and not yet committed, each under the number it
    /// was sent with: what a room made again meanwhile takes back.
    rooms: HashMap<RoomName, (u64, Option<KeptRoom>)>,
    /// The largest number of each room among entries a failed commit gave up (a full
    /// disk): said live with it, never in the file, so a room made again numbers on after
    /// it. Held until the writer records it in `room_floors` (once the disk has room
    /// again: [`Staged::floors`]); one a room, and only rooms that lost an entry.
    lost_seqs: HashMap<RoomName, u64>,
    next: u64,
    cache: Cache,
}

impl Queue {
    /// Sends the writer `job`, made under the next number, and returns that number; `None`
    /// when the writer cannot take it (its queue full, or closed).
    fn send(&mut self, job: impl FnOnce(u64) -> Job) -> Option<u64> {
        let number = self.next;
        let sent = self.sender.as_ref()?.try_send(job(number));
        sent.ok()?;
        self.next += 1;
        Some(number)
    }
}

/// The newest entries of rooms asked for, as a replay gives them (see the module
/// documentation).
#[derive(Default)]
struct Cache {
    rooms: HashMap<RoomName, Cached>,
    /// Rooms in the order they were cached, oldest first: the order they go in when all
    /// rooms' bytes pass their bound. May name rooms dropped since, skipped when met.
    order: VecDeque<RoomName>,
    bytes: usize,
    /// Rooms being read from the file, and whether something was appended to one
    /// meanwhile (what was read is then not cached: it may miss the append).
    filling: HashMap<RoomName, bool>,
}

#[derive(Default)]
struct Cached {
    /// Oldest first, each with its size.
    entries: VecDeque<(usize, Entry)>,
    bytes: usize,
}

enum Job {
    /// An entry, the number it was sent under, and the ack owed for it: boxed, as the
    /// queue's slots are allocated for its whole bound at start-up.
    Append(u64, Entry, Option<Box<Owed>>),
    /// A room's state to keep (`None`: its row goes), under its number; boxed too.
    Room(u64, RoomName, Option<Box<KeptRoom>>),
    /// An account was deleted: the rooms kept forget it, after the states sent before
    /// ([`HistoryStore::forget_account`]), under its number.
    ForgetAccount(u64, Box<Nick>),
    /// An Alertmanager alert of a room firing (`Some`) or resolved, under its number; boxed
    /// too.
    Firing(u64, Box<(RoomName, String, Option<FiringAlert>)>),
    /// Answered once everything queued before it is committed.
    Flush(mpsc::Sender<()>),
}

impl SqliteHistory {
    /// A room's entries after `after` by `key` (its id or its seq), at most `limit`: from
    /// the file as `read` asks, then those still waiting for the writer. Pending entries
    /// are taken first, so one moved between the two reads is found in the file.
    fn after_in(
        &self,
        room: &RoomName,
        after: u64,
        limit: usize,
        key: fn(&Entry) -> u64,
        read: chunks::Read,
    ) -> Vec<Entry> {
        let pending = self.pending_in(room, |entry| key(entry) > after);
        let mut entries = with_pending(self.read_chunks(room, read, limit), pending);
        entries.truncate(limit);
        let oldest = self.oldest_kept();
        entries.retain(|entry| entry.ts() >= oldest);
        entries
    }

    /// The entries of `room` waiting for the writer that `keep` keeps, oldest first.
    fn pending_in(&self, room: &RoomName, keep: impl Fn(&Entry) -> bool) -> Vec<Entry> {
        let queue = self.shared.queue.lock();
        let pending = queue.pending.iter().map(|(_, entry)| entry);
        pending
            .filter(|entry| entry.room() == room && keep(entry))
            .cloned()
            .collect()
    }

    /// Opens (creating if missing) the history file at `path`, checks or creates its schema,
    /// and starts its writer thread.
    pub fn open(path: &Path, options: SqliteOptions) -> Result<SqliteHistory, StoreError> {
        let sqlite = |source| StoreError::Sqlite {
            path: path.to_owned(),
            source,
        };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|source| StoreError::Open {
                path: path.to_owned(),
                source,
            })?;
        let lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => lock,
            Err((_, Errno::EWOULDBLOCK)) => {
                return Err(StoreError::InUse {
                    path: path.to_owned(),
                });
            }
            Err((_, errno)) => {
                return Err(StoreError::Open {
                    path: path.to_owned(),
                    source: errno.into(),
                });
            }
        };
        let mut conn = Connection::open(path).map_err(sqlite)?;
        prepare_writer(&mut conn, options.busy_timeout).map_err(sqlite)?;
        schema::migrate_at(&mut conn, path)?;
        // What a crash left in the commit file was acked: into `chunks` before anything
        // reads it.
        let commits = recover_commits(&mut conn, path, options.keep_per_room.max(1))?;
        let last_ids = HashMap::new();
        let (sender, receiver) = mpsc::sync_channel(options.queue);
        let shared = Arc::new(WriterShared {
            queue: Ordered::new(
                Level::Store,
                Queue {
                    sender: Some(sender),
                    pending: VecDeque::new(),
                    rooms: HashMap::new(),
                    lost_seqs: HashMap::new(),
                    next: 1,
                    cache: Cache::default(),
                },
            ),
            highest: AtomicU64::new(0),
            written: AtomicU64::new(0),
            lost: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            sink: std::sync::OnceLock::new(),
            owed_forgets: Mutex::new(Vec::new()),
        });
        let mut store = SqliteHistory {
            path: path.to_owned(),
            options: options.clone(),
            shared: shared.clone(),
            readers: Ordered::new(Level::Store, Vec::new()),
            writer: Mutex::new(None),
            last_ids,
            _lock: lock,
        };
        let node = NodeId::default();
        let last = store.read_last_id(node).map_err(sqlite)?;
        store.last_ids.insert(node, last);
        let bounds = DiskBounds {
            per_room: options.keep_per_room.max(1),
            total: options.keep_total.max(1) as u64,
            max_age: options.max_age,
        };
        let writer = std::thread::Builder::new()
            .name("charla-history".into())
            .spawn(move || write_loop(conn, commits, receiver, &shared, bounds))?;
        *store.writer.lock().unwrap_or_else(|p| p.into_inner()) = Some(writer);
        Ok(store)
    }

    /// The time (ms since the epoch) of the oldest entry replayed: `--history-age` ago.
    fn oldest_kept(&self) -> u64 {
        self.options.max_age.map_or(0, expiry)
    }

    /// The file this store keeps.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn stats(&self) -> StoreStats {
        StoreStats {
            written: self.shared.written.load(Ordering::Relaxed),
            lost: self.shared.lost.load(Ordering::Relaxed),
            refused: self.shared.refused.load(Ordering::Relaxed),
        }
    }

    /// Waits until every entry appended so far is committed (or given up and counted).
    pub fn flush(&self) {
        let sender = self.shared.queue.lock().sender.clone();
        let Some(sender) = sender else { return };
        let (done, wait) = mpsc::channel();
        if sender.send(Job::Flush(done)).is_ok() {
            let _ = wait.recv();
        }
    }

    /// Commits everything queued and stops the writer; later appends are refused.
    /// Called at shutdown, after the hub has said goodbye; dropping the store does the same.
    pub fn close(&self) {
        let sender = self.shared.queue.lock().sender.take();
        drop(sender);
        let writer = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(writer) = writer
            && writer.join().is_err()
        {
            error!("the history writer panicked");
        }
    }

    /// At most `limit` entries of `room` in the file that `read` asks for, oldest first,
    /// of those the room keeps by number; none when the file cannot be read (logged).
    fn read_chunks(&self, room: &RoomName, read: chunks::Read, limit: usize) -> Vec<Entry> {
        let keep = self.options.keep_per_room.max(1);
        self.with_reader(|conn| chunks::read(conn, room.key(), keep, read, limit))
            .unwrap_or_else(|e| {
                error!(error = %e, room = %room, "cannot read history");
                Vec::new()
            })
    }

    /// The largest id `node` minted that the file holds, or that was handed out before it
    /// (an entry refused or lost still had its id seen live).
    fn read_last_id(&self, node: NodeId) -> rusqlite::Result<Option<u64>> {
        self.with_reader(|conn| {
            conn.query_row(
                "SELECT id FROM last_ids WHERE node = ?1",
                [node.number()],
                |row| row.get::<_, i64>(0),
            )
            .optional()
            .map(|id| id.map(|id| id as u64))
        })
    }

    /// Runs `read` on an idle reader connection, opening one if none is idle. The pool's
    /// lock is held only to take and give back a connection, never while reading.
    fn with_reader<T>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        let idle = self.readers.lock().pop();
        let conn = match idle {
            Some(conn) => conn,
            None => {
                let conn = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                conn.busy_timeout(self.options.busy_timeout)?;
                conn
            }
        };
        let result = read(&conn);
        let mut idle = self.readers.lock();
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
        result
    }
}

impl HistoryStore for SqliteHistory {
    fn append(&self, entry: Entry, owed: Option<Owed>) -> Result<Option<Owed>, StoreFull> {
        self.shared.highest.fetch_max(entry.id(), Ordering::Relaxed);
        let mut queue = self.shared.queue.lock();
        let number = queue.next;
        let why = match &queue.sender {
            None => "the history store is closed",
            Some(sender) => {
                match sender.try_send(Job::Append(number, entry.clone(), owed.map(Box::new))) {
                    Ok(()) => {
                        queue.next += 1;
                        queue.cache.add(&entry, self.options.bounds);
                        queue.pending.push_back((number, entry));
                        return Ok(None);
                    }
                    Err(TrySendError::Full(_)) => {
                        "the history writer's queue is full (WRITE_QUEUE)"
                    }
                    Err(TrySendError::Disconnected(_)) => "the history writer has stopped",
                }
            }
        };
        drop(queue);
        tally(&self.shared.refused, 1, why, "refused (not said)");
        Err(StoreFull)
    }

    fn keep_room(&self, room: &RoomName, kept: Option<KeptRoom>) {
        let mut queue = self.shared.queue.lock();
        let job = |number| Job::Room(number, room.clone(), kept.clone().map(Box::new));
        if let Some(number) = queue.send(job) {
            queue.rooms.insert(room.clone(), (number, kept));
            return;
        }
        drop(queue);
        let why = "the history writer cannot take a room's topic, modes and bans";
        tally(
            &self.shared.lost,
            1,
            why,
            "not kept (in force until the room empties)",
        );
    }

    /// Through the writer's queue, so a room's state sent before (a ban, an operator made
    /// just before the `/unregister`) is written first and then loses the account, never
    /// the other way round; the states still waiting, which a room made again takes back,
    /// lose it at once.
    fn forget_account(&self, name: &Nick) {
        let mut queue = self.shared.queue.lock();
        for kept in queue
            .rooms
            .values_mut()
            .filter_map(|(_, kept)| kept.as_mut())
        {
            kept.forget_account(name);
        }
        if queue
            .send(|number| Job::ForgetAccount(number, Box::new(name.clone())))
            .is_some()
        {
            return;
        }
        if queue.sender.is_none() {
            drop(queue);
            error!(
                account = %name,
                "the history store is closed: rooms' states sent just before an account's deletion may keep the account"
            );
            return;
        }
        // The queue is full: the writer forgets it after the jobs it holds.
        let owed = (queue.next, name.clone());
        let owed_forgets = self.shared.owed_forgets.lock();
        owed_forgets.unwrap_or_else(|p| p.into_inner()).push(owed);
    }

    fn kept_room(&self, room: &RoomName) -> Option<KeptRoom> {
        if let Some((_, kept)) = self.shared.queue.lock().rooms.get(room) {
            return kept.clone();
        }
        self.with_reader(|conn| rooms::read(conn, room))
            .unwrap_or_else(|e| {
                error!(error = %e, room = %room, "cannot read a room's kept state");
                None
            })
    }

    fn keep_firing(&self, room: &RoomName, fingerprint: &str, alert: Option<&FiringAlert>) {
        let mut queue = self.shared.queue.lock();
        let job = |number| {
            let alert = (room.clone(), fingerprint.to_string(), alert.cloned());
            Job::Firing(number, Box::new(alert))
        };
        if queue.send(job).is_some() {
            return;
        }
        drop(queue);
        let why = "the history writer cannot take an alert that fires or resolved";
        tally(
            &self.shared.lost,
            1,
            why,
            "not kept (known until a restart)",
        );
    }

    fn kept_firing(&self) -> Vec<(RoomName, String, FiringAlert)> {
        self.with_reader(firing::read).unwrap_or_else(|e| {
            error!(error = %e, "cannot read the alerts kept firing");
            Vec::new()
        })
    }

    fn on_settled(&self, sink: Arc<AckSink>) {
        if self.shared.sink.set(sink).is_err() {
            warn!("the history store's acks already go elsewhere");
        }
    }

    fn recent(&self, room: &RoomName, limit: Option<usize>) -> Vec<Entry> {
        let bounds = self.options.bounds;
        let n = limit.map_or(bounds.per_room, |l| l.min(bounds.per_room));
        if n == 0 {
            return Vec::new();
        }
        // Pending entries first, then the file: one moved in between is then in the file,
        // as the writer moves it before it stops holding it pending.
        let pending: Vec<Entry> = {
            let mut queue = self.shared.queue.lock();
            if let Some(cached) = queue.cache.rooms.get(room) {
                let skip = cached.entries.len().saturating_sub(n);
                let oldest = self.oldest_kept();
                return cached
                    .entries
                    .iter()
                    .skip(skip)
                    .filter(|(_, entry)| entry.ts() >= oldest)
                    .map(|(_, entry)| entry.clone())
                    .collect();
            }
            queue.cache.filling.entry(room.clone()).or_insert(false);
            queue
                .pending
                .iter()
                .filter(|(_, entry)| entry.room() == room)
                .map(|(_, entry)| entry.clone())
                .collect()
        };
        let stored = self.read_chunks(room, chunks::Read::Before(u64::MAX), bounds.per_room);
        let mut entries = with_pending(stored, pending);
        // The newest that fit in the room's bytes, as the memory store keeps them.
        let mut bytes = 0;
        let mut first = entries.len();
        while first > 0 && entries.len() - first < bounds.per_room {
            bytes += stored_bytes(&entries[first - 1]);
            if bytes > bounds.room_bytes {
                break;
            }
            first -= 1;
        }
        entries.drain(..first);
        {
            let mut queue = self.shared.queue.lock();
            let cache = &mut queue.cache;
            if cache.filling.remove(room) == Some(false) && !cache.rooms.contains_key(room) {
                cache.install(room, &entries, bounds);
            }
        }
        entries.drain(..entries.len().saturating_sub(n));
        let oldest = self.oldest_kept();
        entries.retain(|entry| entry.ts() >= oldest);
        entries
    }

    /// From the file, not the cache: it holds only the newest few, and this is asked
    /// without the hub's lock.
    fn since(&self, room: &RoomName, after: u64, limit: usize) -> Vec<Entry> {
        self.after_in(room, after, limit, Entry::id, chunks::Read::AfterId(after))
    }

    /// From the file, as far back as it keeps (`--history-keep`), not only what a join
    /// replays, and what waits for the writer.
    fn before(&self, room: &RoomName, before: u64, limit: usize) -> Vec<Entry> {
        let pending = self.pending_in(room, |entry| entry.id() < before);
        let stored = self.read_chunks(room, chunks::Read::Before(before), limit);
        let mut entries = with_pending(stored, pending);
        entries.drain(..entries.len().saturating_sub(limit));
        let oldest = self.oldest_kept();
        entries.retain(|entry| entry.ts() >= oldest);
        entries
    }

    /// The room emptied: its history stays on disk for whoever joins it next, bounded by
    /// [`DISK_HISTORY_PER_ROOM`], and leaves the cache.
    fn forget(&self, room: &RoomName) {
        self.shared.queue.lock().cache.remove(room);
    }

    /// From the file, what waits for the writer and what a failed commit gave up: the room
    /// may have ended and begun again before its last entries were committed, or without
    /// them ever being.
    fn last_seq(&self, room: &RoomName) -> u64 {
        let pending = {
            let queue = self.shared.queue.lock();
            let lost = queue.lost_seqs.get(room).copied().unwrap_or(0);
            queue
                .pending
                .iter()
                .filter(|(_, entry)| entry.room() == room)
                .map(|(_, entry)| entry.seq())
                .fold(lost, u64::max)
        };
        let stored = self.with_reader(|conn| chunks::last_seq(conn, room.key()));
        let stored = stored.unwrap_or_else(|e| {
            error!(error = %e, room = %room, "cannot read the room's last number");
            0
        });
        pending.max(stored)
    }

    /// From the file, as `since`.
    fn after_seq(&self, room: &RoomName, after: u64, limit: usize) -> Vec<Entry> {
        self.after_in(
            room,
            after,
            limit,
            Entry::seq,
            chunks::Read::AfterSeq(after),
        )
    }

    fn last_id(&self, node: NodeId) -> Option<u64> {
        match self.last_ids.get(&node) {
            Some(last) => *last,
            None => self.read_last_id(node).unwrap_or_else(|e| {
                error!(error = %e, "cannot read the last message id");
                None
            }),
        }
    }
}

/// `stored`, a room's entries read from the file, then those of `pending` (its entries
/// waiting for the writer, taken before the read) that were not moved into the file
/// meanwhile: pending entries come after all the file holds, in the room's order.
fn with_pending(mut stored: Vec<Entry>, pending: Vec<Entry>) -> Vec<Entry> {
    let Some(low) = pending.iter().map(Entry::seq).min() else {
        return stored;
    };
    let moved: HashSet<u64> = stored
        .iter()
        .rev()
        .take_while(|entry| entry.seq() >= low)
        .map(Entry::id)
        .collect();
    stored.extend(
        pending
            .into_iter()
            .filter(|entry| !moved.contains(&entry.id())),
    );
    stored
}

impl Drop for SqliteHistory {
    fn drop(&mut self) {
        self.close();
    }
}

impl Cache {
    /// Adds `entry` to its room if the room is cached.
    fn add(&mut self, entry: &Entry, bounds: HistoryBounds) {
        let room = entry.room();
        if let Some(appended) = self.filling.get_mut(room) {
            *appended = true;
        }
        let Some(cached) = self.rooms.get_mut(room) else {
            return;
        };
        let size = stored_bytes(entry);
        cached.entries.push_back((size, entry.clone()));
        cached.bytes += size;
        self.bytes += size;
        while cached.entries.len() > bounds.per_room || cached.bytes > bounds.room_bytes {
            let (size, _) = cached.entries.pop_front().expect("over a bound");
            cached.bytes -= size;
            self.bytes -= size;
        }
        self.shrink(bounds);
    }

    /// Caches `entries`, the newest of `room` within its bounds.
    fn install(&mut self, room: &RoomName, entries: &[Entry], bounds: HistoryBounds) {
        let mut cached = Cached::default();
        for entry in entries {
            let size = stored_bytes(entry);
            cached.entries.push_back((size, entry.clone()));
            cached.bytes += size;
        }
        self.bytes += cached.bytes;
        self.rooms.insert(room.clone(), cached);
        self.order.push_back(room.clone());
        if self.order.len() > 2 * self.rooms.len() + 64 {
            let rooms = &self.rooms;
            let mut seen = HashSet::new();
            self.order
                .retain(|name| rooms.contains_key(name) && seen.insert(name.clone()));
        }
        self.shrink(bounds);
    }

    fn remove(&mut self, room: &RoomName) {
        if let Some(cached) = self.rooms.remove(room) {
            self.bytes -= cached.bytes;
        }
    }

    /// Drops the rooms cached first until all fit in their bound.
    fn shrink(&mut self, bounds: HistoryBounds) {
        while self.bytes > bounds.total_bytes {
            let Some(room) = self.order.pop_front() else {
                break;
            };
            self.remove(&room);
        }
    }
}

/// Adds `n` to `counter`, logging `why` when the count passes a power of two: every entry
/// is counted, few are logged, so a stalled disk does not flood the log.
fn tally(counter: &AtomicU64, n: u64, why: &str, outcome: &str) {
    let before = counter.fetch_add(n, Ordering::Relaxed);
    let after = before + n;
    if (before + 1).next_power_of_two() <= after {
        warn!(count = after, "{why}: history entries {outcome}");
    }
}

fn prepare_writer(conn: &mut Connection, busy: Duration) -> rusqlite::Result<()> {
    conn.busy_timeout(busy)?;
    // Before WAL mode: only a file with no page yet takes it.
    conn.pragma_update(None, "page_size", PAGE_SIZE)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        warn!(mode, "the history database is not in WAL mode");
    }
    let page: i64 = conn.query_row("PRAGMA page_size", [], |row| row.get(0))?;
    conn.pragma_update(
        None,
        "wal_autocheckpoint",
        WAL_CHECKPOINT_BYTES / page.max(512),
    )?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // Schema step 8's conversion sorts a file's chunks by time: in memory, not in a
    // temporary file.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(())
}

/// The writer thread: takes what has queued up and commits it at once, its entries to the
/// commit file; every [`MERGE_INTERVAL`] (or [`MERGE_ROWS`] entries, or when asked to flush)
/// moves what is staged into `chunks`, pruning the rooms it touched, and stops holding
/// those entries pending; every [`EXPIRE_EVERY`], deletes what is older than `max_age`, and
/// once more when the store closes.
fn write_loop(
    mut conn: Connection,
    mut commits: CommitFile,
    jobs: Receiver<Job>,
    shared: &WriterShared,
    bounds: DiskBounds,
) {
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    let mut expired_at: Option<Instant> = None;
    let mut committed_at: Option<Instant> = None;
    let mut staged = Staged::default();
    // Entries in the file, counted once here rather than at start-up, then kept up to date.
    let mut rows = match chunks::count(&conn) {
        Ok(n) => n,
        Err(e) => {
            error!(error = %e, "cannot count the stored history");
            0
        }
    };
    // Only after the count, which reads a whole index: a cache that large filled by it
    // would be memory held for nothing.
    if let Err(e) = conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB) {
        warn!(error = %e, "cannot size the history writer's page cache");
    }
    loop {
        let wait = idle_wait(
            Instant::now(),
            staged.since,
            bounds.max_age.map(|_| expired_at),
        );
        let mut flushes = Vec::new();
        match jobs.recv_timeout(wait) {
            Ok(first) => {
                batch.push(first);
                gather(
                    &jobs,
                    &mut batch,
                    committed_at.map(|at| at + WRITE_INTERVAL),
                );
                committed_at = Some(Instant::now());
                flushes = write_batch(&mut conn, &mut commits, &mut batch, shared, &mut staged);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if staged.due() || !flushes.is_empty() {
            rows = staged.merge(&mut conn, &mut commits, shared, bounds.per_room, rows);
        }
        for done in flushes {
            let _ = done.send(());
        }
        rows = bound_total(&conn, rows, bounds.total);
        if let Some(age) = bounds.max_age
            && expired_at.is_none_or(|at| at.elapsed() >= EXPIRE_EVERY)
        {
            expired_at = Some(Instant::now());
            match chunks::expire(&conn, expiry(age)) {
                Ok(deleted) => rows = rows.saturating_sub(deleted),
                Err(e) => error!(error = %e, "cannot delete expired history"),
            }
        }
    }
    let rows = staged.merge(&mut conn, &mut commits, shared, bounds.per_room, rows);
    if staged.last.is_none()
        && let Err(e) = commits.clear()
    {
        warn!(error = %e, "cannot empty the history's commit file");
    }
    bound_total(&conn, rows, bounds.total);
    // Once more on the way out, so a file left alone is no older than the bound.
    if let Some(age) = bounds.max_age
        && let Err(e) = chunks::expire(&conn, expiry(age))
    {
        error!(error = %e, "cannot delete expired history");
    }
    // Ids handed out to entries that never reached the writer count too.
    if let Err(e) = record_last_ids(&conn, &[], shared.highest.load(Ordering::Relaxed)) {
        error!(error = %e, "cannot record the last message id");
    }
}

/// How long the writer waits for work before it has its own to do: the move of what is
/// staged since `staged_since`, or, with `--history-age` (`expiring` is `Some` of when it
/// last deleted expired history), the next deletion. Counted from that deletion, not from
/// the last message, so an idle server deletes every [`EXPIRE_EVERY`] as documented.
fn idle_wait(
    now: Instant,
    staged_since: Option<Instant>,
    expiring: Option<Option<Instant>>,
) -> Duration {
    let merge = staged_since.map(|at| at + MERGE_INTERVAL);
    let expire = expiring.map(|last| last.map_or(now, |at| at + EXPIRE_EVERY));
    merge
        .into_iter()
        .chain(expire)
        .min()
        .map_or(EXPIRE_EVERY, |due| due.saturating_duration_since(now))
}

/// Deletes the oldest chunks while `rows`, the entries in `chunks`, are more than `total`;
/// returns the rows left.
fn bound_total(conn: &Connection, rows: u64, total: u64) -> u64 {
    if rows <= total {
        return rows;
    }
    match chunks::drop_oldest(conn, rows - total) {
        Ok(deleted) => rows.saturating_sub(deleted),
        Err(e) => {
            error!(error = %e, "cannot delete the oldest history");
            rows
        }
    }
}

/// What the writer has committed to the commit file and not yet moved into `chunks`.
#[derive(Default)]
struct Staged {
    /// The entries committed, in the order they were: what the move encodes.
    entries: Vec<Entry>,
    /// When the first of them was.
    since: Option<Instant>,
    /// The number the last of them was sent under: pending entries up to it leave memory
    /// once they are moved.
    last: Option<u64>,
    /// The number of the last commit that wrote them, recorded by their move.
    commit: u64,
    /// The largest number of each room among entries a failed commit gave up, not yet in
    /// `room_floors`: recorded by the next move that works (at the latest, the one as the
    /// store closes), so that after a restart a room numbers on after them too.
    floors: HashMap<RoomName, u64>,
    /// Failed moves, logged at most once a [`failure_log::FAILURE_LOG_INTERVAL`].
    failures: FailureLog,
    /// Buffers kept from one commit or move to the next, so that the writer's steady work
    /// does not allocate (and fault in) their room again each time: a commit's record, a
    /// chunk's blob, and the pending entries a move takes out of the queue (freed once its
    /// lock is let go). `entries` above is kept so too.
    record: Vec<u8>,
    blob: Vec<u8>,
    released: Vec<(u64, Entry)>,
}

impl Staged {
    /// Whether what is staged should be moved now.
    fn due(&self) -> bool {
        self.entries.len() as u64 >= MERGE_ROWS
            || self.since.is_some_and(|at| at.elapsed() >= MERGE_INTERVAL)
    }

    /// Moves what is staged into `chunks`, with the [`Staged::floors`] waiting, and stops
    /// holding it pending; returns `rows`, the entries in `chunks`, updated. When the move
    /// fails everything stays staged and pending, for the next try. With nothing staged,
    /// the floors waiting are recorded alone.
    fn merge(
        &mut self,
        conn: &mut Connection,
        commits: &mut CommitFile,
        shared: &WriterShared,
        keep: usize,
        rows: u64,
    ) -> u64 {
        let Some(last) = self.last else {
            if !self.floors.is_empty() {
                match record_floors(conn, &self.floors) {
                    Ok(()) => self.floors_recorded(shared),
                    Err(e) => {
                        error!(error = %e, rooms = self.floors.len(), "cannot record the numbers of history not stored")
                    }
                }
            }
            return rows;
        };
        let highest = shared.highest.load(Ordering::Relaxed);
        let moved = move_staged(
            conn,
            keep,
            (&self.entries, &self.floors),
            highest,
            self.commit,
            &mut self.blob,
        );
        match moved {
            Ok((added, pruned)) => {
                if let Some(unlogged) = self.failures.worked() {
                    tracing::info!(unlogged, "staged history moves into place again");
                }
                if let Err(e) = commits.rewind() {
                    warn!(error = %e, "cannot cut the history's commit file");
                }
                self.floors_recorded(shared);
                let mut queue = shared.queue.lock();
                let done = queue.pending.partition_point(|(n, _)| *n <= last);
                self.released.extend(queue.pending.drain(..done));
                // Freed after the lock is let go: appends wait for it.
                drop(queue);
                self.released.clear();
                self.entries.clear();
                self.since = None;
                self.last = None;
                self.commit = 0;
                (rows + added).saturating_sub(pruned)
            }
            Err(e) => {
                if let Some(unlogged) = self.failures.failed(Instant::now()) {
                    error!(error = %e, entries = self.entries.len(), unlogged, "cannot move staged history into place");
                }
                self.since = Some(Instant::now());
                rows
            }
        }
    }
}

impl Staged {
    /// The floors waiting are in `room_floors` now: the file knows those numbers, so the
    /// queue stops holding them. Only this thread gives entries up, so none was added
    /// to them meanwhile.
    fn floors_recorded(&mut self, shared: &WriterShared) {
        if self.floors.is_empty() {
            return;
        }
        let mut queue = shared.queue.lock();
        for room in self.floors.keys() {
            queue.lost_seqs.remove(room);
        }
        drop(queue);
        self.floors.clear();
    }
}

/// Records `floors`, rooms' numbers given up, in `room_floors`, in a transaction of its own.
fn record_floors(conn: &mut Connection, floors: &HashMap<RoomName, u64>) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    raise_given_up(&tx, floors)?;
    tx.commit()
}

fn raise_given_up(conn: &Connection, floors: &HashMap<RoomName, u64>) -> rusqlite::Result<()> {
    chunks::raise_floors(
        conn,
        floors
            .iter()
            .map(|(room, seq)| (room.key(), chunks::sql_int(*seq))),
    )
}

/// In one transaction, adds `staged`, every entry committed up to commit number `moved`
/// in the order committed, to `chunks` ([`add_chunks`]), records `moved` as the last
/// commit moved and raises the rooms' floors by the numbers given up (`floors`); returns
/// the entries added and those deleted.
fn move_staged(
    conn: &mut Connection,
    keep: usize,
    (staged, floors): (&[Entry], &HashMap<RoomName, u64>),
    highest: u64,
    moved: u64,
    blob: &mut Vec<u8>,
) -> rusqlite::Result<(u64, u64)> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let counts = add_chunks(&tx, Some(keep), staged, highest, blob)?;
    raise_given_up(&tx, floors)?;
    tx.prepare_cached(
        "INSERT INTO meta (key, value) VALUES ('moved_commit', ?1) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute([chunks::sql_int(moved)])?;
    tx.commit()?;
    Ok(counts)
}

/// The number of the last commit moved into `chunks` (0 before any).
fn moved_commit(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row(
        "SELECT value FROM meta WHERE key = 'moved_commit'",
        [],
        |row| row.get::<_, i64>(0),
    )
    .optional()
    .map(|moved| moved.unwrap_or(0) as u64)
}

/// Adds `staged`, entries in the order committed, to `chunks`: for each room one run of
/// its entries (more when they pass a chunk's bounds), then, with `keep`, deletes the
/// chunks of each room it touched that hold only entries `keep` numbers older than the
/// room's newest, and records the largest ids (of `staged` and `highest`, the largest
/// handed out); returns the entries added and those deleted. The ids are recorded here
/// rather than with each commit: those of what is in the commit file are read back from it
/// after a crash. Chunks are encoded in `blob` ([`chunks::insert`]).
fn add_chunks(
    conn: &Connection,
    keep: Option<usize>,
    staged: &[Entry],
    highest: u64,
    blob: &mut Vec<u8>,
) -> rusqlite::Result<(u64, u64)> {
    let mut order: Vec<&RoomName> = Vec::new();
    let mut rooms: HashMap<&RoomName, Vec<&Entry>> = HashMap::new();
    for entry in staged {
        rooms
            .entry(entry.room())
            .or_insert_with(|| {
                order.push(entry.room());
                Vec::new()
            })
            .push(entry);
    }
    let (mut added, mut pruned) = (0, 0);
    for room in order {
        let entries = &rooms[room];
        added += chunks::insert(conn, room.key(), entries, blob)?;
        let top = entries.iter().map(|entry| entry.seq()).max().unwrap_or(0);
        let cut = keep.and_then(|keep| top.checked_sub(keep as u64));
        if let Some(cut) = cut.filter(|cut| *cut > 0) {
            pruned += chunks::prune(conn, room.key(), cut)?;
        }
    }
    record_last_ids(conn, staged, highest)?;
    Ok((added, pruned))
}

/// The entries of a commit's blob, logging what cannot be read back: a damaged blob is
/// dropped, an entry that no longer passes its checks skipped.
fn decode_commit(blob: &[u8], names: &mut Names, entries: &mut Vec<Entry>) {
    match chunk::decode(blob) {
        Ok(rows) => entries.extend(rows.iter().filter_map(|row| {
            let entry = row.entry(names);
            if entry.is_none() {
                warn!(
                    id = row.id,
                    "a stored history entry could not be read back; skipped"
                );
            }
            entry
        })),
        Err(e) => {
            error!(error = %e, "a committed batch of history could not be read back; dropped")
        }
    }
}

/// Opens the commit file of the database at `path` and moves what a crash left in it
/// (committed, so acked, but not moved) into `chunks`, as the writer would have, then
/// empties it.
fn recover_commits(
    conn: &mut Connection,
    path: &Path,
    keep: usize,
) -> Result<CommitFile, StoreError> {
    let sqlite = |source| StoreError::Sqlite {
        path: path.to_owned(),
        source,
    };
    let moved = moved_commit(conn).map_err(sqlite)?;
    let (mut commits, records) =
        CommitFile::open(path, moved).map_err(|source| StoreError::Open {
            path: commits::path_for(path),
            source,
        })?;
    if let Some(&(last, _)) = records.last() {
        let mut entries = Vec::new();
        let mut names = Names::default();
        for (_, blob) in &records {
            decode_commit(blob, &mut names, &mut entries);
        }
        let floors = HashMap::new();
        move_staged(conn, keep, (&entries, &floors), 0, last, &mut Vec::new()).map_err(sqlite)?;
    }
    commits.clear().map_err(|source| StoreError::Open {
        path: commits::path_for(path),
        source,
    })?;
    Ok(commits)
}

/// Schema step 9: what a crash of an older charla left in `batches` (committed, so acked,
/// but not moved) into `chunks`, and the table gone.
pub(super) fn batches_to_chunks(conn: &Connection) -> rusqlite::Result<()> {
    let mut entries = Vec::new();
    {
        let mut select = conn.prepare("SELECT data FROM batches ORDER BY rowid")?;
        let mut batches = select.query([])?;
        let mut names = Names::default();
        while let Some(batch) = batches.next()? {
            decode_commit(batch.get_ref(0)?.as_blob()?, &mut names, &mut entries);
        }
    }
    add_chunks(conn, None, &entries, 0, &mut Vec::new())?;
    conn.execute_batch("DROP TABLE batches")
}

/// The time `age` ago, in ms since the epoch.
fn expiry(age: Duration) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    now.saturating_sub(age).as_millis() as u64
}

/// What the writer keeps in the file.
#[derive(Clone, Copy)]
struct DiskBounds {
    per_room: usize,
    total: u64,
    max_age: Option<Duration>,
}

/// Adds to `batch` what has queued up by `until` (the earliest the next commit may start,
/// [`WRITE_INTERVAL`] after the last), up to [`WRITE_BATCH`] jobs. It sleeps rather than
/// waiting on the queue, which would wake it for every entry.
fn gather(jobs: &Receiver<Job>, batch: &mut Vec<Job>, until: Option<Instant>) {
    let wait = until.map_or(Duration::ZERO, |at| {
        at.saturating_duration_since(Instant::now())
    });
    if !wait.is_zero() {
        std::thread::sleep(wait);
    }
    while batch.len() < WRITE_BATCH {
        match jobs.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
}

/// Commits the jobs of `batch`, its entries to the commit file and rooms' states and
/// alerts to the database; returns the flushes it asked for, to be answered once what is
/// staged is moved.
fn write_batch(
    conn: &mut Connection,
    commits: &mut CommitFile,
    batch: &mut Vec<Job>,
    shared: &WriterShared,
    staged: &mut Staged,
) -> Vec<mpsc::Sender<()>> {
    let mut flushes = Vec::new();
    // Entries go straight to what is staged, and come out again if their commit fails.
    let start = staged.entries.len();
    let mut numbers = None;
    let mut owed = Vec::new();
    let mut saves = Vec::new();
    let mut alerts = Vec::new();
    let mut last = None;
    for job in batch.drain(..) {
        match job {
            Job::Append(number, entry, ack) => {
                last = Some(number);
                let (first, _) = numbers.unwrap_or((number, number));
                numbers = Some((first, number));
                staged.entries.push(entry);
                owed.extend(ack.map(|ack| *ack));
            }
            Job::Room(number, room, kept) => {
                last = Some(number);
                saves.push(RoomWrite::Save(room, kept.map(|kept| *kept)));
            }
            Job::ForgetAccount(number, name) => {
                last = Some(number);
                saves.push(RoomWrite::ForgetAccount(*name));
            }
            Job::Firing(number, alert) => {
                last = Some(number);
                alerts.push(*alert);
            }
            Job::Flush(done) => flushes.push(done),
        }
    }
    let Some(last) = last else {
        return flushes;
    };
    // Held only here: the hub waits for it while a full queue refuses a deletion.
    shared
        .owed_forgets
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|(number, name)| {
            let due = *number <= last + 1;
            if due {
                saves.push(RoomWrite::ForgetAccount(name.clone()));
            }
            !due
        });
    if (!saves.is_empty() || !alerts.is_empty())
        && let Err(e) = keep_states(conn, &saves, &alerts)
    {
        error!(error = %e, rooms = saves.len(), alerts = alerts.len(), "cannot keep rooms' states or alerts");
    }
    let appended = staged.entries.len() - start;
    let kept = match commit(commits, &staged.entries[start..], &mut staged.record) {
        Ok(number) => {
            shared.written.fetch_add(appended as u64, Ordering::Relaxed);
            if let Some((_, last_append)) = numbers {
                staged.since.get_or_insert_with(Instant::now);
                staged.last = Some(last_append);
            }
            if let Some(number) = number {
                staged.commit = number;
            }
            true
        }
        Err(e) => {
            error!(error = %e, entries = appended, "cannot write history");
            let why = "a history transaction failed";
            tally(
                &shared.lost,
                appended as u64,
                why,
                "not kept (delivered live)",
            );
            staged.entries.truncate(start);
            false
        }
    };
    {
        let mut queue = shared.queue.lock();
        queue.rooms.retain(|_, (number, _)| *number > last);
        // Given up: no longer pending, while what is staged before them still is.
        let given_up: Vec<_> = match numbers.filter(|_| !kept) {
            Some((first, last)) => {
                let from = queue.pending.partition_point(|(n, _)| *n < first);
                let to = queue.pending.partition_point(|(n, _)| *n <= last);
                queue.pending.drain(from..to).collect()
            }
            None => Vec::new(),
        };
        for (_, entry) in &given_up {
            let lost = queue.lost_seqs.entry(entry.room().clone()).or_default();
            *lost = (*lost).max(entry.seq());
            let floor = staged.floors.entry(entry.room().clone()).or_default();
            *floor = (*floor).max(entry.seq());
        }
        // Freed after the lock is let go: appends wait for it.
        drop(queue);
        drop(given_up);
    }
    // After the commit and with no lock of the store held: the sink takes the hub's.
    if let Some(sink) = shared.sink.get().filter(|_| !owed.is_empty()) {
        sink(owed, kept);
    }
    flushes
}

/// Records in `last_ids` the largest id of each node among `entries` and `highest`, the
/// largest handed out here (an entry refused still had its id seen live), where larger
/// than the one recorded.
fn record_last_ids(conn: &Connection, entries: &[Entry], highest: u64) -> rusqlite::Result<()> {
    let mut last: Vec<(NodeId, u64)> = Vec::new();
    let ids = entries
        .iter()
        .map(Entry::id)
        .chain((highest > 0).then_some(highest));
    for id in ids {
        let Some(node) = NodeId::of_message(id) else {
            continue;
        };
        match last.iter_mut().find(|(n, _)| *n == node) {
            Some((_, most)) => *most = (*most).max(id),
            None => last.push((node, id)),
        }
    }
    let mut upsert = conn.prepare_cached(
        "INSERT INTO last_ids (node, id) VALUES (?1, ?2) \
         ON CONFLICT (node) DO UPDATE SET id = max(id, excluded.id)",
    )?;
    for (node, id) in last {
        upsert.execute(params![node.number(), chunks::sql_int(id)])?;
    }
    Ok(())
}

/// Appends `entries` to the commit file as one record made in `record`, when there are
/// any; returns its number. The least a commit can write, as there is one every
/// [`WRITE_INTERVAL`].
fn commit(
    commits: &mut CommitFile,
    entries: &[Entry],
    record: &mut Vec<u8>,
) -> std::io::Result<Option<u64>> {
    if entries.is_empty() {
        return Ok(None);
    }
    let rows: Vec<Row<'_>> = entries.iter().map(Row::of).collect();
    CommitFile::start_record(record);
    chunk::encode_into(&rows, record).map_err(std::io::Error::other)?;
    let written = commits.append_record(record);
    // A burst's record is not held for ever.
    if record.capacity() > KEEP_RECORD_BYTES {
        *record = Vec::new();
    }
    written.map(Some)
}

/// The room kept for the next commit's record when a commit's took more (a burst of long
/// messages): the usual commit's record is far smaller.
const KEEP_RECORD_BYTES: usize = 1024 * 1024;

/// A write to the `rooms` table, in the order the hub sent it.
enum RoomWrite {
    /// A room's state to keep (`None`: its row goes).
    Save(RoomName, Option<KeptRoom>),
    /// Every room kept forgets a deleted account.
    ForgetAccount(Nick),
}

/// Keeps `saves`, in their order, and `alerts` in one transaction.
fn keep_states(
    conn: &mut Connection,
    saves: &[RoomWrite],
    alerts: &[(RoomName, String, Option<FiringAlert>)],
) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for save in saves {
        match save {
            RoomWrite::Save(room, kept) => rooms::save(&tx, room, kept.as_ref())?,
            RoomWrite::ForgetAccount(name) => rooms::forget_account(&tx, name)?,
        }
    }
    for (room, fingerprint, alert) in alerts {
        firing::save(&tx, room, fingerprint, alert.as_ref())?;
    }
    tx.commit()
}

mod chunk;
mod chunks;
mod commits;
mod convert;
mod failure_log;
mod firing;
mod rooms;
#[cfg(test)]
mod tests;
