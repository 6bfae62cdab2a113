//! What nodes say to each other through Redis: one JSON object per publication, after the
//! room number Redis gave it (`0` when it has none), as `SEQ\nJSON`.
//!
//! Everything read is untrusted (another program may publish on the channel): a payload
//! that does not parse, or names that are not valid, is an error the reader logs and skips.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use crate::hub::{
    AlertAction, Beat, ClientTags, Event, Field, LeaveReason, MessageText, ModeChange, Nick,
    NodeId, Notice, NoticeTarget, PeerCall, PostKind, Publication, RoomName, SessionId, Source,
    TagsTooLong, Topic, describe_changes, sanitize,
};
use crate::limits::{CLUSTER_PAYLOAD_BYTES, CLUSTER_PRESENCE_BATCH_BYTES};

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The forms of presence this node reads, as its heartbeat and hello tell the others
/// (`presence`): 1 (missing, from an older node), one session a publication
/// ([`Wire::Present`]) and a round between [`Wire::Telling`] and [`Wire::Told`]; 2 also a
/// round's sessions in batches ([`Wire::Presents`]), tallies ([`Wire::Tally`]) and
/// [`Wire::Ask`]. A node sends the forms of 2 only while every live node it knows reads
/// them: an older node would skip each as a bad publication. A change to what a tally's
/// digest covers ([`super::tally`]) is a new number; its profiles' digest, added later,
/// is a field older nodes ignore and do not send.
pub const PRESENCE_FORMS: u32 = 2;

fn presence_one() -> u32 {
    1
}

/// One publication on the cluster's channel.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Wire {
    /// A message said in a room; its number is the one before the JSON.
    Said {
        node: u16,
        room: String,
        id: u64,
        ts: u64,
        from: String,
        text: String,
        action: bool,
        notice: bool,
        /// The session that said it, which does not hear it back.
        by: u64,
        /// The account it is logged in to (IRCv3 `account-tag`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        /// Its client-only tags (IRCv3 `message-tags`), as [`ClientTags`] writes them;
        /// missing (from an older node) reads as none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tags: Option<String>,
        /// Said while Redis was out of reach and published once it was back: its own node
        /// heard it then, and does not again.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        late: bool,
    },
    /// A feed's notice or alert posted into a room; numbered as a message is.
    Posted {
        node: u16,
        room: String,
        id: u64,
        ts: u64,
        source: String,
        alert: bool,
        text: String,
        /// Its details for programs, as JSON values (strings, numbers, booleans).
        fields: Vec<(String, serde_json::Value)>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        late: bool,
    },
    /// `count` messages said in `room` on `node` while Redis was out of reach were not
    /// relayed (past the bound of what a node holds): the last of the numbers they were
    /// given is the one before the JSON.
    Lost { node: u16, room: String, count: u64 },
    Joined {
        node: u16,
        room: String,
        nick: String,
        count: usize,
        /// The account the joiner is logged in to (IRCv3 `extended-join`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        /// The joiner's away message when it joined away (IRC `away-notify`); absent from
        /// nodes that predate it, which is read as not away.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        away: Option<String>,
    },
    Left {
        node: u16,
        room: String,
        nick: String,
        reason: String,
        message: Option<String>,
    },
    /// What `room` keeps changed: fields of its hash in Redis set and deleted
    /// ([`super::room_state`]), as the script that publishes this changed them there; its
    /// number is the room's version after the change (`0` from an older node). `replace`:
    /// the hash was written afresh from a node's copy, and holds `set` only.
    RoomKept {
        node: u16,
        room: String,
        set: Vec<(String, String)>,
        del: Vec<String>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        replace: bool,
    },
    /// `by` set the topic of `room` (`text` `None`: cleared it), at `at`.
    Topic {
        node: u16,
        room: String,
        by: String,
        text: Option<String>,
        at: u64,
    },
    /// `by` changed the modes of `room`, as IRC writes them (`+ov-k ana bob *`).
    Modes {
        node: u16,
        room: String,
        by: String,
        changes: String,
    },
    Kicked {
        node: u16,
        room: String,
        nick: String,
        by: String,
        reason: Option<String>,
    },
    /// `by` invited session `to`, called `nick`, into `room`.
    Invite {
        node: u16,
        to: u64,
        room: String,
        nick: String,
        by: String,
    },
    /// The account `name` was registered (or deleted) on `node`: its nick is protected
    /// (or free) on every node.
    Account {
        node: u16,
        name: String,
        registered: bool,
    },
    /// A private message to session `to`.
    Private {
        node: u16,
        to: u64,
        id: u64,
        ts: u64,
        from: String,
        nick: String,
        text: String,
        notice: bool,
        /// The account the sender is logged in to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        /// Its client-only tags, as a message's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tags: Option<String>,
    },
    /// Client-only tags with no message (IRC's TAGMSG) to `room`'s members, or (with no
    /// room) to session `to`, called `nick`: neither numbered nor kept, and not heard by
    /// its own node again (its members there heard it as it was sent). A node older than
    /// it logs it as a bad publication and skips it.
    Tagged {
        node: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        room: Option<String>,
        #[serde(default, skip_serializing_if = "is_zero")]
        to: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nick: Option<String>,
        id: u64,
        ts: u64,
        from: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        tags: String,
    },
    /// A session of `node` as it is now (all of its state: the newest replaces what was
    /// known).
    Present {
        node: u16,
        #[serde(flatten)]
        session: SessionState,
        /// Told anew (after an outage, or to a node that joined), not as it changed: joins,
        /// leaves and renames it made meanwhile may not have been heard, and whoever finds
        /// it changed announces them. Missing (from an older node) reads as live.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        again: bool,
        /// The round of `node`'s whole presence told anew (`Telling`) this is part of; `0`
        /// (missing) for one told as it changed.
        #[serde(default, skip_serializing_if = "is_zero")]
        round: u64,
    },
    /// Sessions of `node` told anew in round `round` (`Telling`), as many as fit in
    /// [`CLUSTER_PRESENCE_BATCH_BYTES`]: each as a `Present` marked `again` and with the
    /// round would tell it. Sent only while every live node reads it ([`PRESENCE_FORMS`]).
    Presents {
        node: u16,
        round: u64,
        sessions: Vec<SessionState>,
    },
    /// `node` tells all its sessions anew, in round `round` (after an outage, to a node
    /// that joined, or asked by one whose tally differed: `Ask`): its `Presents` (or, to
    /// a cluster with an older node, `Present`s) of that round follow, then `Told`.
    Telling { node: u16, round: u64 },
    /// `node` told all its sessions in round `round`, `sessions` of them: whoever heard the
    /// round whole knows every session `node` has now, and forgets the others it knew
    /// there (they ended while their `Absent` could not be heard).
    Told {
        node: u16,
        round: u64,
        sessions: u64,
    },
    /// When sessions of `node` that spoke since its last report last did (session,
    /// milliseconds since the Unix epoch): sent every `CLUSTER_ACTIVITY_EVERY`, for idle
    /// times.
    Active { node: u16, spoke: Vec<(u64, u64)> },
    Absent {
        node: u16,
        session: u64,
        /// Told anew after an outage (the first may have been lost with it): whoever still
        /// knew the session announces that it left its rooms.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        again: bool,
    },
    /// How many sessions `node` has, and their digests ([`super::tally`]), queued after
    /// every presence it told before: sent every [`crate::limits::CLUSTER_TALLY_EVERY`], numbered
    /// (`tally`) from the node's start. Sent only while every live node reads it.
    Tally {
        node: u16,
        tally: u64,
        sessions: u64,
        digest: u64,
        /// Its sessions' profiles' digest ([`super::tally::profile`]); missing from an
        /// older node (then not compared), and ignored by one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        profiles: Option<u64>,
    },
    /// `node` knows the sessions of node `of` otherwise than its tally `tally` says: `of`
    /// tells them all anew (a round), unless it began one since that tally.
    Ask { node: u16, of: u16, tally: u64 },
    /// `node` is alive; `run` tells a restarted node from the one before it; `presence`:
    /// the forms of presence it reads ([`PRESENCE_FORMS`]; missing, from an older node, 1).
    Beat {
        node: u16,
        run: String,
        #[serde(default = "presence_one")]
        presence: u32,
    },
    /// `node` (re)joined the cluster: every other node says who it has (a round,
    /// `Telling` to `Told`).
    Hello {
        node: u16,
        run: String,
        #[serde(default = "presence_one")]
        presence: u32,
    },
    /// What the checks and heartbeats of `node` (called `name`, `--node-name`) report, for
    /// `/status` ([`super::alerts`]): report `report`, in as many publications as
    /// [`crate::limits::CLUSTER_ALERTS_BATCH_BYTES`] needs, `last` on its last; a report
    /// replaces the one before once its last part came.
    Alerts {
        node: u16,
        name: String,
        report: u64,
        items: Vec<AlertItem>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        last: bool,
    },
    /// `node` asks the nodes `to` to take a call (`asked`) for their check or heartbeat
    /// `name`, each as its own; each answers ([`Wire::Answer`]) unless `call` is 0.
    Call {
        node: u16,
        to: Vec<u16>,
        call: u64,
        name: String,
        asked: CallWire,
    },
    /// `node` answers call `call` of node `to`: the status of what it called (`status`),
    /// or why it did not (`error`).
    Answer {
        node: u16,
        to: u16,
        call: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<AlertItem>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// `node` is shutting down: its sessions are gone.
    Gone { node: u16 },
}

/// A session of a node as its presence tells it ([`Wire::Present`], [`Wire::Presents`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionState {
    /// Its id, which names its node.
    pub session: u64,
    pub nick: String,
    pub rooms: Vec<String>,
    /// Those of `rooms` it is an operator of, and voiced in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ops: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub voiced: Vec<String>,
    /// Its away message, account and sign-on time, for WHOIS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub away: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(default)]
    pub signon: u64,
    /// Its user name and real name (IRC's USER) and whether it is a server operator,
    /// for WHO, WHOIS and LUSERS; missing (from an older node) reads as none and no.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realname: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub oper: bool,
    /// IRC's user mode `+i` (WHO masks, LUSERS); missing (from an older node) reads as
    /// not invisible.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub invisible: bool,
    /// When it last said something, as of its node's last report of activity
    /// (`Active`); missing (from an older node) reads as not known (no idle time).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub spoke: u64,
}

impl Wire {
    /// What an operator did in a room: a topic, modes, a kick.
    pub fn is_room_event(&self) -> bool {
        matches!(
            self,
            Wire::Topic { .. } | Wire::Modes { .. } | Wire::Kicked { .. }
        )
    }

    /// The node that published it.
    pub fn node(&self) -> u16 {
        match self {
            Wire::Said { node, .. }
            | Wire::Posted { node, .. }
            | Wire::Lost { node, .. }
            | Wire::Joined { node, .. }
            | Wire::Left { node, .. }
            | Wire::Private { node, .. }
            | Wire::Tagged { node, .. }
            | Wire::RoomKept { node, .. }
            | Wire::Account { node, .. }
            | Wire::Topic { node, .. }
            | Wire::Modes { node, .. }
            | Wire::Kicked { node, .. }
            | Wire::Invite { node, .. }
            | Wire::Present { node, .. }
            | Wire::Absent { node, .. }
            | Wire::Telling { node, .. }
            | Wire::Told { node, .. }
            | Wire::Presents { node, .. }
            | Wire::Tally { node, .. }
            | Wire::Ask { node, .. }
            | Wire::Active { node, .. }
            | Wire::Beat { node, .. }
            | Wire::Hello { node, .. }
            | Wire::Alerts { node, .. }
            | Wire::Call { node, .. }
            | Wire::Answer { node, .. }
            | Wire::Gone { node } => *node,
        }
    }

    /// What the hub publishes that other nodes hear: messages, joins and leaves, and what
    /// operators do in rooms (topics, modes, kicks).
    pub fn of(node: NodeId, publication: &Publication) -> Option<Wire> {
        let node = node.number();
        let room = publication.room.as_str().to_string();
        Some(match &publication.event {
            Event::Message(said) => Wire::Said {
                node,
                room,
                id: said.id,
                ts: said.ts,
                from: said.from.as_str().to_string(),
                text: said.text.as_str().to_string(),
                action: said.action,
                notice: said.notice,
                by: publication.except.map_or(0, SessionId::bits),
                account: said.account.as_ref().map(|a| a.as_str().to_string()),
                tags: said.tags.as_ref().map(|t| t.as_str().to_string()),
                late: false,
            },
            Event::Posted(posted) => Wire::Posted {
                node,
                room,
                id: posted.id,
                ts: posted.ts,
                source: posted.notice.source.as_str().to_string(),
                alert: posted.notice.kind == PostKind::Alert,
                text: posted.notice.text.as_str().to_string(),
                fields: posted
                    .notice
                    .fields
                    .iter()
                    .map(|(name, value)| (name.to_string(), field_json(value)))
                    .collect(),
                late: false,
            },
            Event::Joined {
                nick,
                count,
                account,
                away,
                ..
            } => Wire::Joined {
                node,
                room,
                nick: nick.as_str().to_string(),
                count: *count,
                account: account.as_ref().map(|a| a.as_str().to_string()),
                away: away.as_ref().map(|a| a.as_str().to_string()),
            },
            Event::Left { nick, reason, .. } => Wire::Left {
                node,
                room,
                nick: nick.as_str().to_string(),
                reason: reason.code().to_string(),
                message: reason.message().map(|m| m.as_str().to_string()),
            },
            Event::TopicChanged { by, topic, .. } => Wire::Topic {
                node,
                room,
                by: by.as_str().to_string(),
                text: topic.as_ref().map(|t| t.text.as_str().to_string()),
                at: topic.as_ref().map_or(0, |t| t.at),
            },
            Event::ModeChanged { by, changes, .. } => Wire::Modes {
                node,
                room,
                by: by.as_str().to_string(),
                changes: describe_changes(changes),
            },
            Event::TagsOnly {
                id,
                ts,
                from,
                account,
                to: NoticeTarget::Room(_),
                tags,
            } => Wire::Tagged {
                node,
                room: Some(room),
                to: 0,
                nick: None,
                id: *id,
                ts: *ts,
                from: from.as_str().to_string(),
                account: account.as_ref().map(|a| a.as_str().to_string()),
                tags: tags.as_str().to_string(),
            },
            Event::Kicked {
                nick, by, reason, ..
            } => Wire::Kicked {
                node,
                room,
                nick: nick.as_str().to_string(),
                by: by.as_str().to_string(),
                reason: reason.as_ref().map(|r| r.as_str().to_string()),
            },
            _ => return None,
        })
    }

    /// Marks a message or a post as published after an outage ([`Wire::Said`]'s `late`).
    pub fn make_late(&mut self) {
        if let Wire::Said { late, .. } | Wire::Posted { late, .. } = self {
            *late = true;
        }
    }

    /// The id of a message or a post, minted by its node.
    pub fn entry_id(&self) -> Option<u64> {
        match self {
            Wire::Said { id, .. } | Wire::Posted { id, .. } => Some(*id),
            _ => None,
        }
    }

    /// Whether this is a message or a post published after an outage.
    pub fn is_late(&self) -> bool {
        matches!(
            self,
            Wire::Said { late: true, .. } | Wire::Posted { late: true, .. }
        )
    }

    /// Whether this is what a room keeps in its history and numbers: a message or a post.
    pub fn is_entry(&self) -> bool {
        matches!(self, Wire::Said { .. } | Wire::Posted { .. })
    }

    /// `SEQ\nJSON`.
    pub fn payload(&self, seq: u64) -> String {
        let json = serde_json::to_string(self).expect("plain data serializes");
        format!("{seq}\n{json}")
    }

    /// Reads a payload: its number and what it says.
    pub fn parse(payload: &[u8]) -> Result<(u64, Wire), String> {
        if payload.len() > CLUSTER_PAYLOAD_BYTES {
            return Err(format!("{} bytes, more than allowed", payload.len()));
        }
        let text = std::str::from_utf8(payload).map_err(|e| e.to_string())?;
        let (seq, json) = text.split_once('\n').ok_or("no number line")?;
        let seq: u64 = seq.parse().map_err(|_| format!("bad number {seq:?}"))?;
        let wire = serde_json::from_str(json).map_err(|e| e.to_string())?;
        Ok((seq, wire))
    }
}

/// The publications of round `round` of `node`'s sessions (`SEQ\nJSON`, each a
/// [`Wire::Presents`]), as many sessions each as fit in [`CLUSTER_PRESENCE_BATCH_BYTES`]
/// (a session longer than that alone). Each session is serialized once, into its
/// publication.
pub fn presents_payloads(node: u16, round: u64, sessions: &[SessionState]) -> Vec<Vec<u8>> {
    let head = format!("0\n{{\"t\":\"presents\",\"node\":{node},\"round\":{round},\"sessions\":[");
    const TAIL: &[u8] = b"]}";
    let mut payloads = Vec::new();
    let mut payload = head.clone().into_bytes();
    let mut json = Vec::new();
    for session in sessions {
        json.clear();
        serde_json::to_writer(&mut json, session).expect("plain data serializes");
        let empty = payload.len() == head.len();
        if !empty && payload.len() + 1 + json.len() + TAIL.len() > CLUSTER_PRESENCE_BATCH_BYTES {
            payload.extend_from_slice(TAIL);
            payloads.push(std::mem::replace(&mut payload, head.clone().into_bytes()));
        } else if !empty {
            payload.push(b',');
        }
        payload.extend_from_slice(&json);
    }
    if payload.len() > head.len() {
        payload.extend_from_slice(TAIL);
        payloads.push(payload);
    }
    payloads
}

pub fn room(name: &str) -> Result<RoomName, String> {
    RoomName::parse(name).map_err(|e| format!("room {name:?}: {e}"))
}

pub fn nick(name: &str) -> Result<Nick, String> {
    Nick::parse(name).map_err(|e| format!("nick {name:?}: {e}"))
}

pub fn text(text: &str) -> Result<MessageText, String> {
    MessageText::new(text).ok_or_else(|| "empty text".to_string())
}

/// Client-only tags as published, kept as a client's are: a tag no client could have sent
/// is dropped, and more than [`crate::limits::MAX_CLIENT_TAGS_BYTES`] of them is an error.
pub fn tags(tags: Option<&str>) -> Result<Option<ClientTags>, String> {
    match tags {
        None => Ok(None),
        Some(tags) => ClientTags::from_section(tags)
            .map_err(|TagsTooLong| "client tags longer than allowed".to_string()),
    }
}

fn field_json(field: &Field) -> serde_json::Value {
    match field {
        Field::Text(text) => text.as_str().into(),
        Field::Number(n) => (*n).into(),
        Field::Flag(b) => (*b).into(),
    }
}

/// A check's or heartbeat's status in `room`, as a node reports or answers it.
#[derive(Debug, Serialize, Deserialize)]
pub struct AlertItem {
    pub room: String,
    pub source: String,
    pub alert: bool,
    pub text: String,
    pub fields: Vec<(String, serde_json::Value)>,
}

/// A call to another node's check or heartbeat ([`Wire::Call`]).
#[derive(Debug, Serialize, Deserialize)]
pub struct CallWire {
    /// `alive`, `start`, `finish` (a job's beat); `ack`, `silence`, `unsilence` (by `by`).
    pub what: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// An acknowledgement's note, a silence's reason, a finished run's output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// A silence's length, a finished run's time, in milliseconds.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ms: u64,
    /// A finished run's exit status.
    #[serde(default)]
    pub status: i32,
}

/// `notice`, the status of a check or heartbeat in `room`, as published.
pub fn alert_item(room: &RoomName, notice: &Notice) -> AlertItem {
    AlertItem {
        room: room.as_str().to_string(),
        source: notice.source.as_str().to_string(),
        alert: notice.kind == PostKind::Alert,
        text: notice.text.as_str().to_string(),
        fields: notice
            .fields
            .iter()
            .map(|(name, value)| (name.to_string(), field_json(value)))
            .collect(),
    }
}

/// A published status, its room, text and details checked as a feed's post's are.
pub fn read_item(item: AlertItem) -> Result<(RoomName, Notice), String> {
    let room = room(&item.room)?;
    Ok((
        room,
        notice(&item.source, item.alert, &item.text, item.fields)?,
    ))
}

/// `items` in batches of at most `bytes` of JSON each (one alone longer goes alone); one
/// empty batch when there are none, so a report is always heard to its end.
pub fn batches(items: Vec<AlertItem>, bytes: usize) -> Vec<Vec<AlertItem>> {
    let mut batches = vec![Vec::new()];
    let mut size = 0;
    for item in items {
        let len = serde_json::to_string(&item).map_or(0, |json| json.len() + 1);
        let last = batches.last_mut().expect("one batch at least");
        if !last.is_empty() && size + len > bytes {
            batches.push(Vec::new());
            size = 0;
        }
        size += len;
        batches.last_mut().expect("one batch at least").push(item);
    }
    batches
}

/// `call` as published.
pub fn call_wire(call: &PeerCall) -> CallWire {
    let mut wire = CallWire {
        what: String::new(),
        by: None,
        note: None,
        ms: 0,
        status: 0,
    };
    match call {
        PeerCall::Beat(Beat::Alive) => wire.what = "alive".into(),
        PeerCall::Beat(Beat::Started) => wire.what = "start".into(),
        PeerCall::Beat(Beat::Finished {
            status,
            took_ms,
            output,
        }) => {
            wire.what = "finish".into();
            wire.status = *status;
            wire.ms = *took_ms;
            wire.note = output.clone();
        }
        PeerCall::Act { action, by } => {
            wire.by = Some(by.as_str().to_string());
            match action {
                AlertAction::Ack { note } => {
                    wire.what = "ack".into();
                    wire.note = note.clone();
                }
                AlertAction::Silence { lasting, reason } => {
                    wire.what = "silence".into();
                    wire.ms = lasting.as_millis() as u64;
                    wire.note = reason.clone();
                }
                AlertAction::Unsilence => wire.what = "unsilence".into(),
            }
        }
    }
    wire
}

/// A published call, its nick checked as a client's is; notes and output are cut by the
/// feed that takes them, as a local call's are.
pub fn peer_call(wire: CallWire) -> Result<PeerCall, String> {
    let by = || -> Result<Nick, String> {
        nick(wire.by.as_deref().ok_or("a call with no one calling")?)
    };
    Ok(match wire.what.as_str() {
        "alive" => PeerCall::Beat(Beat::Alive),
        "start" => PeerCall::Beat(Beat::Started),
        "finish" => PeerCall::Beat(Beat::Finished {
            status: wire.status,
            took_ms: wire.ms,
            output: wire.note,
        }),
        "ack" => PeerCall::Act {
            by: by()?,
            action: AlertAction::Ack { note: wire.note },
        },
        "silence" => PeerCall::Act {
            by: by()?,
            action: AlertAction::Silence {
                lasting: std::time::Duration::from_millis(wire.ms),
                reason: wire.note,
            },
        },
        "unsilence" => PeerCall::Act {
            by: by()?,
            action: AlertAction::Unsilence,
        },
        other => return Err(format!("an unknown call {other:?}")),
    })
}

/// A feed's post as published: its text and details checked as a feed's are.
pub fn notice(
    source: &str,
    alert: bool,
    text: &str,
    fields: Vec<(String, serde_json::Value)>,
) -> Result<Notice, String> {
    let source = Source::new(source).ok_or("empty source")?;
    let kind = if alert {
        PostKind::Alert
    } else {
        PostKind::Notice
    };
    let mut notice = Notice::new(source, kind, self::text(text)?);
    for (name, value) in fields {
        let field = match value {
            serde_json::Value::String(s) => Field::Text(sanitize(&s)),
            serde_json::Value::Bool(b) => Field::Flag(b),
            serde_json::Value::Number(n) => {
                Field::Number(n.as_u64().ok_or("a negative or fractional detail")?)
            }
            other => {
                return Err(format!(
                    "a detail {other} is not a string, number or boolean"
                ));
            }
        };
        notice.fields.push((Cow::Owned(sanitize(&name)), field));
    }
    Ok(notice)
}

/// A room event another node published ([`Wire::Topic`], [`Wire::Modes`],
/// [`Wire::Kicked`]), its names and text checked as a client's are.
pub fn room_event(wire: Wire) -> Result<Publication, String> {
    let (room, event) = match wire {
        Wire::Topic {
            room, by, text, at, ..
        } => {
            let by = nick(&by)?;
            let topic = match text {
                Some(t) => Some(Topic {
                    text: self::text(&t)?,
                    by: by.clone(),
                    at,
                }),
                None => None,
            };
            let room = self::room(&room)?;
            let event = Event::TopicChanged {
                room: room.clone(),
                by,
                topic,
            };
            (room, event)
        }
        Wire::Modes {
            room, by, changes, ..
        } => {
            let room = self::room(&room)?;
            let event = Event::ModeChanged {
                room: room.clone(),
                by: nick(&by)?,
                changes: mode_changes(&changes)?,
            };
            (room, event)
        }
        Wire::Kicked {
            room,
            nick: kicked,
            by,
            reason,
            ..
        } => {
            let room = self::room(&room)?;
            let event = Event::Kicked {
                room: room.clone(),
                nick: nick(&kicked)?,
                by: nick(&by)?,
                reason: reason.as_deref().and_then(MessageText::new),
            };
            (room, event)
        }
        other => return Err(format!("not a room event: {other:?}")),
    };
    Ok(Publication {
        room,
        event,
        except: None,
    })
}

/// Mode changes as [`describe_changes`] wrote them.
fn mode_changes(written: &str) -> Result<Vec<ModeChange>, String> {
    let mut words = written.split(' ');
    let letters = words.next().unwrap_or("");
    let args: Vec<&str> = words.collect();
    match crate::protocol::modes::parse(letters, &args) {
        Ok(crate::protocol::modes::ModeRequest::Change(changes)) => Ok(changes),
        Ok(_) => Err(format!("no mode changes in {written:?}")),
        Err(refused) => Err(format!(
            "mode changes {written:?}: {}",
            refused.refusal.message
        )),
    }
}

/// The leave reason a `Left` names by its code.
pub fn reason(code: &str, message: Option<&str>) -> Result<LeaveReason, String> {
    let message = message.and_then(MessageText::new);
    Ok(match code {
        "left" => LeaveReason::Left(message),
        "quit" => LeaveReason::Quit(message),
        "connection_lost" => LeaveReason::ConnectionLost,
        "timed_out" => LeaveReason::TimedOut,
        "flooding" => LeaveReason::Flooding,
        "send_queue_exceeded" => LeaveReason::SendQueueExceeded,
        "line_too_long" => LeaveReason::LineTooLong,
        "server_shutdown" => LeaveReason::ServerShutdown,
        other => return Err(format!("unknown leave reason {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `link::SAID_ONCE` finds a message in a room's backlog by its id as the JSON writes
    /// it, `"id":N,`: a message's and a post's JSON have it once, and neither a text
    /// quoting it nor a post's field named `id` has it again.
    #[test]
    fn a_message_is_found_in_a_backlog_by_its_id_as_the_json_writes_it() {
        let said = Wire::Said {
            node: 1,
            room: "#ops".into(),
            id: 4242,
            ts: 0,
            from: "ana".into(),
            text: r#"{"id":4242,"id":4242}"#.into(),
            action: false,
            notice: false,
            by: 0,
            account: None,
            tags: Some(r#"+draft/react="id":4242,"#.into()),
            late: false,
        };
        let posted = Wire::Posted {
            node: 1,
            room: "#ops".into(),
            id: 4242,
            ts: 0,
            source: "watch".into(),
            alert: false,
            text: "t".into(),
            fields: vec![("id".into(), serde_json::json!(4242))],
            late: true,
        };
        for wire in [said, posted] {
            let json = serde_json::to_string(&wire).unwrap();
            assert_eq!(json.matches(r#""id":4242,"#).count(), 1, "{json}");
            assert_eq!(json.matches(r#""id":424,"#).count(), 0, "{json}");
        }
    }

    /// A message's client tags cross as a client's are kept: a payload without them (from
    /// an older node) reads as none, a field a node does not know is skipped, a tag no
    /// client could send is dropped, and more than a client may send is an error.
    #[test]
    fn client_tags_cross_bounded_and_older_payloads_read_as_none() {
        let old = br##"7
{"t":"said","node":2,"room":"#ops","id":9,"ts":1,"from":"ana","text":"hi","action":false,"notice":false,"by":0,"later":{"x":1}}"##;
        let (_, wire) = Wire::parse(old).unwrap();
        assert!(matches!(&wire, Wire::Said { tags: None, .. }), "{wire:?}");
        assert_eq!(tags(None), Ok(None));
        let kept = tags(Some("+draft/react=x;+bad key=1;msgid=3"))
            .unwrap()
            .unwrap();
        assert_eq!(kept.as_str(), "+draft/react=x");
        let long = format!("+a={}", "x".repeat(crate::limits::MAX_CLIENT_TAGS_BYTES));
        assert!(tags(Some(&long)).is_err());
        // A TAGMSG names a room, or a session and its nick.
        let tagged = Wire::Tagged {
            node: 2,
            room: None,
            to: 77,
            nick: Some("cy".into()),
            id: 1,
            ts: 1,
            from: "ana".into(),
            account: None,
            tags: "+typing=active".into(),
        };
        let json = tagged.payload(0);
        assert!(
            !json.contains("room") && !json.contains("account"),
            "{json}"
        );
        let (_, back) = Wire::parse(json.as_bytes()).unwrap();
        assert!(matches!(back, Wire::Tagged { to: 77, .. }), "{back:?}");
    }

    #[test]
    fn a_payload_reads_back_and_bad_ones_are_errors() {
        let beat = Wire::Beat {
            node: 3,
            run: "ab".into(),
            presence: PRESENCE_FORMS,
        };
        let (seq, back) = Wire::parse(beat.payload(7).as_bytes()).unwrap();
        assert_eq!(seq, 7);
        assert!(
            matches!(back, Wire::Beat { node: 3, run, presence: PRESENCE_FORMS } if run == "ab")
        );
        // An older node's heartbeat and hello say nothing of the forms it reads: 1.
        for old in [
            &br#"0
{"t":"beat","node":3,"run":"ab"}"#[..],
            br#"0
{"t":"hello","node":3,"run":"ab"}"#,
        ] {
            let (_, back) = Wire::parse(old).unwrap();
            assert!(
                matches!(
                    back,
                    Wire::Beat { presence: 1, .. } | Wire::Hello { presence: 1, .. }
                ),
                "{back:?}"
            );
        }
        for bad in [
            &b"hello"[..],
            b"x\n{}",
            b"1\n{\"t\":\"nope\"}",
            b"1\n{\"t\":\"beat\"}",
            b"\xff\n{}",
        ] {
            assert!(Wire::parse(bad).is_err(), "{bad:?}");
        }
        let long = vec![b'1'; CLUSTER_PAYLOAD_BYTES + 1];
        assert!(Wire::parse(&long).is_err());
        assert!(room("no spaces").is_err() && nick("9lives").is_err());
        assert!(reason("left", Some("bye")).is_ok() && reason("eaten", None).is_err());
    }

    #[test]
    fn presence_from_an_older_node_reads_as_no_user_name_no_operator_and_not_invisible() {
        let old = br##"1
{"t":"present","node":2,"session":9,"nick":"ana","rooms":["#ops"],"signon":5}"##;
        let (_, wire) = Wire::parse(old).unwrap();
        let Wire::Present {
            session:
                SessionState {
                    user,
                    realname,
                    oper,
                    invisible,
                    spoke,
                    ..
                },
            ..
        } = wire
        else {
            panic!("not a presence: {wire:?}");
        };
        assert!(user.is_none() && realname.is_none() && !oper && !invisible && spoke == 0);
        // And a new one says them only when there is something to say.
        let new = Wire::Present {
            node: 2,
            session: session(9, "ana", Vec::new()),
            again: false,
            round: 0,
        };
        let json = new.payload(0);
        assert!(json.contains(r#""user":"anauser""#) && json.contains(r#""oper":true"#));
        assert!(
            !json.contains("realname")
                && !json.contains("invisible")
                && !json.contains("again")
                && !json.contains("round"),
            "{json}"
        );
        let (_, back) =
            Wire::parse(json.replace("true", "true,\"invisible\":true").as_bytes()).unwrap();
        assert!(
            matches!(
                back,
                Wire::Present {
                    session: SessionState {
                        invisible: true,
                        ..
                    },
                    ..
                }
            ),
            "{back:?}"
        );
    }

    fn session(id: u64, nick: &str, rooms: Vec<String>) -> SessionState {
        SessionState {
            session: id,
            nick: nick.into(),
            rooms,
            ops: Vec::new(),
            voiced: Vec::new(),
            away: None,
            account: None,
            signon: 5,
            user: Some("anauser".into()),
            realname: None,
            oper: true,
            invisible: false,
            spoke: 0,
        }
    }

    /// A round's sessions go in as few publications as fit the bound, each read back as a
    /// `presents` whole, in order; the one `present` of an older form reads as before.
    #[test]
    fn a_rounds_sessions_are_batched_within_the_bound_and_read_back_in_order() {
        let rooms: Vec<String> = (0..20).map(|n| format!("#room-number-{n}")).collect();
        let sessions: Vec<SessionState> = (1..=1000)
            .map(|n| session(n, &format!("user{n}"), rooms.clone()))
            .collect();
        let one = serde_json::to_string(&sessions[0]).unwrap().len();
        let payloads = presents_payloads(4, 7, &sessions);
        let fit = CLUSTER_PRESENCE_BATCH_BYTES / (one + 1);
        assert!(
            payloads.len() <= sessions.len() / (fit - 1) + 1,
            "{}",
            payloads.len()
        );
        assert!(payloads.len() > 1);
        let mut told = Vec::new();
        for payload in &payloads {
            assert!(
                payload.len() <= CLUSTER_PRESENCE_BATCH_BYTES,
                "{}",
                payload.len()
            );
            let (seq, wire) = Wire::parse(payload).unwrap();
            let Wire::Presents {
                node: 4,
                round: 7,
                sessions,
            } = wire
            else {
                panic!("not a batch: {wire:?}");
            };
            assert_eq!(seq, 0);
            told.extend(sessions.into_iter().map(|s| (s.session, s.nick, s.rooms)));
        }
        let sent: Vec<_> = sessions
            .iter()
            .map(|s| (s.session, s.nick.clone(), s.rooms.clone()))
            .collect();
        assert_eq!(told, sent);
        // A session longer than the bound goes alone, and nothing is empty.
        let long: Vec<String> = (0..100).map(|n| format!("#{n:0>119}")).collect();
        let mut big_one = session(2, "b", long.clone());
        big_one.ops = long.clone();
        big_one.voiced = long;
        let big = vec![
            session(1, "a", Vec::new()),
            big_one,
            session(3, "c", Vec::new()),
        ];
        let payloads = presents_payloads(4, 8, &big);
        assert_eq!(payloads.len(), 3);
        assert!(payloads[1].len() > CLUSTER_PRESENCE_BATCH_BYTES);
        assert!(payloads[1].len() < CLUSTER_PAYLOAD_BYTES);
        assert!(presents_payloads(4, 9, &[]).is_empty());
    }

    /// A check's status crosses with its details, in batches within the bound; a call
    /// crosses whole; bad ones are errors, not a crash.
    #[test]
    fn checks_and_calls_cross_and_bad_ones_are_errors() {
        let room = RoomName::parse("#alerts").unwrap();
        let status = Notice::new(
            Source::new("check:web").unwrap(),
            PostKind::Alert,
            MessageText::new("web is DOWN").unwrap(),
        )
        .with("check", "web")
        .with("since", 7u64)
        .with("silenced", false);
        let item = alert_item(&room, &status);
        let wire = Wire::Alerts {
            node: 2,
            name: "web-2".into(),
            report: 3,
            items: vec![item],
            last: true,
        };
        let (_, back) = Wire::parse(wire.payload(0).as_bytes()).unwrap();
        let Wire::Alerts { mut items, .. } = back else {
            panic!("not a report: {back:?}");
        };
        let (read_room, notice) = read_item(items.remove(0)).unwrap();
        assert_eq!(read_room, room);
        assert_eq!(notice.kind, PostKind::Alert);
        assert_eq!(notice.fields, status.fields);
        let bad = |room: &str, fields| AlertItem {
            room: room.into(),
            source: "check:web".into(),
            alert: false,
            text: "t".into(),
            fields,
        };
        assert!(read_item(bad("no room", Vec::new())).is_err());
        assert!(read_item(bad("#ok", vec![("n".into(), serde_json::json!([1]))])).is_err());

        let many: Vec<AlertItem> = (0..100).map(|_| alert_item(&room, &status)).collect();
        let batches = batches(many, 1024);
        assert!(batches.len() > 1);
        assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), 100);
        for batch in &batches {
            assert!(serde_json::to_string(batch).unwrap().len() <= 1024 + 2);
        }
        assert_eq!(
            super::batches(Vec::new(), 1024).len(),
            1,
            "an empty report still ends"
        );

        let ana = Nick::parse("ana").unwrap();
        for call in [
            PeerCall::Beat(Beat::Alive),
            PeerCall::Beat(Beat::Finished {
                status: 2,
                took_ms: 1500,
                output: Some("rsync failed".into()),
            }),
            PeerCall::Act {
                action: AlertAction::Silence {
                    lasting: std::time::Duration::from_secs(3600),
                    reason: Some("maintenance".into()),
                },
                by: ana.clone(),
            },
            PeerCall::Act {
                action: AlertAction::Unsilence,
                by: ana,
            },
        ] {
            let wire = Wire::Call {
                node: 1,
                to: vec![2, 3],
                call: 9,
                name: "web".into(),
                asked: call_wire(&call),
            };
            let (_, back) = Wire::parse(wire.payload(0).as_bytes()).unwrap();
            let Wire::Call { asked, to, .. } = back else {
                panic!("not a call: {back:?}");
            };
            assert_eq!(to, [2, 3]);
            assert_eq!(peer_call(asked).unwrap(), call);
        }
        let odd = |what: &str, by: Option<&str>| CallWire {
            what: what.into(),
            by: by.map(str::to_string),
            note: None,
            ms: 0,
            status: 0,
        };
        assert!(peer_call(odd("reboot", None)).is_err());
        assert!(peer_call(odd("ack", None)).is_err(), "an ack by nobody");
        assert!(peer_call(odd("ack", Some("9lives"))).is_err());
    }

    #[test]
    fn a_post_crosses_with_its_details_and_bad_details_are_errors() {
        let source = Source::new("udp:192.0.2.7").unwrap();
        let text = MessageText::new("disk full").unwrap();
        let notice = Notice::new(source, PostKind::Alert, text)
            .with("priority", 2u64)
            .with("addr", "192.0.2.7:9")
            .with("resolved", false);
        let posted = crate::hub::Posted {
            id: 5,
            seq: 9,
            ts: 1,
            room: RoomName::parse("#alerts").unwrap(),
            notice: std::sync::Arc::new(notice),
        };
        let publication = Publication {
            room: posted.room.clone(),
            event: Event::Posted(posted),
            except: None,
        };
        let mut wire = Wire::of(NodeId::new(2).unwrap(), &publication).unwrap();
        assert!(wire.is_entry() && !wire.is_late());
        wire.make_late();
        let (seq, back) = Wire::parse(wire.payload(9).as_bytes()).unwrap();
        assert_eq!(seq, 9);
        assert!(back.is_late());
        let Wire::Posted {
            source,
            alert,
            text,
            fields,
            ..
        } = back
        else {
            panic!("not a post: {back:?}");
        };
        let notice = super::notice(&source, alert, &text, fields).unwrap();
        assert_eq!(notice.kind, PostKind::Alert);
        assert_eq!(notice.text.as_str(), "disk full");
        assert_eq!(
            notice.fields,
            [
                ("priority".into(), Field::Number(2)),
                ("addr".into(), Field::Text("192.0.2.7:9".into())),
                ("resolved".into(), Field::Flag(false)),
            ]
        );
        for bad in [
            serde_json::json!(-1),
            serde_json::json!([1]),
            serde_json::json!(null),
        ] {
            assert!(super::notice("x", false, "t", vec![("n".into(), bad)]).is_err());
        }
        assert!(super::notice("", false, "t", Vec::new()).is_err());
    }
}
