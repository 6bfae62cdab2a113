//! The command list `/help` shows, shared by both formats.

/// Usage and a short explanation of every command.
pub const COMMANDS: &[(&str, &str)] = &[
    (
        "/nick NAME",
        "change your nick (letters of any script, digits, - _ .)",
    ),
    ("/join #room", "join a room (created if new) and talk in it"),
    (
        "/leave [#room] [message]",
        "leave the room you talk in, or the one named",
    ),
    ("/users [#room]", "who is in the room"),
    ("/rooms", "every room and how many are in it"),
    ("/msg NAME text", "a private message to NAME only"),
    ("/me action", "say what you do: * you waves"),
    ("/history [N]", "the last N messages of the room again"),
    (
        "/history since ID",
        "every message of the room after the one with that id",
    ),
    (
        "/status [#room]",
        "what the room's feeds watch and check, and how it stands",
    ),
    ("/quit [message]", "leave the server"),
    ("/help", "this list"),
    ("//text", "send a line that starts with /"),
];
