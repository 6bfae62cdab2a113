//! One check's state, from its results: up, PENDING (failing, but not yet `retries` times
//! in a row), DOWN; and what each change of state, or a DOWN that lasts, says.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::spec::CheckSpec;
use super::uptime::{Uptime, percent};
use crate::feeds::http::Priority;
use crate::feeds::{human, now_ms};
use crate::hub::{Field, MessageText, Notice, PostKind, Source};
use crate::limits::{CHECK_CHART_BUCKETS, CHECK_UPTIME_BUCKET};

/// Where a check stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Up,
    /// Failed, fewer times in a row than its retries: said as a notice, not an alert.
    Pending,
    Down,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Up => "up",
            Health::Pending => "pending",
            Health::Down => "down",
        }
    }

    /// As the room reads it: a state that needs attention in capitals.
    pub fn word(self) -> &'static str {
        match self {
            Health::Up => "up",
            Health::Pending => "PENDING",
            Health::Down => "DOWN",
        }
    }
}

/// A change of state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// `None` at the first result.
    pub from: Option<Health>,
    pub to: Health,
    /// The settled state (up or down) before this one and how long it lasted; a PENDING
    /// spell in between is not counted as one.
    pub previous: Option<(Health, Duration)>,
    /// What the probe said: how it connected, or why it failed.
    pub detail: String,
    /// Failed checks in a row, this one included.
    pub failures: u32,
}

/// What is known of one check.
#[derive(Debug, Clone)]
pub struct CheckTracker {
    /// Shared with the check's task, which probes without the trackers' lock.
    pub spec: Arc<CheckSpec>,
    /// Failed checks in a row before it is DOWN.
    pub retries: u32,
    pub state: Option<Health>,
    pub since: Instant,
    pub since_ms: u64,
    pub detail: String,
    /// How long the last try took.
    pub response: Option<Duration>,
    failures: u32,
    /// The settled state before the current one, and how long it lasted.
    previous: Option<(Health, Duration)>,
    /// When the room was last told it is DOWN, for reminders.
    told: Instant,
    /// Who acknowledged the current DOWN or PENDING (`/ack`); cleared when the state
    /// changes.
    pub acked: Option<String>,
    /// Until when its changes are said only to `/status` (`/silence`), by whom and why.
    pub silenced: Option<Silence>,
    /// Its runs over the last day, for its uptime and response-time chart.
    pub uptime: Uptime,
    /// How many of the certificate warnings (`--check-cert-warn`, 7 days, 1 day) were said
    /// for the certificate it sees now.
    cert_warned: usize,
}

/// A `/silence` in force.
#[derive(Debug, Clone)]
pub struct Silence {
    pub until: Instant,
    pub until_ms: u64,
    pub by: String,
    pub reason: Option<String>,
}

impl Silence {
    /// As `/status` marks what it holds back: ` [silenced by ana for 55m more: reason]`.
    pub fn describe(&self, now: Instant) -> String {
        format!(
            " [silenced by {} for {} more{}]",
            self.by,
            human(self.until.saturating_duration_since(now)),
            self.reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        )
    }
}

impl CheckTracker {
    pub fn new(spec: CheckSpec, retries: u32) -> CheckTracker {
        let now = Instant::now();
        CheckTracker {
            retries: spec.options.retries.unwrap_or(retries).max(1),
            spec: Arc::new(spec),
            state: None,
            since: now,
            since_ms: now_ms(),
            detail: String::new(),
            response: None,
            failures: 0,
            previous: None,
            told: now,
            acked: None,
            silenced: None,
            cert_warned: 0,
            uptime: Uptime::default(),
        }
    }

    /// Goes on from `last`, the state another node reported of this check before this one
    /// took it over (its state and since when), rather than from nothing: its first
    /// result here is then posted only if it changes that state. `last` without a known
    /// state changes nothing.
    pub fn adopt(&mut self, last: &Notice, now: Instant) {
        let field = |key: &str| last.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        let state = match field("state") {
            Some(Field::Text(state)) if state == "up" => Health::Up,
            Some(Field::Text(state)) if state == "pending" => Health::Pending,
            Some(Field::Text(state)) if state == "down" => Health::Down,
            _ => return,
        };
        let since_ms = match field("since") {
            Some(Field::Number(ms)) => (*ms).min(now_ms()),
            _ => now_ms(),
        };
        self.state = Some(state);
        self.failures = match state {
            Health::Up => 0,
            Health::Pending => 1,
            Health::Down => self.retries,
        };
        self.since_ms = since_ms;
        self.since = now
            .checked_sub(Duration::from_millis(now_ms() - since_ms))
            .unwrap_or(now);
        self.told = now;
    }

    /// Takes in one result and how long it took; a transition when the state changed.
    pub fn observe(
        &mut self,
        result: Result<String, String>,
        took: Duration,
        now: Instant,
    ) -> Option<Transition> {
        self.response = Some(took);
        self.uptime.record(now_ms(), result.is_ok(), took);
        let (to, detail) = match result {
            Ok(detail) => {
                self.failures = 0;
                (Health::Up, detail)
            }
            Err(reason) => {
                self.failures = self.failures.saturating_add(1);
                let to = if self.failures >= self.retries {
                    Health::Down
                } else {
                    Health::Pending
                };
                (to, reason)
            }
        };
        self.detail = detail.clone();
        if self.state == Some(to) {
            return None;
        }
        let from = self.state.replace(to);
        self.acked = None;
        // A settled state ending is remembered; leaving PENDING keeps what came before it.
        if let Some(settled @ (Health::Up | Health::Down)) = from {
            self.previous = Some((settled, now.saturating_duration_since(self.since)));
        }
        self.since = now;
        self.since_ms = now_ms();
        if to == Health::Down {
            self.told = now;
        }
        Some(Transition {
            from,
            to,
            previous: self.previous,
            detail,
            failures: self.failures,
        })
    }

    /// A reminder that it is still DOWN, when `every` has passed since the room was last
    /// told.
    pub fn remind(&mut self, every: Duration, now: Instant) -> Option<Notice> {
        if self.state != Some(Health::Down)
            || self.acked.is_some()
            || now.saturating_duration_since(self.told) < every
        {
            return None;
        }
        self.told = now;
        let name = &self.spec.name;
        let text = format!(
            "{name} is still DOWN: {} (for {}; reminded every {})",
            self.detail,
            human(now.saturating_duration_since(self.since)),
            human(every)
        );
        Some(
            self.notice(PostKind::Alert, &text, Health::Down)
                .with("reason", self.detail.clone())
                .with("reminder", true),
        )
    }

    /// Its state was just said to the room in full, as a silence ended (`/unsilence`, or
    /// run out): the next reminder comes a whole interval after it, not at once.
    pub fn told_now(&mut self, now: Instant) {
        self.told = now;
    }

    /// Whether a `/silence` holds its changes back at `now`; one that has run out is
    /// lifted, and `true` returned in `ended`.
    pub fn silent(&mut self, now: Instant, ended: &mut bool) -> bool {
        match &self.silenced {
            Some(silence) if now < silence.until => true,
            Some(_) => {
                self.silenced = None;
                *ended = true;
                false
            }
            None => false,
        }
    }

    /// Its state now, as `/status` says it.
    pub fn state_line(&self, now: Instant) -> Option<String> {
        let state = self.state?;
        let response = self
            .response
            .map(|took| format!("; answered in {}", human(took)))
            .unwrap_or_default();
        let uptime = self
            .uptime
            .permille(now_ms())
            .map(|p| format!("; {} up in 24h", percent(p)))
            .unwrap_or_default();
        let mut line = format!(
            "{} is {} (for {}{response}{uptime}): {}",
            self.spec.name,
            state.word(),
            human(now.saturating_duration_since(self.since)),
            self.detail
        );
        if let Some(by) = &self.acked {
            line.push_str(&format!(" [acknowledged by {by}]"));
        }
        if let Some(silence) = &self.silenced {
            line.push_str(&silence.describe(now));
        }
        Some(line)
    }

    /// An alert when the certificate the probe saw, expiring at `not_after` (seconds since
    /// the epoch), entered the next of the warnings: `warn` before, 7 days, 1 day (each said
    /// once). A renewed certificate starts them over.
    pub fn certificate(&mut self, not_after: i64, warn: Duration, now_unix: i64) -> Option<Notice> {
        const DAY: u64 = 86_400;
        let left = not_after - now_unix;
        let thresholds = [warn.as_secs(), 7 * DAY, DAY];
        let crossed = thresholds
            .iter()
            .filter(|t| **t <= warn.as_secs() && left <= **t as i64)
            .count();
        if crossed == 0 {
            self.cert_warned = 0;
            return None;
        }
        if crossed <= self.cert_warned {
            return None;
        }
        self.cert_warned = crossed;
        let when = jiff::Timestamp::from_second(not_after)
            .map(|t| t.strftime("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_default();
        let name = &self.spec.name;
        let text = if left <= 0 {
            format!("{name}'s certificate EXPIRED on {when}")
        } else {
            format!(
                "{name}'s certificate expires in {} (on {when})",
                human(Duration::from_secs(left as u64))
            )
        };
        let state = self.state.unwrap_or(Health::Up);
        Some(
            self.notice(PostKind::Alert, &text, state)
                .with("cert_expires", not_after as u64),
        )
    }

    /// How loud its alerts are.
    pub fn priority(&self) -> Priority {
        self.spec.options.priority.unwrap_or(Priority::High)
    }

    /// A notice about this check, with the details every one carries: its response times
    /// over the last hours and uptime too, so the page's chart moves with each post.
    pub fn notice(&self, kind: PostKind, text: &str, state: Health) -> Notice {
        let name = &self.spec.name;
        let priority = match kind {
            PostKind::Alert => self.priority(),
            PostKind::Notice => Priority::Default,
        };
        let now_ms = now_ms();
        let mut notice = Notice::new(source(name), kind, message(text))
            .with("check", name.clone())
            .with("state", state.as_str())
            .with("target", self.spec.probe.to_string())
            .with("priority", priority as u64)
            .with(
                "responses",
                self.uptime.responses(now_ms, CHECK_CHART_BUCKETS),
            )
            .with(
                "responses_bucket_ms",
                CHECK_UPTIME_BUCKET.as_millis() as u64,
            );
        if let Some(took) = self.response {
            notice = notice.with("response_ms", took.as_millis() as u64);
        }
        if let Some(permille) = self.uptime.permille(now_ms) {
            notice = notice.with("uptime_permille", permille);
        }
        if let Some(by) = &self.acked {
            notice = notice.with("acked_by", by.clone());
        }
        if let Some(silence) = &self.silenced {
            notice = notice.with("silenced_until", silence.until_ms);
        }
        notice
    }

    /// What the room is told of a transition; `None` for a first result that is up.
    pub fn alert(&self, t: &Transition) -> Option<Notice> {
        let name = &self.spec.name;
        let was = match t.previous {
            Some((state, lasted)) => format!("was {} for {}", state.as_str(), human(lasted)),
            None => "at the first check".to_string(),
        };
        let (kind, text) = match (t.from, t.to) {
            (None, Health::Up) => return None,
            (_, Health::Pending) => (
                PostKind::Notice,
                format!(
                    "{name} is PENDING: {} (failed check {} of {})",
                    t.detail, t.failures, self.retries
                ),
            ),
            (_, Health::Down) if t.failures > 1 => (
                PostKind::Alert,
                format!(
                    "{name} is DOWN after {} failed checks: {} ({was})",
                    t.failures, t.detail
                ),
            ),
            (_, Health::Down) => (
                PostKind::Alert,
                format!("{name} is DOWN: {} ({was})", t.detail),
            ),
            // Back from PENDING: it never was DOWN, so this is no alert.
            (Some(Health::Pending), Health::Up) => (
                PostKind::Notice,
                format!("{name} is up: {} (after a failed check)", t.detail),
            ),
            (Some(_), Health::Up) => (
                PostKind::Alert,
                format!("{name} is UP again: {} ({was})", t.detail),
            ),
        };
        let detail = if t.to == Health::Up {
            "detail"
        } else {
            "reason"
        };
        let mut notice = self
            .notice(kind, &text, t.to)
            .with(detail, t.detail.clone());
        if let Some((state, lasted)) = t.previous {
            notice = notice
                .with("previous", state.as_str())
                .with("lasted_ms", lasted.as_millis() as u64);
        }
        Some(notice)
    }
}

pub fn source(name: &str) -> Source {
    Source::new(&format!("check:{name}")).expect("a valid source")
}

pub fn message(text: &str) -> MessageText {
    MessageText::new(text).unwrap_or_else(|| MessageText::new("(unprintable)").unwrap())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::Field;

    fn tracker(s: &str, retries: u32) -> CheckTracker {
        CheckTracker::new(s.parse().unwrap(), retries)
    }

    const MS: Duration = Duration::from_millis(3);

    fn field(notice: &Notice, name: &str) -> Option<Field> {
        notice
            .fields
            .iter()
            .find_map(|(n, f)| (n == name).then(|| f.clone()))
    }

    #[test]
    fn only_changes_of_state_are_transitions() {
        let mut t = tracker("web=tcp://a:1", 1);
        let t0 = Instant::now();
        let first = t.observe(Ok("connected".into()), MS, t0).unwrap();
        assert_eq!((first.from, first.to), (None, Health::Up));
        assert!(t.alert(&first).is_none(), "a first up is not news");
        assert_eq!(t.observe(Ok("connected".into()), MS, t0), None);

        let down = t
            .observe(Err("refused".into()), MS, t0 + Duration::from_secs(125))
            .unwrap();
        assert_eq!(down.from, Some(Health::Up));
        assert_eq!(down.previous, Some((Health::Up, Duration::from_secs(125))));
        let notice = t.alert(&down).unwrap();
        assert_eq!(notice.kind, PostKind::Alert);
        assert_eq!(
            notice.text.as_str(),
            "web is DOWN: refused (was up for 2m 5s)"
        );
        assert_eq!(notice.source.as_str(), "check:web");
        assert_eq!(field(&notice, "priority"), Some(Field::Number(4)));
        assert_eq!(field(&notice, "response_ms"), Some(Field::Number(3)));
        // The chart and uptime (two runs of three up), as `/status` has them, move with
        // each post.
        let Some(Field::Text(responses)) = field(&notice, "responses") else {
            panic!("no responses: {notice:?}");
        };
        assert!(responses.ends_with(",3"), "{responses}");
        assert_eq!(field(&notice, "uptime_permille"), Some(Field::Number(666)));
        // No repeat while it stays down, even for another reason.
        assert_eq!(
            t.observe(Err("timed out".into()), MS, t0 + Duration::from_secs(130)),
            None
        );

        let up = t
            .observe(Ok("connected".into()), MS, t0 + Duration::from_secs(135))
            .unwrap();
        assert_eq!(
            t.alert(&up).unwrap().text.as_str(),
            "web is UP again: connected (was down for 10s)"
        );
    }

    #[test]
    fn a_first_result_that_is_down_is_an_alert() {
        let mut t = tracker("db=tcp://a:1 priority=5", 1);
        let first = t
            .observe(Err("refused".into()), MS, Instant::now())
            .unwrap();
        let alert = t.alert(&first).unwrap();
        assert_eq!(
            alert.text.as_str(),
            "db is DOWN: refused (at the first check)"
        );
        assert_eq!(field(&alert, "priority"), Some(Field::Number(5)));
    }

    #[test]
    fn failures_are_pending_until_the_retries_are_spent() {
        let mut t = tracker("web=tcp://a:1", 3);
        let t0 = Instant::now();
        t.observe(Ok("connected".into()), MS, t0);
        let sec = |n| t0 + Duration::from_secs(n);

        let pending = t.observe(Err("refused".into()), MS, sec(60)).unwrap();
        let notice = t.alert(&pending).unwrap();
        assert_eq!(notice.kind, PostKind::Notice);
        assert_eq!(
            notice.text.as_str(),
            "web is PENDING: refused (failed check 1 of 3)"
        );
        assert_eq!(field(&notice, "priority"), Some(Field::Number(3)));
        // A second failure is still pending, and not said again.
        assert_eq!(t.observe(Err("refused".into()), MS, sec(70)), None);
        let down = t.observe(Err("refused".into()), MS, sec(80)).unwrap();
        assert_eq!(
            t.alert(&down).unwrap().text.as_str(),
            "web is DOWN after 3 failed checks: refused (was up for 1m)"
        );
        let up = t.observe(Ok("connected".into()), MS, sec(110)).unwrap();
        assert_eq!(
            t.alert(&up).unwrap().text.as_str(),
            "web is UP again: connected (was down for 30s)"
        );

        // A failure that does not last is a notice either way, and never an alert.
        let pending = t.observe(Err("refused".into()), MS, sec(120)).unwrap();
        assert_eq!(t.alert(&pending).unwrap().kind, PostKind::Notice);
        let back = t.observe(Ok("connected".into()), MS, sec(130)).unwrap();
        let notice = t.alert(&back).unwrap();
        assert_eq!(notice.kind, PostKind::Notice);
        assert_eq!(
            notice.text.as_str(),
            "web is up: connected (after a failed check)"
        );
        // The check's own retries win over the server's.
        assert_eq!(tracker("web=tcp://a:1 retries=2", 5).retries, 2);
    }

    #[test]
    fn an_expiring_certificate_is_warned_of_at_each_step() {
        let mut t = tracker("site=tls://a:443", 1);
        let day = 86_400;
        let warn = Duration::from_secs(14 * day as u64);
        let now = 1_800_000_000;
        assert!(t.certificate(now + 30 * day, warn, now).is_none());
        let first = t.certificate(now + 10 * day, warn, now).unwrap();
        assert_eq!(first.kind, PostKind::Alert);
        assert!(
            first
                .text
                .as_str()
                .starts_with("site's certificate expires in 10 days (on "),
            "{:?}",
            first.text
        );
        assert!(
            t.certificate(now + 9 * day, warn, now).is_none(),
            "said once"
        );
        assert!(
            t.certificate(now + 6 * day, warn, now).is_some(),
            "at 7 days"
        );
        assert!(
            t.certificate(now + day / 2, warn, now).is_some(),
            "at 1 day"
        );
        assert!(t.certificate(now + day / 3, warn, now).is_none());
        let expired = t.certificate(now - day, warn, now);
        assert!(expired.is_none(), "all three were said");
        // Renewed, then expiring again: said again.
        assert!(t.certificate(now + 90 * day, warn, now).is_none());
        let again = t.certificate(now - 1, warn, now).unwrap();
        assert!(
            again
                .text
                .as_str()
                .starts_with("site's certificate EXPIRED on ")
        );
    }

    #[test]
    fn a_down_check_is_recalled_every_remind_interval() {
        let mut t = tracker("web=tcp://a:1", 1);
        let t0 = Instant::now();
        let every = Duration::from_secs(1800);
        assert!(t.remind(every, t0 + every).is_none(), "not checked yet");
        t.observe(Err("refused".into()), MS, t0);
        assert!(t.remind(every, t0 + every / 2).is_none());
        let reminder = t.remind(every, t0 + every).unwrap();
        assert_eq!(reminder.kind, PostKind::Alert);
        assert_eq!(
            reminder.text.as_str(),
            "web is still DOWN: refused (for 30m; reminded every 30m)"
        );
        assert_eq!(field(&reminder, "reminder"), Some(Field::Flag(true)));
        assert!(t.remind(every, t0 + every + every / 2).is_none());
        assert!(t.remind(every, t0 + 2 * every).is_some());
        t.observe(Ok("connected".into()), MS, t0 + 2 * every);
        assert!(t.remind(every, t0 + 4 * every).is_none(), "up again");
    }

    /// Taken over DOWN from another node: its next failure says nothing, it stays DOWN
    /// since then, and coming up is said as coming back from DOWN.
    #[test]
    fn a_check_taken_over_goes_on_from_the_state_reported() {
        let now = Instant::now();
        let mut t = tracker("web=tcp://127.0.0.1:1", 3);
        let since = now_ms() - 60_000;
        let last = Notice::new(source("web"), PostKind::Alert, message("web is DOWN"))
            .with("state", "down")
            .with("since", since);
        t.adopt(&last, now);
        assert_eq!(t.state, Some(Health::Down));
        assert!(
            t.observe(Err("refused".into()), Duration::ZERO, now)
                .is_none()
        );
        assert_eq!(t.since_ms, since);
        let up = t
            .observe(Ok("connected".into()), Duration::ZERO, now)
            .unwrap();
        assert_eq!(up.from, Some(Health::Down));
        assert!(
            up.previous
                .is_some_and(|(h, lasted)| h == Health::Down && lasted >= Duration::from_secs(59))
        );

        let mut fresh = tracker("web=tcp://127.0.0.1:1", 3);
        fresh.adopt(
            &Notice::new(source("web"), PostKind::Notice, message("?")),
            now,
        );
        assert_eq!(fresh.state, None, "no state reported, nothing adopted");
    }
}
