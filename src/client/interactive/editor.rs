//! The line-editor thread: rustyline reads what the user types, with line editing, input
//! history and correct handling of wide and combined characters, while the session goes
//! on in the async runtime.
//!
//! The thread reads one line per prompt it is handed: the session answers each line with
//! the next prompt, once it has carried the line out, so a `/join` or `/switch` shows the
//! new room in the very next prompt.

use std::sync::Arc;
use std::sync::mpsc as std_mpsc;

use rustyline::config::Config;
use rustyline::error::ReadlineError;
use rustyline::{
    Cmd, ConditionalEventHandler, DefaultEditor, Event, EventContext, EventHandler, KeyCode,
    KeyEvent, Modifiers, RepeatCount,
};
use tokio::sync::mpsc;

use super::screen::{Gate, erase_accepted};
use crate::client::input::carries_secret;

/// Lines of input history kept for the Up and Down keys and Ctrl-R.
pub const INPUT_HISTORY_LINES: usize = 1000;

/// A prompt: plain for measuring (and for terminals without colour), styled for display.
/// Both must take the same width on screen.
#[derive(Debug, Clone)]
pub struct Prompt {
    pub plain: String,
    pub styled: String,
}

/// What the user did at the prompt.
#[derive(Debug)]
pub enum Typed {
    /// A line (a paste may bring several, separated by newlines).
    Line(String),
    /// Ctrl-D on an empty line.
    End,
    /// Ctrl-C.
    Interrupt,
    /// The terminal failed.
    Failed(String),
}

/// Closes the gate the moment Enter is pressed, while rustyline still owns the terminal
/// (see [`super::screen`]), then accepts the line as usual.
struct CloseGateOnEnter(Arc<Gate>);

impl ConditionalEventHandler for CloseGateOnEnter {
    fn handle(&self, _: &Event, _: RepeatCount, _: bool, _: &EventContext) -> Option<Cmd> {
        self.0.close_on_enter();
        Some(Cmd::AcceptLine)
    }
}

/// A rustyline editor set up for chat, and its printer.
pub fn editor(gate: &Arc<Gate>) -> rustyline::Result<DefaultEditor> {
    let config = Config::builder()
        .max_history_size(INPUT_HISTORY_LINES)?
        .history_ignore_dups(true)?
        .build();
    let mut editor = DefaultEditor::with_config(config)?;
    for key in [
        KeyEvent(KeyCode::Enter, Modifiers::NONE),
        KeyEvent::ctrl('J'),
        KeyEvent::ctrl('M'),
    ] {
        editor.bind_sequence(
            key,
            EventHandler::Conditional(Box::new(CloseGateOnEnter(gate.clone()))),
        );
    }
    Ok(editor)
}

/// The editor thread's body: for each prompt received, reads a line and hands it over.
/// Ends when the prompts stop (the session is over) or the user ends the input.
pub fn read_lines(
    mut editor: DefaultEditor,
    gate: Arc<Gate>,
    prompts: std_mpsc::Receiver<Prompt>,
    typed: mpsc::Sender<Typed>,
) {
    while let Ok(prompt) = prompts.recv() {
        gate.open();
        let read = editor.readline(&(prompt.plain.as_str(), prompt.styled.as_str()));
        let erasable = gate.close_after_reading();
        let outcome = match read {
            Ok(line) => {
                // A password typed with a command is not kept for Up and Ctrl-R to show.
                if !line.lines().any(carries_secret) {
                    let _ = editor.add_history_entry(line.as_str());
                }
                if erasable && let Some((columns, _)) = editor.dimensions() {
                    erase_accepted(&prompt.plain, &line, columns);
                }
                Typed::Line(line)
            }
            Err(ReadlineError::Eof) => Typed::End,
            Err(ReadlineError::Interrupted) => Typed::Interrupt,
            Err(e) => Typed::Failed(e.to_string()),
        };
        let last = !matches!(outcome, Typed::Line(_));
        if typed.blocking_send(outcome).is_err() || last {
            break;
        }
    }
}
