//! The stamp every benchmark message carries, so receivers can tell who sent it, its place
//! in the sender's sequence, and when it was *meant* to be sent.
//!
//! The stamp is plain ASCII inside the chat text (`~b STEP SENDER SEQ MICROS~`), so it
//! survives any server's prefix (`#room <nick> `, `<user5> `, `:nick!u@h PRIVMSG #r :`).

use std::fmt::Write;

const OPEN: &[u8] = b"~b ";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Which measurement step; late arrivals from an earlier step are ignored.
    pub step: u32,
    pub sender: u32,
    pub seq: u64,
    /// Intended send time, microseconds since the generator's epoch.
    pub intended_us: u64,
}

impl Stamp {
    /// The message text: the stamp, then padding up to `size` bytes.
    pub fn text(&self, size: usize) -> String {
        let mut s = String::with_capacity(size);
        let _ = write!(
            s,
            "~b {} {} {} {}~",
            self.step, self.sender, self.seq, self.intended_us
        );
        while s.len() < size {
            s.push('x');
        }
        s
    }

    /// Finds a stamp anywhere in a received line.
    pub fn find(line: &[u8]) -> Option<Stamp> {
        let start = memchr::memmem::find(line, OPEN)? + OPEN.len();
        let rest = &line[start..];
        let end = memchr::memchr(b'~', rest)?;
        let mut fields = std::str::from_utf8(&rest[..end]).ok()?.split(' ');
        let mut next = || fields.next()?.parse::<u64>().ok();
        Some(Stamp {
            step: u32::try_from(next()?).ok()?,
            sender: u32::try_from(next()?).ok()?,
            seq: next()?,
            intended_us: next()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_survive_any_prefix_and_padding() {
        let stamp = Stamp {
            step: 2,
            sender: 17,
            seq: 123_456,
            intended_us: 9_876_543_210,
        };
        let text = stamp.text(100);
        assert_eq!(text.len(), 100);
        for prefix in [
            "#bench <b17> ",
            "<user5> ",
            ":b17!b@localhost PRIVMSG #bench :",
        ] {
            let line = format!("{prefix}{text}\r");
            assert_eq!(Stamp::find(line.as_bytes()), Some(stamp));
        }
        assert_eq!(Stamp::find(b"#lobby *** b3 joined"), None);
        assert_eq!(Stamp::find(b"~b 1 2 x 4~"), None);
    }
}
