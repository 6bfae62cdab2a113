//! IRCv3 labeled-response: a command sent with a `label` tag is answered with that label
//! — one line tagged, several wrapped in a `labeled-response` batch, none by a labeled
//! `ACK`.
//!
//! What answers one command comes from several places: the codec's own lines, the hub's
//! replies, and lines in the rooms' shared logs (one's own JOIN). [`Labeling`] stands
//! between the codec and the connection while one labeled line is handled: it keeps the
//! codec's own lines and the hub's stamps of each request it passes on, then has the
//! connection replace everything stamped so ([`Sink::relabel`]) by the labeled lines. A
//! SASL proof, answered later off the connection's task, carries its label with it; so
//! does a request the hub may answer later (a call another node of a cluster takes), in
//! its reference, and the format labels its answer ([`super::Asked`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use super::Asked;
use crate::hub::{Encode, Encoded, Nick, RoomName, Stamps};
use crate::protocol::{Incoming, Refusal, Sink};

/// Longest label honoured, in bytes (the spec's bound for clients); a longer one, or one
/// with control characters, is ignored and the command answered as if unlabeled.
const MAX_LABEL_BYTES: usize = 64;

/// The `label` tag of a tags section (without its `@`), if it is one to honour.
pub fn label_of(tags: Option<&str>) -> Option<&str> {
    let label = tags?
        .split(';')
        .find_map(|tag| tag.strip_prefix("label="))?;
    let fine =
        !label.is_empty() && label.len() <= MAX_LABEL_BYTES && !label.chars().any(char::is_control);
    fine.then_some(label)
}

/// The connection as the codec sees it while it handles one labeled line.
pub struct Labeling<'s, S: Sink> {
    sink: &'s mut S,
    server: &'s str,
    label: &'s str,
    /// The hub's stamps of each request handed over.
    stamps: Vec<Stamps>,
    /// The codec's own lines.
    own: Vec<Encoded>,
    /// A SASL proof or a request answered later took the label: its answer carries it.
    deferred: bool,
}

impl<'s, S: Sink> Labeling<'s, S> {
    pub fn new(sink: &'s mut S, server: &'s str, label: &'s str) -> Labeling<'s, S> {
        Labeling {
            sink,
            server,
            label,
            stamps: Vec::new(),
            own: Vec::new(),
            deferred: false,
        }
    }

    /// The line is handled: what answered it is written labeled.
    pub fn finish(self) {
        let Labeling {
            sink,
            server,
            label,
            stamps,
            own,
            deferred,
        } = self;
        if deferred && own.is_empty() && stamps.is_empty() {
            return;
        }
        let mut wrap = |lines: Vec<Encoded>| {
            let lines: Vec<&[u8]> = lines.iter().map(|bytes| &bytes[..]).collect();
            Arc::new(wrap(server, label, &lines))
        };
        if stamps.is_empty() {
            let bytes = wrap(own);
            sink.incoming(Incoming::Answer(Bytes::clone(&bytes)));
        } else {
            sink.relabel(&stamps, own, &mut wrap);
        }
    }
}

impl<S: Sink> Sink for Labeling<'_, S> {
    fn admit(&mut self) -> bool {
        self.sink.admit()
    }

    fn incoming(&mut self, incoming: Incoming) {
        self.stamped(incoming);
    }

    fn stamped(&mut self, incoming: Incoming) -> Stamps {
        let stamps = match incoming {
            Incoming::Answer(bytes) => {
                self.own.push(Arc::new(bytes));
                return 0..0;
            }
            Incoming::Sasl(mut attempt) => {
                attempt.label = Some(self.label.to_string());
                self.deferred = true;
                self.sink.stamped(Incoming::Sasl(attempt))
            }
            // Its answer is labeled by the format, now or once other nodes answered: not
            // again here, and no ACK meanwhile.
            Incoming::Request(mut request) if request.command.answered_later() => {
                let asked = Asked::read(request.reference.as_deref());
                request.reference = Asked {
                    label: Some(self.label),
                    ..asked
                }
                .reference();
                self.deferred = true;
                self.sink.stamped(Incoming::Request(request));
                return 0..0;
            }
            other => self.sink.stamped(other),
        };
        if !stamps.is_empty() {
            self.stamps.push(stamps.clone());
        }
        stamps
    }

    fn refuse(&mut self, refusal: Refusal) {
        self.sink.refuse(refusal);
    }

    fn speak(&mut self, format: &'static dyn Encode) {
        self.sink.speak(format);
    }

    fn nick(&self) -> Option<Nick> {
        self.sink.nick()
    }

    fn is_in(&self, room: &RoomName) -> bool {
        self.sink.is_in(room)
    }

    fn proved(&self) -> bool {
        self.sink.proved()
    }

    fn account(&self) -> Option<Nick> {
        self.sink.account()
    }
}

/// `lines` (whole IRC lines, several to a piece maybe) answering the command labeled
/// `label`, as the client gets them.
pub fn wrap(server: &str, label: &str, lines: &[&[u8]]) -> Bytes {
    let lines: Vec<&[u8]> = lines
        .iter()
        .flat_map(|piece| piece.split_inclusive(|&b| b == b'\n'))
        .collect();
    let tag = format!("label={label}");
    let mut out = Vec::new();
    match lines[..] {
        [] => out.extend_from_slice(format!("@{tag} :{server} ACK\r\n").as_bytes()),
        [line] => tagged(&mut out, &tag, line),
        _ => {
            // Unique among the batches open at once on any connection.
            static NEXT: AtomicU64 = AtomicU64::new(1);
            let id = format!("L{}", NEXT.fetch_add(1, Ordering::Relaxed));
            let start = format!("@{tag} :{server} BATCH +{id} labeled-response\r\n");
            out.extend_from_slice(start.as_bytes());
            let inside = format!("batch={id}");
            for line in lines {
                // A line of a batch nested inside (a chathistory batch) stays in it.
                if tags_of(line).split(';').any(|t| t.starts_with("batch=")) {
                    out.extend_from_slice(line);
                } else {
                    tagged(&mut out, &inside, line);
                }
            }
            out.extend_from_slice(format!(":{server} BATCH -{id}\r\n").as_bytes());
        }
    }
    Bytes::from(out)
}

/// The tags section of `line`, without its `@`; empty when it has none.
fn tags_of(line: &[u8]) -> &str {
    let Some(tagged) = line.strip_prefix(b"@") else {
        return "";
    };
    let end = tagged.iter().position(|&b| b == b' ').unwrap_or(0);
    std::str::from_utf8(&tagged[..end]).unwrap_or("")
}

/// Appends `line` with `tag` first among its tags.
fn tagged(out: &mut Vec<u8>, tag: &str, line: &[u8]) {
    out.push(b'@');
    out.extend_from_slice(tag.as_bytes());
    match line.strip_prefix(b"@") {
        Some(rest) => {
            out.push(b';');
            out.extend_from_slice(rest);
        }
        None => {
            out.push(b' ');
            out.extend_from_slice(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrapped(label: &str, lines: &[&str]) -> String {
        let lines: Vec<&[u8]> = lines.iter().map(|line| line.as_bytes()).collect();
        String::from_utf8(wrap("charla", label, &lines).to_vec()).unwrap()
    }

    #[test]
    fn none_one_or_several_lines() {
        assert_eq!(wrapped("a1", &[]), "@label=a1 :charla ACK\r\n");
        assert_eq!(
            wrapped("a1", &[":charla PONG charla :x\r\n"]),
            "@label=a1 :charla PONG charla :x\r\n"
        );
        assert_eq!(
            wrapped("a1", &["@time=T :ana!ana@charla JOIN #a\r\n"]),
            "@label=a1;time=T :ana!ana@charla JOIN #a\r\n"
        );
        let batch = wrapped(
            "a1",
            &[
                ":ana!ana@charla JOIN #a\r\n:charla 353 ana = #a :ana\r\n",
                "@time=T :charla 366 ana #a :End\r\n",
            ],
        );
        let lines: Vec<&str> = batch.split_inclusive("\r\n").collect();
        assert_eq!(lines.len(), 5, "{batch}");
        let id = lines[0]
            .strip_prefix("@label=a1 :charla BATCH +")
            .and_then(|rest| rest.strip_suffix(" labeled-response\r\n"))
            .expect(&batch);
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric()), "{id}");
        assert_eq!(lines[1], format!("@batch={id} :ana!ana@charla JOIN #a\r\n"));
        assert_eq!(
            lines[3],
            format!("@batch={id};time=T :charla 366 ana #a :End\r\n")
        );
        assert_eq!(lines[4], format!(":charla BATCH -{id}\r\n"));
    }

    #[test]
    fn a_nested_batchs_lines_stay_in_it() {
        let batch = wrapped(
            "x",
            &[
                ":charla BATCH +h1 chathistory #a\r\n@batch=h1 :b!b@charla PRIVMSG #a :hi\r\n:charla BATCH -h1\r\n",
            ],
        );
        let lines: Vec<&str> = batch.split_inclusive("\r\n").collect();
        let id = lines[0]
            .strip_prefix("@label=x :charla BATCH +")
            .and_then(|rest| rest.strip_suffix(" labeled-response\r\n"))
            .expect(&batch);
        assert_eq!(
            lines[1],
            format!("@batch={id} :charla BATCH +h1 chathistory #a\r\n")
        );
        assert_eq!(lines[2], "@batch=h1 :b!b@charla PRIVMSG #a :hi\r\n");
        assert_eq!(lines[3], format!("@batch={id} :charla BATCH -h1\r\n"));
        assert_eq!(lines[4], format!(":charla BATCH -{id}\r\n"));
    }

    #[test]
    fn only_a_short_clean_label_is_honoured() {
        assert_eq!(label_of(Some("+draft/reply=1;label=abc")), Some("abc"));
        assert_eq!(label_of(Some("label=")), None);
        assert_eq!(label_of(Some(&format!("label={}", "x".repeat(65)))), None);
        assert_eq!(label_of(Some("label=a\u{1}b")), None);
        assert_eq!(label_of(None), None);
    }
}
