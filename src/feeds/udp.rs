//! UDP alert ingest: what a datagram becomes. The socket is a transport in
//! `server/udp.rs`; this decides, datagram by datagram, whether and where it is posted.
//!
//! Each datagram of UTF-8 text is one alert, posted as from `udp:IP` to the default room
//! (`#alerts`), or to `#room` when the text starts with `#room ` and that room takes feed
//! posts: it was opened by a feed or `--feed-room` ([`Hub::is_kept`]), not merely made by a
//! user, so a stranger on the network cannot post into any conversation (otherwise the whole
//! text goes to the default room, so nothing is lost to a typo). Text is sanitised like a
//! chat line; line breaks become spaces. Each source address has an allowance
//! ([`UDP_BURST`] datagrams, refilled at [`UDP_RATE`] a second), and the listener one for all
//! sources together ([`UDP_GLOBAL_BURST`], [`UDP_GLOBAL_RATE`]), so many sources cannot add
//! up to a flood. A datagram over [`UDP_MAX_DATAGRAM`] bytes, not UTF-8, empty, or over
//! either allowance is dropped and counted in the log.
//!
//! A datagram `beat NAME` is a call of the job NAME to its heartbeat (`--heartbeat`), not
//! posted itself; when no heartbeat has that name it is posted like any other text.
//!
//! UDP is best-effort: nothing acknowledges a datagram, and one may be lost, duplicated or
//! reordered on the way (or dropped here) without the sender ever knowing. Use it for alerts
//! that may be lost; a program that needs to know its message arrived connects over TCP and
//! waits for the `ack` (docs/protocol.md).

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tracing::{debug, warn};

use crate::hub::{
    Beat, Caller, Hub, MessageText, Notice, PostKind, RoomName, RoomStatus, Source, Took, Unposted,
};
use crate::limits::{
    UDP_BURST, UDP_DROP_REPORT_EVERY, UDP_GLOBAL_BURST, UDP_GLOBAL_RATE, UDP_MAX_DATAGRAM,
    UDP_MAX_SOURCES, UDP_RATE,
};

/// How datagrams are taken in.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Where datagrams go unless they name a room that takes feed posts
    /// ([`super::ALERTS_ROOM`]).
    pub room: RoomName,
    /// [`UDP_MAX_DATAGRAM`].
    pub max_bytes: usize,
    /// [`UDP_RATE`]; 0 turns the per-source limit off.
    pub rate: u32,
    /// [`UDP_BURST`].
    pub burst: u32,
    /// [`UDP_GLOBAL_RATE`]; 0 turns the limit for all sources together off.
    pub global_rate: u32,
    /// [`UDP_GLOBAL_BURST`].
    pub global_burst: u32,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            room: super::alerts_room(),
            max_bytes: UDP_MAX_DATAGRAM,
            rate: UDP_RATE,
            burst: UDP_BURST,
            global_rate: UDP_GLOBAL_RATE,
            global_burst: UDP_GLOBAL_BURST,
        }
    }
}

/// Why a datagram was not posted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    Oversize,
    InvalidUtf8,
    /// Nothing printable in it.
    Empty,
    RateLimited,
    /// Within its source's allowance, but over the listener's for all sources together.
    GlobalRateLimited,
    /// The table of source allowances is full of sources still over their allowance.
    TooManySources,
    /// The history store cannot take more now: not posted ([`Unposted::StoreFull`]).
    StoreFull,
}

impl Dropped {
    const ALL: [Dropped; 7] = [
        Dropped::Oversize,
        Dropped::InvalidUtf8,
        Dropped::Empty,
        Dropped::RateLimited,
        Dropped::GlobalRateLimited,
        Dropped::TooManySources,
        Dropped::StoreFull,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Dropped::Oversize => "oversize",
            Dropped::InvalidUtf8 => "invalid_utf8",
            Dropped::Empty => "empty",
            Dropped::RateLimited => "rate_limited",
            Dropped::GlobalRateLimited => "global_rate_limited",
            Dropped::TooManySources => "too_many_sources",
            Dropped::StoreFull => "store_full",
        }
    }
}

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Counts for the status line.
#[derive(Default)]
struct Stats {
    posted: AtomicU64,
    dropped: AtomicU64,
}

/// An allowance (a source's, or all sources' together): a token bucket. HTTP publish
/// (`feeds::http`) keeps one per address too.
pub(crate) struct Allowance {
    pub(crate) tokens: f64,
    pub(crate) last: Instant,
}

impl Allowance {
    pub(crate) fn full(burst: f64, now: Instant) -> Allowance {
        Allowance {
            tokens: burst,
            last: now,
        }
    }

    /// Refills at `rate` a second up to `burst`, then spends one datagram if there is one.
    pub(crate) fn spend(&mut self, rate: f64, burst: f64, now: Instant) -> bool {
        let refill = now.saturating_duration_since(self.last).as_secs_f64() * rate;
        self.tokens = (self.tokens + refill).min(burst);
        self.last = now;
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }
}

/// Turns the datagrams of one listener into posts.
pub struct Ingest {
    hub: Hub,
    options: IngestOptions,
    listener: String,
    sources: HashMap<IpAddr, Allowance>,
    /// All sources' allowance together; made full at the first datagram.
    global: Option<Allowance>,
    stats: Arc<Stats>,
    /// Drops not yet in a log line, by [`Dropped`] in the order of `Dropped::ALL`.
    unreported: [u64; Dropped::ALL.len()],
    last_report: Option<Instant>,
}

impl Ingest {
    /// Opens the default room and tells its newcomers where alerts are accepted.
    /// `listener` names the socket, as in `udp://127.0.0.1:6031`.
    pub fn new(hub: &Hub, options: IngestOptions, listener: String) -> Ingest {
        let stats = Arc::new(Stats::default());
        hub.add_status(
            &options.room,
            Arc::new(UdpStatus {
                listener: listener.clone(),
                stats: stats.clone(),
            }),
        );
        Ingest {
            hub: hub.clone(),
            options,
            listener,
            sources: HashMap::new(),
            global: None,
            stats,
            unreported: [0; Dropped::ALL.len()],
            last_report: None,
        }
    }

    /// Bytes a receive buffer needs to tell an oversize datagram from one that fits.
    pub fn buffer_len(&self) -> usize {
        self.options.max_bytes + 1
    }

    /// Takes in one datagram (as received into a buffer of [`Ingest::buffer_len`]
    /// bytes): the room it was posted to, or why it was dropped (already logged).
    pub fn datagram(
        &mut self,
        from: SocketAddr,
        data: &[u8],
        now: Instant,
    ) -> Result<RoomName, Dropped> {
        let result = self.take(from, data, now);
        match &result {
            Ok(room) => {
                self.stats.posted.fetch_add(1, Ordering::Relaxed);
                debug!(%from, %room, "udp alert posted");
            }
            Err(why) => self.dropped(*why, from, now),
        }
        result
    }

    fn take(&mut self, from: SocketAddr, data: &[u8], now: Instant) -> Result<RoomName, Dropped> {
        let ip = from.ip().to_canonical();
        self.allow(ip, now)?;
        self.allow_globally(now)?;
        if data.len() > self.options.max_bytes {
            return Err(Dropped::Oversize);
        }
        let text = std::str::from_utf8(data).map_err(|_| Dropped::InvalidUtf8)?;
        // A job calling in to its heartbeat; a name no heartbeat has is posted as text.
        if let Some(name) = text.strip_prefix("beat ").map(str::trim) {
            match self.hub.beat(name, &Beat::Alive, Caller::Nobody) {
                Took::Now(Ok((room, _))) | Took::Sent(room) => return Ok(room),
                Took::Now(Err(_)) => {}
            }
        }
        let (room, body) = match text.strip_prefix('#').and_then(|_| {
            let (name, rest) = text.split_once(char::is_whitespace)?;
            Some((RoomName::parse(name).ok()?, rest))
        }) {
            Some((room, rest)) => (Some(room), rest),
            None => (None, text),
        };
        let one_line = |t: &str| -> Option<MessageText> {
            let joined: Vec<&str> = t.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
            MessageText::new(&joined.join(" "))
        };
        let source = Source::new(&format!("udp:{ip}")).expect("a valid source");
        let notice = |text| {
            Notice::new(source.clone(), PostKind::Alert, text)
                .with("addr", from.to_string())
                .with("priority", super::http::Priority::High as u64)
        };
        if let Some(room) = room.filter(|r| self.hub.is_kept(r)) {
            let text = one_line(body).ok_or(Dropped::Empty)?;
            match self.hub.post(&room, notice(text)) {
                Ok(posted) => return Ok(posted.room),
                Err(Unposted::StoreFull) => return Err(Dropped::StoreFull),
                Err(Unposted::NoSuchRoom(_)) => {}
            }
        }
        // No room named, or not one that takes feed posts: the whole text to the default
        // room.
        let text = one_line(text).ok_or(Dropped::Empty)?;
        let room = self.options.room.clone();
        // No such room only once the server is shutting down; nobody is left to tell.
        match self.hub.post(&room, notice(text)) {
            Err(Unposted::StoreFull) => Err(Dropped::StoreFull),
            _ => Ok(room),
        }
    }

    /// Spends one datagram of `ip`'s allowance.
    fn allow(&mut self, ip: IpAddr, now: Instant) -> Result<(), Dropped> {
        if self.options.rate == 0 {
            return Ok(());
        }
        let (rate, burst) = (
            f64::from(self.options.rate),
            f64::from(self.options.burst.max(1)),
        );
        if !self.sources.contains_key(&ip) && self.sources.len() >= UDP_MAX_SOURCES {
            // Forget the sources whose allowance is whole again: they lose nothing.
            self.sources.retain(|_, a| {
                a.tokens + now.saturating_duration_since(a.last).as_secs_f64() * rate < burst
            });
            if self.sources.len() >= UDP_MAX_SOURCES {
                return Err(Dropped::TooManySources);
            }
        }
        let allowance = self
            .sources
            .entry(ip)
            .or_insert_with(|| Allowance::full(burst, now));
        if !allowance.spend(rate, burst, now) {
            return Err(Dropped::RateLimited);
        }
        Ok(())
    }

    /// Spends one datagram of the allowance of all sources together. Asked only once the
    /// source's own allowance has let the datagram through, so a single flooding source
    /// does not use up everyone's.
    fn allow_globally(&mut self, now: Instant) -> Result<(), Dropped> {
        if self.options.global_rate == 0 {
            return Ok(());
        }
        let (rate, burst) = (
            f64::from(self.options.global_rate),
            f64::from(self.options.global_burst.max(1)),
        );
        let global = self
            .global
            .get_or_insert_with(|| Allowance::full(burst, now));
        if !global.spend(rate, burst, now) {
            return Err(Dropped::GlobalRateLimited);
        }
        Ok(())
    }

    /// When the drops not yet in a log line are due to be logged, if there are any: one
    /// [`UDP_DROP_REPORT_EVERY`] after the last such line. The receiving loop wakes then,
    /// so a drop is logged even when no datagram comes after it.
    pub fn report_due(&self) -> Option<Instant> {
        let waiting = self.unreported.iter().any(|n| *n > 0);
        self.last_report
            .filter(|_| waiting)
            .map(|at| at + UDP_DROP_REPORT_EVERY)
    }

    /// Logs the drops not yet logged, as [`Ingest::report_due`] asked, at `now`.
    pub fn report_now(&mut self, now: Instant) {
        self.last_report = Some(now);
        self.report();
    }

    /// Counts a drop; logs the drops so far at most every [`UDP_DROP_REPORT_EVERY`].
    fn dropped(&mut self, why: Dropped, from: SocketAddr, now: Instant) {
        self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        let index = Dropped::ALL.iter().position(|d| *d == why).expect("listed");
        self.unreported[index] += 1;
        debug!(%from, reason = %why, "udp datagram dropped");
        if self
            .last_report
            .is_some_and(|t| now.saturating_duration_since(t) < UDP_DROP_REPORT_EVERY)
        {
            return;
        }
        self.last_report = Some(now);
        self.report();
    }

    /// Logs the drops not yet logged, by reason.
    fn report(&mut self) {
        let since = self.unreported.iter().sum::<u64>();
        if since == 0 {
            return;
        }
        let counts: Vec<String> = Dropped::ALL
            .iter()
            .zip(self.unreported)
            .filter(|(_, n)| *n > 0)
            .map(|(d, n)| format!("{d} {n}"))
            .collect();
        self.unreported = [0; Dropped::ALL.len()];
        warn!(
            listener = %self.listener,
            dropped = since,
            reasons = %counts.join(", "),
            total_dropped = self.stats.dropped.load(Ordering::Relaxed),
            "udp datagrams dropped (counts since the last such line)"
        );
    }
}

impl Drop for Ingest {
    /// Drops not yet in a log line are told when the listener stops.
    fn drop(&mut self) {
        self.report();
    }
}

/// "UDP alerts are accepted on udp://…", for newcomers of the default room.
struct UdpStatus {
    listener: String,
    stats: Arc<Stats>,
}

impl RoomStatus for UdpStatus {
    fn status(&self) -> Vec<Notice> {
        let posted = self.stats.posted.load(Ordering::Relaxed);
        let dropped = self.stats.dropped.load(Ordering::Relaxed);
        let text = format!(
            "UDP alerts are accepted on {} (best-effort): {posted} posted, {dropped} dropped so far",
            self.listener
        );
        vec![
            Notice::new(
                Source::new("udp").expect("a valid source"),
                PostKind::Notice,
                MessageText::new(&text).expect("printable"),
            )
            .with("listener", self.listener.clone())
            .with("posted", posted)
            .with("dropped", dropped),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fanout::recorder::Recorder;
    use crate::feeds::ALERTS_ROOM;
    use crate::hub::Event;

    /// The room notices among what `inbox` was sent: (room, source, text).
    fn posts(inbox: &Recorder) -> Vec<(String, String, String)> {
        inbox
            .take()
            .iter()
            .filter_map(|e| match e {
                Event::Posted(p) => Some((
                    p.room.to_string(),
                    p.notice.source.to_string(),
                    p.notice.text.to_string(),
                )),
                _ => None,
            })
            .collect()
    }

    fn setup(options: IngestOptions) -> (Ingest, Arc<Recorder>) {
        let hub = Hub::new(&crate::limits::Limits {
            history_per_room: 10,
            ..Default::default()
        });
        let ingest = Ingest::new(&hub, options, "udp://127.0.0.1:9".into());
        // #ops takes feed posts (as with --feed-room); #chat is only a room users made.
        hub.open_room(&RoomName::parse("#ops").unwrap());
        let inbox = Arc::new(Recorder::default());
        let id = hub.register(inbox.clone(), None).unwrap();
        for room in [ALERTS_ROOM, "#ops", "#chat"] {
            let room = RoomName::parse(room).unwrap();
            hub.apply(id, crate::hub::Command::Join(room).into());
        }
        (ingest, inbox)
    }

    /// How long a source over its allowance waits for one more datagram, at `rate`.
    fn refill_time(rate: u32) -> std::time::Duration {
        std::time::Duration::from_secs_f64(1.0 / f64::from(rate))
    }

    fn from() -> SocketAddr {
        "192.0.2.7:5000".parse().unwrap()
    }

    #[test]
    fn datagrams_become_alerts_in_their_room() {
        let (mut ingest, inbox) = setup(IngestOptions::default());
        let now = Instant::now();
        assert_eq!(
            ingest
                .datagram(from(), b"disk full\n", now)
                .unwrap()
                .as_str(),
            "#alerts"
        );
        assert_eq!(
            ingest
                .datagram(from(), b"#ops deploy done", now)
                .unwrap()
                .as_str(),
            "#ops"
        );
        // A room nobody is in, or one users made: the whole text goes to the default room.
        for text in [&b"#nowhere hi"[..], b"#chat hi"] {
            assert_eq!(
                ingest.datagram(from(), text, now).unwrap().as_str(),
                "#alerts"
            );
        }
        ingest
            .datagram(from(), b"two\nlines \x1b[31mred\x07\n", now)
            .unwrap();
        assert_eq!(
            posts(&inbox),
            [
                ("#alerts".into(), "udp:192.0.2.7".into(), "disk full".into()),
                ("#ops".into(), "udp:192.0.2.7".into(), "deploy done".into()),
                (
                    "#alerts".into(),
                    "udp:192.0.2.7".into(),
                    "#nowhere hi".into()
                ),
                ("#alerts".into(), "udp:192.0.2.7".into(), "#chat hi".into()),
                (
                    "#alerts".into(),
                    "udp:192.0.2.7".into(),
                    "two lines red".into()
                ),
            ]
        );
    }

    #[test]
    fn bad_datagrams_are_dropped() {
        let (mut ingest, inbox) = setup(IngestOptions {
            max_bytes: 8,
            ..IngestOptions::default()
        });
        let now = Instant::now();
        assert_eq!(
            ingest.datagram(from(), b"123456789", now),
            Err(Dropped::Oversize)
        );
        assert_eq!(
            ingest.datagram(from(), b"\xff\xfe", now),
            Err(Dropped::InvalidUtf8)
        );
        assert_eq!(
            ingest.datagram(from(), b" \n\x1b[2J", now),
            Err(Dropped::Empty)
        );
        assert_eq!(
            ingest.datagram(from(), b"12345678", now).map(|_| ()),
            Ok(())
        );
        assert_eq!(posts(&inbox).len(), 1);
    }

    /// A drop within a report interval of the last log line is logged when the interval
    /// ends, whether or not another datagram comes.
    #[test]
    fn drops_held_back_are_due_one_interval_after_the_last_line() {
        let (mut ingest, _inbox) = setup(IngestOptions::default());
        let now = Instant::now();
        assert_eq!(ingest.report_due(), None);
        // The first drop is logged at once: nothing waits.
        ingest.datagram(from(), b"\xff", now).unwrap_err();
        assert_eq!(ingest.report_due(), None);
        let later = now + std::time::Duration::from_secs(1);
        ingest.datagram(from(), b"\xff", later).unwrap_err();
        assert_eq!(ingest.report_due(), Some(now + UDP_DROP_REPORT_EVERY));
        ingest.report_now(now + UDP_DROP_REPORT_EVERY);
        assert_eq!(ingest.report_due(), None);
        assert_eq!(ingest.unreported, [0; Dropped::ALL.len()]);
    }

    #[test]
    fn each_source_has_an_allowance() {
        let (mut ingest, inbox) = setup(IngestOptions {
            rate: 2,
            burst: 3,
            ..IngestOptions::default()
        });
        let now = Instant::now();
        for _ in 0..3 {
            ingest.datagram(from(), b"x", now).unwrap();
        }
        assert_eq!(
            ingest.datagram(from(), b"x", now),
            Err(Dropped::RateLimited)
        );
        // Another source is not held back by the first.
        let other: SocketAddr = "192.0.2.8:1".parse().unwrap();
        assert!(ingest.datagram(other, b"y", now).is_ok());
        // Half a second later one more is allowed.
        let later = now + refill_time(2);
        assert!(ingest.datagram(from(), b"x", later).is_ok());
        assert_eq!(
            ingest.datagram(from(), b"x", later),
            Err(Dropped::RateLimited)
        );
        assert_eq!(posts(&inbox).len(), 5);
    }

    #[test]
    fn all_sources_together_have_an_allowance() {
        let (mut ingest, inbox) = setup(IngestOptions {
            global_rate: 2,
            global_burst: 4,
            ..IngestOptions::default()
        });
        let now = Instant::now();
        let source = |n: u8| SocketAddr::from(([192, 0, 2, n], 5000));
        // Six sources, each well within its own allowance: the first four get through.
        let results: Vec<_> = (1..=6)
            .map(|n| ingest.datagram(source(n), b"x", now).map(|_| ()))
            .collect();
        assert_eq!(
            results,
            [
                Ok(()),
                Ok(()),
                Ok(()),
                Ok(()),
                Err(Dropped::GlobalRateLimited),
                Err(Dropped::GlobalRateLimited)
            ]
        );
        assert_eq!(posts(&inbox).len(), 4);
        assert_eq!(ingest.stats.dropped.load(Ordering::Relaxed), 2);
        // A source over its own allowance does not spend everyone's.
        let (mut ingest, inbox) = setup(IngestOptions {
            rate: 1,
            burst: 1,
            global_rate: 1,
            global_burst: 2,
            ..IngestOptions::default()
        });
        assert!(ingest.datagram(source(1), b"x", now).is_ok());
        for _ in 0..5 {
            assert_eq!(
                ingest.datagram(source(1), b"x", now),
                Err(Dropped::RateLimited)
            );
        }
        assert!(ingest.datagram(source(2), b"y", now).is_ok());
        assert_eq!(
            ingest.datagram(source(3), b"z", now),
            Err(Dropped::GlobalRateLimited)
        );
        // Refilled at the global rate.
        assert!(
            ingest
                .datagram(source(3), b"z", now + refill_time(1))
                .is_ok()
        );
        assert_eq!(posts(&inbox).len(), 3);
        assert_eq!(ingest.stats.dropped.load(Ordering::Relaxed), 6);
    }
}
