//! What a typed line asks for: the server's text commands (docs/protocol.md) plus the
//! client's own, parsed without knowing any state.

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
    Join(String),
    Leave {
        room: Option<String>,
        message: Option<String>,
    },
    Users(Option<String>),
    Rooms,
    History(Option<usize>),
    Status(Option<String>),
    /// Client only: type into another room already joined.
    Switch(String),
    /// Client only: the command list.
    Help,
    Quit(Option<String>),
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
        "join" => Input::Join(required("/join #room")?),
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
        "switch" | "go" => Input::Switch(required("/switch #room")?),
        "help" | "?" => Input::Help,
        "quit" | "exit" => Input::Quit(optional()),
        _ => return Err(InputError::Unknown(word.to_string())),
    })
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
        assert_eq!(parse("/JOIN ops"), Ok(Input::Join("ops".into())));
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
        assert_eq!(parse("/join"), Err(InputError::Usage("/join #room")));
        assert_eq!(parse("/msg ana"), Err(InputError::Usage("/msg NAME text")));
        assert_eq!(
            parse("/history lots"),
            Err(InputError::NotACount("lots".into()))
        );
        assert_eq!(parse("/dance"), Err(InputError::Unknown("dance".into())));
    }
}
