//! What a connection took to write, in the hub's order: lines queued to it alone, and
//! lines still in its rooms' logs, written from where they are.

use std::io::IoSlice;
use std::sync::Arc;

use crate::hub::{Chunk, Encoded, Reading, take_in_order};
use crate::protocol::{self, Format};

/// A line ready to write, with the hub's stamp that orders it among the others.
pub type Line = (u64, Encoded);

/// Lines taken from an outbox and not yet written.
///
/// A line from a room's log is not copied or shared line by line: the batch holds the
/// log's chunk once for all the lines it has there and reads each line's bytes from the
/// event (docs/benchmarks.md, "What limits it": a reference count taken and dropped per
/// line was a tenth of the server's core at 5M deliveries a second).
pub struct Pending {
    format: Format,
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
    Logged { chunk: u32, slot: u32 },
}

impl Pending {
    /// Lines queued to the connection alone, in order; [`Pending::read_logs`] adds its
    /// rooms'.
    pub fn new(format: Format, queued: Vec<Line>) -> Pending {
        Pending {
            format,
            lines: queued
                .into_iter()
                .map(|(order, bytes)| (order, Piece::Own(bytes)))
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
            let len = protocol::encoded(*format, logged.event()).len();
            if len == 0 {
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

    /// Points `slices` at the lines not written yet, as many as fit; how many it filled.
    pub fn fill<'a>(&'a self, slices: &mut [IoSlice<'a>]) -> usize {
        let mut count = 0;
        for (slot, (_, piece)) in slices.iter_mut().zip(&self.lines[self.next..]) {
            let bytes = self.bytes(piece);
            let skip = if count == 0 { self.offset } else { 0 };
            *slot = IoSlice::new(&bytes[skip..]);
            count += 1;
        }
        count
    }

    /// `n` bytes of what [`Pending::fill`] pointed at reached the socket.
    pub fn advance(&mut self, mut n: usize) {
        while n > 0 {
            let len = self.bytes(&self.lines[self.next].1).len() - self.offset;
            if len <= n {
                n -= len;
                self.next += 1;
                self.offset = 0;
            } else {
                self.offset += n;
                n = 0;
            }
        }
    }

    /// What is left, each line with a share of its own bytes: for the outbox to keep
    /// while the socket is full (rare: only a connection that fell behind).
    pub fn into_lines(self) -> Vec<Line> {
        let Pending {
            format,
            lines,
            next,
            offset,
            chunks,
        } = self;
        let mut rest = Vec::with_capacity(lines.len() - next);
        for (order, piece) in lines.into_iter().skip(next) {
            let bytes = match piece {
                Piece::Own(bytes) => bytes,
                Piece::Logged { chunk, slot } => logged(format, &chunks, chunk, slot).clone(),
            };
            // Only the first can have been written in part.
            let bytes = if rest.is_empty() && offset > 0 {
                Arc::new(bytes.slice(offset..))
            } else {
                bytes
            };
            rest.push((order, bytes));
        }
        rest
    }

    fn bytes<'a>(&'a self, piece: &'a Piece) -> &'a [u8] {
        match *piece {
            Piece::Own(ref bytes) => bytes,
            Piece::Logged { chunk, slot } => logged(self.format, &self.chunks, chunk, slot),
        }
    }
}

/// The bytes, in `format`, of the line in `slot` of the `chunk`th of `chunks`.
fn logged(format: Format, chunks: &[Arc<Chunk>], chunk: u32, slot: u32) -> &Encoded {
    protocol::encoded(format, chunks[chunk as usize].event(slot as usize))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::{Command, Hub, MessageText};
    use crate::server::outbox::Outbox;

    /// What bob takes after ana says `línea N ✓` in #lobby for each N of `lines`, with a
    /// reply queued to bob alone right after line `reply_after`.
    fn taken(lines: std::ops::Range<usize>, reply_after: Option<usize>) -> Pending {
        let hub = Hub::new(0);
        let ana = Arc::new(Outbox::new(1 << 20));
        let bob = Arc::new(Outbox::new(1 << 20));
        let a = hub.connect(ana.clone());
        let b = hub.connect(bob.clone());
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

    #[test]
    fn a_reply_queued_alone_comes_out_among_the_rooms_lines_in_order() {
        let pending = taken(0..40, Some(20));
        let mut slices = [IoSlice::new(&[]); 64];
        let count = pending.fill(&mut slices);
        assert_eq!(count, 41, "40 lines said and one reply");
        let whole: String = slices[..count]
            .iter()
            .map(|s| std::str::from_utf8(s).unwrap())
            .collect();
        assert!(whole.contains("línea 0 ✓\n"), "{whole}");
        let help = whole.find("*** commands").expect("the reply");
        assert!(whole.find("línea 20 ✓").unwrap() < help);
        assert!(help < whole.find("línea 21 ✓").unwrap());
    }

    #[test]
    fn lines_written_in_parts_come_out_whole_and_in_order() {
        let mut pending = taken(40..80, None);
        let mut out = Vec::new();
        while !pending.is_empty() {
            let mut slices = [IoSlice::new(&[]); 3];
            let count = pending.fill(&mut slices);
            // The socket takes 7 bytes, wherever they end.
            let mut took = 0;
            for slice in &slices[..count] {
                let part = &slice[..slice.len().min(7 - took)];
                out.extend_from_slice(part);
                took += part.len();
            }
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
        let mut slices = [IoSlice::new(&[]); 2];
        pending.fill(&mut slices);
        let first = slices[0].len();
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
