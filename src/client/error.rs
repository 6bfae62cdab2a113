//! Why a client run failed; each becomes one line on stderr and a non-zero exit status.

use std::io;
use std::path::PathBuf;

use super::endpoint::Endpoint;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// An option the client can tell is wrong before connecting (a bad room name).
    #[error("{0}")]
    Invalid(String),
    #[error("connection refused at {0} — is charla serve running?")]
    Refused(Endpoint),
    #[error("cannot connect to {endpoint}: {source}")]
    Connect {
        endpoint: Endpoint,
        source: io::Error,
    },
    #[error("cannot use the CA file {}: {reason}", .path.display())]
    Ca { path: PathBuf, reason: String },
    #[error(
        "no trusted root certificates on this system ({0}): install ca-certificates, or give --ca FILE"
    )]
    NoRoots(String),
    /// The server's certificate failed verification: why, in words, and what to do.
    #[error("{endpoint}: the server's certificate is not trusted ({reason}): {hint}")]
    Untrusted {
        endpoint: Endpoint,
        reason: String,
        hint: String,
    },
    /// The TLS handshake failed for another reason than the certificate.
    #[error("{endpoint}: the TLS handshake failed: {reason}")]
    Handshake { endpoint: Endpoint, reason: String },
    #[error("{0} did not answer in TLS: is it a TLS listener (tls://), or a plain one (tcp://)?")]
    NotTls(Endpoint),
    #[error("{endpoint} did not answer within {seconds} s")]
    Timeout { endpoint: Endpoint, seconds: u64 },
    /// The server closed before welcoming us: full, or not a charla server.
    #[error("{endpoint} closed the connection before welcoming us{}", said(.last_line))]
    NotWelcomed {
        endpoint: Endpoint,
        last_line: Option<String>,
    },
    /// The address is one of charla's other listeners, which answered in its own protocol.
    #[error(
        "{endpoint} is charla's {kind} listener: charla connect and charla send speak to its tcp://, tls:// or unix:// one"
    )]
    WrongListener {
        endpoint: Endpoint,
        kind: &'static str,
    },
    /// A nick or room asked for on the command line was refused (invalid or taken). A
    /// script asked for a name on purpose, so going on as `guest-N` would be wrong.
    #[error("the server refused the hello: {code}: {message}")]
    HelloRefused { code: String, message: String },
    #[error("lost the connection to {endpoint}; {unconfirmed} sent line(s) not acknowledged")]
    Lost {
        endpoint: Endpoint,
        unconfirmed: usize,
    },
    #[error("the server did not answer a request within {seconds} s")]
    NoReply { seconds: u64 },
    /// The server answered a request with an error.
    #[error("the server refused it: {code}: {message}")]
    RequestRefused { code: String, message: String },
    /// Lines the server answered with an error (each was reported as it happened).
    #[error("{0} line(s) were refused")]
    Refusals(usize),
    #[error(transparent)]
    Io(#[from] io::Error),
}

fn said(line: &Option<String>) -> String {
    match line {
        Some(line) => format!(" (it said: {line})"),
        None => String::new(),
    }
}
