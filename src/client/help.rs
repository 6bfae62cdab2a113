//! What `/help` shows in `charla connect`: the server's commands as this client sends them,
//! then the client's own.

/// Commands carried out by the server.
pub const SERVER_COMMANDS: &[(&str, &str)] = &[
    ("/nick NAME", "change your nick; kept when reconnecting"),
    (
        "/join #room [key]",
        "join a room (created if new: you are its operator) and type into it",
    ),
    (
        "/leave [#room] [message]",
        "leave the room you type into, or the one named",
    ),
    ("/users [#room]", "who is in the room"),
    ("/rooms", "every room and how many are in it"),
    (
        "/lusers",
        "how many are connected, at most, and how many rooms",
    ),
    ("/msg NAME text", "a private message to NAME only"),
    ("/me action", "say what you do: * you waves"),
    ("/history [N]", "the last N messages of the room again"),
    ("/topic [#room] [text]", "the room's topic, or set it"),
    ("/away [message]", "mark yourself away, or back with none"),
    (
        "/whois NAME",
        "the rooms NAME is in, how long idle, and if away",
    ),
    (
        "/invite NICK [#room]",
        "let NICK in, even while the room is +i",
    ),
    ("/kick NICK [reason]", "operators: put NICK out of the room"),
    (
        "/op, /deop NICK",
        "operators: make NICK an operator, or not",
    ),
    (
        "/voice, /devoice NICK",
        "operators: let NICK speak while the room is +m",
    ),
    (
        "/ban, /unban NICK",
        "operators: keep NICK (or a nick!*@* mask) out",
    ),
    (
        "/mode [#room] [+-modes]",
        "the room's modes; operators change them: t n m i k l b o v",
    ),
    ("/status [#room]", "what the feeds of the room are doing"),
    ("/ack NAME [note]", "in #alerts: the check NAME is seen to"),
    (
        "/silence NAME 1h [reason]",
        "in #alerts: quiet NAME's changes for a while; /unsilence NAME",
    ),
    (
        "/register PASSWORD",
        "register your nick: nobody else may take it",
    ),
    (
        "/login NICK PASSWORD",
        "take your registered nick back (/identify too; kept for reconnects); /logout",
    ),
    (
        "/password OLD NEW",
        "change your password; /unregister PASSWORD",
    ),
    (
        "/token new LABEL",
        "an API token for programs; /token list, /token revoke LABEL",
    ),
    ("/oper NAME PASSWORD", "become a server operator"),
    ("//text", "send a line that starts with /"),
];

/// Commands the client carries out itself.
pub const CLIENT_COMMANDS: &[(&str, &str)] = &[
    (
        "/switch #room",
        "type into another room you are in (the prompt shows which)",
    ),
    ("/quit [message]", "leave and exit (also Ctrl-D or Ctrl-C)"),
    ("/help", "this list"),
];

/// The help text, one line per entry, without styling.
pub fn lines() -> Vec<String> {
    let width = SERVER_COMMANDS
        .iter()
        .chain(CLIENT_COMMANDS)
        .map(|(usage, _)| usage.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = vec!["server commands:".to_string()];
    let entry = |(usage, about): &(&str, &str)| format!("  {usage:width$}  {about}");
    out.extend(SERVER_COMMANDS.iter().map(entry));
    out.push("client commands:".to_string());
    out.extend(CLIENT_COMMANDS.iter().map(entry));
    out.push(
        "Up and Down recall what you typed (not lines with a password); Ctrl-R searches it."
            .to_string(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::input::{InputError, parse};

    /// Every command the list shows is one the client understands.
    #[test]
    fn every_command_listed_is_understood() {
        for (usage, _) in SERVER_COMMANDS.iter().chain(CLIENT_COMMANDS) {
            for command in usage.split(", ") {
                let word = command.split_whitespace().next().unwrap();
                if word == "//text" {
                    continue;
                }
                assert!(
                    !matches!(parse(word), Err(InputError::Unknown(_))),
                    "{word} is listed but not understood"
                );
            }
        }
    }
}
