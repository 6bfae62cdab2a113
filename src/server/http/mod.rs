//! The HTTP listener (`--listen http://HOST:PORT`): the chat page, the WebSocket, HTTP
//! publish and history for scripts, a health check (docs/protocol.md, "HTTP").
//!
//! Each TCP connection is admitted like any other (connections in all and per address)
//! and served by hyper, its requests routed by axum. A WebSocket takes over its
//! connection's place and is served by the one connection driver (`connection::serve`)
//! through [`ws::WsLines`]. Publishing goes through `feeds::http`, as a UDP datagram goes
//! through `feeds::udp`.

mod page;
mod publish;
mod ws;

pub use publish::{PostRefused, read_post};
pub use ws::{FrameTooBig, WsLines, config as ws_config};

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Deserialize;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tracing::{debug, info, warn};

use super::admission::Ticket;
use super::listen::{Listener, Peer};
use super::stream::ByteStream;
use super::tls::{self, Tls};
use super::{ACCEPT_BACKOFF_MAX, Shared, connection, is_per_connection, refuse};
use crate::accounts::{Secret, token};
use crate::feeds::alertmanager::{self, IntakeError};
use crate::feeds::http::Allowances;
use crate::hub::{
    Beat, Caller, Encode, ErrorCode, Event, Nick, Outgoing, RoomName, Took, Unposted,
};
use crate::limits::{
    ALERTMANAGER_BODY_BYTES, CLUSTER_CALL_TIMEOUT, CLUSTER_POST_WAIT, HTTP_BURST,
    HTTP_HEADER_TIMEOUT, HTTP_HISTORY_DEFAULT, HTTP_RATE,
};
use crate::metrics::{self, ConnectionKind};
use crate::protocol::{IrcCodec, JSON, LineCodec};

/// How an `http://` listener is served (`charla serve --http-token`, `--allowed-origin`,
/// `--http-rate`, `--http-burst`).
#[derive(Clone)]
pub struct HttpOptions {
    /// When set, publishing and reading history need `Authorization: Bearer TOKEN`.
    pub token: Option<String>,
    /// Origins (`https://chat.example.org`) whose pages may open a WebSocket here, besides
    /// this listener's own page.
    pub allowed_origins: Vec<String>,
    /// Posts a second an address's allowance refills at ([`HTTP_RATE`]); 0: no limit.
    pub rate: u32,
    /// Posts an address may make in a burst ([`HTTP_BURST`]).
    pub burst: u32,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            token: None,
            allowed_origins: Vec::new(),
            rate: HTTP_RATE,
            burst: HTTP_BURST,
        }
    }
}

/// The token is never shown, in a log or anywhere else.
impl fmt::Debug for HttpOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpOptions")
            .field("token", &self.token.as_ref().map(|_| "…"))
            .field("allowed_origins", &self.allowed_origins)
            .field("rate", &self.rate)
            .field("burst", &self.burst)
            .finish()
    }
}

/// What every request of one listener shares.
struct Web {
    ctx: Arc<Shared>,
    options: HttpOptions,
    allowances: Allowances,
    /// The scheme its own page's origin has: `https` on a TLS listener, else `http`.
    scheme: &'static str,
}

/// The connection a request came on.
#[derive(Clone)]
struct Conn {
    peer: SocketAddr,
    place: Arc<Place>,
}

/// A connection's place among those admitted: given back when the connection ends, unless
/// a WebSocket took it over.
struct Place {
    ctx: Arc<Shared>,
    ticket: Mutex<Option<Ticket>>,
}

impl Place {
    fn take(&self) -> Option<Ticket> {
        self.ticket.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        if let Some(ticket) = self.take() {
            self.ctx.admission.release(&ticket);
        }
    }
}

/// Accepts HTTP connections until shutdown, HTTPS ones when `tls` is set.
pub(super) async fn accept_loop(
    mut listener: TcpListener,
    options: HttpOptions,
    tls: Option<Tls>,
    ctx: Arc<Shared>,
) {
    let local = listener.local_addr().ok();
    if options.token.is_none() && local.is_some_and(|a| !a.ip().is_loopback()) {
        warn!(
            addr = ?local,
            "this http listener is reachable from the network and has no --http-token: \
             anyone who can reach it may post into any room and read its history"
        );
    }
    // The room posts go to when a script has no room of its own, open from the start as
    // it is for UDP alerts, so `curl -d … /rooms/alerts` works on a fresh server.
    ctx.hub.open_room(&crate::feeds::alerts_room());
    let web = Arc::new(Web {
        allowances: Allowances::new(options.rate, options.burst),
        options,
        ctx: ctx.clone(),
        scheme: if tls.is_some() { "https" } else { "http" },
    });
    let router = routes(web);
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = tokio::select! {
            _ = ctx.shutdown.cancelled() => break,
            accepted = Listener::accept(&mut listener) => accepted,
        };
        match accepted {
            Ok((io, Peer::Tcp(addr))) => {
                backoff = Duration::from_millis(5);
                match ctx.admission.admit(&Peer::Tcp(addr), ConnectionKind::Http) {
                    Ok(ticket) => {
                        let place = Arc::new(Place {
                            ctx: ctx.clone(),
                            ticket: Mutex::new(Some(ticket)),
                        });
                        let conn = Conn { peer: addr, place };
                        let router = router.clone();
                        match &tls {
                            None => ctx.tasks.spawn(serve_http(io, conn, router, ctx.clone())),
                            Some(tls) => ctx.tasks.spawn(serve_https(
                                io,
                                tls.clone(),
                                conn,
                                router,
                                ctx.clone(),
                            )),
                        };
                    }
                    Err((code, message)) => {
                        info!(peer = %addr, code = code.as_str(), "refused");
                        let response = unavailable(code, message);
                        let peer = Peer::Tcp(addr);
                        let shutdown = ctx.shutdown.clone();
                        ctx.tasks
                            .spawn(refuse(io, tls.clone(), peer, response, shutdown));
                    }
                }
            }
            Ok((_, Peer::Unix)) => {}
            Err(e) if is_per_connection(&e) => {}
            Err(e) => {
                warn!(error = %e, retry_in = ?backoff, "accept failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
            }
        }
    }
}

fn routes(web: Arc<Web>) -> Router {
    Router::new()
        .route("/", get(page::index))
        .route("/app.js", get(page::script))
        .route("/app.css", get(page::style))
        .route("/healthz", get(healthz))
        .route("/metrics", get(scrape))
        .route("/ws", get(websocket))
        .route("/rooms/{room}", post(publish))
        .route("/beat/{name}", post(beat))
        .route("/alertmanager", post(alertmanager))
        .route("/rooms/{room}/messages", get(messages))
        .fallback(not_found)
        .method_not_allowed_fallback(wrong_method)
        .with_state(web)
}

/// [`serve_http`] once the TLS handshake, run in this connection's own task, is done; a
/// failed handshake gives the connection's place back as it goes.
async fn serve_https(io: TcpStream, tls: Tls, conn: Conn, router: Router, ctx: Arc<Shared>) {
    let peer = Peer::Tcp(conn.peer);
    if let Some(stream) = tls::handshake(io, &tls, &peer, &ctx.shutdown).await {
        serve_http(stream, conn, router, ctx).await;
    }
}

/// Serves one connection's requests until it closes, a WebSocket takes it over, or the
/// server shuts down (then the request under way is finished first).
async fn serve_http<S: ByteStream>(io: S, conn: Conn, router: Router, ctx: Arc<Shared>) {
    let peer = conn.peer;
    let service = hyper::service::service_fn(move |mut request: hyper::Request<_>| {
        request.extensions_mut().insert(conn.clone());
        let mut router = router.clone();
        tower::Service::call(&mut router, request)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HTTP_HEADER_TIMEOUT);
    let served = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(served);
    let result = tokio::select! {
        result = served.as_mut() => result,
        _ = ctx.shutdown.cancelled() => {
            served.as_mut().graceful_shutdown();
            match tokio::time::timeout(crate::limits::SHUTDOWN_GRACE, served).await {
                Ok(result) => result,
                Err(_) => return,
            }
        }
    };
    if let Err(e) = result {
        debug!(%peer, error = %e, "http connection ended");
    }
}

/// What an HTTP client is told when the server cannot take its connection now.
fn unavailable(code: ErrorCode, message: String) -> Bytes {
    let body = json!({"type": "error", "code": code.as_str(), "message": message}).to_string();
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    Bytes::from(response)
}

/// An error answer: the status, and the same `error` object the JSON protocol sends.
struct Refused {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// A header to send with it, as `WWW-Authenticate: Bearer`.
    header: Option<(&'static str, &'static str)>,
}

fn error(status: StatusCode, code: &'static str, message: impl Into<String>) -> Refused {
    Refused {
        status,
        code,
        message: message.into(),
        header: None,
    }
}

impl Refused {
    fn with(mut self, name: &'static str, value: &'static str) -> Refused {
        self.header = Some((name, value));
        self
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let body = json!({"type": "error", "code": self.code, "message": self.message});
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some((name, value)) = self.header {
            response
                .headers_mut()
                .insert(name, HeaderValue::from_static(value));
        }
        response
    }
}

async fn not_found() -> Refused {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        "nothing here: see docs/protocol.md, HTTP",
    )
}

/// A path asked with a method it does not take (`GET /rooms/ops`): 405, with the `Allow`
/// header axum adds, and the error object every other refusal has, so a script's user reads
/// what went wrong rather than an empty body.
async fn wrong_method(method: Method, uri: Uri) -> Refused {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} does not take {method}: the Allow header names what it takes (docs/protocol.md, HTTP)",
            uri.path()
        ),
    )
}

/// A query string that does not parse (`limit=lots`), answered like any other refusal.
fn bad_query(rejection: QueryRejection) -> Refused {
    error(
        StatusCode::BAD_REQUEST,
        ErrorCode::InvalidArgument.as_str(),
        rejection.body_text(),
    )
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /metrics`: what the server counts, in the Prometheus text format; behind the
/// listener's token when it has one, like everything but the page and the health check.
async fn scrape(State(web): State<Arc<Web>>, headers: HeaderMap) -> Result<Response, Refused> {
    authorized(&web, &headers)?;
    let body = web.ctx.metrics.render();
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(metrics::CONTENT_TYPE),
        )],
        body,
    )
        .into_response())
}

/// Whether the request carries the listener's token, when it has one. Compared in
/// constant time: how long the comparison takes tells nothing of the token.
fn authorized(web: &Web, headers: &HeaderMap) -> Result<(), Refused> {
    let Some(token) = &web.options.token else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .unwrap_or_default();
    if same_secret(given, token.as_bytes()) {
        return Ok(());
    }
    Err(error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "this listener needs Authorization: Bearer TOKEN (--http-token)",
    )
    .with("www-authenticate", "Bearer"))
}

/// The account whose API token (`/token new`) the request carries as its bearer token,
/// if it carries one; such a token is refused when no account has it. Any other bearer
/// token is the listener's own (`--http-token`), for [`authorized`].
async fn account_of(web: &Web, headers: &HeaderMap) -> Result<Option<Nick>, Refused> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .filter(|token| token.starts_with(token::PREFIX));
    let Some(given) = given else {
        return Ok(None);
    };
    match web.ctx.accounts.token_owner(Secret::new(given)).await {
        Ok(account) => Ok(Some(account)),
        Err((_, message)) => Err(error(StatusCode::UNAUTHORIZED, "unauthorized", message)
            .with("www-authenticate", "Bearer")),
    }
}

/// `given == secret`, in a time that depends only on their lengths.
fn same_secret(given: &[u8], secret: &[u8]) -> bool {
    let mut differ = u8::from(given.len() != secret.len());
    for (i, s) in secret.iter().enumerate() {
        differ |= given.get(i).copied().unwrap_or(!s) ^ s;
    }
    std::hint::black_box(differ) == 0
}

fn room_of(name: &str) -> Result<RoomName, Refused> {
    RoomName::parse(name).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRoom.as_str(),
            e.to_string(),
        )
    })
}

fn no_such_room(room: &RoomName) -> Refused {
    error(
        StatusCode::NOT_FOUND,
        "no_such_room",
        format!("there is no room {room}: nobody is in it and no feed opened it"),
    )
}

/// The first of `names` the request carries, as text.
fn header_text<'a>(headers: &'a HeaderMap, names: &[&str]) -> Option<&'a str> {
    names
        .iter()
        .find_map(|name| headers.get(*name))
        .and_then(|v| v.to_str().ok())
}

/// `POST /rooms/NAME`: the body posted into #NAME as a notice, or an alert at priority
/// high or urgent; answers the post's id.
async fn publish(
    State(web): State<Arc<Web>>,
    Extension(conn): Extension<Conn>,
    Path(room): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Refused> {
    let ip = conn.peer.ip();
    let account = admit_post(&web, &conn, &headers).await?;
    may_talk(&web, account.as_ref())?;
    let room = room_of(&room)?;
    let max = web.ctx.limits.max_line_bytes;
    let too_long = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::LineTooLong.as_str(),
            format!("a post is limited to {max} bytes, as a line is"),
        )
    };
    let bytes = read_body(body, &headers, max, too_long).await?;
    let notice = publish::read_post(&headers, &bytes, ip)
        .map_err(|r| error(StatusCode::BAD_REQUEST, r.code.as_str(), r.message))?;
    // Who posted, when an account's token says so.
    let notice = match &account {
        Some(account) => notice.with("account", account.to_string()),
        None => notice,
    };
    let hub = &web.ctx.hub;
    let (posted, numbering) = hub
        .post_numbered(&room, notice)
        .map_err(|e| unposted(&room, e))?;
    debug!(peer = %conn.peer, room = %posted.room, id = posted.id, "http post");
    // In a cluster the number is Redis's, as it comes back; none while Redis is out of
    // reach (held, published once it is back), nor past the wait.
    let seq = match numbering {
        None => Some(posted.seq),
        Some(numbering) => match tokio::time::timeout(CLUSTER_POST_WAIT, numbering).await {
            Ok(Ok(seq)) => seq,
            Ok(Err(_)) => None,
            Err(_) => {
                hub.forget_numbering(posted.id);
                None
            }
        },
    };
    let mut answer = json!({
        "id": posted.id,
        "ts": posted.ts,
        "room": posted.room.as_str(),
        "type": posted.notice.kind.as_str(),
    });
    if let Some(seq) = seq {
        answer["seq"] = seq.into();
    }
    Ok(axum::Json(answer).into_response())
}

/// A request's body, refused with `too_long()` when it is over `max` bytes: read up to the
/// bound and no further, never buffered whole.
async fn read_body(
    body: Body,
    headers: &HeaderMap,
    max: usize,
    too_long: impl Fn() -> Refused,
) -> Result<Bytes, Refused> {
    let declared = header_text(headers, &["content-length"]).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_long());
    }
    match Limited::new(body, max).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_long()),
        Err(e) => Err(error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            e.to_string(),
        )),
    }
}

/// What a post that could not be posted is answered.
fn unposted(room: &RoomName, e: Unposted) -> Refused {
    match e {
        Unposted::NoSuchRoom(_) => no_such_room(room),
        Unposted::StoreFull => error(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::StoreUnavailable.as_str(),
            "the server cannot keep or relay messages right now (its disk, or its queue to the other nodes, is behind); nothing was posted: try again in a moment".to_string(),
        ),
    }
}

#[derive(Deserialize)]
struct AlertmanagerQuery {
    room: Option<String>,
}

/// `POST /alertmanager?room=%23alerts`: Alertmanager's webhook payload (version 4), each
/// alert that started firing or resolved posted into the room (`#alerts` unless named);
/// answers how many lines were posted and how many alerts fire there now.
async fn alertmanager(
    State(web): State<Arc<Web>>,
    Extension(conn): Extension<Conn>,
    query: Result<Query<AlertmanagerQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Refused> {
    let account = admit_post(&web, &conn, &headers).await?;
    may_talk(&web, account.as_ref())?;
    let Query(query) = query.map_err(bad_query)?;
    let room = match &query.room {
        Some(room) => room_of(room)?,
        None => crate::feeds::alerts_room(),
    };
    let too_long = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "an Alertmanager payload is limited to {ALERTMANAGER_BODY_BYTES} bytes: lower max_alerts in its webhook_config"
            ),
        )
    };
    let bytes = read_body(body, &headers, ALERTMANAGER_BODY_BYTES, too_long).await?;
    let webhook = alertmanager::parse(&bytes).map_err(|e| intake_refused(&room, e))?;
    let taken = web
        .ctx
        .alertmanager
        .take(&web.ctx.hub, &room, &webhook)
        .map_err(|e| intake_refused(&room, e))?;
    debug!(peer = %conn.peer, %room, posted = taken.posted, "alertmanager payload");
    Ok(axum::Json(json!({
        "room": room.as_str(),
        "posted": taken.posted,
        "firing": taken.firing,
    }))
    .into_response())
}

fn intake_refused(room: &RoomName, e: IntakeError) -> Refused {
    match e {
        IntakeError::Malformed(reason) => error(StatusCode::BAD_REQUEST, "invalid_payload", reason),
        IntakeError::Unposted(e) => unposted(room, e),
        e @ IntakeError::TooMany { .. } => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_alerts",
            e.to_string(),
        ),
    }
}

/// Whether a post (`POST /rooms/NAME`, `POST /beat/NAME`, `POST /alertmanager`) may be made now: within the
/// address's allowance, with the listener's token or an account's, and not from another
/// site's page. The account, when its token says who posts.
async fn admit_post(web: &Web, conn: &Conn, headers: &HeaderMap) -> Result<Option<Nick>, Refused> {
    let ip = conn.peer.ip();
    // Every attempt counts, so the allowance also slows down guessing the token.
    if web.allowances.spend(ip, Instant::now()).is_err() {
        return Err(error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            format!(
                "too fast: at most {} posts at once and {} a second from one address",
                web.options.burst, web.options.rate
            ),
        )
        .with("retry-after", "1"));
    }
    let account = account_of(web, headers).await?;
    if account.is_none() {
        authorized(web, headers)?;
    }
    // A page on another site may not post here through its visitors' browsers (a form or
    // a plain `fetch` needs no preflight): scripts send no Origin; browsers always do.
    if !origin_allowed(web, headers) {
        return Err(error(
            StatusCode::FORBIDDEN,
            "forbidden_origin",
            "a page from another origin may not post here (see --allowed-origin)",
        ));
    }
    Ok(account)
}

/// `--require-account`: a post that says something in a room needs an account's token,
/// as a chat user needs a login, or the listener's own (`--http-token`, given by whoever
/// runs the server); without either, anyone could talk on a closed server by HTTP.
fn may_talk(web: &Web, account: Option<&Nick>) -> Result<(), Refused> {
    if account.is_some() || web.options.token.is_some() || !web.ctx.hub.account_required() {
        return Ok(());
    }
    Err(error(
        StatusCode::UNAUTHORIZED,
        ErrorCode::AccountRequired.as_str(),
        "this server lets only users with an account talk: post with \
         Authorization: Bearer TOKEN, a token from /token new",
    )
    .with("www-authenticate", "Bearer"))
}

/// An event the JSON protocol encoded, as a response.
fn json_body(body: Bytes) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// `POST /beat/NAME`: the job NAME calls in to its heartbeat (`--heartbeat`); answers the
/// heartbeat's status as the JSON protocol's `status` object.
async fn beat(
    State(web): State<Arc<Web>>,
    Extension(conn): Extension<Conn>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, Refused> {
    admit_post(&web, &conn, &headers).await?;
    let (waiting, answer) = tokio::sync::oneshot::channel();
    let answer = match web
        .ctx
        .hub
        .beat(&name, &Beat::Alive, Caller::Waiting(waiting))
    {
        Took::Now(answer) => answer,
        // Another node runs it (`--cluster`): its answer, or an error saying it did not
        // come, within CLUSTER_CALL_TIMEOUT; waited for twice that at most, should the
        // node be shutting down.
        Took::Sent(_) => match tokio::time::timeout(CLUSTER_CALL_TIMEOUT * 2, answer).await {
            Ok(Ok(answer)) => answer,
            _ => Err((
                ErrorCode::ClusterUnreachable,
                "the other nodes did not answer".into(),
            )),
        },
    };
    let (room, items) = answer.map_err(|(code, message)| match code {
        ErrorCode::ClusterUnreachable => {
            error(StatusCode::SERVICE_UNAVAILABLE, code.as_str(), message)
        }
        _ => error(StatusCode::NOT_FOUND, "no_such_heartbeat", message),
    })?;
    debug!(peer = %conn.peer, heartbeat = %name, "http beat");
    let body = JSON.encode(&Outgoing::new(Event::Status { room, items }));
    Ok(json_body(body))
}

#[derive(Deserialize)]
struct HistoryQuery {
    limit: Option<usize>,
    since: Option<u64>,
    before: Option<u64>,
}

/// `GET /rooms/NAME/messages?limit=N&since=ID`: the room's history as the JSON protocol's
/// `history` object, oldest first: the last N, or with `since` the first N after message
/// ID (read on from the last id received), or with `before` the last N before message ID
/// (read back from the first id received).
async fn messages(
    State(web): State<Arc<Web>>,
    Path(room): Path<String>,
    query: Result<Query<HistoryQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, Refused> {
    authorized(&web, &headers)?;
    let Query(query) = query.map_err(bad_query)?;
    if query.since.is_some() && query.before.is_some() {
        let message = "a query takes since or before, not both";
        let code = ErrorCode::InvalidArgument.as_str();
        return Err(error(StatusCode::BAD_REQUEST, code, message));
    }
    let room = room_of(&room)?;
    let limit = query.limit.unwrap_or(HTTP_HISTORY_DEFAULT);
    let (room, entries) = web
        .ctx
        .hub
        .room_history(&room, query.since, query.before, Some(limit))
        .map_err(|_| no_such_room(&room))?;
    let body = JSON.encode(&Outgoing::new(Event::History {
        room,
        messages: entries,
    }));
    Ok(json_body(body))
}

#[derive(Deserialize)]
struct WsQuery {
    nick: Option<String>,
    room: Option<String>,
}

/// Whether a browser page from `Origin` may open a WebSocket or post here: this listener's
/// own page (`https://` and the Host on a TLS listener, `http://` on another), or an origin
/// `--allowed-origin` names. A request without `Origin` is not from
/// a page (a program, `curl`, `websocat`) and may.
fn origin_allowed(web: &Web, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if web
        .options
        .allowed_origins
        .iter()
        .any(|o| o.trim_end_matches('/').eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let host = header_text(headers, &["host"]).unwrap_or_default();
    !host.is_empty() && origin.eq_ignore_ascii_case(&format!("{}://{host}", web.scheme))
}

/// The IRCv3 WebSocket subprotocols: IRC, one line per frame, in text frames (UTF-8) or
/// binary ones.
const IRC_TEXT: &str = "text.ircv3.net";
const IRC_BINARY: &str = "binary.ircv3.net";

/// `GET /ws`: the handshake, then the JSON protocol, one object per text frame; or IRC,
/// one line per frame, when the client offers an IRCv3 subprotocol (the first of those it
/// lists that charla speaks is chosen).
async fn websocket(
    State(web): State<Arc<Web>>,
    Extension(conn): Extension<Conn>,
    query: Result<Query<WsQuery>, QueryRejection>,
    mut request: Request,
) -> Result<Response, Refused> {
    let Query(query) = query.map_err(bad_query)?;
    let headers = request.headers();
    let has = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has(header::UPGRADE, "websocket") || !has(header::CONNECTION, "upgrade") {
        return Err(error(
            StatusCode::UPGRADE_REQUIRED,
            "invalid_request",
            "this is a WebSocket endpoint: connect with a WebSocket client",
        ));
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(|v| v.as_bytes())
        != Some(b"13")
    {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "only WebSocket version 13 is spoken",
        )
        .with("sec-websocket-version", "13"));
    }
    let Some(key) = headers.get(header::SEC_WEBSOCKET_KEY) else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Sec-WebSocket-Key is missing",
        ));
    };
    let accept = derive_accept_key(key.as_bytes());
    let offered = headers.get_all(header::SEC_WEBSOCKET_PROTOCOL).iter();
    let offered = offered.filter_map(|v| v.to_str().ok());
    let subprotocol = offered
        .flat_map(|v| v.split(',').map(str::trim))
        .find_map(|p| [IRC_TEXT, IRC_BINARY].into_iter().find(|ours| *ours == p));
    if !origin_allowed(&web, headers) {
        info!(peer = %conn.peer, origin = ?headers.get(header::ORIGIN), "cross-origin websocket refused");
        return Err(error(
            StatusCode::FORBIDDEN,
            "forbidden_origin",
            "a page from another origin may not open a WebSocket here (see --allowed-origin)",
        ));
    }
    let Some(mut ticket) = conn.place.take() else {
        return Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_full",
            "this connection has no place left",
        ));
    };
    // The session enters #lobby, where a WebSocket session starts, and the room named
    // under the nick named: its hello, not a guest's join and a rename seen in #lobby.
    let first = (query.nick.is_some() || query.room.is_some()).then(|| {
        let lobby = RoomName::lobby();
        let mut rooms = vec![lobby.as_str().to_string()];
        rooms.extend(query.room.filter(|room| {
            !room
                .trim_start_matches('#')
                .eq_ignore_ascii_case(lobby.as_str().trim_start_matches('#'))
        }));
        json!({"type": "hello", "nick": query.nick, "rooms": rooms}).to_string()
    });
    web.ctx
        .admission
        .speaks(&mut ticket, ConnectionKind::WebSocket);
    let upgrade = hyper::upgrade::on(&mut request);
    let ctx = web.ctx.clone();
    let peer = conn.peer;
    web.ctx.tasks.spawn(async move {
        let upgraded = match upgrade.await {
            Ok(upgraded) => upgraded,
            Err(e) => {
                debug!(%peer, error = %e, "websocket upgrade failed");
                ctx.admission.release(&ticket);
                return;
            }
        };
        let max = match subprotocol {
            Some(_) => crate::protocol::irc::message::MAX_FRAME_BYTES,
            None => ctx.limits.max_line_bytes,
        };
        let config = ws::config(max);
        let ws =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await;
        let peer = Peer::Tcp(peer);
        match subprotocol {
            Some(name) => {
                let io = ws::WsLines::new(ws, None).binary(name == IRC_BINARY);
                let codec = IrcCodec::new(&ctx.limits);
                connection::serve(io, codec, peer, &ctx, ticket).await;
            }
            None => {
                let codec = match first {
                    Some(_) => LineCodec::json_hello(max),
                    None => LineCodec::json(max),
                };
                let io = ws::WsLines::new(ws, first);
                connection::serve(io, codec, peer, &ctx, ticket).await;
            }
        }
    });
    let mut response = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::UPGRADE, "websocket")
        .header(header::CONNECTION, "Upgrade")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept);
    if let Some(name) = subprotocol {
        response = response.header(header::SEC_WEBSOCKET_PROTOCOL, name);
    }
    Ok(response.body(Body::empty()).expect("a valid response"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"s3cret", b"s3cret"));
        assert!(!same_secret(b"s3cre", b"s3cret"));
        assert!(!same_secret(b"s3cretX", b"s3cret"));
        assert!(!same_secret(b"S3cret", b"s3cret"));
        assert!(!same_secret(b"", b"s3cret"));
    }
}
