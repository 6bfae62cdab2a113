//! Command-line arguments: one file per subcommand.

pub mod account;
pub mod bench;
pub mod config;
pub mod connect;
pub mod failure;
pub mod port;
pub mod run;
pub mod send;
pub mod serve;
pub mod watch;

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
    pub command: CliCommand,
}

#[derive(Subcommand)]
pub enum CliCommand {
    /// Run the chat server.
    Serve(Serve),
    /// Measure a chat server under load: charla, ncat --chat, IRC servers.
    Bench(bench::Bench),
    /// Watch files and tell everyone connected each change: `charla watch target.txt`, then
    /// `nc localhost 6030`. A `charla serve` whose notices go to #lobby.
    Watch(watch::Watch),
    /// Show which processes hold a TCP or UDP port; --kill ends them.
    Port(port::Port),
    /// Chat from a terminal, or send stdin lines from a script: the console client.
    Connect(connect::Connect),
    /// Say a message (or each stdin line) and exit once the server acknowledged it.
    Send(send::Send),
    /// Manage accounts in the server's database: `charla account add NAME`.
    Account(account::Account),
    /// Run a cron job and tell its heartbeat when it starts and how it ended:
    /// `charla run --beat backup -- /usr/local/bin/backup.sh`.
    Run(run::Run),
}

/// A runtime with `threads` workers (0: one per CPU this process may run on). With one, the
/// single-threaded runtime: on one core it does the same work without the multi-threaded
/// scheduler's hand-offs, and measured 1.3–2× lower p99 latency in the fan-out benchmark
/// (docs/benchmarks.md). The load generator picks its runtime the same way; the console
/// client asks for one thread.
pub fn runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let threads = match threads {
        0 => std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        n => n,
    };
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(threads);
        builder
    };
    builder.enable_all().build()
}
