//! Listeners, connection tasks, limits and shutdown: thin adapters around the hub.

mod account_job;
mod admission;
mod certs;
mod connection;
mod flood;
mod http;
mod listen;
mod stream;
#[cfg(test)]
mod tests;
mod tls;
mod udp;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

pub use certs::{CertError, Certificates, TlsFiles, provider as tls_provider};
pub use http::{FrameTooBig, HttpOptions, PostRefused, WsLines, read_post, ws_config};
pub use listen::{
    BindError, Bound, DEFAULT_LISTEN, DEFAULT_PORT, ListenAddr, Listener, Peer, bind,
    bind_with_certs,
};
pub use stream::ByteStream;
pub use udp::{UdpAddr, UdpBindError, UdpBound, bind_udp, parse_udp};

use crate::feeds::udp::IngestOptions;

use crate::accounts::Accounts;
use crate::fanout::Dispatcher;
use crate::hub::{Event, Hub, Outgoing};
use crate::limits::{ACK_GRACE, Limits, SHUTDOWN_GRACE};
use crate::metrics::{ConnectionKind, Metrics};
use crate::protocol::{Codec, IrcCodec, LineCodec};
use admission::{Admission, Ticket};
use tls::Tls;

/// What every connection task shares.
struct Shared {
    hub: Hub,
    /// The hub's ([`Hub::metrics`]), at hand.
    metrics: Arc<Metrics>,
    accounts: Accounts,
    limits: Limits,
    admission: Arc<Admission>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
    /// What Alertmanager says fires, room by room (`POST /alertmanager`), shared by every
    /// http:// listener.
    alertmanager: crate::feeds::alertmanager::Intake,
}

/// Serves the bound listeners until `shutdown` is cancelled, then says goodbye to every
/// client and returns once they are gone or [`ACK_GRACE`] (for the acks still owed to them)
/// and [`SHUTDOWN_GRACE`] have passed.
pub async fn run(listeners: Vec<Bound>, limits: Limits, shutdown: CancellationToken) {
    let hub = Hub::new(&limits);
    run_with(hub, listeners, Datagrams::default(), limits, shutdown).await;
}

/// UDP listeners (`--listen udp://…`) and how their datagrams are taken in.
#[derive(Default)]
pub struct Datagrams {
    pub sockets: Vec<UdpBound>,
    pub options: IngestOptions,
}

/// [`run`] on a hub the caller made (so feeds can post into it: `feeds::start`), with UDP
/// listeners too. The hub should be made with the same `limits`.
pub async fn run_with(
    hub: Hub,
    listeners: Vec<Bound>,
    datagrams: Datagrams,
    limits: Limits,
    shutdown: CancellationToken,
) {
    let metrics = hub.metrics().clone();
    let ctx = Arc::new(Shared {
        accounts: Accounts::new(hub.clone(), limits.opers.clone()),
        hub,
        admission: Admission::new(&limits, metrics.clone()),
        metrics,
        limits,
        shutdown: shutdown.clone(),
        tasks: TaskTracker::new(),
        alertmanager: Default::default(),
    });
    ctx.alertmanager.restore(&ctx.hub);
    let dispatcher = Arc::new(Dispatcher::default());
    let hand_over = dispatcher.clone();
    ctx.hub.set_wake(Arc::new(move |woken: &mut Vec<_>| {
        hand_over.hand_over(woken)
    }));
    ctx.tasks.spawn(dispatcher.run(shutdown.clone()));
    for bound in listeners {
        info!(addr = %bound.local_addr(), "listening");
        match bound {
            Bound::Tcp(l, tls) => {
                ctx.tasks
                    .spawn(accept_loop(l, None, TEXT_LINES, tls, ctx.clone()))
            }
            Bound::Unix(l, file) => {
                ctx.tasks
                    .spawn(accept_loop(l, Some(file), TEXT_LINES, None, ctx.clone()))
            }
            Bound::Irc(l, tls) => ctx.tasks.spawn(accept_loop(
                l,
                None,
                (IrcCodec::new, ConnectionKind::Irc),
                tls,
                ctx.clone(),
            )),
            Bound::Http(l, options, tls) => {
                ctx.tasks
                    .spawn(http::accept_loop(l, options, tls, ctx.clone()))
            }
        };
    }
    for socket in datagrams.sockets {
        info!(addr = %UdpAddr(socket.local_addr()), "listening");
        let options = datagrams.options.clone();
        ctx.tasks.spawn(udp::receive_loop(
            socket,
            ctx.hub.clone(),
            options,
            shutdown.clone(),
        ));
    }
    shutdown.cancelled().await;
    info!(clients = ctx.hub.session_count(), "shutting down");
    ctx.hub.shutdown();
    ctx.tasks.close();
    if tokio::time::timeout(ACK_GRACE + SHUTDOWN_GRACE, ctx.tasks.wait())
        .await
        .is_err()
    {
        warn!("some clients did not take their goodbye in time; leaving anyway");
    }
}

/// Longest pause after an accept error such as running out of file descriptors.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// How a listener's connections are served: the codec each speaks, and what they count as
/// in `charla_connections`.
type Speaking<C> = (fn(&Limits) -> C, ConnectionKind);

/// The codec of `tcp://` and `unix://` listeners.
fn lines(limits: &Limits) -> LineCodec {
    LineCodec::new(limits.max_line_bytes)
}

/// Text lines until a `hello` makes them JSON.
const TEXT_LINES: Speaking<LineCodec> = (lines, ConnectionKind::Text);

/// Serves each connection `listener` accepts, speaking the codec `speaking` makes, over
/// TLS when `tls` is set.
async fn accept_loop<L: Listener, C: Codec>(
    mut listener: L,
    socket_file: Option<listen::SocketFile>,
    speaking: Speaking<C>,
    tls: Option<Tls>,
    ctx: Arc<Shared>,
) {
    let (new_codec, kind) = speaking;
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((io, peer)) => {
                backoff = Duration::from_millis(5);
                let codec = new_codec(&ctx.limits);
                match ctx.admission.admit(&peer, kind) {
                    Ok(ticket) => match &tls {
                        None => {
                            ctx.tasks
                                .spawn(connection::serve(io, codec, peer, &ctx, ticket));
                        }
                        Some(tls) => {
                            let tls = tls.clone();
                            ctx.tasks
                                .spawn(serve_tls(io, tls, codec, peer, ctx.clone(), ticket));
                        }
                    },
                    Err((code, message)) => {
                        info!(%peer, code = code.as_str(), "refused");
                        // In the codec's own words: an IRC client reads an ERROR line.
                        let refusal = Outgoing::new(Event::Error { code, message });
                        let line = codec.format().encode(&refusal);
                        let shutdown = ctx.shutdown.clone();
                        ctx.tasks
                            .spawn(refuse(io, tls.clone(), peer, line, shutdown));
                    }
                }
            }
            Err(e) if is_per_connection(&e) => {}
            Err(e) => {
                // Out of file descriptors or memory: wait for some to be freed rather
                // than give up serving.
                warn!(error = %e, retry_in = ?backoff, "accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
            }
        }
    }
    drop(socket_file);
}

/// Errors that concern one connection that is already gone, not the listener.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
    )
}

/// Serves a connection of a TLS listener once its handshake is done, in its own task; one
/// whose handshake fails gives its place back.
async fn serve_tls<S: ByteStream, C: Codec>(
    io: S,
    tls: Tls,
    codec: C,
    peer: Peer,
    ctx: Arc<Shared>,
    ticket: Ticket,
) {
    match tls::handshake(io, &tls, &peer, &ctx.shutdown).await {
        Some(stream) => connection::serve(stream, codec, peer, &ctx, ticket).await,
        None => ctx.admission.release(&ticket),
    }
}

/// How long a refused client has to take its refusal, TLS handshake included.
const REFUSAL_GRACE: Duration = Duration::from_secs(1);

/// Tells a connection it cannot be served (`line`, the refusal as its codec writes it,
/// over TLS when `tls` is set), then closes it.
async fn refuse<S: ByteStream>(
    io: S,
    tls: Option<Tls>,
    peer: Peer,
    line: bytes::Bytes,
    shutdown: CancellationToken,
) {
    async fn say<S: ByteStream>(mut io: S, line: &[u8]) -> io::Result<()> {
        io.write_all(line).await?;
        io.shutdown().await
    }
    let _ = tokio::time::timeout(REFUSAL_GRACE, async {
        match tls {
            None => say(io, &line).await,
            Some(tls) => match tls::handshake(io, &tls, &peer, &shutdown).await {
                Some(stream) => say(stream, &line).await,
                None => Ok(()),
            },
        }
    })
    .await;
}
