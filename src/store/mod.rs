//! The implementations behind the hub's [`HistoryStore`](crate::hub::HistoryStore): in
//! memory ([`crate::hub::MemoryHistory`], forgotten on restart) and in an SQLite file
//! ([`SqliteHistory`], the default of `charla serve`).

mod accounts;
pub mod room_json;
mod schema;
mod sqlite;

use std::path::PathBuf;

pub use accounts::SqliteAccounts;
pub use sqlite::{
    DISK_HISTORY_PER_ROOM, DISK_HISTORY_TOTAL, SqliteHistory, SqliteOptions, StoreError,
    StoreStats, WRITE_BATCH, WRITE_QUEUE,
};

/// The file the database is kept in inside the data directory (`--data DIR`).
pub const DB_FILE: &str = "charla.db";

/// The directory `charla serve` keeps its database in when `--data` is not given:
/// `$XDG_STATE_HOME/charla`, or `~/.local/state/charla` when that variable is unset, empty
/// or not an absolute path. History is state in the XDG sense (it should survive a
/// restart, but is not a document a user would copy between machines), and one directory
/// per user rather than one per working directory means a server started from another
/// directory still finds what was said. `None` when there is no home directory to put it in.
pub fn default_data_dir() -> Option<PathBuf> {
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .filter(|home| home.is_absolute())
                .map(|home| home.join(".local").join("state"))
        })?;
    Some(state.join("charla"))
}
