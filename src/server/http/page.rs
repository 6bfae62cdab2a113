//! The chat page: HTML, CSS and JS built into the binary, nothing fetched at run time.
//! What users type is only ever set as text by the script; the Content-Security-Policy
//! allows nothing but this origin's own script, style and WebSocket.

use axum::http::header;
use axum::response::IntoResponse;

/// Only this origin's own files and WebSocket; no inline script, no frames.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

/// `GET /` (`/?nick=NAME&room=ROOM` opens it as NAME in #ROOM).
pub async fn index() -> impl IntoResponse {
    asset("text/html; charset=utf-8", include_str!("page/index.html"))
}

pub async fn script() -> impl IntoResponse {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("page/app.js"),
    )
}

pub async fn style() -> impl IntoResponse {
    asset("text/css; charset=utf-8", include_str!("page/app.css"))
}
