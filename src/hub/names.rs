//! Validated nicks and room names.
//!
//! Both keep the spelling the user chose for display and compare by a case-folded key, so
//! `Begoña` and `BEGOÑA` are the same person and `#Ops` is `#ops`. Input is NFC-normalised
//! first, so `João` typed with a combining tilde is the same nick as with a precomposed `ã`.

use std::sync::Arc;

use unicode_normalization::UnicodeNormalization;

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
}

/// A user's nick: 1 to [`MAX_NICK_CHARS`] letters (any script), digits, `-`, `_` or `.`,
/// starting with a letter or `_`.
#[derive(Clone)]
pub struct Nick(Name);

/// A room name: `#` then 1 or more letters, digits, `-`, `_` or `.`; at most
/// [`MAX_ROOM_CHARS`] characters in all. `/join ops` means `#ops`.
#[derive(Clone)]
pub struct RoomName(Name);

/// Display spelling plus comparison key, cheap to clone: one shared string, `display` alone
/// when it is its own key (most names are lower case already), else `display\0key` (no
/// name contains NUL). One pointer-and-length, not two: a name sits in several of the hub's
/// tables for every session, and idle memory per connection is a target
/// (docs/benchmarks.md).
#[derive(Clone)]
struct Name(Arc<str>);

/// Separates the display spelling from the key when they differ.
const KEY_SEPARATOR: char = '\0';

impl Name {
    fn new(display: String) -> Name {
        let key = display.to_lowercase();
        if key == display {
            return Name(display.into());
        }
        Name(format!("{display}{KEY_SEPARATOR}{key}").into())
    }

    fn display(&self) -> &str {
        self.0
            .split_once(KEY_SEPARATOR)
            .map_or(&self.0, |(display, _)| display)
    }

    fn key(&self) -> &str {
        self.0
            .split_once(KEY_SEPARATOR)
            .map_or(&self.0, |(_, key)| key)
    }
}

fn name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '-' | '_' | '.')
}

fn check_chars(body: &str) -> Result<(), NameError> {
    match body.chars().find(|&c| !name_char(c)) {
        Some(c) => Err(NameError::BadChar(c)),
        None => Ok(()),
    }
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

    /// The case-folded form two nicks are compared by.
    pub fn key(&self) -> &str {
        self.0.key()
    }
}

impl RoomName {
    pub fn parse(input: &str) -> Result<RoomName, NameError> {
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

    pub fn key(&self) -> &str {
        self.0.key()
    }
}

macro_rules! name_traits {
    ($t:ty) => {
        impl PartialEq for $t {
            fn eq(&self, other: &Self) -> bool {
                self.key() == other.key()
            }
        }
        impl Eq for $t {}
        impl std::hash::Hash for $t {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                self.key().hash(state)
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

    #[test]
    fn nicks_accept_letters_of_any_script() {
        for ok in ["Begoña", "João", "ana_2", "_x", "Ζωή", "李小龙", "a.b-c"] {
            assert_eq!(Nick::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn nicks_compare_case_insensitively_and_keep_spelling() {
        let a = Nick::parse("Begoña").unwrap();
        let b = Nick::parse("BEGOÑA").unwrap();
        assert_eq!(a, b);
        assert_eq!(b.as_str(), "BEGOÑA");
        assert_eq!(a.key(), "begoña");
    }

    #[test]
    fn nicks_are_normalised_to_nfc() {
        let decomposed = "Joa\u{0303}o";
        let nick = Nick::parse(decomposed).unwrap();
        assert_eq!(nick.as_str(), "João");
        assert_eq!(nick, Nick::parse("João").unwrap());
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
        assert_eq!(r, RoomName::parse("#ops").unwrap());
        assert!(RoomName::parse("#").is_err());
        assert!(RoomName::parse("#a b").is_err());
        assert!(RoomName::parse(&"x".repeat(MAX_ROOM_CHARS)).is_err());
        assert!(RoomName::parse(&"x".repeat(MAX_ROOM_CHARS - 1)).is_ok());
    }
}
