//! What a typed line asks for: the server's text commands (docs/protocol.md) plus the
//! client's own, parsed without knowing any state. A room left out (`None`) is the one
//! typed into.

use crate::accounts::Secret;

/// One typed line, understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A blank line: nothing to do.
    Nothing,
    /// Text for the room typed into (`//x` sends `/x`).
    Say(String),
    Me(String),
    Msg {
        to: String,
        text: String,
    },
    Nick(String),
    Join {
        room: String,
        key: Option<String>,
    },
    Leave {
        room: Option<String>,
        message: Option<String>,
    },
    Users(Option<String>),
    Rooms,
    History(Option<usize>),
    Status(Option<String>),
    /// `/topic [#room] [text]`: ask for the topic, or set it.
    Topic {
        room: Option<String>,
        text: Option<String>,
    },
    Kick {
        room: Option<String>,
        nick: String,
        reason: Option<String>,
    },
    /// `/mode [#room] [+-letters args…]`; `/op NICK` and its kin come to `+o NICK`…
    Mode {
        room: Option<String>,
        modes: Option<String>,
    },
    Invite {
        nick: String,
        room: Option<String>,
    },
    /// Away with a message, or back with none.
    Away(Option<String>),
    Whois(String),
    /// How many are connected, at most, and how many rooms (`/lusers`).
    Census,
    /// `/ack`, `/silence` and `/unsilence` of a check in `#alerts`.
    Alert(AlertInput),
    Account(AccountInput),
    /// Client only: type into another room already joined.
    Switch(String),
    /// Client only: the command list.
    Help,
    Quit(Option<String>),
}

/// What to do about a check or heartbeat that reports to `#alerts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertInput {
    Ack {
        name: String,
        note: Option<String>,
    },
    Silence {
        name: String,
        duration: String,
        reason: Option<String>,
    },
    Unsilence {
        name: String,
    },
}

/// The account commands: each password is one word, as the server's text protocol reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountInput {
    Register { password: Secret },
    Login { nick: String, password: Secret },
    Logout,
    Password { old: Secret, new: Secret },
    Unregister { password: Secret },
    TokenNew { label: String },
    TokenList,
    TokenRevoke { label: String },
    Oper { name: String, password: Secret },
}

/// Whether `line` carries a password, so it must not be kept in the input history.
pub fn carries_secret(line: &str) -> bool {
    let word = line
        .strip_prefix('/')
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or("")
        .to_lowercase();
    matches!(
        word.as_str(),
        "register" | "login" | "identify" | "password" | "unregister" | "oper"
    )
}

/// Why a line was not understood; shown to the user, nothing is sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("/{0} is not a command; /help lists them (//text sends a line starting with /)")]
    Unknown(String),
    #[error("usage: {0}")]
    Usage(&'static str),
    #[error("{0:?} is not a count; try /history 20")]
    NotACount(String),
}

/// Parses one line as typed.
pub fn parse(line: &str) -> Result<Input, InputError> {
    if line.trim().is_empty() {
        return Ok(Input::Nothing);
    }
    let Some(command_line) = line.strip_prefix('/') else {
        return Ok(Input::Say(line.to_string()));
    };
    if command_line.starts_with('/') {
        return Ok(Input::Say(command_line.to_string()));
    }
    let (word, rest) = command_line
        .split_once(char::is_whitespace)
        .unwrap_or((command_line, ""));
    let rest = rest.trim();
    let optional = || (!rest.is_empty()).then(|| rest.to_string());
    let required = |usage| optional().ok_or(InputError::Usage(usage));
    Ok(match word.to_lowercase().as_str() {
        "nick" => Input::Nick(required("/nick NAME")?),
        "join" => {
            let (room, key) = split_word(&required("/join #room [key]")?);
            Input::Join { room, key }
        }
        "leave" | "part" => {
            let (room, message) = if rest.starts_with('#') {
                let (room, message) = rest.split_once(' ').unwrap_or((rest, ""));
                (Some(room.to_string()), message.trim())
            } else {
                (None, rest)
            };
            Input::Leave {
                room,
                message: (!message.is_empty()).then(|| message.to_string()),
            }
        }
        "users" | "who" | "names" => Input::Users(optional()),
        "rooms" | "list" => Input::Rooms,
        "msg" => {
            let usage = "/msg NAME text";
            let (to, text) = rest
                .split_once(char::is_whitespace)
                .ok_or(InputError::Usage(usage))?;
            Input::Msg {
                to: to.to_string(),
                text: text.trim().to_string(),
            }
        }
        "me" => Input::Me(required("/me action")?),
        "history" => Input::History(match optional() {
            None => None,
            Some(n) => Some(n.parse().map_err(|_| InputError::NotACount(n))?),
        }),
        "status" => Input::Status(optional()),
        "topic" => {
            let (room, text) = room_first(rest);
            Input::Topic { room, text }
        }
        "kick" => {
            let (nick, reason) = split_word(&required("/kick NICK [reason]")?);
            Input::Kick {
                room: None,
                nick,
                reason,
            }
        }
        "op" | "deop" | "voice" | "devoice" | "ban" | "unban" => {
            let (usage, change) = match word.to_lowercase().as_str() {
                "op" => ("/op NICK", "+o"),
                "deop" => ("/deop NICK", "-o"),
                "voice" => ("/voice NICK", "+v"),
                "devoice" => ("/devoice NICK", "-v"),
                "ban" => ("/ban NICK", "+b"),
                _ => ("/unban NICK", "-b"),
            };
            let (target, _) = split_word(&required(usage)?);
            Input::Mode {
                room: None,
                modes: Some(format!("{change} {target}")),
            }
        }
        "mode" => {
            let (room, modes) = room_first(rest);
            Input::Mode { room, modes }
        }
        "invite" => {
            let (nick, room) = split_word(&required("/invite NICK [#room]")?);
            Input::Invite { nick, room }
        }
        "away" => Input::Away(optional()),
        "whois" => Input::Whois(split_word(&required("/whois NAME")?).0),
        "lusers" => Input::Census,
        "ack" => {
            let (name, note) = split_word(&required("/ack NAME [note]")?);
            Input::Alert(AlertInput::Ack { name, note })
        }
        "silence" => {
            let usage = "/silence NAME DURATION [reason]";
            let (name, rest) = split_word(&required(usage)?);
            let (duration, reason) = split_word(&rest.ok_or(InputError::Usage(usage))?);
            Input::Alert(AlertInput::Silence {
                name,
                duration,
                reason,
            })
        }
        "unsilence" => Input::Alert(AlertInput::Unsilence {
            name: split_word(&required("/unsilence NAME")?).0,
        }),
        "register" | "login" | "identify" | "logout" | "password" | "unregister" | "token"
        | "oper" => Input::Account(account(&word.to_lowercase(), rest)?),
        "switch" | "go" => Input::Switch(required("/switch #room")?),
        "help" | "?" => Input::Help,
        "quit" | "exit" => Input::Quit(optional()),
        _ => return Err(InputError::Unknown(word.to_string())),
    })
}

/// The account commands, `word` in lower case.
fn account(word: &str, rest: &str) -> Result<AccountInput, InputError> {
    let mut words = rest.split_whitespace();
    let mut next = |usage| {
        words
            .next()
            .map(str::to_string)
            .ok_or(InputError::Usage(usage))
    };
    Ok(match word {
        "register" => AccountInput::Register {
            password: Secret::new(next("/register PASSWORD")?),
        },
        "login" | "identify" => {
            let usage = "/login NICK PASSWORD";
            AccountInput::Login {
                nick: next(usage)?,
                password: Secret::new(next(usage)?),
            }
        }
        "logout" => AccountInput::Logout,
        "password" => {
            let usage = "/password OLD NEW";
            AccountInput::Password {
                old: Secret::new(next(usage)?),
                new: Secret::new(next(usage)?),
            }
        }
        "unregister" => AccountInput::Unregister {
            password: Secret::new(next("/unregister PASSWORD")?),
        },
        "oper" => {
            let usage = "/oper NAME PASSWORD";
            AccountInput::Oper {
                name: next(usage)?,
                password: Secret::new(next(usage)?),
            }
        }
        _ => {
            let usage = "/token new LABEL, /token list or /token revoke LABEL";
            match next(usage)?.to_lowercase().as_str() {
                "new" => AccountInput::TokenNew {
                    label: next(usage)?,
                },
                "list" => AccountInput::TokenList,
                "revoke" => AccountInput::TokenRevoke {
                    label: next(usage)?,
                },
                _ => return Err(InputError::Usage(usage)),
            }
        }
    })
}

/// The first word of `rest` and what follows it, if anything.
fn split_word(rest: &str) -> (String, Option<String>) {
    let (word, after) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let after = after.trim();
    (
        word.to_string(),
        (!after.is_empty()).then(|| after.to_string()),
    )
}

/// A leading `#room`, if `rest` starts with one, and what follows, if anything.
fn room_first(rest: &str) -> (Option<String>, Option<String>) {
    if rest.starts_with('#') {
        let (room, after) = split_word(rest);
        (Some(room), after)
    } else {
        (None, (!rest.is_empty()).then(|| rest.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_and_escaped_slashes_are_said() {
        assert_eq!(
            parse("hola ñandú 😀"),
            Ok(Input::Say("hola ñandú 😀".into()))
        );
        assert_eq!(parse("//shrug"), Ok(Input::Say("/shrug".into())));
        assert_eq!(parse("   "), Ok(Input::Nothing));
    }

    #[test]
    fn commands_take_their_arguments() {
        assert_eq!(
            parse("/JOIN ops"),
            Ok(Input::Join {
                room: "ops".into(),
                key: None
            })
        );
        assert_eq!(
            parse("/join #vault sesame"),
            Ok(Input::Join {
                room: "#vault".into(),
                key: Some("sesame".into())
            })
        );
        assert_eq!(
            parse("/msg João  olá, tudo bem?"),
            Ok(Input::Msg {
                to: "João".into(),
                text: "olá, tudo bem?".into()
            })
        );
        assert_eq!(
            parse("/leave #ops see you"),
            Ok(Input::Leave {
                room: Some("#ops".into()),
                message: Some("see you".into())
            })
        );
        assert_eq!(
            parse("/part bye"),
            Ok(Input::Leave {
                room: None,
                message: Some("bye".into())
            })
        );
        assert_eq!(parse("/history 5"), Ok(Input::History(Some(5))));
        assert_eq!(parse("/switch #ops"), Ok(Input::Switch("#ops".into())));
        assert_eq!(parse("/quit"), Ok(Input::Quit(None)));
        assert_eq!(parse("/who #ops"), Ok(Input::Users(Some("#ops".into()))));
    }

    #[test]
    fn mistakes_are_explained() {
        assert_eq!(parse("/join"), Err(InputError::Usage("/join #room [key]")));
        assert_eq!(parse("/msg ana"), Err(InputError::Usage("/msg NAME text")));
        assert_eq!(
            parse("/history lots"),
            Err(InputError::NotACount("lots".into()))
        );
        assert_eq!(parse("/dance"), Err(InputError::Unknown("dance".into())));
    }

    #[test]
    fn room_commands_name_their_room_or_leave_it_out() {
        assert_eq!(
            parse("/topic #ops deploys at 15:00"),
            Ok(Input::Topic {
                room: Some("#ops".into()),
                text: Some("deploys at 15:00".into())
            })
        );
        assert_eq!(
            parse("/topic"),
            Ok(Input::Topic {
                room: None,
                text: None
            })
        );
        assert_eq!(
            parse("/kick bob  spamming"),
            Ok(Input::Kick {
                room: None,
                nick: "bob".into(),
                reason: Some("spamming".into())
            })
        );
        assert_eq!(
            parse("/op bob"),
            Ok(Input::Mode {
                room: None,
                modes: Some("+o bob".into())
            })
        );
        assert_eq!(
            parse("/unban eve!*@*"),
            Ok(Input::Mode {
                room: None,
                modes: Some("-b eve!*@*".into())
            })
        );
        assert_eq!(
            parse("/mode #ops +kl sesame 20"),
            Ok(Input::Mode {
                room: Some("#ops".into()),
                modes: Some("+kl sesame 20".into())
            })
        );
        assert_eq!(
            parse("/mode"),
            Ok(Input::Mode {
                room: None,
                modes: None
            })
        );
        assert_eq!(
            parse("/invite bob #ops"),
            Ok(Input::Invite {
                nick: "bob".into(),
                room: Some("#ops".into())
            })
        );
        assert_eq!(parse("/away"), Ok(Input::Away(None)));
        assert_eq!(parse("/whois ana"), Ok(Input::Whois("ana".into())));
        assert_eq!(parse("/lusers"), Ok(Input::Census));
        assert_eq!(
            parse("/silence web 1h deploying"),
            Ok(Input::Alert(AlertInput::Silence {
                name: "web".into(),
                duration: "1h".into(),
                reason: Some("deploying".into())
            }))
        );
        assert_eq!(
            parse("/silence web"),
            Err(InputError::Usage("/silence NAME DURATION [reason]"))
        );
        assert_eq!(parse("/op"), Err(InputError::Usage("/op NICK")));
    }

    #[test]
    fn account_commands_take_one_word_passwords() {
        assert_eq!(
            parse("/identify ana s3cret-pass"),
            Ok(Input::Account(AccountInput::Login {
                nick: "ana".into(),
                password: Secret::new("s3cret-pass")
            }))
        );
        assert_eq!(
            parse("/password old-one new-one"),
            Ok(Input::Account(AccountInput::Password {
                old: Secret::new("old-one"),
                new: Secret::new("new-one")
            }))
        );
        assert_eq!(
            parse("/token revoke ci"),
            Ok(Input::Account(AccountInput::TokenRevoke {
                label: "ci".into()
            }))
        );
        assert_eq!(
            parse("/login ana"),
            Err(InputError::Usage("/login NICK PASSWORD"))
        );
        assert_eq!(
            parse("/token burn"),
            Err(InputError::Usage(
                "/token new LABEL, /token list or /token revoke LABEL"
            ))
        );
        // What a password is typed with stays out of the Up-arrow history.
        for line in [
            "/login ana x",
            "/REGISTER x",
            "/password a b",
            "/oper root x",
        ] {
            assert!(carries_secret(line), "{line}");
        }
        for line in ["/logout", "/token list", "login ana x", "/msg ana /login"] {
            assert!(!carries_secret(line), "{line}");
        }
    }
}
