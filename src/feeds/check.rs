//! Alarm checks: `--check NAME=tcp://HOST:PORT` (does it accept a connection?) and
//! `--check 'NAME=exec:COMMAND'` (does `sh -c COMMAND` exit with status 0?), run every
//! [`CHECK_INTERVAL`], each try bounded by [`CHECK_TIMEOUT`].
//!
//! A check is up or down. Only a change of state is an alert, posted to `#alerts` with the
//! reason and how long the previous state lasted; while the state holds nothing is repeated.
//! The very first result is posted only when it is down (up is what is expected). Everyone
//! joining `#alerts`, and `/status` there, is told every check's current state.

use std::fmt;
use std::process::Stdio;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::{human, now_ms};
use crate::hub::{Hub, MessageText, Notice, PostKind, RoomName, RoomStatus, Source};
#[cfg(doc)]
use crate::limits::{CHECK_INTERVAL, CHECK_TIMEOUT};
use crate::limits::{CHECK_OUTPUT_BYTES, CHECK_REASON_CHARS};

/// Longest check name, in characters.
pub const MAX_CHECK_NAME: usize = 32;

/// What a check tries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// Connect to `HOST:PORT` (resolved at every try); up when a connection is made.
    Tcp(String),
    /// Run `sh -c COMMAND`; up when it exits with status 0.
    Exec(String),
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Probe::Tcp(target) => write!(f, "tcp://{target}"),
            Probe::Exec(command) => write!(f, "exec:{command}"),
        }
    }
}

/// One `--check NAME=PROBE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSpec {
    /// 1 to [`MAX_CHECK_NAME`] ASCII letters, digits, `-`, `_` or `.`.
    pub name: String,
    pub probe: Probe,
}

impl FromStr for CheckSpec {
    type Err = String;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let usage = "expected NAME=tcp://HOST:PORT or NAME=exec:COMMAND";
        let (name, probe) = input
            .split_once('=')
            .ok_or_else(|| format!("{input:?}: {usage}"))?;
        let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if name.is_empty() || name.chars().count() > MAX_CHECK_NAME || !name.chars().all(valid) {
            return Err(format!(
                "{input:?}: a check name has 1 to {MAX_CHECK_NAME} ASCII letters, digits, '-', '_' or '.'"
            ));
        }
        let probe = if let Some(target) = probe.strip_prefix("tcp://") {
            match target.rsplit_once(':') {
                Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
                    Probe::Tcp(target.to_string())
                }
                _ => return Err(format!("{input:?}: expected tcp://HOST:PORT")),
            }
        } else if let Some(command) = probe.strip_prefix("exec:") {
            if command.trim().is_empty() {
                return Err(format!("{input:?}: exec: needs a command"));
            }
            Probe::Exec(command.to_string())
        } else {
            return Err(format!("{input:?}: {usage}"));
        };
        Ok(CheckSpec {
            name: name.to_string(),
            probe,
        })
    }
}

/// Up or down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Up,
    Down,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Up => "up",
            Health::Down => "down",
        }
    }
}

/// A change of state, the only thing that makes an alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// `None` at the first result.
    pub from: Option<Health>,
    pub to: Health,
    /// How long the previous state lasted.
    pub lasted: Option<Duration>,
    /// What the probe said: how it connected, or why it failed.
    pub detail: String,
}

/// What is known of one check.
#[derive(Debug, Clone)]
struct CheckTracker {
    spec: CheckSpec,
    state: Option<Health>,
    since: Instant,
    since_ms: u64,
    detail: String,
}

impl CheckTracker {
    fn new(spec: CheckSpec) -> CheckTracker {
        CheckTracker {
            spec,
            state: None,
            since: Instant::now(),
            since_ms: now_ms(),
            detail: String::new(),
        }
    }

    /// Takes in one result; a transition when the state changed.
    fn observe(&mut self, result: Result<String, String>, now: Instant) -> Option<Transition> {
        let (to, detail) = match result {
            Ok(detail) => (Health::Up, detail),
            Err(reason) => (Health::Down, reason),
        };
        self.detail = detail.clone();
        if self.state == Some(to) {
            return None;
        }
        let from = self.state.replace(to);
        let lasted = from.map(|_| now.saturating_duration_since(self.since));
        self.since = now;
        self.since_ms = now_ms();
        Some(Transition {
            from,
            to,
            lasted,
            detail,
        })
    }
}

/// The alert for a transition; `None` for a first result that is up.
fn alert(spec: &CheckSpec, t: &Transition) -> Option<Notice> {
    let name = &spec.name;
    let text = match (t.from, t.to, t.lasted) {
        (None, Health::Up, _) => return None,
        (None, Health::Down, _) => format!("{name} is DOWN: {} (at the first check)", t.detail),
        (Some(from), Health::Down, Some(lasted)) => format!(
            "{name} is DOWN: {} (was {} for {})",
            t.detail,
            from.as_str(),
            human(lasted)
        ),
        (Some(from), Health::Up, Some(lasted)) => format!(
            "{name} is UP again: {} (was {} for {})",
            t.detail,
            from.as_str(),
            human(lasted)
        ),
        (Some(_), _, None) => unreachable!("a previous state has a duration"),
    };
    let mut notice = Notice::new(source(name), PostKind::Alert, message(&text))
        .with("check", name.clone())
        .with("state", t.to.as_str())
        .with("target", spec.probe.to_string())
        .with(
            if t.to == Health::Up {
                "detail"
            } else {
                "reason"
            },
            t.detail.clone(),
        );
    if let (Some(from), Some(lasted)) = (t.from, t.lasted) {
        notice = notice
            .with("previous", from.as_str())
            .with("lasted_ms", lasted.as_millis() as u64);
    }
    Some(notice)
}

fn source(name: &str) -> Source {
    Source::new(&format!("check:{name}")).expect("a valid source")
}

fn message(text: &str) -> MessageText {
    MessageText::new(text).unwrap_or_else(|| MessageText::new("(unprintable)").unwrap())
}

type Trackers = Arc<Mutex<Vec<CheckTracker>>>;

/// Starts one task per check, posting to `room`.
pub fn start(
    hub: &Hub,
    specs: &[CheckSpec],
    room: &RoomName,
    interval: Duration,
    timeout: Duration,
    shutdown: CancellationToken,
) {
    let shared: Trackers = Arc::new(Mutex::new(
        specs.iter().cloned().map(CheckTracker::new).collect(),
    ));
    hub.add_status(
        room,
        Arc::new(ChecksStatus {
            checks: shared.clone(),
            interval,
        }),
    );
    hub.metrics().add_collector(CheckStates(shared.clone()));
    for (index, spec) in specs.iter().enumerate() {
        info!(check = %spec.name, probe = %spec.probe, every = ?interval, "checking");
        tokio::spawn(run(
            hub.clone(),
            room.clone(),
            shared.clone(),
            index,
            interval,
            timeout,
            shutdown.clone(),
        ));
    }
}

async fn run(
    hub: Hub,
    room: RoomName,
    shared: Trackers,
    index: usize,
    interval: Duration,
    timeout: Duration,
    shutdown: CancellationToken,
) {
    let spec = lock(&shared)[index].spec.clone();
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let result = tokio::select! {
            _ = shutdown.cancelled() => return,
            result = probe(&spec.probe, timeout) => result,
        };
        // The lock is released before posting: the hub calls the status under its own lock.
        let transition = lock(&shared)[index].observe(result, Instant::now());
        let Some(transition) = transition else {
            continue;
        };
        info!(check = %spec.name, state = transition.to.as_str(), detail = %transition.detail, "check changed state");
        if let Some(notice) = alert(&spec, &transition) {
            let _ = hub.post(&room, notice);
        }
    }
}

/// Each check's state for `GET /metrics`, read when scraped: `charla_check_state` is 1 for
/// the state a check is in (`unknown` before its first result) and 0 for the others, one
/// series each, so a query or an alert rule need not know which states exist.
#[derive(Debug)]
struct CheckStates(Trackers);

impl Collector for CheckStates {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let states: Vec<(String, Option<Health>)> = lock(&self.0)
            .iter()
            .map(|tracker| (tracker.spec.name.clone(), tracker.state))
            .collect();
        let mut family = encoder.encode_descriptor(
            "check_state",
            "Each --check's state: 1 for the one it is in, 0 for the others",
            None,
            MetricType::Gauge,
        )?;
        let all = [
            ("up", Some(Health::Up)),
            ("down", Some(Health::Down)),
            ("unknown", None),
        ];
        for (name, state) in &states {
            for (label, value) in all {
                let labels = [("check", name.as_str()), ("state", label)];
                ConstGauge::new(i64::from(*state == value))
                    .encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

fn lock(shared: &Trackers) -> std::sync::MutexGuard<'_, Vec<CheckTracker>> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs a probe once: `Ok(what worked)` or `Err(why not)`.
pub async fn probe(probe: &Probe, timeout: Duration) -> Result<String, String> {
    let outcome = match probe {
        Probe::Tcp(target) => tokio::time::timeout(timeout, connect(target)).await,
        Probe::Exec(command) => return exec(command, timeout).await,
    };
    outcome.unwrap_or_else(|_| Err(format!("timed out after {}", human(timeout))))
}

async fn connect(target: &str) -> Result<String, String> {
    let addrs = tokio::net::lookup_host(target)
        .await
        .map_err(|e| format!("cannot resolve {target}: {}", io_reason(&e)))?;
    let mut last = format!("{target} resolves to no address");
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(_) => return Ok(format!("connected to {addr}")),
            Err(e) => last = format!("cannot connect to {addr}: {}", io_reason(&e)),
        }
    }
    Err(last)
}

/// `Connection refused`, without the ` (os error 111)` tail.
fn io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

async fn exec(command: &str, timeout: Duration) -> Result<String, String> {
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a timeout ends whatever it started too.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run sh: {}", io_reason(&e)))?;
    let group = child.id();
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let finished = tokio::time::timeout(timeout, async {
        let (out, err, status) = tokio::join!(tail(stdout), tail(stderr), child.wait());
        (out, err, status)
    })
    .await;
    let Ok((out, err, status)) = finished else {
        if let Some(pid) = group.and_then(|p| i32::try_from(p).ok()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        return Err(format!("timed out after {}", human(timeout)));
    };
    let status = status.map_err(|e| format!("cannot wait for the command: {}", io_reason(&e)))?;
    // The last line it printed, errors first: the likeliest explanation.
    let said = last_line(&err)
        .or_else(|| last_line(&out))
        .map(|l| format!(": {l}"))
        .unwrap_or_default();
    if status.success() {
        return Ok(format!("exit status 0{said}"));
    }
    let how = match (
        status.code(),
        std::os::unix::process::ExitStatusExt::signal(&status),
    ) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "failed".to_string(),
    };
    Err(format!("{how}{said}"))
}

/// Reads to the end, keeping only the last [`CHECK_OUTPUT_BYTES`].
async fn tail(mut pipe: impl AsyncRead + Unpin) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut chunk = [0u8; 1024];
    while let Ok(n) = pipe.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&chunk[..n]);
        if kept.len() > 2 * CHECK_OUTPUT_BYTES {
            kept.drain(..kept.len() - CHECK_OUTPUT_BYTES);
        }
    }
    kept
}

/// The last non-blank line of `output`, sanitised and cut to [`CHECK_REASON_CHARS`].
fn last_line(output: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(output);
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?;
    let clean = crate::hub::sanitize(line.trim());
    let mut cut: String = clean.chars().take(CHECK_REASON_CHARS).collect();
    if cut.len() < clean.len() {
        cut.push('…');
    }
    Some(cut)
}

/// Every check's state, for `#alerts` newcomers and `/status`.
struct ChecksStatus {
    checks: Trackers,
    interval: Duration,
}

impl RoomStatus for ChecksStatus {
    fn status(&self) -> Vec<Notice> {
        let now = Instant::now();
        lock(&self.checks)
            .iter()
            .map(|t| {
                let name = &t.spec.name;
                let (kind, text) = match t.state {
                    None => (
                        PostKind::Notice,
                        format!(
                            "{name} is not checked yet ({}, every {})",
                            t.spec.probe,
                            human(self.interval)
                        ),
                    ),
                    Some(state) => {
                        let lasted = human(now.saturating_duration_since(t.since));
                        let (kind, word) = match state {
                            Health::Up => (PostKind::Notice, "up"),
                            Health::Down => (PostKind::Alert, "DOWN"),
                        };
                        (
                            kind,
                            format!("{name} is {word} (for {lasted}): {}", t.detail),
                        )
                    }
                };
                let mut notice = Notice::new(source(name), kind, message(&text))
                    .with("check", name.clone())
                    .with("state", t.state.map_or("unknown", Health::as_str))
                    .with("target", t.spec.probe.to_string());
                if t.state.is_some() {
                    notice = notice.with("since", t.since_ms);
                }
                notice
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(s: &str) -> CheckSpec {
        s.parse().unwrap()
    }

    #[test]
    fn specs_parse_both_probes() {
        assert_eq!(
            spec("web=tcp://127.0.0.1:8080"),
            CheckSpec {
                name: "web".into(),
                probe: Probe::Tcp("127.0.0.1:8080".into())
            }
        );
        assert_eq!(
            spec("disk=exec:test $(df --output=pcent / | tail -1 | tr -dc 0-9) -lt 90").probe,
            Probe::Exec("test $(df --output=pcent / | tail -1 | tr -dc 0-9) -lt 90".into())
        );
        assert_eq!(
            spec("v6=tcp://[::1]:22").probe,
            Probe::Tcp("[::1]:22".into())
        );
        for bad in [
            "web",
            "=tcp://a:1",
            "we b=tcp://a:1",
            "web=http://a:1",
            "web=tcp://a",
            "web=tcp://:80",
            "web=exec:  ",
        ] {
            assert!(bad.parse::<CheckSpec>().is_err(), "{bad}");
        }
    }

    #[test]
    fn only_changes_of_state_are_transitions() {
        let mut t = CheckTracker::new(spec("web=tcp://a:1"));
        let t0 = Instant::now();
        let first = t.observe(Ok("connected".into()), t0).unwrap();
        assert_eq!(
            (first.from, first.to, first.lasted),
            (None, Health::Up, None)
        );
        assert!(alert(&t.spec, &first).is_none(), "a first up is not news");
        assert_eq!(t.observe(Ok("connected".into()), t0), None);

        let down = t
            .observe(Err("refused".into()), t0 + Duration::from_secs(125))
            .unwrap();
        assert_eq!(down.from, Some(Health::Up));
        assert_eq!(down.lasted, Some(Duration::from_secs(125)));
        let notice = alert(&t.spec, &down).unwrap();
        assert_eq!(notice.kind, PostKind::Alert);
        assert_eq!(
            notice.text.as_str(),
            "web is DOWN: refused (was up for 2m 5s)"
        );
        assert_eq!(notice.source.as_str(), "check:web");
        // No repeat while it stays down, even for another reason.
        assert_eq!(
            t.observe(Err("timed out".into()), t0 + Duration::from_secs(130)),
            None
        );

        let up = t
            .observe(Ok("connected".into()), t0 + Duration::from_secs(135))
            .unwrap();
        assert_eq!(
            alert(&t.spec, &up).unwrap().text.as_str(),
            "web is UP again: connected (was down for 10s)"
        );
    }

    #[test]
    fn a_first_result_that_is_down_is_an_alert() {
        let mut t = CheckTracker::new(spec("db=tcp://a:1"));
        let first = t.observe(Err("refused".into()), Instant::now()).unwrap();
        assert_eq!(
            alert(&t.spec, &first).unwrap().text.as_str(),
            "db is DOWN: refused (at the first check)"
        );
    }

    #[tokio::test]
    async fn commands_are_up_on_status_zero() {
        let second = Duration::from_secs(5);
        assert_eq!(
            probe(&Probe::Exec("echo fine".into()), second).await,
            Ok("exit status 0: fine".into())
        );
        assert_eq!(
            probe(&Probe::Exec("echo oops >&2; exit 3".into()), second).await,
            Err("exit status 3: oops".into())
        );
        let slow = probe(&Probe::Exec("sleep 30".into()), Duration::from_millis(100)).await;
        assert_eq!(slow, Err("timed out after 100ms".into()));
    }

    #[tokio::test]
    async fn tcp_probes_connect() {
        // Bound but not listening: connections are refused, and no other test can take
        // the port meanwhile.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = socket.local_addr().unwrap();
        let down = probe(&Probe::Tcp(addr.to_string()), Duration::from_secs(5)).await;
        assert_eq!(
            down,
            Err(format!("cannot connect to {addr}: Connection refused"))
        );
        let _listener = socket.listen(8).unwrap();
        let up = probe(&Probe::Tcp(addr.to_string()), Duration::from_secs(5)).await;
        assert_eq!(up, Ok(format!("connected to {addr}")));
    }
}
