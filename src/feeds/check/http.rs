//! HTTP checks: `NAME=http://URL` and `NAME=https://URL`, a `GET` that must answer the
//! expected status (any 2xx or 3xx unless `status=` says) and, with `keyword=`, a body that
//! contains the word. hyper speaks HTTP/1.1 on a connection made here, so a check sees
//! exactly what failed: the name, the connection, TLS, the status, the body, or the time.
//!
//! Redirects are followed up to [`HTTP_CHECK_MAX_REDIRECTS`] and at most
//! [`HTTP_CHECK_BODY_BYTES`] of a body are read; the rest is never downloaded.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use axum::http::{Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::probe::Probed;
use crate::client::tls::Refusal;
use crate::feeds::human;
use crate::limits::{HTTP_CHECK_BODY_BYTES, HTTP_CHECK_MAX_REDIRECTS};

/// What an HTTP check asks of the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpProbe {
    pub url: Uri,
    /// The status it must answer; any 2xx or 3xx when `None`.
    pub status: Option<u16>,
    /// Text the body must contain (looked for in its first [`HTTP_CHECK_BODY_BYTES`]).
    pub keyword: Option<String>,
    /// For https: trust the certificates in this PEM file instead of the system's roots.
    pub ca: Option<PathBuf>,
}

impl fmt::Display for HttpProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.url)
    }
}

impl HttpProbe {
    /// `http://…` or `https://…` with a host; `None` when it is not such a URL.
    pub fn parse(url: &str) -> Option<HttpProbe> {
        let url: Uri = url.parse().ok()?;
        let scheme = url.scheme_str()?;
        (matches!(scheme, "http" | "https") && url.host().is_some_and(|h| !h.is_empty())).then(
            || HttpProbe {
                url,
                status: None,
                keyword: None,
                ca: None,
            },
        )
    }

    /// The options [`HttpProbe::take`] knows, for the error that lists them.
    pub const OPTIONS: &[&str] = &["status", "keyword", "ca"];

    /// Takes one `OPTION=VALUE` only HTTP checks know; `Ok(false)` when it is not one.
    pub fn take(&mut self, key: &str, value: &str) -> Result<bool, String> {
        match key {
            "status" => match value.parse::<u16>() {
                Ok(code @ 100..=599) => self.status = Some(code),
                _ => return Err(format!("status={value}: expected a status such as 200")),
            },
            "keyword" if !value.is_empty() => self.keyword = Some(value.to_string()),
            "keyword" => return Err("keyword= needs a word".into()),
            "ca" if !value.is_empty() => self.ca = Some(PathBuf::from(value)),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Tries the URL once within `timeout`: `Ok(what it answered)` or `Err(why not)`, each
    /// saying how long the answer took, and when an https server's certificate expires.
    pub async fn run(&self, timeout: Duration) -> Probed {
        // Made before the clock starts: reading the system's roots (at the first run) is
        // this server's time, not the site's.
        let tls = match self.url.scheme_str() {
            Some("https") => match connector(self.ca.as_deref()) {
                Ok(tls) => Some(tls),
                Err(why) => return Err(why).into(),
            },
            _ => None,
        };
        let started = Instant::now();
        let mut not_after = None;
        let fetched = self.fetch(tls.as_ref(), started, &mut not_after);
        let result = match tokio::time::timeout(timeout, fetched).await {
            Ok(result) => result,
            Err(_) => Err(format!("timed out after {}", human(timeout))),
        };
        Probed { result, not_after }
    }

    async fn fetch(
        &self,
        tls: Option<&TlsConnector>,
        started: Instant,
        not_after: &mut Option<i64>,
    ) -> Result<String, String> {
        let mut url = self.url.clone();
        let mut hops = 0;
        loop {
            let (status, location, body) = get(&url, tls, self.ca.as_deref(), not_after).await?;
            let took = human(started.elapsed());
            let redirect = status.is_redirection() && self.status != Some(status.as_u16());
            if let (true, Some(location)) = (redirect, location) {
                if hops == HTTP_CHECK_MAX_REDIRECTS {
                    return Err(format!(
                        "more than {HTTP_CHECK_MAX_REDIRECTS} redirects (status {} in {took})",
                        status.as_u16()
                    ));
                }
                hops += 1;
                url = follow(&url, &location).ok_or_else(|| {
                    format!("status {}: bad Location {location:?}", status.as_u16())
                })?;
                continue;
            }
            let code = status.as_u16();
            let expected = match self.status {
                Some(wanted) => code == wanted,
                None => status.is_success() || status.is_redirection(),
            };
            if !expected {
                return Err(format!("status {code} in {took}"));
            }
            if let Some(word) = &self.keyword
                && memchr::memmem::find(&body, word.as_bytes()).is_none()
            {
                return Err(format!(
                    "keyword {word:?} missing (status {code} in {took})"
                ));
            }
            return Ok(format!("status {code} in {took}"));
        }
    }
}

/// The TLS connector of every check that trusts `ca` (the system's roots when `None`),
/// made at the first run that needs it and shared from then on: the roots are read and
/// parsed once, not at every run of every check. One that cannot be made is not kept, so a
/// `ca=` file put right is read at the next run.
pub(super) fn connector(ca: Option<&Path>) -> Result<TlsConnector, String> {
    static MADE: OnceLock<Mutex<HashMap<Option<PathBuf>, TlsConnector>>> = OnceLock::new();
    let made = MADE.get_or_init(Mutex::default);
    let key = ca.map(Path::to_path_buf);
    if let Some(tls) = made.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
        return Ok(tls.clone());
    }
    // Made without the lock held: reading the system's roots takes a while.
    let tls = crate::client::tls::connector(ca).map_err(|e| format!("TLS error: {e}"))?;
    made.lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key, tls.clone());
    Ok(tls)
}

/// One `GET`: the status, the `Location` and the first [`HTTP_CHECK_BODY_BYTES`] of the body.
async fn get(
    url: &Uri,
    tls: Option<&TlsConnector>,
    ca: Option<&Path>,
    not_after: &mut Option<i64>,
) -> Result<(StatusCode, Option<String>, Vec<u8>), String> {
    let host = url.host().ok_or("the URL has no host")?;
    // `[::1]` in a URL is `::1` to connect to.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let port = url
        .port_u16()
        .unwrap_or(if tls.is_some() { 443 } else { 80 });
    let stream = TcpStream::connect((bare, port)).await.map_err(|e| {
        format!(
            "cannot connect to {host}:{port}: {}",
            super::probe::io_reason(&e)
        )
    })?;
    let request = Request::get(url.path_and_query().map_or("/", |p| p.as_str()))
        .header(header::HOST, url.authority().map_or(host, |a| a.as_str()))
        .header(
            header::USER_AGENT,
            concat!("charla-check/", env!("CARGO_PKG_VERSION")),
        )
        .header(header::CONNECTION, "close")
        .body(Empty::<bytes::Bytes>::new())
        .expect("a valid request");
    match tls {
        None => exchange(stream, request).await,
        Some(tls) => {
            let (stream, expires) = handshake(tls, ca, bare, stream).await?;
            *not_after = expires.or(*not_after);
            exchange(stream, request).await
        }
    }
}

/// A TLS handshake with `host` on `stream`, and when the certificate it showed expires
/// (seconds since the epoch).
pub(super) async fn handshake(
    tls: &TlsConnector,
    ca: Option<&Path>,
    host: &str,
    stream: TcpStream,
) -> Result<(TlsStream<TcpStream>, Option<i64>), String> {
    let name = crate::client::tls::name(host).map_err(|e| format!("TLS error: {e}"))?;
    let stream = tls
        .connect(name, stream)
        .await
        .map_err(|e| refused(&e, host, ca))?;
    let not_after = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|certs| certs.first())
        .and_then(|leaf| x509_parser::parse_x509_certificate(leaf).ok())
        .map(|(_, cert)| cert.validity().not_after.timestamp());
    Ok((stream, not_after))
}

/// A failed handshake as the alert should say it: rustls's own words for a certificate are
/// its type names.
fn refused(error: &std::io::Error, host: &str, ca: Option<&Path>) -> String {
    match Refusal::of(error, host, ca) {
        Some(Refusal::Untrusted { reason, .. }) => {
            format!("TLS error: the certificate is not trusted ({reason})")
        }
        Some(Refusal::NotTls) => format!("TLS error: {host} did not answer in TLS"),
        Some(Refusal::Handshake(reason)) => format!("TLS error: {reason}"),
        None => format!("TLS error: {error}"),
    }
}

async fn exchange<S>(
    stream: S,
    request: Request<Empty<bytes::Bytes>>,
) -> Result<(StatusCode, Option<String>, Vec<u8>), String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP error: {e}"))?;
    // The connection is driven beside the request; dropping it closes the socket.
    let driven = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("HTTP error: {e}"))?;
        let status = response.status();
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut body = response.into_body();
        let mut kept = Vec::new();
        while kept.len() < HTTP_CHECK_BODY_BYTES {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        let room = HTTP_CHECK_BODY_BYTES - kept.len();
                        kept.extend_from_slice(&data[..data.len().min(room)]);
                    }
                }
                Some(Err(e)) => return Err(format!("status {}: body cut: {e}", status.as_u16())),
                None => break,
            }
        }
        Ok((status, location, kept))
    };
    tokio::pin!(driven);
    tokio::select! {
        result = &mut driven => result,
        // Done at the end of the exchange, while the answer may still be read; an error
        // is said as the reason.
        ended = connection => match ended {
            Ok(()) => driven.await,
            Err(e) => Err(format!("HTTP error: {e}")),
        },
    }
}

/// Where `location` points, read from `url`: absolute (`https://…`, `//host/…`), a path
/// on the same host, or a path beside the current one.
fn follow(url: &Uri, location: &str) -> Option<Uri> {
    if location.contains("://") {
        return HttpProbe::parse(location).map(|p| p.url);
    }
    if location.starts_with("//") {
        return HttpProbe::parse(&format!("{}:{location}", url.scheme_str()?)).map(|p| p.url);
    }
    let path = if location.starts_with('/') {
        location.to_string()
    } else {
        let base = url.path();
        format!(
            "{}{location}",
            &base[..base.rfind('/').map_or(0, |i| i + 1)]
        )
    };
    Uri::builder()
        .scheme(url.scheme()?.clone())
        .authority(url.authority()?.clone())
        .path_and_query(path)
        .build()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_need_a_scheme_and_a_host() {
        assert!(HttpProbe::parse("http://example.org/health").is_some());
        assert!(HttpProbe::parse("https://[::1]:8443/").is_some());
        assert!(HttpProbe::parse("ftp://example.org/").is_none());
        assert!(HttpProbe::parse("http:///x").is_none());
        assert!(HttpProbe::parse("example.org").is_none());
    }

    #[test]
    fn redirects_resolve_against_the_url() {
        let url: Uri = "http://a.example:8080/app/health?x=1".parse().unwrap();
        let at = |l: &str| follow(&url, l).map(|u| u.to_string());
        assert_eq!(at("/login").as_deref(), Some("http://a.example:8080/login"));
        assert_eq!(
            at("ok?y=2").as_deref(),
            Some("http://a.example:8080/app/ok?y=2")
        );
        assert_eq!(
            at("https://b.example/").as_deref(),
            Some("https://b.example/")
        );
        assert_eq!(at("//c.example/x").as_deref(), Some("http://c.example/x"));
        assert_eq!(at("ftp://b.example/"), None);
    }
}
