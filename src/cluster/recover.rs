//! What a node missed. Each room's recent messages are kept in Redis as they are published
//! (its backlog, `link::SAID`); after each subscription (the first, and every one made
//! again after Redis or the subscription failed) the node reads the backlog of every room
//! it knows and of every room Redis has one for, and hears what comes after the last it
//! heard, in order. Numbers the backlog no longer holds are a `gap` for the room's members
//! here. Messages published while the backlog was read arrive live too; those already
//! heard from the backlog are skipped ([`Recovered`]).

use std::collections::{HashMap, HashSet};

use redis::aio::ConnectionManager;

use super::link::{backlog_key, channel, lost_publication, relayed, said_publication, seq_key};
use super::once::Once;
use super::room_state;
use super::wire::{self, Wire};
use super::{Out, PREFIX, Shared};
use crate::hub::{Event, GapCause, Hub, KeptRoom, Nick, Publication, RoomName, SessionId};

/// Keys a `SCAN` step returns, about; a hint to Redis.
const SCAN_COUNT: usize = 1000;

/// The last number heard from each room's backlog, for the live messages that were in it too.
#[derive(Default)]
pub(super) struct Recovered(HashMap<RoomName, u64>);

impl Recovered {
    /// Whether a live publication is new: not a message the backlog gave already. Once a
    /// room's live messages have passed what the backlog gave, the room is not checked
    /// again.
    pub fn fresh(&mut self, publication: &Publication) -> bool {
        if self.0.is_empty() {
            return true;
        }
        let seq = match &publication.event {
            Event::Message(said) => said.seq,
            Event::Posted(posted) => posted.seq,
            Event::Gap { to, .. } => *to,
            _ => return true,
        };
        match self.0.get(&publication.room) {
            Some(&last) if seq <= last => false,
            Some(_) => {
                self.0.remove(&publication.room);
                true
            }
            None => true,
        }
    }
}

/// Reads every backlog and hands the hub what it missed; returns what the live messages
/// are checked against.
pub(super) async fn recover(
    shared: &Shared,
    redis: &mut ConnectionManager,
    hub: &Hub,
) -> redis::RedisResult<Recovered> {
    let emptied = epoch(shared, redis).await?;
    if emptied {
        // Before what was held through the outage is sent (`link::rejoin`): a room this
        // node founded keeps its founder against one made meanwhile on a node cut off.
        let founded: Vec<(RoomName, SessionId)> = {
            let founded = shared.founded.lock().unwrap();
            founded
                .iter()
                .map(|(room, id)| (room.clone(), *id))
                .collect()
        };
        for (room, id) in founded {
            shared.send(Out::Found(room, id, None));
        }
        // The accounts went with Redis's keys: their nicks are free and nobody is logged
        // in to them, here as on every node, and the rooms' copies are written back
        // without them (else whoever registered one of the names again would be its
        // rooms' operator). Those registered since Redis came back are kept.
        let kept = account_names(redis).await?;
        hub.accounts_lost(&kept);
    }
    load_rooms(shared, redis, hub, emptied).await?;
    let mut rooms = hub.last_heard(rooms_with(redis, "log").await?);
    {
        // Numbers this node gave its own messages while Redis was out of reach are not the
        // cluster's: what others said meanwhile is read from before them.
        let outage = shared.outage.lock().unwrap();
        for (room, last) in &mut rooms {
            if let Some(before) = outage.heard_before(room) {
                *last = (*last).min(before);
            }
        }
    }
    if rooms.is_empty() {
        return Ok(Recovered::default());
    }
    let mut pipe = redis::pipe();
    for (room, _) in &rooms {
        pipe.cmd("LRANGE").arg(backlog_key(room)).arg(0).arg(-1);
        pipe.cmd("GET").arg(seq_key(room));
    }
    let answers: Vec<redis::Value> = pipe.query_async(redis).await?;
    let mut recovered = Recovered::default();
    let mut missed = Vec::new();
    for ((room, last), pair) in rooms.into_iter().zip(answers.chunks(2)) {
        let entries: Vec<Vec<u8>> = redis::from_redis_value(pair[0].clone()).unwrap_or_default();
        let counter: Option<u64> = redis::from_redis_value(pair[1].clone()).unwrap_or(None);
        let entries = entries.iter().filter_map(|e| match Wire::parse(e) {
            Ok(entry) => Some(entry),
            Err(e) => {
                tracing::warn!(error = %e, "skipped a bad entry of a room's backlog in Redis");
                None
            }
        });
        let (gap, after) = missed_after(last, counter.unwrap_or(0), entries);
        if let Some((from, to)) = gap {
            tracing::info!(room = %room.as_str(), from, to, "messages missed and no longer in Redis");
            let event = Event::Gap {
                room: room.clone(),
                from,
                to,
                cause: GapCause::NotKept,
            };
            missed.push(Publication {
                room: room.clone(),
                event,
                except: None,
            });
        }
        for (seq, entry) in after {
            if !to_hear(
                shared.node.number(),
                &mut shared.once.lock().unwrap(),
                &entry,
            ) {
                // One of this node's heard here already (held): Redis has it.
                if entry.node() == shared.node.number() {
                    relayed(hub, &entry, &mut missed);
                }
                continue;
            }
            let publication = if entry.is_entry() {
                said_publication(shared, seq, entry)
            } else {
                lost_publication(seq, entry)
            };
            match publication {
                Ok(publication) => {
                    recovered.0.insert(room.clone(), seq);
                    missed.push(publication);
                }
                Err(e) => tracing::warn!(error = %e, "skipped a bad entry of a room's backlog"),
            }
        }
    }
    hub.receive_all(missed);
    Ok(recovered)
}

/// Every hash of `KEYS`; a key of another type is read as `{"!"}` (not a hash), so one
/// foreign key is skipped rather than failing the read of all.
const READ_ROOMS: &str = "local out = {}
for i, k in ipairs(KEYS) do
  if redis.call('TYPE', k).ok == 'hash' then out[i] = redis.call('HGETALL', k) else out[i] = {'!'} end
end
return out";

/// The rooms Redis keeps `kind` of: `log` (a backlog) or `room` (kept state).
async fn rooms_with(
    redis: &mut ConnectionManager,
    kind: &str,
) -> redis::RedisResult<Vec<RoomName>> {
    let prefix = format!("{PREFIX}{kind}:");
    let mut rooms = Vec::new();
    for key in keys_like(redis, &format!("{prefix}*")).await? {
        match wire::room(&key[prefix.len()..]) {
            Ok(room) => rooms.push(room),
            Err(e) => tracing::warn!(error = %e, kind, "skipped a foreign key in Redis"),
        }
    }
    Ok(rooms)
}

/// Every key Redis has that matches `pattern`, a `SCAN` step at a time.
async fn keys_like(
    redis: &mut ConnectionManager,
    pattern: &str,
) -> redis::RedisResult<Vec<String>> {
    let mut keys = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, more): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(SCAN_COUNT)
            .query_async(redis)
            .await?;
        keys.extend(more);
        if next == 0 {
            return Ok(keys);
        }
        cursor = next;
    }
}

/// The names of the accounts Redis has.
async fn account_names(redis: &mut ConnectionManager) -> redis::RedisResult<HashSet<Nick>> {
    let mut names = HashSet::new();
    for key in keys_like(redis, &format!("{PREFIX}account:*")).await? {
        let name: Option<String> = redis::cmd("HGET")
            .arg(&key)
            .arg("name")
            .query_async(redis)
            .await?;
        if let Some(nick) = name.and_then(|name| Nick::parse(&name).ok()) {
            names.insert(nick);
        }
    }
    Ok(names)
}

/// Gives `charla:epoch` a value unless it has one, and returns it.
const EPOCH: &str = "local v = redis.call('GET', KEYS[1])
if v then return v end
redis.call('SET', KEYS[1], ARGV[1])
return ARGV[1]";

/// Whether Redis lost what it kept since this node last read it (restarted without
/// persistence, or emptied): the key one node writes once per Redis's life (`EPOCH`) is
/// gone, or another node wrote it afresh.
async fn epoch(shared: &Shared, redis: &mut ConnectionManager) -> redis::RedisResult<bool> {
    let fresh = format!(
        "{}:{}",
        shared.run,
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    let now: String = redis::cmd("EVAL")
        .arg(EPOCH)
        .arg(1)
        .arg(format!("{PREFIX}epoch"))
        .arg(fresh)
        .query_async(redis)
        .await?;
    let mut known = shared.epoch.lock().unwrap();
    let emptied = known.as_ref().is_some_and(|known| *known != now);
    *known = Some(now);
    Ok(emptied)
}

/// Writes a room's fields (the pairs from `ARGV[3]`) back to Redis from a node's copy of
/// version `ARGV[2]`, and publishes them (`ARGV[1]`, after the version) as replacing the
/// room's: if Redis has no hash for the room, or one written back the same way (marked
/// `r`) from an older copy. A hash changed live since Redis lost its keys is never
/// overwritten: what was done after the loss is newer than any copy from before it.
const RESEED: &str = "if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HEXISTS', KEYS[1], 'r') == 0 then return 0 end
  if tonumber(redis.call('HGET', KEYS[1], 'v') or '0') >= tonumber(ARGV[2]) then return 0 end
  redis.call('DEL', KEYS[1])
end
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'r', '1')
redis.call('PUBLISH', KEYS[2], ARGV[2] .. '\\n' .. ARGV[1])
return 1";

/// Reads every room's kept state from Redis ([`room_state`]): the copy here becomes what
/// Redis has, and the rooms here take it. A change published while it is read arrives
/// live too and is applied again, which changes nothing. When Redis lost what it kept
/// (`emptied`), the rooms it no longer has are written back from the copy here first, so
/// that their topics, modes and bans hold for nodes and rooms to come.
async fn load_rooms(
    shared: &Shared,
    redis: &mut ConnectionManager,
    hub: &Hub,
    emptied: bool,
) -> redis::RedisResult<()> {
    if emptied {
        reseed(shared, redis).await?;
    }
    let rooms = rooms_with(redis, "room").await?;
    let answers: Vec<redis::Value> = if rooms.is_empty() {
        Vec::new()
    } else {
        let mut read = redis::cmd("EVAL");
        read.arg(READ_ROOMS).arg(rooms.len());
        for room in &rooms {
            read.arg(room_state::key(room));
        }
        read.query_async(redis).await?
    };
    let mut loaded = HashMap::new();
    for (room, answer) in rooms.into_iter().zip(answers) {
        match redis::from_redis_value::<room_state::Fields>(answer) {
            Ok(fields) => {
                loaded.insert(room, fields);
            }
            Err(e) => {
                tracing::warn!(room = %room.as_str(), error = %e, "skipped a room's state in Redis that is not a hash of strings")
            }
        }
    }
    let kept: Vec<(RoomName, KeptRoom)> = loaded
        .iter()
        .map(|(room, fields)| (room.clone(), room_state::kept(room, fields)))
        .collect();
    *shared.rooms.lock().unwrap() = loaded;
    for (room, kept) in kept {
        hub.room_kept(&room, kept);
    }
    Ok(())
}

/// Writes back every room this node keeps a copy of ([`RESEED`]), after Redis lost them:
/// a room whose copy is more recent than what another node wrote back first replaces it.
async fn reseed(shared: &Shared, redis: &mut ConnectionManager) -> redis::RedisResult<()> {
    let copies: Vec<(RoomName, room_state::Fields)> = {
        let rooms = shared.rooms.lock().unwrap();
        rooms
            .iter()
            .filter(|(_, fields)| !fields.is_empty())
            .map(|(room, fields)| (room.clone(), fields.clone()))
            .collect()
    };
    if copies.is_empty() {
        return Ok(());
    }
    tracing::info!(
        rooms = copies.len(),
        "Redis lost what rooms keep; writing it back from this node's copy"
    );
    let mut pipe = redis::pipe();
    for (room, fields) in copies {
        let version = room_state::version(&fields);
        let set: Vec<(String, String)> = fields
            .into_iter()
            .filter(|(f, _)| f != room_state::VERSION && f != room_state::WRITTEN_BACK)
            .collect();
        let wire = Wire::RoomKept {
            node: shared.node.number(),
            room: room.as_str().to_string(),
            set: set.clone(),
            del: Vec::new(),
            replace: true,
        };
        pipe.cmd("EVAL")
            .arg(RESEED)
            .arg(2)
            .arg(room_state::key(&room))
            .arg(channel())
            .arg(serde_json::to_string(&wire).expect("plain data serializes"))
            .arg(version);
        for (field, value) in set {
            pipe.arg(field).arg(value);
        }
        pipe.ignore();
    }
    pipe.query_async::<()>(redis).await
}

/// Whether an entry of a backlog is heard here: not one of this node's own published late
/// or not relayed (heard here as said), nor a message heard here already ([`Once`]: one
/// of this node's that fell back, or a copy of one published late).
fn to_hear(node: u16, once: &mut Once, entry: &Wire) -> bool {
    let own = entry.node() == node;
    if own && (entry.is_late() || matches!(entry, Wire::Lost { .. })) {
        return false;
    }
    !once.heard_already(node, entry)
}

/// The first and last number of messages missed and no longer kept.
type Gap = (u64, u64);

/// Of a room's backlog (`entries`, oldest first) and its last number in Redis (`counter`),
/// what a node that heard up to `last` missed: the numbers no longer there (from, to),
/// when it had heard the room before, and the messages (and messages not relayed) after
/// `last`.
fn missed_after(
    last: u64,
    counter: u64,
    entries: impl Iterator<Item = (u64, Wire)>,
) -> (Option<Gap>, Vec<(u64, Wire)>) {
    let after: Vec<(u64, Wire)> = entries
        .filter(|(seq, wire)| *seq > last && (wire.is_entry() || matches!(wire, Wire::Lost { .. })))
        .collect();
    // The newest number not in the backlog: before its first entry after `last`, or the
    // room's last number when none is. A counter below `last` is Redis having lost it.
    let missing_to = after.first().map_or(counter, |(seq, wire)| match wire {
        // Messages not relayed hold the numbers up to theirs.
        Wire::Lost { count, .. } => seq.saturating_sub(*count),
        _ => seq - 1,
    });
    let gap = (last > 0 && missing_to > last).then_some((last + 1, missing_to));
    (gap, after)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(seq: u64) -> (u64, Wire) {
        said_by(1, seq, seq, false)
    }

    /// Message `id` of node `node` as numbered `seq`, published `late` or not.
    fn said_by(node: u16, seq: u64, id: u64, late: bool) -> (u64, Wire) {
        let wire = Wire::Said {
            node,
            room: "#ops".into(),
            id,
            ts: 0,
            from: "ana".into(),
            text: format!("line {seq}"),
            action: false,
            notice: false,
            by: 0,
            account: None,
            tags: None,
            late,
        };
        (seq, wire)
    }

    fn seqs(after: &[(u64, Wire)]) -> Vec<u64> {
        after.iter().map(|(seq, _)| *seq).collect()
    }

    #[test]
    fn what_was_missed_is_what_follows_and_what_is_gone_is_a_gap() {
        // Heard up to 5; the backlog holds 3 to 9: 6 to 9 are delivered, no gap.
        let (gap, after) = missed_after(5, 9, (3..=9).map(said));
        assert_eq!((gap, seqs(&after)), (None, vec![6, 7, 8, 9]));
        // Heard up to 5; the backlog kept only 8 and 9: 6 and 7 are a gap.
        let (gap, after) = missed_after(5, 9, (8..=9).map(said));
        assert_eq!((gap, seqs(&after)), (Some((6, 7)), vec![8, 9]));
        // The backlog is gone but the room went on to 12: all of 6 to 12 are a gap.
        let (gap, after) = missed_after(5, 12, std::iter::empty());
        assert_eq!((gap, after.len()), (Some((6, 12)), 0));
        // Nothing missed; and Redis having lost its numbers (counter below) is no gap.
        assert_eq!(missed_after(9, 9, (3..=9).map(said)).0, None);
        assert_eq!(missed_after(9, 2, std::iter::empty()).0, None);
        // A room never heard here: its whole backlog is history, with no gap to tell.
        let (gap, after) = missed_after(0, 9, (4..=9).map(said));
        assert_eq!((gap, after.len()), (None, 6));
        // Other publications in a backlog are not messages.
        let beat = (
            7,
            Wire::Beat {
                node: 1,
                run: "r".into(),
                presence: 2,
            },
        );
        let (_, after) = missed_after(5, 7, [said(6), beat].into_iter());
        assert_eq!(seqs(&after), [6]);
        // Messages not relayed (10 to 12, told at 12) are given, with a gap only before
        // them (6 to 9).
        let lost = (
            12,
            Wire::Lost {
                node: 2,
                room: "#ops".into(),
                count: 3,
            },
        );
        let (gap, after) = missed_after(5, 12, [lost].into_iter());
        assert_eq!((gap, seqs(&after)), (Some((6, 9)), vec![12]));
    }

    /// Of the messages Redis carries twice, each is heard once: this node's (1) that fell
    /// back and came from the backlog, and another node's (2) published late twice.
    #[test]
    fn a_message_is_taken_from_the_backlog_once() {
        let mut once = Once::default();
        let heard = |once: &mut Once, backlog: &[(u64, Wire)]| -> Vec<u64> {
            backlog
                .iter()
                .filter(|(_, entry)| to_hear(1, once, entry))
                .map(|(seq, _)| *seq)
                .collect()
        };
        // Node 1's message 100 fell back (heard here, numbered here); Redis had run it,
        // as 6. Its message 101 fell back too, but Redis never ran it.
        once.remember(100);
        once.remember(101);
        let backlog = [
            said_by(2, 5, 200, false),
            said_by(1, 6, 100, false),
            said_by(1, 7, 102, false),
        ];
        assert_eq!(heard(&mut once, &backlog), [5, 7]);
        // Node 2's late message 201 was published twice (its first pipeline failed after
        // Redis ran it): heard at 8, not at 9, nor when read again from the backlog.
        let late = [said_by(2, 8, 201, true), said_by(2, 9, 201, true)];
        assert_eq!(heard(&mut once, &late), [8]);
        assert!(heard(&mut once, &late).is_empty());
        // This node's own late messages were heard as they were said.
        assert!(heard(&mut once, &[said_by(1, 10, 103, true)]).is_empty());
    }
}
