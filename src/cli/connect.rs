//! `charla connect`: the console client.

use std::io::{IsTerminal, Read};
use std::os::fd::AsFd;

use anyhow::Context;
use clap::Args;

use charla::accounts::Secret;
use charla::limits::MAX_PASSWORD_BYTES;

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

    #[command(flatten)]
    pub credentials: super::send::Credentials,

    /// The nick to ask for (without one the server names you guest-N).
    #[arg(short, long = "name", value_name = "NICK")]
    pub name: Option<String>,

    /// Log in to the account NICK names: its password is asked for (not echoed), or read
    /// as the first line of stdin when stdin is not a terminal. A reconnect logs in again.
    #[arg(long, requires = "name", conflicts_with = "token")]
    pub login: bool,

    /// A room to join besides #lobby (repeatable); lines go to the last one.
    #[arg(short, long = "room", value_name = "ROOM")]
    pub rooms: Vec<String>,
}

impl Connect {
    pub fn run(self) -> anyhow::Result<()> {
        let password = if self.login {
            Some(login_password()?)
        } else {
            None
        };
        let options = Options {
            endpoint: self.addr.with_ca(self.credentials.ca),
            nick: self.name,
            // A person's client starts where nc users do; the server puts a program in
            // no room it does not name.
            rooms: std::iter::once(RoomName::lobby().as_str().to_string())
                .chain(self.rooms)
                .collect(),
            token: self.credentials.token,
            password,
        };
        client_runtime(client::connect(options))
    }
}

/// The password for `--login`: asked for on a terminal; else the first line of stdin, read
/// a byte at a time, so that none of the lines after it is buffered away from the client.
fn login_password() -> anyhow::Result<Secret> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return super::account::read_password();
    }
    let mut input = std::fs::File::from(stdin.as_fd().try_clone_to_owned()?);
    let mut line = Vec::new();
    let mut byte = [0u8];
    while input.read(&mut byte)? == 1 && byte[0] != b'\n' {
        if line.len() > MAX_PASSWORD_BYTES {
            anyhow::bail!("the password line is longer than {MAX_PASSWORD_BYTES} bytes");
        }
        line.push(byte[0]);
    }
    let line = String::from_utf8(line).context("the password is not valid UTF-8")?;
    Ok(Secret::new(line.trim_end_matches('\r')))
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
