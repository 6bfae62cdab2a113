//! Connection caps: in total and per IP address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::hub::ErrorCode;
use crate::limits::Limits;
use crate::metrics::{ConnectionKind, Metrics};

use super::listen::Peer;

/// Counts admitted connections; each holds a [`Ticket`] until it gives its place back with
/// [`Admission::release`].
pub struct Admission {
    max_total: usize,
    max_per_ip: usize,
    counts: Mutex<Counts>,
    /// Where connections are counted by what they speak.
    metrics: Arc<Metrics>,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// A place taken by one connection. It does not hold the admission itself (the connection
/// reaches it through the server's context, and 8 bytes more on every idle connection would
/// cost it a larger task: docs/benchmarks.md); the connection releases it when it ends.
#[must_use = "a ticket's place is given back only by Admission::release"]
pub struct Ticket {
    ip: Option<IpAddr>,
    /// What the connection is counted as in `charla_connections`.
    pub(super) kind: ConnectionKind,
}

impl Ticket {
    /// The address the connection came from; `None` over a Unix socket.
    pub fn ip(&self) -> Option<IpAddr> {
        self.ip
    }
}

impl Admission {
    pub fn new(limits: &Limits, metrics: Arc<Metrics>) -> Arc<Admission> {
        Arc::new(Admission {
            max_total: limits.max_connections,
            max_per_ip: limits.max_connections_per_ip,
            counts: Mutex::default(),
            metrics,
        })
    }

    /// A ticket for `peer`, which speaks `kind`, or the error code and sentence to refuse
    /// it with.
    pub fn admit(&self, peer: &Peer, kind: ConnectionKind) -> Result<Ticket, (ErrorCode, String)> {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if counts.total >= self.max_total {
            return Err((
                ErrorCode::ServerFull,
                format!(
                    "the server is full ({} connections); try again later",
                    self.max_total
                ),
            ));
        }
        let ip = peer.ip();
        if let Some(ip) = ip {
            let n = counts.per_ip.entry(ip).or_default();
            if self.max_per_ip > 0 && *n >= self.max_per_ip {
                return Err((
                    ErrorCode::TooManyConnections,
                    format!(
                        "{ip} already has {} connections, the most one address may have",
                        self.max_per_ip
                    ),
                ));
            }
            *n += 1;
        }
        counts.total += 1;
        self.metrics.connection_opened(kind);
        Ok(Ticket { ip, kind })
    }

    /// The connection of `ticket` speaks `kind` from now on (text that said `hello`, HTTP
    /// that became a WebSocket).
    pub fn speaks(&self, ticket: &mut Ticket, kind: ConnectionKind) {
        if ticket.kind != kind {
            self.metrics.connection_closed(ticket.kind);
            self.metrics.connection_opened(kind);
            ticket.kind = kind;
        }
    }

    /// Gives back the place `ticket` took.
    pub fn release(&self, ticket: &Ticket) {
        self.metrics.connection_closed(ticket.kind);
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.total -= 1;
        if let Some(ip) = ticket.ip
            && let Some(n) = counts.per_ip.get_mut(&ip)
        {
            *n -= 1;
            if *n == 0 {
                counts.per_ip.remove(&ip);
            }
        }
    }
}
