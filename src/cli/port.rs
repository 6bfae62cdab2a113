//! `charla port PORT [--kill]`: who holds a TCP or UDP port, and ending them. The same
//! lookup as the "already in use" message of `charla serve` (`charla::port`).

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::Duration;

use anyhow::bail;
use clap::Args;

use charla::limits::PORT_KILL_GRACE;
use charla::port::{self, Holder, Process, Transport};

#[derive(Args)]
pub struct Port {
    /// The port number; TCP and UDP are both looked at.
    pub port: u16,

    /// End the processes holding it: SIGTERM, then SIGKILL to those still running after
    /// --grace. Reports what became of each.
    #[arg(long)]
    pub kill: bool,

    /// Time between SIGTERM and SIGKILL with --kill (500ms, 3s, 1m).
    #[arg(long, default_value_t = PORT_KILL_GRACE.into(), requires = "kill")]
    pub grace: humantime::Duration,
}

/// Lists the holders (exit status 1 when no process holds it and no socket blocks it);
/// with `--kill`, ends them (exit status 1 when one could not be ended).
pub fn run(args: Port) -> anyhow::Result<()> {
    let port = args.port;
    let holders = port::holders(port)?;
    if holders.is_empty() {
        bail!("nothing holds port {port} (TCP or UDP)");
    }
    let mut out = std::io::stdout().lock();
    out.write_all(table(&holders).as_bytes())?;
    out.flush()?;
    if !holders.iter().any(|h| h.process.is_some() || blocks(h)) {
        bail!(
            "nothing holds port {port}: only closed connections linger in the kernel (such as \
             TIME_WAIT), and they do not stop a server from listening"
        );
    }
    if !args.kill {
        return Ok(());
    }

    let processes: Vec<Process> = holders.iter().filter_map(|h| h.process.clone()).collect();
    let ended = port::end_processes(&processes, Duration::from(args.grace));
    for e in &ended {
        writeln!(
            out,
            "pid {} ({}): {}",
            e.process.pid, e.process.program, e.ending
        )?;
    }
    let hidden: Vec<&Holder> = holders
        .iter()
        .filter(|h| blocks(h) && h.process.is_none())
        .collect();
    for h in &hidden {
        writeln!(
            out,
            "{} {} {}: the process is not visible to this user and was not signalled (try `sudo charla port {port} --kill`)",
            h.transport, h.local, h.state
        )?;
    }

    let after = port::holders(port)?;
    let still: Vec<&Holder> = after.iter().filter(|h| blocks(h)).collect();
    let failed = ended.iter().any(|e| !e.ending.is_gone());
    if still.is_empty() {
        writeln!(out, "port {port} is free now")?;
        let lingering = after.len();
        if lingering > 0 {
            writeln!(
                out,
                "({lingering} closed connection(s) linger in the kernel, such as TIME_WAIT; they do not stop a server from listening)"
            )?;
        }
    } else {
        writeln!(out, "port {port} is still held:")?;
        out.write_all(table(&still.into_iter().cloned().collect::<Vec<_>>()).as_bytes())?;
    }
    out.flush()?;
    if failed || !hidden.is_empty() || after.iter().any(blocks) {
        bail!("port {port} could not be freed");
    }
    Ok(())
}

/// A socket that stops another server from taking the port: a TCP listener, any UDP socket.
fn blocks(h: &Holder) -> bool {
    match h.transport {
        Transport::Tcp => h.state == "LISTEN",
        Transport::Udp => true,
    }
}

/// One row per socket and process, in aligned columns under a header.
fn table(holders: &[Holder]) -> String {
    let rows: Vec<[String; 5]> = holders
        .iter()
        .map(|h| {
            let (pid, program) = match &h.process {
                Some(p) => (p.pid.to_string(), p.program.clone()),
                None => (
                    "-".into(),
                    "(not visible: another user's, or no process)".into(),
                ),
            };
            [
                h.transport.to_string(),
                h.local.to_string(),
                h.state.clone(),
                pid,
                program,
            ]
        })
        .collect();
    let header = ["PROTO", "ADDRESS", "STATE", "PID", "PROGRAM"].map(String::from);
    let mut widths = [0usize; 5];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i == row.len() - 1 {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ", width = widths[i]);
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let holders = [
            Holder {
                transport: Transport::Tcp,
                local: "127.0.0.1:6030".parse().unwrap(),
                state: "LISTEN".into(),
                process: Some(Process {
                    pid: 4242,
                    program: "charla".into(),
                }),
            },
            Holder {
                transport: Transport::Udp,
                local: "[::]:6030".parse().unwrap(),
                state: "UNCONN".into(),
                process: None,
            },
        ];
        assert_eq!(
            table(&holders),
            "PROTO  ADDRESS         STATE   PID   PROGRAM\n\
             tcp    127.0.0.1:6030  LISTEN  4242  charla\n\
             udp    [::]:6030       UNCONN  -     (not visible: another user's, or no process)\n"
        );
    }
}
