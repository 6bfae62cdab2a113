//! Alertmanager's webhook payload (`POST /alertmanager`, `feeds::alertmanager`): arbitrary
//! bytes, and the documented payload with parts of it replaced by bytes from the input. A
//! payload is refused with a reason or taken; what is taken posts at most one line per alert,
//! each a clean feed notice that encodes as clean lines in text, JSON and IRC
//! (`charla_fuzz::check_notice`); the room never keeps more alerts firing than the bound,
//! and the same payload sent again says no alert that fires a second time.
#![no_main]

use charla::feeds::alertmanager::{AlertStatus, Intake, IntakeError, parse};
use charla::hub::{Entry, Hub, RoomName};
use charla::limits::{ALERTMANAGER_MAX_FIRING, Limits};
use charla_fuzz::check_notice;
use libfuzzer_sys::fuzz_target;

const EXAMPLE: &str = include_str!("../../tests/fixtures/alertmanager.json");

/// The places of the example an input may fill: label and annotation values, a status, a
/// fingerprint, the times.
const HOLES: [&str; 7] = [
    "latency above 1s",
    "api-1:9090",
    "HighLatency",
    "critical",
    "\"status\": \"firing\"",
    "c4ad3f1a9b2e7d05",
    "2026-12-04T10:00:00Z",
];

fuzz_target!(|data: &[u8]| {
    let body = match data.split_first() {
        // Half the inputs fill holes of the documented payload, as JSON strings.
        Some((&pick, rest)) if pick % 2 == 0 => {
            let hole = HOLES[usize::from(pick / 2) % HOLES.len()];
            let filler = serde_json::to_string(&String::from_utf8_lossy(rest)).unwrap();
            let filler = filler.trim_matches('"');
            let filled = if hole.starts_with('"') {
                format!("\"status\": \"{filler}\"")
            } else {
                filler.to_string()
            };
            EXAMPLE.replace(hole, &filled).into_bytes()
        }
        _ => data.to_vec(),
    };
    let webhook = match parse(&body) {
        Ok(webhook) => webhook,
        Err(IntakeError::Malformed(reason)) => {
            assert!(!reason.is_empty());
            return;
        }
        Err(other) => panic!("parse refused with {other:?}"),
    };
    let hub = Hub::new(&Limits::default());
    let room = RoomName::parse("#alerts").unwrap();
    hub.open_room(&room);
    let intake = Intake::default();
    let taken = match intake.take(&hub, &room, &webhook) {
        Ok(taken) => taken,
        Err(IntakeError::TooMany { .. }) => {
            assert!(webhook.alerts.len() > ALERTMANAGER_MAX_FIRING);
            return;
        }
        Err(other) => panic!("{other:?}"),
    };
    assert!(taken.posted <= webhook.alerts.len());
    assert!(taken.firing <= ALERTMANAGER_MAX_FIRING);
    let (_, entries) = hub.room_history(&room, None, None, None).unwrap();
    assert!(entries.len() <= taken.posted);
    for entry in &entries {
        let Entry::Posted(posted) = entry else {
            panic!("a feed posts notices");
        };
        check_notice(&posted.notice);
    }
    let again = intake.take(&hub, &room, &webhook).unwrap();
    let resolved = webhook
        .alerts
        .iter()
        .filter(|a| a.status == AlertStatus::Resolved)
        .count();
    assert!(again.posted <= resolved, "a firing alert said twice");
});
