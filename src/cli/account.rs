//! `charla account add NAME`: creates an account in the server's database, for servers
//! run with --require-account where nobody may register themselves.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use charla::accounts::{Secret, password};
use charla::hub::{AccountStore, Nick};
use charla::store::{DB_FILE, SqliteAccounts, default_data_dir};

#[derive(Args)]
#[command(
    after_help = "The password is read from stdin (one line; not echoed on a terminal): \
    `printf '%s\\n' \"$PASSWORD\" | charla account add ana`. It may run while the server \
    does: the nick is protected from the account's first login, or the next start."
)]
pub struct Account {
    #[command(subcommand)]
    pub action: AccountAction,

    /// The server's data directory (its --data), which holds charla.db [default:
    /// $XDG_STATE_HOME/charla, or ~/.local/state/charla].
    #[arg(long, env = "CHARLA_DATA", value_name = "DIR", global = true)]
    pub data: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum AccountAction {
    /// Creates the account NAME (a nick); its password is read from stdin.
    Add { name: String },
    /// Prints the argon2 hash of a password read from stdin, for `serve --oper NAME:HASH`
    /// (no database involved).
    Hash,
}

impl Account {
    pub fn run(self) -> anyhow::Result<()> {
        let name = match self.action {
            AccountAction::Add { name } => name,
            AccountAction::Hash => {
                let secret = read_password()?;
                password::check_new(&secret).map_err(anyhow::Error::msg)?;
                println!("{}", password::hash(&secret).map_err(anyhow::Error::msg)?);
                return Ok(());
            }
        };
        let path = match self.data.or_else(default_data_dir) {
            Some(dir) => dir.join(DB_FILE),
            None => bail!("no home directory to find the database in: give --data DIR"),
        };
        if !path.exists() {
            bail!(
                "{} does not exist: start the server once, or give its --data",
                path.display()
            );
        }
        let name = Nick::parse(&name).map_err(|e| anyhow::anyhow!("{name:?}: {e}"))?;
        let secret = read_password()?;
        password::check_new(&secret).map_err(anyhow::Error::msg)?;
        let phc = password::hash(&secret).map_err(anyhow::Error::msg)?;
        let store = SqliteAccounts::open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        store.create(&name, &phc)?;
        println!("account {name} created in {}", path.display());
        Ok(())
    }
}

/// One line of stdin, without its line ending; on a terminal, asked for and not echoed.
fn read_password() -> anyhow::Result<Secret> {
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
