//! The `chunks` table: a room's history as runs of its entries, each run one row (schema
//! step 8). The writer adds, for every room said in since its last move, one row holding
//! those entries ([`chunk`]'s encoding), so an entry costs a share of one row and of one
//! index entry rather than a row and two index entries of its own. A room's rows are
//! found in its order by the index on `(room_key, last_seq)`, which also holds each row's
//! ids and count so that reads by id and the count of all entries read no row they skip.
//!
//! Bounds are kept by whole rows: the writer deletes a room's rows whose numbers are all
//! older than what the room keeps, and the oldest rows when all rooms keep too many or
//! when `--history-age` has passed; reads leave out the entries of the row on a boundary,
//! so a room is served exactly what it keeps by number.

use rusqlite::{Connection, params};
use tracing::warn;

use super::chunk::{self, Names, Row};
use crate::hub::{Entry, stored_bytes};

/// Entries one row holds at most: a room said in often between two moves gets several.
/// A read decodes whole rows, so this bounds what it decodes beyond what it serves, and
/// what a room keeps on disk beyond `--history-keep` until the row goes.
pub const CHUNK_ENTRIES: usize = 256;

/// Bytes one row's entries take at most (as [`stored_bytes`] counts them), so a row of long
/// messages stays a few pages; a single entry larger than this still gets a row.
pub const CHUNK_BYTES: usize = 64 * 1024;

/// Adds `entries`, one room's (whose comparison key is `room_key`) in its order, as rows
/// of at most [`CHUNK_ENTRIES`] and [`CHUNK_BYTES`]; returns the entries added. A run that
/// cannot be encoded is logged and left out. Each row is encoded in `buffer`, the caller's,
/// kept from one insert to the next.
pub fn insert(
    conn: &Connection,
    room_key: &str,
    entries: &[&Entry],
    buffer: &mut Vec<u8>,
) -> rusqlite::Result<u64> {
    insert_into(conn, "chunks", room_key, entries, buffer)
}

/// [`insert`] into `table`, `chunks` or a table of its columns.
pub fn insert_into(
    conn: &Connection,
    table: &'static str,
    room_key: &str,
    entries: &[&Entry],
    buffer: &mut Vec<u8>,
) -> rusqlite::Result<u64> {
    let mut insert = conn.prepare_cached(&format!(
        "INSERT INTO {table} \
         (room_key, first_seq, last_seq, min_id, max_id, min_ts, max_ts, count, data) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
    ))?;
    let mut added = 0;
    let mut rest = entries;
    while !rest.is_empty() {
        let mut bytes = 0;
        let mut n = 0;
        while n < rest.len() && n < CHUNK_ENTRIES {
            bytes += stored_bytes(rest[n]);
            if n > 0 && bytes > CHUNK_BYTES {
                break;
            }
            n += 1;
        }
        let (run, after) = rest.split_at(n);
        rest = after;
        let rows: Vec<Row<'_>> = run.iter().map(|entry| Row::of(entry)).collect();
        buffer.clear();
        let encoded = match chunk::encode_into(&rows, buffer) {
            Ok(encoded) => encoded,
            Err(e) => {
                warn!(error = %e, room = room_key, entries = n, "history entries could not be encoded; not kept");
                continue;
            }
        };
        insert.execute(params![
            room_key,
            sql_int(encoded.first_seq),
            sql_int(encoded.last_seq),
            sql_int(encoded.min_id),
            sql_int(encoded.max_id),
            sql_int(encoded.min_ts),
            sql_int(encoded.max_ts),
            sql_int(encoded.count),
            &buffer[..],
        ])?;
        added += encoded.count;
    }
    Ok(added)
}

/// Deletes the rows of `room_key` whose entries are all numbered `cut` or below; returns
/// the entries deleted.
pub fn prune(conn: &Connection, room_key: &str, cut: u64) -> rusqlite::Result<u64> {
    let mut delete = conn.prepare_cached(
        "DELETE FROM chunks WHERE room_key = ?1 AND last_seq <= ?2 RETURNING count",
    )?;
    let counts = delete.query_map(params![room_key, sql_int(cut)], |row| row.get::<_, i64>(0))?;
    counts.sum::<rusqlite::Result<i64>>().map(|n| n as u64)
}

/// Rows looked at a statement when expiring, so the write lock is held briefly.
const EXPIRE_BATCH: i64 = 1_000;

/// Deletes the rows whose entries were all said before `before` (ms since the epoch),
/// oldest rows first (rows are added in time order, so the oldest by rowid are the ones
/// to look at, a few at a time); returns the entries deleted. Entries of a row that is
/// only partly older are left out by reads.
pub fn expire(conn: &Connection, before: u64) -> rusqlite::Result<u64> {
    let mut delete = conn.prepare_cached(
        "DELETE FROM chunks WHERE rowid IN (SELECT rowid FROM chunks ORDER BY rowid LIMIT ?1) \
         AND max_ts < ?2 RETURNING count, room_key, last_seq",
    )?;
    let mut deleted = 0;
    loop {
        let rows: Vec<(i64, String, i64)> = delete
            .query_map(params![EXPIRE_BATCH, sql_int(before)], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        deleted += rows.iter().map(|(count, _, _)| count).sum::<i64>() as u64;
        raise_floors(
            conn,
            rows.iter().map(|(_, room, seq)| (room.as_str(), *seq)),
        )?;
        if (rows.len() as i64) < EXPIRE_BATCH {
            return Ok(deleted);
        }
    }
}

/// Records the last numbers of rooms whose rows are being deleted, or whose last entries
/// a failed commit gave up, so [`last_seq`] still knows them once none of a room's rows
/// is left, or when none ever held them.
pub fn raise_floors<'a>(
    conn: &Connection,
    deleted: impl Iterator<Item = (&'a str, i64)>,
) -> rusqlite::Result<()> {
    let mut raise = conn.prepare_cached(
        "INSERT INTO room_floors (room_key, last_seq) VALUES (?1, ?2) \
         ON CONFLICT (room_key) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq)",
    )?;
    for (room_key, seq) in deleted {
        raise.execute(params![room_key, seq])?;
    }
    Ok(())
}

/// Deletes the oldest rows of all rooms until at least `n` entries have gone; returns the
/// entries deleted.
pub fn drop_oldest(conn: &Connection, n: u64) -> rusqlite::Result<u64> {
    let mut oldest = conn.prepare_cached("SELECT rowid, count FROM chunks ORDER BY rowid")?;
    let mut rows = oldest.query([])?;
    let mut deleted = 0;
    let mut last = None;
    while deleted < n {
        let Some(row) = rows.next()? else { break };
        last = Some(row.get::<_, i64>(0)?);
        deleted += row.get::<_, i64>(1)? as u64;
    }
    drop(rows);
    if let Some(last) = last {
        let rooms: Vec<(String, i64)> = conn
            .prepare_cached("DELETE FROM chunks WHERE rowid <= ?1 RETURNING room_key, last_seq")?
            .query_map([last], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        raise_floors(conn, rooms.iter().map(|(room, seq)| (room.as_str(), *seq)))?;
    }
    Ok(deleted)
}

/// The entries in all rooms' rows (read from the index alone).
pub fn count(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row("SELECT coalesce(sum(count), 0) FROM chunks", [], |row| {
        row.get::<_, i64>(0)
    })
    .map(|n| n as u64)
}

/// The number of the last entry of `room_key` in the file, or of the last deleted by age
/// or the total bound when that is larger (its rows all gone); 0 when it never had one.
pub fn last_seq(conn: &Connection, room_key: &str) -> rusqlite::Result<u64> {
    conn.prepare_cached(
        "SELECT max(coalesce((SELECT max(last_seq) FROM chunks WHERE room_key = ?1), 0), \
                    coalesce((SELECT last_seq FROM room_floors WHERE room_key = ?1), 0))",
    )?
    .query_row([room_key], |row| row.get::<_, i64>(0))
    .map(|seq| seq as u64)
}

/// Which entries of a room a read wants, all of them numbered above the room's cut (what
/// it keeps by number).
#[derive(Debug, Clone, Copy)]
pub enum Read {
    /// The newest, with ids below this (`u64::MAX`: any).
    Before(u64),
    /// The oldest numbered above this.
    AfterSeq(u64),
    /// The oldest, in the room's order, with ids above this.
    AfterId(u64),
}

/// At most `limit` entries of `room_key` that `read` asks for, in the room's order
/// (oldest first), of those numbered above `keep` below its last. A row that cannot be
/// read back is logged and skipped, and so is an entry that no longer passes the checks it
/// passed when said.
pub fn read(
    conn: &Connection,
    room_key: &str,
    keep: usize,
    read: Read,
    limit: usize,
) -> rusqlite::Result<Vec<Entry>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let cut = last_seq(conn, room_key)?.saturating_sub(keep as u64);
    const NEWEST: &str = "SELECT data FROM chunks WHERE room_key = ?1 AND last_seq > ?2 \
                          AND min_id < ?3 ORDER BY last_seq DESC";
    const OLDEST: &str = "SELECT data FROM chunks WHERE room_key = ?1 AND last_seq > ?2 \
                          AND max_id > ?3 ORDER BY last_seq";
    // The rows' ids are tested on the index, before their blobs are read.
    let (sql, from, mark) = match read {
        Read::Before(id) => (NEWEST, cut, sql_int(id)),
        Read::AfterSeq(seq) => (OLDEST, cut.max(seq), -1),
        Read::AfterId(id) => (OLDEST, cut, sql_int(id)),
    };
    let newest_first = matches!(read, Read::Before(_));
    let wanted = |row: &Row<'_>| {
        row.seq > from
            && match read {
                Read::Before(id) => row.id < id,
                Read::AfterSeq(_) => true,
                Read::AfterId(id) => row.id > id,
            }
    };
    let mut statement = conn.prepare_cached(sql)?;
    let mut chunks = statement.query(params![room_key, sql_int(from), mark])?;
    let mut names = Names::default();
    let mut entries = Vec::new();
    while let Some(chunk) = chunks.next()? {
        let blob = chunk.get_ref(0)?.as_blob()?;
        let rows = match chunk::decode(blob) {
            Ok(rows) => rows,
            Err(e) => {
                warn!(error = %e, room = room_key, "a stored run of history could not be read back; skipped");
                continue;
            }
        };
        let mut take = |row: &Row<'_>| {
            if !wanted(row) {
                return;
            }
            match row.entry(&mut names) {
                Some(entry) => entries.push(entry),
                None => warn!(
                    id = row.id,
                    "a stored history entry could not be read back; skipped"
                ),
            }
        };
        if newest_first {
            rows.iter().rev().for_each(&mut take);
        } else {
            rows.iter().for_each(&mut take);
        }
        if entries.len() >= limit {
            break;
        }
    }
    entries.truncate(limit);
    if newest_first {
        entries.reverse();
    }
    Ok(entries)
}

/// `n` as SQLite's integers hold it: numbers past `i64::MAX` (none a server hands out) as
/// the largest.
pub fn sql_int(n: u64) -> i64 {
    n.min(i64::MAX as u64) as i64
}
