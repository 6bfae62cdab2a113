//! HTTP publish (`server::read_post`): arbitrary `Title`, `Priority` and `Tags` headers
//! (under any of their names, repeated or not, any bytes a header may hold) and an arbitrary
//! body. The refusal is the one a model of the rules says, in their order (a body not UTF-8,
//! a priority none of ntfy's, nothing printable); what is posted comes from `http:IP`, is
//! an alert exactly at priority high or urgent, keeps every word of the body, carries its
//! title and tags as clean single lines, and encodes as clean lines in text, JSON and IRC
//! (`charla_fuzz::check_notice`).
#![no_main]

use std::net::IpAddr;

use charla::feeds::http::Priority;
use charla::hub::{ErrorCode, Field, Notice, PostKind};
use charla::limits::HTTP_HEADER_CHARS;
use charla::server::read_post;
use charla_fuzz::check_notice;
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 8] = [
    "title",
    "x-title",
    "priority",
    "x-priority",
    "prio",
    "tags",
    "x-tags",
    "tag",
];

const FROM: [&str; 4] = ["192.0.2.7", "::ffff:192.0.2.7", "2001:db8::1", "::1"];

/// The first value, as text, of the first of `names` the request carries.
fn first<'a>(headers: &'a HeaderMap, names: &[&str]) -> Option<&'a str> {
    let name = names.iter().find(|n| headers.contains_key(**n))?;
    headers[*name].to_str().ok()
}

fn field<'a>(notice: &'a Notice, name: &str) -> Option<&'a Field> {
    notice
        .fields
        .iter()
        .find_map(|(n, f)| (n == name).then_some(f))
}

fn text_field<'a>(notice: &'a Notice, name: &str) -> Option<&'a str> {
    field(notice, name).map(|f| match f {
        Field::Text(text) => text.as_str(),
        other => panic!("{name} is {other:?}"),
    })
}

/// Whether sanitising may remove letters or digits along with a control: an escape
/// sequence, or an IRC colour code's numbers.
fn may_eat_words(body: &str) -> bool {
    body.contains(['\u{1b}', '\u{9b}', '\u{3}', '\u{4}'])
}

fuzz_target!(|input: &[u8]| {
    // A header count and an address, then each header as its name's index, its length and
    // its bytes; the rest is the body.
    let Some((&[count, from], mut data)) = input.split_first_chunk::<2>() else {
        return;
    };
    let mut headers = HeaderMap::new();
    for _ in 0..count % 8 {
        let Some((&[name, len], rest)) = data.split_first_chunk::<2>() else {
            break;
        };
        // Up to twice the bound a header is cut to.
        let len = (usize::from(len) * 2).min(rest.len());
        let (value, rest) = rest.split_at(len);
        data = rest;
        // What hyper would not have let through never reaches the handler.
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(NAMES[usize::from(name) % NAMES.len()], value);
        }
    }
    let body = data;
    let ip: IpAddr = FROM[usize::from(from) % FROM.len()].parse().unwrap();

    let posted = read_post(&headers, body, ip);
    let Ok(text) = std::str::from_utf8(body) else {
        assert_eq!(posted.unwrap_err().code, ErrorCode::InvalidUtf8);
        return;
    };
    let priority = match first(&headers, &["priority", "x-priority", "prio"]) {
        None => Priority::Default,
        Some(p) => match Priority::parse(p) {
            Some(p) => p,
            None => {
                assert_eq!(
                    posted.unwrap_err().code,
                    ErrorCode::InvalidArgument,
                    "{p:?}"
                );
                return;
            }
        },
    };
    let notice = match posted {
        Ok(notice) => notice,
        Err(refused) => {
            assert_eq!(refused.code, ErrorCode::EmptyMessage);
            assert!(
                may_eat_words(text) || !text.contains(char::is_alphanumeric),
                "a body with words was refused as empty: {text:?}"
            );
            return;
        }
    };
    assert!(
        text.contains(|c: char| !c.is_whitespace() && !c.is_control()),
        "posted from a body with nothing printable: {text:?}"
    );
    check_notice(&notice);
    assert_eq!(
        notice.source.as_str(),
        format!("http:{}", ip.to_canonical())
    );
    assert_eq!(
        field(&notice, "priority"),
        Some(&Field::Number(priority as u64))
    );
    let alert = priority >= Priority::High;
    assert_eq!(notice.kind == PostKind::Alert, alert, "{priority:?}");

    let plain = notice.text.plain();
    match text_field(&notice, "title") {
        Some(title) => {
            assert!(
                first(&headers, &["title", "x-title"]).is_some(),
                "a title from nowhere"
            );
            assert!(!title.trim().is_empty(), "an empty title");
            assert!(title.chars().count() <= HTTP_HEADER_CHARS, "{title:?}");
            assert!(
                plain.starts_with(&format!("{title}: ")),
                "the text does not start with the title: {plain:?}"
            );
        }
        None => assert!(
            first(&headers, &["title", "x-title"])
                .map(|t| t.chars().take(HTTP_HEADER_CHARS).collect::<String>())
                .is_none_or(|t| may_eat_words(&t) || !t.contains(char::is_alphanumeric)),
            "a title with words was dropped"
        ),
    }
    if let Some(tags) = text_field(&notice, "tags") {
        assert!(first(&headers, &["tags", "x-tags", "tag"]).is_some());
        for tag in tags.split(',') {
            assert!(
                !tag.is_empty() && tag.trim() == tag,
                "a tag empty or untrimmed: {tags:?}"
            );
        }
    }
    // Nothing of the body is lost silently: every word of it is in the text.
    if !may_eat_words(text) {
        for word in text
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| !w.is_empty())
        {
            assert!(plain.contains(word), "{word:?} lost from {plain:?}");
        }
    }
});
