//! The SQLite store on real files in temporary directories.

use super::*;
use crate::hub::{ClientTags, Field, MessageText, Nick, Notice, PostKind, Posted, Said, Source};

fn room(name: &str) -> RoomName {
    RoomName::parse(name).unwrap()
}

fn said(id: u64, room_name: &str, from: &str, text: &str, action: bool) -> Entry {
    Entry::Said(Said {
        id,
        seq: id,
        ts: 1_700_000_000_000 + id,
        room: room(room_name),
        from: Nick::parse(from).unwrap(),
        text: MessageText::new(text).unwrap(),
        action,
        notice: false,
        account: None,
        tags: None,
    })
}

fn posted(id: u64, room_name: &str, kind: PostKind, text: &str) -> Entry {
    let notice = Notice::new(
        Source::new("check:web").unwrap(),
        kind,
        MessageText::new(text).unwrap(),
    )
    .with("state", "down")
    .with("lasted_ms", 1234u64)
    .with("exists", false);
    Entry::Posted(Posted {
        id,
        seq: id,
        ts: 1_700_000_000_000 + id,
        room: room(room_name),
        notice: Arc::new(notice),
    })
}

fn ids(entries: Vec<Entry>) -> Vec<u64> {
    entries.iter().map(Entry::id).collect()
}

/// Entries as text: every field, names as spelled.
fn shown(entries: &[Entry]) -> Vec<String> {
    entries.iter().map(|e| format!("{e:?}")).collect()
}

fn options() -> SqliteOptions {
    SqliteOptions::default()
}

fn open(dir: &tempfile::TempDir, options: SqliteOptions) -> SqliteHistory {
    SqliteHistory::open(&dir.path().join("charla.db"), options).unwrap()
}

#[test]
fn a_reopened_file_gives_back_every_field_exactly_and_ids_continue() {
    let dir = tempfile::tempdir().unwrap();
    let all = vec![
        said(1, "#Ops", "Ana", "hello \u{2}bold\u{2} ñ 👋", false),
        said(2, "#ops", "bob", "waves", true),
        posted(3, "#ops", PostKind::Alert, "web is down"),
        posted(4, "#Ops", PostKind::Notice, "target.txt changed"),
    ];
    let store = open(&dir, options());
    assert_eq!(store.last_id(NodeId::default()), None);
    for entry in &all {
        store.append(entry.clone(), None).unwrap();
    }
    assert_eq!(shown(&store.recent(&room("#OPS"), None)), shown(&all));
    store.close();
    assert_eq!(
        store.stats(),
        StoreStats {
            written: 4,
            ..StoreStats::default()
        }
    );
    drop(store);

    let store = open(&dir, options());
    let back = store.recent(&room("#ops"), None);
    assert_eq!(
        shown(&back),
        shown(&all),
        "the same entries, fields and spellings"
    );
    let Entry::Posted(p) = &back[2] else { panic!() };
    assert_eq!(
        p.notice.fields,
        [
            ("state".into(), Field::from("down")),
            ("lasted_ms".into(), Field::from(1234u64)),
            ("exists".into(), Field::from(false)),
        ]
    );
    assert!(store.recent(&room("#other"), None).is_empty());
    assert_eq!(store.last_id(NodeId::default()), Some(4));
    assert_eq!(store.last_id(NodeId::new(2).unwrap()), None);
}

#[test]
fn replays_are_bounded_as_in_memory_and_the_disk_by_its_own_bound() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(
        &dir,
        SqliteOptions {
            bounds: HistoryBounds {
                per_room: 3,
                room_bytes: 1 << 20,
                total_bytes: 1 << 30,
            },
            keep_per_room: 5,
            ..options()
        },
    );
    for id in 1..=8 {
        store
            .append(said(id, "#a", "ana", &format!("line {id}"), false), None)
            .unwrap();
        store
            .append(said(100 + id, "#b", "bob", &format!("b {id}"), false), None)
            .unwrap();
    }
    assert_eq!(ids(store.recent(&room("#a"), None)), [6, 7, 8]);
    assert_eq!(ids(store.recent(&room("#a"), Some(2))), [7, 8]);
    assert_eq!(ids(store.recent(&room("#a"), Some(50))), [6, 7, 8]);
    store.close();
    drop(store);
    // Five a room are kept, whatever is replayed.
    let store = open(
        &dir,
        SqliteOptions {
            keep_per_room: 5,
            ..options()
        },
    );
    assert_eq!(ids(store.recent(&room("#a"), None)), [4, 5, 6, 7, 8]);
    assert_eq!(
        ids(store.recent(&room("#b"), None)),
        [104, 105, 106, 107, 108]
    );
    drop(store);
    // A room's bytes bound what is replayed, newest kept.
    let one = stored_bytes(&said(1, "#a", "ana", "line 1", false));
    let store = open(
        &dir,
        SqliteOptions {
            bounds: HistoryBounds {
                per_room: 100,
                room_bytes: 2 * one + 1,
                total_bytes: 1 << 30,
            },
            keep_per_room: 5,
            ..options()
        },
    );
    assert_eq!(ids(store.recent(&room("#a"), None)), [7, 8]);
}

/// A store in `dir` whose writer's queue holds two jobs and who waits for locks as long as a
/// test needs, and another connection to its file, to hold the write lock with.
fn a_queue_of_two(dir: &tempfile::TempDir) -> (SqliteHistory, Connection) {
    let store = open(
        dir,
        SqliteOptions {
            queue: 2,
            busy_timeout: Duration::from_secs(30),
            ..options()
        },
    );
    let blocker = Connection::open(dir.path().join("charla.db")).unwrap();
    (store, blocker)
}

#[test]
fn what_waits_for_the_writer_is_replayed_once_acked_once_committed_and_a_full_queue_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut blocker) = a_queue_of_two(&dir);
    // Another connection holds the write lock: the writer's moves wait for it, not its
    // commits, which go to the commit file.
    let hold = blocker
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .unwrap();
    let settled = Arc::new(Mutex::new(Vec::new()));
    let sink = settled.clone();
    store.on_settled(Arc::new(move |owed: Vec<Owed>, kept| {
        sink.lock()
            .unwrap()
            .extend(owed.into_iter().map(|o| (o.id, kept)));
    }));
    let owed = |id| Owed {
        session: crate::hub::SessionId::new(NodeId::default(), 1),
        id,
        ts: 0,
        seq: Some(id),
        reference: None,
    };
    let first = store.append(said(1, "#a", "ana", "one", false), Some(owed(1)));
    assert_eq!(first, Ok(None), "held until committed");
    let patience = Instant::now() + Duration::from_secs(10);
    while settled.lock().unwrap().is_empty() && Instant::now() < patience {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(
        *settled.lock().unwrap(),
        [(1, true)],
        "acked once committed"
    );
    // Time for the writer to begin moving it into the database and wait on the lock; on a
    // machine too busy for that, the writer takes one more and one more is accepted.
    std::thread::sleep(MERGE_INTERVAL + Duration::from_millis(300));
    let mut refused = 0;
    for id in 2..=10 {
        match store.append(said(id, "#a", "ana", "more", false), Some(owed(id))) {
            Ok(held) => assert_eq!(held, None),
            Err(StoreFull) => refused += 1,
        }
    }
    // Pending entries are replayed before they are committed: [1, 2, 3], the writer
    // holding the first and the queue two.
    let accepted = ids(store.recent(&room("#a"), None));
    assert_eq!(store.stats().refused, refused);
    assert_eq!(
        accepted.len() as u64 + refused,
        10,
        "{accepted:?}, {refused} refused"
    );
    assert!(refused >= 6 && accepted[0] == 1, "{accepted:?}");
    assert_eq!(store.stats().written, 1);
    assert_eq!(
        settled.lock().unwrap().len(),
        1,
        "nothing acked before its commit"
    );
    hold.rollback().unwrap();
    store.flush();
    assert_eq!(ids(store.recent(&room("#a"), None)), accepted, "once each");
    let acked: Vec<u64> = settled
        .lock()
        .unwrap()
        .iter()
        .map(|&(id, kept)| {
            assert!(kept);
            id
        })
        .collect();
    assert_eq!(
        acked, accepted,
        "each accepted entry acked once, in order, none refused"
    );
    // Read from the file this time, not from the cache.
    store.forget(&room("#a"));
    assert_eq!(
        ids(store.recent(&room("#a"), None)),
        accepted,
        "once each, from the file"
    );
    assert_eq!(
        store.stats(),
        StoreStats {
            written: 10 - refused,
            lost: 0,
            refused
        }
    );
    store.close();
    let late = store.append(said(11, "#a", "ana", "too late", false), None);
    assert_eq!(late, Err(StoreFull));
    assert_eq!(
        store.stats().refused,
        refused + 1,
        "appends after closing are refused too"
    );
    drop(store);
    // Ids refused were minted: they are not handed out again.
    let store = open(&dir, options());
    assert_eq!(store.last_id(NodeId::default()), Some(10));
}

#[test]
fn the_cache_follows_appends_and_stays_within_its_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let one = stored_bytes(&said(1, "#a", "ana", "line", false));
    let bounds = HistoryBounds {
        per_room: 3,
        room_bytes: 1 << 20,
        total_bytes: 4 * one,
    };
    let store = open(
        &dir,
        SqliteOptions {
            bounds,
            ..options()
        },
    );
    store
        .append(said(1, "#a", "ana", "line", false), None)
        .unwrap();
    assert_eq!(ids(store.recent(&room("#a"), None)), [1]);
    for id in 2..=5 {
        store
            .append(said(id, "#a", "ana", "line", false), None)
            .unwrap();
    }
    assert_eq!(
        ids(store.recent(&room("#a"), None)),
        [3, 4, 5],
        "cached, kept up"
    );
    assert_eq!(ids(store.recent(&room("#A"), Some(1))), [5]);
    store
        .append(said(6, "#b", "bob", "line", false), None)
        .unwrap();
    store
        .append(said(7, "#b", "bob", "line", false), None)
        .unwrap();
    assert_eq!(ids(store.recent(&room("#b"), None)), [6, 7]);
    {
        let queue = store.shared.queue.lock();
        assert_eq!(queue.cache.bytes, 2 * one, "#a went first");
        assert!(!queue.cache.rooms.contains_key(&room("#a")));
        assert!(queue.cache.filling.is_empty());
    }
    // Dropped from the cache, not from the file.
    assert_eq!(ids(store.recent(&room("#a"), None)), [3, 4, 5]);
    store.forget(&room("#b"));
    assert!(
        !store
            .shared
            .queue
            .lock()
            .cache
            .rooms
            .contains_key(&room("#b"))
    );
    assert_eq!(ids(store.recent(&room("#b"), None)), [6, 7]);
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("charla.db");
    let conn = Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = SqliteHistory::open(&path, options()).err().unwrap();
    assert!(
        matches!(err, StoreError::NewerSchema { found: 99, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("schema version 99"), "{err}");
    let err = SqliteHistory::open(dir.path(), options()).err().unwrap();
    assert!(matches!(err, StoreError::Open { .. }), "a directory: {err}");
}

#[test]
fn a_file_that_is_no_database_is_refused_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("charla.db");
    std::fs::write(&path, "precious notes, not a database\n".repeat(200)).unwrap();
    let err = SqliteHistory::open(&path, options()).err().unwrap();
    assert!(matches!(err, StoreError::Sqlite { .. }), "{err}");
    assert!(err.to_string().contains("not a database"), "{err}");
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .starts_with("precious notes")
    );
}

#[test]
fn one_server_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(&dir, options());
    let path = dir.path().join("charla.db");
    let err = SqliteHistory::open(&path, options()).err().unwrap();
    assert!(matches!(err, StoreError::InUse { .. }), "{err}");
    drop(first);
    SqliteHistory::open(&path, options()).unwrap();
}

/// A store with entries 1 to 250, the even ones said in #a, the odd ones in #b.
fn two_rooms(dir: &tempfile::TempDir) -> SqliteHistory {
    let store = open(dir, options());
    for id in 1..=250 {
        let room = if id % 2 == 0 { "#a" } else { "#b" };
        store
            .append(said(id, room, "ana", "x", false), None)
            .unwrap();
    }
    store
}

#[test]
fn since_answers_every_entry_after_an_id_in_order_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let store = two_rooms(&dir);
    // Beyond what a join replays (100), from the file and what is still pending alike.
    let all = ids(store.since(&room("#a"), 0, 1_000));
    assert_eq!(all, (1..=125).map(|n| 2 * n).collect::<Vec<_>>());
    assert_eq!(
        ids(store.since(&room("#a"), 241, 1_000)),
        [242, 244, 246, 248, 250]
    );
    assert_eq!(ids(store.since(&room("#a"), 10, 3)), [12, 14, 16]);
    assert!(store.since(&room("#a"), 250, 10).is_empty());
    store.flush();
    assert_eq!(ids(store.since(&room("#b"), 245, 10)), [247, 249]);
    assert_eq!(
        ids(store.since(&room("#b"), u64::MAX, 10)),
        Vec::<u64>::new()
    );
}

#[test]
fn before_reads_back_past_what_a_join_replays_in_order_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let store = two_rooms(&dir);
    // Before anything is committed: what waits for the writer.
    assert_eq!(ids(store.before(&room("#a"), 250, 3)), [244, 246, 248]);
    store.flush();
    // A join replays the newest 100 of #a (52 to 250); the file keeps all 125.
    assert_eq!(ids(store.recent(&room("#a"), None))[0], 52);
    assert_eq!(ids(store.before(&room("#a"), 52, 3)), [46, 48, 50]);
    assert_eq!(ids(store.before(&room("#a"), 7, 50)), [2, 4, 6]);
    assert!(store.before(&room("#a"), 2, 50).is_empty());
    // Committed and pending together, without one twice.
    store
        .append(said(251, "#a", "ana", "x", false), None)
        .unwrap();
    assert_eq!(ids(store.before(&room("#a"), u64::MAX, 3)), [248, 250, 251]);
}

#[test]
fn what_is_older_than_the_age_bound_is_not_replayed_and_is_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let at = |entry: Entry, ts: u64| match entry {
        Entry::Said(mut said) => {
            said.ts = ts;
            Entry::Said(said)
        }
        other => other,
    };
    let day = 24 * 3600 * 1000;
    let store = open(
        &dir,
        SqliteOptions {
            max_age: Some(Duration::from_secs(7 * 24 * 3600)),
            ..options()
        },
    );
    // Three moves: the first two hold only what is older than the bound, the third one
    // older entry and two newer.
    store
        .append(at(said(1, "#a", "ana", "old", false), now - 30 * day), None)
        .unwrap();
    store.flush();
    store
        .append(
            at(said(2, "#a", "ana", "before", false), now - 9 * day),
            None,
        )
        .unwrap();
    store.flush();
    store
        .append(
            at(said(3, "#a", "ana", "last week", false), now - 8 * day),
            None,
        )
        .unwrap();
    store
        .append(
            at(said(4, "#a", "ana", "yesterday", false), now - day),
            None,
        )
        .unwrap();
    store
        .append(at(said(5, "#a", "ana", "now", false), now), None)
        .unwrap();
    assert_eq!(ids(store.recent(&room("#a"), None)), [4, 5], "cached");
    assert_eq!(ids(store.since(&room("#a"), 0, 10)), [4, 5]);
    assert_eq!(ids(store.after_seq(&room("#a"), 0, 10)), [4, 5]);
    assert_eq!(ids(store.before(&room("#a"), 5, 10)), [4]);
    store.forget(&room("#a"));
    assert_eq!(
        ids(store.recent(&room("#a"), None)),
        [4, 5],
        "from the file"
    );
    store.close();
    drop(store);
    // The writer deleted the runs all older than the bound: without the bound, they are
    // gone all the same; the older entry of the newer run is left out only while the
    // bound holds.
    let store = open(&dir, options());
    assert_eq!(ids(store.recent(&room("#a"), None)), [3, 4, 5]);
    let conn = Connection::open(dir.path().join("charla.db")).unwrap();
    assert_eq!(stored(&conn), 3);
}

/// Entries in the file's chunks.
fn stored(conn: &Connection) -> i64 {
    conn.query_row("SELECT coalesce(sum(count), 0) FROM chunks", [], |row| {
        row.get(0)
    })
    .unwrap()
}

#[test]
fn all_rooms_together_keep_at_most_their_bound_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let bounded = SqliteOptions {
        keep_total: 10,
        ..options()
    };
    let count =
        |dir: &tempfile::TempDir| stored(&Connection::open(dir.path().join("charla.db")).unwrap());
    // One move an entry, so one chunk an entry: the oldest entries go one by one.
    let store = open(&dir, bounded.clone());
    for id in 1..=12 {
        store
            .append(said(id, &format!("#r{}", id % 4), "ana", "x", false), None)
            .unwrap();
        store.flush();
    }
    store.close();
    drop(store);
    assert_eq!(count(&dir), 10);
    let store = open(&dir, options());
    assert_eq!(
        ids(store.recent(&room("#r1"), None)),
        [5, 9],
        "the oldest of any room went"
    );
    assert_eq!(ids(store.recent(&room("#r2"), None)), [6, 10]);
    assert_eq!(ids(store.recent(&room("#r3"), None)), [3, 7, 11]);
    drop(store);
    // Counted from the file at start: a reopened store goes on from what is there. Twelve
    // entries in one move are a chunk a room, 13, 17 and 21 in #r1's, first: whole chunks
    // go, the oldest first, until no more than the bound is left.
    let store = open(&dir, bounded);
    for id in 13..=24 {
        store
            .append(said(id, &format!("#r{}", id % 4), "ana", "x", false), None)
            .unwrap();
    }
    store.close();
    drop(store);
    assert_eq!(count(&dir), 9);
    let store = open(&dir, options());
    assert!(store.recent(&room("#r1"), None).is_empty());
    assert_eq!(ids(store.recent(&room("#r2"), None)), [14, 18, 22]);
    assert_eq!(ids(store.recent(&room("#r3"), None)), [15, 19, 23]);
    assert_eq!(ids(store.recent(&room("#r0"), None)), [16, 20, 24]);
}

#[test]
fn a_version_1_file_is_migrated_and_its_rooms_numbered_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("charla.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(super::schema::MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        let mut insert = conn
            .prepare(
                "INSERT INTO entries (id, ts, room_key, room, kind, author, text) \
                 VALUES (?1, ?2, ?3, ?4, 0, 'ana', ?5)",
            )
            .unwrap();
        for (id, name) in [(10, "#Ops"), (11, "#dev"), (12, "#ops"), (14, "#ops")] {
            let room = room(name);
            insert
                .execute(params![
                    id,
                    1_700_000_000_000i64 + id,
                    room.key(),
                    name,
                    "old"
                ])
                .unwrap();
        }
    }
    let store = open(&dir, options());
    let numbered = |name: &str| -> Vec<(u64, u64)> {
        store
            .recent(&room(name), None)
            .iter()
            .map(|e| (e.id(), e.seq()))
            .collect()
    };
    assert_eq!(numbered("#ops"), [(10, 1), (12, 2), (14, 3)]);
    assert_eq!(numbered("#dev"), [(11, 1)]);
    assert_eq!(store.last_seq(&room("#ops")), 3);
    assert_eq!(store.last_seq(&room("#nowhere")), 0);
    assert_eq!(
        ids(store.after_seq(&room("#ops"), 1, 10)),
        [12, 14],
        "by number"
    );
    drop(store);
    assert_migrated(&path);
}

#[test]
fn a_room_continues_its_numbers_from_what_waits_for_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, options());
    store
        .append(said(1, "#ops", "ana", "one", false), None)
        .unwrap();
    // Whether or not the writer has committed it yet, the number is seen.
    assert_eq!(store.last_seq(&room("#ops")), 1);
    store.flush();
    assert_eq!(store.last_seq(&room("#ops")), 1);
    assert_eq!(ids(store.after_seq(&room("#ops"), 0, 10)), [1]);
}

#[test]
fn a_rooms_state_is_kept_whole_before_and_after_its_commit_and_a_plain_one_goes() {
    use crate::hub::{Ban, BanMask, KeptRoom, Modes, Topic};
    let dir = tempfile::tempdir().unwrap();
    let nick = |n: &str| Nick::parse(n).unwrap();
    let kept = KeptRoom {
        topic: Some(Topic {
            text: MessageText::new("deploys ñ 👋").unwrap(),
            by: nick("Ana"),
            at: 1_700_000_000_123,
        }),
        modes: Modes {
            moderated: true,
            invite_only: true,
            secret: true,
            key: Some("sesame".into()),
            limit: Some(5),
            ..Modes::new_room()
        },
        op_accounts: vec![nick("Ana"), nick("bob")],
        bans: vec![
            Ban {
                mask: BanMask::parse("ev*").unwrap(),
                account: None,
                by: nick("Ana"),
                at: 1_700_000_000_456,
            },
            Ban {
                mask: BanMask::parse("mallory").unwrap(),
                account: Some(nick("Mallory")),
                by: nick("Ana"),
                at: 1_700_000_000_789,
            },
        ],
        created: None,
    };
    let shown = |k: Option<KeptRoom>| format!("{k:?}");
    let store = open(&dir, options());
    assert!(store.kept_room(&room("#ops")).is_none());
    store.keep_room(&room("#Ops"), Some(kept.clone()));
    // Pending or committed, the same state comes back, under any spelling of the room.
    assert_eq!(
        shown(store.kept_room(&room("#OPS"))),
        shown(Some(kept.clone()))
    );
    store.flush();
    assert!(store.shared.queue.lock().rooms.is_empty(), "committed");
    assert_eq!(
        shown(store.kept_room(&room("#ops"))),
        shown(Some(kept.clone()))
    );
    store.keep_room(&room("#dev"), Some(kept.clone()));
    store.keep_room(&room("#dev"), None);
    store.close();
    drop(store);
    let store = open(&dir, options());
    assert_eq!(shown(store.kept_room(&room("#ops"))), shown(Some(kept)));
    assert!(
        store.kept_room(&room("#dev")).is_none(),
        "the last word was: nothing"
    );
}

#[test]
fn an_account_deleted_while_the_writers_queue_is_full_is_forgotten_after_what_it_holds() {
    use crate::hub::KeptRoom;
    let dir = tempfile::tempdir().unwrap();
    let ana = Nick::parse("ana").unwrap();
    let with_ana = KeptRoom {
        op_accounts: vec![ana.clone()],
        ..KeptRoom::new_room()
    };
    let (store, mut blocker) = a_queue_of_two(&dir);
    // The writer takes #ops' state naming ana and waits on another connection's lock.
    let hold = blocker
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .unwrap();
    store.keep_room(&room("#ops"), Some(with_ana.clone()));
    std::thread::sleep(WRITE_INTERVAL + Duration::from_millis(300));
    let mut id = 0;
    while {
        id += 1;
        store
            .append(said(id, "#a", "bob", "hola", false), None)
            .is_ok()
    } {}
    assert_eq!(store.stats().refused, 1, "the queue is full");
    // ana unregisters now: the state the writer holds is written after this.
    store.forget_account(&ana);
    hold.rollback().unwrap();
    store.flush();
    store.close();
    drop(store);
    let store = open(&dir, options());
    let kept = store.kept_room(&room("#ops")).expect("#ops is kept");
    assert!(kept.op_accounts.is_empty(), "{kept:?}");
}

#[test]
fn a_queued_job_is_no_bigger_than_an_entry_and_its_number() {
    // The writer's queue allocates a slot of this size for each of its WRITE_QUEUE places
    // at start-up: what a job carries besides its entry is boxed.
    assert!(
        std::mem::size_of::<Job>() <= std::mem::size_of::<(u64, Entry)>() + 8,
        "{} bytes",
        std::mem::size_of::<Job>()
    );
}

#[test]
fn each_room_keeps_its_newest_numbers_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let bounded = SqliteOptions {
        keep_per_room: 3,
        ..options()
    };
    let numbered = |mut entry: Entry, seq: u64| {
        match &mut entry {
            Entry::Said(said) => said.seq = seq,
            Entry::Posted(posted) => posted.seq = seq,
        }
        entry
    };
    let store = open(&dir, bounded);
    // Interleaved, in several batches: #a is numbered 1..=8, #b 1..=2.
    let (mut a, mut b) = (0, 0);
    for id in 1..=10 {
        let entry = if id == 4 || id == 7 {
            b += 1;
            numbered(said(id, "#b", "bob", "x", false), b)
        } else {
            a += 1;
            numbered(said(id, "#a", "ana", "x", false), a)
        };
        store.append(entry, None).unwrap();
        if id % 3 == 0 {
            store.flush();
        }
    }
    store.close();
    drop(store);
    let store = open(&dir, options());
    assert_eq!(ids(store.recent(&room("#a"), None)), [8, 9, 10]);
    assert_eq!(ids(store.recent(&room("#b"), None)), [4, 7]);
    assert_eq!(
        store
            .since(&room("#a"), 0, 10)
            .iter()
            .map(Entry::seq)
            .collect::<Vec<_>>(),
        [6, 7, 8]
    );
}

#[test]
fn a_messages_account_and_client_tags_are_kept_and_a_version_4_file_gains_room_for_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("charla.db");
    {
        let conn = file_at_version(&path, 4);
        conn.execute(
            "INSERT INTO entries (id, ts, room_key, room, kind, author, text, seq) \
             VALUES (7, 1700000000007, ?1, '#ops', 0, 'ana', 'kept before', 1)",
            [room("#ops").key()],
        )
        .unwrap();
    }
    let store = open(&dir, options());
    let Entry::Said(mut tagged) = said(8, "#ops", "ana", "with tags", false) else {
        unreachable!()
    };
    tagged.seq = 2;
    tagged.account = Some(Nick::parse("Ana").unwrap());
    tagged.tags = ClientTags::from_section("+draft/reply=7;+example.com/x=ñ").unwrap();
    store.append(Entry::Said(tagged.clone()), None).unwrap();
    store.close();
    drop(store);

    let store = open(&dir, options());
    let back = store.recent(&room("#ops"), None);
    let [Entry::Said(before), Entry::Said(after)] = &back[..] else {
        panic!("{back:?}")
    };
    assert_eq!(
        (before.account.as_ref(), before.tags.as_ref()),
        (None, None)
    );
    assert_eq!(before.text.as_str(), "kept before");
    assert_eq!(format!("{after:?}"), format!("{tagged:?}"));
    drop(store);
    assert_migrated(&path);
}

#[test]
fn what_fires_is_kept_until_it_resolves_and_a_version_5_file_gains_room_for_it() {
    use crate::hub::FiringAlert;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("charla.db");
    drop(file_at_version(&path, 5));
    let alert = |name: &str, starts_ms| FiringAlert {
        name: name.into(),
        said: "latency above 1s ñ (job=api)".into(),
        priority: 5,
        starts_ms,
    };
    let store = open(&dir, options());
    assert!(store.kept_firing().is_empty());
    store.keep_firing(&room("#Alerts"), "c4ad", Some(&alert("HighLatency", 1)));
    store.keep_firing(&room("#alerts"), "0d9e", Some(&alert("DiskFull", 2)));
    store.keep_firing(&room("#ops"), "c4ad", Some(&alert("Other", 3)));
    // Said again (a later payload): the newest word wins; resolved: gone.
    store.keep_firing(&room("#alerts"), "c4ad", Some(&alert("HighLatency", 4)));
    store.keep_firing(&room("#ops"), "c4ad", None);
    store.close();
    drop(store);

    let store = open(&dir, options());
    let kept: Vec<_> = store
        .kept_firing()
        .into_iter()
        .map(|(room, fingerprint, alert)| (room.as_str().to_string(), fingerprint, alert))
        .collect();
    assert_eq!(
        kept,
        [
            (
                "#alerts".to_string(),
                "0d9e".to_string(),
                alert("DiskFull", 2)
            ),
            (
                "#alerts".to_string(),
                "c4ad".to_string(),
                alert("HighLatency", 4)
            ),
        ]
    );
    drop(store);
    assert_migrated(&path);
}

/// Entry `id` said as `bob` in `name`, numbered `seq` there.
fn numbered(id: u64, name: &str, seq: u64) -> Entry {
    let Entry::Said(mut said) = said(id, name, "bob", "staged", false) else {
        unreachable!()
    };
    said.seq = seq;
    Entry::Said(said)
}

/// `entries` encoded as one commit.
fn commit_blob(entries: &[Entry]) -> Vec<u8> {
    let rows: Vec<Row<'_>> = entries.iter().map(Row::of).collect();
    let mut blob = Vec::new();
    chunk::encode_into(&rows, &mut blob).unwrap();
    blob
}

#[test]
fn what_a_crash_of_an_older_charla_left_in_batches_is_moved_by_schema_step_9_which_drops_the_table()
{
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("charla.db");
    {
        // As a `kill -9` left a version-8 file: committed (so acked) in `batches`, not
        // yet moved; and a batch damaged on disk, which is dropped.
        let conn = file_at_version(&path, 8);
        let batches = [
            vec![numbered(2, "#ops", 2), numbered(3, "#dev", 1)],
            vec![numbered(4, "#ops", 3), numbered(5, "#ops", 4)],
        ];
        add_chunks(&conn, None, &[numbered(1, "#ops", 1)], 0, &mut Vec::new()).unwrap();
        for batch in &batches {
            conn.execute(
                "INSERT INTO batches (data) VALUES (?1)",
                [commit_blob(batch)],
            )
            .unwrap();
        }
        conn.execute("INSERT INTO batches (data) VALUES (x'01ff')", [])
            .unwrap();
    }
    let store = open(&dir, options());
    assert_eq!(ids(store.recent(&room("#ops"), None)), [1, 2, 4, 5]);
    assert_eq!(ids(store.since(&room("#dev"), 0, 10)), [3]);
    assert_eq!(store.last_seq(&room("#ops")), 4);
    assert_eq!(
        store.last_id(NodeId::default()),
        Some(5),
        "read back from batches"
    );
    drop(store);
    assert_migrated(&path);
    let conn = Connection::open(&path).unwrap();
    let batches: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'batches'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!((batches, stored(&conn)), (0, 5));
}

#[test]
fn what_a_crash_left_in_the_commit_file_is_moved_into_place_on_open_and_the_file_emptied() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("charla.db");
    let store = open(&dir, options());
    store
        .append(said(1, "#ops", "ana", "moved long ago", false), None)
        .unwrap();
    store.close();
    drop(store);
    assert_eq!(moved_commit(&Connection::open(&path).unwrap()).unwrap(), 1);
    {
        // As a `kill -9` leaves them: written (so acked), not yet moved; then a record
        // torn as it was written, which ends the file.
        let (mut commits, records) = CommitFile::open(&path, 1).unwrap();
        assert!(records.is_empty(), "emptied at the close");
        for batch in [
            vec![numbered(2, "#ops", 2), numbered(3, "#dev", 1)],
            vec![numbered(4, "#ops", 3), numbered(5, "#ops", 4)],
        ] {
            commits.append(&commit_blob(&batch)).unwrap();
        }
        commits
            .append(&commit_blob(&[numbered(6, "#ops", 5)]))
            .unwrap();
    }
    let file = commits::path_for(&path);
    let whole = std::fs::metadata(&file).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(whole - 3)
        .unwrap();
    let store = open(
        &dir,
        SqliteOptions {
            keep_per_room: 2,
            ..options()
        },
    );
    assert_eq!(std::fs::metadata(&file).unwrap().len(), 0, "emptied");
    assert_eq!(ids(store.recent(&room("#ops"), None)), [4, 5]);
    assert_eq!(ids(store.since(&room("#dev"), 0, 10)), [3]);
    assert_eq!(store.last_seq(&room("#ops")), 4);
    assert_eq!(
        store.last_id(NodeId::default()),
        Some(5),
        "read back from the commit file"
    );
    // Numbers go on past those read back: a later crash's records are not taken for
    // moved ones.
    store.append(numbered(7, "#ops", 5), None).unwrap();
    store.flush();
    let conn = Connection::open(&path).unwrap();
    assert_eq!(moved_commit(&conn).unwrap(), 4);
    // The chunk of 1 went with the bound; those of 2, of 4 and 5, and of 7 stay whole.
    assert_eq!(stored(&conn), 5);
}

#[test]
fn a_flush_moves_what_is_committed_into_place_and_pending_entries_are_read_until_then() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("charla.db");
    let store = open(&dir, options());
    for id in 1..=3 {
        store
            .append(said(id, "#ops", "ana", "x", false), None)
            .unwrap();
    }
    // Before and after the writer takes them, moved or not: each is read once, in order.
    assert_eq!(ids(store.since(&room("#ops"), 0, 10)), [1, 2, 3]);
    store.flush();
    let conn = Connection::open(&path).unwrap();
    let moved = moved_commit(&conn).unwrap();
    let (_, unmoved) = CommitFile::open(&path, moved).unwrap();
    assert_eq!((stored(&conn), unmoved.len()), (3, 0));
    assert_eq!(ids(store.before(&room("#ops"), 3, 10)), [1, 2]);
    assert_eq!(store.stats().written, 3);
}

#[test]
fn a_version_7_file_is_converted_into_chunks_with_its_history_numbers_and_ids() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("charla.db");
    let other = *NodeId::new(2).unwrap().message_ids().start() + 5;
    {
        let conn = file_at_version(&path, 7);
        let insert =
            |table: &str, id: u64, name: &str, seq: u64, kind: i64, extra: [Option<&str>; 3]| {
                conn.execute(
                    &format!(
                        "INSERT INTO {table} \
                     (id, ts, room_key, room, kind, author, text, fields, seq, account, tags) \
                     VALUES (?1, ?2, ?3, ?4, ?5, 'ana', ?6, ?7, ?8, ?9, ?10)"
                    ),
                    params![
                        id as i64,
                        1_700_000_000_000 + id as i64,
                        RoomName::parse(name).map_or("x".to_string(), |r| r.key().to_string()),
                        name,
                        kind,
                        format!("line {seq}"),
                        extra[0],
                        seq as i64,
                        extra[1],
                        extra[2],
                    ],
                )
                .unwrap();
            };
        // More entries in #ops than a chunk holds; #dev's interleaved, one of them from
        // another node of a cluster; one row whose room no longer passes the checks.
        for seq in 1..=300 {
            insert(
                "entries",
                9 + seq,
                if seq % 2 == 0 { "#ops" } else { "#Ops" },
                seq,
                0,
                [None; 3],
            );
        }
        insert("entries", 320, "#dev", 1, 1, [None; 3]);
        insert(
            "entries",
            321,
            "#dev",
            2,
            0,
            [None, Some("Ana"), Some("+draft/reply=7")],
        );
        let fields = r#"[["state","down"],["lasted_ms",1234],["exists",false]]"#;
        insert("entries", 400, "#ops", 301, 3, [Some(fields), None, None]);
        insert("entries", 401, "#ops", 302, 4, [None; 3]);
        insert("entries", 402, "not a room", 1, 0, [None; 3]);
        // Committed, acked and not moved when a version-7 server was killed.
        insert("staged", 403, "#ops", 303, 0, [None; 3]);
        insert("staged", 404, "#ops", 304, 0, [None; 3]);
        insert("staged", other, "#dev", 3, 0, [None; 3]);
        conn.execute("INSERT INTO meta (key, value) VALUES ('last_id', 500)", [])
            .unwrap();
    }
    let store = open(&dir, options());
    assert_migrated(&path);
    let ops = room("#ops");
    let all = store.since(&ops, 0, 1_000);
    assert_eq!(all.len(), 304);
    assert_eq!(
        all.iter().map(Entry::seq).collect::<Vec<_>>(),
        (1..=304).collect::<Vec<_>>(),
        "in the room's order, staged ones last"
    );
    assert_eq!(all[0].room().as_str(), "#Ops", "as spelled");
    assert_eq!(all[1].room().as_str(), "#ops");
    let Entry::Posted(alert) = &all[300] else {
        panic!("{:?}", all[300])
    };
    assert_eq!(alert.notice.kind, PostKind::Alert);
    assert_eq!(
        alert.notice.fields,
        [
            ("state".into(), Field::from("down")),
            ("lasted_ms".into(), Field::from(1234u64)),
            ("exists".into(), Field::from(false)),
        ]
    );
    let Entry::Said(notice) = &all[301] else {
        panic!()
    };
    assert!(notice.notice && !notice.action);
    let dev = store.since(&room("#dev"), 0, 10);
    assert_eq!(ids(dev.clone()), [320, 321, other]);
    let Entry::Said(tagged) = &dev[1] else {
        panic!()
    };
    assert_eq!(tagged.account.as_ref().map(Nick::as_str), Some("Ana"));
    assert_eq!(
        tagged.tags.as_ref().map(ClientTags::as_str),
        Some("+draft/reply=7")
    );
    let Entry::Said(action) = &dev[0] else {
        panic!()
    };
    assert!(action.action);
    // Reads across the chunks' boundaries (256 entries a chunk).
    assert_eq!(store.recent(&ops, None).len(), 100);
    assert_eq!(ids(store.recent(&ops, Some(2))), [403, 404]);
    assert_eq!(ids(store.before(&ops, 267, 4)), [263, 264, 265, 266]);
    assert_eq!(ids(store.since(&ops, 263, 3)), [264, 265, 266]);
    assert_eq!(
        store
            .after_seq(&ops, 254, 4)
            .iter()
            .map(Entry::seq)
            .collect::<Vec<_>>(),
        [255, 256, 257, 258]
    );
    assert_eq!(store.last_seq(&ops), 304);
    assert_eq!(store.last_seq(&room("#dev")), 3);
    assert_eq!(store.last_id(NodeId::default()), Some(500));
    assert_eq!(store.last_id(NodeId::new(2).unwrap()), Some(other));
    // Resumed after the conversion: numbers and ids go on.
    let Entry::Said(mut next) = said(501, "#ops", "bob", "after", false) else {
        unreachable!()
    };
    next.seq = 305;
    store.append(Entry::Said(next), None).unwrap();
    store.close();
    drop(store);
    let store = open(&dir, options());
    assert_eq!(ids(store.after_seq(&ops, 303, 10)), [404, 501]);
    assert_eq!(store.last_seq(&ops), 305);
    assert_eq!(store.last_id(NodeId::default()), Some(501));
    drop(store);
    let conn = Connection::open(&path).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        tables,
        [
            "account_tokens",
            "accounts",
            "chunks",
            "firing",
            "last_ids",
            "meta",
            "room_floors",
            "rooms"
        ]
    );
    assert_eq!(stored(&conn), 308);
}

#[test]
fn a_room_is_served_exactly_what_it_keeps_across_chunks_and_a_damaged_chunk_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("charla.db");
    let keep = SqliteOptions {
        keep_per_room: 300,
        ..options()
    };
    // 599 entries moved at once: chunks of 256, 256 and 87. With the 600th, the first
    // holds only entries older than the 300 kept and goes; the second is on the boundary.
    drop(open(&dir, keep.clone()));
    let conn = Connection::open(&path).unwrap();
    let entries: Vec<Entry> = (1..=599)
        .map(|id| said(id, "#a", "ana", "x", false))
        .collect();
    move_staged(
        &mut Connection::open(&path).unwrap(),
        300,
        (&entries, &HashMap::new()),
        0,
        0,
        &mut Vec::new(),
    )
    .unwrap();
    let store = open(&dir, keep.clone());
    store
        .append(said(600, "#a", "ana", "x", false), None)
        .unwrap();
    store
        .append(said(601, "#b", "bob", "y", false), None)
        .unwrap();
    store.flush();
    assert_eq!(stored(&conn), 256 + 87 + 1 + 1);
    let a = room("#a");
    let served = store.since(&a, 0, 1_000);
    assert_eq!(ids(served), (301..=600).collect::<Vec<_>>());
    assert_eq!(
        ids(store.after_seq(&a, 0, 1_000)),
        (301..=600).collect::<Vec<_>>()
    );
    assert_eq!(ids(store.after_seq(&a, 511, 3)), [512, 513, 514]);
    assert_eq!(ids(store.before(&a, 303, 10)), [301, 302]);
    assert_eq!(ids(store.before(&a, 515, 5)), [510, 511, 512, 513, 514]);
    store.forget(&a);
    assert_eq!(ids(store.recent(&a, None)), (501..=600).collect::<Vec<_>>());
    drop(store);
    // A chunk that cannot be decoded is logged and skipped; the rest are read.
    conn.execute(
        "UPDATE chunks SET data = x'01ffff' WHERE room_key = ?1 AND first_seq = 513",
        [a.key()],
    )
    .unwrap();
    let store = open(&dir, keep);
    assert_eq!(
        ids(store.since(&a, 0, 1_000)),
        (301..=512).chain([600]).collect::<Vec<_>>()
    );
    assert_eq!(ids(store.recent(&room("#b"), None)), [601]);
    assert_eq!(store.last_seq(&a), 600, "the index still says it");
}

/// A new file at `path` as a charla of schema version `version` left it, open.
fn file_at_version(path: &std::path::Path, version: usize) -> Connection {
    let conn = Connection::open(path).unwrap();
    for step in &super::schema::MIGRATIONS[..version] {
        conn.execute_batch(step).unwrap();
    }
    conn.pragma_update(None, "user_version", version as i64)
        .unwrap();
    conn
}

/// The file at `path` is at the newest schema version.
fn assert_migrated(path: &std::path::Path) {
    let version: i64 = Connection::open(path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(version, super::schema::SCHEMA_VERSION);
}

/// What `PRAGMA name` says of the file at `path`.
fn pragma(path: &std::path::Path, name: &str) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row(&format!("PRAGMA {name}"), [], |row| row.get(0))
        .unwrap()
}

#[test]
fn a_new_file_gets_large_pages_and_one_made_with_small_ones_keeps_them_and_its_history() {
    let new = tempfile::tempdir().unwrap();
    let store = open(&new, options());
    store
        .append(said(1, "#ops", "ana", "hi", false), None)
        .unwrap();
    store.close();
    let path = new.path().join("charla.db");
    assert_eq!(pragma(&path, "page_size"), PAGE_SIZE);
    assert_eq!(checkpoint_pages(&path) * PAGE_SIZE, WAL_CHECKPOINT_BYTES);

    // A file of this schema version made with SQLite's default pages.
    let old = tempfile::tempdir().unwrap();
    let path = old.path().join("charla.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "page_size", 4096).unwrap();
        drop(conn);
        file_at_version(&path, super::schema::SCHEMA_VERSION as usize);
    }
    let store = open(&old, options());
    for id in 1..=3 {
        store
            .append(said(id, "#ops", "ana", "before", false), None)
            .unwrap();
    }
    drop(store);
    let store = open(&old, options());
    store
        .append(said(4, "#ops", "bob", "after", false), None)
        .unwrap();
    store.flush();
    assert_eq!(ids(store.recent(&room("#ops"), None)), [1, 2, 3, 4]);
    assert_eq!(ids(store.since(&room("#ops"), 1, 10)), [2, 3, 4]);
    drop(store);
    assert_eq!(pragma(&path, "page_size"), 4096, "a file keeps its pages");
    // Its log is checkpointed after as many bytes, in more pages.
    assert_eq!(checkpoint_pages(&path) * 4096, WAL_CHECKPOINT_BYTES);
}

/// After how many pages of log the writer's connection to the file at `path` checkpoints.
fn checkpoint_pages(path: &std::path::Path) -> i64 {
    let mut conn = Connection::open(path).unwrap();
    prepare_writer(&mut conn, BUSY_TIMEOUT).unwrap();
    conn.query_row("PRAGMA wal_autocheckpoint", [], |row| row.get(0))
        .unwrap()
}

/// With `--history-age` the writer deletes every [`EXPIRE_EVERY`] counted from the last
/// deletion: a message just before one is due does not put it off another whole period.
#[test]
fn the_writer_waits_for_the_next_deletion_not_a_period_after_the_last_message() {
    let start = Instant::now();
    let expired = start;
    // A message staged 59 s after the last deletion, its move just done: the deletion is
    // due a second later, not 60 s after the move.
    let now = start + Duration::from_secs(59) + MERGE_INTERVAL;
    assert_eq!(
        idle_wait(now, None, Some(Some(expired))),
        EXPIRE_EVERY - Duration::from_secs(59) - MERGE_INTERVAL
    );
    // Something staged waits for its move, which comes first.
    let staged = start + Duration::from_secs(59);
    assert_eq!(
        idle_wait(staged, Some(staged), Some(Some(expired))),
        MERGE_INTERVAL
    );
    // Never deleted yet: at once. Overdue: at once.
    assert_eq!(idle_wait(now, None, Some(None)), Duration::ZERO);
    assert_eq!(
        idle_wait(start + EXPIRE_EVERY * 2, None, Some(Some(expired))),
        Duration::ZERO
    );
    // Without --history-age only the move has a time.
    assert_eq!(idle_wait(now, None, None), EXPIRE_EVERY);
    assert_eq!(idle_wait(staged, Some(staged), None), MERGE_INTERVAL);
}
