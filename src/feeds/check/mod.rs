//! Alarm checks: `--check NAME=tcp://HOST:PORT` (does it accept a connection?),
//! `--check 'NAME=http(s)://URL status=200 keyword=ok'` (does it answer as expected?) and
//! `--check 'NAME=exec:COMMAND'` (does `sh -c COMMAND` exit with status 0?), run every
//! [`CHECK_INTERVAL`], each try bounded by [`CHECK_TIMEOUT`].
//!
//! A check is up, PENDING or DOWN. A failed check is PENDING (a notice) until it failed
//! `retries` times in a row ([`CHECK_RETRIES`]), then DOWN (an alert, with the reason and
//! how long it was up). Only a change of state is posted; while a check stays DOWN the
//! alert is repeated every `--check-remind`, if set. The very first result is posted only
//! when it is not up (up is what is expected). Everyone joining `#alerts`, and `/status`
//! there, is told every check's current state.

pub(crate) mod desk;
mod http;
mod probe;
mod spec;
mod tracker;
mod uptime;

pub use http::HttpProbe;
pub use probe::{Probed, probe};
pub use spec::{CheckOptions, CheckSpec, MAX_CHECK_NAME, Probe, name_rule, valid_name};
pub use tracker::{Health, Silence};

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::human;
use crate::hub::{Hub, Notice, PostKind, RoomName, RoomStatus};
#[cfg(doc)]
use crate::limits::{CHECK_CERT_WARN, CHECK_INTERVAL, CHECK_RETRIES, CHECK_TIMEOUT};
use crate::limits::{CHECK_SPREAD_STEP, CLUSTER_HEARTBEAT};
use tracker::CheckTracker;

/// How every check runs, unless its own options say otherwise.
#[derive(Debug, Clone, Copy)]
pub struct CheckSettings {
    /// Time between two tries ([`CHECK_INTERVAL`]).
    pub interval: Duration,
    /// Time one try may take ([`CHECK_TIMEOUT`]).
    pub timeout: Duration,
    /// Failed tries in a row before DOWN ([`CHECK_RETRIES`]).
    pub retries: u32,
    /// How often a DOWN alert is repeated while it lasts; never when `None`.
    pub remind: Option<Duration>,
    /// How long before a TLS certificate expires it is warned of ([`CHECK_CERT_WARN`]).
    pub cert_warn: Duration,
}

type Trackers = Arc<Mutex<Vec<CheckTracker>>>;

/// Starts one task per check, posting to `room`.
pub fn start(
    hub: &Hub,
    specs: &[CheckSpec],
    room: &RoomName,
    settings: CheckSettings,
    shutdown: CancellationToken,
) {
    let shared: Trackers = Arc::new(Mutex::new(
        specs
            .iter()
            .map(|spec| CheckTracker::new(spec.clone(), settings.retries))
            .collect(),
    ));
    hub.add_status(
        room,
        Arc::new(ChecksStatus {
            checks: shared.clone(),
            interval: settings.interval,
            hub: hub.clone(),
        }),
    );
    hub.metrics().add_collector(CheckStates(shared.clone()));
    hub.add_desk(Arc::new(desk::CheckDesk {
        room: room.clone(),
        checks: shared.clone(),
    }));
    // Spread over the interval rather than all at once: a thousand checks then hold the
    // connections and buffers of one step's runs at any moment, not a thousand, and the
    // targets are not all asked in the same instant. In steps, not one by one, so the runtime still wakes
    // for many runs at a time (waking for each costs more CPU than the runs).
    let count = specs.len().max(1) as u32;
    let step = CHECK_SPREAD_STEP.as_millis().max(1);
    for (index, spec) in specs.iter().enumerate() {
        // Claimed now in a cluster, so that its lease is asked for before the first try.
        hub.runs_here(&spec.name);
        info!(check = %spec.name, probe = %spec.probe, every = ?settings.interval, "checking");
        let offset = (settings.interval * index as u32 / count).as_millis() / step * step;
        let first = Instant::now() + Duration::from_millis(offset as u64);
        tokio::spawn(run(
            hub.clone(),
            room.clone(),
            shared.clone(),
            index,
            first,
            settings,
            shutdown.clone(),
        ));
    }
}

async fn run(
    hub: Hub,
    room: RoomName,
    shared: Trackers,
    index: usize,
    first: Instant,
    settings: CheckSettings,
    shutdown: CancellationToken,
) {
    let spec = lock(&shared)[index].spec.clone();
    let timeout = spec
        .options
        .timeout
        .unwrap_or(settings.timeout)
        .min(settings.interval);
    let mut ticks = tokio::time::interval_at(first, settings.interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        if !hub.runs_here(&spec.name) {
            // Another node of the cluster runs it: should this node take it over, it starts
            // afresh, as the check of a node that just started.
            let mut trackers = lock(&shared);
            let tracker = &mut trackers[index];
            if tracker.state.is_some() || tracker.silenced.is_some() {
                *tracker = CheckTracker::new((*spec).clone(), settings.retries);
                drop(trackers);
                hub.alerts_changed();
            }
            // Looked at again soon rather than an interval later: a lease claimed at start
            // or freed by a node that died is taken up within a heartbeat.
            ticks.reset_after(settings.interval.min(CLUSTER_HEARTBEAT));
            continue;
        }
        if lock(&shared)[index].state.is_none()
            && let Some(last) = hub.taken_over(&spec.name)
        {
            // Taken over from another node: its state goes on here, so the room is not
            // told again what it heard.
            lock(&shared)[index].adopt(&last, Instant::now());
        }
        let started = Instant::now();
        let probed = tokio::select! {
            _ = shutdown.cancelled() => return,
            // Boxed: the probe's state (a connection, TLS, HTTP) is held only while it runs,
            // not for the whole life of the check's task.
            probed = Box::pin(probe(&spec.probe, timeout)) => probed,
        };
        let now = Instant::now();
        // The lock is released before posting: the hub calls the status under its own lock.
        let mut changed = false;
        let said = {
            let mut trackers = lock(&shared);
            let tracker = &mut trackers[index];
            let expiring = probed.not_after.and_then(|not_after| {
                tracker.certificate(not_after, settings.cert_warn, super::now_ms() as i64 / 1000)
            });
            let said = match tracker.observe(probed.result, now - started, now) {
                Some(transition) => {
                    changed = true;
                    info!(check = %spec.name, state = transition.to.as_str(), detail = %transition.detail, "check changed state");
                    tracker.alert(&transition)
                }
                None => settings.remind.and_then(|every| tracker.remind(every, now)),
            };
            let mut ended = false;
            let silent = tracker.silent(now, &mut ended);
            changed |= ended;
            if silent {
                Vec::new()
            } else if ended && said.is_none() {
                // The silence ran out: its state is said once, and reminded an interval on.
                tracker.told_now(now);
                desk::silence_ended(tracker, now).into_iter().collect()
            } else {
                said.into_iter().chain(expiring).collect::<Vec<_>>()
            }
        };
        for notice in said {
            let _ = hub.post(&room, hub.of_this_node(notice));
        }
        if changed {
            hub.alerts_changed();
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
            "Each --check's state: 1 for the one it is in, 0 for the others.",
            None,
            MetricType::Gauge,
        )?;
        let all = [
            ("up", Some(Health::Up)),
            ("pending", Some(Health::Pending)),
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

/// Every check's state, for `#alerts` newcomers and `/status`: in a cluster, of the checks
/// this node runs.
struct ChecksStatus {
    checks: Trackers,
    interval: Duration,
    hub: Hub,
}

impl RoomStatus for ChecksStatus {
    fn status(&self) -> Vec<Notice> {
        let now = Instant::now();
        lock(&self.checks)
            .iter()
            .filter(|t| self.hub.runs_here(&t.spec.name))
            .map(|t| {
                let name = &t.spec.name;
                let Some(state) = t.state else {
                    let text = format!(
                        "{name} is not checked yet ({}, every {})",
                        t.spec.probe,
                        human(self.interval)
                    );
                    return Notice::new(
                        tracker::source(name),
                        PostKind::Notice,
                        tracker::message(&text),
                    )
                    .with("check", name.clone())
                    .with("state", "unknown")
                    .with("target", t.spec.probe.to_string());
                };
                let kind = match state {
                    Health::Down => PostKind::Alert,
                    Health::Up | Health::Pending => PostKind::Notice,
                };
                let text = t.state_line(now).expect("it has a state");
                t.notice(kind, &text, state).with("since", t.since_ms)
            })
            .collect()
    }

    fn shared(&self) -> bool {
        true
    }
}
