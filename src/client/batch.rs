//! Lines from a script, sent one request each: `charla connect` when stdin is not a
//! terminal, and `charla send`.
//!
//! A script needs to know whether its lines got through, so this mode never reconnects and
//! ends with an error when anything went wrong: the connection failed or was lost, the
//! nick or a room asked for was refused, a line was refused or never acknowledged. Lines
//! are paced to the server's flood allowance (see [`super::pacer`]); a line refused for
//! flooding anyway (a server with a stricter setting) is sent again a little later.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, sleep_until};

use super::Options;
use super::chat::Chat;
use super::conversation::{Action, Conversation};
use super::error::ClientError;
use super::input::{self, Input};
use super::lines::{Line, LineReader};
use super::link::{Link, Welcome};
use super::tracker::Purpose;
use super::view::{Styling, View};
use super::wire::{ClientRequest, ServerEvent};
use crate::limits::MAX_LINE_BYTES;

/// Requests sent and not yet answered. While this many are in flight, no more input is
/// read, so memory stays bounded whatever the script pipes in.
pub const MAX_IN_FLIGHT: usize = 64;

/// Longest input line, in bytes: no longer line could fit in the server's default line
/// bound once wrapped in JSON. A longer one is refused here and counts as a failure.
pub const MAX_INPUT_LINE_BYTES: usize = MAX_LINE_BYTES;

/// How long to wait before sending again a line the server refused for flooding.
pub const FLOOD_RETRY_DELAY: Duration = Duration::from_secs(1);

/// How long to wait for the server's goodbye after asking to quit.
pub const QUIT_GRACE: Duration = Duration::from_secs(2);

/// How each input line is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    /// As typed at the chat prompt: text, or a `/command` (`charla connect`).
    Commands,
    /// Literally, as message text (`charla send`).
    Text,
}

/// Sends every line of `input`, prints every event on `output` (when given) as a plain
/// line, and returns once the server answered every line.
pub async fn run<R, W>(
    options: &Options,
    input: R,
    mut output: Option<W>,
    lines: Lines,
) -> Result<(), ClientError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let conversation = Conversation::new(options.nick.clone(), &options.rooms)
        .map_err(ClientError::Invalid)?
        .logged_in_with(options.token.clone(), options.password.clone());
    let mut chat = Chat::new(conversation, View::new(Styling::Plain));
    let (identity, rooms) = split_hello(chat.conversation.hello());
    let (mut link, welcome) = Link::open(&options.endpoint, identity).await?;
    let mut greeted = welcome_or_refusal(&mut chat, &welcome)?;
    if let Some(rooms) = rooms {
        let welcome = link.hello(rooms).await?;
        greeted.extend(welcome_or_refusal(&mut chat, &welcome)?);
    }
    print(&mut output, &greeted).await?;

    let mut input = LineReader::new(input, MAX_INPUT_LINE_BYTES);
    let mut ended = false;
    let mut quit_message = None;
    let mut failures = 0;
    let mut line_number = 0u64;
    // Lines refused for flooding, to send again at `retry_at`.
    let mut again: VecDeque<ClientRequest> = VecDeque::new();
    let mut retry_at = Instant::now();
    loop {
        if ended && chat.tracker.is_empty() && again.is_empty() {
            break;
        }
        let reply_deadline = chat.tracker.deadline();
        tokio::select! {
            line = input.next(), if !ended && again.is_empty()
                && chat.tracker.len() < MAX_IN_FLIGHT =>
            {
                let bytes = match line? {
                    None => {
                        ended = true;
                        continue;
                    }
                    Some(Line::TooLong) => Err(format!(
                        "longer than {MAX_INPUT_LINE_BYTES} bytes; not sent"
                    )),
                    Some(Line::Bytes(bytes)) => Ok(bytes),
                };
                line_number += 1;
                let action = bytes.and_then(|bytes| {
                    let text = String::from_utf8(bytes)
                        .map_err(|_| "not valid UTF-8; not sent".to_string())?;
                    let input = match lines {
                        Lines::Commands => input::parse(&text).map_err(|e| e.to_string())?,
                        Lines::Text if text.trim().is_empty() => Input::Nothing,
                        Lines::Text => Input::Say(text),
                    };
                    chat.conversation.interpret(input)
                });
                match action {
                    Err(why) => {
                        failures += 1;
                        eprintln!("charla: line {line_number}: {why}");
                    }
                    Ok(Action::Nothing | Action::Switched(_)) => {}
                    Ok(Action::Help) => print(&mut output, &chat.view.help()).await?,
                    Ok(Action::Quit(message)) => {
                        ended = true;
                        quit_message = message;
                    }
                    Ok(Action::Send { request, room_before }) => {
                        let reference = link.send(&request).await?;
                        chat.sent(reference, request, Purpose::Typed, room_before);
                    }
                }
            }
            received = link.next() => {
                let Some(received) = received? else {
                    return Err(ClientError::Lost {
                        endpoint: link.endpoint().clone(),
                        unconfirmed: chat.tracker.len() + again.len(),
                    });
                };
                let outcome = chat.take_in(&received);
                match (outcome.settled, outcome.refusal) {
                    (Some(pending), Some((code, _))) if code == "flood" => {
                        again.push_back(pending.request);
                        retry_at = Instant::now() + FLOOD_RETRY_DELAY;
                    }
                    (Some(pending), Some((code, message))) => {
                        failures += 1;
                        eprintln!("charla: {}: refused: {code}: {message}", describe(&pending.request));
                    }
                    _ => print(&mut output, &outcome.lines).await?,
                }
            }
            () = sleep_until(retry_at), if !again.is_empty() => {
                while let Some(request) = again.pop_front() {
                    let reference = link.send(&request).await?;
                    chat.sent(reference, request, Purpose::Typed, None);
                }
            }
            () = sleep_until(reply_deadline.unwrap_or_else(Instant::now)),
                if reply_deadline.is_some() =>
            {
                return Err(ClientError::NoReply {
                    seconds: super::tracker::REPLY_TIMEOUT.as_secs(),
                });
            }
        }
    }
    goodbye(&mut link, quit_message).await;
    if let Some(out) = output.as_mut() {
        out.flush().await?;
    }
    match failures {
        0 => Ok(()),
        n => Err(ClientError::Refusals(n)),
    }
}

/// The hello of a script that asks for a name or logs in, split in two: the name and the
/// login first, then, once they are taken, the rooms. A script refused its name or its
/// login then ends without having joined anything, so the people in its room never see a
/// guest come and go. `None` for the second when one hello does it all.
fn split_hello(hello: ClientRequest) -> (ClientRequest, Option<ClientRequest>) {
    match hello {
        ClientRequest::Hello {
            nick,
            rooms,
            since,
            token,
            password,
        } if (nick.is_some() || token.is_some() || password.is_some()) && !rooms.is_empty() => (
            ClientRequest::Hello {
                nick,
                rooms: Vec::new(),
                since: Default::default(),
                token,
                password,
            },
            Some(ClientRequest::Hello {
                nick: None,
                rooms,
                since,
                token: None,
                password: None,
            }),
        ),
        hello => (hello, None),
    }
}

/// Takes in a welcome; the first refusal among the hello's steps, as the script's error.
fn welcome_or_refusal(chat: &mut Chat, welcome: &Welcome) -> Result<Vec<String>, ClientError> {
    let outcome = chat.welcome(welcome, false);
    match outcome.refusal {
        Some((code, message)) => Err(ClientError::HelloRefused { code, message }),
        None => Ok(outcome.lines),
    }
}

/// Asks the server to end the session and waits, briefly, for its goodbye, so others see
/// `quit` rather than `connection lost`. Everything the script sent was answered already.
async fn goodbye(link: &mut Link, message: Option<String>) {
    let wait = async {
        link.send(&ClientRequest::Quit { message }).await?;
        while let Some(received) = link.next().await? {
            if let ServerEvent::Bye { .. } = received.event {
                break;
            }
        }
        Ok::<(), std::io::Error>(())
    };
    let _ = tokio::time::timeout(QUIT_GRACE, wait).await;
}

async fn print<W: AsyncWrite + Unpin>(
    output: &mut Option<W>,
    lines: &[String],
) -> std::io::Result<()> {
    if let Some(out) = output {
        for line in lines {
            out.write_all(line.as_bytes()).await?;
            out.write_all(b"\n").await?;
        }
        out.flush().await?;
    }
    Ok(())
}

/// A request in a few words for an error message, as the user would have typed it.
fn describe(request: &ClientRequest) -> String {
    match request {
        ClientRequest::Say { room, text } => format!("{room} {text:?}"),
        ClientRequest::Me { room, text } => format!("{room} /me {text:?}"),
        ClientRequest::Msg { to, text } => format!("/msg {to} {text:?}"),
        ClientRequest::Nick { nick } => format!("/nick {nick}"),
        ClientRequest::Join { room, .. } => format!("/join {room}"),
        ClientRequest::Leave { room, .. } => format!("/leave {room}"),
        ClientRequest::Users { room } => format!("/users {room}"),
        ClientRequest::Rooms => "/rooms".into(),
        ClientRequest::History { room, .. } => format!("/history in {room}"),
        ClientRequest::Status { room } => format!("/status {room}"),
        ClientRequest::Hello { .. } => "hello".into(),
        ClientRequest::Quit { .. } => "/quit".into(),
        ClientRequest::Beat { name, .. } => format!("a beat of {name}"),
        ClientRequest::Topic { room, .. } => format!("/topic {room}"),
        ClientRequest::Kick { room, nick, .. } => format!("/kick {nick} in {room}"),
        ClientRequest::Mode { room, modes } => {
            format!("/mode {room} {}", modes.as_deref().unwrap_or_default())
        }
        ClientRequest::Invite { room, nick } => format!("/invite {nick} {room}"),
        ClientRequest::Away { .. } => "/away".into(),
        ClientRequest::Whois { nick } => format!("/whois {nick}"),
        ClientRequest::Census => "/lusers".into(),
        ClientRequest::Ack { name, .. } => format!("/ack {name}"),
        ClientRequest::Silence { name, .. } => format!("/silence {name}"),
        ClientRequest::Unsilence { name } => format!("/unsilence {name}"),
        // Never the password.
        ClientRequest::Register { .. } => "/register".into(),
        ClientRequest::Login { nick, .. } => format!("/login {nick}"),
        ClientRequest::Logout => "/logout".into(),
        ClientRequest::Password { .. } => "/password".into(),
        ClientRequest::Unregister { .. } => "/unregister".into(),
        ClientRequest::TokenNew { label } => format!("/token new {label}"),
        ClientRequest::TokenList => "/token list".into(),
        ClientRequest::TokenRevoke { label } => format!("/token revoke {label}"),
        ClientRequest::Oper { name, .. } => format!("/oper {name}"),
    }
}
