//! Command-line arguments: one file per subcommand.

pub mod bench;
mod serve;

use clap::{ArgAction, Parser, Subcommand};

pub use serve::Serve;

#[derive(Parser)]
#[command(
    name = "charla",
    version,
    about = "A chat and live-alert server over plain sockets: nc, telnet, JSON lines."
)]
pub struct Cli {
    /// More log output on stderr: -v debug, -vv trace. RUST_LOG overrides.
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the chat server.
    Serve(Serve),
    /// Measure a chat server under load: charla, ncat --chat, IRC servers.
    Bench(bench::Bench),
}
