//! The database's schema as a list of forward migrations, and the code that applies them.
//!
//! A database records in `PRAGMA user_version` how many steps of [`MIGRATIONS`] it has
//! had: 0 is a new, empty file. Opening one runs the steps it lacks, each in a transaction
//! of its own together with the new version number, so a crash leaves it at one version or
//! the next, never between. A step is never edited once released: a change is a new step
//! at the end of the list.

use std::path::Path;

use rusqlite::Connection;

use super::sqlite::StoreError;

/// Step `n` (from 0) takes a database from version `n` to version `n + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: history. One row an entry, keyed by its message id (unique, and increasing on
    // one node, so a room's rows in id order are its history in order). `room_key` is the
    // room's comparison key (`RoomName::key`), `room` the spelling it was said under;
    // `kind` 0 said, 1 said with `/me`, 2 a feed's notice, 3 an alert, 4 said as a notice (IRC NOTICE); `author` the nick
    // or the feed's source; `fields` a feed's details as a JSON array of `[name, value]`.
    // `meta` holds `last_id`: the largest message id handed out, stored or not (an entry
    // lost to a full queue still had its id seen live), so ids after a restart are new.
    "
    CREATE TABLE entries (
        id       INTEGER PRIMARY KEY,
        ts       INTEGER NOT NULL,
        room_key TEXT    NOT NULL,
        room     TEXT    NOT NULL,
        kind     INTEGER NOT NULL,
        author   TEXT    NOT NULL,
        text     TEXT    NOT NULL,
        fields   TEXT
    );
    CREATE INDEX entries_by_room ON entries (room_key, id);
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    );
    ",
    // 2: each entry's number in its room (`seq`), for exact resume. Entries kept from
    // before are numbered 1, 2, … in each room in the order they were said.
    "
    ALTER TABLE entries ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
    UPDATE entries SET seq = numbered.n
    FROM (SELECT id, row_number() OVER (PARTITION BY room_key ORDER BY id) AS n FROM entries)
        AS numbered
    WHERE numbered.id = entries.id;
    CREATE INDEX entries_by_room_seq ON entries (room_key, seq);
    ",
    // 3: accounts: a name's comparison key (`Nick::key`), the name as registered, its
    // password's PHC string; API tokens by their SHA-256 only. `IF NOT EXISTS` because
    // servers before this step created these tables outside the numbered steps, so a
    // version-2 file may have them already.
    "
    CREATE TABLE IF NOT EXISTS accounts (
        key TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        password TEXT NOT NULL,
        created_ms INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS account_tokens (
        digest TEXT PRIMARY KEY,
        account TEXT NOT NULL REFERENCES accounts(key) ON DELETE CASCADE,
        label TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        UNIQUE (account, label)
    );
    ",
    // 4: what rooms keep when they empty and across restarts (topic, modes, operators'
    // accounts, bans), one row a room by its comparison key, the state as a JSON object
    // (`store/sqlite/rooms.rs`); `name` is the spelling it was last kept under.
    "
    CREATE TABLE rooms (
        key   TEXT PRIMARY KEY,
        name  TEXT NOT NULL,
        state TEXT NOT NULL
    );
    ",
    // 5: what a message carried besides its text, so a replay shows it as it was seen
    // live: `account` the sender's account when logged in (IRCv3 account-tag), `tags`
    // the client-only tags an IRC client attached (`+name=value;…` as relayed). NULL
    // when there was none, as for every entry kept before this step.
    "
    ALTER TABLE entries ADD COLUMN account TEXT;
    ALTER TABLE entries ADD COLUMN tags TEXT;
    ",
    // 6: what Alertmanager says fires (`POST /alertmanager`), one row an alert by its
    // room's comparison key and its fingerprint, so a restart still lists it in `/status`
    // and says how long it fired when it resolves (`store/sqlite/firing.rs`). `said` is
    // its summary and labels as the room was told, `starts_ms` when it started firing.
    "
    CREATE TABLE firing (
        room_key    TEXT    NOT NULL,
        fingerprint TEXT    NOT NULL,
        room        TEXT    NOT NULL,
        name        TEXT    NOT NULL,
        said        TEXT    NOT NULL,
        priority    INTEGER NOT NULL,
        starts_ms   INTEGER NOT NULL,
        PRIMARY KEY (room_key, fingerprint)
    );
    ",
    // 7: entries committed (and acked) but not yet moved into `entries`, in the order
    // they were committed, with no index to update (`store/sqlite.rs`, `MERGE_INTERVAL`):
    // the writer moves them in batches, so each room's index pages are written once a
    // batch rather than once an entry. The columns are those of `entries`.
    "
    CREATE TABLE staged (
        id       INTEGER NOT NULL,
        ts       INTEGER NOT NULL,
        room_key TEXT    NOT NULL,
        room     TEXT    NOT NULL,
        kind     INTEGER NOT NULL,
        author   TEXT    NOT NULL,
        text     TEXT    NOT NULL,
        fields   TEXT,
        seq      INTEGER NOT NULL,
        account  TEXT,
        tags     TEXT
    );
    ",
    // 8: history in chunks (`store/sqlite/chunks.rs`): a row holds a run of one room's
    // entries, encoded in `data` (`store/sqlite/chunk.rs`), with the range of their numbers
    // in the room's order (`first_seq`, `last_seq`), of their ids and times, and their
    // `count`; the index finds a room's rows in order and answers for ids and counts
    // without reading a row. `batches` replaces `staged`: one row a commit, its entries
    // encoded the same way, until the writer moves them into chunks. `last_ids` holds the
    // largest message id each node minted that this file saw (`meta`'s `last_id` was one
    // for all nodes). The rows of `entries` and `staged` are converted in Rust, in this
    // step's transaction ([`CONVERSIONS`]), and both tables dropped.
    "
    CREATE TABLE chunks (
        room_key  TEXT    NOT NULL,
        first_seq INTEGER NOT NULL,
        last_seq  INTEGER NOT NULL,
        min_id    INTEGER NOT NULL,
        max_id    INTEGER NOT NULL,
        min_ts    INTEGER NOT NULL,
        max_ts    INTEGER NOT NULL,
        count     INTEGER NOT NULL,
        data      BLOB    NOT NULL
    );
    CREATE INDEX chunks_by_room ON chunks (room_key, last_seq, min_id, max_id, count);
    CREATE TABLE batches (
        data BLOB NOT NULL
    );
    CREATE TABLE last_ids (
        node INTEGER PRIMARY KEY,
        id   INTEGER NOT NULL
    );
    ",
    // 9: commits go to a file beside the database (`charla.db-commits`,
    // `store/sqlite/commits.rs`), one record a commit, instead of `batches`; `meta`'s
    // `moved_commit` is the number of the last commit moved into `chunks`, recorded by
    // each move. What a crash of an older charla left in `batches` is moved into `chunks`
    // in this step's transaction ([`CONVERSIONS`]), and the table dropped.
    "
    INSERT OR IGNORE INTO meta (key, value) VALUES ('moved_commit', 0);
    ",
    // 10: the last number of each room some of whose rows were deleted by age
    // (`--history-age`) or by the bound on all rooms (`--history-keep-total`), so a room
    // whose history all went numbers on from it rather than from 1 again: a client
    // resuming from a number it saw must not be given that number twice.
    "
    CREATE TABLE room_floors (
        room_key TEXT    PRIMARY KEY,
        last_seq INTEGER NOT NULL
    );
    ",
];

/// Work done in Rust on a database inside a step's transaction.
type Conversion = fn(&Connection) -> rusqlite::Result<()>;

/// What a step's SQL cannot do, by the step's number (from 0): run after the step's SQL,
/// in its transaction.
const CONVERSIONS: &[(usize, Conversion)] = &[
    (7, super::sqlite::rows_to_chunks),
    (8, super::sqlite::batches_to_chunks),
];

/// The version this build writes: every step applied.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Why a database's schema could not be brought to [`SCHEMA_VERSION`].
#[derive(Debug)]
enum MigrateError {
    /// A newer charla made it; this one would not understand it.
    Newer(i64),
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for MigrateError {
    fn from(e: rusqlite::Error) -> MigrateError {
        MigrateError::Sqlite(e)
    }
}

/// Brings the database `conn` holds to [`SCHEMA_VERSION`], from whatever version it has.
fn migrate(conn: &mut Connection) -> Result<(), MigrateError> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(MigrateError::Newer(found));
    }
    for (done, step) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(step)?;
        for (_, convert) in CONVERSIONS.iter().filter(|(n, _)| *n == done) {
            convert(&tx)?;
        }
        tx.pragma_update(None, "user_version", done as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// [`migrate`], its failure told as the error of the file at `path`.
pub fn migrate_at(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    migrate(conn).map_err(|e| match e {
        MigrateError::Newer(found) => StoreError::NewerSchema {
            path: path.to_owned(),
            found,
        },
        MigrateError::Sqlite(source) => StoreError::Sqlite {
            path: path.to_owned(),
            source,
        },
    })
}
