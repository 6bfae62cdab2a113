//! The codec of `nc`, telnet and programs: lines of text, or of JSON after a `hello`.

use super::framing::{Frame, Framer};
use super::{Codec, Incoming, JSON, Refusal, Sink, TEXT, parse_json, parse_text};
use crate::hub::{Encode, ErrorCode};

/// Lines, each one request: in the text format until the client sends a JSON `hello`, in
/// JSON lines from then on (docs/protocol.md).
#[derive(Debug)]
pub struct LineCodec {
    framer: Framer,
    json: bool,
}

impl LineCodec {
    /// A codec for a new connection, refusing lines over `max_line_bytes`.
    pub fn new(max_line_bytes: usize) -> LineCodec {
        LineCodec {
            framer: Framer::new(max_line_bytes),
            json: false,
        }
    }

    /// A codec that speaks JSON from the start, greeting included (a WebSocket: its
    /// clients are programs and pages, never a person at `nc`).
    pub fn json(max_line_bytes: usize) -> LineCodec {
        LineCodec {
            framer: Framer::new(max_line_bytes),
            json: true,
        }
    }
}

impl Codec for LineCodec {
    fn decode(&mut self, bytes: &[u8], sink: &mut impl Sink) {
        let LineCodec { framer, json } = self;
        let max = framer.max();
        framer.feed(bytes, |frame| line(frame, max, json, sink));
    }

    fn finish(&mut self, sink: &mut impl Sink) {
        let LineCodec { framer, json } = self;
        let max = framer.max();
        framer.finish(|frame| line(frame, max, json, sink));
    }

    fn format(&self) -> &'static dyn Encode {
        if self.json { &JSON } else { &TEXT }
    }
}

/// Carries out one line; `json` says whether the client has switched to JSON lines.
fn line(frame: Frame<'_>, max: usize, json: &mut bool, sink: &mut impl Sink) {
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
    let parsed = if *json {
        parse_json(line)
    } else {
        parse_text(line)
    };
    match parsed {
        Ok(incoming @ Incoming::Hello { .. }) => {
            *json = true;
            sink.speak(&JSON);
            sink.incoming(incoming);
        }
        Ok(incoming) => sink.incoming(incoming),
        Err(refusal) => sink.refuse(refusal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::{Command, Encode};

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
