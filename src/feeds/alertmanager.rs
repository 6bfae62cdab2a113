//! Alertmanager intake: what a `POST /alertmanager?room=%23alerts` becomes. The listener is
//! a transport in `server/http/`; this reads Alertmanager's webhook payload (version 4, as
//! its documentation's `webhook_config` gives it) and decides what is posted.
//!
//! Each firing alert not already firing in the room is posted as an alert, with its labels
//! and summary; each resolved one as an alert saying how long it fired. Alertmanager sends
//! a group's whole list again whenever it changes or repeats: what the room was already told
//! is not said again. What fires now is kept per room, keyed by fingerprint, for `/status`
//! there, at most [`ALERTMANAGER_MAX_FIRING`] alerts a room; and in the history store, so
//! a restart takes it back (with `--data none`, in memory only).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Deserialize;

use super::http::Priority;
use super::{human, now_ms};
use crate::hub::{
    FiringAlert, Hub, MessageText, Notice, PostKind, RoomName, RoomStatus, Source, Unposted,
};
#[cfg(doc)]
use crate::limits::ALERTMANAGER_BODY_BYTES;
use crate::limits::{ALERTMANAGER_MAX_FIRING, ALERTMANAGER_TEXT_CHARS};

/// The payload Alertmanager posts to a webhook receiver (version 4). Members charla does
/// not use are still named, so the shape is checked as documented.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub version: String,
    #[serde(default)]
    pub group_key: String,
    #[serde(default)]
    pub truncated_alerts: u64,
    pub status: AlertStatus,
    #[serde(default)]
    pub receiver: String,
    #[serde(default)]
    pub group_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub common_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub common_annotations: BTreeMap<String, String>,
    #[serde(rename = "externalURL", default)]
    pub external_url: String,
    pub alerts: Vec<WebhookAlert>,
}

/// One alert of a [`Webhook`].
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAlert {
    pub status: AlertStatus,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339.
    pub starts_at: String,
    /// RFC 3339; `0001-01-01T00:00:00Z` while it fires.
    #[serde(default)]
    pub ends_at: String,
    #[serde(rename = "generatorURL", default)]
    pub generator_url: String,
    pub fingerprint: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

/// Longest fingerprint taken (Alertmanager's are 16 hex digits).
const MAX_FINGERPRINT: usize = 64;

/// Why a payload was refused; nothing of it was posted.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// Not Alertmanager's webhook payload: the reason, for a 400.
    #[error("{0}")]
    Malformed(String),
    #[error(transparent)]
    Unposted(#[from] Unposted),
    /// The room already has [`ALERTMANAGER_MAX_FIRING`] alerts firing.
    #[error(
        "{room} has {ALERTMANAGER_MAX_FIRING} alerts firing, the most it keeps: \
         nothing was posted; resolve some first"
    )]
    TooMany { room: RoomName },
}

/// What a payload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    /// Lines posted.
    pub posted: usize,
    /// Alerts firing in the room now.
    pub firing: usize,
}

/// A severity label as a priority (1–5): Alertmanager has no fixed scale, so the common
/// words are mapped, and 1–5 or ntfy's names taken as they are; none or another word is 4,
/// as for every alert charla makes.
pub fn severity_priority(severity: Option<&str>) -> Priority {
    let Some(severity) = severity else {
        return Priority::High;
    };
    match severity.trim().to_ascii_lowercase().as_str() {
        "critical" | "crit" | "emergency" | "emerg" | "fatal" | "page" | "disaster" => {
            Priority::Urgent
        }
        "error" | "err" | "major" | "severe" => Priority::High,
        "warning" | "warn" | "medium" | "average" | "minor" => Priority::Default,
        "info" | "informational" | "notice" => Priority::Low,
        "none" | "debug" | "ok" => Priority::Min,
        other => Priority::parse(other).unwrap_or(Priority::High),
    }
}

/// Reads and checks a payload: version 4, each alert's fingerprint and start time.
pub fn parse(body: &[u8]) -> Result<Webhook, IntakeError> {
    let bad = |m: String| IntakeError::Malformed(m);
    let webhook: Webhook = serde_json::from_slice(body)
        .map_err(|e| bad(format!("not Alertmanager's webhook payload: {e}")))?;
    if webhook.version != "4" {
        return Err(bad(format!(
            "payload version {:?}: only version \"4\" is read",
            webhook.version
        )));
    }
    for (i, alert) in webhook.alerts.iter().enumerate() {
        let fp = &alert.fingerprint;
        if fp.is_empty()
            || fp.len() > MAX_FINGERPRINT
            || !fp.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(bad(format!(
                "alerts[{i}].fingerprint must be 1 to {MAX_FINGERPRINT} letters and digits"
            )));
        }
        timestamp(&alert.starts_at)
            .ok_or_else(|| bad(format!("alerts[{i}].startsAt is not an RFC 3339 time")))?;
    }
    Ok(webhook)
}

/// Milliseconds since the epoch of an RFC 3339 time.
fn timestamp(text: &str) -> Option<i64> {
    text.parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_millisecond())
}

/// What fires in one room, for its `/status`, by fingerprint.
#[derive(Default)]
struct RoomFiring {
    alerts: Mutex<BTreeMap<String, FiringAlert>>,
}

impl RoomFiring {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, FiringAlert>> {
        self.alerts.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl RoomStatus for RoomFiring {
    fn status(&self) -> Vec<Notice> {
        let now = now_ms() as i64;
        self.lock()
            .iter()
            .filter_map(|(fingerprint, f)| {
                let text = format!(
                    "{} is FIRING (for {}; fingerprint {fingerprint}): {}",
                    f.name,
                    human(std::time::Duration::from_millis(
                        now.saturating_sub(f.starts_ms).max(0) as u64
                    )),
                    f.said
                );
                let priority = Priority::parse(&f.priority.to_string()).unwrap_or(Priority::High);
                Some(
                    notice(&f.name, &text, priority)?
                        .with("fingerprint", fingerprint.clone())
                        .with("state", "firing")
                        .with("since", f.starts_ms.max(0) as u64),
                )
            })
            .collect()
    }
}

/// The alerts firing in every room Alertmanager posts to.
#[derive(Default)]
pub struct Intake {
    rooms: Mutex<HashMap<RoomName, Arc<RoomFiring>>>,
}

impl Intake {
    /// Posts what `webhook` says into `room`: each alert that started firing, each that
    /// resolved. The room must exist, as for any post from outside.
    pub fn take(
        &self,
        hub: &Hub,
        room: &RoomName,
        webhook: &Webhook,
    ) -> Result<Taken, IntakeError> {
        if !hub.has_room(room) {
            return Err(Unposted::NoSuchRoom(crate::hub::NoSuchRoom(room.clone())).into());
        }
        let firing = self.room(hub, room);
        let said = {
            let mut alerts = firing.lock();
            let new = webhook
                .alerts
                .iter()
                .filter(|a| a.status == AlertStatus::Firing)
                .filter(|a| !alerts.contains_key(&a.fingerprint))
                .count();
            let resolved = webhook
                .alerts
                .iter()
                .filter(|a| a.status == AlertStatus::Resolved)
                .filter(|a| alerts.contains_key(&a.fingerprint))
                .count();
            if new > 0 && alerts.len() - resolved + new > ALERTMANAGER_MAX_FIRING {
                return Err(IntakeError::TooMany { room: room.clone() });
            }
            let mut told = Vec::new();
            for alert in &webhook.alerts {
                let fingerprint = &alert.fingerprint;
                let was = alerts.contains_key(fingerprint);
                told.extend(said(&mut alerts, alert));
                // Kept where the store can, so a restart still knows what fires.
                match alerts.get(fingerprint) {
                    Some(firing) if !was => hub.keep_firing(room, fingerprint, Some(firing)),
                    None if was => hub.keep_firing(room, fingerprint, None),
                    _ => {}
                }
            }
            told
        };
        // Posted without the room's lock: the hub asks the status under its own.
        for notice in &said {
            hub.post(room, notice.clone())?;
        }
        Ok(Taken {
            posted: said.len(),
            firing: firing.lock().len(),
        })
    }

    /// Takes back what the store kept firing before a restart: each room's `/status` lists
    /// it again, and its resolution says how long it fired. Called once, at start-up.
    pub fn restore(&self, hub: &Hub) {
        let kept = hub.kept_firing();
        if !kept.is_empty() {
            tracing::info!(
                alerts = kept.len(),
                "Alertmanager alerts still firing, from before"
            );
        }
        for (room, fingerprint, alert) in kept {
            self.room(hub, &room).lock().insert(fingerprint, alert);
        }
    }

    /// The alerts of `room`, registered for its `/status` the first time.
    fn room(&self, hub: &Hub, room: &RoomName) -> Arc<RoomFiring> {
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(firing) = rooms.get(room) {
            return firing.clone();
        }
        let firing = Arc::new(RoomFiring::default());
        rooms.insert(room.clone(), firing.clone());
        hub.add_status(room, firing.clone());
        firing
    }
}

/// What the room is told of `alert`, keeping `alerts` (what fires) up to date: nothing for
/// one it already knows fires.
fn said(alerts: &mut BTreeMap<String, FiringAlert>, alert: &WebhookAlert) -> Option<Notice> {
    let name = alert
        .labels
        .get("alertname")
        .map(String::as_str)
        .map(cut)
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| alert.fingerprint.clone());
    let name = name.as_str();
    let priority = severity_priority(alert.labels.get("severity").map(String::as_str));
    let starts_ms = timestamp(&alert.starts_at).unwrap_or_default();
    let about = about(alert);
    let notice = match alert.status {
        AlertStatus::Firing => {
            if alerts.contains_key(&alert.fingerprint) {
                return None;
            }
            alerts.insert(
                alert.fingerprint.clone(),
                FiringAlert {
                    name: name.to_string(),
                    said: about.clone(),
                    priority: priority as u8,
                    starts_ms,
                },
            );
            notice(name, &format!("{name} is FIRING: {about}"), priority)?.with("state", "firing")
        }
        AlertStatus::Resolved => {
            alerts.remove(&alert.fingerprint);
            let ends_ms = timestamp(&alert.ends_at)
                .filter(|end| *end >= starts_ms)
                .unwrap_or(now_ms() as i64);
            let lasted = ends_ms.saturating_sub(starts_ms).max(0) as u64;
            let text = format!(
                "{name} RESOLVED (fired for {}): {about}",
                human(std::time::Duration::from_millis(lasted))
            );
            notice(name, &text, priority)?
                .with("state", "resolved")
                .with("lasted_ms", lasted)
        }
    };
    let mut notice = notice
        .with("fingerprint", alert.fingerprint.clone())
        .with("since", starts_ms.max(0) as u64);
    if let Some(summary) = alert.annotations.get("summary") {
        notice = notice.with("summary", cut(summary));
    }
    if !alert.generator_url.is_empty() {
        notice = notice.with("generator_url", cut(&alert.generator_url));
    }
    Some(notice.with("labels", labels(alert)))
}

/// An alert's summary (or description) and its labels: `latency above 1s (instance=a:9090
/// job=api severity=critical)`.
fn about(alert: &WebhookAlert) -> String {
    let summary = ["summary", "description"]
        .iter()
        .find_map(|k| alert.annotations.get(*k))
        .map_or("", String::as_str);
    let labels = labels(alert);
    match (summary.trim().is_empty(), labels.is_empty()) {
        (false, false) => format!("{} ({labels})", cut(summary)),
        (false, true) => cut(summary),
        (true, _) => format!("({labels})"),
    }
}

/// Its labels but the name, as `k=v` separated by spaces.
fn labels(alert: &WebhookAlert) -> String {
    let all: Vec<String> = alert
        .labels
        .iter()
        .filter(|(k, _)| *k != "alertname")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    cut(&all.join(" "))
}

/// `text` sanitised like a chat line (its line breaks made spaces) and cut to
/// [`ALERTMANAGER_TEXT_CHARS`] characters: labels and annotations are the sender's.
fn cut(text: &str) -> String {
    let text = crate::hub::sanitize(&text.replace(['\r', '\n', '\t'], " "));
    let mut cut: String = text.chars().take(ALERTMANAGER_TEXT_CHARS).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    cut
}

/// An alert line from `am:NAME`; `None` when nothing printable is left of it.
fn notice(name: &str, text: &str, priority: Priority) -> Option<Notice> {
    let source = Source::new(&format!("am:{name}"))?;
    let text = MessageText::new(text)?;
    Some(
        Notice::new(source, PostKind::Alert, text)
            .with("alertname", name.to_string())
            .with("priority", priority as u64),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A payload shaped as Alertmanager's documentation gives it: two alerts firing.
    const FIRING: &str = include_str!("../../tests/fixtures/alertmanager.json");

    /// The same alerts resolved at 10:12 UTC.
    fn resolved() -> String {
        FIRING
            .replace(r#""status": "firing""#, r#""status": "resolved""#)
            .replace("0001-01-01T00:00:00Z", "2026-12-04T10:12:00Z")
    }

    #[test]
    fn severities_map_to_priorities() {
        assert_eq!(severity_priority(Some("critical")), Priority::Urgent);
        assert_eq!(severity_priority(Some("Error")), Priority::High);
        assert_eq!(severity_priority(Some("warning")), Priority::Default);
        assert_eq!(severity_priority(Some("info")), Priority::Low);
        assert_eq!(severity_priority(Some("none")), Priority::Min);
        assert_eq!(severity_priority(Some("2")), Priority::Low);
        assert_eq!(severity_priority(Some("strange")), Priority::High);
        assert_eq!(severity_priority(None), Priority::High);
    }

    #[test]
    fn a_firing_alert_is_said_once_and_its_resolution_with_how_long() {
        let mut alerts = BTreeMap::new();
        let firing = parse(FIRING.as_bytes()).unwrap();
        let notice = said(&mut alerts, &firing.alerts[0]).unwrap();
        assert_eq!(
            notice.text.as_str(),
            "HighLatency is FIRING: latency above 1s (instance=api-1:9090 job=api severity=critical)"
        );
        assert_eq!(notice.source.as_str(), "am:HighLatency");
        assert_eq!(notice.kind, PostKind::Alert);
        assert!(
            notice
                .fields
                .iter()
                .any(|(n, f)| n == "priority" && *f == crate::hub::Field::Number(5))
        );
        assert!(said(&mut alerts, &firing.alerts[0]).is_none(), "said once");
        assert_eq!(alerts.len(), 1);
        let disk = said(&mut alerts, &firing.alerts[1]).unwrap();
        assert_eq!(
            disk.text.as_str(),
            "DiskFull is FIRING: disk 95% full (instance=db-1:9100 job=node severity=warning)"
        );
        assert!(
            disk.fields
                .iter()
                .any(|(n, f)| n == "priority" && *f == crate::hub::Field::Number(3))
        );
        let resolved = parse(resolved().as_bytes()).unwrap();
        let notice = said(&mut alerts, &resolved.alerts[0]).unwrap();
        assert_eq!(
            notice.text.as_str(),
            "HighLatency RESOLVED (fired for 12m): latency above 1s (instance=api-1:9090 job=api severity=critical)"
        );
        let disk = said(&mut alerts, &resolved.alerts[1]).unwrap();
        assert!(
            disk.text
                .as_str()
                .starts_with("DiskFull RESOLVED (fired for 1h 6m): "),
            "{:?}",
            disk.text
        );
        assert!(alerts.is_empty());
    }

    #[test]
    fn malformed_payloads_are_refused_with_a_reason() {
        let reason = |body: &str| match parse(body.as_bytes()) {
            Err(IntakeError::Malformed(m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(reason("{").contains("not Alertmanager's webhook payload"));
        assert!(reason(r#"{"version":"4","status":"firing"}"#).contains("alerts"));
        let v3 = FIRING.replace(r#""version": "4""#, r#""version": "3""#);
        assert!(reason(&v3).contains("only version \"4\""));
        let bad_fp = FIRING.replace("c4ad3f1a9b2e7d05", "c4ad 3f1a");
        assert!(reason(&bad_fp).contains("alerts[0].fingerprint"));
        let bad_time = FIRING.replace("2026-12-04T10:00:00Z", "yesterday");
        assert!(reason(&bad_time).contains("alerts[0].startsAt"));
        let bad_status = FIRING.replace(r#""status": "firing""#, r#""status": "burning""#);
        assert!(reason(&bad_status).contains("unknown variant"));
    }
}
