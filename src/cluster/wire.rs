//! What nodes say to each other through Redis: one JSON object per publication, after the
//! room number Redis gave it (`0` when it has none), as `SEQ\nJSON`.
//!
//! Everything read is untrusted (another program may publish on the channel): a payload
//! that does not parse, or names that are not valid, is an error the reader logs and skips.

use serde::{Deserialize, Serialize};

use crate::hub::{Event, LeaveReason, MessageText, Nick, NodeId, Publication, RoomName, SessionId};
use crate::limits::CLUSTER_PAYLOAD_BYTES;

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
    },
    Joined {
        node: u16,
        room: String,
        nick: String,
        count: usize,
    },
    Left {
        node: u16,
        room: String,
        nick: String,
        reason: String,
        message: Option<String>,
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
    },
    /// Session `session` of `node` goes by `nick` and is in `rooms` (all of its state:
    /// the newest replaces what was known).
    Present {
        node: u16,
        session: u64,
        nick: String,
        rooms: Vec<String>,
    },
    Absent {
        node: u16,
        session: u64,
    },
    /// `node` is alive; `run` tells a restarted node from the one before it.
    Beat {
        node: u16,
        run: String,
    },
    /// `node` (re)joined the cluster: every other node says who it has (`Present`).
    Hello {
        node: u16,
        run: String,
    },
    /// `node` is shutting down: its sessions are gone.
    Gone {
        node: u16,
    },
}

impl Wire {
    /// The node that published it.
    pub fn node(&self) -> u16 {
        match self {
            Wire::Said { node, .. }
            | Wire::Joined { node, .. }
            | Wire::Left { node, .. }
            | Wire::Private { node, .. }
            | Wire::Present { node, .. }
            | Wire::Absent { node, .. }
            | Wire::Beat { node, .. }
            | Wire::Hello { node, .. }
            | Wire::Gone { node } => *node,
        }
    }

    /// What the hub publishes that other nodes hear: messages, joins and leaves (topics,
    /// modes and kicks are each node's own for now: docs/cluster.md).
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
            },
            Event::Joined { nick, count, .. } => Wire::Joined {
                node,
                room,
                nick: nick.as_str().to_string(),
                count: *count,
            },
            Event::Left { nick, reason, .. } => Wire::Left {
                node,
                room,
                nick: nick.as_str().to_string(),
                reason: reason.code().to_string(),
                message: reason.message().map(|m| m.as_str().to_string()),
            },
            _ => return None,
        })
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

pub fn room(name: &str) -> Result<RoomName, String> {
    RoomName::parse(name).map_err(|e| format!("room {name:?}: {e}"))
}

pub fn nick(name: &str) -> Result<Nick, String> {
    Nick::parse(name).map_err(|e| format!("nick {name:?}: {e}"))
}

pub fn text(text: &str) -> Result<MessageText, String> {
    MessageText::new(text).ok_or_else(|| "empty text".to_string())
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
        "server_shutdown" => LeaveReason::ServerShutdown,
        other => return Err(format!("unknown leave reason {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_reads_back_and_bad_ones_are_errors() {
        let beat = Wire::Beat {
            node: 3,
            run: "ab".into(),
        };
        let (seq, back) = Wire::parse(beat.payload(7).as_bytes()).unwrap();
        assert_eq!(seq, 7);
        assert!(matches!(back, Wire::Beat { node: 3, run } if run == "ab"));
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
}
