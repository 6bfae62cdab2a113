//! `charla account add NAME`: creates an account in the server's database, for servers
//! run with --require-account where nobody may register themselves; for a cluster
//! (`--cluster`, or a `cluster` key in the servers' --config file), in its Redis, where
//! every node reads accounts.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use charla::accounts::{Secret, password};
use charla::hub::{AccountStore, Nick};
use charla::store::{DB_FILE, SqliteAccounts, default_data_dir};

#[derive(Args)]
pub struct Account {
    #[command(subcommand)]
    pub action: AccountAction,
}

#[derive(Subcommand)]
pub enum AccountAction {
    /// Creates the account NAME (a nick); its password is read from stdin.
    #[command(
        after_help = "The password is read from stdin (one line; not echoed on a terminal): \
        `printf '%s\\n' \"$PASSWORD\" | charla account add ana`. It may run while the server \
        does: the nick is protected from the account's first login, or the next start; in a \
        cluster (--cluster), at once on every node."
    )]
    Add {
        name: String,
        #[command(flatten)]
        store: AccountStoreArgs,
    },
    /// Prints the argon2 hash of a password read from stdin, for `serve --oper NAME:HASH`
    /// (no database involved).
    Hash,
}

/// Where `account add` creates the account: only it opens a store, so only it takes these.
#[derive(Args)]
pub struct AccountStoreArgs {
    /// The server's data directory (its --data), which holds charla.db [default:
    /// $XDG_STATE_HOME/charla, or ~/.local/state/charla].
    #[arg(long, env = "CHARLA_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,

    /// The Redis of the cluster the nodes run in (their --cluster): the account is
    /// created there, for every node, and --data is not used.
    #[arg(long, env = "CHARLA_CLUSTER", value_name = "URL")]
    pub cluster: Option<String>,

    /// The servers' configuration file (their --config): its `cluster` and `data` keys
    /// are used when not given here.
    #[arg(long, env = "CHARLA_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl Account {
    pub fn run(self) -> anyhow::Result<()> {
        match self.action {
            AccountAction::Add { name, store } => add(&name, store),
            AccountAction::Hash => {
                println!("{}", new_password()?);
                Ok(())
            }
        }
    }
}

/// Creates the account `name` where `store` says.
fn add(name: &str, mut store: AccountStoreArgs) -> anyhow::Result<()> {
    if let Some(file) = &store.config {
        let (cluster, data) = from_config(file)?;
        store.cluster = store.cluster.take().or(cluster);
        store.data = store.data.take().or(data);
    }
    let name = Nick::parse(name).map_err(|e| anyhow::anyhow!("{name:?}: {e}"))?;
    if let Some(url) = &store.cluster {
        let accounts = charla::cluster::accounts_at(url)?;
        let phc = new_password()?;
        accounts.create(&name, &phc)?;
        // Not the URL: it may hold Redis's password.
        println!("account {name} created in the cluster's Redis");
        return Ok(());
    }
    let path = match store.data.or_else(default_data_dir) {
        Some(dir) => dir.join(DB_FILE),
        None => bail!("no home directory to find the database in: give --data DIR"),
    };
    if !path.exists() {
        bail!(
            "{} does not exist: start the server once, or give its --data",
            path.display()
        );
    }
    let phc = new_password()?;
    let accounts =
        SqliteAccounts::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    accounts.create(&name, &phc)?;
    println!("account {name} created in {}", path.display());
    Ok(())
}

/// The `cluster` and `data` keys of the servers' configuration file `path`.
fn from_config(path: &Path) -> anyhow::Result<(Option<String>, Option<PathBuf>)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not TOML", path.display()))?;
    let text_of = |key: &str| -> anyhow::Result<Option<String>> {
        match table.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => bail!("{}: `{key}` is not a string", path.display()),
        }
    };
    Ok((text_of("cluster")?, text_of("data")?.map(PathBuf::from)))
}

/// The password read from stdin, checked as a new one is, as its argon2 hash.
fn new_password() -> anyhow::Result<String> {
    let secret = read_password()?;
    password::check_new(&secret).map_err(anyhow::Error::msg)?;
    password::hash(&secret).map_err(anyhow::Error::msg)
}

/// One line of stdin, without its line ending; on a terminal, asked for and not echoed.
pub fn read_password() -> anyhow::Result<Secret> {
    let stdin = std::io::stdin();
    let terminal = stdin.is_terminal();
    let echo = terminal.then(|| hide_echo(&stdin)).flatten();
    if terminal {
        eprint!("password: ");
        std::io::stderr().flush()?;
    }
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if let Some(saved) = echo {
        let _ = nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, &saved);
        eprintln!();
    }
    read.context("cannot read the password from stdin")?;
    Ok(Secret::new(line.trim_end_matches(['\r', '\n'])))
}

/// Turns the terminal's echo off; returns what to restore.
fn hide_echo(stdin: &std::io::Stdin) -> Option<nix::sys::termios::Termios> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    let saved = tcgetattr(stdin).ok()?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    tcsetattr(stdin, SetArg::TCSANOW, &quiet).ok()?;
    Some(saved)
}
