//! The fan-out's promises, checked across its parts.

use std::sync::Arc;

use super::{Outbox, Recipient, RoomLog};
use crate::hub::{Event, NodeId, Outgoing, SessionId};
use crate::limits::LOG_CHECK_EVERY;
use crate::protocol::TEXT;

fn said(n: u64) -> Outgoing {
    Outgoing::new(Event::Ack {
        id: n,
        seq: None,
        ts: 0,
    })
}

/// A member who talks where nobody answers is never woken for its own lines; its outbox
/// still moves its place past them each time its connection takes, so the log can drop
/// them. Without that (a recipient that only reads when woken) the log would keep them all.
#[test]
fn a_talker_alone_does_not_hold_its_rooms_log() {
    let log = RoomLog::new();
    let ana = SessionId::new(NodeId::default(), 1);
    let outbox = Outbox::new(1 << 20, &TEXT);
    outbox.follow(log.follow(ana));
    let messages = 4 * LOG_CHECK_EVERY as u64;
    for n in 0..messages {
        // The hub appends ana's line for everyone but her; her connection runs to read
        // her next line and takes what there is (nothing for her).
        if log.append(n, Some(ana), said(n)) {
            let keep_from = outbox.check(&log).unwrap().unwrap_or(log.end());
            log.trim(keep_from);
        }
        let (pending, _) = outbox.take(None);
        assert!(pending.is_empty(), "she is not sent her own lines");
    }
    assert!(
        log.kept() < LOG_CHECK_EVERY as u64,
        "the log keeps {} of {messages} lines",
        log.kept()
    );

    // The same talker through a reader that does not move on its own keeps them all.
    let quiet = RoomLog::new();
    let recorder = Arc::new(super::recorder::Recorder::default());
    recorder.follow(quiet.follow(ana));
    for n in 0..messages {
        if quiet.append(n, Some(ana), said(n)) {
            let keep_from = recorder.check(&quiet).unwrap().unwrap_or(quiet.end());
            quiet.trim(keep_from);
        }
    }
    assert_eq!(
        quiet.kept(),
        messages,
        "the rule is what keeps the log short"
    );
}
