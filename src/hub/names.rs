//! Validated nicks and room names.
//!
//! Both keep the spelling the user chose for display and compare by a key that makes
//! names that look alike equal: the Unicode confusable skeleton (UTS #39) of the
//! case-folded name, case-folded again, so `Begoña` and `BEGOÑA` are the same person, `#Ops` is `#ops`, and
//! `аna` spelled in Cyrillic is `ana`. Input is NFC-normalised first, so `João` typed with
//! a combining tilde is the same nick as with a precomposed `ã`.
//!
//! A name may only hold characters Unicode's General Security Profile allows in
//! identifiers (no fullwidth or other compatibility forms, no invisible fillers such as
//! U+3164), and may mix scripts only as far as UTS #39's "moderately restrictive" level
//! allows: Latin with Han, Japanese, Korean or one other script that does not look like
//! it, never Latin with Cyrillic or Greek. Sorting uses the case-folded spelling.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use unicode_normalization::UnicodeNormalization;
use unicode_script::{Script, UnicodeScript};
use unicode_security::general_security_profile::IdentifierType;
use unicode_security::{
    GeneralSecurityProfile, RestrictionLevel, RestrictionLevelDetection, skeleton,
};

use crate::limits::{MAX_NICK_CHARS, MAX_ROOM_CHARS};

/// Why a nick or room name was refused; the text is shown to the user as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("a name cannot be empty")]
    Empty,
    #[error("a nick has at most {MAX_NICK_CHARS} characters")]
    NickTooLong,
    #[error("a room name has at most {MAX_ROOM_CHARS} characters, # included")]
    RoomTooLong,
    #[error("{0:?} is not allowed in a name: use letters, digits, '-', '_' or '.'")]
    BadChar(char),
    #[error("a nick must start with a letter or '_'")]
    BadStart,
    #[error("U+{:04X} is not allowed in a name: it shows as nothing", u32::from(*.0))]
    Invisible(char),
    #[error(
        "{0:?} (U+{cp:04X}) is not allowed in a name: it is a variant, obsolete or rarely used form; use the usual letters and digits",
        cp = u32::from(*.0)
    )]
    Restricted(char),
    #[error(
        "a name mixes scripts ({0}): use one script, or Latin with one other that does not look like it (not Cyrillic or Greek)"
    )]
    MixedScripts(String),
}

/// A user's nick: 1 to [`MAX_NICK_CHARS`] letters (any script), digits, `-`, `_` or `.`,
/// starting with a letter or `_`; see the module documentation for which letters and
/// mixtures of scripts.
#[derive(Clone)]
pub struct Nick(Name);

/// A room name: `#` then 1 or more letters, digits, `-`, `_` or `.` (the characters and
/// mixtures of scripts nicks may use); at most [`MAX_ROOM_CHARS`] characters in all.
/// `/join ops` means `#ops`.
#[derive(Clone)]
pub struct RoomName(Name);

/// Comparison key, display spelling and sort key in one shared string, cheap to clone and
/// to compare: the key comes first, so comparing two names reads only their keys, and each
/// of the others follows only when it differs (`key`, `key\0display`, `key\0display\x01`
/// when the sort key is the key, `key\0display\x01sorted`, `key\x01sorted`). One
/// pointer-and-length, not two: a name sits in several of the hub's tables for every
/// session, and idle memory per connection is a target (docs/benchmarks.md).
#[derive(Clone)]
struct Name(Arc<str>);

/// Marks where the display spelling starts, when it is not the key. No name holds it: it
/// is a control character.
const DISPLAY_MARK: u8 = b'\0';
/// Marks where the case-folded sort key starts, when it is not the display spelling; with
/// nothing after it, the sort key is the comparison key.
const SORT_MARK: u8 = b'\x01';

impl Name {
    fn new(display: String) -> Name {
        let sorted = display.to_lowercase();
        // Folded again after the skeleton, as a few prototypes are capitals (`0` looks like
        // `O`, so like `o` once case does not count). The skeleton is in NFD by definition;
        // its NFC form compares the same and is usually the sort key itself, which then
        // needs no room of its own.
        let key: String = skeleton(&sorted).collect::<String>().to_lowercase();
        let key: String = key.nfc().collect();
        let mut all = key.clone();
        if display != key {
            all.push(char::from(DISPLAY_MARK));
            all.push_str(&display);
        }
        if sorted != display {
            all.push(char::from(SORT_MARK));
            if sorted != key {
                all.push_str(&sorted);
            }
        }
        Name(all.into())
    }

    /// What two names are compared and hashed by.
    fn key(&self) -> &str {
        let end = memchr::memchr2(DISPLAY_MARK, SORT_MARK, self.0.as_bytes());
        &self.0[..end.unwrap_or(self.0.len())]
    }

    fn display(&self) -> &str {
        let key = self.key();
        let rest = &self.0[key.len()..];
        match rest.strip_prefix(char::from(DISPLAY_MARK)) {
            Some(rest) => {
                let end = memchr::memchr(SORT_MARK, rest.as_bytes());
                &rest[..end.unwrap_or(rest.len())]
            }
            None => key,
        }
    }

    fn sort_key(&self) -> &str {
        let Some(start) = memchr::memrchr(SORT_MARK, self.0.as_bytes()) else {
            return self.display();
        };
        match &self.0[start + 1..] {
            "" => self.key(),
            sorted => sorted,
        }
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Name) -> bool {
        // The same string, as when a name is a clone of the table's own, needs no reading.
        Arc::ptr_eq(&self.0, &other.0) || self.key() == other.key()
    }
}

impl Eq for Name {}

impl std::hash::Hash for Name {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key().hash(state)
    }
}

fn name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// The rules every name's characters follow; see the module documentation.
fn check_chars(body: &str) -> Result<(), NameError> {
    for c in body.chars() {
        if !name_char(c) {
            return Err(NameError::BadChar(c));
        }
        if c.identifier_type() == Some(IdentifierType::Default_Ignorable) {
            return Err(NameError::Invisible(c));
        }
        if !c.identifier_allowed() {
            return Err(NameError::Restricted(c));
        }
    }
    if body.detect_restriction_level() > RestrictionLevel::ModeratelyRestrictive {
        return Err(NameError::MixedScripts(scripts(body)));
    }
    Ok(())
}

/// The scripts `body` is written in, by name, in order of appearance.
fn scripts(body: &str) -> String {
    let mut seen: Vec<Script> = Vec::new();
    for c in body.chars() {
        let script = c.script();
        if !matches!(script, Script::Common | Script::Inherited | Script::Unknown)
            && !seen.contains(&script)
        {
            seen.push(script);
        }
    }
    let names: Vec<&str> = seen.iter().map(|s| s.full_name()).collect();
    names.join(", ")
}

impl Nick {
    pub fn parse(input: &str) -> Result<Nick, NameError> {
        let nick: String = input.trim().nfc().collect();
        let first = nick.chars().next().ok_or(NameError::Empty)?;
        if nick.chars().count() > MAX_NICK_CHARS {
            return Err(NameError::NickTooLong);
        }
        check_chars(&nick)?;
        if !(first.is_alphabetic() || first == '_') {
            return Err(NameError::BadStart);
        }
        Ok(Nick(Name::new(nick)))
    }

    pub fn as_str(&self) -> &str {
        self.0.display()
    }

    /// The case-folded spelling, which lists of nicks are sorted by. Two nicks with the
    /// same one are equal; equal nicks may differ in it (`ana`, `аna` in Cyrillic).
    pub fn sort_key(&self) -> &str {
        self.0.sort_key()
    }

    /// Whether the two spell the same name but for case, as opposed to merely looking
    /// alike.
    pub fn same_spelling(&self, other: &Nick) -> bool {
        self.sort_key() == other.sort_key()
    }

    /// What the nick is compared by: [`fold`] of its spelling.
    pub(crate) fn key(&self) -> &str {
        self.0.key()
    }
}

/// The comparison key of any text, as names get theirs (case-folded confusable skeleton):
/// what a ban mask is folded with, so `Ana*` bans `аna` spelled in Cyrillic too.
pub(crate) fn fold(text: &str) -> String {
    let text: String = text.nfc().collect();
    let key: String = skeleton(&text.to_lowercase())
        .collect::<String>()
        .to_lowercase();
    key.nfc().collect()
}

/// How many room names each thread remembers having parsed ([`PARSED_ROOMS`]); when
/// that many are held, the memo starts again empty.
const PARSED_ROOMS_HELD: usize = 1024;

thread_local! {
    /// Room names parsed lately on this thread, by the spelling they came in. In IRC and
    /// JSON every message names its room, and parsing a name (NFC, the script checks, the
    /// confusable skeleton) cost more than the rest of the message's way in. Parsing is a
    /// pure function of the input, so a name remembered is the name parsed again.
    static PARSED_ROOMS: RefCell<HashMap<Box<str>, RoomName, foldhash::fast::FixedState>> =
        RefCell::default();
}

impl RoomName {
    pub fn parse(input: &str) -> Result<RoomName, NameError> {
        if let Some(room) = PARSED_ROOMS.with_borrow(|memo| memo.get(input).cloned()) {
            return Ok(room);
        }
        let room = RoomName::parse_anew(input)?;
        PARSED_ROOMS.with_borrow_mut(|memo| {
            if memo.len() >= PARSED_ROOMS_HELD {
                memo.clear();
            }
            memo.insert(input.into(), room.clone());
        });
        Ok(room)
    }

    fn parse_anew(input: &str) -> Result<RoomName, NameError> {
        let input = input.trim();
        let body = input.strip_prefix('#').unwrap_or(input);
        let body: String = body.nfc().collect();
        if body.is_empty() {
            return Err(NameError::Empty);
        }
        if body.chars().count() + 1 > MAX_ROOM_CHARS {
            return Err(NameError::RoomTooLong);
        }
        check_chars(&body)?;
        Ok(RoomName(Name::new(format!("#{body}"))))
    }

    /// The room everyone starts in.
    pub fn lobby() -> RoomName {
        RoomName::parse("#lobby").expect("#lobby is a valid room name")
    }

    pub fn as_str(&self) -> &str {
        self.0.display()
    }

    /// The case-folded spelling, which lists of rooms are sorted by.
    pub fn sort_key(&self) -> &str {
        self.0.sort_key()
    }

    /// What rooms are compared by: two names with the same key are the same room. A
    /// durable store looks rooms up by it.
    pub fn key(&self) -> &str {
        self.0.key()
    }
}

macro_rules! name_traits {
    ($t:ty) => {
        impl PartialEq for $t {
            fn eq(&self, other: &Self) -> bool {
                self.0 == other.0
            }
        }
        impl Eq for $t {}
        impl std::hash::Hash for $t {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                self.0.hash(state)
            }
        }
    };
}
name_traits!(Nick);
name_traits!(RoomName);
str_formatting!(Nick, RoomName);

#[cfg(test)]
mod tests {
    use super::*;

    fn nick(s: &str) -> Nick {
        Nick::parse(s).unwrap()
    }

    #[test]
    fn a_room_parsed_again_is_the_room_parsed_first() {
        let first = RoomName::parse("#Ops").unwrap();
        let again = RoomName::parse("#Ops").unwrap();
        assert!(first == again && again.as_str() == "#Ops");
        assert!(RoomName::parse(" #ops\t").unwrap() == first);
        assert_eq!(RoomName::parse(" #ops\t").unwrap().as_str(), "#ops");
        for _ in 0..2 {
            assert_eq!(
                RoomName::parse("#a b").map(|_| ()),
                Err(NameError::BadChar(' '))
            );
        }
        // Past what a thread holds, the memo starts again and names still come out right.
        for i in 0..PARSED_ROOMS_HELD + 10 {
            assert_eq!(
                RoomName::parse(&format!("#r{i}")).unwrap().as_str(),
                format!("#r{i}")
            );
        }
        assert!(PARSED_ROOMS.with_borrow(|memo| memo.len()) <= PARSED_ROOMS_HELD);
        assert_eq!(RoomName::parse("#Ops").unwrap().as_str(), "#Ops");
    }

    #[test]
    fn nicks_accept_letters_of_any_script() {
        for ok in [
            "Begoña",
            "João",
            "ana_2",
            "_x",
            "Ζωή",
            "李小龙",
            "a.b-c",
            "Алёна",
            "guest-1",
            // Han with Hiragana and Katakana is Japanese: one script for UTS #39.
            "山田たろうタロウ",
            // Latin with Han, or with one other script unlike it, is moderately restrictive.
            "Li李",
            "anaहिंदी",
            "mike",
        ] {
            assert_eq!(nick(ok).as_str(), ok, "{ok}");
        }
    }

    #[test]
    fn nicks_compare_case_insensitively_and_keep_spelling() {
        let a = nick("Begoña");
        let b = nick("BEGOÑA");
        assert_eq!(a, b);
        assert_eq!(b.as_str(), "BEGOÑA");
        assert_eq!(a.sort_key(), "begoña");
        assert!(a.same_spelling(&b));
    }

    #[test]
    fn nicks_are_normalised_to_nfc() {
        let decomposed = "Joa\u{0303}o";
        let nick = nick(decomposed);
        assert_eq!(nick.as_str(), "João");
        assert_eq!(nick, self::nick("João"));
    }

    #[test]
    fn look_alike_names_are_equal() {
        // Wholly Cyrillic spellings of Latin-looking names are valid, and equal to them.
        for (a, b) in [
            ("paco", "расо"),
            ("Paco", "РАСО"),
            ("ops", "орѕ"),
            ("rnike", "mike"),
            ("guest-l", "guest-1"),
            ("bob", "B0B"),
            ("ana", "ANA"),
        ] {
            let (na, nb) = (nick(a), nick(b));
            assert_eq!(na, nb, "{a} {b}");
            assert_eq!(nb.as_str(), b);
        }
        assert!(!nick("paco").same_spelling(&nick("расо")));
        assert_eq!(
            RoomName::parse("#орѕ").unwrap(),
            RoomName::parse("#OPS").unwrap()
        );
        assert_ne!(nick("ana"), nick("anna"));
        assert_ne!(nick("ana"), nick("ána"));
    }

    #[test]
    fn invisible_and_variant_characters_are_refused() {
        assert_eq!(
            Nick::parse("ana\u{3164}").unwrap_err(),
            NameError::Invisible('\u{3164}')
        );
        assert_eq!(
            Nick::parse("\u{3164}").unwrap_err(),
            NameError::Invisible('\u{3164}')
        );
        assert_eq!(
            Nick::parse("a\u{ffa0}").unwrap_err(),
            NameError::Invisible('\u{ffa0}')
        );
        assert_eq!(
            Nick::parse("a\u{115f}").unwrap_err(),
            NameError::Invisible('\u{115f}')
        );
        assert_eq!(
            Nick::parse("ａｎａ").unwrap_err(),
            NameError::Restricted('ａ')
        );
        assert_eq!(
            NameError::Invisible('\u{3164}').to_string(),
            "U+3164 is not allowed in a name: it shows as nothing"
        );
        assert!(
            NameError::Restricted('ａ')
                .to_string()
                .starts_with("'ａ' (U+FF41) is not allowed in a name")
        );
        assert!(RoomName::parse("#ops\u{3164}").is_err());
        assert!(RoomName::parse("#ｏｐｓ").is_err());
    }

    #[test]
    fn latin_mixed_with_cyrillic_or_greek_is_refused() {
        for bad in ["аna", "оbs", "pаypal", "Ζωήa"] {
            assert!(
                matches!(Nick::parse(bad), Err(NameError::MixedScripts(_))),
                "{bad}: {:?}",
                Nick::parse(bad)
            );
        }
        assert_eq!(
            Nick::parse("аna").unwrap_err(),
            NameError::MixedScripts("Cyrillic, Latin".into())
        );
        assert!(matches!(
            RoomName::parse("#оps"),
            Err(NameError::MixedScripts(_))
        ));
    }

    #[test]
    fn nicks_refuse_spaces_controls_and_bad_starts() {
        assert_eq!(Nick::parse("a b").unwrap_err(), NameError::BadChar(' '));
        assert_eq!(
            Nick::parse("a\u{1b}[31m").unwrap_err(),
            NameError::BadChar('\u{1b}')
        );
        assert_eq!(Nick::parse("").unwrap_err(), NameError::Empty);
        assert_eq!(Nick::parse("9lives").unwrap_err(), NameError::BadStart);
        assert_eq!(Nick::parse("#room").unwrap_err(), NameError::BadChar('#'));
        let long = "ñ".repeat(MAX_NICK_CHARS + 1);
        assert_eq!(Nick::parse(&long).unwrap_err(), NameError::NickTooLong);
        assert!(Nick::parse(&"ñ".repeat(MAX_NICK_CHARS)).is_ok());
    }

    #[test]
    fn rooms_get_a_hash_and_fold_case() {
        let r = RoomName::parse("Ops").unwrap();
        assert_eq!(r.as_str(), "#Ops");
        assert_eq!(r.sort_key(), "#ops");
        assert_eq!(r, RoomName::parse("#ops").unwrap());
        assert!(RoomName::parse("#").is_err());
        assert!(RoomName::parse("#a b").is_err());
        assert!(RoomName::parse(&"x".repeat(MAX_ROOM_CHARS)).is_err());
        assert!(RoomName::parse(&"x".repeat(MAX_ROOM_CHARS - 1)).is_ok());
    }

    #[test]
    fn a_name_stores_each_spelling_once_and_stays_two_words() {
        assert_eq!(size_of::<Nick>(), 16);
        assert_eq!(size_of::<RoomName>(), 16);
        // (display, stored, sort key)
        for (display, stored, sorted) in [
            ("ana", "ana", "ana"),
            ("Ana", "ana\0Ana\x01", "ana"),
            ("mike", "rnike\0mike", "mike"),
            ("Mike", "rnike\0Mike\x01mike", "mike"),
            ("Begoña", "begoña\0Begoña\x01", "begoña"),
            ("b10", "blo\0b10", "b10"),
        ] {
            let n = nick(display);
            assert_eq!(&*(n.0).0, stored, "{display}");
            assert_eq!(n.as_str(), display);
            assert_eq!(n.sort_key(), sorted);
            assert_eq!(n, nick(display));
        }
    }
}
