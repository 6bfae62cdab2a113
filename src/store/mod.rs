//! The implementations behind the hub's [`HistoryStore`](crate::hub::HistoryStore): in
//! memory ([`crate::hub::MemoryHistory`], forgotten on restart) and in an SQLite file
//! ([`SqliteHistory`], the default of `charla serve`).

mod accounts;
mod sqlite;

use std::path::PathBuf;

pub use accounts::{ACCOUNTS_MIGRATION, SqliteAccounts};
pub use sqlite::{
    DISK_HISTORY_PER_ROOM, DISK_HISTORY_TOTAL, SqliteHistory, SqliteOptions, StoreError,
    StoreStats, WRITE_BATCH, WRITE_QUEUE,
};

/// The file `charla serve` keeps history in when `--db` is not given:
/// `$XDG_STATE_HOME/charla/charla.db`, or `~/.local/state/charla/charla.db` when that
/// variable is unset, empty or not an absolute path. History is state in the XDG sense
/// (it should survive a restart, but is not a document a user would copy between
/// machines), and one file per user rather than one per working directory means a server
/// started from another directory still finds what was said. `None` when there is no home
/// directory to put it in.
pub fn default_db_path() -> Option<PathBuf> {
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .filter(|home| home.is_absolute())
                .map(|home| home.join(".local").join("state"))
        })?;
    Some(state.join("charla").join("charla.db"))
}
