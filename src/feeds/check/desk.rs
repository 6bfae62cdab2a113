//! People acting on checks from the chat line: `/ack NAME [note]` stops a DOWN check's
//! reminders until its state changes; `/silence NAME DURATION [reason]` keeps its changes
//! to `/status` for a while, and `/unsilence NAME` (or the silence running out) says its
//! state once. Each is told to the room, with who did it.

use std::time::Duration;

use tokio::time::Instant;

use super::tracker::{CheckTracker, Health, Silence};
use super::{Trackers, lock};
use crate::feeds::{human, now_ms};
use crate::hub::{AlertAction, AlertDesk, Answered, Nick, Notice, PostKind, RoomName};
use crate::limits::{ALERT_NOTE_CHARS, MAX_SILENCE};

/// The checks of one room, as `/ack` and `/silence` reach them.
pub struct CheckDesk {
    pub room: RoomName,
    pub checks: Trackers,
}

impl AlertDesk for CheckDesk {
    fn room_of(&self, name: &str) -> Option<RoomName> {
        lock(&self.checks)
            .iter()
            .any(|t| t.spec.name == name)
            .then(|| self.room.clone())
    }

    fn act(&self, name: &str, action: &AlertAction, by: &Nick) -> Result<Answered, String> {
        let now = Instant::now();
        let mut checks = lock(&self.checks);
        let tracker = checks
            .iter_mut()
            .find(|t| t.spec.name == name)
            .ok_or_else(|| format!("no check named {name:?}"))?;
        let post = match action {
            AlertAction::Ack { note } => {
                if !matches!(tracker.state, Some(Health::Down | Health::Pending)) {
                    return Err(format!("{name} is not down: nothing to acknowledge"));
                }
                tracker.acked = Some(by.to_string());
                let text = format!(
                    "{by} acknowledged {name}, {} for {}{}",
                    tracker.state.map_or("", Health::word),
                    human(now.saturating_duration_since(tracker.since)),
                    said(note)
                );
                tracker.notice(
                    PostKind::Notice,
                    &text,
                    tracker.state.unwrap_or(Health::Down),
                )
            }
            AlertAction::Silence { lasting, reason } => {
                tracker.silenced = Some(silence(*lasting, reason, by, now)?);
                let text = format!(
                    "{by} silenced {name} for {}{}",
                    human(*lasting),
                    said(reason)
                );
                state_notice(tracker, &text)
            }
            AlertAction::Unsilence => {
                if tracker.silenced.take().is_none() {
                    return Err(format!("{name} is not silenced"));
                }
                tracker.told_now(now);
                let now_line = tracker
                    .state_line(now)
                    .unwrap_or_else(|| format!("{name} is not checked yet"));
                state_notice(
                    tracker,
                    &format!("{by} ended the silence on {name}: {now_line}"),
                )
            }
        };
        let status = tracker.notice(
            PostKind::Notice,
            &tracker
                .state_line(now)
                .unwrap_or_else(|| format!("{name} is not checked yet")),
            tracker.state.unwrap_or(Health::Up),
        );
        Ok(Answered {
            room: self.room.clone(),
            post: Some(post),
            status,
        })
    }
}

/// A notice about `tracker` that is an alert when it is DOWN.
fn state_notice(tracker: &CheckTracker, text: &str) -> Notice {
    let state = tracker.state.unwrap_or(Health::Up);
    let kind = if state == Health::Down {
        PostKind::Alert
    } else {
        PostKind::Notice
    };
    tracker.notice(kind, text, state)
}

/// What the room is told when a silence runs out: the state it ended in.
pub fn silence_ended(tracker: &CheckTracker, now: Instant) -> Option<Notice> {
    let line = tracker.state_line(now)?;
    Some(state_notice(
        tracker,
        &format!("the silence on {} ended: {line}", tracker.spec.name),
    ))
}

/// A `/silence` of `lasting` by `by`, when it lasts more than nothing and at most
/// [`MAX_SILENCE`].
pub(crate) fn silence(
    lasting: Duration,
    reason: &Option<String>,
    by: &Nick,
    now: Instant,
) -> Result<Silence, String> {
    if lasting.is_zero() || lasting > MAX_SILENCE {
        return Err(format!(
            "a silence lasts more than nothing and at most {}",
            human(MAX_SILENCE)
        ));
    }
    Ok(Silence {
        until: now + lasting,
        until_ms: now_ms() + lasting.as_millis() as u64,
        by: by.to_string(),
        reason: reason.as_deref().map(cut),
    })
}

/// `: note`, cut to [`ALERT_NOTE_CHARS`], or nothing.
pub(crate) fn said(note: &Option<String>) -> String {
    note.as_deref()
        .map(|n| format!(": {}", cut(n)))
        .unwrap_or_default()
}

fn cut(note: &str) -> String {
    let clean = crate::hub::sanitize(note.trim());
    let mut cut: String = clean.chars().take(ALERT_NOTE_CHARS).collect();
    if cut.len() < clean.len() {
        cut.push('…');
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desk(spec: &str) -> CheckDesk {
        let tracker = CheckTracker::new(spec.parse().unwrap(), 1);
        CheckDesk {
            room: RoomName::parse("#alerts").unwrap(),
            checks: std::sync::Arc::new(std::sync::Mutex::new(vec![tracker])),
        }
    }

    fn observe(desk: &CheckDesk, result: Result<String, String>) {
        lock(&desk.checks)[0].observe(result, Duration::from_millis(2), Instant::now());
    }

    #[test]
    fn an_acknowledged_check_is_not_recalled_until_it_changes() {
        let desk = desk("web=tcp://a:1");
        let ana = Nick::parse("ana").unwrap();
        let ack = AlertAction::Ack {
            note: Some("on it\n".into()),
        };
        observe(&desk, Ok("connected".into()));
        assert!(
            desk.act("web", &ack, &ana).is_err(),
            "nothing to acknowledge"
        );
        assert!(desk.act("db", &ack, &ana).is_err(), "no such check");
        observe(&desk, Err("refused".into()));
        let answered = desk.act("web", &ack, &ana).unwrap();
        let post = answered.post.unwrap();
        assert!(
            post.text
                .as_str()
                .starts_with("ana acknowledged web, DOWN for ")
                && post.text.as_str().ends_with(": on it"),
            "{:?}",
            post.text
        );
        assert!(
            answered
                .status
                .text
                .as_str()
                .ends_with("[acknowledged by ana]")
        );
        let later = Instant::now() + Duration::from_secs(3600);
        assert!(
            lock(&desk.checks)[0]
                .remind(Duration::from_secs(60), later)
                .is_none()
        );
        // Up and down again: the acknowledgement is gone, the reminders are back.
        observe(&desk, Ok("connected".into()));
        observe(&desk, Err("refused".into()));
        assert!(lock(&desk.checks)[0].acked.is_none());
        assert!(
            lock(&desk.checks)[0]
                .remind(Duration::from_secs(60), later)
                .is_some()
        );
    }

    /// Ending a silence says a DOWN check's state: its reminders start again from then,
    /// not from before the silence, which would repeat it at once.
    #[tokio::test(start_paused = true)]
    async fn reminders_start_again_an_interval_after_an_unsilence() {
        let desk = desk("web=tcp://a:1");
        let bob = Nick::parse("bob").unwrap();
        let every = Duration::from_secs(1800);
        observe(&desk, Err("refused".into()));
        let silence = AlertAction::Silence {
            lasting: Duration::from_secs(3600),
            reason: None,
        };
        desk.act("web", &silence, &bob).unwrap();
        tokio::time::advance(every - Duration::from_secs(1)).await;
        desk.act("web", &AlertAction::Unsilence, &bob).unwrap();
        let lifted = Instant::now();
        let mut checks = lock(&desk.checks);
        let tracker = &mut checks[0];
        assert!(
            tracker
                .remind(every, lifted + Duration::from_secs(1))
                .is_none(),
            "reminded right after the unsilence"
        );
        assert!(tracker.remind(every, lifted + every).is_some());
    }

    #[test]
    fn a_silence_holds_changes_back_until_it_ends() {
        let desk = desk("web=tcp://a:1");
        let bob = Nick::parse("bob").unwrap();
        observe(&desk, Err("refused".into()));
        let silence = AlertAction::Silence {
            lasting: Duration::from_secs(3600),
            reason: Some("maintenance".into()),
        };
        let answered = desk.act("web", &silence, &bob).unwrap();
        assert_eq!(
            answered.post.unwrap().text.as_str(),
            "bob silenced web for 1h: maintenance"
        );
        let now = Instant::now();
        let mut ended = false;
        assert!(lock(&desk.checks)[0].silent(now, &mut ended));
        assert!(!ended);
        let after = now + Duration::from_secs(3601);
        assert!(!lock(&desk.checks)[0].silent(after, &mut ended));
        assert!(ended, "the silence ran out");
        let said = silence_ended(&lock(&desk.checks)[0], after).unwrap();
        assert!(
            said.text
                .as_str()
                .starts_with("the silence on web ended: web is DOWN (for "),
            "{:?}",
            said.text
        );
        assert!(desk.act("web", &AlertAction::Unsilence, &bob).is_err());
        let too_long = AlertAction::Silence {
            lasting: MAX_SILENCE * 2,
            reason: None,
        };
        assert!(desk.act("web", &too_long, &bob).is_err());
        desk.act("web", &silence, &bob).unwrap();
        let lifted = desk.act("web", &AlertAction::Unsilence, &bob).unwrap();
        assert!(
            lifted
                .post
                .unwrap()
                .text
                .as_str()
                .starts_with("bob ended the silence on web: web is DOWN (for ")
        );
    }
}
