//! Heartbeats, a dead man's switch: `--heartbeat NAME=PERIOD[+GRACE]` (`backup=24h+1h`)
//! expects the job NAME to call in every PERIOD. With no call for PERIOD+GRACE, an alert
//! `NAME is LATE`; the next call, `NAME is UP again`. A job wrapped by `charla run --beat`
//! also says when it starts and how each run ended: a failed run is an alert, and a
//! heartbeat stays FAILED until a run succeeds or a plain call comes, or it is LATE: no call
//! for PERIOD+GRACE after the failed run.
//!
//! Calls arrive through the hub ([`Hub::beat`]) from a JSON request, `POST /beat/NAME` or
//! a UDP datagram `beat NAME`. A server that just started gives each job a whole PERIOD+GRACE
//! for its first call.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::check::desk;
use super::check::{Silence, name_rule, valid_name};
use super::http::Priority;
use super::{human, now_ms};
use crate::hub::{
    AlertAction, AlertDesk, Answered, Beat, Heartbeats, Hub, MessageText, Nick, Notice, PostKind,
    RoomName, RoomStatus, Source,
};
use crate::limits::{BEAT_OUTPUT_CHARS, CLUSTER_HEARTBEAT};

/// One `--heartbeat NAME=PERIOD[+GRACE]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatSpec {
    /// As a check's name: 1 to 32 ASCII letters, digits, `-`, `_` or `.`.
    pub name: String,
    /// How often the job calls in.
    pub period: Duration,
    /// How late a call may be before it is LATE (none unless given).
    pub grace: Duration,
}

impl FromStr for HeartbeatSpec {
    type Err = String;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let usage = "expected NAME=PERIOD or NAME=PERIOD+GRACE, such as backup=24h+1h";
        let (name, times) = input
            .split_once('=')
            .ok_or_else(|| format!("{input:?}: {usage}"))?;
        if !valid_name(name) {
            return Err(format!("{input:?}: {}", name_rule()));
        }
        let (period, grace) = match times.split_once('+') {
            Some((period, grace)) => (period, Some(grace)),
            None => (times, None),
        };
        let duration = |text: &str| {
            humantime::parse_duration(text.trim()).map_err(|e| format!("{input:?}: {text}: {e}"))
        };
        let period = duration(period)?;
        if period.is_zero() {
            return Err(format!("{input:?}: the period must be more than zero"));
        }
        let grace = grace.map(duration).transpose()?.unwrap_or_default();
        Ok(HeartbeatSpec {
            name: name.to_string(),
            period,
            grace,
        })
    }
}

impl fmt::Display for HeartbeatSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "every {}", human(self.period))?;
        if !self.grace.is_zero() {
            write!(f, ", grace {}", human(self.grace))?;
        }
        Ok(())
    }
}

/// Where a heartbeat stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pulse {
    /// No call yet since the server started.
    Waiting,
    Up,
    Late,
    /// The last run `charla run` reported failed.
    Failed,
}

impl Pulse {
    fn as_str(self) -> &'static str {
        match self {
            Pulse::Waiting => "waiting",
            Pulse::Up => "up",
            Pulse::Late => "late",
            Pulse::Failed => "failed",
        }
    }
}

/// What is known of one heartbeat.
struct Tracker {
    spec: HeartbeatSpec,
    pulse: Pulse,
    since: Instant,
    /// Its last call, in ms since the epoch.
    last_call_ms: Option<u64>,
    last_call: Option<Instant>,
    /// When it is LATE without a call.
    deadline: Instant,
    /// When the run under way started (`charla run`).
    running: Option<Instant>,
    /// Who acknowledged it LATE or FAILED (`/ack`); cleared when its state changes.
    acked: Option<String>,
    /// Until when its changes are said only to `/status` (`/silence`).
    silenced: Option<Silence>,
    /// Another node of the cluster runs it: it starts afresh when this one takes it over.
    standing_by: bool,
}

impl Tracker {
    fn new(spec: HeartbeatSpec, now: Instant) -> Tracker {
        Tracker {
            deadline: now + spec.period + spec.grace,
            spec,
            pulse: Pulse::Waiting,
            since: now,
            last_call_ms: None,
            last_call: None,
            running: None,
            acked: None,
            silenced: None,
            standing_by: false,
        }
    }

    /// This node runs it (`running`) or another does: taken over, it starts afresh at
    /// `now`, as on a node that just started, with a whole PERIOD+GRACE for its next call.
    /// Whether that changed anything.
    fn run_here(&mut self, running: bool, now: Instant) -> bool {
        if running != self.standing_by {
            return false;
        }
        *self = Tracker::new(self.spec.clone(), now);
        self.standing_by = !running;
        true
    }

    fn notice(&self, kind: PostKind, text: &str) -> Notice {
        let priority = match kind {
            PostKind::Alert => Priority::High,
            PostKind::Notice => Priority::Default,
        };
        let source = Source::new(&format!("beat:{}", self.spec.name)).expect("a valid source");
        let text =
            MessageText::new(text).unwrap_or_else(|| MessageText::new("(unprintable)").unwrap());
        let mut notice = Notice::new(source, kind, text)
            .with("heartbeat", self.spec.name.clone())
            .with("state", self.pulse.as_str())
            .with("period_ms", self.spec.period.as_millis() as u64)
            .with("grace_ms", self.spec.grace.as_millis() as u64)
            .with("priority", priority as u64);
        if let Some(ms) = self.last_call_ms {
            notice = notice.with("last_call", ms);
        }
        notice
    }

    /// Moves to `pulse`: how long the state before lasted. Staying in a state (a job up
    /// that calls in again) keeps its `since`, so `/status` says how long it has been up.
    fn enter(&mut self, pulse: Pulse, now: Instant) -> Duration {
        let lasted = now.saturating_duration_since(self.since);
        if pulse != self.pulse {
            self.acked = None;
            self.since = now;
        }
        self.pulse = pulse;
        lasted
    }

    /// The alert when it has just become LATE.
    fn check_late(&mut self, now: Instant) -> Option<Notice> {
        if now < self.deadline || self.pulse == Pulse::Late {
            return None;
        }
        let silent = match self.last_call {
            Some(at) => format!("no call for {}", human(now.saturating_duration_since(at))),
            None => format!(
                "no call since the server started {} ago",
                human(now.saturating_duration_since(self.since))
            ),
        };
        self.enter(Pulse::Late, now);
        let text = format!("{} is LATE: {silent} ({})", self.spec.name, self.spec);
        Some(self.notice(PostKind::Alert, &text))
    }

    /// Takes a call: what it says in the room, if anything.
    fn call(&mut self, beat: &Beat, now: Instant) -> Option<Notice> {
        let name = self.spec.name.clone();
        if *beat == Beat::Started {
            self.running = Some(now);
            return Some(self.notice(PostKind::Notice, &format!("{name} started")));
        }
        let was = self.pulse;
        self.last_call = Some(now);
        self.last_call_ms = Some(now_ms());
        self.deadline = now + self.spec.period + self.spec.grace;
        self.running = None;
        let recovered = |tracker: &mut Tracker, how: &str| {
            let lasted = tracker.enter(Pulse::Up, now);
            let text = format!(
                "{name} is UP again: {how} (was {} for {})",
                was.as_str(),
                human(lasted)
            );
            Some(tracker.notice(PostKind::Alert, &text))
        };
        match beat {
            Beat::Started => unreachable!("taken above"),
            Beat::Alive => match was {
                Pulse::Late | Pulse::Failed => recovered(self, "called in"),
                Pulse::Waiting | Pulse::Up => {
                    self.enter(Pulse::Up, now);
                    None
                }
            },
            Beat::Finished {
                status: 0, took_ms, ..
            } => {
                let how = format!("succeeded in {}", human(Duration::from_millis(*took_ms)));
                match was {
                    Pulse::Late | Pulse::Failed => recovered(self, &how),
                    Pulse::Waiting | Pulse::Up => {
                        self.enter(Pulse::Up, now);
                        Some(self.notice(PostKind::Notice, &format!("{name} {how}")))
                    }
                }
            }
            Beat::Finished {
                status,
                took_ms,
                output,
            } => {
                self.enter(Pulse::Failed, now);
                let said = output
                    .as_deref()
                    .map(last_lines)
                    .filter(|l| !l.is_empty())
                    .map(|l| format!(": {l}"))
                    .unwrap_or_default();
                let text = format!(
                    "{name} FAILED: exit status {status} after {}{said}",
                    human(Duration::from_millis(*took_ms))
                );
                Some(
                    self.notice(PostKind::Alert, &text)
                        .with("exit_status", u64::from(status.unsigned_abs())),
                )
            }
        }
    }

    fn status(&self, now: Instant) -> Notice {
        let name = &self.spec.name;
        let last = match self.last_call {
            Some(at) => format!("last call {} ago", human(now.saturating_duration_since(at))),
            None => "no call yet".to_string(),
        };
        let running = self
            .running
            .map(|at| format!(", running for {}", human(now.saturating_duration_since(at))))
            .unwrap_or_default();
        let (kind, word) = match self.pulse {
            Pulse::Waiting => (PostKind::Notice, "waiting for its first call"),
            Pulse::Up => (PostKind::Notice, "up"),
            Pulse::Late => (PostKind::Alert, "LATE"),
            Pulse::Failed => (PostKind::Alert, "FAILED"),
        };
        let mut text = format!(
            "{name} is {word} (for {}; {last}{running}; {})",
            human(now.saturating_duration_since(self.since)),
            self.spec
        );
        if let Some(by) = &self.acked {
            text.push_str(&format!(" [acknowledged by {by}]"));
        }
        if let Some(silence) = &self.silenced {
            text.push_str(&silence.describe(now));
        }
        self.notice(kind, &text)
    }

    /// Whether a `/silence` holds its changes back at `now`.
    fn silent(&self, now: Instant) -> bool {
        self.silenced.as_ref().is_some_and(|s| now < s.until)
    }

    /// A notice about it that is an alert when it is LATE or FAILED.
    fn state_notice(&self, text: &str) -> Notice {
        let kind = match self.pulse {
            Pulse::Late | Pulse::Failed => PostKind::Alert,
            Pulse::Waiting | Pulse::Up => PostKind::Notice,
        };
        self.notice(kind, text)
    }

    /// When its silence ran out by `now`: lifted, and its state said once.
    fn silence_ended(&mut self, now: Instant) -> Option<Notice> {
        if self.silenced.as_ref().is_none_or(|s| now < s.until) {
            return None;
        }
        self.silenced = None;
        let line = self.status(now);
        Some(self.state_notice(&format!(
            "the silence on {} ended: {}",
            self.spec.name,
            line.text.as_str()
        )))
    }
}

/// A command's output as one line: its last non-blank lines joined with ` | `, sanitised,
/// the end kept when it is longer than [`BEAT_OUTPUT_CHARS`].
fn last_lines(output: &str) -> String {
    let lines: Vec<&str> = output
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let joined = crate::hub::sanitize(&lines.join(" | "));
    let count = joined.chars().count();
    if count <= BEAT_OUTPUT_CHARS {
        return joined;
    }
    let tail: String = joined.chars().skip(count - BEAT_OUTPUT_CHARS).collect();
    format!("…{tail}")
}

/// Every heartbeat of a server, shared by the calls, the lateness watch and `/status`.
struct Board {
    room: RoomName,
    trackers: Mutex<Vec<Tracker>>,
    /// Woken by each call, so the watch sleeps until the new earliest deadline.
    called: Notify,
}

impl Board {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Tracker>> {
        self.trackers.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Heartbeats for Board {
    fn beat(&self, name: &str, beat: &Beat) -> Result<Answered, String> {
        let now = Instant::now();
        let mut trackers = self.lock();
        let Some(tracker) = trackers.iter_mut().find(|t| t.spec.name == name) else {
            let known: Vec<&str> = trackers.iter().map(|t| t.spec.name.as_str()).collect();
            return Err(format!(
                "no heartbeat {:?} here (this server has: {})",
                crate::hub::sanitize(name),
                known.join(", ")
            ));
        };
        // The hub hands it only the beats of the heartbeats this node runs.
        tracker.run_here(true, now);
        let post = tracker.call(beat, now).filter(|_| !tracker.silent(now));
        let status = tracker.status(now);
        drop(trackers);
        self.called.notify_one();
        Ok(Answered {
            room: self.room.clone(),
            post,
            status,
        })
    }
}

/// `/ack`, `/silence` and `/unsilence` of heartbeats, in the names checks use.
impl AlertDesk for Board {
    fn room_of(&self, name: &str) -> Option<RoomName> {
        self.lock()
            .iter()
            .any(|t| t.spec.name == name)
            .then(|| self.room.clone())
    }

    fn act(&self, name: &str, action: &AlertAction, by: &Nick) -> Result<Answered, String> {
        let now = Instant::now();
        let mut trackers = self.lock();
        let tracker = trackers
            .iter_mut()
            .find(|t| t.spec.name == name)
            .ok_or_else(|| format!("no heartbeat named {name:?}"))?;
        let post = match action {
            AlertAction::Ack { note } => {
                let word = match tracker.pulse {
                    Pulse::Late => "LATE",
                    Pulse::Failed => "FAILED",
                    Pulse::Waiting | Pulse::Up => {
                        return Err(format!(
                            "{name} is neither late nor failed: nothing to acknowledge"
                        ));
                    }
                };
                tracker.acked = Some(by.to_string());
                let text = format!(
                    "{by} acknowledged {name}, {word} for {}{}",
                    human(now.saturating_duration_since(tracker.since)),
                    desk::said(note)
                );
                tracker.notice(PostKind::Notice, &text)
            }
            AlertAction::Silence { lasting, reason } => {
                tracker.silenced = Some(desk::silence(*lasting, reason, by, now)?);
                let text = format!(
                    "{by} silenced {name} for {}{}",
                    human(*lasting),
                    desk::said(reason)
                );
                tracker.state_notice(&text)
            }
            AlertAction::Unsilence => {
                if tracker.silenced.take().is_none() {
                    return Err(format!("{name} is not silenced"));
                }
                let line = tracker.status(now);
                tracker.state_notice(&format!(
                    "{by} ended the silence on {name}: {}",
                    line.text.as_str()
                ))
            }
        };
        Ok(Answered {
            room: self.room.clone(),
            post: Some(post),
            status: tracker.status(now),
        })
    }
}

/// Heartbeats' states, for newcomers to the room and `/status`: in a cluster, of the
/// heartbeats this node runs.
struct BoardStatus(Arc<Board>, Hub);

impl RoomStatus for BoardStatus {
    fn status(&self) -> Vec<Notice> {
        let now = Instant::now();
        self.0
            .lock()
            .iter()
            .filter(|t| self.1.runs_here(&t.spec.name))
            .map(|t| t.status(now))
            .collect()
    }

    fn shared(&self) -> bool {
        true
    }
}

/// Starts keeping `specs` in `room`: the hub hands them every call, and a task says when
/// one is late.
pub fn start(hub: &Hub, specs: &[HeartbeatSpec], room: &RoomName, shutdown: CancellationToken) {
    let now = Instant::now();
    let board = Arc::new(Board {
        room: room.clone(),
        trackers: Mutex::new(specs.iter().map(|s| Tracker::new(s.clone(), now)).collect()),
        called: Notify::new(),
    });
    for spec in specs {
        // Claimed now in a cluster, so that its lease is asked for at once.
        hub.runs_here(&spec.name);
        info!(heartbeat = %spec.name, every = ?spec.period, grace = ?spec.grace, "expecting calls");
    }
    hub.add_status(room, Arc::new(BoardStatus(board.clone(), hub.clone())));
    hub.set_heartbeats(board.clone());
    hub.add_desk(board.clone());
    tokio::spawn(watch(hub.clone(), board, shutdown));
}

/// Says each heartbeat LATE once its deadline passes without a call. In a cluster, only of
/// the heartbeats this node runs, looked at again every [`CLUSTER_HEARTBEAT`] as leases
/// come and go.
async fn watch(hub: Hub, board: Arc<Board>, shutdown: CancellationToken) {
    loop {
        let now = Instant::now();
        let mut changed = false;
        let (late, next): (Vec<Notice>, Option<Instant>) = {
            let mut trackers = board.lock();
            for t in trackers.iter_mut() {
                changed |= t.run_here(hub.runs_here(&t.spec.name), now);
            }
            let late = trackers
                .iter_mut()
                .filter(|t| !t.standing_by)
                .filter_map(|t| {
                    let late = t.check_late(now);
                    changed |= late.is_some();
                    let late = late.filter(|_| !t.silent(now));
                    late.or_else(|| {
                        let ended = t.silence_ended(now);
                        changed |= ended.is_some();
                        ended
                    })
                })
                .collect();
            let deadlines = trackers
                .iter()
                .filter(|t| t.pulse != Pulse::Late && !t.standing_by)
                .map(|t| t.deadline);
            let leases = hub
                .in_cluster()
                .then(|| now + CLUSTER_HEARTBEAT)
                .into_iter();
            let silences = trackers
                .iter()
                .filter_map(|t| Some(t.silenced.as_ref()?.until));
            (late, deadlines.chain(silences).chain(leases).min())
        };
        for notice in late {
            let _ = hub.post(&board.room, hub.of_this_node(notice));
        }
        if changed {
            hub.alerts_changed();
        }
        let sleep = async {
            match next {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = sleep => {}
            _ = board.called.notified() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker(spec: &str, now: Instant) -> Tracker {
        Tracker::new(spec.parse().unwrap(), now)
    }

    #[test]
    fn specs_give_a_period_and_a_grace() {
        let backup: HeartbeatSpec = "backup=24h+1h".parse().unwrap();
        assert_eq!(backup.period, Duration::from_secs(86_400));
        assert_eq!(backup.grace, Duration::from_secs(3600));
        assert_eq!(backup.to_string(), "every 1 day, grace 1h");
        let tick: HeartbeatSpec = "tick=500ms".parse().unwrap();
        assert_eq!(
            (tick.period, tick.grace),
            (Duration::from_millis(500), Duration::ZERO)
        );
        for bad in [
            "backup",
            "backup=",
            "backup=0s",
            "backup=1h+",
            "bad name=1h",
            "x=1h+soon",
        ] {
            assert!(bad.parse::<HeartbeatSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_silent_job_is_late_once_and_up_again_at_its_next_call() {
        let t0 = Instant::now();
        let mut t = tracker("backup=1h+10m", t0);
        assert!(
            t.check_late(t0 + Duration::from_secs(3600)).is_none(),
            "within grace"
        );
        let late = t.check_late(t0 + Duration::from_secs(4200)).unwrap();
        assert_eq!(late.kind, PostKind::Alert);
        assert_eq!(
            late.text.as_str(),
            "backup is LATE: no call since the server started 1h 10m ago (every 1h, grace 10m)"
        );
        assert!(
            t.check_late(t0 + Duration::from_secs(9000)).is_none(),
            "said once"
        );
        let up = t
            .call(&Beat::Alive, t0 + Duration::from_secs(4800))
            .unwrap();
        assert_eq!(
            up.text.as_str(),
            "backup is UP again: called in (was late for 10m)"
        );
        // Calls in time say nothing; the deadline moves with each.
        assert!(
            t.call(&Beat::Alive, t0 + Duration::from_secs(8000))
                .is_none()
        );
        assert!(
            t.check_late(t0 + Duration::from_secs(8000 + 4000))
                .is_none()
        );
        let late = t.check_late(t0 + Duration::from_secs(8000 + 4200)).unwrap();
        assert_eq!(
            late.text.as_str(),
            "backup is LATE: no call for 1h 10m (every 1h, grace 10m)"
        );
    }

    #[test]
    fn runs_report_their_start_and_how_they_ended() {
        let t0 = Instant::now();
        let mut t = tracker("backup=1h", t0);
        let sec = |n| t0 + Duration::from_secs(n);
        assert_eq!(
            t.call(&Beat::Started, sec(1)).unwrap().text.as_str(),
            "backup started"
        );
        assert!(t.status(sec(3)).text.as_str().contains("running for 2s"));
        let failed = t
            .call(
                &Beat::Finished {
                    status: 2,
                    took_ms: 2500,
                    output: Some("copying\n\nrsync: connection\x1b[31m refused\n".into()),
                },
                sec(4),
            )
            .unwrap();
        assert_eq!(failed.kind, PostKind::Alert);
        assert_eq!(
            failed.text.as_str(),
            "backup FAILED: exit status 2 after 2s: copying | rsync: connection refused"
        );
        let ok = Beat::Finished {
            status: 0,
            took_ms: 1200,
            output: None,
        };
        let up = t.call(&ok, sec(64)).unwrap();
        assert_eq!(
            up.text.as_str(),
            "backup is UP again: succeeded in 1s (was failed for 1m)"
        );
        let again = t.call(&ok, sec(100)).unwrap();
        assert_eq!(again.kind, PostKind::Notice);
        assert_eq!(again.text.as_str(), "backup succeeded in 1s");
    }

    #[test]
    fn long_output_keeps_its_end() {
        let long = format!("start\n{}\nthe real error", "x".repeat(1000));
        let kept = last_lines(&long);
        assert!(
            kept.starts_with('…') && kept.ends_with("| the real error"),
            "{kept}"
        );
        assert_eq!(kept.chars().count(), BEAT_OUTPUT_CHARS + 1);
    }

    /// In a cluster: a heartbeat another node runs is not LATE here; taken over, it is
    /// waited for a whole PERIOD+GRACE from then, as on a node that just started.
    #[test]
    fn a_heartbeat_taken_over_starts_afresh() {
        let start = Instant::now();
        let mut t = tracker("backup=1h", start);
        t.call(&Beat::Alive, start);
        assert!(!t.run_here(true, start), "running from the start");
        assert!(t.run_here(false, start + Duration::from_secs(60)));
        assert!(t.standing_by);
        let later = start + Duration::from_secs(2 * 3600);
        assert!(t.run_here(true, later));
        assert_eq!(t.pulse, Pulse::Waiting);
        assert!(t.last_call.is_none());
        assert!(t.check_late(later + Duration::from_secs(3599)).is_none());
        assert!(t.check_late(later + Duration::from_secs(3600)).is_some());
    }
}
