//! One task per connection: read what arrives, let its codec turn it into requests, write
//! what the hub queued.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{self, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadBuf};
use tokio::time::{Instant, Sleep, sleep_until};
use tracing::debug;

use super::Shared;
use super::account_job::AccountJob;
use super::admission::Ticket;
use super::flood::{FloodGate, Verdict};
use super::listen::Peer;
use super::stream::ByteStream;
use crate::accounts::AccountRequest;
use crate::fanout::{Outbox, Phase};
use crate::hub::{
    Encode, Encoded, ErrorCode, Event, LeaveReason, Outgoing, Request, SessionId, Stamps,
};
use crate::limits::{ACK_GRACE, GOODBYE_LINGER, MAX_WRITE_BYTES, SHUTDOWN_GRACE};
use crate::metrics::ConnectionKind;
use crate::protocol::{Codec, Incoming, JSON, Refusal, SaslAttempt, SaslOutcome, Sink};

/// Bytes read from the stream at a time, into a buffer that lives only during the read.
const READ_CHUNK_BYTES: usize = 4096;

/// Reads per wake-up before the task yields to others, so one fast sender cannot hog a
/// worker thread.
const READS_PER_WAKE: usize = 4;

/// Rounds of write-and-read in one poll of [`Converse`] before it yields, for the same
/// reason.
const ROUNDS_PER_POLL: usize = 8;

/// Serves one admitted connection, speaking `codec`, until it ends, then gives its place
/// back. A codec that registers at once (text, JSON) has its session greeted before the
/// client sends a byte; another registers when its handshake completes.
///
/// Not an `async fn`: the session is set up here, and the future returned holds only what
/// it needs (an `async fn` would also keep its arguments, moved or not, for its whole life —
/// hundreds of bytes on every idle connection).
pub fn serve<S: ByteStream, C: Codec>(
    io: S,
    codec: C,
    peer: Peer,
    ctx: &Arc<Shared>,
    ticket: Ticket,
) -> impl Future<Output = ()> + Send + use<S, C> {
    let outbox = Arc::new(Outbox::new(ctx.limits.send_queue_bytes, codec.format()));
    let id = if codec.registers_at_once() {
        // A codec still guessing what its client speaks puts it in #lobby itself, once it
        // knows the client is a person; a hello made for the client names its rooms.
        let lobby = codec.lobby_at_once();
        ctx.hub.register_as(outbox.clone(), None, None, lobby).ok()
    } else {
        None
    };
    // No span carried into the task (it would cost every connection its size): the id
    // ties the later events to this peer.
    debug!(?id, %peer, "connected");
    let mut conn = Connection {
        client: Talker {
            id,
            ctx: ctx.clone(),
            outbox,
            flood: FloodGate::new(&ctx.limits, Instant::now().into_std()),
            ending: None,
            ticket,
            job: None,
        },
        codec,
        io,
    };
    async move {
        let reason = Converse::new(&mut conn).await;
        // Rare, and it holds timers and the reason: boxed, so it does not enlarge every
        // idle connection.
        Box::pin(conn.finish(reason)).await;
    }
}

/// Everything an idle connection's task holds. Its size counts (tokio allocates tasks in
/// steps of 128 bytes: docs/benchmarks.md, idle memory); `charla bench run idle` shows what
/// a new field costs.
struct Connection<S, C> {
    io: S,
    codec: C,
    client: Talker,
}

/// What a round of writing left.
struct Wrote {
    /// Where the session is: closed by the hub, nothing more will be queued; or ended by
    /// it, its owed acks and then the goodbye still to come.
    phase: Phase,
    /// The stream has no room for everything; the rest is back in the outbox, and the
    /// task is woken when there is room.
    blocked: bool,
}

/// Why this side is ending the session while it reads: one byte, not a `LeaveReason`,
/// which would take 24 of every idle connection.
#[derive(Debug, Clone, Copy)]
enum HangUp {
    Flooding,
    SendQueueExceeded,
    /// The codec said the last words of a connection not yet a session
    /// ([`Incoming::Close`]).
    Closed,
}

/// The connection as its codec sees it (the [`Sink`] of its units); apart from the codec
/// and the stream so all three can be borrowed at once.
struct Talker {
    /// `None` until the connection is registered as a session.
    id: Option<SessionId>,
    ctx: Arc<Shared>,
    outbox: Arc<Outbox>,
    flood: FloodGate,
    ending: Option<HangUp>,
    /// This connection's place among those admitted, given back when the client is
    /// dropped (however the task ends).
    ticket: Ticket,
    /// Its account request in flight, or the last one; reading waits while it is.
    job: Option<Arc<AccountJob>>,
}

impl Drop for Talker {
    fn drop(&mut self) {
        self.ctx.admission.release(&self.ticket);
    }
}

/// The conversation proper, as a hand-written future: it polls the stream and the
/// outbox's waker directly instead of holding a future for each in a `select!`, which
/// keeps the task of an idle connection small, and the read buffer lives only within one
/// poll, so an idle connection holds none. Resolves to why the session ended, or `None`
/// when the hub ended it (quit, send queue overflow, server shutdown): its goodbye is
/// queued, or comes after the acks still owed to it.
struct Converse<'a, S, C> {
    conn: &'a mut Connection<S, C>,
    /// Fires when the client has been silent for [`Connection::wait`]: the codec decides
    /// what an undecided client speaks, or probes it, or it is disconnected; `None` when
    /// there is no such limit.
    idle: Option<Pin<Box<Sleep>>>,
}

impl<'a, S: ByteStream, C: Codec> Converse<'a, S, C> {
    fn new(conn: &'a mut Connection<S, C>) -> Self {
        let mut idle = None;
        rearm(&mut idle, conn.wait());
        Converse { conn, idle }
    }
}

/// Sets `idle` to fire after `wait` from now, or removes it when `wait` is zero (no limit).
fn rearm(idle: &mut Option<Pin<Box<Sleep>>>, wait: Duration) {
    if wait.is_zero() {
        *idle = None;
        return;
    }
    let deadline = Instant::now() + wait;
    match idle.as_mut() {
        Some(sleep) => sleep.as_mut().reset(deadline),
        None => *idle = Some(Box::pin(sleep_until(deadline))),
    }
}

/// What a round of reading found.
enum Read {
    /// Something arrived (and was decoded).
    Some,
    /// Nothing yet; the task is woken when something comes.
    Waiting,
    /// The peer closed its side.
    Ended,
}

impl<S: ByteStream, C: Codec> Future for Converse<'_, S, C> {
    type Output = Option<LeaveReason>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut task::Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let conn = &mut *this.conn;
        for _ in 0..ROUNDS_PER_POLL {
            match conn.write_ready(cx, Some(cx.waker())) {
                Ok(Wrote {
                    phase: Phase::Open, ..
                }) => {}
                // What is still queued is flushed, under a deadline, by `finish`; nothing
                // more is read.
                Ok(_) => return Poll::Ready(None),
                Err(e) => return Poll::Ready(Some(lost(&e))),
            }
            if let Some(ending) = conn.client.ending {
                return Poll::Ready(Some(ending.into()));
            }
            let reading = if conn.client.job_done(cx) {
                conn.codec.settle(&mut conn.client);
                conn.read(cx)
            } else {
                // Woken when the account request is answered.
                Ok(Read::Waiting)
            };
            match reading {
                Ok(Read::Some) => {
                    rearm(&mut this.idle, conn.wait());
                    // Back to the top: write the replies, read again.
                    continue;
                }
                Ok(Read::Waiting) => {}
                Ok(Read::Ended) => return Poll::Ready(Some(LeaveReason::ConnectionLost)),
                Err(e) => return Poll::Ready(Some(lost(&e))),
            }
            if let Some(sleep) = this.idle.as_mut()
                && sleep.as_mut().poll(cx).is_ready()
            {
                if conn.codec.undecided().is_some() {
                    // Silent from the start: a person reading; what that brings goes out
                    // at the top.
                    conn.codec.silent_start(&mut conn.client);
                } else {
                    let Some(probe) = conn.codec.probe() else {
                        return Poll::Ready(Some(LeaveReason::TimedOut));
                    };
                    // Asked to answer within as long again; the probe goes out at the top.
                    conn.client.answer_bytes(probe);
                }
                rearm(&mut this.idle, conn.wait());
                continue;
            }
            return Poll::Pending;
        }
        // Busy for a while: let the other connections have the thread, then come back.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl From<HangUp> for LeaveReason {
    fn from(ending: HangUp) -> LeaveReason {
        match ending {
            HangUp::Flooding => LeaveReason::Flooding,
            HangUp::SendQueueExceeded => LeaveReason::SendQueueExceeded,
            HangUp::Closed => LeaveReason::Quit(None),
        }
    }
}

impl<S: ByteStream, C: Codec> Connection<S, C> {
    /// How long the client may be silent now before something is done about it: while the
    /// codec has not decided what the client speaks, its wait for a first line; then
    /// [`Connection::silence`].
    fn wait(&self) -> Duration {
        self.codec.undecided().unwrap_or_else(|| self.silence())
    }

    /// How long the client may be silent before something is done about it: the codec's
    /// keepalive or the idle timeout, the shorter; zero for never.
    fn silence(&self) -> Duration {
        let idle = self.client.ctx.limits.idle_timeout;
        match self.codec.keepalive() {
            Some(keepalive) if idle.is_zero() => keepalive,
            Some(keepalive) => keepalive.min(idle),
            None => idle,
        }
    }

    /// Ends the session: tells the hub why (when this side ended it), waits within
    /// [`ACK_GRACE`] for the acks still owed to it (writing them as they come), then writes
    /// what is queued — the goodbye among it — and closes, under [`SHUTDOWN_GRACE`].
    async fn finish(&mut self, reason: Option<LeaveReason>) {
        match (&reason, self.client.id) {
            // This queues the goodbye line, which the flush below writes if the peer
            // still listens.
            (Some(reason), Some(id)) => self.client.ctx.hub.disconnect(id, reason.clone()),
            // The codec has queued its own goodbye.
            (Some(_), None) if matches!(self.client.ending, Some(HangUp::Closed)) => {}
            // Never a session: the goodbye is this side's own.
            (Some(reason), None) => {
                let bye = Outgoing::new(Event::Bye {
                    reason: reason.clone(),
                });
                let _ = self.client.outbox.answer(&bye);
            }
            (None, _) => {}
        }
        if let Some(id) = self.client.id {
            // The hub closes the session once the acks owed to it came (at once when none
            // were; a peer that closed only its sending side still reads them). Past the
            // grace, or once the stream fails to take them, it is told to close it now,
            // saying how many did not come.
            let waited = tokio::time::timeout(ACK_GRACE, self.until_closed()).await;
            if !matches!(waited, Ok(Ok(()))) {
                self.client.ctx.hub.close_now(id);
            }
        }
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        if tokio::time::timeout_at(deadline, self.flush())
            .await
            .is_ok()
        {
            let _ = tokio::time::timeout_at(deadline, self.io.shutdown()).await;
            // Reading what the peer still sends until it closes lets it read our last
            // lines: closing with unread input would reset the connection and could
            // destroy them. A peer that does not hang up is not waited for longer.
            let linger = deadline.min(Instant::now() + GOODBYE_LINGER);
            let _ = tokio::time::timeout_at(linger, self.drain_input()).await;
        }
        debug!(id = ?self.client.id, ?reason, "disconnected");
    }

    /// Takes what the hub queued and writes as much as the stream accepts now, many
    /// lines per write; `news`, when given, is woken when more is queued. What the stream
    /// has no room for goes back to the outbox, so a connection keeps no queue of its own
    /// between writes.
    fn write_ready(
        &mut self,
        cx: &mut task::Context<'_>,
        news: Option<&Waker>,
    ) -> io::Result<Wrote> {
        let outbox = &self.client.outbox;
        let (mut pending, phase) = outbox.take(news);
        let mut wrote = false;
        let mut blocked = false;
        let (mut lines, mut bytes) = (0, 0);
        while !pending.is_empty() {
            let result = WRITE_BUFFER.with_borrow_mut(|buf| {
                buf.clear();
                pending.gather(buf, MAX_WRITE_BYTES);
                // Vectored: a socket's `writev`, which /proc counts among the process's
                // writes (the benchmark reports deliveries per write from it).
                Pin::new(&mut self.io).poll_write_vectored(cx, &[IoSlice::new(buf)])
            });
            match result {
                Poll::Ready(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Poll::Ready(Ok(n)) => {
                    outbox.written(n);
                    lines += pending.advance(n);
                    bytes += n;
                    wrote = true;
                }
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => {
                    blocked = true;
                    break;
                }
            }
        }
        if blocked {
            outbox.give_back(pending);
        }
        if wrote {
            self.client
                .ctx
                .metrics
                .writes()
                .add(lines as u64, bytes as u64);
        }
        // A socket writes at once; a TLS or WebSocket stream may hold bytes until flushed.
        if wrote {
            match Pin::new(&mut self.io).poll_flush(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => blocked = true,
            }
        }
        Ok(Wrote { phase, blocked })
    }

    /// Writes what the hub queues, as it comes, until it closes the session: what an ended
    /// session waits for (the acks still owed to it, then the goodbye). Reads nothing.
    async fn until_closed(&mut self) -> io::Result<()> {
        poll_fn(|cx| match self.write_ready(cx, Some(cx.waker())) {
            Ok(Wrote {
                phase: Phase::Closed,
                ..
            }) => Poll::Ready(Ok(())),
            // Woken when more is queued, on the close, or when the stream has room.
            Ok(_) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        })
        .await
    }

    /// Writes everything queued, waiting for the stream as needed. The session is over:
    /// nothing more will be queued, nobody to wake for it.
    async fn flush(&mut self) -> io::Result<()> {
        poll_fn(|cx| match self.write_ready(cx, None) {
            Ok(Wrote { blocked: true, .. }) => Poll::Pending,
            Ok(_) => Poll::Ready(Ok(())),
            Err(e) => Poll::Ready(Err(e)),
        })
        .await
    }

    async fn drain_input(&mut self) {
        let mut sink = [0u8; 512];
        while matches!(self.io.read(&mut sink).await, Ok(n) if n > 0) {}
    }

    /// Reads what has arrived and hands it to the codec, which applies every complete
    /// unit.
    fn read(&mut self, cx: &mut task::Context<'_>) -> io::Result<Read> {
        let mut chunk = [const { MaybeUninit::<u8>::uninit() }; READ_CHUNK_BYTES];
        let mut read = Read::Waiting;
        for _ in 0..READS_PER_WAKE {
            let mut buf = ReadBuf::uninit(&mut chunk);
            match Pin::new(&mut self.io).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => break,
            }
            let data = buf.filled();
            if data.is_empty() {
                self.codec.finish(&mut self.client);
                return Ok(Read::Ended);
            }
            read = Read::Some;
            self.codec.decode(data, &mut self.client);
            if self.client.ending.is_some() || data.len() < READ_CHUNK_BYTES {
                break;
            }
        }
        Ok(read)
    }
}

thread_local! {
    /// Where a write's lines are copied: one buffer a thread, not a connection, so an idle
    /// connection holds none. One slice, not one per line: the kernel copies one slice
    /// faster than many (docs/benchmarks.md, "What limits it").
    static WRITE_BUFFER: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(MAX_WRITE_BYTES));
}

fn lost(error: &io::Error) -> LeaveReason {
    if error.kind() == io::ErrorKind::TimedOut {
        LeaveReason::TimedOut
    } else if error
        .get_ref()
        .is_some_and(|e| e.is::<super::FrameTooBig>())
    {
        LeaveReason::LineTooLong
    } else {
        LeaveReason::ConnectionLost
    }
}

impl Sink for Talker {
    fn admit(&mut self) -> bool {
        if self.ending.is_some() {
            return false;
        }
        let limits = &self.ctx.limits;
        match self.flood.check(limits, Instant::now().into_std()) {
            Verdict::Pass => true,
            Verdict::Refuse => {
                self.ctx.metrics.flood_refused();
                let message = format!(
                    "too fast: at most {} lines at once and {} a second; that line was not sent",
                    limits.flood_burst, limits.flood_rate
                );
                self.refuse(Refusal::new(ErrorCode::Flood, message));
                false
            }
            Verdict::Kick => {
                self.ctx.metrics.flood_kicked();
                self.ending = Some(HangUp::Flooding);
                false
            }
        }
    }

    fn incoming(&mut self, incoming: Incoming) {
        self.stamped(incoming);
    }

    fn stamped(&mut self, incoming: Incoming) -> Stamps {
        // While an account request is in flight, what came after it waits for its answer,
        // the codec's own answers too (a PONG must not pass an OPER's 381: clients read it
        // as the end of what their earlier lines caused); not a registration, which settles
        // a SASL proof itself.
        let incoming = match (&self.job, incoming) {
            (
                Some(job),
                incoming @ (Incoming::Request(_)
                | Incoming::Hello { .. }
                | Incoming::Account { .. }
                | Incoming::Sasl(_)
                | Incoming::Answer(_)),
            ) => match job.hold(incoming) {
                Some(incoming) => incoming,
                None => return 0..0,
            },
            (_, incoming) => incoming,
        };
        match incoming {
            Incoming::Request(request) => {
                if let Some(id) = self.registered() {
                    return self.ctx.hub.apply(id, request);
                }
            }
            Incoming::Hello {
                steps,
                reference,
                login,
            } => self.hello(steps, reference, login),
            Incoming::Register {
                nick,
                reference,
                lobby,
            } => self.register(nick, reference, lobby),
            Incoming::Account { request, reference } => {
                if let Some(id) = self.registered() {
                    self.account(id, request, reference, None);
                }
            }
            Incoming::Sasl(attempt) => self.sasl(attempt),
            Incoming::Answer(bytes) => self.answer_bytes(bytes),
            Incoming::Close(bytes) => {
                self.answer_bytes(bytes);
                self.ending.get_or_insert(HangUp::Closed);
            }
            Incoming::Nothing => {}
        }
        0..0
    }

    fn relabel(
        &mut self,
        stamps: &[Stamps],
        own: Vec<Encoded>,
        wrap: &mut dyn FnMut(Vec<Encoded>) -> Encoded,
    ) {
        self.outbox.relabel(stamps, own, wrap);
    }

    fn refuse(&mut self, refusal: Refusal) {
        let (event, reference): (Event, _) = refusal.into_reply();
        match self.id {
            Some(id) => {
                self.ctx.hub.reply(id, event, reference);
            }
            None => {
                if self
                    .outbox
                    .answer(&Outgoing::reply(event, reference))
                    .is_err()
                {
                    self.ending = Some(HangUp::SendQueueExceeded);
                }
            }
        }
    }

    fn speak(&mut self, format: &'static dyn Encode) {
        self.outbox.set_format(format);
        // Text lines that said `hello`; a WebSocket speaks JSON from the start and stays
        // counted as one.
        if self.ticket.kind == ConnectionKind::Text && format.key() == JSON.key() {
            self.ctx
                .admission
                .speaks(&mut self.ticket, ConnectionKind::Json);
        }
    }

    fn nick(&self) -> Option<crate::hub::Nick> {
        self.ctx.hub.nick_of(self.id?)
    }

    fn is_in(&self, room: &crate::hub::RoomName) -> bool {
        self.id.is_some_and(|id| self.ctx.hub.is_in(id, room))
    }

    fn proved(&self) -> bool {
        self.job.as_ref().is_some_and(|job| job.has_proved())
    }

    fn account(&self) -> Option<crate::hub::Nick> {
        self.ctx.hub.account_of(self.id?)
    }
}

impl Talker {
    /// The session, or `None` after telling the client it must register first.
    fn registered(&mut self) -> Option<SessionId> {
        if self.id.is_none() {
            self.refuse(Refusal::new(
                ErrorCode::NotRegistered,
                "register first: the connection is not a session yet",
            ));
        }
        self.id
    }

    fn register(&mut self, nick: Option<crate::hub::Nick>, reference: Option<String>, lobby: bool) {
        if self.id.is_some() {
            return self.refuse(Refusal {
                reference,
                ..Refusal::new(
                    ErrorCode::InvalidRequest,
                    "this connection is registered already",
                )
            });
        }
        let (hub, outbox) = (&self.ctx.hub, self.outbox.clone());
        let registered = match &self.job {
            // A SASL exchange may have proved an account, or may still: the account it
            // proved, or the session it will log in, is settled under its lock.
            Some(job) => {
                let mut result = None;
                job.registering(|proved| {
                    let registered = hub.register_as(outbox, nick, proved, lobby);
                    let id = registered.as_ref().ok().copied();
                    result = Some(registered);
                    id
                });
                result.expect("registering calls back")
            }
            None => hub.register_as(outbox, nick, None, lobby),
        };
        match registered {
            Ok(id) => {
                debug!(?id, "registered");
                self.id = Some(id);
            }
            Err((code, message)) => self.refuse(Refusal {
                reference,
                ..Refusal::new(code, message)
            }),
        }
    }

    /// Whether the connection may read: no account request is in flight (what was held
    /// while one was has been carried out). Otherwise its task is woken when the request
    /// is answered.
    fn job_done(&mut self, cx: &task::Context<'_>) -> bool {
        loop {
            let Some(job) = &self.job else {
                return true;
            };
            if !job.poll_done(cx) {
                return false;
            }
            let held = job.take_held();
            if held.is_empty() {
                return true;
            }
            // One of them may start another job, which holds the rest.
            for incoming in held {
                self.incoming(incoming);
            }
        }
    }

    /// Starts a new account job (the last is done: what comes while one is in flight is
    /// held).
    fn start_job(&mut self) -> Arc<AccountJob> {
        debug_assert!(self.job.as_ref().is_none_or(|job| job.is_done()));
        let job = AccountJob::new();
        self.job = Some(job.clone());
        job
    }

    /// Carries out an account request on a task of its own, then, for a `hello`, its
    /// steps and the welcome; reads nothing more until then.
    fn account(
        &mut self,
        id: SessionId,
        request: AccountRequest,
        reference: Option<String>,
        hello: Option<Vec<Request>>,
    ) {
        let job = self.start_job();
        let ctx = self.ctx.clone();
        let ip = self.ticket.ip();
        self.ctx.tasks.spawn(async move {
            ctx.accounts
                .carry_out(id, ip, request, reference.clone())
                .await;
            if let Some(steps) = hello {
                for step in steps {
                    ctx.hub.apply(id, step);
                }
                ctx.hub.welcome(id, reference);
            }
            job.finish();
        });
    }

    /// Checks SASL credentials on a task of its own and answers them in IRC.
    fn sasl(&mut self, attempt: SaslAttempt) {
        let job = self.start_job();
        if let Some(id) = self.id {
            // Registered already: the proof logs this session in.
            job.registering(|_| Some(id));
        }
        let ctx = self.ctx.clone();
        let outbox = self.outbox.clone();
        let ip = self.ticket.ip();
        self.ctx.tasks.spawn(async move {
            let SaslAttempt {
                account,
                password,
                me,
                server,
                reference,
                label,
                answer,
            } = attempt;
            let proved = ctx.accounts.verify(ip, &account, password).await.ok();
            let outcome = match &proved {
                Some(account) => match job.proved(account.clone()) {
                    Some(id) => {
                        ctx.hub.logged_in(id, account.clone(), reference);
                        SaslOutcome::LoggedIn
                    }
                    None => SaslOutcome::Proved(account),
                },
                None => SaslOutcome::Failed,
            };
            // Its queue overflowing is the connection's to notice at its next write.
            let _ = outbox.answer_bytes(Arc::new(answer(server, &me, label.as_deref(), outcome)));
            job.finish();
        });
    }

    fn answer_bytes(&mut self, bytes: Bytes) {
        if self.outbox.answer_bytes(Arc::new(bytes)).is_err() {
            self.ending = Some(HangUp::SendQueueExceeded);
        }
    }

    /// Carries out a hello's steps (the codec has switched to JSON lines), then confirms
    /// with a welcome carrying the resulting nick and rooms. Each step after the first
    /// counts against flood control as a line of its own, so a hello naming many rooms
    /// joins them no faster than as many `/join` lines would.
    fn hello(
        &mut self,
        steps: Vec<Result<Request, Refusal>>,
        reference: Option<String>,
        login: Option<AccountRequest>,
    ) {
        let Some(id) = self.registered() else {
            return;
        };
        let mut waiting = Vec::new();
        let total = steps.len();
        for (done, step) in steps.into_iter().enumerate() {
            if done > 0 {
                let limits = &self.ctx.limits;
                match self.flood.check(limits, Instant::now().into_std()) {
                    Verdict::Pass => {}
                    Verdict::Refuse => {
                        self.ctx.metrics.flood_refused();
                        let message = format!(
                            "too fast: each room a hello joins counts as a line (at most {} at \
                             once and {} a second); the last {} of its steps were not carried out",
                            limits.flood_burst,
                            limits.flood_rate,
                            total - done
                        );
                        self.refuse(Refusal::new(ErrorCode::Flood, message));
                        break;
                    }
                    Verdict::Kick => {
                        self.ctx.metrics.flood_kicked();
                        self.ending = Some(HangUp::Flooding);
                        return;
                    }
                }
            }
            match step {
                // With a login, the steps wait for it: they come after it.
                Ok(request) if login.is_some() => waiting.push(request),
                Ok(request) => {
                    self.ctx.hub.apply(id, request);
                }
                Err(refusal) => self.refuse(refusal),
            }
        }
        match login {
            Some(login) => self.account(id, login, reference, Some(waiting)),
            None => self.ctx.hub.welcome(id, reference),
        }
    }
}
