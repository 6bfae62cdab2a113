//! `charla connect` at a terminal.
//!
//! Three parts, so that nothing typed is ever garbled and nothing waits on anything else:
//! the line-editor thread (`editor`) reads what the user types; the printer thread
//! (`screen`) prints above the line being edited; the `session`, in the async runtime,
//! talks to the server and reconnects when the connection is lost.

mod backoff;
mod editor;
mod screen;
mod session;

use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::thread::{self, JoinHandle};

use tokio::sync::mpsc;

use super::Options;
use super::chat::Chat;
use super::conversation::Conversation;
use super::error::ClientError;
use super::link::Link;
use super::view::{Styling, View};
use editor::{Prompt, Typed};
use screen::Gate;
use session::Session;

/// Lines waiting for the printer thread. The session waits when this many are queued,
/// which happens only while the terminal itself cannot keep up.
pub const SCREEN_BACKLOG: usize = 1024;

/// Runs an interactive session until the user quits. The first connection must succeed, so
/// a wrong address or a stopped server is reported at once, before the terminal is taken
/// over; later disconnections are ridden out by reconnecting.
pub async fn run(options: Options) -> Result<(), ClientError> {
    let conversation = Conversation::new(options.nick.clone(), &options.rooms)
        .map_err(ClientError::Invalid)?
        .logged_in_with(options.token.clone(), options.password.clone());
    let hello = conversation.hello();
    let (link, welcome) = Link::open(&options.endpoint, hello).await?;
    let chat = Chat::new(conversation, View::new(Styling::for_terminal()));
    let terminal = Terminal::start()?;
    let mut session = Session::new(chat, terminal, options.endpoint)?;
    session.connected(link, &welcome, false).await;
    session.run().await
}

/// The threads that own the terminal, and the channels to them.
pub struct Terminal {
    prompts: Option<std_mpsc::Sender<Prompt>>,
    typed: mpsc::Receiver<Typed>,
    screen: Option<mpsc::Sender<String>>,
    threads: Vec<JoinHandle<()>>,
}

impl Terminal {
    fn start() -> std::io::Result<Terminal> {
        let gate = Arc::new(Gate::default());
        let mut editor = editor::editor(&gate).map_err(std::io::Error::other)?;
        // None on a terminal rustyline does not drive (TERM=dumb): lines are then written
        // plainly.
        let printer = editor.create_external_printer().ok();
        let (prompt_tx, prompt_rx) = std_mpsc::channel();
        let (typed_tx, typed_rx) = mpsc::channel(1);
        let (screen_tx, screen_rx) = mpsc::channel(SCREEN_BACKLOG);
        let editor_gate = gate.clone();
        let threads = vec![
            thread::Builder::new()
                .name("charla-editor".into())
                .spawn(move || editor::read_lines(editor, editor_gate, prompt_rx, typed_tx))?,
            thread::Builder::new()
                .name("charla-printer".into())
                .spawn(move || screen::print_lines(screen_rx, gate, printer))?,
        ];
        Ok(Terminal {
            prompts: Some(prompt_tx),
            typed: typed_rx,
            screen: Some(screen_tx),
            threads,
        })
    }

    /// Shows lines above the prompt, in order.
    async fn print(&self, lines: Vec<String>) {
        if let Some(screen) = &self.screen {
            for line in lines {
                if screen.send(line).await.is_err() {
                    return;
                }
            }
        }
    }

    /// Lets the user type the next line after `prompt`.
    fn prompt(&self, prompt: Prompt) {
        if let Some(prompts) = &self.prompts {
            let _ = prompts.send(prompt);
        }
    }

    /// What the user did next. Cancel-safe.
    async fn typed(&mut self) -> Typed {
        self.typed
            .recv()
            .await
            .unwrap_or_else(|| Typed::Failed("the line editor stopped".into()))
    }

    /// Stops both threads once everything queued is printed. Called only when the
    /// editor is not reading a line (the user just ended the input, or typed /quit), so
    /// the terminal is back in its normal mode.
    async fn close(mut self) {
        self.prompts = None;
        self.screen = None;
        let threads = std::mem::take(&mut self.threads);
        let _ = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        })
        .await;
    }
}
