//! What the server counts, for `GET /metrics` on an `http://` listener, in the Prometheus
//! text format (docs/protocol.md, "Metrics").
//!
//! One [`Metrics`] per hub, handed over in its [`crate::hub::Edges`]: the hub counts
//! messages, queue overflows and fan-out probes under its lock, the server counts
//! connections and flood control, connections count what they write. What the state knows
//! already (sessions, rooms, checks, the history store) is read when scraped, through a
//! [`Collector`] its owner adds, rather than counted as it changes.
//!
//! Counting costs the data path next to nothing: what happens once per message or per
//! connection is one relaxed atomic add; what happens on every write goes to a tally per
//! thread ([`WriteTally`]); fan-out latency is measured on a sample of the messages
//! ([`FanoutProbe`]).

mod probe;
mod store;
mod tally;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

pub use probe::{FANOUT_SAMPLE_INTERVAL, FanoutProbe, FanoutSampler};
pub use store::HistoryCounts;
pub use tally::WriteTally;

/// The content type of what [`Metrics::render`] writes.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// What a connection speaks, as the `protocol` label of `charla_connections` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionKind {
    /// Text lines (nc), over TCP or a Unix socket, until a `hello` makes it JSON.
    Text,
    /// JSON lines over TCP or a Unix socket.
    Json,
    Irc,
    /// The JSON protocol over a WebSocket (`GET /ws`).
    WebSocket,
    /// An HTTP connection that is no WebSocket (the page, posts, history, these metrics).
    Http,
}

impl ConnectionKind {
    pub const ALL: [ConnectionKind; 5] = [
        ConnectionKind::Text,
        ConnectionKind::Json,
        ConnectionKind::Irc,
        ConnectionKind::WebSocket,
        ConnectionKind::Http,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionKind::Text => "text",
            ConnectionKind::Json => "json",
            ConnectionKind::Irc => "irc",
            ConnectionKind::WebSocket => "websocket",
            ConnectionKind::Http => "http",
        }
    }
}

/// What a message received was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    /// Said in a room (`/me` too).
    Room,
    /// Sent to one nick.
    Private,
    /// Posted by a feed or over HTTP.
    Post,
}

impl MessageKind {
    const ALL: [MessageKind; 3] = [MessageKind::Room, MessageKind::Private, MessageKind::Post];

    fn as_str(self) -> &'static str {
        match self {
            MessageKind::Room => "room",
            MessageKind::Private => "private",
            MessageKind::Post => "post",
        }
    }
}

type Labels = [(&'static str, &'static str); 1];

/// Everything counted, and the registry that shows it. Counters that change on the data
/// path are kept here as handles, so counting never looks a label up.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    connections: [Gauge; ConnectionKind::ALL.len()],
    received: [Counter; MessageKind::ALL.len()],
    delivered: Counter,
    writes: Arc<WriteTally>,
    send_queue_overflows: Counter,
    flood_refusals: Counter,
    flood_kicks: Counter,
    unconfirmed: Counter,
    fanout: Histogram,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("charla");
        let connections = Family::<Labels, Gauge>::default();
        registry.register(
            "connections",
            "Connections open now, by the protocol they speak",
            connections.clone(),
        );
        let received = Family::<Labels, Counter>::default();
        registry.register(
            "messages_received",
            "Messages taken in: said in a room, sent to a nick, or posted by a feed or over HTTP",
            received.clone(),
        );
        let delivered = Counter::default();
        registry.register(
            "messages_delivered",
            "Messages handed to a recipient's connection: one per member a room message reaches, one per private message",
            delivered.clone(),
        );
        let writes = Arc::new(WriteTally::default());
        registry.register_collector(Box::new(writes.clone()));
        let send_queue_overflows = Counter::default();
        registry.register(
            "send_queue_overflows",
            "Connections cut off because what waited to be written to them passed --send-queue",
            send_queue_overflows.clone(),
        );
        let flood_refusals = Counter::default();
        registry.register(
            "flood_refusals",
            "Lines refused by flood control (a flood error, the line not carried out)",
            flood_refusals.clone(),
        );
        let flood_kicks = Counter::default();
        registry.register(
            "flood_kicks",
            "Connections ended by flood control after --flood-kick refusals in a row",
            flood_kicks.clone(),
        );
        let unconfirmed = Counter::default();
        registry.register(
            "acks_unconfirmed",
            "Messages whose acks had not come when their sender's connection closed (told as one unconfirmed error)",
            unconfirmed.clone(),
        );
        // From 50 µs, doubling: a quiet loopback server is in the first buckets, a stalled
        // member's minute-long wait in the last.
        let fanout = Histogram::new(exponential_buckets(0.000_05, 2.0, 22));
        registry.register(
            "fanout_seconds",
            "Time from taking in a room message to writing it to the last member it was for, on a sample of the messages",
            fanout.clone(),
        );
        Arc::new(Metrics {
            registry: Mutex::new(registry),
            connections: ConnectionKind::ALL
                .map(|kind| connections.get_or_create_owned(&[("protocol", kind.as_str())])),
            received: MessageKind::ALL
                .map(|kind| received.get_or_create_owned(&[("kind", kind.as_str())])),
            delivered,
            writes,
            send_queue_overflows,
            flood_refusals,
            flood_kicks,
            unconfirmed,
            fanout,
        })
    }

    /// Adds what is read from state when scraped (sessions and rooms, checks, the store).
    pub fn add_collector(&self, collector: impl Collector) {
        self.lock().register_collector(Box::new(collector));
    }

    /// Everything, in the Prometheus text format ([`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_text::encode(&mut out, &self.lock()).expect("writing to a String");
        out
    }

    pub fn connection_opened(&self, kind: ConnectionKind) {
        self.connections[kind as usize].inc();
    }

    pub fn connection_closed(&self, kind: ConnectionKind) {
        self.connections[kind as usize].dec();
    }

    pub fn received(&self, kind: MessageKind) {
        self.received[kind as usize].inc();
    }

    pub fn delivered(&self, recipients: u64) {
        self.delivered.inc_by(recipients);
    }

    /// What connections write is tallied here.
    pub fn writes(&self) -> &WriteTally {
        &self.writes
    }

    pub fn send_queue_overflowed(&self) {
        self.send_queue_overflows.inc();
    }

    pub fn flood_refused(&self) {
        self.flood_refusals.inc();
    }

    pub fn flood_kicked(&self) {
        self.flood_kicks.inc();
    }

    /// A closing connection was told that `messages` of its acks will not come.
    pub fn unconfirmed(&self, messages: u32) {
        self.unconfirmed.inc_by(u64::from(messages));
    }

    /// A probe for a room message taken in at `taken`, to be written to `members`.
    pub fn probe(&self, taken: Instant, members: usize) -> Arc<FanoutProbe> {
        FanoutProbe::new(taken, members, self.fanout.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The families a fresh server shows, each with its type, as docs/protocol.md lists
    /// them (the hub's, the checks' and the history file's are added by their owners).
    #[test]
    fn the_registry_shows_every_family_by_its_documented_name() {
        let metrics = Metrics::new();
        metrics.connection_opened(ConnectionKind::Irc);
        metrics.received(MessageKind::Private);
        metrics.writes().add(2, 40);
        let text = metrics.render();
        for (name, kind) in [
            ("charla_connections", "gauge"),
            ("charla_messages_received_total", "counter"),
            ("charla_messages_delivered_total", "counter"),
            ("charla_lines_written_total", "counter"),
            ("charla_bytes_written_total", "counter"),
            ("charla_send_queue_overflows_total", "counter"),
            ("charla_flood_refusals_total", "counter"),
            ("charla_flood_kicks_total", "counter"),
            ("charla_acks_unconfirmed_total", "counter"),
            ("charla_fanout_seconds", "histogram"),
        ] {
            assert!(
                text.contains(&format!("\n# TYPE {name} {kind}\n"))
                    || text.starts_with(&format!("# TYPE {name} {kind}\n")),
                "{name} {kind} in {text}"
            );
        }
        for kind in ConnectionKind::ALL {
            let open = i32::from(kind == ConnectionKind::Irc);
            let sample = format!(
                "charla_connections{{protocol=\"{}\"}} {open}\n",
                kind.as_str()
            );
            assert!(text.contains(&sample), "{sample} in {text}");
        }
        assert!(text.contains("charla_messages_received_total{kind=\"private\"} 1\n"));
        assert!(text.contains("charla_lines_written_total 2\n"));
        assert!(text.contains("charla_bytes_written_total 40\n"));
    }
}
