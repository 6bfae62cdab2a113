//! Splitting a byte stream into bounded lines.
//!
//! TCP delivers bytes, not messages: one read may hold half a line or several lines. The
//! framer keeps only the unfinished tail of a line between reads, and refuses a line as soon
//! as it passes the bound, before its end has arrived, so no client can make the server
//! buffer an unbounded line. When the stream is idle with no unfinished line, it holds no
//! allocation at all.

/// One unit the framer found.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A complete line without its `\n` or `\r\n`.
    Line(&'a [u8]),
    /// A line passed the bound; its bytes up to the next `\n` are being discarded.
    TooLong,
}

/// Incremental line splitter with a maximum line length in bytes.
#[derive(Debug)]
pub struct Framer {
    /// u32, not usize: a framer lives in every connection's task (idle memory counts).
    max: u32,
    /// What is left between reads, boxed: most reads end on a line's end, so most of the
    /// time, and on every idle connection, this is one empty pointer.
    tail: Option<Box<Tail>>,
}

/// What a read left unfinished.
#[derive(Debug)]
enum Tail {
    /// The line so far.
    Partial(Vec<u8>),
    /// Inside an overlong line: drop bytes until the next `\n`.
    Discarding,
}

impl Framer {
    pub fn new(max_line_bytes: usize) -> Framer {
        Framer {
            max: u32::try_from(max_line_bytes).unwrap_or(u32::MAX),
            tail: None,
        }
    }

    /// The longest line accepted, in bytes.
    pub fn max(&self) -> usize {
        self.max as usize
    }

    /// Feeds bytes just read, calling `on_frame` for each line they complete.
    pub fn feed(&mut self, mut data: &[u8], mut on_frame: impl FnMut(Frame<'_>)) {
        while !data.is_empty() {
            let Some(end) = memchr::memchr(b'\n', data) else {
                self.keep_unfinished(data, &mut on_frame);
                break;
            };
            let segment = &data[..end];
            data = &data[end + 1..];
            let joined;
            let line = match self.tail.take().map(|tail| *tail) {
                Some(Tail::Discarding) => continue,
                Some(Tail::Partial(mut partial)) => {
                    partial.extend_from_slice(segment);
                    joined = partial;
                    &joined[..]
                }
                None => segment,
            };
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.len() > self.max as usize {
                on_frame(Frame::TooLong);
            } else {
                on_frame(Frame::Line(line));
            }
        }
    }

    /// The stream ended: an unfinished line still counts (`printf 'hi' | nc …`), and is
    /// handed to `on_frame` like any other, [`Frame::TooLong`] if over the bound.
    pub fn finish(&mut self, mut on_frame: impl FnMut(Frame<'_>)) {
        let Some(Tail::Partial(line)) = self.tail.take().map(|tail| *tail) else {
            return;
        };
        let line = line.strip_suffix(b"\r").unwrap_or(&line);
        // The tail may hold one byte more than the bound, kept for a `\r` that did not come.
        if line.len() > self.max as usize {
            on_frame(Frame::TooLong);
        } else if !line.is_empty() {
            on_frame(Frame::Line(line));
        }
    }

    fn keep_unfinished(&mut self, data: &[u8], on_frame: &mut impl FnMut(Frame<'_>)) {
        let kept = match self.tail.as_deref() {
            Some(Tail::Discarding) => return,
            Some(Tail::Partial(partial)) => partial.len(),
            None => 0,
        };
        // One byte of slack for the `\r` of a CRLF ending that has not arrived yet.
        if kept + data.len() > self.max as usize + 1 {
            on_frame(Frame::TooLong);
            self.tail = Some(Box::new(Tail::Discarding));
        } else if let Some(Tail::Partial(partial)) = self.tail.as_deref_mut() {
            partial.extend_from_slice(data);
        } else {
            self.tail = Some(Box::new(Tail::Partial(data.to_vec())));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(framer: &mut Framer, chunks: &[&[u8]]) -> Vec<Result<String, ()>> {
        let mut out = Vec::new();
        for chunk in chunks {
            framer.feed(chunk, |f| {
                out.push(match f {
                    Frame::Line(l) => Ok(String::from_utf8(l.to_vec()).unwrap()),
                    Frame::TooLong => Err(()),
                })
            });
        }
        out
    }

    fn finish(framer: &mut Framer) -> Vec<Result<String, ()>> {
        let mut out = Vec::new();
        framer.finish(|f| {
            out.push(match f {
                Frame::Line(l) => Ok(String::from_utf8(l.to_vec()).unwrap()),
                Frame::TooLong => Err(()),
            })
        });
        out
    }

    #[test]
    fn lines_split_across_reads_are_joined() {
        let mut f = Framer::new(100);
        let got = frames(&mut f, &[b"he", b"llo\r", b"\nwor", b"ld\nx"]);
        assert_eq!(got, vec![Ok("hello".into()), Ok("world".into())]);
        assert_eq!(finish(&mut f), vec![Ok("x".into())]);
    }

    #[test]
    fn several_lines_in_one_read() {
        let mut f = Framer::new(100);
        let got = frames(&mut f, &[b"a\nb\r\n\nc\n"]);
        assert_eq!(
            got,
            vec![
                Ok("a".into()),
                Ok("b".into()),
                Ok("".into()),
                Ok("c".into())
            ]
        );
        assert!(f.tail.is_none(), "no buffer kept between lines");
    }

    #[test]
    fn overlong_line_is_refused_early_and_the_rest_discarded() {
        let mut f = Framer::new(8);
        // The bound is passed before any newline arrives: refused at once.
        let got = frames(&mut f, &[b"0123456789"]);
        assert_eq!(got, vec![Err(())]);
        assert!(
            matches!(f.tail.as_deref(), Some(Tail::Discarding)),
            "the overlong line's bytes are not kept"
        );
        let got = frames(&mut f, &[b"more junk", b" still\nok\n"]);
        assert_eq!(got, vec![Ok("ok".into())]);
    }

    #[test]
    fn bound_is_exact_and_crlf_does_not_count() {
        let mut f = Framer::new(5);
        let got = frames(&mut f, &[b"12345\r\n", b"123", b"45\r", b"\n123456\n"]);
        assert_eq!(got, vec![Ok("12345".into()), Ok("12345".into()), Err(())]);
    }

    #[test]
    fn overlong_complete_line_in_one_read() {
        let mut f = Framer::new(3);
        let got = frames(&mut f, &[b"abcdef\nxy\n"]);
        assert_eq!(got, vec![Err(()), Ok("xy".into())]);
    }

    #[test]
    fn unfinished_overlong_line_is_not_returned_at_eof() {
        let mut f = Framer::new(3);
        assert_eq!(frames(&mut f, &[b"abcdef"]), vec![Err(())]);
        assert_eq!(finish(&mut f), vec![]);
    }

    /// Found by the `framer` fuzz target (fuzz/): an unended last line one byte over the
    /// bound (the byte kept for a `\r` that never came) was handed on whole at the end.
    #[test]
    fn unfinished_line_one_byte_over_the_bound_is_too_long_at_eof() {
        let mut f = Framer::new(1);
        assert_eq!(frames(&mut f, &[b"\x0e\x0e"]), vec![]);
        assert_eq!(finish(&mut f), vec![Err(())]);
        // With its `\r`, the same length is a line at the bound.
        let mut f = Framer::new(2);
        assert_eq!(frames(&mut f, &[b"ab\r"]), vec![]);
        assert_eq!(finish(&mut f), vec![Ok("ab".into())]);
    }
}
