//! Rooms' topics, modes, operators' accounts and bans in the history file: one row a room,
//! its state as one JSON object, written by the writer thread in the order it was handed
//! over, and read once as the room is made.

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};

use crate::hub::{KeptRoom, Modes, Nick, RoomName};
use crate::store::room_json::{ban_from, ban_json, topic_from, topic_json};

/// Writes what `room` keeps, or deletes its row when it keeps nothing.
pub(super) fn save(
    conn: &Connection,
    room: &RoomName,
    kept: Option<&KeptRoom>,
) -> rusqlite::Result<()> {
    match kept {
        Some(kept) => conn
            .prepare_cached(
                "INSERT INTO rooms (key, name, state) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (key) DO UPDATE SET name = excluded.name, state = excluded.state",
            )?
            .execute(params![
                room.key(),
                room.as_str(),
                to_json(kept).to_string()
            ])?,
        None => conn
            .prepare_cached("DELETE FROM rooms WHERE key = ?1")?
            .execute([room.key()])?,
    };
    Ok(())
}

/// The account `name` was deleted: every room kept in the file forgets it
/// ([`KeptRoom::forget_account`]). Rare (an `/unregister`), so every row is read.
pub(crate) fn forget_account(conn: &Connection, name: &Nick) -> rusqlite::Result<()> {
    let mut changed = Vec::new();
    {
        let mut rows = conn.prepare("SELECT key, state FROM rooms")?;
        let rows = rows.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })?;
        for row in rows {
            let (key, state) = row?;
            let kept = serde_json::from_str(&state)
                .ok()
                .and_then(|v| from_json(&v));
            if let Some(mut kept) = kept
                && kept.forget_account(name)
            {
                changed.push((key, to_json(&kept).to_string()));
            }
        }
    }
    let mut update = conn.prepare("UPDATE rooms SET state = ?2 WHERE key = ?1")?;
    for (key, state) in changed {
        update.execute(params![key, state])?;
    }
    Ok(())
}

/// What the file keeps of `room`; `None` when nothing, or nothing this charla can read.
pub(super) fn read(conn: &Connection, room: &RoomName) -> rusqlite::Result<Option<KeptRoom>> {
    let state: Option<String> = conn
        .prepare_cached("SELECT state FROM rooms WHERE key = ?1")?
        .query_row([room.key()], |row| row.get(0))
        .optional()?;
    Ok(state.and_then(|json| {
        let kept = serde_json::from_str(&json).ok().and_then(|v| from_json(&v));
        if kept.is_none() {
            tracing::warn!(room = %room, "a room's kept state could not be read back; it starts afresh");
        }
        kept
    }))
}

fn to_json(kept: &KeptRoom) -> Value {
    let modes = &kept.modes;
    json!({
        "topic": kept.topic.as_ref().map(topic_json),
        "modes": {
            "t": modes.topic_locked, "n": modes.no_outside, "m": modes.moderated,
            "i": modes.invite_only, "s": modes.secret, "k": modes.key, "l": modes.limit,
        },
        "ops": kept.op_accounts.iter().map(Nick::as_str).collect::<Vec<_>>(),
        "bans": kept.bans.iter().map(ban_json).collect::<Vec<_>>(),
    })
}

fn from_json(v: &Value) -> Option<KeptRoom> {
    let nick = |v: &Value| Nick::parse(v.as_str()?).ok();
    let topic = match &v["topic"] {
        Value::Null => None,
        t => Some(topic_from(t)?),
    };
    let m = &v["modes"];
    let modes = Modes {
        topic_locked: m["t"].as_bool()?,
        no_outside: m["n"].as_bool()?,
        moderated: m["m"].as_bool()?,
        invite_only: m["i"].as_bool()?,
        // Kept from `+s` on; a room kept before has none, and was not secret.
        secret: m["s"].as_bool().unwrap_or(false),
        key: m["k"].as_str().map(str::to_owned),
        limit: m["l"].as_u64().map(|l| l as usize),
    };
    let op_accounts = v["ops"]
        .as_array()?
        .iter()
        .map(nick)
        .collect::<Option<_>>()?;
    let bans = v["bans"]
        .as_array()?
        .iter()
        .map(ban_from)
        .collect::<Option<_>>()?;
    Some(KeptRoom {
        topic,
        modes,
        op_accounts,
        bans,
        created: None,
    })
}
