//! The command list `/help` shows, shared by both formats.

/// Usage and a short explanation of every command.
pub const COMMANDS: &[(&str, &str)] = &[
    (
        "/nick NAME",
        "change your nick (letters of any script, digits, - _ .)",
    ),
    (
        "/join #room",
        "join a room (created if new: you are its operator) and talk in it; /join #room KEY if it has a key",
    ),
    (
        "/leave [#room] [message]",
        "leave the room you talk in, or the one named",
    ),
    ("/users [#room]", "who is in the room"),
    ("/rooms", "every room and how many are in it"),
    (
        "/lusers",
        "how many are connected (on every node of a cluster), at most, and how many rooms",
    ),
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
    (
        "/ack NAME [note]",
        "in #alerts: the check NAME is seen to; its reminders stop until it changes",
    ),
    (
        "/silence NAME 1h [reason]",
        "in #alerts: say NAME's changes only to /status for a while; /unsilence NAME",
    ),
    ("/topic [#room] [text]", "the room's topic, or set it"),
    ("/kick NICK [reason]", "operators: put NICK out of the room"),
    (
        "/ban NICK, /unban NICK",
        "operators: keep NICK (or a nick!*@* mask) out",
    ),
    (
        "/op NICK, /deop NICK",
        "operators: make NICK an operator, or not",
    ),
    (
        "/voice, /devoice NICK",
        "operators: let NICK speak while the room is +m",
    ),
    (
        "/mode [#room] [+-modes]",
        "the room's modes; operators change them: t n m i k l b o v",
    ),
    (
        "/invite NICK [#room]",
        "let NICK in, even while the room is +i",
    ),
    (
        "/away [message]",
        "mark yourself away (whoever writes to you is told), or back with none",
    ),
    (
        "/whois NAME",
        "the rooms NAME is in, how long idle, and if away",
    ),
    ("/quit [message]", "leave the server"),
    (
        "/register PASSWORD",
        "register your nick: nobody else may take it",
    ),
    (
        "/login NICK PASSWORD",
        "take your registered nick back (/identify too); /logout",
    ),
    (
        "/password OLD NEW",
        "change your password; /unregister PASSWORD",
    ),
    (
        "/token new LABEL",
        "an API token for programs; /token list, /token revoke LABEL",
    ),
    (
        "/oper NAME PASSWORD",
        "become a server operator (--oper): kick and set modes in any room",
    ),
    ("/help", "this list"),
    ("//text", "send a line that starts with /"),
];
