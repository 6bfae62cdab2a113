//! `charla bench`: measure a chat server under load (see src/bench/).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use charla::bench::{self, LoadShape, Plan, Protocol, Scenario};

#[derive(Args)]
pub struct Bench {
    #[command(subcommand)]
    pub command: BenchCommand,
}

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Run one scenario against a running server. Boxed: its options are many.
    Run(Box<Run>),
    /// Merge saved JSON reports into one Markdown table (stdout) and an SVG chart.
    Report {
        /// Reports written by `charla bench run --json`.
        files: Vec<PathBuf>,
        /// Write a chart of p99 latency against offered load here.
        #[arg(long)]
        svg: Option<PathBuf>,
    },
}

#[derive(Args)]
pub struct Run {
    /// fanout: everyone in one room; rooms: spread over --rooms; idle: memory per
    /// connection (needs --server-pid); churn: connect/disconnect cycles; floor: no
    /// server, a bare writer's round of writes to --clients loopback sockets (a lower
    /// bound on any server's fan-out latency here).
    #[arg(value_enum)]
    pub scenario: Scenario,
    /// The server to load.
    #[arg(long, default_value = "127.0.0.1:6030")]
    pub addr: SocketAddr,
    /// Another node of the same cluster (repeatable): clients are spread over --addr and
    /// these in turn, so what one says reaches the others across nodes.
    #[arg(long, value_name = "ADDR")]
    pub also: Vec<SocketAddr>,
    /// How to speak to it.
    #[arg(long, value_enum, default_value = "charla")]
    pub protocol: Protocol,
    /// charla-tls: the PEM certificate the server is verified against (without it, the
    /// system's roots).
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Name of the server in the results.
    #[arg(long, default_value = "charla")]
    pub label: String,
    /// Its process id, to sample its CPU, memory and file descriptors from /proc.
    #[arg(long)]
    pub server_pid: Option<i32>,
    /// Connected clients.
    #[arg(long, default_value_t = 1000)]
    pub clients: usize,
    /// Rooms the clients are spread over (the fanout scenario uses 1).
    #[arg(long, default_value_t = 1)]
    pub rooms: usize,
    /// Clients that send (the first ones; spread over the rooms).
    #[arg(long, default_value_t = 50)]
    pub senders: usize,
    /// Bytes of text per message.
    #[arg(long, default_value_t = 100)]
    pub size: usize,
    /// Seconds each rate is offered.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Offered deliveries per second (a message to a room of N counts N-1), one step
    /// each, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "500000")]
    pub rates: Vec<u64>,
    /// After the given rates, keep raising by half until a message is lost or p99 passes
    /// --p99-limit-ms; reports the highest rate that held. A rate that fails is offered
    /// once more (a stall of a shared machine ends no ladder alone).
    #[arg(long)]
    pub saturate: bool,
    /// The p99 latency bound for --saturate, in milliseconds.
    #[arg(long, default_value_t = 50)]
    pub p99_limit_ms: u64,
    /// fanout, rooms: clients beside the measured ones that join and leave many rooms of
    /// their own as fast as the server's default flood control allows (20 lines at once,
    /// then 5 a second; they pace themselves, so the server may run with it off). Even
    /// ones send JSON hellos naming their rooms, odd ones /join each; then both leave
    /// each room. Not counted in the latencies; the report says what they got done.
    #[arg(long, default_value_t = 0)]
    pub churners: usize,
    /// Rooms each churner joins, then leaves, in a cycle (the example: 240). A JSON
    /// churner names up to 19 in a hello, each counted as a line; more rooms held make each
    /// join and leave of a server that scans them dearer.
    #[arg(long, default_value_t = 240)]
    pub churn_rooms: usize,
    /// Cycles for the churn scenario.
    #[arg(long, default_value_t = 50_000)]
    pub cycles: usize,
    /// floor: run the writer on this CPU (the one the server gets in a side-by-side run);
    /// the readers stay where the process runs.
    #[arg(long)]
    pub writer_cpu: Option<usize>,
    /// Also save the report as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

impl Run {
    pub fn plan(self) -> Plan {
        let rooms = if self.scenario == Scenario::Fanout {
            1
        } else {
            self.rooms.max(1)
        };
        Plan {
            scenario: self.scenario,
            label: self.label,
            shape: LoadShape {
                protocol: self.protocol,
                addr: self.addr,
                also: self.also,
                ca: self.ca,
                clients: self.clients,
                rooms,
                senders: self.senders,
                size: self.size,
                duration: Duration::from_secs(self.duration),
                churners: self.churners,
                churn_rooms: self.churn_rooms,
            },
            server_pid: self.server_pid,
            rates: self.rates,
            saturate: self.saturate,
            p99_limit: Duration::from_millis(self.p99_limit_ms),
            churn_cycles: self.cycles,
            writer_cpu: self.writer_cpu,
            json: self.json,
        }
    }
}

/// Runs the subcommand; prints Markdown to stdout.
pub fn run(args: Bench) -> anyhow::Result<()> {
    super::runtime(0)?.block_on(run_on_runtime(args))
}

async fn run_on_runtime(args: Bench) -> anyhow::Result<()> {
    match args.command {
        BenchCommand::Run(run) => {
            let report = bench::run(run.plan()).await?;
            print!("{}", bench::markdown(&report));
        }
        BenchCommand::Report { files, svg } => {
            print!("{}", bench::merge(&files, svg.as_deref())?);
        }
    }
    Ok(())
}
