//! Things that publish into rooms without being a person: the file watcher, health checks
//! and UDP, HTTP and Alertmanager alert ingest.
//!
//! A feed talks to the hub through three calls and nothing else: [`Hub::open_room`] (its
//! room lives on without members, so its history waits for newcomers), [`Hub::add_status`]
//! (newcomers and `/status` are told what it is doing) and [`Hub::post`] (a notice or an
//! alert, remembered and fanned out like a message). The UDP socket itself is a transport
//! in `server/`; what a datagram becomes is decided here, in [`udp`].

pub mod alertmanager;
pub mod check;
pub mod heartbeat;
pub mod http;
pub mod udp;
pub mod watch;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;

use crate::hub::{Hub, RoomName};
use crate::limits::{CHECK_CERT_WARN, CHECK_INTERVAL, CHECK_RETRIES, CHECK_TIMEOUT};

pub use check::{CheckSpec, Probe};
pub use heartbeat::HeartbeatSpec;
pub use watch::WatchSpec;

/// The room checks post their alerts to, and UDP datagrams go to by default.
pub const ALERTS_ROOM: &str = "#alerts";

/// The room `charla serve --watch PATH` posts to when no `=#room` is given.
pub const WATCH_ROOM: &str = "#watch";

/// The feeds a server runs, besides UDP ingest (which comes with its listener).
#[derive(Debug, Clone)]
pub struct FeedOptions {
    pub watches: Vec<WatchSpec>,
    pub checks: Vec<CheckSpec>,
    /// Time between two runs of each check ([`CHECK_INTERVAL`]).
    pub check_interval: Duration,
    /// Time a check may take ([`CHECK_TIMEOUT`]); capped at the interval.
    pub check_timeout: Duration,
    /// Failed runs in a row before a check is DOWN ([`CHECK_RETRIES`]); the ones before
    /// are PENDING.
    pub check_retries: u32,
    /// How often a DOWN alert is repeated while it lasts (`--check-remind`); never when
    /// `None`.
    pub check_remind: Option<Duration>,
    /// How long before a TLS certificate expires a check warns of it (`--check-cert-warn`,
    /// [`CHECK_CERT_WARN`]).
    pub check_cert_warn: Duration,
    /// Jobs that must call in (`--heartbeat NAME=PERIOD[+GRACE]`), said in the check room.
    pub heartbeats: Vec<HeartbeatSpec>,
    /// Where check alerts go ([`ALERTS_ROOM`]).
    pub check_room: RoomName,
    /// Rooms opened at start-up to take feed posts that name them, such as a UDP
    /// datagram's `#room` (`--feed-room`); a room users made does not.
    pub feed_rooms: Vec<RoomName>,
}

impl Default for FeedOptions {
    fn default() -> Self {
        FeedOptions {
            watches: Vec::new(),
            checks: Vec::new(),
            check_interval: CHECK_INTERVAL,
            check_timeout: CHECK_TIMEOUT,
            check_retries: CHECK_RETRIES,
            check_remind: None,
            check_cert_warn: CHECK_CERT_WARN,
            heartbeats: Vec::new(),
            check_room: alerts_room(),
            feed_rooms: Vec::new(),
        }
    }
}

/// Why the feeds could not start; said before the server claims to listen.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error(transparent)]
    Watch(#[from] watch::WatchError),
    /// `/ack NAME` and `/silence NAME` reach checks and heartbeats by name alone.
    #[error("{0:?} names both a --check and a --heartbeat: give each its own name")]
    SameName(String),
}

/// Whether the feeds in `options` can start: a server asks before it makes anything of its
/// own (its data directory, its database), so a mistyped option leaves nothing behind.
/// [`start`] asks again, as a watched path may go in between.
pub fn check(options: &FeedOptions) -> Result<(), FeedError> {
    if let Some(beat) = options
        .heartbeats
        .iter()
        .find(|b| options.checks.iter().any(|c| c.name == b.name))
    {
        return Err(FeedError::SameName(beat.name.clone()));
    }
    watch::check_paths(&options.watches)?;
    Ok(())
}

/// Starts every feed in `options` on `hub`; they run until `shutdown` is cancelled. Must be
/// called inside a Tokio runtime.
pub fn start(
    hub: &Hub,
    options: &FeedOptions,
    shutdown: CancellationToken,
) -> Result<(), FeedError> {
    check(options)?;
    for room in &options.feed_rooms {
        hub.open_room(room);
    }
    if !options.watches.is_empty() {
        watch::start(hub, &options.watches, shutdown.clone())?;
    }
    if !options.heartbeats.is_empty() {
        heartbeat::start(
            hub,
            &options.heartbeats,
            &options.check_room,
            shutdown.clone(),
        );
    }
    if !options.checks.is_empty() {
        // A zero interval would spin (and Tokio refuses it).
        let interval = options.check_interval.max(Duration::from_millis(1));
        let settings = check::CheckSettings {
            interval,
            timeout: options.check_timeout.min(interval),
            retries: options.check_retries.max(1),
            remind: options.check_remind.filter(|d| !d.is_zero()),
            cert_warn: options.check_cert_warn,
        };
        check::start(
            hub,
            &options.checks,
            &options.check_room,
            settings,
            shutdown,
        );
    }
    Ok(())
}

/// [`ALERTS_ROOM`] as a room name.
pub fn alerts_room() -> RoomName {
    RoomName::parse(ALERTS_ROOM).expect("a valid room name")
}

/// [`WATCH_ROOM`] as a room name.
pub fn watch_room() -> RoomName {
    RoomName::parse(WATCH_ROOM).expect("a valid room name")
}

/// Milliseconds since the Unix epoch, as the hub stamps posts.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A duration as people say it, in its two largest units: `850ms`, `12s`, `2m 5s`,
/// `3h 1m`, `1 day`, `2 days 4h`, `30 days`. Days are the largest unit: a month or a year
/// is not a fixed length, and `400 days` reads plainly.
pub fn human(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        return format!("{}ms", d.as_millis());
    }
    let secs = d.as_secs();
    let (big, small) = match secs {
        0..60 => return format!("{secs}s"),
        60..3600 => (format!("{}m", secs / 60), (secs % 60, "s")),
        3600..86_400 => (format!("{}h", secs / 3600), (secs % 3600 / 60, "m")),
        _ => {
            let days = secs / 86_400;
            let unit = if days == 1 { "day" } else { "days" };
            (format!("{days} {unit}"), (secs % 86_400 / 3600, "h"))
        }
    };
    match small {
        (0, _) => big,
        (n, unit) => format!("{big} {n}{unit}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_speech() {
        assert_eq!(human(Duration::from_millis(850)), "850ms");
        assert_eq!(human(Duration::from_millis(12_400)), "12s");
        assert_eq!(human(Duration::from_secs(125)), "2m 5s");
        assert_eq!(human(Duration::from_secs(3 * 3600 + 65)), "3h 1m");
        assert_eq!(human(Duration::from_secs(3600)), "1h");
        assert_eq!(
            human(Duration::from_secs(2 * 86_400 + 4 * 3600 + 7)),
            "2 days 4h"
        );
        assert_eq!(human(Duration::from_secs(86_400 + 59)), "1 day");
        // No months or years, whose length varies: `/silence`'s bound reads as typed.
        assert_eq!(human(Duration::from_secs(30 * 86_400)), "30 days");
        assert_eq!(
            human(Duration::from_secs(400 * 86_400 + 3 * 3600)),
            "400 days 3h"
        );
    }
}
