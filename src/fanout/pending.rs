//! What a connection took to write, in the hub's order: lines queued to it alone, and
//! lines still in its rooms' logs, copied from where they are into each write.

use std::sync::Arc;

use super::room_log::{Chunk, Reading, take_in_order};
use crate::hub::{Encode, Encoded};
use crate::metrics::FanoutProbe;

/// A line ready to write, with the hub's stamp that orders it among the others, and the
/// fan-out probe of a sampled room message put back unwritten (`Pending::into_lines`).
pub type Stamped = (u64, Encoded, Option<Arc<FanoutProbe>>);

/// Lines taken from an outbox and not yet written.
///
/// A line from a room's log is not shared line by line: the batch holds the log's chunk
/// once for all the lines it has there and reads each line's bytes from the event
/// (a reference count taken and dropped per line was dear: docs/benchmarks.md, "What limits
/// it"). Each write copies the lines
/// into one buffer ([`Pending::gather`]): the kernel takes one slice faster than many.
pub struct Pending {
    format: &'static dyn Encode,
    lines: Vec<(u64, Piece)>,
    /// The lines before this one are written.
    next: usize,
    /// Bytes of `lines[next]` already written.
    offset: usize,
    /// The chunks of the logs the logged lines are in.
    chunks: Vec<Arc<Chunk>>,
}

enum Piece {
    Own(Encoded),
    Logged {
        chunk: u32,
        slot: u32,
    },
    /// A sampled room message that was put back while the socket was full: rare, so boxed,
    /// and the other pieces stay small.
    Probed(Box<(Encoded, Arc<FanoutProbe>)>),
}

impl Pending {
    /// Lines queued to the connection alone, in order; [`Pending::read_logs`] adds its
    /// rooms'.
    pub fn new(format: &'static dyn Encode, queued: Vec<Stamped>) -> Pending {
        Pending {
            format,
            lines: queued
                .into_iter()
                .map(|(order, bytes, probe)| {
                    let piece = match probe {
                        None => Piece::Own(bytes),
                        Some(probe) => Piece::Probed(Box::new((bytes, probe))),
                    };
                    (order, piece)
                })
                .collect(),
            next: 0,
            offset: 0,
            chunks: Vec::new(),
        }
    }

    /// Adds what `readings` have not read yet, in the hub's order among the lines already
    /// here; returns its length in bytes.
    pub fn read_logs(&mut self, readings: &mut [Reading]) -> usize {
        let Pending {
            format,
            lines,
            chunks,
            ..
        } = self;
        let mut taken = 0;
        take_in_order(lines, readings, |logged| {
            let len = logged.event().encoded(*format).len();
            if len == 0 {
                // Nothing to write is written at once.
                if let Some(probe) = logged.probe() {
                    probe.written();
                }
                return None;
            }
            taken += len;
            // A log's lines come one after another: its chunk is held once for all it has.
            if !chunks
                .last()
                .is_some_and(|held| Arc::ptr_eq(held, logged.chunk))
            {
                chunks.push(logged.chunk.clone());
            }
            let chunk = u32::try_from(chunks.len() - 1).expect("fewer chunks than lines");
            let slot = u32::try_from(logged.slot).expect("a slot fits a chunk");
            Some(Piece::Logged { chunk, slot })
        });
        taken
    }

    pub fn is_empty(&self) -> bool {
        self.next == self.lines.len()
    }

    /// Appends to `buf` the lines not written yet, as many whole ones as fit in `max`
    /// bytes, or the first `max` bytes of the first should it be longer; how many bytes.
    pub fn gather(&self, buf: &mut Vec<u8>, max: usize) -> usize {
        let mut room = max;
        for (i, (_, piece)) in self.lines[self.next..].iter().enumerate() {
            let mut bytes = self.bytes(piece);
            if i == 0 {
                bytes = &bytes[self.offset..];
                bytes = &bytes[..bytes.len().min(room)];
            } else if bytes.len() > room {
                break;
            }
            buf.extend_from_slice(bytes);
            room -= bytes.len();
        }
        max - room
    }

    /// The first `n` bytes of what [`Pending::gather`] copied reached the socket; how many
    /// lines that ended.
    pub fn advance(&mut self, mut n: usize) -> usize {
        let mut ended = 0;
        while n > 0 {
            let piece = &self.lines[self.next].1;
            let len = self.bytes(piece).len() - self.offset;
            if len <= n {
                if let Some(probe) = self.probe(piece) {
                    probe.written();
                }
                n -= len;
                ended += 1;
                self.next += 1;
                self.offset = 0;
            } else {
                self.offset += n;
                n = 0;
            }
        }
        ended
    }

    /// What is left, each line with a share of its own bytes: for the outbox to keep
    /// while the socket is full (rare: only a connection that fell behind).
    pub fn into_lines(self) -> Vec<Stamped> {
        let Pending {
            format,
            lines,
            next,
            offset,
            chunks,
        } = self;
        let mut rest = Vec::with_capacity(lines.len() - next);
        for (order, piece) in lines.into_iter().skip(next) {
            let (bytes, probe) = match piece {
                Piece::Own(bytes) => (bytes, None),
                Piece::Logged { chunk, slot } => (
                    logged(format, &chunks, chunk, slot).clone(),
                    chunks[chunk as usize].probe(slot as usize).cloned(),
                ),
                Piece::Probed(probed) => (probed.0, Some(probed.1)),
            };
            // Only the first can have been written in part.
            let bytes = if rest.is_empty() && offset > 0 {
                Arc::new(bytes.slice(offset..))
            } else {
                bytes
            };
            rest.push((order, bytes, probe));
        }
        rest
    }

    fn bytes<'a>(&'a self, piece: &'a Piece) -> &'a [u8] {
        match *piece {
            Piece::Own(ref bytes) => bytes,
            Piece::Logged { chunk, slot } => logged(self.format, &self.chunks, chunk, slot),
            Piece::Probed(ref probed) => &probed.0,
        }
    }

    /// The fan-out probe of a sampled room message, to count down once it is written.
    fn probe<'a>(&'a self, piece: &'a Piece) -> Option<&'a Arc<FanoutProbe>> {
        match *piece {
            Piece::Own(_) => None,
            Piece::Logged { chunk, slot } => self.chunks[chunk as usize].probe(slot as usize),
            Piece::Probed(ref probed) => Some(&probed.1),
        }
    }
}

/// The bytes, in `format`, of the line in `slot` of the `chunk`th of `chunks`.
fn logged<'a>(format: &dyn Encode, chunks: &'a [Arc<Chunk>], chunk: u32, slot: u32) -> &'a Encoded {
    chunks[chunk as usize].event(slot as usize).encoded(format)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fanout::Outbox;
    use crate::hub::{Command, Hub, MessageText};

    /// What bob takes after ana says `línea N ✓` in #lobby for each N of `lines`, with a
    /// reply queued to bob alone right after line `reply_after`.
    fn taken(lines: std::ops::Range<usize>, reply_after: Option<usize>) -> Pending {
        let hub = Hub::new(&crate::limits::Limits {
            history_per_room: 0,
            ..Default::default()
        });
        let ana = Arc::new(Outbox::new(1 << 20, &crate::protocol::TEXT));
        let bob = Arc::new(Outbox::new(1 << 20, &crate::protocol::TEXT));
        let a = hub.register(ana.clone(), None).unwrap();
        let b = hub.register(bob.clone(), None).unwrap();
        bob.take(None);
        for n in lines {
            let text = MessageText::new(&format!("línea {n} ✓")).unwrap();
            let say = Command::Say {
                room: None,
                text,
                action: false,
            };
            hub.apply(a, say.into());
            if reply_after == Some(n) {
                hub.reply(b, crate::hub::Event::Help, None);
            }
        }
        bob.take(None).0
    }

    /// Everything `pending` holds, in one string.
    fn gathered(pending: &Pending) -> String {
        let mut buf = Vec::new();
        pending.gather(&mut buf, usize::MAX);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn a_reply_queued_alone_comes_out_among_the_rooms_lines_in_order() {
        let whole = gathered(&taken(0..40, Some(20)));
        assert_eq!(whole.matches("línea").count(), 40, "{whole}");
        assert!(whole.contains("línea 0 ✓\n"), "{whole}");
        let help = whole.find("*** commands").expect("the reply");
        assert!(whole.find("línea 20 ✓").unwrap() < help);
        assert!(help < whole.find("línea 21 ✓").unwrap());
    }

    #[test]
    fn a_write_takes_whole_lines_up_to_its_size_and_cuts_only_a_longer_first_line() {
        let mut pending = taken(0..10, None);
        let line = "#lobby <guest-1> línea 0 ✓\n".len();
        let mut buf = Vec::new();
        assert_eq!(pending.gather(&mut buf, 3 * line + 5), 3 * line);
        assert!(buf.ends_with("línea 2 ✓\n".as_bytes()));
        // After half a line: the rest of it, then whole ones.
        pending.advance(line + 4);
        buf.clear();
        assert_eq!(pending.gather(&mut buf, 2 * line), 2 * line - 4);
        assert!(buf.starts_with("by <guest-1> línea 1 ✓\n".as_bytes()));
        // A line longer than a write goes out in parts.
        buf.clear();
        assert_eq!(pending.gather(&mut buf, 10), 10);
        assert_eq!(&buf[..], "by <guest-".as_bytes());
    }

    #[test]
    fn lines_written_in_parts_come_out_whole_and_in_order() {
        let mut pending = taken(40..80, None);
        let mut out = Vec::new();
        while !pending.is_empty() {
            let mut buf = Vec::new();
            pending.gather(&mut buf, 64);
            // The socket takes 7 bytes, wherever they end.
            let took = buf.len().min(7);
            out.extend_from_slice(&buf[..took]);
            pending.advance(took);
        }
        let out = String::from_utf8(out).unwrap();
        let expected: String = (40..80)
            .map(|n| format!("#lobby <guest-1> línea {n} ✓\n"))
            .collect();
        assert_eq!(out, expected);
    }

    #[test]
    fn what_is_left_after_part_of_a_line_starts_where_the_socket_stopped() {
        let mut pending = taken(40..80, None);
        let first = gathered(&pending).find('\n').unwrap() + 1;
        // All of the first line and "#lobby " of the second.
        pending.advance(first + 7);
        let rest = pending.into_lines();
        assert_eq!(rest.len(), 39);
        assert_eq!(&rest[0].1[..], "<guest-1> línea 41 ✓\n".as_bytes());
        assert_eq!(&rest[1].1[..], "#lobby <guest-1> línea 42 ✓\n".as_bytes());
        assert!(
            rest.windows(2).all(|w| w[0].0 < w[1].0),
            "in the hub's order"
        );
    }
}
