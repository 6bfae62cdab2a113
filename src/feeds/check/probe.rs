//! Running a probe once: a TCP connect or a command, each bounded by its timeout.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpStream;

use super::spec::Probe;
use crate::feeds::human;
use crate::limits::{CHECK_OUTPUT_BYTES, CHECK_REASON_CHARS};

/// What one run of a probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probed {
    /// `Ok(what worked)` or `Err(why not)`.
    pub result: Result<String, String>,
    /// When the certificate the server showed expires, in seconds since the epoch (TLS
    /// and https probes that got that far).
    pub not_after: Option<i64>,
}

impl From<Result<String, String>> for Probed {
    fn from(result: Result<String, String>) -> Probed {
        Probed {
            result,
            not_after: None,
        }
    }
}

/// Runs a probe once.
pub async fn probe(probe: &Probe, timeout: Duration) -> Probed {
    let outcome = match probe {
        Probe::Tcp(target) => tokio::time::timeout(timeout, connect(target)).await,
        Probe::Exec(command) => return exec(command, timeout).await.into(),
        Probe::Http(http) => return http.run(timeout).await,
        Probe::Tls { target, ca } => {
            // Made before the clock starts, as for https.
            let tls = match super::http::connector(ca.as_deref()) {
                Ok(tls) => tls,
                Err(why) => return Err(why).into(),
            };
            let shake =
                tokio::time::timeout(timeout, shake_hands(target, &tls, ca.as_deref())).await;
            return shake
                .unwrap_or_else(|_| Err(format!("timed out after {}", human(timeout))).into());
        }
    };
    outcome
        .unwrap_or_else(|_| Err(format!("timed out after {}", human(timeout))))
        .into()
}

/// A TLS handshake with `target` (HOST:PORT), verified by `tls` (which trusts `ca`).
async fn shake_hands(
    target: &str,
    tls: &tokio_rustls::TlsConnector,
    ca: Option<&std::path::Path>,
) -> Probed {
    let shaken = async {
        let (host, _) = target.rsplit_once(':').unwrap_or((target, ""));
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let stream = TcpStream::connect(target)
            .await
            .map_err(|e| format!("cannot connect to {target}: {}", io_reason(&e)))?;
        let (_, not_after) = super::http::handshake(tls, ca, host, stream).await?;
        Ok::<_, String>(not_after)
    };
    match shaken.await {
        Ok(not_after) => Probed {
            result: Ok(format!("TLS handshake with {target}")),
            not_after,
        },
        Err(why) => Err(why).into(),
    }
}

async fn connect(target: &str) -> Result<String, String> {
    let addrs = tokio::net::lookup_host(target)
        .await
        .map_err(|e| format!("cannot resolve {target}: {}", io_reason(&e)))?;
    let mut last = format!("{target} resolves to no address");
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(_) => return Ok(format!("connected to {addr}")),
            Err(e) => last = format!("cannot connect to {addr}: {}", io_reason(&e)),
        }
    }
    Err(last)
}

/// `Connection refused`, without the ` (os error 111)` tail.
pub(super) fn io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

async fn exec(command: &str, timeout: Duration) -> Result<String, String> {
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a timeout ends whatever it started too.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run sh: {}", io_reason(&e)))?;
    let group = child.id();
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let finished = tokio::time::timeout(timeout, async {
        let (out, err, status) = tokio::join!(tail(stdout), tail(stderr), child.wait());
        (out, err, status)
    })
    .await;
    let Ok((out, err, status)) = finished else {
        if let Some(pid) = group.and_then(|p| i32::try_from(p).ok()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        return Err(format!("timed out after {}", human(timeout)));
    };
    let status = status.map_err(|e| format!("cannot wait for the command: {}", io_reason(&e)))?;
    // The last line it printed, errors first: the likeliest explanation.
    let said = last_line(&err)
        .or_else(|| last_line(&out))
        .map(|l| format!(": {l}"))
        .unwrap_or_default();
    if status.success() {
        return Ok(format!("exit status 0{said}"));
    }
    let how = match (
        status.code(),
        std::os::unix::process::ExitStatusExt::signal(&status),
    ) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "failed".to_string(),
    };
    Err(format!("{how}{said}"))
}

/// Reads to the end, keeping only the last [`CHECK_OUTPUT_BYTES`].
async fn tail(mut pipe: impl AsyncRead + Unpin) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut chunk = [0u8; 1024];
    while let Ok(n) = pipe.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&chunk[..n]);
        if kept.len() > 2 * CHECK_OUTPUT_BYTES {
            kept.drain(..kept.len() - CHECK_OUTPUT_BYTES);
        }
    }
    kept
}

/// The last non-blank line of `output`, sanitised and cut to [`CHECK_REASON_CHARS`].
fn last_line(output: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(output);
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?;
    let clean = crate::hub::sanitize(line.trim());
    let mut cut: String = clean.chars().take(CHECK_REASON_CHARS).collect();
    if cut.len() < clean.len() {
        cut.push('…');
    }
    Some(cut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn commands_are_up_on_status_zero() {
        let second = Duration::from_secs(5);
        assert_eq!(
            probe(&Probe::Exec("echo fine".into()), second).await.result,
            Ok("exit status 0: fine".into())
        );
        assert_eq!(
            probe(&Probe::Exec("echo oops >&2; exit 3".into()), second)
                .await
                .result,
            Err("exit status 3: oops".into())
        );
        let slow = probe(&Probe::Exec("sleep 30".into()), Duration::from_millis(100))
            .await
            .result;
        assert_eq!(slow, Err("timed out after 100ms".into()));
    }

    #[tokio::test]
    async fn tcp_probes_connect() {
        // Bound but not listening: connections are refused, and no other test can take
        // the port meanwhile.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = socket.local_addr().unwrap();
        let down = probe(&Probe::Tcp(addr.to_string()), Duration::from_secs(5))
            .await
            .result;
        assert_eq!(
            down,
            Err(format!("cannot connect to {addr}: Connection refused"))
        );
        let _listener = socket.listen(8).unwrap();
        let up = probe(&Probe::Tcp(addr.to_string()), Duration::from_secs(5))
            .await
            .result;
        assert_eq!(up, Ok(format!("connected to {addr}")));
    }
}
