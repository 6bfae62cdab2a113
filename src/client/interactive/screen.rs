//! Printing above the line being edited, and replacing an accepted line with its echo.
//!
//! Lines are printed by a thread of their own through rustyline's `ExternalPrinter`, which
//! clears the prompt and the half-typed line, prints, and redraws them: nothing typed is
//! ever garbled. That printer can block until the editor next reads a line, which is why
//! it gets its own thread and the async side only queues lines for it.
//!
//! When Enter is pressed, the typed line is left on the screen under the transcript;
//! the editor thread erases it, and the session prints it back in transcript form (clock,
//! room, own nick). Erasing is relative to the cursor, so it must not happen after
//! something else was printed below the line. The [`Gate`] sees to that: the Enter key
//! closes it while rustyline still owns the terminal, lines arriving from then on are held
//! until the next prompt, and a print already under way at that moment (which might land
//! below the line) cancels the erase: the typed line then simply stays.

use std::io::{self, Write};
use std::sync::{Arc, Mutex, MutexGuard};

use rustyline::{ExternalPrinter, GraphemeClusterMode};
use tokio::sync::mpsc;
use unicode_segmentation::UnicodeSegmentation;

/// Who may print now; shared by the editor thread, its Enter handler and the printer
/// thread. The lock is only ever held for a few instructions, never across a print that
/// could block.
#[derive(Default)]
pub struct Gate(Mutex<GateState>);

#[derive(Default)]
struct GateState {
    /// The editor is reading a line: prints go above it.
    open: bool,
    /// The printer thread is inside `ExternalPrinter::print`.
    printing: bool,
    /// The gate closed while a print was under way.
    overlapped: bool,
    /// Lines that arrived while the gate was closed, oldest first.
    held: Vec<String>,
}

impl Gate {
    fn lock(&self) -> MutexGuard<'_, GateState> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Before reading a line: prints what was held (rustyline is not drawing now, so it
    /// goes straight to the terminal), then lets prints through.
    pub fn open(&self) {
        let mut state = self.lock();
        let mut out = io::stdout().lock();
        for line in state.held.drain(..) {
            let _ = out.write_all(line.as_bytes());
        }
        let _ = out.flush();
        state.open = true;
        state.overlapped = false;
    }

    /// Enter was pressed (rustyline still owns the terminal): hold prints from now on.
    pub fn close_on_enter(&self) {
        let mut state = self.lock();
        if state.open {
            state.open = false;
            state.overlapped = state.printing;
        }
    }

    /// Reading is over. Returns whether the accepted line is still the last thing on the
    /// screen, so it may be erased: the Enter key closed the gate and no print overlapped.
    pub fn close_after_reading(&self) -> bool {
        let mut state = self.lock();
        let closed_on_enter = !state.open;
        state.open = false;
        closed_on_enter && !state.overlapped
    }
}

/// The printer thread: prints each queued line above the prompt, or holds it while the
/// gate is closed. Ends when the sending side is dropped.
pub fn print_lines(
    mut lines: mpsc::Receiver<String>,
    gate: Arc<Gate>,
    mut printer: Option<impl ExternalPrinter>,
) {
    while let Some(mut line) = lines.blocking_recv() {
        line.push('\n');
        {
            let mut state = gate.lock();
            if !state.open {
                state.held.push(line);
                continue;
            }
            state.printing = true;
        }
        let printed = printer.as_mut().map(|p| p.print(line.clone()));
        if !matches!(printed, Some(Ok(()))) {
            // No external printer (an unsupported terminal): write as any program would.
            let _ = io::stdout().lock().write_all(line.as_bytes());
        }
        gate.lock().printing = false;
    }
}

/// Erases the accepted `prompt` + `line` just above the cursor, which rustyline left on
/// the row below them. Mirrors rustyline's own layout arithmetic (graphemes, wide
/// characters, tab stops, wrapping at exactly the last column), so a wrapped line of
/// emoji or CJK is erased whole.
pub fn erase_accepted(prompt: &str, line: &str, columns: u16) {
    let rows = rows_taken(&format!("{prompt}{line}"), columns);
    let mut out = io::stdout().lock();
    let _ = write!(out, "\r\x1b[{rows}A\x1b[J");
    let _ = out.flush();
}

/// rustyline's tab stop.
const TAB_STOP: u16 = 8;

/// The rows `text` takes when drawn from the first column of a `columns`-wide terminal,
/// counting the row the cursor ends on.
fn rows_taken(text: &str, columns: u16) -> u16 {
    let mode = GraphemeClusterMode::from_env();
    let columns = columns.max(1);
    let (mut row, mut col) = (0u16, 0u16);
    for grapheme in text.graphemes(true) {
        if grapheme == "\n" {
            row += 1;
            col = 0;
            continue;
        }
        let width = if grapheme == "\t" {
            TAB_STOP - col % TAB_STOP
        } else if grapheme.chars().all(char::is_control) {
            0
        } else {
            mode.width(grapheme)
        };
        col += width;
        if col > columns {
            row += 1;
            col = width;
        }
    }
    if col == columns {
        row += 1;
    }
    row + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_follow_wrapping_and_wide_characters() {
        assert_eq!(rows_taken("#lobby> hola", 80), 1);
        assert_eq!(rows_taken(&"x".repeat(79), 80), 1);
        // Exactly full: the cursor wraps to the next row.
        assert_eq!(rows_taken(&"x".repeat(80), 80), 2);
        assert_eq!(rows_taken(&"x".repeat(81), 80), 2);
        // A wide character that does not fit moves whole to the next row.
        assert_eq!(rows_taken(&format!("{}日", "x".repeat(9)), 10), 2);
        assert_eq!(rows_taken("日本語", 6), 2);
        assert_eq!(rows_taken("a\nb", 80), 2);
    }

    #[test]
    fn the_erase_waits_for_a_clean_enter() {
        let gate = Gate::default();
        gate.open();
        gate.close_on_enter();
        assert!(gate.close_after_reading());
        // Reading ended some other way (Ctrl-D): the gate was never closed by Enter.
        gate.open();
        assert!(!gate.close_after_reading());
        // A print was under way when Enter closed the gate.
        gate.open();
        gate.lock().printing = true;
        gate.close_on_enter();
        assert!(!gate.close_after_reading());
    }
}
