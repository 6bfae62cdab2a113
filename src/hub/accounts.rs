//! Where accounts are kept: the hub's edge for registered nicks, their password hashes and
//! API tokens.
//!
//! Account names are nicks and compare as nicks do (the confusable skeleton), so an
//! account protects every nick that looks like it. An [`AccountStore`] may block (an
//! SQLite file): it is never called under the hub's lock. The hub keeps the registered
//! names in memory itself, read once at start-up and kept current by
//! [`super::Hub::account_created`] and [`super::Hub::account_deleted`], so checking a nick
//! under the lock asks no store. [`MemoryAccounts`] keeps them for a server with no file:
//! registration works, and a restart forgets it.

use std::collections::HashMap;
use std::sync::Mutex;

use super::names::Nick;
use crate::limits::MAX_TOKENS_PER_ACCOUNT;

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error("{0} is registered already")]
    Exists(Nick),
    #[error("there is no account {0}")]
    NoSuchAccount(Nick),
    #[error("you have a token labelled {0:?} already; /token revoke it first")]
    LabelTaken(String),
    #[error("an account holds at most {MAX_TOKENS_PER_ACCOUNT} tokens; /token revoke one first")]
    TooManyTokens,
    /// The store itself failed (the disk); the message is for the log and the user.
    #[error("the account store failed: {0}")]
    Store(String),
}

/// Accounts, kept somewhere. Every method may block.
pub trait AccountStore: Send + Sync {
    /// Every account's name, for the hub to protect at start-up.
    fn names(&self) -> Result<Vec<Nick>, AccountError>;
    /// Creates `name` with the password hash `phc` (a PHC string).
    fn create(&self, name: &Nick, phc: &str) -> Result<(), AccountError>;
    /// The account's name as registered and its password hash; `None` when there is none.
    fn password(&self, name: &Nick) -> Result<Option<(Nick, String)>, AccountError>;
    fn set_password(&self, name: &Nick, phc: &str) -> Result<(), AccountError>;
    /// Deletes the account and its tokens.
    fn delete(&self, name: &Nick) -> Result<(), AccountError>;
    /// Gives the account a token, kept only as `digest` (its SHA-256, in hex).
    fn add_token(&self, name: &Nick, label: &str, digest: &str) -> Result<(), AccountError>;
    /// The labels of the account's tokens, in label order.
    fn tokens(&self, name: &Nick) -> Result<Vec<String>, AccountError>;
    /// Forgets the token labelled `label`; false when there was none.
    fn revoke(&self, name: &Nick, label: &str) -> Result<bool, AccountError>;
    /// Whose token has `digest`, if anyone's.
    fn token_owner(&self, digest: &str) -> Result<Option<Nick>, AccountError>;
}

/// Accounts in memory, for a server whose history is in memory too (`--data none`): they
/// work as on disk and are forgotten when the server stops.
#[derive(Default)]
pub struct MemoryAccounts {
    accounts: Mutex<HashMap<Nick, StoredAccount>>,
}

struct StoredAccount {
    name: Nick,
    phc: String,
    /// (label, digest), in the order given.
    tokens: Vec<(String, String)>,
}

impl MemoryAccounts {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<Nick, StoredAccount>) -> T) -> T {
        f(&mut self.accounts.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn with_account<T>(
        &self,
        name: &Nick,
        f: impl FnOnce(&mut StoredAccount) -> Result<T, AccountError>,
    ) -> Result<T, AccountError> {
        self.with(|all| match all.get_mut(name) {
            Some(kept) => f(kept),
            None => Err(AccountError::NoSuchAccount(name.clone())),
        })
    }
}

impl AccountStore for MemoryAccounts {
    fn names(&self) -> Result<Vec<Nick>, AccountError> {
        Ok(self.with(|all| all.values().map(|k| k.name.clone()).collect()))
    }

    fn create(&self, name: &Nick, phc: &str) -> Result<(), AccountError> {
        self.with(|all| {
            if let Some(kept) = all.get(name) {
                return Err(AccountError::Exists(kept.name.clone()));
            }
            let kept = StoredAccount {
                name: name.clone(),
                phc: phc.to_string(),
                tokens: Vec::new(),
            };
            all.insert(name.clone(), kept);
            Ok(())
        })
    }

    fn password(&self, name: &Nick) -> Result<Option<(Nick, String)>, AccountError> {
        Ok(self.with(|all| all.get(name).map(|k| (k.name.clone(), k.phc.clone()))))
    }

    fn set_password(&self, name: &Nick, phc: &str) -> Result<(), AccountError> {
        self.with_account(name, |kept| {
            kept.phc = phc.to_string();
            Ok(())
        })
    }

    fn delete(&self, name: &Nick) -> Result<(), AccountError> {
        self.with(|all| all.remove(name))
            .map(drop)
            .ok_or_else(|| AccountError::NoSuchAccount(name.clone()))
    }

    fn add_token(&self, name: &Nick, label: &str, digest: &str) -> Result<(), AccountError> {
        self.with_account(name, |kept| {
            if kept.tokens.iter().any(|(l, _)| l == label) {
                return Err(AccountError::LabelTaken(label.to_string()));
            }
            if kept.tokens.len() >= MAX_TOKENS_PER_ACCOUNT {
                return Err(AccountError::TooManyTokens);
            }
            kept.tokens.push((label.to_string(), digest.to_string()));
            Ok(())
        })
    }

    fn tokens(&self, name: &Nick) -> Result<Vec<String>, AccountError> {
        self.with_account(name, |kept| {
            let mut labels: Vec<String> = kept.tokens.iter().map(|(l, _)| l.clone()).collect();
            labels.sort();
            Ok(labels)
        })
    }

    fn revoke(&self, name: &Nick, label: &str) -> Result<bool, AccountError> {
        self.with_account(name, |kept| {
            let before = kept.tokens.len();
            kept.tokens.retain(|(l, _)| l != label);
            Ok(kept.tokens.len() < before)
        })
    }

    fn token_owner(&self, digest: &str) -> Result<Option<Nick>, AccountError> {
        Ok(self.with(|all| {
            all.values()
                .find(|k| k.tokens.iter().any(|(_, d)| d == digest))
                .map(|k| k.name.clone())
        }))
    }
}
