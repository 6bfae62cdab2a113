//! Mode changes as every protocol spells them: IRC's `+ov-k ana bob key` — letters, then
//! the arguments of the letters that take one, in order. `/mode` in text, a JSON `mode`
//! request and IRC's MODE share this parser.

use super::{Refusal, nick_arg};
use crate::hub::{BanMask, ErrorCode, Mode, ModeChange, Modes};
use crate::limits::{MAX_KEY_BYTES, MAX_MODE_ARGS};

/// What a mode line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum ModeRequest {
    /// The room's modes (no letters).
    Query,
    /// The ban list (`+b` or `b` with no mask).
    Bans,
    Change(Vec<ModeChange>),
}

/// A mode line refused: why, and the letter whose argument is at fault when one is (IRC's
/// `696` names it).
#[derive(Debug, PartialEq, Eq)]
pub struct ModeRefusal {
    pub refusal: Refusal,
    pub letter: Option<char>,
}

impl ModeRefusal {
    fn of(letter: Option<char>, code: ErrorCode, message: String) -> ModeRefusal {
        ModeRefusal {
            refusal: Refusal::new(code, message),
            letter,
        }
    }
}

impl From<ModeRefusal> for Refusal {
    fn from(refused: ModeRefusal) -> Refusal {
        refused.refusal
    }
}

/// Parses `letters` (`+mi-t`, a leading `+` optional) with `args` for the letters that
/// take one: `b`, `k`, `o`, `v` always, `l` when set. A key or limit that could never be
/// set is refused here, naming its letter, as a ban mask that is not one is.
pub fn parse(letters: &str, args: &[&str]) -> Result<ModeRequest, ModeRefusal> {
    if letters.is_empty() {
        return Ok(ModeRequest::Query);
    }
    if args.is_empty() && matches!(letters, "b" | "+b") {
        return Ok(ModeRequest::Bans);
    }
    let mut args = args.iter();
    let mut add = true;
    let mut changes = Vec::new();
    for letter in letters.chars() {
        let sign = if add { '+' } else { '-' };
        let mut arg = |what: &str| {
            args.next().copied().ok_or_else(|| {
                ModeRefusal::of(
                    None,
                    ErrorCode::MissingArgument,
                    format!("{sign}{letter} needs {what}"),
                )
            })
        };
        let invalid =
            |message: String| ModeRefusal::of(Some(letter), ErrorCode::InvalidArgument, message);
        let mode = match letter {
            '+' => {
                add = true;
                continue;
            }
            '-' => {
                add = false;
                continue;
            }
            't' => Mode::TopicLocked,
            'n' => Mode::NoOutside,
            'm' => Mode::Moderated,
            'i' => Mode::InviteOnly,
            's' => Mode::Secret,
            'k' if add => {
                let key = arg("a key")?;
                if !Modes::valid_key(key) {
                    return Err(invalid(format!(
                        "a key is 1 to {MAX_KEY_BYTES} bytes, without spaces, commas or \
                         control characters"
                    )));
                }
                Mode::Key(key.to_string())
            }
            // IRC sends the key to remove it too; a person typing `/mode -k` need not.
            'k' => Mode::Key(args.next().copied().unwrap_or("*").to_string()),
            'l' if add => {
                let limit = arg("a member count")?;
                match limit.parse() {
                    Ok(0) => return Err(invalid("a limit is at least 1".into())),
                    Ok(count) => Mode::Limit(count),
                    Err(_) => return Err(invalid(format!("{limit:?} is not a member count"))),
                }
            }
            'l' => Mode::Limit(0),
            'b' => Mode::Ban(BanMask::parse(arg("a nick or mask")?).map_err(invalid)?),
            'o' => Mode::Op(nick_arg(arg("a nick")?).map_err(|refusal| ModeRefusal {
                refusal,
                letter: Some(letter),
            })?),
            'v' => Mode::Voice(nick_arg(arg("a nick")?).map_err(|refusal| ModeRefusal {
                refusal,
                letter: Some(letter),
            })?),
            other => {
                return Err(ModeRefusal::of(
                    None,
                    ErrorCode::UnknownMode,
                    format!(
                        "{other} is not a mode charla has (it has b, i, k, l, m, n, s, t, o, v)"
                    ),
                ));
            }
        };
        changes.push(ModeChange { add, mode });
    }
    let with_param = changes.iter().filter(|c| c.mode.takes_param()).count();
    if with_param > MAX_MODE_ARGS {
        return Err(ModeRefusal::of(
            None,
            ErrorCode::InvalidArgument,
            format!("at most {MAX_MODE_ARGS} changes with a parameter at once"),
        ));
    }
    if changes.is_empty() {
        return Ok(ModeRequest::Query);
    }
    Ok(ModeRequest::Change(changes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::Nick;

    #[test]
    fn letters_take_their_arguments_in_order() {
        let Ok(ModeRequest::Change(changes)) = parse("+ov-k+l", &["ana", "bob", "x", "5"]) else {
            panic!()
        };
        let nick = |n| Nick::parse(n).unwrap();
        assert_eq!(
            changes,
            [
                ModeChange {
                    add: true,
                    mode: Mode::Op(nick("ana"))
                },
                ModeChange {
                    add: true,
                    mode: Mode::Voice(nick("bob"))
                },
                ModeChange {
                    add: false,
                    mode: Mode::Key("x".into())
                },
                ModeChange {
                    add: true,
                    mode: Mode::Limit(5)
                },
            ]
        );
        assert_eq!(parse("", &[]), Ok(ModeRequest::Query));
        assert_eq!(parse("+b", &[]), Ok(ModeRequest::Bans));
        assert!(matches!(parse("m-t", &[]), Ok(ModeRequest::Change(c)) if c.len() == 2));
    }

    #[test]
    fn mistakes_are_refused_with_their_code() {
        let code = |letters, args: &[&str]| parse(letters, args).unwrap_err().refusal.code;
        assert_eq!(code("+z", &[]), ErrorCode::UnknownMode);
        assert_eq!(code("+k", &[]), ErrorCode::MissingArgument);
        assert_eq!(code("+l", &["many"]), ErrorCode::InvalidArgument);
        assert_eq!(code("+b", &["a!b@c"]), ErrorCode::InvalidArgument);
        assert_eq!(code("+o", &["1x"]), ErrorCode::InvalidNick);
    }
}
