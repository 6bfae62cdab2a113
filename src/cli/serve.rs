//! `charla serve`: its options. Every option can also come from the environment variable
//! named in its help (`CHARLA_LISTEN`, …).

use std::time::Duration;

use clap::Args;

use charla::limits::{self, Limits};
use charla::server::{DEFAULT_LISTEN, ListenAddr};

#[derive(Args)]
pub struct Serve {
    /// Where to listen (repeatable, or comma-separated in the variable): tcp://HOST:PORT,
    /// tcp://[::1]:PORT, HOST:PORT, unix:///path/to.sock. Port 0 picks a free port; every
    /// bound address is printed as `listening on ADDR`.
    #[arg(
        short,
        long = "listen",
        env = "CHARLA_LISTEN",
        value_delimiter = ',',
        default_value = DEFAULT_LISTEN,
    )]
    pub listen: Vec<String>,

    /// Longest line a client may send, in bytes.
    #[arg(long, env = "CHARLA_MAX_LINE", default_value_t = limits::MAX_LINE_BYTES)]
    pub max_line: usize,

    /// Messages each room remembers and replays to newcomers.
    #[arg(long, env = "CHARLA_HISTORY", default_value_t = limits::HISTORY_PER_ROOM)]
    pub history: usize,

    /// Bytes that may wait for a client that is not reading before it is disconnected.
    #[arg(long, env = "CHARLA_SEND_QUEUE", default_value_t = limits::SEND_QUEUE_BYTES)]
    pub send_queue: usize,

    /// Connections served at once.
    #[arg(long, env = "CHARLA_MAX_CONNECTIONS", default_value_t = limits::MAX_CONNECTIONS)]
    pub max_connections: usize,

    /// Connections at once from one IP address (0: no bound).
    #[arg(long, env = "CHARLA_MAX_PER_IP", default_value_t = limits::MAX_CONNECTIONS_PER_IP)]
    pub max_per_ip: usize,

    /// Lines a client may send in a burst.
    #[arg(long, env = "CHARLA_FLOOD_BURST", default_value_t = limits::FLOOD_BURST)]
    pub flood_burst: u32,

    /// Lines per second the burst refills at (0: flood control off).
    #[arg(long, env = "CHARLA_FLOOD_RATE", default_value_t = limits::FLOOD_RATE)]
    pub flood_rate: u32,

    /// Refused lines in a row after which a flooding client is disconnected.
    #[arg(long, env = "CHARLA_FLOOD_KICK", default_value_t = limits::FLOOD_KICK_AFTER)]
    pub flood_kick: u32,

    /// Seconds without input after which a client is disconnected (0: never).
    #[arg(long, env = "CHARLA_IDLE_TIMEOUT", default_value_t = limits::IDLE_TIMEOUT.as_secs())]
    pub idle_timeout: u64,
}

impl Serve {
    pub fn addresses(&self) -> Result<Vec<ListenAddr>, String> {
        let mut all = Vec::new();
        for spec in &self.listen {
            all.extend(ListenAddr::parse_all(spec)?);
        }
        Ok(all)
    }

    pub fn limits(&self) -> Limits {
        Limits {
            max_line_bytes: self.max_line,
            history_per_room: self.history,
            send_queue_bytes: self.send_queue,
            max_connections: self.max_connections,
            max_connections_per_ip: self.max_per_ip,
            flood_burst: self.flood_burst,
            flood_rate: self.flood_rate,
            flood_kick_after: self.flood_kick,
            idle_timeout: Duration::from_secs(self.idle_timeout),
        }
    }
}
