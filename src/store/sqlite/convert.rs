//! Schema step 8's conversion: a version-7 file's history, one row an entry in `entries`
//! and `staged`, becomes rows of `chunks`, and the largest id of each node goes to
//! `last_ids`. Run inside the step's transaction, so a crash leaves the file at version 7
//! with its rows, or at version 8 with its chunks.

use std::borrow::Cow;
use std::collections::HashMap;

use rusqlite::{Connection, params};
use serde_json::Value;
use tracing::warn;

use super::chunk::{Names, Row};
use super::chunks::{self, CHUNK_ENTRIES};
use crate::hub::{Entry, Field, NodeId};

/// Moves what `entries` and `staged` hold into `chunks`, a room's entries in its order
/// (by number, then id), then drops both tables and the single `last_id` of `meta`. The
/// rows are added oldest first (by their newest entry's time), as the writer adds them,
/// so that expiring, which looks at the oldest rows first, finds them. An entry that can no
/// longer be read back (as a read would skip it) is logged and left out.
pub fn rows_to_chunks(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch("CREATE TEMP TABLE converted AS SELECT * FROM chunks WHERE 0;")?;
    let mut last_ids: HashMap<u16, u64> = HashMap::new();
    {
        let mut select = conn.prepare(
            "SELECT id, ts, room_key, room, kind, author, text, fields, seq, account, tags \
             FROM entries UNION ALL \
             SELECT id, ts, room_key, room, kind, author, text, fields, seq, account, tags \
             FROM staged ORDER BY room_key, seq, id",
        )?;
        let mut rows = select.query([])?;
        let mut names = Names::default();
        let mut run: Vec<Entry> = Vec::new();
        let mut run_key = String::new();
        while let Some(row) = rows.next()? {
            let id = row.get::<_, i64>(0)? as u64;
            if let Some(node) = NodeId::of_message(id) {
                let last = last_ids.entry(node.number()).or_default();
                *last = (*last).max(id);
            }
            let key = row.get_ref(2)?.as_str()?;
            if key != run_key || run.len() >= CHUNK_ENTRIES {
                flush(conn, &run_key, &mut run)?;
                key.clone_into(&mut run_key);
            }
            let fields = match row.get_ref(7)?.as_str_or_null()? {
                Some(json) => match parse_fields(json) {
                    Some(fields) => fields,
                    None => {
                        warn!(
                            id,
                            "a stored feed entry's fields could not be read; left out"
                        );
                        continue;
                    }
                },
                None => Vec::new(),
            };
            let stored = Row {
                id,
                ts: row.get::<_, i64>(1)? as u64,
                seq: row.get::<_, i64>(8)? as u64,
                room: Cow::Borrowed(row.get_ref(3)?.as_str()?),
                kind: u8::try_from(row.get::<_, i64>(4)?).unwrap_or(u8::MAX),
                author: Cow::Borrowed(row.get_ref(5)?.as_str()?),
                text: Cow::Borrowed(row.get_ref(6)?.as_str()?),
                fields: Cow::Owned(fields),
                account: row.get_ref(9)?.as_str_or_null()?.map(Cow::Borrowed),
                tags: row.get_ref(10)?.as_str_or_null()?.map(Cow::Borrowed),
            };
            match stored.entry(&mut names) {
                Some(entry) => run.push(entry),
                None => warn!(
                    id,
                    "a stored history entry could not be read back; left out"
                ),
            }
        }
        flush(conn, &run_key, &mut run)?;
    }
    conn.execute_batch(
        "INSERT INTO chunks SELECT * FROM temp.converted ORDER BY max_ts, rowid;
         DROP TABLE temp.converted;
         DROP TABLE entries;
         DROP TABLE staged;",
    )?;
    let recorded: Option<i64> = conn
        .query_row("SELECT value FROM meta WHERE key = 'last_id'", [], |row| {
            row.get(0)
        })
        .ok();
    if let Some(node) = recorded.and_then(|id| NodeId::of_message(id as u64)) {
        let last = last_ids.entry(node.number()).or_default();
        *last = (*last).max(recorded.unwrap_or(0) as u64);
    }
    let mut insert = conn.prepare("INSERT INTO last_ids (node, id) VALUES (?1, ?2)")?;
    for (node, id) in last_ids {
        insert.execute(params![node, chunks::sql_int(id)])?;
    }
    conn.execute("DELETE FROM meta WHERE key = 'last_id'", [])?;
    Ok(())
}

/// Adds `run`, the entries of the room keyed `room_key`, to the converted rows.
fn flush(conn: &Connection, room_key: &str, run: &mut Vec<Entry>) -> rusqlite::Result<()> {
    if run.is_empty() {
        return Ok(());
    }
    let refs: Vec<&Entry> = run.iter().collect();
    chunks::insert_into(conn, "temp.converted", room_key, &refs, &mut Vec::new())?;
    run.clear();
    Ok(())
}

/// A feed's details as the first seven schema steps kept them: a JSON array of
/// `[name, value]`.
fn parse_fields(json: &str) -> Option<Vec<(Cow<'static, str>, Field)>> {
    let Value::Array(list) = serde_json::from_str(json).ok()? else {
        return None;
    };
    list.into_iter()
        .map(|pair| {
            let Value::Array(pair) = pair else {
                return None;
            };
            let [Value::String(name), value] = <[Value; 2]>::try_from(pair).ok()? else {
                return None;
            };
            let field = match value {
                Value::String(text) => Field::Text(text),
                Value::Bool(b) => Field::Flag(b),
                Value::Number(n) => Field::Number(n.as_u64()?),
                _ => return None,
            };
            Some((Cow::Owned(name), field))
        })
        .collect()
}
