//! The UDP listener: datagrams, not connections. No session, no queue, no reply: each
//! datagram is handed to [`Ingest`], which posts it through the hub's posting API or drops
//! it. Best-effort, as UDP is (see `feeds::udp`).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use socket2::{Domain, Socket, Type};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tracing::{instrument, warn};

use crate::feeds::udp::{Ingest, IngestOptions};
use crate::hub::Hub;

/// A bound UDP socket, ready to receive.
pub struct UdpBound(UdpSocket);

impl UdpBound {
    pub fn local_addr(&self) -> SocketAddr {
        self.0.local_addr().expect("a bound socket has an address")
    }
}

/// Printed as `udp://ADDR`, like the `--listen` that asked for it.
pub struct UdpAddr(pub SocketAddr);

impl fmt::Display for UdpAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "udp://{}", self.0)
    }
}

/// Why a UDP address could not be listened on.
#[derive(Debug, thiserror::Error)]
pub enum UdpBindError {
    /// Someone else holds it; the message names them when the system shows who.
    #[error("{0}")]
    InUse(String),
    #[error("cannot listen on udp://{addr}: {source}")]
    Io { addr: SocketAddr, source: io::Error },
}

/// Parses the address of `udp://HOST:PORT`; `None` when `spec` is not a UDP address.
pub fn parse_udp(spec: &str) -> Option<Result<SocketAddr, String>> {
    let hostport = spec.strip_prefix("udp://")?;
    Some(
        std::net::ToSocketAddrs::to_socket_addrs(hostport)
            .map_err(|e| format!("{spec:?}: expected udp://HOST:PORT ({e})"))
            .and_then(|mut addrs| {
                addrs
                    .next()
                    .ok_or_else(|| format!("{spec:?} resolves to no address"))
            }),
    )
}

/// Binds a UDP socket; must run inside a Tokio runtime.
pub fn bind_udp(addr: SocketAddr) -> Result<UdpBound, UdpBindError> {
    let io_error = |source| UdpBindError::Io { addr, source };
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, None).map_err(io_error)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true).map_err(io_error)?;
    }
    socket.set_nonblocking(true).map_err(io_error)?;
    // No SO_REUSEADDR: for UDP it would let a second server share the port silently.
    match socket.bind(&addr.into()) {
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            return Err(UdpBindError::InUse(crate::port::in_use_message_for(
                crate::port::Transport::Udp,
                addr,
            )));
        }
        other => other.map_err(io_error)?,
    }
    let socket = UdpSocket::from_std(socket.into()).map_err(io_error)?;
    Ok(UdpBound(socket))
}

/// Receives datagrams until `shutdown`, posting each through the hub.
#[instrument(name = "udp", skip_all, fields(addr = %bound.local_addr()))]
pub(super) async fn receive_loop(
    bound: UdpBound,
    hub: Hub,
    options: IngestOptions,
    shutdown: CancellationToken,
) {
    let local = UdpAddr(bound.local_addr()).to_string();
    let mut ingest = Ingest::new(&hub, options, local);
    // One buffer for the listener's life, one byte longer than a datagram may be, so an
    // oversize datagram shows as such rather than silently cut.
    let mut buffer = vec![0u8; ingest.buffer_len()];
    loop {
        let due = ingest.report_due();
        let received = tokio::select! {
            _ = shutdown.cancelled() => return,
            () = until(due) => {
                ingest.report_now(Instant::now());
                continue;
            }
            received = bound.0.recv_from(&mut buffer) => received,
        };
        match received {
            Ok((n, from)) => {
                let _ = ingest.datagram(from, &buffer[..n], Instant::now());
            }
            // An ICMP error for an earlier send, or a signal: nothing to do with us.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                warn!(error = %e, "udp receive failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// Waits until `at`; forever when there is nothing to wait for.
async fn until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
