//! Ending the processes that hold a port, for `charla port PORT --kill`: SIGTERM first, so
//! they can close cleanly (a charla server says goodbye to its clients), then, for those
//! still running after a grace period, SIGKILL.

use std::collections::HashSet;
use std::fmt;
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::Process;
#[cfg(doc)]
use crate::limits::PORT_KILL_GRACE;

/// How often a process is looked at while waiting for it to end.
const POLL: Duration = Duration::from_millis(20);

/// How long a process is given to disappear after SIGKILL (the kernel needs a moment).
const AFTER_SIGKILL: Duration = Duration::from_secs(1);

/// What became of one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// It ended within the grace period after SIGTERM.
    Terminated { after: Duration },
    /// It outlived the grace period and was ended by SIGKILL.
    Killed,
    /// It was still there after SIGKILL (stuck in the kernel, say).
    StillRunning,
    /// It was gone before it could be signalled.
    AlreadyGone,
    /// Not signalled, and why: another user's process, pid 1, charla itself, or a pid that
    /// now belongs to another program.
    Refused(String),
}

impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ending::Terminated { after } => {
                write!(f, "ended after SIGTERM ({:.1} s)", after.as_secs_f64())
            }
            Ending::Killed => f.write_str("still running after the grace period; ended by SIGKILL"),
            Ending::StillRunning => f.write_str("still running even after SIGKILL"),
            Ending::AlreadyGone => f.write_str("already gone"),
            Ending::Refused(why) => write!(f, "not signalled: {why}"),
        }
    }
}

impl Ending {
    /// Whether the process is gone now.
    pub fn is_gone(&self) -> bool {
        matches!(
            self,
            Ending::Terminated { .. } | Ending::Killed | Ending::AlreadyGone
        )
    }
}

/// A process and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub process: Process,
    pub ending: Ending,
}

/// Sends SIGTERM to each process, waits up to `grace` ([`PORT_KILL_GRACE`]) for them to
/// end, then SIGKILL to those still running. Each process is signalled once, however many
/// sockets it holds, and only if it still runs the program it was found running.
pub fn end_processes(processes: &[Process], grace: Duration) -> Vec<Ended> {
    let mut seen = HashSet::new();
    let mut ended: Vec<Ended> = Vec::new();
    for process in processes {
        if !seen.insert(process.pid) {
            continue;
        }
        let ending = terminate(process);
        ended.push(Ended {
            process: process.clone(),
            ending: ending.unwrap_or(Ending::StillRunning),
        });
    }
    // Those signalled are marked StillRunning until they are seen gone.
    let start = Instant::now();
    let waiting = |ended: &[Ended]| {
        ended
            .iter()
            .any(|e| e.ending == Ending::StillRunning && is_running(e.process.pid))
    };
    while waiting(&ended) && start.elapsed() < grace {
        thread::sleep(POLL);
        for e in &mut ended {
            if e.ending == Ending::StillRunning && !is_running(e.process.pid) {
                e.ending = Ending::Terminated {
                    after: start.elapsed(),
                };
            }
        }
    }
    let mut killed = Vec::new();
    for e in &mut ended {
        if e.ending != Ending::StillRunning {
            continue;
        }
        if !is_running(e.process.pid) {
            e.ending = Ending::Terminated {
                after: start.elapsed(),
            };
            continue;
        }
        match kill(Pid::from_raw(e.process.pid), Signal::SIGKILL) {
            Err(Errno::ESRCH) => {
                e.ending = Ending::Terminated {
                    after: start.elapsed(),
                }
            }
            _ => killed.push(e.process.pid),
        }
    }
    let deadline = Instant::now() + AFTER_SIGKILL;
    while killed.iter().any(|&pid| is_running(pid)) && Instant::now() < deadline {
        thread::sleep(POLL);
    }
    for e in &mut ended {
        if killed.contains(&e.process.pid) {
            e.ending = if is_running(e.process.pid) {
                Ending::StillRunning
            } else {
                Ending::Killed
            };
        }
    }
    ended
}

/// Sends SIGTERM; `None` when it was sent (the process is to be waited for).
fn terminate(process: &Process) -> Option<Ending> {
    let pid = process.pid;
    if pid <= 1 {
        return Some(Ending::Refused(format!(
            "pid {pid} is the system's init; stop the service it runs instead"
        )));
    }
    if i64::from(pid) == i64::from(std::process::id()) {
        return Some(Ending::Refused("that is this charla itself".into()));
    }
    // The pid was read a moment ago; make sure it was not handed to another program since.
    match procfs::process::Process::new(pid).and_then(|p| p.stat()) {
        Err(_) => return Some(Ending::AlreadyGone),
        Ok(stat) if stat.state == 'Z' || stat.state == 'X' => return Some(Ending::AlreadyGone),
        Ok(stat) if stat.comm != process.program && process.program != "?" => {
            return Some(Ending::Refused(format!(
                "pid {pid} now runs {}, not {}",
                stat.comm, process.program
            )));
        }
        Ok(_) => {}
    }
    match kill(Pid::from_raw(pid), Signal::SIGTERM) {
        Ok(()) => None,
        Err(Errno::ESRCH) => Some(Ending::AlreadyGone),
        Err(Errno::EPERM) => Some(Ending::Refused(
            "not permitted (another user's process; try with sudo)".into(),
        )),
        Err(e) => Some(Ending::Refused(e.desc().to_string())),
    }
}

/// Whether `pid` is a live process: it exists and is not a zombie waiting for its parent.
pub fn is_running(pid: i32) -> bool {
    match procfs::process::Process::new(pid).and_then(|p| p.stat()) {
        Ok(stat) => stat.state != 'Z' && stat.state != 'X',
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    fn program(pid: u32) -> String {
        procfs::process::Process::new(pid as i32)
            .unwrap()
            .stat()
            .unwrap()
            .comm
    }

    #[test]
    fn sigterm_ends_a_willing_process() {
        let mut child = Command::new("sleep")
            .arg("30")
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let process = Process {
            pid: child.id() as i32,
            program: program(child.id()),
        };
        let ended = end_processes(&[process.clone(), process], Duration::from_secs(5));
        assert_eq!(ended.len(), 1, "signalled once: {ended:?}");
        assert!(
            matches!(ended[0].ending, Ending::Terminated { .. }),
            "{ended:?}"
        );
        // Reaped only now: a zombie already counts as ended.
        child.wait().unwrap();
    }

    #[test]
    fn sigkill_follows_for_a_process_that_ignores_sigterm() {
        let mut child = Command::new("sh")
            .args([
                "-c",
                "trap '' TERM; echo ready; while :; do sleep 0.05; done",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        // Wait until the trap is set.
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        let process = Process {
            pid: child.id() as i32,
            program: program(child.id()),
        };
        let ended = end_processes(&[process], Duration::from_millis(300));
        assert_eq!(ended[0].ending, Ending::Killed, "{ended:?}");
        child.wait().unwrap();
    }

    #[test]
    fn a_pid_now_running_another_program_is_left_alone() {
        let me = Process {
            pid: std::process::id() as i32,
            program: "whatever".into(),
        };
        let ended = end_processes(&[me], Duration::from_millis(10));
        assert!(matches!(ended[0].ending, Ending::Refused(_)), "{ended:?}");
        let other = Process {
            pid: 1,
            program: "init".into(),
        };
        let ended = end_processes(&[other], Duration::from_millis(10));
        assert!(matches!(ended[0].ending, Ending::Refused(_)), "{ended:?}");
    }
}
