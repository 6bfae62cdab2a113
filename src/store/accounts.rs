//! Accounts in the SQLite file, beside the history: names, password hashes (PHC strings)
//! and API tokens (their SHA-256 only).
//!
//! Account requests are rare and each already costs an argon2 hash, so one connection of
//! its own, behind a mutex, serves them all; it is only ever used from blocking threads
//! (the hub never calls it under its lock). Names are stored by their comparison key (the
//! nick's case-folded confusable skeleton), so `Ana` and `аna` in Cyrillic are one account.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode as SqliteCode, OptionalExtension, params};

use super::schema;
use super::sqlite::StoreError;
use crate::hub::{AccountError, AccountStore, Nick};
use crate::limits::MAX_TOKENS_PER_ACCOUNT;

/// How long a statement waits for the history writer, which holds the file's write lock
/// while it commits.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Accounts kept in an SQLite file.
pub struct SqliteAccounts {
    conn: Mutex<Connection>,
}

impl SqliteAccounts {
    /// Opens the accounts of the database at `path`, bringing its schema up to date
    /// first (`charla account add` may be the first of this version to open it).
    pub fn open(path: &Path) -> Result<SqliteAccounts, StoreError> {
        let sqlite = |source| StoreError::Sqlite {
            path: path.to_owned(),
            source,
        };
        let mut conn = Connection::open(path).map_err(sqlite)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sqlite)?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(sqlite)?;
        schema::migrate_at(&mut conn, path)?;
        Ok(SqliteAccounts {
            conn: Mutex::new(conn),
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, AccountError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&conn).map_err(|e| AccountError::Store(e.to_string()))
    }

    fn changed(&self, name: &Nick, rows: usize) -> Result<(), AccountError> {
        match rows {
            0 => Err(AccountError::NoSuchAccount(name.clone())),
            _ => Ok(()),
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn is_constraint(error: &rusqlite::Error) -> bool {
    error.sqlite_error_code() == Some(SqliteCode::ConstraintViolation)
}

/// A stored name back as a nick: it was one when it was registered.
fn stored_nick(name: String) -> Option<Nick> {
    Nick::parse(&name).ok()
}

impl AccountStore for SqliteAccounts {
    fn names(&self) -> Result<Vec<Nick>, AccountError> {
        self.with(|conn| {
            let mut statement = conn.prepare("SELECT name FROM accounts")?;
            let names = statement.query_map([], |row| row.get::<_, String>(0))?;
            // A name the nick rules no longer allow can be held by nobody: nothing to protect.
            let names: rusqlite::Result<Vec<String>> = names.collect();
            Ok(names?.into_iter().filter_map(stored_nick).collect())
        })
    }

    fn create(&self, name: &Nick, phc: &str) -> Result<(), AccountError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let inserted = conn.execute(
            "INSERT INTO accounts (key, name, password, created_ms) VALUES (?1, ?2, ?3, ?4)",
            params![name.key(), name.as_str(), phc, now_ms()],
        );
        match inserted {
            Ok(_) => Ok(()),
            Err(e) if is_constraint(&e) => Err(AccountError::Exists(name.clone())),
            Err(e) => Err(AccountError::Store(e.to_string())),
        }
    }

    fn password(&self, name: &Nick) -> Result<Option<(Nick, String)>, AccountError> {
        self.with(|conn| {
            conn.query_row(
                "SELECT name, password FROM accounts WHERE key = ?1",
                [name.key()],
                |row| {
                    let kept = stored_nick(row.get(0)?).unwrap_or_else(|| name.clone());
                    Ok((kept, row.get(1)?))
                },
            )
            .optional()
        })
    }

    fn set_password(&self, name: &Nick, phc: &str) -> Result<(), AccountError> {
        let rows = self.with(|conn| {
            conn.execute(
                "UPDATE accounts SET password = ?2 WHERE key = ?1",
                params![name.key(), phc],
            )
        })?;
        self.changed(name, rows)
    }

    fn delete(&self, name: &Nick) -> Result<(), AccountError> {
        // In one transaction with the rooms kept in the file, so no room keeps making
        // operators of, or banning by, an account that someone may register again, even
        // if the server stops just after. Rooms' states still waiting for the history
        // writer are not in the file yet: the hub has the writer forget the account after
        // them (`HistoryStore::forget_account`).
        let rows = self.with(|conn| {
            let tx = conn.unchecked_transaction()?;
            let rows = tx.execute("DELETE FROM accounts WHERE key = ?1", [name.key()])?;
            if rows > 0 {
                super::sqlite::forget_account(&tx, name)?;
            }
            tx.commit()?;
            Ok(rows)
        })?;
        self.changed(name, rows)
    }

    fn add_token(&self, name: &Nick, label: &str, digest: &str) -> Result<(), AccountError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let store = |e: rusqlite::Error| AccountError::Store(e.to_string());
        let held: i64 = conn
            .query_row(
                "SELECT count(*) FROM account_tokens WHERE account = ?1",
                [name.key()],
                |row| row.get(0),
            )
            .map_err(store)?;
        if held as usize >= MAX_TOKENS_PER_ACCOUNT {
            return Err(AccountError::TooManyTokens);
        }
        let inserted = conn.execute(
            "INSERT INTO account_tokens (digest, account, label, created_ms) VALUES (?1, ?2, ?3, ?4)",
            params![digest, name.key(), label, now_ms()],
        );
        match inserted {
            Ok(_) => Ok(()),
            Err(e) if is_constraint(&e) => Err(AccountError::LabelTaken(label.to_string())),
            Err(e) => Err(store(e)),
        }
    }

    fn tokens(&self, name: &Nick) -> Result<Vec<String>, AccountError> {
        self.with(|conn| {
            let mut statement =
                conn.prepare("SELECT label FROM account_tokens WHERE account = ?1 ORDER BY label")?;
            let labels = statement.query_map([name.key()], |row| row.get(0))?;
            labels.collect()
        })
    }

    fn revoke(&self, name: &Nick, label: &str) -> Result<bool, AccountError> {
        self.with(|conn| {
            conn.execute(
                "DELETE FROM account_tokens WHERE account = ?1 AND label = ?2",
                params![name.key(), label],
            )
            .map(|rows| rows > 0)
        })
    }

    fn token_owner(&self, digest: &str) -> Result<Option<Nick>, AccountError> {
        self.with(|conn| {
            conn.query_row(
                "SELECT a.name FROM account_tokens t JOIN accounts a ON a.key = t.account \
                 WHERE t.digest = ?1",
                [digest],
                |row| row.get::<_, String>(0),
            )
            .optional()
            .map(|name| name.and_then(stored_nick))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nick(s: &str) -> Nick {
        Nick::parse(s).unwrap()
    }

    #[test]
    fn accounts_and_tokens_live_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("charla.db");
        {
            let store = SqliteAccounts::open(&path).unwrap();
            store.create(&nick("Ana"), "$argon2id$x").unwrap();
            assert!(matches!(
                store.create(&nick("ana"), "$argon2id$y"),
                Err(AccountError::Exists(_))
            ));
            store.add_token(&nick("ana"), "ci", "d1").unwrap();
            assert!(matches!(
                store.add_token(&nick("ana"), "ci", "d2"),
                Err(AccountError::LabelTaken(_))
            ));
        }
        let store = SqliteAccounts::open(&path).unwrap();
        let names: Vec<String> = store
            .names()
            .unwrap()
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(names, ["Ana"]);
        let (name, phc) = store.password(&nick("ANA")).unwrap().unwrap();
        assert_eq!((name.as_str(), phc.as_str()), ("Ana", "$argon2id$x"));
        assert_eq!(store.token_owner("d1").unwrap().unwrap().as_str(), "Ana");
        assert_eq!(store.tokens(&nick("ana")).unwrap(), ["ci"]);
        assert!(store.revoke(&nick("ana"), "ci").unwrap());
        assert!(store.token_owner("d1").unwrap().is_none());
        store.add_token(&nick("ana"), "ci", "d3").unwrap();
        store.delete(&nick("ana")).unwrap();
        assert!(store.password(&nick("ana")).unwrap().is_none());
        assert!(
            store.token_owner("d3").unwrap().is_none(),
            "tokens go with the account"
        );
    }

    /// A file as the previous version left it: history at schema version 2, and (when
    /// `with_accounts`) the accounts tables that version created outside the numbered
    /// steps, with an account in them.
    fn version_2_file(path: &Path, with_accounts: bool) {
        let conn = Connection::open(path).unwrap();
        for step in &schema::MIGRATIONS[..2] {
            conn.execute_batch(step).unwrap();
        }
        conn.pragma_update(None, "user_version", 2).unwrap();
        conn.execute(
            "INSERT INTO entries (id, ts, room_key, room, kind, author, text, seq) \
             VALUES (7, 1700000000000, ?1, '#ops', 0, 'ana', 'kept', 1)",
            [crate::hub::RoomName::parse("#ops").unwrap().key()],
        )
        .unwrap();
        if with_accounts {
            conn.execute_batch(schema::MIGRATIONS[2]).unwrap();
            conn.execute(
                "INSERT INTO accounts VALUES (?1, 'Ana', '$argon2id$old', 1)",
                [nick("Ana").key()],
            )
            .unwrap();
        }
    }

    fn version(path: &Path) -> i64 {
        Connection::open(path)
            .unwrap()
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap()
    }

    #[test]
    fn a_version_2_file_gains_the_accounts_step_and_keeps_what_it_had() {
        use crate::hub::{HistoryStore, RoomName};
        use crate::store::{SqliteHistory, SqliteOptions};
        for with_accounts in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("charla.db");
            version_2_file(&path, with_accounts);
            let history = SqliteHistory::open(&path, SqliteOptions::default()).unwrap();
            assert_eq!(version(&path), schema::SCHEMA_VERSION);
            let kept = history.recent(&RoomName::parse("#ops").unwrap(), None);
            assert_eq!(kept.len(), 1, "the history of version 2 is still there");
            assert_eq!(kept[0].text().as_str(), "kept");
            let accounts = SqliteAccounts::open(&path).unwrap();
            let names: Vec<Nick> = accounts.names().unwrap();
            if with_accounts {
                assert_eq!(names, [nick("Ana")], "the account made before is kept");
            } else {
                assert!(names.is_empty());
            }
            accounts.create(&nick("bob"), "$argon2id$new").unwrap();
            accounts.add_token(&nick("bob"), "ci", "digest").unwrap();
            assert_eq!(accounts.token_owner("digest").unwrap(), Some(nick("bob")));
        }
    }

    #[test]
    fn account_add_on_an_old_file_migrates_it_and_a_newer_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("charla.db");
        version_2_file(&path, false);
        SqliteAccounts::open(&path)
            .unwrap()
            .create(&nick("ana"), "$argon2id$x")
            .unwrap();
        assert_eq!(version(&path), schema::SCHEMA_VERSION);
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        let err = SqliteAccounts::open(&path).err().unwrap();
        assert!(
            matches!(err, StoreError::NewerSchema { found: 99, .. }),
            "{err}"
        );
    }
}
