//! What `/help` shows in `charla connect`: the server's commands as this client sends them,
//! then the client's own.

/// Commands carried out by the server.
pub const SERVER_COMMANDS: &[(&str, &str)] = &[
    ("/nick NAME", "change your nick; kept when reconnecting"),
    (
        "/join #room",
        "join a room (created if new) and type into it",
    ),
    (
        "/leave [#room] [message]",
        "leave the room you type into, or the one named",
    ),
    ("/users [#room]", "who is in the room"),
    ("/rooms", "every room and how many are in it"),
    ("/msg NAME text", "a private message to NAME only"),
    ("/me action", "say what you do: * you waves"),
    ("/history [N]", "the last N messages of the room again"),
    ("/status [#room]", "what the feeds of the room are doing"),
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
    out.push("Up and Down recall what you typed; Ctrl-R searches it.".to_string());
    out
}
