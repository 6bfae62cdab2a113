//! The codec of `nc`, telnet and programs: lines of text, or of JSON after a `hello`.

use std::time::Duration;

use bytes::Bytes;

use super::framing::{Frame, Framer};
use super::not_http::{NOT_HTTP_LINE, is_http_request};
use super::{Codec, Incoming, JSON, Refusal, Sink, TEXT, parse_json, parse_text};
use crate::hub::{Command, Encode, ErrorCode, Request, RoomName};
use crate::limits::LOBBY_GRACE;

/// Lines, each one request: in the text format until the client sends a JSON `hello`, in
/// JSON lines from then on (docs/protocol.md).
#[derive(Debug)]
pub struct LineCodec {
    framer: Framer,
    speaks: Speaks,
}

/// What the client on a line connection has shown it speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Speaks {
    /// No line yet: a person who has not typed, or a program about to say `hello`. The
    /// session waits outside `#lobby` meanwhile, so a program never passes through it.
    Undecided,
    /// A person (a first line other than `hello`, or silence): in `#lobby`, as promised.
    Text,
    /// A program: JSON lines, in the rooms its `hello` named.
    Json,
    /// A program whose first line is a `hello` made before it connected (from a
    /// WebSocket's URL): JSON lines, and in no room until that hello names them.
    Hello,
}

impl LineCodec {
    /// A codec for a new connection, refusing lines over `max_line_bytes`.
    pub fn new(max_line_bytes: usize) -> LineCodec {
        LineCodec {
            framer: Framer::new(max_line_bytes),
            speaks: Speaks::Undecided,
        }
    }

    /// A codec that speaks JSON from the start, greeting included (a WebSocket: its
    /// clients are programs and pages, never a person at `nc`).
    pub fn json(max_line_bytes: usize) -> LineCodec {
        LineCodec {
            framer: Framer::new(max_line_bytes),
            speaks: Speaks::Json,
        }
    }

    /// [`LineCodec::json`] for a connection whose first line is a `hello` made for it (a
    /// WebSocket's `?nick=…&room=…`): its session starts in the rooms that hello names,
    /// not in `#lobby` as a guest first.
    pub fn json_hello(max_line_bytes: usize) -> LineCodec {
        LineCodec {
            framer: Framer::new(max_line_bytes),
            speaks: Speaks::Hello,
        }
    }
}

impl Codec for LineCodec {
    fn decode(&mut self, bytes: &[u8], sink: &mut impl Sink) {
        let LineCodec { framer, speaks } = self;
        let max = framer.max();
        framer.feed(bytes, |frame| line(frame, max, speaks, sink));
    }

    fn finish(&mut self, sink: &mut impl Sink) {
        let LineCodec { framer, speaks } = self;
        let max = framer.max();
        framer.finish(|frame| line(frame, max, speaks, sink));
    }

    fn format(&self) -> &'static dyn Encode {
        if matches!(self.speaks, Speaks::Json | Speaks::Hello) {
            &JSON
        } else {
            &TEXT
        }
    }

    fn undecided(&self) -> Option<Duration> {
        (self.speaks == Speaks::Undecided).then_some(LOBBY_GRACE)
    }

    fn lobby_at_once(&self) -> bool {
        matches!(self.speaks, Speaks::Text | Speaks::Json)
    }

    fn silent_start(&mut self, sink: &mut impl Sink) {
        if self.speaks == Speaks::Undecided {
            self.speaks = Speaks::Text;
            sink.incoming(join_lobby());
        }
    }
}

/// What a person's session starts with, once the codec knows it is one.
fn join_lobby() -> Incoming {
    Incoming::Request(Request::from(Command::Join(RoomName::lobby())))
}

/// Carries out one line; `speaks` says what the client has shown it speaks so far.
fn line(frame: Frame<'_>, max: usize, speaks: &mut Speaks, sink: &mut impl Sink) {
    let line = match frame {
        Frame::TooLong => {
            return sink.refuse(Refusal::new(
                ErrorCode::LineTooLong,
                format!("lines are limited to {max} bytes; the rest of that line was discarded"),
            ));
        }
        Frame::Line(line) => line,
    };
    let Ok(line) = std::str::from_utf8(line) else {
        return sink.refuse(Refusal::new(
            ErrorCode::InvalidUtf8,
            "that line is not valid UTF-8 and was dropped; set your terminal to UTF-8",
        ));
    };
    if line.trim().is_empty() || !sink.admit() {
        return;
    }
    if *speaks == Speaks::Undecided && is_http_request(line) {
        // A browser or HTTP client: nothing it sent is said, in the lobby or anywhere.
        return sink.incoming(Incoming::Close(Bytes::from_static(NOT_HTTP_LINE)));
    }
    let parsed = if matches!(*speaks, Speaks::Json | Speaks::Hello) {
        parse_json(line)
    } else {
        parse_text(line)
    };
    match parsed {
        Ok(incoming @ Incoming::Hello { .. }) => {
            *speaks = Speaks::Json;
            sink.speak(&JSON);
            sink.incoming(incoming);
        }
        parsed => {
            if *speaks == Speaks::Undecided {
                // A person's first line: the lobby first, then what they typed there.
                *speaks = Speaks::Text;
                sink.incoming(join_lobby());
            }
            match parsed {
                Ok(incoming) => sink.incoming(incoming),
                Err(refusal) => sink.refuse(refusal),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a codec handed over, as words.
    #[derive(Default)]
    struct Record {
        seen: Vec<String>,
        admit: usize,
    }

    impl Sink for Record {
        fn admit(&mut self) -> bool {
            if self.admit == 0 {
                self.seen.push("flood".into());
                return false;
            }
            self.admit -= 1;
            true
        }
        fn incoming(&mut self, incoming: Incoming) {
            self.seen.push(match incoming {
                Incoming::Request(r) => match r.command {
                    Command::Say { text, .. } => format!("say {text}"),
                    Command::Join(room) => format!("join {room}"),
                    other => format!("{other:?}"),
                },
                Incoming::Hello { steps, .. } => format!("hello {}", steps.len()),
                other => format!("{other:?}"),
            });
        }
        fn refuse(&mut self, refusal: Refusal) {
            self.seen.push(refusal.code.as_str().to_string());
        }
        fn speak(&mut self, format: &'static dyn Encode) {
            let json = format.key() == JSON.key();
            self.seen.push(format!("speak json={json}"));
        }
        fn nick(&self) -> Option<crate::hub::Nick> {
            None
        }
    }

    #[test]
    fn lines_switch_to_json_on_hello_and_are_bounded_and_counted() {
        let mut codec = LineCodec::new(64);
        let mut sink = Record {
            admit: 4,
            ..Record::default()
        };
        assert_eq!(codec.format().key(), TEXT.key());
        let long = "x".repeat(65);
        let mut input = format!("hi\n\n{long}\n").into_bytes();
        input.extend_from_slice(b"\xff\n");
        input.extend_from_slice(
            b"{\"type\":\"hello\",\"nick\":\"ana\"}\n{\"type\":\"say\",\"text\":\"yo\"}\nlate\n",
        );
        // Split anywhere, the same units come out.
        let (a, b) = input.split_at(7);
        codec.decode(a, &mut sink);
        codec.decode(b, &mut sink);
        codec.decode(b"tail", &mut sink);
        codec.finish(&mut sink);
        assert_eq!(
            sink.seen,
            [
                "join #lobby",
                "say hi",
                "line_too_long",
                "invalid_utf8",
                "speak json=true",
                "hello 1",
                "say yo",
                "invalid_json",
                "flood"
            ]
        );
        assert_eq!(codec.format().key(), JSON.key());
    }

    #[test]
    fn a_first_line_decides_whether_the_lobby_is_joined() {
        let hello = b"{\"type\":\"hello\"}\n";
        let cases: [(&[u8], &[&str]); 3] = [
            // A program: JSON, and no room it did not ask for.
            (hello, &["speak json=true", "hello 0"]),
            // A person: the lobby, then the line.
            (b"\n/nick ana\n", &["join #lobby", "Nick(\"ana\")"]),
            // Nothing decides yet.
            (b"\n", &[]),
        ];
        for (input, expected) in cases {
            let mut codec = LineCodec::new(64);
            assert_eq!(codec.undecided(), Some(LOBBY_GRACE));
            let mut sink = Record {
                admit: 4,
                ..Record::default()
            };
            codec.decode(input, &mut sink);
            let seen: Vec<&str> = sink.seen.iter().map(String::as_str).collect();
            assert_eq!(seen, expected);
        }
        // Silence decides it is a person, once.
        let mut codec = LineCodec::new(64);
        let mut sink = Record::default();
        codec.silent_start(&mut sink);
        assert_eq!(codec.undecided(), None);
        codec.silent_start(&mut sink);
        assert_eq!(sink.seen, ["join #lobby"]);
        assert_eq!(LineCodec::json(64).undecided(), None);
        // Who starts in #lobby at registration: a WebSocket's program, unless a hello was
        // made for it; a person only once its codec knows it is one.
        assert!(LineCodec::json(64).lobby_at_once());
        let named = LineCodec::json_hello(64);
        assert!(!named.lobby_at_once());
        assert_eq!(named.undecided(), None);
        assert_eq!(named.format().key(), JSON.key());
        assert!(!LineCodec::new(64).lobby_at_once());
    }

    /// Found by fuzzing the framer: an unended last line one byte over the bound was
    /// carried out at the end of the stream instead of refused.
    #[test]
    fn an_unended_last_line_over_the_bound_is_refused() {
        let mut codec = LineCodec::new(4);
        let mut sink = Record {
            admit: 4,
            ..Record::default()
        };
        codec.decode(b"12345", &mut sink);
        codec.finish(&mut sink);
        assert_eq!(sink.seen, ["line_too_long"]);
    }
}
