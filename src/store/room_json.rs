//! A room's topic and bans as JSON: how the SQLite file keeps them (one object a room) and
//! how a cluster keeps them in Redis (one field each), read back the same way.

use serde_json::{Value, json};

use crate::hub::{Ban, BanMask, MessageText, Nick, Topic};

pub fn topic_json(topic: &Topic) -> Value {
    json!({"text": topic.text.as_str(), "by": topic.by.as_str(), "at": topic.at})
}

/// A topic written by [`topic_json`]; `None` when it is not one.
pub fn topic_from(v: &Value) -> Option<Topic> {
    Some(Topic {
        text: MessageText::new(v["text"].as_str()?)?,
        by: Nick::parse(v["by"].as_str()?).ok()?,
        at: v["at"].as_u64()?,
    })
}

pub fn ban_json(ban: &Ban) -> Value {
    json!({
        "mask": ban.mask.as_str(), "account": ban.account.as_ref().map(Nick::as_str),
        "by": ban.by.as_str(), "at": ban.at,
    })
}

/// A ban written by [`ban_json`]; `None` when it is not one.
pub fn ban_from(v: &Value) -> Option<Ban> {
    Some(Ban {
        mask: BanMask::parse(v["mask"].as_str()?).ok()?,
        // Kept from schema step 4 on; a ban kept before accounts followed has none.
        account: v["account"].as_str().and_then(|a| Nick::parse(a).ok()),
        by: Nick::parse(v["by"].as_str()?).ok()?,
        at: v["at"].as_u64()?,
    })
}
