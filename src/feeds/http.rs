//! HTTP publish: what a `POST /rooms/NAME` becomes. The listener itself is a transport in
//! `server/http/`; this decides what is posted and whether the sender may post now.
//!
//! The body is the text, ntfy-style headers say the rest: `Title` (shown before the text),
//! `Priority` (1–5 or min, low, default, high, urgent; high and urgent are alerts, the
//! rest notices) and `Tags` (comma-separated, for programs). The post comes from `http:IP`.
//! Text is sanitised like a chat line and its line breaks become spaces. Each address has
//! an allowance ([`HTTP_BURST`] posts, refilled at [`HTTP_RATE`] a second).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use super::udp::Allowance;
use crate::hub::{MessageText, Notice, PostKind, Source};
use crate::limits::{HTTP_BURST, HTTP_HEADER_CHARS, HTTP_MAX_SOURCES, HTTP_RATE};

/// How loud a post is, as ntfy names it; ordered from quietest to loudest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    Min = 1,
    Low = 2,
    Default = 3,
    High = 4,
    Urgent = 5,
}

impl Priority {
    /// `1`–`5`, or a name (`min`, `low`, `default`, `high`, `urgent`, and ntfy's `max` for
    /// urgent), in any case.
    pub fn parse(input: &str) -> Option<Priority> {
        Some(match input.trim().to_ascii_lowercase().as_str() {
            "1" | "min" => Priority::Min,
            "2" | "low" => Priority::Low,
            "3" | "default" => Priority::Default,
            "4" | "high" => Priority::High,
            "5" | "urgent" | "max" => Priority::Urgent,
            _ => return None,
        })
    }

    /// High and urgent posts are alerts; the rest notices.
    pub fn kind(self) -> PostKind {
        if self >= Priority::High {
            PostKind::Alert
        } else {
            PostKind::Notice
        }
    }
}

/// A post as the request gave it, before sanitising.
#[derive(Debug, Clone, Default)]
pub struct Publish<'a> {
    pub body: &'a str,
    pub title: Option<&'a str>,
    pub priority: Option<Priority>,
    pub tags: Option<&'a str>,
}

impl Publish<'_> {
    /// The notice to post as from `http:IP`, or `None` when nothing printable is left of
    /// the body. The JSON event carries `title`, `priority` and `tags` beside the text;
    /// the text protocol shows the title before the text.
    pub fn notice(&self, from: IpAddr) -> Option<Notice> {
        let body = one_line(self.body)?;
        let title = self
            .title
            .and_then(|t| one_line(&cut(t)))
            .map(|t| t.plain().into_owned());
        let text = match &title {
            Some(title) => MessageText::new(&format!("{title}: {}", body.as_str()))?,
            None => body,
        };
        let priority = self.priority.unwrap_or(Priority::Default);
        let source = Source::new(&format!("http:{}", from.to_canonical()))?;
        let mut notice =
            Notice::new(source, priority.kind(), text).with("priority", priority as u64);
        if let Some(title) = title {
            notice = notice.with("title", title);
        }
        let tags: Vec<String> = self
            .tags
            .map(cut)
            .iter()
            .flat_map(|t| t.split(','))
            .filter_map(one_line)
            .map(|t| t.plain().into_owned())
            .collect();
        if !tags.is_empty() {
            notice = notice.with("tags", tags.join(","));
        }
        Some(notice)
    }
}

/// `text`'s lines, trimmed and joined with spaces, sanitised.
fn one_line(text: &str) -> Option<MessageText> {
    let joined: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    MessageText::new(&joined.join(" "))
}

fn cut(header: &str) -> String {
    header.chars().take(HTTP_HEADER_CHARS).collect()
}

/// Each address's publish allowance (a token bucket, as for UDP datagrams).
pub struct Allowances {
    rate: u32,
    burst: u32,
    sources: Mutex<HashMap<IpAddr, Allowance>>,
}

/// The address is over its allowance, or too many addresses are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooMany;

impl Default for Allowances {
    fn default() -> Self {
        Allowances::new(HTTP_RATE, HTTP_BURST)
    }
}

impl Allowances {
    /// `rate` posts a second after a burst of `burst`; a rate of 0 allows everything.
    pub fn new(rate: u32, burst: u32) -> Allowances {
        Allowances {
            rate,
            burst,
            sources: Mutex::default(),
        }
    }

    /// Spends one post of `ip`'s allowance.
    pub fn spend(&self, ip: IpAddr, now: Instant) -> Result<(), TooMany> {
        if self.rate == 0 {
            return Ok(());
        }
        let (rate, burst) = (f64::from(self.rate), f64::from(self.burst.max(1)));
        let ip = ip.to_canonical();
        let mut sources = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        if !sources.contains_key(&ip) && sources.len() >= HTTP_MAX_SOURCES {
            // Forget the addresses whose allowance is whole again: they lose nothing.
            sources.retain(|_, a| {
                a.tokens + now.saturating_duration_since(a.last).as_secs_f64() * rate < burst
            });
            if sources.len() >= HTTP_MAX_SOURCES {
                return Err(TooMany);
            }
        }
        let allowance = sources
            .entry(ip)
            .or_insert_with(|| Allowance::full(burst, now));
        if allowance.spend(rate, burst, now) {
            Ok(())
        } else {
            Err(TooMany)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::Field;
    use std::time::Duration;

    #[test]
    fn priorities_parse_as_ntfy_names_them() {
        assert_eq!(Priority::parse("HIGH"), Some(Priority::High));
        assert_eq!(Priority::parse(" 5 "), Some(Priority::Urgent));
        assert_eq!(Priority::parse("max"), Some(Priority::Urgent));
        assert_eq!(Priority::parse("1"), Some(Priority::Min));
        assert_eq!(Priority::parse("6"), None);
        assert_eq!(Priority::parse("loud"), None);
        assert_eq!(Priority::High.kind(), PostKind::Alert);
        assert_eq!(Priority::Urgent.kind(), PostKind::Alert);
        assert_eq!(Priority::Default.kind(), PostKind::Notice);
        assert_eq!(Priority::Min.kind(), PostKind::Notice);
    }

    #[test]
    fn a_post_is_one_sanitised_line_with_its_details() {
        let ip: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        let notice = Publish {
            body: "backup\r\n done\x1b[31m\n",
            title: Some("nightly\n"),
            priority: Some(Priority::High),
            tags: Some("db, ,disk"),
        }
        .notice(ip)
        .unwrap();
        assert_eq!(notice.source.as_str(), "http:192.0.2.7");
        assert_eq!(notice.kind, PostKind::Alert);
        assert_eq!(notice.text.as_str(), "nightly: backup done");
        let has =
            |name: &str, field: Field| notice.fields.iter().any(|(n, f)| n == name && *f == field);
        assert!(has("priority", Field::Number(4)));
        assert!(has("title", Field::from("nightly")));
        assert!(has("tags", Field::from("db,disk")));
        let empty = Publish {
            body: " \n\u{7}",
            ..Publish::default()
        };
        assert!(empty.notice(ip).is_none());
    }

    #[test]
    fn each_address_has_its_own_allowance() {
        let allowances = Allowances::new(1, 2);
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "::1".parse().unwrap());
        let now = Instant::now();
        assert_eq!(allowances.spend(a, now), Ok(()));
        assert_eq!(allowances.spend(a, now), Ok(()));
        assert_eq!(allowances.spend(a, now), Err(TooMany));
        assert_eq!(allowances.spend(b, now), Ok(()));
        assert_eq!(allowances.spend(a, now + Duration::from_secs(1)), Ok(()));
        assert!(Allowances::new(0, 0).spend(a, now).is_ok());
    }
}
