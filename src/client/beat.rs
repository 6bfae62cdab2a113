//! A job calling in to its heartbeat: `charla send --beat NAME` (one call) and `charla run
//! --beat NAME -- COMMAND…` (a call when the command starts and one when it ends, with its
//! exit status, how long it took and the last lines it printed).

use std::process::{ExitStatus, Stdio};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::error::ClientError;
use super::link::Link;
use super::wire::{ClientRequest, Received, ServerEvent};
use super::{Endpoint, Options};
use crate::limits::RUN_OUTPUT_BYTES;

/// Makes one call and returns what the server says of the heartbeat now.
pub async fn call(options: &Options, request: ClientRequest) -> Result<String, ClientError> {
    let hello = ClientRequest::Hello {
        nick: options.nick.clone(),
        rooms: Vec::new(),
        since: Default::default(),
        token: options.token.clone().map(crate::accounts::Secret::new),
        password: None,
    };
    let (mut link, _) = Link::open(&options.endpoint, hello).await?;
    let reference = link.send(&request).await?;
    let lost = |endpoint: &Endpoint| ClientError::Lost {
        endpoint: endpoint.clone(),
        unconfirmed: 1,
    };
    loop {
        match link.next().await? {
            None => return Err(lost(&options.endpoint)),
            Some(Received {
                reference: Some(r),
                event,
            }) if r == reference => {
                return match event {
                    ServerEvent::Status { items, .. } => Ok(items
                        .into_iter()
                        .map(|i| i.text)
                        .collect::<Vec<_>>()
                        .join("\n")),
                    ServerEvent::Error { code, message } => {
                        Err(ClientError::RequestRefused { code, message })
                    }
                    _ => continue,
                };
            }
            Some(_) => {}
        }
    }
}

/// A plain call: the job is alive.
pub fn alive(name: &str) -> ClientRequest {
    event(name, None)
}

/// A call with no outcome: alive (`None`) or `start`.
fn event(name: &str, event: Option<&'static str>) -> ClientRequest {
    ClientRequest::Beat {
        name: name.to_string(),
        event,
        status: None,
        duration_ms: None,
        output: None,
    }
}

/// Runs `command` (its output passed through), telling heartbeat `name` when it starts and
/// how it ended; returns its exit status as a shell reports it (128 + a killing signal).
/// A server that cannot be reached is said on stderr and does not stop the command.
pub async fn run(options: &Options, name: &str, command: &[String]) -> Result<i32, ClientError> {
    if let Err(e) = call(options, event(name, Some("start"))).await {
        eprintln!("charla: could not report the start of {name}: {e}");
    }
    let began = Instant::now();
    let (program, args) = command
        .split_first()
        .ok_or_else(|| ClientError::Invalid("no command to run".into()))?;
    let (code, output) = match execute(program, args).await {
        Ok(ran) => ran,
        // Said like a shell says it, and reported as a run that failed: nothing ran.
        Err(e) => {
            let said = format!("charla: cannot run {program}: {e}");
            eprintln!("{said}");
            (127, Some(said))
        }
    };
    let finished = ClientRequest::Beat {
        name: name.to_string(),
        event: Some("finish"),
        status: Some(code),
        duration_ms: Some(began.elapsed().as_millis() as u64),
        output,
    };
    if let Err(e) = call(options, finished).await {
        eprintln!("charla: could not report how {name} ended: {e}");
    }
    Ok(code)
}

/// Runs `program`, its output passed through: its exit status and the last of what it
/// printed (stderr's when it wrote any, the likeliest explanation of a failure).
async fn execute(program: &str, args: &[String]) -> std::io::Result<(i32, Option<String>)> {
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let (out, err, status) = tokio::join!(
        pass_through(stdout, tokio::io::stdout()),
        pass_through(stderr, tokio::io::stderr()),
        child.wait()
    );
    let output = [err, out]
        .into_iter()
        .map(|kept| String::from_utf8_lossy(&kept).into_owned())
        .find(|text| !text.trim().is_empty());
    Ok((shell_status(status?), output))
}

/// The exit status as a shell gives it: the code, or 128 + the signal that killed it.
fn shell_status(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

/// Copies `from` to `to` as it comes, keeping the last [`RUN_OUTPUT_BYTES`].
async fn pass_through(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut chunk = [0u8; 4096];
    while let Ok(n) = from.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        // Our own output going away must not stop the job.
        let _ = to.write_all(&chunk[..n]).await;
        let _ = to.flush().await;
        kept.extend_from_slice(&chunk[..n]);
        if kept.len() > 2 * RUN_OUTPUT_BYTES {
            kept.drain(..kept.len() - RUN_OUTPUT_BYTES);
        }
    }
    if kept.len() > RUN_OUTPUT_BYTES {
        kept.drain(..kept.len() - RUN_OUTPUT_BYTES);
    }
    kept
}
