//! The `charla` binary: parses arguments, sets up logging, runs the library, maps errors to
//! exit codes.

// Fuzzing runs without AddressSanitizer on the strength of this (docs/fuzzing.md).
#![forbid(unsafe_code)]

mod cli;

use std::io::{IsTerminal, Write};
use std::os::unix::fs::DirBuilderExt;

use anyhow::Context as _;
use clap::{CommandFactory, FromArgMatches, Parser};
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

use std::sync::Arc;

use charla::cluster::Cluster;
use charla::hub::{Edges, Hub};
use charla::limits::Limits;
use charla::metrics::HistoryCounts;
use charla::store::{DB_FILE, SqliteAccounts, SqliteHistory, SqliteOptions};
use charla::{feeds, server};
use cli::serve::DataDir;
use cli::{Cli, CliCommand, Serve};

/// jemalloc rather than the system allocator: fewer bytes lost around tokio's
/// 128-byte-aligned blocks on every idle connection, and lower latency under load
/// (docs/benchmarks.md, "Tried").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("charla: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    init_logging(cli.verbose);
    let result = match cli.command {
        CliCommand::Serve(args) => serve(args),
        CliCommand::Bench(args) => cli::bench::run(args),
        CliCommand::Watch(args) => serve(args.into_serve()),
        CliCommand::Port(args) => cli::port::run(args),
        CliCommand::Connect(args) => args.run(),
        CliCommand::Send(args) => args.run(),
        CliCommand::Account(args) => args.run(),
        // Exits with the status of the command it ran.
        CliCommand::Run(args) => return args.run(),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("charla: {}", cli::failure::explain(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The command line, with `charla serve --config FILE`'s options after it: those the
/// command line and the environment left unset.
fn parse() -> Result<Cli, String> {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let (CliCommand::Serve(serve), Some(serve_matches)) =
        (&cli.command, matches.subcommand_matches("serve"))
    else {
        return Ok(cli);
    };
    let Some(path) = &serve.config else {
        return Ok(cli);
    };
    let extra = cli::config::arguments(path, serve_matches)?;
    Cli::try_parse_from(std::env::args_os().chain(extra))
        .map_err(|e| format!("{}: {e}", path.display()))
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "charla=info",
        1 => "charla=debug",
        _ => "charla=trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn serve(args: Serve) -> anyhow::Result<()> {
    cli::runtime(args.threads)
        .context("cannot start the runtime")?
        .block_on(serve_on_runtime(args))
}

async fn serve_on_runtime(args: Serve) -> anyhow::Result<()> {
    let addrs = args.addresses().map_err(anyhow::Error::msg)?;
    // Each client is a file descriptor; the default soft limit (often 1024) would cap the
    // server far below --max-connections.
    if let Err(e) = rlimit::increase_nofile_limit(u64::MAX) {
        tracing::warn!(error = %e, "could not raise the open-files limit");
    }
    let udp_addrs = args.udp_addresses().map_err(anyhow::Error::msg)?;
    let certs = args
        .tls_files()
        .map(server::Certificates::load)
        .transpose()?;
    let mut listeners = server::bind_with_certs(&addrs, certs.as_ref())?;
    let http = args.http_options();
    for bound in &mut listeners {
        bound.set_http_options(&http);
    }
    let udp = udp_addrs
        .iter()
        .map(|addr| server::bind_udp(*addr))
        .collect::<Result<Vec<_>, _>>()?;
    // Feeds start before the `listening on` lines, so a path that cannot be watched stops
    // the server before it claims to serve.
    let shutdown = CancellationToken::new();
    let limits = args.limits();
    limits.check().map_err(anyhow::Error::msg)?;
    feeds::check(&args.feed_options())?;
    let store = open_store(&args, &limits)?;
    let cluster = match &args.cluster {
        Some(url) => Some(Cluster::join(url, args.node_name.clone(), args.cluster_outbox).await?),
        None => None,
    };
    let mut edges = Edges::alone(&limits);
    if let Some(store) = &store {
        let accounts = SqliteAccounts::open(store.path())
            .with_context(|| format!("cannot keep accounts in {}", store.path().display()))?;
        edges.store = store.clone();
        edges.accounts = Arc::new(accounts);
    }
    if let Some(cluster) = &cluster {
        edges.node = cluster.node();
        edges.bus = cluster.bus();
        edges.directory = cluster.directory();
        edges.accounts = cluster.accounts();
    }
    let hub = Hub::with_edges(&limits, edges);
    // The link outlives the server's own shutdown: the acks its sessions are still owed
    // come back through it while they wait for them (`ACK_GRACE`).
    let unlink = CancellationToken::new();
    let displaced = cluster.as_ref().map(Cluster::displaced);
    if let Some(displaced) = displaced.clone() {
        let stop = shutdown.clone();
        tokio::spawn(async move {
            displaced.cancelled().await;
            stop.cancel();
        });
    }
    let link = cluster.map(|cluster| cluster.start(hub.clone(), unlink.clone()));
    if let Some(store) = &store {
        hub.metrics().add_collector(HistoryCounts(store.clone()));
    }
    hub.require_account(args.require_account);
    feeds::start(&hub, &args.feed_options(), shutdown.clone())?;
    // Handled from before the `listening on` lines: a supervisor may signal as soon as it
    // reads them, and the default action would kill the server without goodbyes.
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    // Without a certificate to reload, a hangup (the terminal closed) ends the server as
    // SIGTERM does, with goodbyes and the history closed, not by the default action.
    let mut hangup = match certs {
        Some(certs) => {
            reload_on_hangup(certs)?;
            None
        }
        None => Some(signal(SignalKind::hangup()).context("cannot handle SIGHUP")?),
    };
    let mut stdout = std::io::stdout().lock();
    for bound in &listeners {
        writeln!(stdout, "listening on {}", bound.local_addr())?;
    }
    for socket in &udp {
        writeln!(
            stdout,
            "listening on {}",
            server::UdpAddr(socket.local_addr())
        )?;
    }
    stdout.flush()?;
    drop(stdout);

    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        let hangup = async {
            match &mut hangup {
                Some(hangup) => hangup.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
            _ = hangup => {}
        }
        on_signal.cancel();
    });
    let datagrams = server::Datagrams {
        sockets: udp,
        options: args.ingest_options(),
    };
    server::run_with(hub, listeners, datagrams, limits, shutdown).await;
    if let Some(link) = link {
        // The other nodes are told this one is leaving (bounded by a timeout of its own).
        unlink.cancel();
        let _ = link.await;
    }
    if let Some(store) = store {
        // Everyone has been told goodbye: what they said last is committed before exit.
        // A short wait at the very end, fine on any runtime.
        store.close();
        let stats = store.stats();
        tracing::info!(
            written = stats.written,
            lost = stats.lost,
            refused = stats.refused,
            "history closed"
        );
    }
    if displaced.is_some_and(|d| d.is_cancelled()) {
        anyhow::bail!(
            "stopped: another node took this node's number in the cluster while this one was cut off from Redis; start it again to take a free one"
        );
    }
    Ok(())
}

/// Reads the TLS certificate again at each SIGHUP (a renewal job's signal); one that does
/// not load is logged and the current one kept.
fn reload_on_hangup(certs: Arc<server::Certificates>) -> anyhow::Result<()> {
    let mut hangup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            match certs.reload() {
                Ok(()) => tracing::info!(
                    cert = %certs.files().cert.display(),
                    "TLS certificate reloaded: new connections get it"
                ),
                Err(e) => tracing::error!(
                    error = %e,
                    "TLS certificate not reloaded; the current one stays in force"
                ),
            }
        }
    });
    Ok(())
}

/// The database in the directory the options name, opened; `None` for history in memory.
/// The directory is made if missing; one that cannot be used stops the server with why.
fn open_store(args: &Serve, limits: &Limits) -> anyhow::Result<Option<Arc<SqliteHistory>>> {
    let dir = match args.data_dir().map_err(anyhow::Error::msg)? {
        DataDir::None => return Ok(None),
        DataDir::Dir(dir) => dir,
    };
    if dir.exists() && !dir.is_dir() {
        anyhow::bail!(
            "--data {} is not a directory: give a directory to keep the database in, or --data none",
            dir.display()
        );
    }
    // The database holds accounts' password hashes and the history of keyed and secret
    // rooms: what the server makes is its user's alone, as the XDG spec asks (0700).
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    let options = SqliteOptions {
        bounds: limits.history_bounds(),
        keep_per_room: args.history_keep,
        keep_total: args.history_keep_total,
        max_age: args.history_age.map(Into::into),
        ..SqliteOptions::default()
    };
    let path = dir.join(DB_FILE);
    let store = SqliteHistory::open(&path, options)?;
    tracing::info!(path = %path.display(), "history kept in");
    Ok(Some(Arc::new(store)))
}
