//! Events as lines for people: a local-time clock, then the same markers as the server's
//! text protocol (`#room <nick> text`, `#room *** …`, `(private) <nick> text`, `ERROR …`).
//!
//! Everything that came from the server is sanitised again before it is printed: the client
//! does not trust the server with its user's terminal any more than the server trusts
//! clients with each other's.

use std::fmt::Write as _;

use anstyle::{AnsiColor, Color, Effects, Style};
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

use super::wire::{Post, ServerEvent, StatusItem};
use crate::hub::sanitize;

/// How much styling lines get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Styling {
    /// Colours and emphasis: a terminal.
    Full,
    /// Emphasis (bold, reverse) but no colour: a terminal with `NO_COLOR` set.
    NoColor,
    /// No escape code at all: a pipe or a file.
    Plain,
}

impl Styling {
    /// For an interactive terminal: [`Styling::NoColor`] when `NO_COLOR` is set and not
    /// empty (no-color.org), else [`Styling::Full`].
    pub fn for_terminal() -> Styling {
        match std::env::var_os("NO_COLOR") {
            Some(v) if !v.is_empty() => Styling::NoColor,
            _ => Styling::Full,
        }
    }
}

/// How a room message is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// Said just now.
    Live,
    /// Replayed on joining or by `/history`.
    History,
    /// Said while this client was disconnected, shown after reconnecting.
    Missed,
}

/// Nick colours; a nick always gets the same one (a hash of its case-folded form). Red is
/// left for errors and alerts.
const NICK_COLOURS: &[AnsiColor] = &[
    AnsiColor::Green,
    AnsiColor::Yellow,
    AnsiColor::Blue,
    AnsiColor::Magenta,
    AnsiColor::Cyan,
    AnsiColor::BrightGreen,
    AnsiColor::BrightYellow,
    AnsiColor::BrightBlue,
    AnsiColor::BrightMagenta,
    AnsiColor::BrightCyan,
];

const DIM: Style = Style::new().effects(Effects::DIMMED);
const ROOM: Style = Style::new().fg_color(Some(Color::Ansi(AnsiColor::Cyan)));
const NOTICE: Style = Style::new().fg_color(Some(Color::Ansi(AnsiColor::BrightBlack)));
const CLIENT: Style = Style::new().fg_color(Some(Color::Ansi(AnsiColor::Yellow)));
const ERROR: Style = Style::new()
    .fg_color(Some(Color::Ansi(AnsiColor::Red)))
    .effects(Effects::BOLD);
/// An alert of default priority (3): red, not bold.
const ALERT: Style = Style::new().fg_color(Some(Color::Ansi(AnsiColor::Red)));
const PRIVATE: Style = Style::new()
    .fg_color(Some(Color::Ansi(AnsiColor::Magenta)))
    .effects(Effects::BOLD);
/// A line that names you: it must stand out even without colour.
const MENTION: Style = Style::new()
    .fg_color(Some(Color::Ansi(AnsiColor::BrightYellow)))
    .effects(Effects::BOLD.insert(Effects::INVERT));
const MISSED: Style = Style::new().fg_color(Some(Color::Ansi(AnsiColor::Yellow)));

/// Turns events into lines, each without a trailing newline.
pub struct View {
    styling: Styling,
    zone: TimeZone,
}

impl View {
    pub fn new(styling: Styling) -> View {
        View {
            styling,
            zone: TimeZone::system(),
        }
    }

    fn paint(&self, style: Style, text: &str) -> String {
        let style = match self.styling {
            Styling::Full => style,
            Styling::NoColor => Style::new().effects(style.get_effects()),
            Styling::Plain => Style::new(),
        };
        if style == Style::new() {
            text.to_string()
        } else {
            format!("{style}{text}{style:#}")
        }
    }

    /// Local `HH:MM`, with the date in front when it is not today; `ts` in milliseconds
    /// since the Unix epoch, `None` for now.
    fn clock(&self, ts: Option<u64>) -> String {
        let now = Zoned::now().with_time_zone(self.zone.clone());
        let when = ts
            .and_then(|ms| i64::try_from(ms).ok())
            .and_then(|ms| Timestamp::from_millisecond(ms).ok())
            .map_or_else(|| now.clone(), |t| t.to_zoned(self.zone.clone()));
        let text = if when.date() == now.date() {
            when.strftime("%H:%M").to_string()
        } else {
            when.strftime("%Y-%m-%d %H:%M").to_string()
        };
        self.paint(DIM, &text)
    }

    fn nick(&self, nick: &str) -> String {
        let nick = sanitize(nick);
        let hash = nick.to_lowercase().bytes().fold(0x811c_9dc5_u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        let colour = NICK_COLOURS[hash as usize % NICK_COLOURS.len()];
        self.paint(Style::new().fg_color(Some(colour.into())), &nick)
    }

    /// A room name in its colour.
    pub fn room_name(&self, room: &str) -> String {
        self.paint(ROOM, &sanitize(room))
    }

    /// `time room rest`, or `time rest` without a room.
    fn line(&self, ts: Option<u64>, room: Option<&str>, rest: &str) -> String {
        match room {
            Some(room) => format!("{} {} {rest}", self.clock(ts), self.room_name(room)),
            None => format!("{} {rest}", self.clock(ts)),
        }
    }

    /// A message in a room, by a person or a feed.
    pub fn post(&self, room: &str, post: &Post, mark: Mark, me: &str) -> String {
        let body = self.post_body(post, me);
        let body = match mark {
            Mark::Live => body,
            Mark::History => format!("{} {body}", self.paint(DIM, "[history]")),
            Mark::Missed => format!("{} {body}", self.paint(MISSED, "[missed]")),
        };
        self.line(Some(post.ts), Some(room), &body)
    }

    /// `<nick> text`, `* nick text`, `-nick- text` (an IRC notice), `>>> [source] text` or
    /// `!!! [source] text`.
    fn post_body(&self, post: &Post, me: &str) -> String {
        let text = sanitize(&post.text);
        match (&post.from, &post.source) {
            (Some(from), _) => {
                let mentioned = !names(from, me) && mentions(&text, me);
                let text = if mentioned {
                    self.paint(MENTION, &text)
                } else {
                    text
                };
                if post.action {
                    format!("* {} {text}", self.nick(from))
                } else if post.notice {
                    format!("-{}- {text}", self.nick(from))
                } else {
                    format!("<{}> {text}", self.nick(from))
                }
            }
            (None, source) => {
                let source = sanitize(source.as_deref().unwrap_or("feed"));
                // By priority: 4-5 (or none given) loud, 3 plain, 1-2 dimmed.
                let quiet = matches!(post.priority, Some(1 | 2));
                if post.kind.as_deref() == Some("alert") {
                    let style = match post.priority {
                        Some(3) => ALERT,
                        Some(1 | 2) => DIM,
                        _ => ERROR,
                    };
                    self.paint(style, &format!("!!! [{source}] {text}"))
                } else if quiet {
                    self.paint(DIM, &format!(">>> [{source}] {text}"))
                } else {
                    format!("{} [{source}] {text}", self.paint(NOTICE, ">>>"))
                }
            }
        }
    }

    /// A line of ours as sent, shown since the server does not echo it.
    pub fn own(&self, room: &str, text: &str, action: bool, me: &str) -> String {
        let nick = self.paint(Style::new().bold(), &sanitize(me));
        let text = sanitize(text);
        let body = if action {
            format!("* {nick} {text}")
        } else {
            format!("<{nick}> {text}")
        };
        self.line(None, Some(room), &body)
    }

    /// A private message of ours as sent.
    pub fn own_private(&self, to: &str, text: &str, me: &str) -> String {
        let marker = self.paint(PRIVATE, &format!("(private to {})", sanitize(to)));
        let nick = self.paint(Style::new().bold(), &sanitize(me));
        self.line(None, None, &format!("{marker} <{nick}> {}", sanitize(text)))
    }

    /// Something the client itself has to say (disconnected, reconnected, …).
    pub fn client(&self, text: &str) -> String {
        self.line(None, None, &self.paint(CLIENT, &format!("*** {text}")))
    }

    /// A mistake of the user's that the client caught before sending anything.
    pub fn refusal(&self, text: &str) -> String {
        self.line(None, None, &self.paint(ERROR, &format!("ERROR {text}")))
    }

    pub fn help(&self) -> Vec<String> {
        super::help::lines()
            .iter()
            .map(|l| self.line(None, None, &format!("*** {l}")))
            .collect()
    }

    /// The lines an event shows; none for events that show nothing by themselves (acks,
    /// welcome) or that the caller shows with [`View::post`] (messages and history).
    pub fn event(&self, event: &ServerEvent, me: &str) -> Vec<String> {
        let notice = |room: Option<&str>, text: String| {
            let text = format!("*** {text}");
            self.line(None, room, &self.paint(NOTICE, &text))
        };
        match event {
            ServerEvent::Message { room, post } => vec![self.post(room, post, Mark::Live, me)],
            ServerEvent::Notice { room, post } | ServerEvent::Alert { room, post } => {
                let kind = match event {
                    ServerEvent::Alert { .. } => "alert",
                    _ => "notice",
                };
                let post = Post {
                    kind: Some(kind.to_string()),
                    ..post.clone()
                };
                vec![self.post(room, &post, Mark::Live, me)]
            }
            ServerEvent::History { room, messages } => messages
                .iter()
                .map(|p| self.post(room, p, Mark::History, me))
                .collect(),
            ServerEvent::Private {
                ts,
                from,
                text,
                notice,
                ..
            } => {
                let marker = self.paint(PRIVATE, "(private)");
                let text = self.paint(Style::new().bold(), &sanitize(text));
                let from = match notice {
                    true => format!("-{}-", self.nick(from)),
                    false => format!("<{}>", self.nick(from)),
                };
                vec![self.line(Some(*ts), None, &format!("{marker} {from} {text}"))]
            }
            ServerEvent::Join {
                room,
                you: true,
                members,
                count,
                ..
            } => {
                let mut here = members
                    .iter()
                    .map(|m| sanitize(m))
                    .collect::<Vec<_>>()
                    .join(", ");
                if *count > members.len() {
                    let _ = write!(here, " and {} more", count - members.len());
                }
                vec![notice(Some(room), format!("you joined; here now: {here}"))]
            }
            ServerEvent::Join { room, nick, .. } => {
                vec![notice(Some(room), format!("{} joined", sanitize(nick)))]
            }
            ServerEvent::Leave {
                room,
                nick,
                you,
                reason,
                message,
            } => {
                let who = if *you { "you".into() } else { sanitize(nick) };
                let text = if *you && reason == "left" {
                    format!("{who} left")
                } else {
                    format!("{who} left ({})", why(reason, message.as_deref()))
                };
                vec![notice(Some(room), text)]
            }
            ServerEvent::Nick { old, new, you } => {
                let text = if *you {
                    format!("you are now known as {}", sanitize(new))
                } else {
                    format!("{} is now known as {}", sanitize(old), sanitize(new))
                };
                vec![notice(None, text)]
            }
            ServerEvent::Users { room, users } => {
                let names: Vec<String> = users.iter().map(|u| sanitize(u)).collect();
                vec![notice(
                    Some(room),
                    format!("{} here: {}", names.len(), names.join(", ")),
                )]
            }
            ServerEvent::Rooms { rooms } => {
                let list: Vec<String> = rooms
                    .iter()
                    .map(|r| format!("{} ({})", sanitize(&r.name), r.members))
                    .collect();
                vec![notice(None, format!("rooms: {}", list.join(", ")))]
            }
            ServerEvent::Status { room, items } => {
                if items.is_empty() {
                    return vec![notice(Some(room), "no feed reports here".into())];
                }
                items.iter().map(|item| self.status(room, item)).collect()
            }
            ServerEvent::Error { code, message } => {
                let text = format!("ERROR {}: {}", sanitize(code), sanitize(message));
                vec![self.line(None, None, &self.paint(ERROR, &text))]
            }
            ServerEvent::Gap {
                room,
                from,
                to,
                reason,
            } => {
                let what = match reason.as_deref() {
                    Some("not_relayed") => {
                        "were said on another node during a cluster outage and not relayed"
                    }
                    _ => "were missed and are no longer kept",
                };
                vec![notice(
                    Some(room),
                    format!("messages {from} to {to} {what}"),
                )]
            }
            ServerEvent::Bye { reason, message } => {
                vec![notice(
                    None,
                    format!("goodbye ({})", why(reason, message.as_deref())),
                )]
            }
            ServerEvent::Topic {
                room,
                text,
                by,
                changed,
            } => {
                let by = by.as_deref().map(sanitize).unwrap_or_default();
                let text = match (text, changed) {
                    (Some(text), true) => format!("{by} set the topic: {}", sanitize(text)),
                    (Some(text), false) => format!("topic: {} (set by {by})", sanitize(text)),
                    (None, true) => format!("{by} cleared the topic"),
                    (None, false) => "no topic is set".to_string(),
                };
                vec![notice(Some(room), text)]
            }
            ServerEvent::Kick {
                room,
                nick,
                by,
                reason,
            } => {
                let who = if nick == me {
                    "you were".into()
                } else {
                    format!("{} was", sanitize(nick))
                };
                let mut text = format!("{who} kicked by {}", sanitize(by));
                if let Some(reason) = reason {
                    let _ = write!(text, " ({})", sanitize(reason));
                }
                vec![notice(Some(room), text)]
            }
            ServerEvent::Mode { room, modes, .. } if modes.is_empty() => {
                vec![notice(Some(room), "no mode changed".into())]
            }
            ServerEvent::Mode { room, by, modes } => {
                let text = format!("{} set mode {}", sanitize(by), sanitize(modes));
                vec![notice(Some(room), text)]
            }
            ServerEvent::Modes { room, modes } => {
                vec![notice(Some(room), format!("modes: {}", sanitize(modes)))]
            }
            ServerEvent::Bans { room, bans } if bans.is_empty() => {
                vec![notice(Some(room), "nobody is banned".into())]
            }
            ServerEvent::Bans { room, bans } => bans
                .iter()
                .map(|b| {
                    let text = format!("banned: {} (by {})", sanitize(&b.mask), sanitize(&b.by));
                    notice(Some(room), text)
                })
                .collect(),
            ServerEvent::Invite {
                room,
                nick,
                by,
                you,
            } => {
                let text = if *you {
                    format!(
                        "{} invites you; /join {} to go in",
                        sanitize(by),
                        sanitize(room)
                    )
                } else {
                    format!("{} is invited", sanitize(nick))
                };
                vec![notice(Some(room), text)]
            }
            ServerEvent::Away {
                you: true, message, ..
            } => {
                let text = match message {
                    Some(m) => format!("you are away: {}", sanitize(m)),
                    None => "you are back".to_string(),
                };
                vec![notice(None, text)]
            }
            ServerEvent::Away { nick, message, .. }
            | ServerEvent::AwayChanged {
                nick,
                message: message @ Some(_),
            } => {
                let message = message.as_deref().map(sanitize).unwrap_or_default();
                vec![notice(
                    None,
                    format!("{} is away: {message}", sanitize(nick)),
                )]
            }
            ServerEvent::AwayChanged {
                nick,
                message: None,
            } => {
                vec![notice(None, format!("{} is back", sanitize(nick)))]
            }
            ServerEvent::Whois {
                nick,
                rooms,
                away,
                account,
                idle_ms,
            } => {
                let mut text = sanitize(nick);
                if let Some(account) = account {
                    let _ = write!(text, " (account {})", sanitize(account));
                }
                let rooms: Vec<String> = rooms
                    .iter()
                    .map(|r| format!("{}{}", sanitize(&r.prefix), sanitize(&r.name)))
                    .collect();
                if rooms.is_empty() {
                    text.push_str(" is in no room you can see");
                } else {
                    let _ = write!(text, " is in {}", rooms.join(" "));
                }
                if let Some(idle) = idle_ms {
                    let _ = write!(text, "; idle {} s", idle / 1000);
                }
                if let Some(away) = away {
                    let _ = write!(text, "; away: {}", sanitize(away));
                }
                vec![notice(None, text)]
            }
            ServerEvent::Census { users, peak, rooms } => vec![notice(
                None,
                format!(
                    "{users} connected (at most {peak}), {rooms} room{}",
                    if *rooms == 1 { "" } else { "s" }
                ),
            )],
            ServerEvent::Account { message, .. } => vec![notice(None, sanitize(message))],
            ServerEvent::Welcome { .. } | ServerEvent::Ack { .. } | ServerEvent::Other => {
                Vec::new()
            }
        }
    }

    /// A feed's report in `/status` (or on joining): what it says now, marked `---` as in
    /// the text protocol, so that a check long DOWN does not read as a new alert each time
    /// someone looks; a report of something wrong is in red.
    fn status(&self, room: &str, item: &StatusItem) -> String {
        let body = format!("--- [{}] {}", sanitize(&item.source), sanitize(&item.text));
        let body = if item.kind == "alert" {
            self.paint(ALERT, &body)
        } else {
            body
        };
        self.line(None, Some(room), &body)
    }
}

/// A reason code as words: `connection_lost` → `connection lost`, with the user's
/// parting words after a colon.
fn why(reason: &str, message: Option<&str>) -> String {
    let words = sanitize(reason).replace('_', " ");
    match message {
        Some(m) => format!("{words}: {}", sanitize(m)),
        None => words,
    }
}

/// Whether `a` and `b` are the same nick (case-insensitively).
fn names(a: &str, b: &str) -> bool {
    a.to_lowercase() == b.to_lowercase()
}

/// Whether `text` names `nick` as a word of its own, case-insensitively: `ana:` and
/// `@Ana` do, `banana` does not.
pub fn mentions(text: &str, nick: &str) -> bool {
    if nick.is_empty() {
        return false;
    }
    let nick_chars: Vec<char> = nick.to_lowercase().chars().collect();
    let text_chars: Vec<char> = text.to_lowercase().chars().collect();
    let part_of_name = |c: &char| c.is_alphanumeric() || matches!(c, '-' | '_');
    text_chars
        .windows(nick_chars.len())
        .enumerate()
        .any(|(at, window)| {
            window == nick_chars.as_slice()
                && (at == 0 || !part_of_name(&text_chars[at - 1]))
                && text_chars
                    .get(at + nick_chars.len())
                    .is_none_or(|c| !part_of_name(c))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(from: &str, text: &str) -> Post {
        Post {
            seq: None,
            id: 1,
            ts: 1_795_237_200_000,
            from: Some(from.into()),
            source: None,
            text: text.into(),
            action: false,
            notice: false,
            kind: None,
            priority: None,
        }
    }

    /// The line without its leading clock, which depends on the time zone and the day.
    fn body(line: &str) -> &str {
        let (_, rest) = line.split_once(' ').unwrap();
        if rest.as_bytes().get(2) == Some(&b':') {
            rest.split_once(' ').unwrap().1
        } else {
            rest
        }
    }

    #[test]
    fn plain_lines_read_like_the_text_protocol() {
        let view = View::new(Styling::Plain);
        let line = view.post("#lobby", &post("ana", "hola"), Mark::Live, "bob");
        assert_eq!(body(&line), "#lobby <ana> hola");
        let line = view.post("#lobby", &post("ana", "hola"), Mark::Missed, "bob");
        assert_eq!(body(&line), "#lobby [missed] <ana> hola");
        let lines = view.event(
            &ServerEvent::Leave {
                room: "#ops".into(),
                nick: "ana".into(),
                you: false,
                reason: "quit".into(),
                message: Some("lunch".into()),
            },
            "bob",
        );
        assert_eq!(body(&lines[0]), "#ops *** ana left (quit: lunch)");
        assert!(!lines[0].contains('\x1b'));
    }

    #[test]
    fn topics_kicks_and_modes_read_like_the_text_protocol() {
        let view = View::new(Styling::Plain);
        let shown = |event: ServerEvent| body(&view.event(&event, "bob")[0]).to_string();
        let topic = |text: Option<&str>, changed| ServerEvent::Topic {
            room: "#ops".into(),
            text: text.map(String::from),
            by: Some("ana".into()),
            changed,
        };
        assert_eq!(
            shown(topic(Some("deploys"), false)),
            "#ops *** topic: deploys (set by ana)"
        );
        assert_eq!(
            shown(topic(Some("deploys"), true)),
            "#ops *** ana set the topic: deploys"
        );
        assert_eq!(shown(topic(None, true)), "#ops *** ana cleared the topic");
        let kick = ServerEvent::Kick {
            room: "#ops".into(),
            nick: "bob".into(),
            by: "ana".into(),
            reason: Some("spam".into()),
        };
        assert_eq!(shown(kick), "#ops *** you were kicked by ana (spam)");
        let mode = ServerEvent::Mode {
            room: "#ops".into(),
            by: "ana".into(),
            modes: "+o cai".into(),
        };
        assert_eq!(shown(mode), "#ops *** ana set mode +o cai");
    }

    #[test]
    fn text_from_the_server_cannot_reach_the_terminal_raw() {
        let view = View::new(Styling::Plain);
        let line = view.post(
            "#lobby",
            &post("ana\x1b[2J", "hi\x1b]0;pwned\x07 there"),
            Mark::Live,
            "bob",
        );
        assert_eq!(body(&line), "#lobby <ana> hi there");
    }

    #[test]
    fn a_nick_keeps_its_colour_and_no_color_keeps_only_emphasis() {
        let full = View::new(Styling::Full);
        assert_eq!(
            full.nick("Begoña"),
            full.nick("BEGOÑA").replace("BEGOÑA", "Begoña")
        );
        assert!(full.nick("ana").contains("\x1b["));
        let no_color = View::new(Styling::NoColor);
        assert_eq!(no_color.nick("ana"), "ana");
        let mention = no_color.post("#lobby", &post("ana", "bob: look"), Mark::Live, "bob");
        assert!(
            mention.contains("\x1b[1;7m") || mention.contains("\x1b[1m\x1b[7m"),
            "{mention:?}"
        );
        assert!(!mention.contains("\x1b[3"), "no colour: {mention:?}");
    }

    #[test]
    fn feed_posts_are_styled_by_priority() {
        let view = View::new(Styling::Full);
        let feed = |kind: &str, priority: Option<u8>| {
            let post = Post {
                from: None,
                source: Some("check:db".into()),
                kind: Some(kind.into()),
                priority,
                ..post("x", "db is DOWN")
            };
            view.post("#alerts", &post, Mark::Live, "bob")
        };
        let urgent = feed("alert", Some(5));
        assert!(
            urgent.contains(&format!("{ERROR}!!! [check:db] db is DOWN")),
            "{urgent:?}"
        );
        assert_eq!(feed("alert", None), feed("alert", Some(4)));
        let plain = feed("alert", Some(3));
        assert!(plain.contains(&format!("{ALERT}!!!")), "{plain:?}");
        let low = feed("alert", Some(2));
        assert!(low.contains(&format!("{DIM}!!!")), "{low:?}");
        let quiet = feed("notice", Some(1));
        assert!(quiet.contains(&format!("{DIM}>>>")), "{quiet:?}");
        let notice = feed("notice", Some(3));
        assert!(notice.contains(&format!("{NOTICE}>>>")), "{notice:?}");
    }

    #[test]
    fn mentions_are_whole_words() {
        assert!(mentions("hey Ana, look", "ana"));
        assert!(mentions("@ana", "ana"));
        assert!(mentions("ana", "ana"));
        assert!(!mentions("banana", "ana"));
        assert!(!mentions("ana_b is here", "ana"));
        assert!(mentions("¿Begoña?", "begoña"));
    }
}
