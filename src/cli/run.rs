//! `charla run --beat NAME -- COMMAND…`: a cron job wrapped so its heartbeat hears when it
//! starts and how it ended.

use std::process::ExitCode;

use clap::Args;

use charla::client::{self, Endpoint, Options};

#[derive(Args)]
#[command(
    after_help = "The server is --addr, CHARLA_SERVER or 127.0.0.1:6030, as for \
    `charla send`. The command's output passes through; it runs even when the server cannot \
    be reached (said on stderr). Exits with the command's status (128 + the signal that \
    killed it)."
)]
pub struct Run {
    /// The heartbeat (`charla serve --heartbeat NAME=PERIOD`) this job calls in to.
    #[arg(long, value_name = "NAME")]
    pub beat: String,

    /// The server.
    #[arg(long, env = "CHARLA_SERVER", value_name = "ADDR")]
    pub addr: Option<Endpoint>,

    #[command(flatten)]
    pub credentials: super::send::Credentials,

    /// The command and its arguments, after `--`.
    #[arg(required = true, last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

impl Run {
    pub fn run(self) -> ExitCode {
        let outcome = (|| {
            let options = Options {
                endpoint: super::send::server_or_default(self.addr)?.with_ca(self.credentials.ca),
                nick: None,
                rooms: Vec::new(),
                token: self.credentials.token,
                password: None,
            };
            let runtime = super::runtime(1)?;
            let code = runtime.block_on(client::beat::run(&options, &self.beat, &self.command))?;
            anyhow::Ok(code)
        })();
        match outcome {
            Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
            Err(e) => {
                eprintln!("charla: {}", super::failure::explain(&e));
                ExitCode::from(127)
            }
        }
    }
}
