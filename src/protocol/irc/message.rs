//! One IRC line as a client sends it: `[@tags] [:prefix] COMMAND [params…] [:trailing]`,
//! and the bounds a line must keep (modern.ircdocs.horse, "Messages").

/// Longest line without its tags, in bytes, CRLF included: 512, as IRC has always had it.
/// A longer line is refused with 417 (`ERR_INPUTTOOLONG`) and the connection stays.
pub const MAX_LINE_BYTES: usize = 512;

/// Longest tags section a client may send, in bytes, its `@` and the space after it
/// included (IRCv3 message-tags): 8191.
pub const MAX_TAGS_BYTES: usize = 8191;

/// What the framer may buffer for one line before it refuses it: both bounds together,
/// line ending excluded. The parts are checked one by one once the line is whole.
pub const MAX_FRAME_BYTES: usize = MAX_TAGS_BYTES + MAX_LINE_BYTES - 2;

/// Parameters kept per message; RFC 1459 allows 15, and no command charla serves needs
/// more. Further ones are joined into the last, as servers do.
const MAX_PARAMS: usize = 15;

/// A parsed line, borrowing from it.
#[derive(Debug, PartialEq, Eq)]
pub struct Message<'a> {
    /// The tags section without its `@`: client-only tags (`+…`) are relayed
    /// ([`crate::hub::ClientTags`]), the rest read by the codec or ignored.
    pub tags: Option<&'a str>,
    /// Whoever the sender says it is; ignored from clients, as servers do.
    pub prefix: Option<&'a str>,
    /// As sent; compare with `eq_ignore_ascii_case`.
    pub command: &'a str,
    pub params: Vec<&'a str>,
}

/// Why a line is not a message.
#[derive(Debug, PartialEq, Eq)]
pub enum Malformed {
    /// Over [`MAX_LINE_BYTES`] or [`MAX_TAGS_BYTES`].
    TooLong,
    /// Nothing but tags, a prefix or spaces.
    NoCommand,
}

impl<'a> Message<'a> {
    /// Parses one line, its line ending already removed by the framer.
    pub fn parse(line: &'a str) -> Result<Message<'a>, Malformed> {
        let mut rest = line;
        let mut tags = None;
        if let Some(tagged) = rest.strip_prefix('@') {
            let (t, after) = tagged.split_once(' ').unwrap_or((tagged, ""));
            // `@` + tags + the space.
            if t.len() + 2 > MAX_TAGS_BYTES {
                return Err(Malformed::TooLong);
            }
            tags = Some(t);
            rest = after;
        }
        rest = rest.trim_start_matches(' ');
        if rest.len() + 2 > MAX_LINE_BYTES {
            return Err(Malformed::TooLong);
        }
        let mut prefix = None;
        if let Some(prefixed) = rest.strip_prefix(':') {
            let (p, after) = prefixed.split_once(' ').unwrap_or((prefixed, ""));
            prefix = Some(p);
            rest = after.trim_start_matches(' ');
        }
        let (command, mut rest) = rest.split_once(' ').unwrap_or((rest, ""));
        if command.is_empty() {
            return Err(Malformed::NoCommand);
        }
        let mut params = Vec::new();
        loop {
            rest = rest.trim_start_matches(' ');
            if rest.is_empty() {
                break;
            }
            if let Some(trailing) = rest.strip_prefix(':') {
                params.push(trailing);
                break;
            }
            if params.len() == MAX_PARAMS - 1 {
                params.push(rest);
                break;
            }
            let (param, after) = rest.split_once(' ').unwrap_or((rest, ""));
            params.push(param);
            rest = after;
        }
        Ok(Message {
            tags,
            prefix,
            command,
            params,
        })
    }

    /// Whether this is `command`, in any case.
    pub fn is(&self, command: &str) -> bool {
        self.command.eq_ignore_ascii_case(command)
    }

    /// The `i`th parameter, if sent and not empty.
    pub fn param(&self, i: usize) -> Option<&'a str> {
        self.params.get(i).copied().filter(|p| !p.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_params_and_trailing() {
        let m = Message::parse("PRIVMSG #ops :hola, ¿qué tal?").unwrap();
        assert_eq!(m.command, "PRIVMSG");
        assert_eq!(m.params, ["#ops", "hola, ¿qué tal?"]);
        let m = Message::parse("USER ana 0 * :Ana María").unwrap();
        assert_eq!(m.params, ["ana", "0", "*", "Ana María"]);
        let m = Message::parse("NICK  ana  ").unwrap();
        assert_eq!(m.params, ["ana"]);
        assert!(Message::parse("cap ls 302").unwrap().is("CAP"));
        let m = Message::parse("PRIVMSG #ops ::-)").unwrap();
        assert_eq!(m.params, ["#ops", ":-)"]);
        let m = Message::parse("TOPIC #ops :").unwrap();
        assert_eq!(m.params, ["#ops", ""]);
        assert_eq!(m.param(1), None);
    }

    #[test]
    fn tags_and_prefix_are_read_and_set_aside() {
        let m = Message::parse("@label=a1;+draft/x=y :ana!ana@host PING :tok en").unwrap();
        assert_eq!(m.tags, Some("label=a1;+draft/x=y"));
        assert_eq!(m.prefix, Some("ana!ana@host"));
        assert_eq!(m.command, "PING");
        assert_eq!(m.params, ["tok en"]);
    }

    #[test]
    fn nothing_to_do_is_no_command() {
        assert_eq!(Message::parse(""), Err(Malformed::NoCommand));
        assert_eq!(Message::parse("   "), Err(Malformed::NoCommand));
        assert_eq!(Message::parse(":prefix"), Err(Malformed::NoCommand));
        assert_eq!(Message::parse("@a=b"), Err(Malformed::NoCommand));
    }

    #[test]
    fn bounds_are_512_bytes_and_8191_of_tags() {
        // 510 bytes + CRLF is the longest line.
        let at_bound = format!("PRIVMSG #a :{}", "x".repeat(510 - 12));
        assert_eq!(at_bound.len(), 510);
        assert!(Message::parse(&at_bound).is_ok());
        let over = format!("{at_bound}y");
        assert_eq!(Message::parse(&over), Err(Malformed::TooLong));
        // Tags have their own allowance on top.
        let tags = "a".repeat(MAX_TAGS_BYTES - 2);
        assert!(Message::parse(&format!("@{tags} {at_bound}")).is_ok());
        assert_eq!(
            Message::parse(&format!("@{tags}a {at_bound}")),
            Err(Malformed::TooLong)
        );
        assert_eq!(
            Message::parse(&format!("@{tags} {over}")),
            Err(Malformed::TooLong)
        );
    }

    #[test]
    fn params_past_fifteen_join_the_last() {
        let line = format!(
            "X {}",
            (1..=17)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        );
        let m = Message::parse(&line).unwrap();
        assert_eq!(m.params.len(), MAX_PARAMS);
        assert_eq!(m.params[MAX_PARAMS - 1], "15 16 17");
    }
}
