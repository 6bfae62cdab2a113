//! What a `POST /rooms/NAME` posts, read from its headers and its body: the handler in
//! `server/http/mod.rs` admits the request (allowance, token, origin, room, size) and hands
//! the rest here, a function of its input alone, so unit tests and the `http_publish` fuzz
//! target (docs/fuzzing.md) reach it without a server.

use std::net::IpAddr;

use axum::http::HeaderMap;

use super::header_text;
use crate::feeds::http::{Priority, Publish};
use crate::hub::{ErrorCode, Notice};

/// Why a post's headers or body were refused; answered with status 400 and the JSON
/// protocol's `error` object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostRefused {
    pub code: ErrorCode,
    pub message: &'static str,
}

/// The notice `body` posts as from `http:IP`, with the `Title`, `Priority` and `Tags` of
/// `headers` (or their `X-` names, `Prio`, `Tag`); a header that is not UTF-8 counts as
/// absent. Refused when the body is not UTF-8, the priority is none of ntfy's, or the
/// body has no printable text, checked in that order.
pub fn read_post(headers: &HeaderMap, body: &[u8], from: IpAddr) -> Result<Notice, PostRefused> {
    let text = std::str::from_utf8(body).map_err(|_| PostRefused {
        code: ErrorCode::InvalidUtf8,
        message: "the body is not valid UTF-8",
    })?;
    let priority = header_text(headers, &["priority", "x-priority", "prio"])
        .map(|p| {
            Priority::parse(p).ok_or(PostRefused {
                code: ErrorCode::InvalidArgument,
                message: "Priority is 1 to 5, or min, low, default, high or urgent",
            })
        })
        .transpose()?;
    let request = Publish {
        body: text,
        title: header_text(headers, &["title", "x-title"]),
        priority,
        tags: header_text(headers, &["tags", "x-tags", "tag"]),
    };
    request.notice(from).ok_or(PostRefused {
        code: ErrorCode::EmptyMessage,
        message: "nothing to post: the body has no printable text",
    })
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;
    use crate::hub::{Field, PostKind};

    fn headers(pairs: &[(&'static str, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_bytes(value).unwrap());
        }
        map
    }

    fn field<'a>(notice: &'a Notice, name: &str) -> Option<&'a Field> {
        notice
            .fields
            .iter()
            .find_map(|(n, f)| (n == name).then_some(f))
    }

    const FROM: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 7));

    #[test]
    fn headers_give_the_title_priority_and_tags_under_any_of_their_names() {
        let posted = |pairs: &[(&'static str, &[u8])]| {
            read_post(&headers(pairs), b"disk full\n", FROM).unwrap()
        };
        let notice = posted(&[
            ("x-title", b"db1"),
            ("prio", b"urgent"),
            ("tag", b"disk, db"),
        ]);
        assert_eq!(notice.kind, PostKind::Alert);
        assert_eq!(notice.text.as_str(), "db1: disk full");
        assert_eq!(notice.source.as_str(), "http:192.0.2.7");
        assert_eq!(field(&notice, "priority"), Some(&Field::Number(5)));
        assert_eq!(field(&notice, "title"), Some(&Field::from("db1")));
        assert_eq!(field(&notice, "tags"), Some(&Field::from("disk,db")));

        // The first name wins; no header at all is a plain notice at the default priority.
        let notice = posted(&[("priority", b"low"), ("x-priority", b"5")]);
        assert_eq!(notice.kind, PostKind::Notice);
        assert_eq!(field(&notice, "priority"), Some(&Field::Number(2)));
        let notice = posted(&[]);
        assert_eq!(notice.kind, PostKind::Notice);
        assert_eq!(notice.text.as_str(), "disk full");
        assert_eq!(field(&notice, "priority"), Some(&Field::Number(3)));
        assert_eq!(field(&notice, "title"), None);
    }

    #[test]
    fn a_header_that_is_not_utf8_counts_as_absent() {
        let notice = read_post(
            &headers(&[("title", b"caf\xe9"), ("priority", b"\xff")]),
            b"up",
            FROM,
        )
        .unwrap();
        assert_eq!(notice.text.as_str(), "up");
        assert_eq!(field(&notice, "priority"), Some(&Field::Number(3)));
    }

    #[test]
    fn refusals_come_in_order_utf8_priority_empty() {
        let refused = |pairs: &[(&'static str, &[u8])], body: &[u8]| {
            read_post(&headers(pairs), body, FROM).unwrap_err().code
        };
        assert_eq!(
            refused(&[("priority", b"loud")], b"\xff"),
            ErrorCode::InvalidUtf8
        );
        assert_eq!(
            refused(&[("priority", b"loud")], b" \x07"),
            ErrorCode::InvalidArgument
        );
        assert_eq!(
            refused(&[("title", b"only a title")], b" \r\n\x1b[31m"),
            ErrorCode::EmptyMessage
        );
    }
}
