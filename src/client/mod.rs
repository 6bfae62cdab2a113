//! The console client, `charla connect` and `charla send`. It speaks the JSON-lines
//! protocol (docs/protocol.md) like any other program would: it skips the text greeting,
//! says hello with its nick and rooms, and matches replies to requests by `ref`.
//!
//! - [`endpoint`], [`tls`], [`link`], [`lines`], [`wire`], [`pacer`]: reaching the server and
//!   speaking the protocol.
//! - [`input`], [`conversation`], [`tracker`], [`chat`], [`view`], [`help`]: what typed
//!   lines mean, what the client knows of its session, and how events are shown.
//! - [`batch`]: lines from a script (stdin not a terminal, or `charla send`).
//! - [`interactive`]: a person at a terminal: a line-editor thread, and a session that
//!   reconnects.

pub mod batch;
pub mod beat;
pub mod chat;
pub mod conversation;
pub mod endpoint;
pub mod error;
pub mod help;
pub mod input;
pub mod interactive;
pub mod lines;
pub mod link;
pub mod pacer;
pub mod tls;
pub mod tracker;
pub mod view;
pub mod wire;

use std::io::IsTerminal;

pub use endpoint::Endpoint;
pub use error::ClientError;

/// What `charla connect` and `charla send` were asked for.
#[derive(Debug, Clone)]
pub struct Options {
    pub endpoint: Endpoint,
    /// The nick to ask for; without one the server names us `guest-N`.
    pub nick: Option<String>,
    /// Rooms to join besides `#lobby`; lines go to the last one.
    pub rooms: Vec<String>,
    /// An API token to log in with (`/token new`); the nick is then the account's.
    pub token: Option<String>,
    /// The password of the account `nick` names, to log in to it (`charla connect --login`).
    pub password: Option<crate::accounts::Secret>,
}

/// `charla connect`: interactive when stdin and stdout are terminals, else each stdin line
/// is sent and each event printed as a plain line.
pub async fn connect(options: Options) -> Result<(), ClientError> {
    if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
        interactive::run(options).await
    } else {
        let stdout = tokio::io::stdout();
        batch::run(
            &options,
            tokio::io::stdin(),
            Some(stdout),
            batch::Lines::Commands,
        )
        .await
    }
}

/// `charla send`: each of `messages`, or each stdin line when there are none, said in the
/// room of `options` (or `#lobby`); succeeds once the server acknowledged every one.
pub async fn send(options: Options, messages: Vec<String>) -> Result<(), ClientError> {
    let no_output: Option<tokio::io::Stdout> = None;
    if messages.is_empty() {
        batch::run(&options, tokio::io::stdin(), no_output, batch::Lines::Text).await
    } else {
        let mut text = messages.join(" ");
        text.push('\n');
        batch::run(&options, text.as_bytes(), no_output, batch::Lines::Text).await
    }
}
