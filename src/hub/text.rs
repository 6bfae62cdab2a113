//! Message text that is safe to print on anyone's terminal.
//!
//! Chat text comes from strangers and lands on other people's terminals, where a stray ESC
//! can recolour the screen, move the cursor or retitle the window, a BEL can beep, a
//! backspace or lone CR can overwrite what another user seems to have said. So every
//! control character goes — C0 (NUL, BEL, BS, CR, ESC, …), DEL and C1 (U+0080–U+009F) —
//! and an escape sequence goes whole (`ESC [ 3 1 m`, not just its ESC). A tab becomes a
//! space. Bidi embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069) go too:
//! they make a line read differently from what was sent (`txt.exe` shown as `exe.txt`), and
//! can run on into whatever a reader prints after them. The line and paragraph separators
//! U+2028 and U+2029 become spaces, as a reader that splits lines on them would otherwise
//! show one message as two. Every other character, ñ, ã, €, emoji, CJK and the marks
//! U+200E/U+200F that right-to-left text needs, passes intact.
//!
//! [`MessageText`] keeps one kind of control: the formatting codes IRC clients send and
//! show (bold, colour, italic…), which recolour nothing on a terminal by themselves. Whether
//! a reader sees them is its codec's choice: text and JSON readers get them removed
//! ([`without_formatting`]), an IRC reader would get them as sent.

use std::borrow::Cow;
use std::sync::Arc;

/// Sanitised, non-empty message text; it may hold IRC formatting codes.
#[derive(Clone, PartialEq, Eq)]
pub struct MessageText(Arc<str>);

impl MessageText {
    /// Sanitises `raw`, keeping formatting codes; `None` when nothing printable is left.
    pub fn new(raw: &str) -> Option<MessageText> {
        let clean = clean(raw, Keep::Formatting);
        if without_formatting(&clean).trim().is_empty() {
            None
        } else {
            Some(MessageText(clean.into()))
        }
    }

    /// The text cut to at most `bytes` bytes on a character boundary (a topic, an away
    /// message); `None` when nothing printable is left.
    pub fn cut(&self, bytes: usize) -> Option<MessageText> {
        if self.0.len() <= bytes {
            return Some(self.clone());
        }
        let mut end = bytes;
        while !self.0.is_char_boundary(end) {
            end -= 1;
        }
        MessageText::new(&self.0[..end])
    }

    /// The text as sent, formatting codes included.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text without formatting codes, for readers that do not show them.
    pub fn plain(&self) -> Cow<'_, str> {
        without_formatting(&self.0)
    }
}

/// Displayed [plain](MessageText::plain), the way text readers get it.
impl std::fmt::Display for MessageText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.plain())
    }
}

impl std::fmt::Debug for MessageText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

/// Removes control characters and escape sequences; see the module documentation.
pub fn sanitize(raw: &str) -> String {
    clean(raw, Keep::Nothing)
}

/// `text` without IRC formatting codes, a colour code's numbers included; borrowed in the
/// usual case of text that has none, as every message is encoded through here.
pub fn without_formatting(text: &str) -> Cow<'_, str> {
    if is_clean(text) {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(clean(text, Keep::Nothing))
    }
}

/// Which controls [`clean`] leaves in place.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Keep {
    Nothing,
    Formatting,
}

/// IRC's formatting codes: bold, colour, hex colour, reset, monospace, reverse, italic,
/// strikethrough and underline.
fn is_formatting(c: char) -> bool {
    matches!(
        c,
        '\u{2}'
            | '\u{3}'
            | '\u{4}'
            | '\u{f}'
            | '\u{11}'
            | '\u{16}'
            | '\u{1d}'
            | '\u{1e}'
            | '\u{1f}'
    )
}

fn clean(raw: &str, keep: Keep) -> String {
    if is_clean(raw) {
        return raw.to_owned();
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            // A line or paragraph separator would split the line for a reader that splits
            // on them; a tab would jump about. Each is a space.
            '\t' | '\u{2028}' | '\u{2029}' => out.push(' '),
            c if is_bidi_control(c) => {}
            '\u{1b}' => skip_escape_sequence(&mut chars),
            // CSI as a single C1 character: its parameters follow as in `ESC [`.
            '\u{9b}' => skip_csi_tail(&mut chars),
            c if keep == Keep::Formatting && is_formatting(c) => out.push(c),
            '\u{3}' => skip_colour(&mut chars, |c| c.is_ascii_digit()),
            '\u{4}' => skip_colour(&mut chars, |c| c.is_ascii_hexdigit()),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A colour code's numbers: `fg[,bg]`, each up to two digits (six hex digits for ^D).
fn skip_colour(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, digit: fn(&char) -> bool) {
    let width = if digit(&'a') { 6 } else { 2 };
    let skip = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
        let mut n = 0;
        while n < width && chars.next_if(digit).is_some() {
            n += 1;
        }
        n
    };
    if skip(chars) > 0 {
        let mut ahead = chars.clone();
        if ahead.next() == Some(',') && ahead.peek().is_some_and(digit) {
            chars.next();
            skip(chars);
        }
    }
}

/// Whether `raw` holds nothing [`clean`] would change (no C0, DEL or C1 control, bidi
/// control or line separator), the usual case: checked on bytes, which is much cheaper than
/// decoding characters, as every message passes through here.
fn is_clean(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    // Printable ASCII, most messages, settled in blocks the compiler can vectorise: no
    // early exit inside a block.
    let printable_ascii = bytes.chunks(ASCII_BLOCK).all(|block| {
        block
            .iter()
            .fold(true, |ok, &b| ok & (b.wrapping_sub(0x20) < 0x5f))
    });
    printable_ascii
        || !bytes.iter().enumerate().any(|(i, &b)| {
            b < 0x20
                || b == 0x7f
                // C1 controls (U+0080–U+009F) are 0xC2 0x80–0x9F in UTF-8.
                || (b == 0xc2 && matches!(bytes.get(i + 1), Some(0x80..=0x9f)))
                // U+2028–U+202E are 0xE2 0x80 0xA8–0xAE, U+2066–U+2069 0xE2 0x81 0xA6–0xA9.
                || (b == 0xe2
                    && matches!(
                        (bytes.get(i + 1), bytes.get(i + 2)),
                        (Some(0x80), Some(0xa8..=0xae)) | (Some(0x81), Some(0xa6..=0xa9))
                    ))
        })
}

/// Bytes [`is_clean`] checks at a time for printable ASCII: enough for the compiler to use
/// wide registers, few enough that a long line with a control early on stops soon.
const ASCII_BLOCK: usize = 32;

/// Whether `c` is a bidi embedding, override or isolate (U+202A–U+202E, U+2066–U+2069),
/// which make a line read in another order than it was sent.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// After an ESC: `ESC [ params final` (CSI), `ESC ] … BEL|ESC \` (OSC), or ESC plus one char.
fn skip_escape_sequence(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    match chars.next() {
        Some('[') => skip_csi_tail(chars),
        Some(']') => {
            // Operating-system command: runs to BEL or to the string terminator ESC \.
            while let Some(c) = chars.next() {
                if c == '\u{7}' {
                    break;
                }
                if c == '\u{1b}' {
                    chars.next_if_eq(&'\\');
                    break;
                }
            }
        }
        _ => {}
    }
}

/// CSI parameters and intermediates are 0x20–0x3F; the final byte is 0x40–0x7E.
fn skip_csi_tail(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while chars
        .next_if(|c| ('\u{20}'..='\u{3f}').contains(c))
        .is_some()
    {}
    chars.next_if(|c| ('\u{40}'..='\u{7e}').contains(c));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unicode_passes_intact() {
        let s = "ñandú, ação, 12 €, 😀👩‍👩‍👧, 漢字かな, Ελληνικά";
        assert_eq!(sanitize(s), s);
        // U+00A0 shares its first UTF-8 byte (0xC2) with the C1 controls.
        assert!(is_clean("no\u{a0}break ÿ\u{a1}"));
        assert!(!is_clean("c1\u{9f}") && !is_clean("del\u{7f}") && !is_clean("tab\t"));
    }

    #[test]
    fn controls_and_escapes_are_removed() {
        assert_eq!(sanitize("a\u{1b}[31;1mred\u{1b}[0m b"), "ared b");
        assert_eq!(
            sanitize("bell\u{7} nul\u{0} bs\u{8} cr\r del\u{7f}"),
            "bell nul bs cr del"
        );
        assert_eq!(sanitize("c1\u{85}\u{9b}2Jx"), "c1x");
        assert_eq!(sanitize("title\u{1b}]0;pwned\u{7}ok"), "titleok");
        assert_eq!(sanitize("st\u{1b}]8;;http://x\u{1b}\\ok"), "stok");
        assert_eq!(sanitize("tab\there"), "tab here");
        assert_eq!(sanitize("trailing esc\u{1b}"), "trailing esc");
    }

    #[test]
    fn bidi_controls_go_and_line_separators_become_spaces() {
        let sent = "file\u{202e}exe.txt\u{202c} a\u{2028}b\u{2029}c \u{2066}x\u{2069}";
        assert!(!is_clean(sent));
        assert_eq!(sanitize(sent), "fileexe.txt a b c x");
        for c in ('\u{202a}'..='\u{202e}').chain('\u{2066}'..='\u{2069}') {
            assert!(!is_clean(&format!("a{c}b")), "{c:?}");
            assert_eq!(sanitize(&format!("a{c}b")), "ab");
        }
        assert_eq!(
            MessageText::new("\u{2067}\u{2069}\u{202e}").map(|t| t.as_str().to_owned()),
            None
        );
        // Neighbours sharing their first bytes stay: dashes, quotes, LRM/RLM, the narrow
        // no-break space, the per mille sign, and what right-to-left text needs.
        let neighbours = "–—‘’“”… \u{200e}\u{200f}\u{202f}‰ \u{2060}\u{2065}\u{206a} שָׁלוֹם مرحبا";
        assert!(is_clean(neighbours));
        assert_eq!(sanitize(neighbours), neighbours);
        assert!(is_clean("plain ascii, exactly thirty-two!"));
        assert!(!is_clean(&format!("{}\u{202e}", "x".repeat(100))));
    }

    #[test]
    fn formatting_is_kept_in_messages_and_removed_for_plain_readers() {
        let sent = "\u{2}bold\u{2} \u{3}4,12red\u{f} \u{4}ff00aahex \u{1d}it\u{7}";
        let kept = MessageText::new(sent).unwrap();
        assert_eq!(
            kept.as_str(),
            "\u{2}bold\u{2} \u{3}4,12red\u{f} \u{4}ff00aahex \u{1d}it"
        );
        assert_eq!(without_formatting(kept.as_str()), "bold red hex it");
        assert_eq!(sanitize(sent), "bold red hex it");
        // A comma after a colour is text unless a number follows it.
        assert_eq!(sanitize("\u{3}3,x"), ",x");
        assert!(matches!(
            without_formatting("plain"),
            Cow::Borrowed("plain")
        ));
        assert!(MessageText::new("\u{2}\u{3}4 \u{f}").is_none());
    }

    #[test]
    fn empty_after_sanitising_is_refused() {
        assert!(MessageText::new("\u{1b}[2J").is_none());
        assert!(MessageText::new("   ").is_none());
        assert_eq!(MessageText::new(" hi ").unwrap().as_str(), " hi ");
    }
}
