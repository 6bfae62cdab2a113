//! One task per connection: read lines, apply them, write what the hub queued.

use std::cell::RefCell;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{self, Poll, Waker};

use tokio::time::{Instant, Sleep, sleep_until};
use tracing::debug;

use super::Context;
use super::admission::Ticket;
use super::flood::{FloodGate, Verdict};
use super::listen::Peer;
use super::outbox::Outbox;
use super::transport::Transport;
use crate::hub::{ErrorCode, Event, LeaveReason, Request, SessionId};
use crate::limits::{MAX_WRITE_BYTES, SHUTDOWN_GRACE};
use crate::protocol::framing::{Frame, Framer};
use crate::protocol::{self, Format, Incoming, Refusal};

/// Bytes read from the socket at a time, into a buffer that lives only during the read.
const READ_CHUNK_BYTES: usize = 4096;

/// Reads per wake-up before the task yields to others, so one fast sender cannot hog a
/// worker thread.
const READS_PER_WAKE: usize = 4;

/// Rounds of write-and-read in one poll of [`Converse`] before it yields, for the same
/// reason.
const ROUNDS_PER_POLL: usize = 8;

/// Serves one accepted connection until it ends, then gives its place back.
///
/// Not an `async fn`: the session is set up here, and the future returned holds only what
/// it needs (an `async fn` would also keep its arguments, moved or not, for its whole life —
/// hundreds of bytes on every idle connection).
pub fn serve<T: Transport>(
    io: T,
    peer: Peer,
    ctx: &Arc<Context>,
    ticket: Ticket,
) -> impl Future<Output = ()> + Send + use<T> {
    let outbox = Arc::new(Outbox::new(ctx.limits.send_queue_bytes));
    let id = ctx.hub.connect(outbox.clone());
    // No span carried into the task (it would cost every connection its size): the id
    // ties the later events to this peer.
    debug!(?id, %peer, "connected");
    let mut conn = Connection {
        session: Session {
            id,
            ctx: ctx.clone(),
            outbox,
            format: Format::Text,
            flood: FloodGate::new(&ctx.limits, Instant::now().into_std()),
            flooded: false,
            ticket,
        },
        framer: Framer::new(ctx.limits.max_line_bytes),
        io,
    };
    async move {
        let reason = Converse::new(&mut conn).await;
        // Rare, and it holds timers and the reason: boxed, so it does not enlarge every
        // idle connection.
        Box::pin(conn.finish(reason)).await;
    }
}

/// Everything an idle connection's task holds. Its size counts: tokio allocates tasks in
/// steps of 128 bytes, and a future of 144 bytes or less (release build) keeps the task in
/// a 256-byte block instead of 384 — 128 bytes on every connection (docs/benchmarks.md,
/// idle memory). `charla bench run idle` shows what a new field costs.
struct Connection<T> {
    io: T,
    framer: Framer,
    session: Session,
}

/// What a round of writing left.
struct Wrote {
    /// The hub closed the session: nothing more will be queued.
    closed: bool,
    /// The socket had no room for everything; the rest is back in the outbox.
    blocked: bool,
}

/// What a line is applied to; apart from the framer so both can be borrowed at once.
struct Session {
    id: SessionId,
    ctx: Arc<Context>,
    outbox: Arc<Outbox>,
    format: Format,
    flood: FloodGate,
    /// Set when flood control decided to end the session (the only reason this side ends
    /// it while reading: a flag, not a `LeaveReason`, which would take 24 bytes of every
    /// idle connection).
    flooded: bool,
    /// This connection's place among those admitted, given back when the session is
    /// dropped (however the task ends).
    ticket: Ticket,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.ctx.admission.release(&self.ticket);
    }
}

/// The conversation proper, as a hand-written future: it polls the socket's readiness and
/// the outbox's waker directly instead of holding a future for each in a `select!`, which
/// keeps the task of an idle connection small (idle memory is a target: docs/benchmarks.md).
/// Resolves to why the session ended, or `None` when the hub ended it (quit, send queue
/// overflow, server shutdown) and has already queued the goodbye.
struct Converse<'a, T> {
    conn: &'a mut Connection<T>,
    /// Disconnects a client silent for the idle timeout; `None` when there is no such
    /// limit.
    idle: Option<Pin<Box<Sleep>>>,
}

impl<'a, T: Transport> Converse<'a, T> {
    fn new(conn: &'a mut Connection<T>) -> Self {
        let idle_timeout = conn.session.ctx.limits.idle_timeout;
        Converse {
            conn,
            idle: (!idle_timeout.is_zero())
                .then(|| Box::pin(sleep_until(Instant::now() + idle_timeout))),
        }
    }
}

impl<T: Transport> Future for Converse<'_, T> {
    type Output = Option<LeaveReason>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut task::Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let conn = &mut *this.conn;
        for _ in 0..ROUNDS_PER_POLL {
            let blocked = match conn.write_ready(Some(cx.waker())) {
                // What is still queued is flushed, under a deadline, by `finish`.
                Ok(Wrote { closed: true, .. }) => return Poll::Ready(None),
                Ok(wrote) => wrote.blocked,
                Err(e) => return Poll::Ready(Some(lost(&e))),
            };
            if conn.session.flooded {
                return Poll::Ready(Some(LeaveReason::Flooding));
            }
            if blocked {
                match conn.io.poll_write_ready(cx) {
                    Poll::Ready(Ok(())) => continue,
                    Poll::Ready(Err(e)) => return Poll::Ready(Some(lost(&e))),
                    Poll::Pending => {}
                }
            }
            match conn.io.poll_read_ready(cx) {
                Poll::Ready(Ok(())) => match conn.read() {
                    Ok(true) => {
                        if let Some(sleep) = this.idle.as_mut() {
                            let timeout = conn.session.ctx.limits.idle_timeout;
                            sleep.as_mut().reset(Instant::now() + timeout);
                        }
                        // Back to the top: write the replies, read again.
                        continue;
                    }
                    Ok(false) => return Poll::Ready(Some(LeaveReason::ConnectionLost)),
                    Err(e) => return Poll::Ready(Some(lost(&e))),
                },
                Poll::Ready(Err(e)) => return Poll::Ready(Some(lost(&e))),
                Poll::Pending => {}
            }
            if let Some(sleep) = this.idle.as_mut()
                && sleep.as_mut().poll(cx).is_ready()
            {
                return Poll::Ready(Some(LeaveReason::TimedOut));
            }
            return Poll::Pending;
        }
        // Busy for a while: let the other connections have the thread, then come back.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl<T: Transport> Connection<T> {
    /// Ends the session: tells the hub why (when this side ended it), then writes what is
    /// queued — the goodbye among it — and closes, all under [`SHUTDOWN_GRACE`].
    async fn finish(&mut self, reason: Option<LeaveReason>) {
        if let Some(reason) = &reason {
            // This queues the goodbye line, which the flush below writes if the peer
            // still listens.
            let hub = &self.session.ctx.hub;
            hub.disconnect(self.session.id, reason.clone());
        }
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        if tokio::time::timeout_at(deadline, self.flush())
            .await
            .is_ok()
        {
            let _ = self.io.shutdown_write();
            // Reading what the peer still sends until it closes lets it read our last
            // lines: closing with unread input would reset the connection and could
            // destroy them.
            let _ = tokio::time::timeout_at(deadline, self.drain_input()).await;
        }
        debug!(id = ?self.session.id, ?reason, "disconnected");
    }

    /// Takes what the hub queued and writes as much as the socket accepts now, many
    /// lines per system call; `waker` is woken when more is queued. What the socket has no
    /// room for goes back to the outbox, so a connection keeps no queue of its own between
    /// writes (idle memory is a target: docs/benchmarks.md).
    fn write_ready(&mut self, waker: Option<&Waker>) -> io::Result<Wrote> {
        let (mut pending, closed) = self.session.outbox.take(waker);
        while !pending.is_empty() {
            let result = WRITE_BUFFER.with_borrow_mut(|buf| {
                buf.clear();
                pending.gather(buf, MAX_WRITE_BYTES);
                // `writev`, not `send`: /proc counts it among the process's writes, from
                // which the benchmark reports deliveries per write.
                self.io.try_write_vectored(&[IoSlice::new(buf)])
            });
            let written = match result {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            };
            self.session.outbox.written(written);
            pending.advance(written);
        }
        let blocked = !pending.is_empty();
        if blocked {
            self.session.outbox.give_back(pending);
        }
        Ok(Wrote { closed, blocked })
    }

    /// Writes everything queued, waiting for the socket as needed.
    async fn flush(&mut self) -> io::Result<()> {
        loop {
            // The session is over: nothing more will be queued, nobody to wake.
            if !self.write_ready(None)?.blocked {
                return Ok(());
            }
            self.io.writable().await?;
        }
    }

    async fn drain_input(&mut self) {
        while self.io.readable().await.is_ok() {
            if !discard_input(&self.io) {
                return;
            }
        }
    }

    /// Reads what has arrived and applies every complete line. `Ok(false)` at end of
    /// stream.
    fn read(&mut self) -> io::Result<bool> {
        let mut chunk = [0u8; READ_CHUNK_BYTES];
        for _ in 0..READS_PER_WAKE {
            let n = match self.io.try_read(&mut chunk) {
                Ok(0) => {
                    if let Some(line) = self.framer.finish() {
                        self.session.frame(Frame::Line(&line));
                    }
                    return Ok(false);
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            };
            let session = &mut self.session;
            self.framer.feed(&chunk[..n], |frame| session.frame(frame));
            if session.flooded || n < chunk.len() {
                break;
            }
        }
        Ok(true)
    }
}

thread_local! {
    /// Where a write's lines are copied: one buffer a thread, not a connection, so an idle
    /// connection holds none. One slice, not one per line: the kernel's copy from a
    /// `writev` of 40 lines made a write ~1 µs (a quarter) dearer than the same bytes in
    /// one slice, measured by the floor's writer (docs/benchmarks.md, "What limits it").
    static WRITE_BUFFER: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(MAX_WRITE_BYTES));
}

/// Reads and drops what has arrived; false at end of stream or on error. Not async, so its
/// buffer never becomes part of the connection task's state.
fn discard_input<T: Transport>(io: &T) -> bool {
    let mut sink = [0u8; 512];
    loop {
        match io.try_read(&mut sink) {
            Ok(0) => return false,
            Ok(_) => {}
            Err(e) => return e.kind() == io::ErrorKind::WouldBlock,
        }
    }
}

fn lost(error: &io::Error) -> LeaveReason {
    if error.kind() == io::ErrorKind::TimedOut {
        LeaveReason::TimedOut
    } else {
        LeaveReason::ConnectionLost
    }
}

impl Session {
    fn frame(&mut self, frame: Frame<'_>) {
        if self.flooded {
            return;
        }
        let line = match frame {
            Frame::TooLong => {
                let max = self.ctx.limits.max_line_bytes;
                return self.refuse(Refusal::new(
                    ErrorCode::LineTooLong,
                    format!(
                        "lines are limited to {max} bytes; the rest of that line was discarded"
                    ),
                ));
            }
            Frame::Line(line) => line,
        };
        let Ok(line) = std::str::from_utf8(line) else {
            return self.refuse(Refusal::new(
                ErrorCode::InvalidUtf8,
                "that line is not valid UTF-8 and was dropped; set your terminal to UTF-8",
            ));
        };
        if line.trim().is_empty() {
            return;
        }
        match self
            .flood
            .check(&self.ctx.limits, Instant::now().into_std())
        {
            Verdict::Pass => {}
            Verdict::Refuse => {
                let limits = &self.ctx.limits;
                return self.refuse(Refusal::new(
                    ErrorCode::Flood,
                    format!(
                        "too fast: at most {} lines at once and {} a second; that line was not sent",
                        limits.flood_burst, limits.flood_rate
                    ),
                ));
            }
            Verdict::Kick => {
                self.flooded = true;
                return;
            }
        }
        match protocol::parse(self.format, line) {
            Ok(Incoming::Request(request)) => self.ctx.hub.apply(self.id, request),
            Ok(Incoming::Hello { steps, reference }) => self.hello(steps, reference),
            Ok(Incoming::Nothing) => {}
            Err(refusal) => self.refuse(refusal),
        }
    }

    /// Switches to JSON lines, carries out the hello's steps, then confirms with a
    /// welcome carrying the resulting nick and rooms.
    fn hello(&mut self, steps: Vec<Result<Request, Refusal>>, reference: Option<String>) {
        self.format = Format::Json;
        self.outbox.set_format(Format::Json);
        for step in steps {
            match step {
                Ok(request) => self.ctx.hub.apply(self.id, request),
                Err(refusal) => self.refuse(refusal),
            }
        }
        self.ctx.hub.welcome(self.id, reference);
    }

    fn refuse(&mut self, refusal: Refusal) {
        let (event, reference): (Event, _) = refusal.into_reply();
        self.ctx.hub.reply(self.id, event, reference);
    }
}
