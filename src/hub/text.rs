//! Message text that is safe to print on anyone's terminal.
//!
//! Chat text comes from strangers and lands on other people's terminals, where a stray ESC
//! can recolour the screen, move the cursor or retitle the window, a BEL can beep, a
//! backspace or lone CR can overwrite what another user seems to have said. So every
//! control character goes — C0 (NUL, BEL, BS, CR, ESC, …), DEL and C1 (U+0080–U+009F) —
//! and an escape sequence goes whole (`ESC [ 3 1 m`, not just its ESC). A tab becomes a
//! space. Every other character, ñ, ã, €, emoji and CJK included, passes intact.

use std::sync::Arc;

/// Sanitised, non-empty message text.
#[derive(Clone, PartialEq, Eq)]
pub struct MessageText(Arc<str>);

impl MessageText {
    /// Sanitises `raw`; `None` when nothing printable is left.
    pub fn new(raw: &str) -> Option<MessageText> {
        let clean = sanitize(raw);
        if clean.trim().is_empty() {
            None
        } else {
            Some(MessageText(clean.into()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

str_formatting!(MessageText);

/// Removes control characters and escape sequences; see the module documentation.
pub fn sanitize(raw: &str) -> String {
    if is_clean(raw) {
        return raw.to_owned();
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\t' => out.push(' '),
            '\u{1b}' => skip_escape_sequence(&mut chars),
            // CSI as a single C1 character: its parameters follow as in `ESC [`.
            '\u{9b}' => skip_csi_tail(&mut chars),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Whether `raw` holds no control character at all (C0, DEL or C1), the usual case: checked
/// a byte at a time, which is much cheaper than decoding characters, and every message
/// passes through here.
fn is_clean(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    !bytes.iter().enumerate().any(|(i, &b)| {
        // C1 controls (U+0080–U+009F) are 0xC2 0x80–0x9F in UTF-8.
        b < 0x20 || b == 0x7f || (b == 0xc2 && matches!(bytes.get(i + 1), Some(0x80..=0x9f)))
    })
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
    fn empty_after_sanitising_is_refused() {
        assert!(MessageText::new("\u{1b}[2J").is_none());
        assert!(MessageText::new("   ").is_none());
        assert_eq!(MessageText::new(" hi ").unwrap().as_str(), " hi ");
    }
}
