//! `charla send`: one-shot publishing, for scripts and cron jobs.

use std::path::PathBuf;

use clap::Args;

use charla::client::{self, Endpoint, Options};
use charla::server::DEFAULT_LISTEN;

#[derive(Args)]
#[command(
    after_help = "The first argument is the server's address when it reads as one \
    (HOST:PORT, [IPv6]:PORT, tcp://…, tls://…, unix://…); otherwise --addr, CHARLA_SERVER or \
    127.0.0.1:6030. Exits 0 once the server acknowledged every message, non-zero (with the \
    reason on stderr) otherwise."
)]
pub struct Send {
    /// The server, when not given as the first argument.
    #[arg(long, env = "CHARLA_SERVER", value_name = "ADDR")]
    pub addr: Option<Endpoint>,

    #[command(flatten)]
    pub credentials: Credentials,

    /// The room to say it in (joined first); #lobby when not given.
    #[arg(short, long, value_name = "ROOM")]
    pub room: Option<String>,

    /// The nick to say it as (without one the server names you guest-N).
    #[arg(short, long, value_name = "NAME")]
    pub name: Option<String>,

    /// Instead of a message, call in to the server's heartbeat NAME (--heartbeat): the
    /// job is alive. Prints the heartbeat's state.
    #[arg(long, value_name = "NAME", conflicts_with = "room")]
    pub beat: Option<String>,

    /// [ADDR] then the message, its words joined by spaces. Without a message, each line
    /// of stdin is one.
    #[arg(value_name = "MESSAGE")]
    pub words: Vec<String>,
}

/// How a client (`charla connect`, `send`, `run`) proves who it talks to and who it is.
#[derive(Args)]
pub struct Credentials {
    /// For tls://: trust the server's certificate when a CA certificate in this PEM file
    /// signed it, instead of the system's roots.
    #[arg(long, env = "CHARLA_CA", value_name = "FILE")]
    pub ca: Option<PathBuf>,

    /// An API token (`/token new LABEL` prints one): act as that account, on a server
    /// with --require-account too. Better given in CHARLA_TOKEN than on the command line,
    /// where other users can see it.
    #[arg(
        long,
        env = "CHARLA_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
}

/// `--addr` (or CHARLA_SERVER) when given, else the default address.
pub fn server_or_default(addr: Option<Endpoint>) -> anyhow::Result<Endpoint> {
    match addr {
        Some(endpoint) => Ok(endpoint),
        None => DEFAULT_LISTEN.parse().map_err(anyhow::Error::msg),
    }
}

impl Send {
    pub fn run(mut self) -> anyhow::Result<()> {
        let first_is_addr = self.words.first().and_then(|w| w.parse::<Endpoint>().ok());
        let endpoint = match first_is_addr {
            Some(endpoint) => {
                self.words.remove(0);
                endpoint
            }
            None => server_or_default(self.addr)?,
        };
        let options = Options {
            endpoint: endpoint.with_ca(self.credentials.ca),
            nick: self.name,
            rooms: self.room.into_iter().collect(),
            token: self.credentials.token,
            password: None,
        };
        if let Some(name) = self.beat {
            if !self.words.is_empty() {
                anyhow::bail!("--beat sends no message: give the server's address at most");
            }
            return super::connect::client_runtime(async move {
                let state = client::beat::call(&options, client::beat::alive(&name)).await?;
                println!("{state}");
                Ok(())
            });
        }
        super::connect::client_runtime(client::send(options, self.words))
    }
}
