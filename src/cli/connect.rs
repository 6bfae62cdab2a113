//! `charla connect`: the console client.

use std::path::PathBuf;

use clap::Args;

use charla::client::{self, Endpoint, Options};
use charla::hub::RoomName;
use charla::server::DEFAULT_LISTEN;

#[derive(Args)]
#[command(
    after_help = "At a terminal: type to talk, /help for commands, Ctrl-D to leave. \
    With stdin not a terminal, each line is sent and each event printed as one plain line; \
    the exit status is 0 once the server acknowledged every line."
)]
pub struct Connect {
    /// The server: HOST:PORT, [IPv6]:PORT, tcp://HOST:PORT, tls://HOST:PORT or
    /// unix:///path/to.sock.
    #[arg(default_value = DEFAULT_LISTEN, env = "CHARLA_SERVER")]
    pub addr: Endpoint,

    /// For tls://: trust the server's certificate when a CA certificate in this PEM file
    /// signed it, instead of the system's roots.
    #[arg(long, env = "CHARLA_CA", value_name = "FILE")]
    pub ca: Option<PathBuf>,

    /// The nick to ask for (without one the server names you guest-N).
    #[arg(short, long = "name", value_name = "NICK")]
    pub name: Option<String>,

    /// A room to join besides #lobby (repeatable); lines go to the last one.
    #[arg(short, long = "room", value_name = "ROOM")]
    pub rooms: Vec<String>,
}

impl Connect {
    pub fn run(self) -> anyhow::Result<()> {
        let options = Options {
            endpoint: self.addr.with_ca(self.ca),
            nick: self.name,
            // A person's client starts where nc users do; the server puts a program in
            // no room it does not name.
            rooms: std::iter::once(RoomName::lobby().as_str().to_string())
                .chain(self.rooms)
                .collect(),
            token: None,
        };
        client_runtime(client::connect(options))
    }
}

/// Runs a client to completion on a single-threaded runtime: a client has one connection
/// and no need for more threads than its terminal's.
pub fn client_runtime(
    client: impl Future<Output = Result<(), client::ClientError>>,
) -> anyhow::Result<()> {
    let runtime = super::runtime(1)?;
    let result = runtime.block_on(client);
    // Reading stdin blocks a thread that cannot be interrupted; waiting for it to finish
    // would hang an exit until the next line arrives.
    runtime.shutdown_background();
    Ok(result?)
}
