//! The stamp every benchmark message carries, so receivers can tell who sent it, its place
//! in the sender's sequence, and when it was *meant* to be sent.
//!
//! The stamp is plain ASCII inside the chat text (`~b STEP SENDER SEQ MICROS~`), so it
//! survives any server's prefix (`#room <nick> `, `<user5> `, `:nick!u@h PRIVMSG #r :`).

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
    /// Appends the message text to `out`: the stamp, then padding up to `size` bytes. Runs
    /// once per message on the senders' thread, so the numbers are written with `itoa`
    /// into the caller's buffer rather than formatted into a new `String`.
    pub fn write_text(&self, size: usize, out: &mut Vec<u8>) {
        let start = out.len();
        let mut digits = itoa::Buffer::new();
        out.extend_from_slice(OPEN);
        out.extend_from_slice(digits.format(self.step).as_bytes());
        out.push(b' ');
        out.extend_from_slice(digits.format(self.sender).as_bytes());
        out.push(b' ');
        out.extend_from_slice(digits.format(self.seq).as_bytes());
        out.push(b' ');
        out.extend_from_slice(digits.format(self.intended_us).as_bytes());
        out.push(b'~');
        let padded = start + size;
        if out.len() < padded {
            out.resize(padded, b'x');
        }
    }

    /// Finds a stamp anywhere in a received line. Runs once per delivery in the
    /// generator, so it scans bytes by hand rather than through `str` splitting and
    /// parsing (which took a fifth of the generator's CPU).
    pub fn find(line: &[u8]) -> Option<Stamp> {
        // A `~` may come before the stamp (IRC prefixes such as `nick!~user@host`). Each
        // `~` is found with memchr: comparing a window at every byte was dear with JSON
        // events, whose stamp comes after the event's other fields.
        let at = memchr::memchr_iter(OPEN[0], line).find(|&at| line[at..].starts_with(OPEN))?;
        let mut rest = &line[at + OPEN.len()..];
        let step = u32::try_from(number(&mut rest, b' ')?).ok()?;
        let sender = u32::try_from(number(&mut rest, b' ')?).ok()?;
        let seq = number(&mut rest, b' ')?;
        let intended_us = number(&mut rest, b'~')?;
        Some(Stamp {
            step,
            sender,
            seq,
            intended_us,
        })
    }
}

/// Parses the decimal number at the start of `rest` up to `end`, and moves past both.
fn number(rest: &mut &[u8], end: u8) -> Option<u64> {
    let mut value: u64 = 0;
    let mut digits = 0;
    for &b in rest.iter() {
        if !b.is_ascii_digit() {
            break;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        digits += 1;
    }
    if digits == 0 || rest.get(digits) != Some(&end) {
        return None;
    }
    *rest = &rest[digits + 1..];
    Some(value)
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
        let mut text = Vec::new();
        stamp.write_text(100, &mut text);
        assert_eq!(text.len(), 100);
        let text = String::from_utf8(text).unwrap();
        assert!(text.starts_with("~b 2 17 123456 9876543210~xx"));
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
        assert_eq!(Stamp::find(b"~b 1 2 3 4"), None, "unterminated");
        assert_eq!(
            Stamp::find(b":b1!~b@h PRIVMSG #r :~b 1 2 3 4~xx"),
            Some(Stamp {
                step: 1,
                sender: 2,
                seq: 3,
                intended_us: 4
            }),
            "a ~ in the prefix"
        );
    }
}
