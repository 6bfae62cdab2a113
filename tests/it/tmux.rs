//! A real terminal for tests: tmux runs a program, `send-keys` types, `capture-pane` reads
//! the screen as a person would see it.
//!
//! tmux rather than a pty crate: what matters is the screen after the terminal has
//! interpreted every escape sequence, and tmux is a real terminal emulator whose screen can
//! be read back. It must be installed (scripts/test.sh installs it); without it these tests
//! fail with a message saying so rather than passing unseen.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::PATIENCE;

/// One tmux server with one window, on a socket of its own so tests can run in parallel;
/// killed with everything in it when dropped.
pub struct Tmux {
    socket: String,
    /// The socket's file, which tmux leaves behind.
    socket_path: Option<std::path::PathBuf>,
}

impl Tmux {
    /// Runs `shell_command` in a 100×30 window.
    pub fn start(shell_command: &str) -> Tmux {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let socket = format!(
            "charla-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut tmux = Tmux {
            socket,
            socket_path: None,
        };
        let out = tmux.run(&[
            "new-session",
            "-d",
            "-x",
            "100",
            "-y",
            "30",
            "-s",
            "t",
            shell_command,
        ]);
        assert!(
            out.status.success(),
            "tmux new-session: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let path = tmux
            .run(&["display-message", "-p", "#{socket_path}"])
            .stdout;
        tmux.socket_path = Some(String::from_utf8_lossy(&path).trim().into());
        tmux
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "these tests need tmux ({e}): install it with \
                     `apt-get install tmux` (.ci/run does)"
                )
            })
    }

    /// Types `text` literally.
    pub fn type_text(&self, text: &str) {
        self.run(&["send-keys", "-t", "t", "-l", text]);
    }

    /// Presses keys by tmux name: `Enter`, `BSpace`, `Up`, `C-d`, …
    pub fn press(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend(keys);
        self.run(&args);
    }

    /// The screen, one string per row, trailing blanks trimmed.
    pub fn screen(&self) -> Vec<String> {
        let out = self.run(&["capture-pane", "-p", "-t", "t"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim_end().to_string())
            .collect()
    }

    /// Waits until some row contains `needle`; returns the screen.
    pub fn wait_for(&self, needle: &str) -> Vec<String> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let screen = self.screen();
            if screen.iter().any(|row| row.contains(needle)) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} on screen:\n{}",
                screen.join("\n")
            );
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    /// The last row with anything on it: where the prompt is.
    pub fn last_row(&self) -> String {
        self.screen()
            .into_iter()
            .rev()
            .find(|row| !row.is_empty())
            .unwrap_or_default()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
        if let Some(path) = &self.socket_path {
            let _ = std::fs::remove_file(path);
        }
    }
}
