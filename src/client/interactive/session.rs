//! The async half of the interactive client: a session with the server that survives
//! losing its connection.
//!
//! `State::Connected` reads events and sends what the user types; `State::Disconnected`
//! waits out a backoff, reconnects with the same nick and rooms, and then asks each room's
//! history to show what was said in the meantime, marked as missed.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use nix::sys::termios::{SetArg, Termios, tcgetattr, tcsetattr};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::time::{Instant, sleep_until};

use super::Terminal;
use super::backoff::Backoff;
use super::editor::{Prompt, Typed};
use crate::client::chat::Chat;
use crate::client::conversation::Action;
use crate::client::endpoint::Endpoint;
use crate::client::error::ClientError;
use crate::client::input;
use crate::client::link::{Link, Welcome};
use crate::client::tracker::{Purpose, REPLY_TIMEOUT};
use crate::client::wire::{ClientRequest, Received, ServerEvent};
use crate::hub::RoomName;

/// How long to wait for the server's goodbye when quitting.
const QUIT_GRACE: Duration = Duration::from_secs(1);

type Attempt = Pin<Box<dyn Future<Output = Result<(Link, Welcome), ClientError>> + Send>>;

enum State {
    Connected(Link),
    /// Waiting for `attempt`, which first sleeps out the backoff, then reconnects.
    Disconnected {
        backoff: Backoff,
        attempt: Attempt,
    },
}

pub struct Session {
    chat: Chat,
    terminal: Terminal,
    endpoint: Endpoint,
    state: State,
    /// The server's last word on this connection (its `bye`), to say why it ended.
    goodbye: Option<String>,
    /// SIGTERM and SIGHUP, which end the session like /quit.
    signals: [Signal; 2],
    /// The terminal's settings before the editor changed them, put back if a signal ends
    /// the session while the editor holds the terminal in raw mode.
    modes: Option<Termios>,
}

/// What happened next.
enum Step {
    Typed(Typed),
    Received(std::io::Result<Option<Received>>),
    Silent,
    Reconnected(Result<(Link, Welcome), ClientError>),
    Signalled,
}

impl Session {
    /// Call before the terminal's threads change its settings.
    pub fn new(chat: Chat, terminal: Terminal, endpoint: Endpoint) -> std::io::Result<Session> {
        let state = State::Disconnected {
            backoff: Backoff::new(),
            attempt: Box::pin(std::future::pending()),
        };
        Ok(Session {
            chat,
            terminal,
            endpoint,
            state,
            goodbye: None,
            signals: [
                signal(SignalKind::terminate())?,
                signal(SignalKind::hangup())?,
            ],
            modes: tcgetattr(std::io::stdin()).ok(),
        })
    }

    /// Takes in a fresh connection: shows the replies to the hello, and after a reconnect
    /// asks every room for what was missed.
    pub async fn connected(&mut self, mut link: Link, welcome: &Welcome, reconnect: bool) {
        let room_before = self.chat.conversation.current().cloned();
        let outcome = self.chat.welcome(welcome, reconnect);
        let rooms: Vec<String> = self
            .chat
            .conversation
            .rooms()
            .iter()
            .map(|r| r.as_str().to_string())
            .collect();
        let verb = if reconnect {
            "reconnected"
        } else {
            "connected"
        };
        let notice = format!(
            "{verb} to {} as {}; in {}. /help lists the commands.",
            self.endpoint,
            self.chat.conversation.nick(),
            rooms.join(", ")
        );
        let mut lines = vec![self.chat.view.client(&notice)];
        lines.extend(outcome.lines);
        // The prompt the editor shows was drawn before the cut: when the room it names was
        // refused, say where lines go now, as a refused /join does.
        let room_now = self.chat.conversation.current();
        if reconnect
            && room_before.is_some()
            && room_now != room_before.as_ref()
            && let Some(room) = room_now
        {
            lines.push(self.chat.view.client(&format!("typing into {room}")));
        }
        self.terminal.print(lines).await;
        self.goodbye = None;
        if reconnect {
            // Every room's history, to show what was missed; rooms the hello resumed
            // exactly have had their replay already. (On a first connection the hello's
            // joins brought their rooms' history.)
            let conversation = &self.chat.conversation;
            let catch_up: Vec<ClientRequest> = rooms
                .into_iter()
                .filter(|room| RoomName::parse(room).is_ok_and(|room| !conversation.resumes(&room)))
                .map(|room| ClientRequest::History { room, limit: None })
                .collect();
            for request in catch_up {
                match link.send(&request).await {
                    Ok(reference) => self.chat.sent(reference, request, Purpose::CatchUp, None),
                    Err(e) => return self.disconnected(&e.to_string()).await,
                }
            }
        }
        self.state = State::Connected(link);
    }

    /// Runs until the user quits.
    pub async fn run(mut self) -> Result<(), ClientError> {
        self.terminal.prompt(self.prompt());
        loop {
            let [terminate, hangup] = &mut self.signals;
            let signalled = async {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = hangup.recv() => {}
                }
            };
            let step = match &mut self.state {
                State::Connected(link) => {
                    let deadline = self.chat.tracker.deadline();
                    tokio::select! {
                        typed = self.terminal.typed() => Step::Typed(typed),
                        received = link.next() => Step::Received(received),
                        () = sleep_until(deadline.unwrap_or_else(Instant::now)),
                            if deadline.is_some() => Step::Silent,
                        () = signalled => Step::Signalled,
                    }
                }
                State::Disconnected { attempt, .. } => tokio::select! {
                    typed = self.terminal.typed() => Step::Typed(typed),
                    result = attempt => Step::Reconnected(result),
                    () = signalled => Step::Signalled,
                },
            };
            match step {
                Step::Typed(Typed::Line(text)) => {
                    for line in text.split(['\n', '\r']) {
                        if let Some(message) = self.typed(line).await {
                            return self.quit(message).await;
                        }
                    }
                    self.terminal.prompt(self.prompt());
                }
                Step::Typed(Typed::End | Typed::Interrupt) => return self.quit(None).await,
                Step::Typed(Typed::Failed(why)) => {
                    self.quit(None).await?;
                    return Err(ClientError::Io(std::io::Error::other(why)));
                }
                Step::Received(Ok(Some(received))) => self.received(&received).await,
                Step::Received(Ok(None)) => {
                    let why = self
                        .goodbye
                        .take()
                        .unwrap_or_else(|| "the server closed the connection".into());
                    self.disconnected(&why).await;
                }
                Step::Received(Err(e)) => self.disconnected(&e.to_string()).await,
                Step::Silent => {
                    let why = format!(
                        "the server did not answer for {} s",
                        REPLY_TIMEOUT.as_secs()
                    );
                    self.disconnected(&why).await;
                }
                Step::Reconnected(Ok((link, welcome))) => {
                    self.connected(link, &welcome, true).await;
                }
                Step::Reconnected(Err(ClientError::Refused(_))) => {
                    self.retry_later("connection refused").await;
                }
                Step::Reconnected(Err(e)) => self.retry_later(&e.to_string()).await,
                Step::Signalled => return self.stop_on_signal().await,
            }
        }
    }

    /// Carries out one typed line; `Some(parting words)` when it asks to quit.
    async fn typed(&mut self, line: &str) -> Option<Option<String>> {
        let action = input::parse(line)
            .map_err(|e| e.to_string())
            .and_then(|input| self.chat.conversation.interpret(input));
        let view = &self.chat.view;
        let lines = match action {
            Err(why) => vec![view.refusal(&why)],
            Ok(Action::Nothing) => Vec::new(),
            Ok(Action::Help) => view.help(),
            Ok(Action::Switched(room)) => vec![view.client(&format!("typing into {room}"))],
            Ok(Action::Quit(message)) => return Some(message),
            Ok(Action::Send {
                request,
                room_before,
            }) => {
                self.send(request, room_before).await;
                return None;
            }
        };
        self.terminal.print(lines).await;
        None
    }

    /// Sends what the user asked for, showing their own messages as sent.
    async fn send(&mut self, request: ClientRequest, room_before: Option<crate::hub::RoomName>) {
        let State::Connected(link) = &mut self.state else {
            if let ClientRequest::Join { .. } = request {
                self.chat.conversation.join_refused(room_before);
            }
            let why =
                "not connected, so that was not sent; it is reconnecting (Up recalls the line)";
            let line = self.chat.view.refusal(why);
            self.terminal.print(vec![line]).await;
            return;
        };
        let me = self.chat.conversation.nick().to_string();
        let echo = match &request {
            ClientRequest::Say { room, text } => Some(self.chat.view.own(room, text, false, &me)),
            ClientRequest::Me { room, text } => Some(self.chat.view.own(room, text, true, &me)),
            ClientRequest::Msg { to, text } => Some(self.chat.view.own_private(to, text, &me)),
            _ => None,
        };
        self.terminal.print(echo.into_iter().collect()).await;
        match link.send(&request).await {
            Ok(reference) => {
                self.chat
                    .sent(reference, request, Purpose::Typed, room_before);
            }
            Err(e) => self.disconnected(&e.to_string()).await,
        }
    }

    async fn received(&mut self, received: &Received) {
        if let ServerEvent::Bye { reason, message } = &received.event {
            let why = reason.replace('_', " ");
            self.goodbye = Some(match message {
                Some(m) => format!("{why}: {m}"),
                None => why,
            });
        }
        let outcome = self.chat.take_in(received);
        let prompt_changed = outcome.settled.as_ref().is_some_and(|p| {
            matches!(
                p.request,
                ClientRequest::Join { .. } | ClientRequest::Leave { .. }
            ) && outcome.refusal.is_some()
        });
        self.terminal.print(outcome.lines).await;
        if prompt_changed && let Some(room) = self.chat.conversation.current() {
            let line = self.chat.view.client(&format!("typing into {room}"));
            self.terminal.print(vec![line]).await;
        }
    }

    /// The connection is gone: says so at once, and what may not have got through, then
    /// starts reconnecting.
    async fn disconnected(&mut self, why: &str) {
        let unconfirmed = self.chat.tracker.drain();
        let mut lines = Vec::new();
        for pending in unconfirmed {
            match pending.request {
                ClientRequest::Say { text, .. }
                | ClientRequest::Me { text, .. }
                | ClientRequest::Msg { text, .. } => {
                    let note =
                        format!("not confirmed: {text:?} (it shows as missed if it got through)");
                    lines.push(self.chat.view.client(&note));
                }
                ClientRequest::Join { .. } => {
                    self.chat.conversation.join_refused(pending.room_before)
                }
                _ => {}
            }
        }
        let mut backoff = Backoff::new();
        let delay = backoff.delay();
        let notice = format!(
            "disconnected from {}: {why}; reconnecting in {:.1} s",
            self.endpoint,
            delay.as_secs_f64()
        );
        lines.insert(0, self.chat.view.client(&notice));
        self.terminal.print(lines).await;
        self.state = State::Disconnected {
            attempt: self.attempt(delay),
            backoff,
        };
    }

    /// A reconnection attempt failed: the next one waits longer.
    async fn retry_later(&mut self, why: &str) {
        let State::Disconnected { backoff, .. } = &mut self.state else {
            return;
        };
        let delay = backoff.delay();
        let notice = format!(
            "cannot reconnect: {why}; next try in {:.1} s",
            delay.as_secs_f64()
        );
        let attempt = self.attempt(delay);
        if let State::Disconnected { attempt: slot, .. } = &mut self.state {
            *slot = attempt;
        }
        let line = self.chat.view.client(&notice);
        self.terminal.print(vec![line]).await;
    }

    /// Waits `delay`, then connects and says hello with the nick and rooms of now.
    fn attempt(&self, delay: Duration) -> Attempt {
        let endpoint = self.endpoint.clone();
        let hello = self.chat.conversation.hello();
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            Link::open(&endpoint, hello).await
        })
    }

    /// Leaves the server politely (when connected) and gives the terminal back.
    async fn quit(mut self, message: Option<String>) -> Result<(), ClientError> {
        self.farewell(message).await;
        self.terminal.close().await;
        Ok(())
    }

    /// Tells the server we are leaving (when connected), and waits briefly for its
    /// goodbye, so others see `quit` rather than `connection lost`.
    async fn farewell(&mut self, message: Option<String>) {
        if let State::Connected(link) = &mut self.state {
            let farewell = async {
                link.send(&ClientRequest::Quit { message }).await?;
                while let Some(received) = link.next().await? {
                    if let ServerEvent::Bye { .. } = received.event {
                        break;
                    }
                }
                Ok::<(), std::io::Error>(())
            };
            let _ = tokio::time::timeout(QUIT_GRACE, farewell).await;
        }
    }

    /// A signal ends the session while the editor may be reading a line in raw mode; it
    /// cannot be told to stop, so the terminal's settings are put back here and the editor
    /// thread is left to end with the process.
    async fn stop_on_signal(mut self) -> Result<(), ClientError> {
        self.farewell(None).await;
        if let Some(modes) = &self.modes {
            let _ = tcsetattr(std::io::stdin(), SetArg::TCSADRAIN, modes);
        }
        println!();
        Ok(())
    }

    /// `#room> `, the room lines go to.
    fn prompt(&self) -> Prompt {
        let room = self
            .chat
            .conversation
            .current()
            .map_or_else(|| "(no room)".to_string(), |r| r.as_str().to_string());
        let plain = format!("{room}> ");
        let styled = format!("{}> ", self.chat.view.room_name(&room));
        Prompt { plain, styled }
    }
}
