//! The real `charla` binary as a child process: an environment cleared of anything that
//! would change its behaviour, stdout read line by line as it comes, stderr kept whole,
//! and the process killed when the test ends, however it ends.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::PATIENCE;

/// `charla ARGS` without `CHARLA_*`, `RUST_LOG` or `NO_COLOR` from the test's environment,
/// with history in memory (`CHARLA_DATA=none`, which `--data` overrides), and with stdin
/// from /dev/null unless the caller says otherwise.
pub fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_charla"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("CHARLA_") {
            command.env_remove(name);
        }
    }
    // History in memory unless a test names a directory with --data: never the user's own.
    command
        .env("CHARLA_DATA", "none")
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .args(args)
        .stdin(Stdio::null());
    command
}

/// A running `charla`.
pub struct Binary {
    pub child: Child,
    /// Open when the command was given `Stdio::piped()` for stdin.
    pub stdin: Option<ChildStdin>,
    /// Stdout, a line at a time, as the process writes it.
    pub stdout: mpsc::Receiver<String>,
    stderr: Option<thread::JoinHandle<String>>,
}

impl Binary {
    /// Starts `command` with stdout and stderr piped and read on threads of their own, so
    /// the process never blocks on a full pipe.
    pub fn start(mut command: Command) -> Binary {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, stdout) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut err = child.stderr.take().unwrap();
        let stderr = thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            text
        });
        Binary {
            stdin: child.stdin.take(),
            child,
            stdout,
            stderr: Some(stderr),
        }
    }

    /// Waits for the process to exit, at most `PATIENCE`.
    pub fn exit_status(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "charla is still running");
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything written on stderr; waits for the process to close it (exit). Once.
    pub fn stderr(&mut self) -> String {
        self.stderr
            .take()
            .expect("stderr is read once")
            .join()
            .unwrap()
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
