//! What a room keeps (topic, modes, bans, operators' accounts), as a cluster keeps it in
//! Redis: a hash per room, one field per thing, so that a change sets or deletes only its
//! own fields and changes made at once on two nodes to different things both hold. Every
//! node keeps a copy of every room's fields, changed as it hears each change in Redis's
//! one order (its own included), so every node ends with what Redis has.
//!
//! Fields: `topic` (JSON), `t` `n` `m` `i` `s` (`1` or `0`; absent, a new room's), `k` (the
//! key), `l` (the limit), `ban:MASK` (JSON, under the mask folded), `op:ACCOUNT` (the
//! account's name, under its key), `c` (when the room was first made anywhere, ms since
//! the Unix epoch: set once, `link::CREATED`). What does not read back is logged and
//! skipped.

use std::collections::HashMap;

use super::PREFIX;
use crate::hub::{KeptRoom, Modes, Nick, RoomChange, RoomName};
use crate::limits::{MAX_BANS_PER_ROOM, MAX_OP_ACCOUNTS_PER_ROOM};
use crate::store::room_json::{ban_from, ban_json, topic_from, topic_json};

/// A room's fields as Redis has them.
pub type Fields = HashMap<String, String>;

/// Where a room's fields are kept.
pub fn key(room: &RoomName) -> String {
    format!("{PREFIX}room:{}", room.key())
}

/// `changes` as fields to set and fields to delete.
pub fn delta(changes: &[RoomChange]) -> (Vec<(String, String)>, Vec<String>) {
    let (mut set, mut del) = (Vec::new(), Vec::new());
    for change in changes {
        let (field, value) = match change {
            RoomChange::Topic(topic) => (
                "topic".to_string(),
                topic.as_ref().map(|t| topic_json(t).to_string()),
            ),
            RoomChange::Flag(letter, on) => (
                letter.to_string(),
                Some(if *on { "1" } else { "0" }.to_string()),
            ),
            RoomChange::Key(key) => ("k".to_string(), key.clone()),
            RoomChange::Limit(limit) => ("l".to_string(), limit.map(|l| l.to_string())),
            RoomChange::Ban(mask, ban) => (
                format!("ban:{}", mask.key()),
                ban.as_ref().map(|b| ban_json(b).to_string()),
            ),
            RoomChange::OpAccount(account, on) => (
                format!("op:{}", account.key()),
                on.then(|| account.as_str().to_string()),
            ),
        };
        match value {
            Some(value) => set.push((field, value)),
            None => del.push(field),
        }
    }
    (set, del)
}

/// The field holding a room's version: one more with each change Redis makes to the
/// room (`link::ROOM`), so a node's copy says how recent it is.
pub const VERSION: &str = "v";

/// The field holding when the room was first made anywhere (ms since the Unix epoch):
/// set by the first node to make it, never changed after (`link::CREATED`). Missing (a
/// room of older nodes), each node shows when it made the room.
pub const CREATED: &str = "c";

/// The field marking a hash written back from a node's copy after Redis lost its keys, and
/// not changed live since, or made by a room's creation time alone (`link::CREATED`): a
/// more recent copy may still replace it (`recover::RESEED`).
pub const WRITTEN_BACK: &str = "r";

/// A change to a room's fields, as heard.
pub struct Change {
    /// The room's version after it; `0` when not known (an older node's change).
    pub version: u64,
    /// The fields are `set` alone from now on (a copy written back).
    pub replace: bool,
    pub set: Vec<(String, String)>,
    pub del: Vec<String>,
}

/// Applies a change to a room's fields.
pub fn apply(fields: &mut Fields, change: Change) {
    if change.replace {
        fields.clear();
    }
    for (field, value) in change.set {
        fields.insert(field, value);
    }
    for field in change.del {
        fields.remove(&field);
    }
    if change.version > 0 {
        fields.insert(VERSION.to_string(), change.version.to_string());
    }
}

/// A room's version, as its fields say (`0`: none).
pub fn version(fields: &Fields) -> u64 {
    fields
        .get(VERSION)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// What a room's fields say it keeps; a field that does not read back (another program
/// wrote it, or a later charla) is logged and skipped.
pub fn kept(room: &RoomName, fields: &Fields) -> KeptRoom {
    let mut kept = KeptRoom::new_room();
    // In a fixed order, so that every node keeps the same bans and accounts past the bounds.
    let mut sorted: Vec<(&String, &String)> = fields.iter().collect();
    sorted.sort();
    for (field, value) in sorted {
        if let Err(why) = read(&mut kept, field, value) {
            tracing::warn!(room = %room.as_str(), field, why, "skipped a bad field of a room's state in Redis");
        }
    }
    kept
}

fn read(kept: &mut KeptRoom, field: &str, value: &str) -> Result<(), &'static str> {
    let json = || serde_json::from_str::<serde_json::Value>(value).map_err(|_| "not JSON");
    let flag = || match value {
        "1" => Ok(true),
        "0" => Ok(false),
        _ => Err("neither 1 nor 0"),
    };
    let modes: &mut Modes = &mut kept.modes;
    match field {
        // Not what the room keeps, but how recent Redis's copy is.
        VERSION | WRITTEN_BACK => {}
        CREATED => kept.created = Some(value.parse().map_err(|_| "not a time")?),
        "topic" => kept.topic = Some(topic_from(&json()?).ok_or("not a topic")?),
        "t" => modes.topic_locked = flag()?,
        "n" => modes.no_outside = flag()?,
        "m" => modes.moderated = flag()?,
        "i" => modes.invite_only = flag()?,
        "s" => modes.secret = flag()?,
        "k" if Modes::valid_key(value) => modes.key = Some(value.to_string()),
        "k" => return Err("not a valid key"),
        "l" => modes.limit = Some(value.parse().ok().filter(|&l| l > 0).ok_or("not a limit")?),
        _ if field.starts_with("ban:") => {
            if kept.bans.len() >= MAX_BANS_PER_ROOM {
                return Err("more bans than a room keeps");
            }
            kept.bans.push(ban_from(&json()?).ok_or("not a ban")?);
        }
        _ if field.starts_with("op:") => {
            if kept.op_accounts.len() >= MAX_OP_ACCOUNTS_PER_ROOM {
                return Err("more operators' accounts than a room keeps");
            }
            kept.op_accounts
                .push(Nick::parse(value).map_err(|_| "not an account")?);
        }
        _ => return Err("not a field charla writes"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::{Ban, BanMask, MessageText, Topic};

    #[test]
    fn changes_read_back_as_the_room_and_bad_fields_are_skipped() {
        let room = RoomName::parse("#ops").unwrap();
        let ana = Nick::parse("ana").unwrap();
        let mask = BanMask::parse("Bob").unwrap();
        let changes = [
            RoomChange::Topic(Some(Topic {
                text: MessageText::new("deploys at noon").unwrap(),
                by: ana.clone(),
                at: 7,
            })),
            RoomChange::Flag('m', true),
            RoomChange::Flag('t', false),
            RoomChange::Key(Some("sesame".into())),
            RoomChange::Limit(Some(5)),
            RoomChange::Ban(
                mask.clone(),
                Some(Ban {
                    mask: mask.clone(),
                    account: None,
                    by: ana.clone(),
                    at: 8,
                }),
            ),
            RoomChange::OpAccount(ana.clone(), true),
        ];
        let mut fields = Fields::new();
        let (set, del) = delta(&changes);
        apply(&mut fields, change(3, set, del));
        assert_eq!(version(&fields), 3);
        // Foreign or broken fields are skipped, the rest read.
        for (field, value) in [("x", "1"), ("n", "yes"), ("ban:zz", "{"), ("i", "2")] {
            fields.insert(field.into(), value.into());
        }
        let kept = kept(&room, &fields);
        // No creation time kept (an older node's room): each node shows its own.
        assert_eq!(kept.created, None);
        assert_eq!(kept.topic.unwrap().text.as_str(), "deploys at noon");
        assert_eq!(kept.modes.describe(true), "+klmn sesame 5");
        assert_eq!(kept.bans.len(), 1);
        assert!(kept.bans[0].applies(&Nick::parse("bob").unwrap(), None));
        assert_eq!(kept.op_accounts, std::slice::from_ref(&ana));
        // Lifting deletes: the ban, the key, the limit, the topic and the account go.
        let (set, del) = delta(&[
            RoomChange::Ban(BanMask::parse("BOB!*@*").unwrap(), None),
            RoomChange::Key(None),
            RoomChange::Limit(None),
            RoomChange::Topic(None),
            RoomChange::OpAccount(ana, false),
        ]);
        assert!(set.is_empty());
        apply(&mut fields, change(4, set, del));
        let kept = super::kept(&room, &fields);
        assert!(kept.topic.is_none() && kept.bans.is_empty() && kept.op_accounts.is_empty());
        assert_eq!(kept.modes.describe(true), "+mn");
        // A copy written back replaces every field, and the version is no room state.
        let topic = RoomChange::Topic(Some(Topic {
            text: MessageText::new("back").unwrap(),
            by: Nick::parse("bob").unwrap(),
            at: 9,
        }));
        let (set, _) = delta(&[topic]);
        let mut back = change(2, set, Vec::new());
        back.replace = true;
        apply(&mut fields, back);
        assert_eq!(fields.len(), 2, "{fields:?}");
        assert_eq!(version(&fields), 2);
        let kept = super::kept(&room, &fields);
        assert_eq!(kept.topic.unwrap().text.as_str(), "back");
        assert_eq!(kept.modes.describe(true), "+nt");
        // When the room was first made reads back; one that is no time is skipped.
        fields.insert(CREATED.into(), "1700000000123".into());
        assert_eq!(super::kept(&room, &fields).created, Some(1_700_000_000_123));
        fields.insert(CREATED.into(), "noon".into());
        assert_eq!(super::kept(&room, &fields).created, None);
    }

    fn change(version: u64, set: Vec<(String, String)>, del: Vec<String>) -> Change {
        Change {
            version,
            replace: false,
            set,
            del,
        }
    }
}
