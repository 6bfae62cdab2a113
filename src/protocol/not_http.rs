//! A browser or HTTP client that reached a line or IRC port. Its request line is
//! recognised before anything it sent is acted on, and the connection is closed: taken as
//! chat, its headers (cookies included) would be said in `#lobby` and kept in history, and
//! any web page could make its visitor's browser post lines there (a form sent as
//! `text/plain`), the cross-protocol trick IRC servers have long refused.

/// What a line port answers an HTTP request with, before closing.
pub const NOT_HTTP_LINE: &[u8] =
    b"error: this port speaks charla's text and JSON lines, not HTTP: \
the page and HTTP posts are on an http:// listener (--listen http://HOST:PORT)\r\n";

/// What an IRC port answers an HTTP request with, before closing.
pub const NOT_HTTP_IRC: &[u8] = b"ERROR :Closing link: this port speaks IRC, not HTTP\r\n";

/// The methods an HTTP/1 request line may start with (RFC 9110's, and PATCH).
const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// Whether `line` is an HTTP/1 request line: `METHOD TARGET HTTP/1.x`.
pub fn is_http_request(line: &str) -> bool {
    let mut words = line.trim_end().split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return false;
    };
    METHODS.contains(&method) && !target.is_empty() && version.starts_with("HTTP/1.")
}

#[cfg(test)]
mod tests {
    use super::is_http_request;

    #[test]
    fn request_lines_are_told_from_chat() {
        for line in [
            "GET / HTTP/1.1",
            "POST /form HTTP/1.1\r",
            "OPTIONS * HTTP/1.0",
            "CONNECT 127.0.0.1:6030 HTTP/1.1",
        ] {
            assert!(is_http_request(line), "{line:?}");
        }
        for line in [
            "GET / HTTP/2",
            "get / HTTP/1.1",
            "GET /  HTTP/1.1",
            "GET HTTP/1.1",
            "GET / HTTP/1.1 now",
            "POST the build log please",
            "/nick ana",
            "{\"type\":\"hello\"}",
        ] {
            assert!(!is_http_request(line), "{line:?}");
        }
    }
}
