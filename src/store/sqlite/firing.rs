//! What Alertmanager says fires, in the history file: one row an alert, written by the
//! writer thread in the order it was handed over, read once at start-up.

use rusqlite::{Connection, params};

use crate::hub::{FiringAlert, RoomName};

/// Writes `alert` as firing in `room`, or deletes its row when it resolved (`None`).
pub(super) fn save(
    conn: &Connection,
    room: &RoomName,
    fingerprint: &str,
    alert: Option<&FiringAlert>,
) -> rusqlite::Result<()> {
    match alert {
        Some(alert) => conn
            .prepare_cached(
                "INSERT INTO firing (room_key, fingerprint, room, name, said, priority, starts_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (room_key, fingerprint) DO UPDATE \
                 SET room = excluded.room, name = excluded.name, said = excluded.said, \
                 priority = excluded.priority, starts_ms = excluded.starts_ms",
            )?
            .execute(params![
                room.key(),
                fingerprint,
                room.as_str(),
                alert.name,
                alert.said,
                alert.priority,
                alert.starts_ms,
            ])?,
        None => conn
            .prepare_cached("DELETE FROM firing WHERE room_key = ?1 AND fingerprint = ?2")?
            .execute(params![room.key(), fingerprint])?,
    };
    Ok(())
}

/// Every alert kept firing, by room and fingerprint; a row whose room is no longer a valid
/// name is skipped.
pub(super) fn read(conn: &Connection) -> rusqlite::Result<Vec<(RoomName, String, FiringAlert)>> {
    let mut select = conn.prepare_cached(
        "SELECT room, fingerprint, name, said, priority, starts_ms FROM firing \
         ORDER BY room_key, fingerprint",
    )?;
    let rows = select.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            FiringAlert {
                name: row.get(2)?,
                said: row.get(3)?,
                priority: row.get(4)?,
                starts_ms: row.get(5)?,
            },
        ))
    })?;
    let mut kept = Vec::new();
    for row in rows {
        let (room, fingerprint, alert) = row?;
        match RoomName::parse(&room) {
            Ok(room) => kept.push((room, fingerprint, alert)),
            Err(_) => tracing::warn!(room, "an alert kept firing names no valid room; skipped"),
        }
    }
    Ok(kept)
}
