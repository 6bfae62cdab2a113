//! Accounts of a cluster, kept in its Redis so that an account registered on one node logs
//! in on every node: a hash per account (`charla:account:KEY`: its `name`, its password
//! hash `phc`, and `token:LABEL` for each token's SHA-256), and `charla:token:DIGEST`
//! naming the account a token is for. Only argon2 hashes and token digests are kept,
//! never a password or a token.
//!
//! Called from blocking threads, never under the hub's lock ([`AccountStore`]), on a
//! connection of its own, made again when one fails. Registration and deletion are
//! published on the cluster's channel in the same script, so every node protects (or frees)
//! the nick at once.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use redis::Connection;

use super::link::channel;
use super::wire::Wire;
use super::{PREFIX, Shared};
use crate::hub::{AccountError, AccountStore, Nick};
use crate::limits::{CLUSTER_NODE_TIMEOUT, MAX_TOKENS_PER_ACCOUNT};

/// Creates the account unless it exists (then returns its name), and publishes it.
const CREATE: &str = "local name = redis.call('HGET', KEYS[1], 'name')
if name then return name end
redis.call('HSET', KEYS[1], 'name', ARGV[1], 'phc', ARGV[2])
redis.call('PUBLISH', KEYS[2], ARGV[3])
return 0";

/// Sets the password hash of an account that exists; 0 when it does not.
const SET_PASSWORD: &str = "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'phc', ARGV[1])
return 1";

/// Deletes the account and its tokens, and publishes it; 0 when there was none.
const DELETE: &str = "if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  if string.sub(fields[i], 1, 6) == 'token:' then redis.call('DEL', ARGV[2] .. fields[i + 1]) end
end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', KEYS[2], ARGV[1])
return 1";

/// Gives the account a token: -1 no such account, -2 the label is taken, -3 too many.
const ADD_TOKEN: &str = "if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HEXISTS', KEYS[1], 'token:' .. ARGV[1]) == 1 then return -2 end
local n = 0
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(field, 1, 6) == 'token:' then n = n + 1 end
end
if n >= tonumber(ARGV[4]) then return -3 end
redis.call('HSET', KEYS[1], 'token:' .. ARGV[1], ARGV[2])
redis.call('SET', ARGV[3] .. ARGV[2], redis.call('HGET', KEYS[1], 'name'))
return 1";

/// Forgets a token by its label: -1 no such account, 0 no such token, 1 done.
const REVOKE: &str = "if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local digest = redis.call('HGET', KEYS[1], 'token:' .. ARGV[1])
if not digest then return 0 end
redis.call('HDEL', KEYS[1], 'token:' .. ARGV[1])
redis.call('DEL', ARGV[2] .. digest)
return 1";

fn account_key(name: &Nick) -> String {
    format!("{PREFIX}account:{}", name.key())
}

fn token_prefix() -> String {
    format!("{PREFIX}token:")
}

/// Accounts in the cluster's Redis.
pub struct RedisAccounts {
    client: redis::Client,
    /// The node's number its news of accounts carry; 0 from the command line, which is
    /// no node.
    node: u16,
    /// The node's link, whose `reachable` says whether Redis answers it: none from the
    /// command line.
    shared: Option<Arc<Shared>>,
    conn: Mutex<Option<Connection>>,
}

/// What a user is told when the cluster's Redis, which keeps the accounts, is out of reach.
const OUT_OF_REACH: &str = "the cluster's Redis, which keeps the accounts, is out of reach";

/// A failure to ask Redis in words for the user who asked: an account call answers a
/// login, a registration, a token.
fn failed(e: &redis::RedisError) -> AccountError {
    let retry = "try again once cross-node delivery is restored";
    AccountError::Store(if e.is_timeout() {
        format!(
            "the cluster's Redis, which keeps the accounts, did not answer within {}s; {retry}",
            CLUSTER_NODE_TIMEOUT.as_secs()
        )
    } else if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() {
        format!("{OUT_OF_REACH} ({e}); {retry}")
    } else {
        e.to_string()
    })
}

impl RedisAccounts {
    pub(super) fn new(client: redis::Client, shared: Option<Arc<Shared>>) -> RedisAccounts {
        RedisAccounts {
            client,
            node: shared.as_ref().map_or(0, |shared| shared.node.number()),
            shared,
            conn: Mutex::new(None),
        }
    }

    /// Runs `f` on the connection, made (again) when there is none or the last failed. A
    /// connection kept from before that turns out dropped (Redis restarted since) is made
    /// again and `f` run once more on it, so the first login after a restart of Redis does
    /// not fail on a socket the old Redis closed.
    fn with<T>(
        &self,
        f: impl Fn(&mut Connection) -> redis::RedisResult<T>,
    ) -> Result<T, AccountError> {
        let store = |e: redis::RedisError| failed(&e);
        // Refused at once while the node knows Redis is out of reach: each try would wait
        // for Redis's answer (up to twice CLUSTER_NODE_TIMEOUT on a paused Redis), and
        // one after the other, every login meanwhile waiting behind the others.
        if let Some(shared) = &self.shared
            && !shared.reachable.load(Ordering::Relaxed)
        {
            return Err(AccountError::Store(format!(
                "{OUT_OF_REACH}; try again once cross-node delivery is restored"
            )));
        }
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let kept = conn.take();
        let fresh = kept.is_none();
        let mut made = match kept {
            Some(kept) => kept,
            None => self.connect().map_err(store)?,
        };
        let mut result = f(&mut made);
        if let Err(e) = &result
            && !fresh
            && (e.is_connection_dropped() || e.is_io_error())
        {
            made = self.connect().map_err(store)?;
            result = f(&mut made);
        }
        // Kept for the next request unless this one may have broken it.
        if result.is_ok() {
            *conn = Some(made);
        }
        result.map_err(store)
    }

    /// A new connection to the cluster's Redis, each wait on it bounded.
    fn connect(&self) -> redis::RedisResult<Connection> {
        let made = self
            .client
            .get_connection_with_timeout(CLUSTER_NODE_TIMEOUT)?;
        made.set_read_timeout(Some(CLUSTER_NODE_TIMEOUT))?;
        made.set_write_timeout(Some(CLUSTER_NODE_TIMEOUT))?;
        Ok(made)
    }

    fn news(&self, name: &Nick, registered: bool) -> String {
        Wire::Account {
            node: self.node,
            name: name.as_str().to_string(),
            registered,
        }
        .payload(0)
    }
}

fn nick(name: &str) -> Option<Nick> {
    match Nick::parse(name) {
        Ok(nick) => Some(nick),
        Err(e) => {
            tracing::warn!(name, error = %e, "skipped an account in Redis that is not a nick");
            None
        }
    }
}

impl AccountStore for RedisAccounts {
    fn names(&self) -> Result<Vec<Nick>, AccountError> {
        let names: Vec<String> = self.with(|conn| {
            let mut keys: Vec<String> = Vec::new();
            let mut cursor = 0u64;
            loop {
                let (next, more): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(format!("{PREFIX}account:*"))
                    .arg("COUNT")
                    .arg(1000)
                    .query(conn)?;
                keys.extend(more);
                if next == 0 {
                    break;
                }
                cursor = next;
            }
            let mut names = Vec::with_capacity(keys.len());
            for key in keys {
                let name: redis::RedisResult<Option<String>> =
                    redis::cmd("HGET").arg(&key).arg("name").query(conn);
                match name {
                    Ok(Some(name)) => names.push(name),
                    _ => tracing::warn!(key, "skipped an account in Redis with no name"),
                }
            }
            Ok(names)
        })?;
        Ok(names.iter().filter_map(|n| nick(n)).collect())
    }

    fn create(&self, name: &Nick, phc: &str) -> Result<(), AccountError> {
        let existing: redis::Value = self.with(|conn| {
            redis::cmd("EVAL")
                .arg(CREATE)
                .arg(2)
                .arg(account_key(name))
                .arg(channel())
                .arg(name.as_str())
                .arg(phc)
                .arg(self.news(name, true))
                .query(conn)
        })?;
        match existing {
            redis::Value::Int(0) => Ok(()),
            other => {
                let held: String = redis::from_redis_value(other).unwrap_or_default();
                Err(AccountError::Exists(
                    nick(&held).unwrap_or_else(|| name.clone()),
                ))
            }
        }
    }

    fn password(&self, name: &Nick) -> Result<Option<(Nick, String)>, AccountError> {
        let (held, phc): (Option<String>, Option<String>) = self.with(|conn| {
            redis::cmd("HMGET")
                .arg(account_key(name))
                .arg("name")
                .arg("phc")
                .query(conn)
        })?;
        Ok(match (held.as_deref().and_then(nick), phc) {
            (Some(held), Some(phc)) => Some((held, phc)),
            _ => None,
        })
    }

    fn set_password(&self, name: &Nick, phc: &str) -> Result<(), AccountError> {
        let done: i64 = self.with(|conn| {
            redis::cmd("EVAL")
                .arg(SET_PASSWORD)
                .arg(1)
                .arg(account_key(name))
                .arg(phc)
                .query(conn)
        })?;
        match done {
            0 => Err(AccountError::NoSuchAccount(name.clone())),
            _ => Ok(()),
        }
    }

    fn delete(&self, name: &Nick) -> Result<(), AccountError> {
        let done: i64 = self.with(|conn| {
            redis::cmd("EVAL")
                .arg(DELETE)
                .arg(2)
                .arg(account_key(name))
                .arg(channel())
                .arg(self.news(name, false))
                .arg(token_prefix())
                .query(conn)
        })?;
        match done {
            0 => Err(AccountError::NoSuchAccount(name.clone())),
            _ => Ok(()),
        }
    }

    fn add_token(&self, name: &Nick, label: &str, digest: &str) -> Result<(), AccountError> {
        let done: i64 = self.with(|conn| {
            redis::cmd("EVAL")
                .arg(ADD_TOKEN)
                .arg(1)
                .arg(account_key(name))
                .arg(label)
                .arg(digest)
                .arg(token_prefix())
                .arg(MAX_TOKENS_PER_ACCOUNT)
                .query(conn)
        })?;
        match done {
            -1 => Err(AccountError::NoSuchAccount(name.clone())),
            -2 => Err(AccountError::LabelTaken(label.to_string())),
            -3 => Err(AccountError::TooManyTokens),
            _ => Ok(()),
        }
    }

    fn tokens(&self, name: &Nick) -> Result<Vec<String>, AccountError> {
        let fields: Vec<String> =
            self.with(|conn| redis::cmd("HKEYS").arg(account_key(name)).query(conn))?;
        if fields.is_empty() {
            return Err(AccountError::NoSuchAccount(name.clone()));
        }
        let mut labels: Vec<String> = fields
            .into_iter()
            .filter_map(|f| f.strip_prefix("token:").map(str::to_string))
            .collect();
        labels.sort();
        Ok(labels)
    }

    fn revoke(&self, name: &Nick, label: &str) -> Result<bool, AccountError> {
        let done: i64 = self.with(|conn| {
            redis::cmd("EVAL")
                .arg(REVOKE)
                .arg(1)
                .arg(account_key(name))
                .arg(label)
                .arg(token_prefix())
                .query(conn)
        })?;
        match done {
            -1 => Err(AccountError::NoSuchAccount(name.clone())),
            n => Ok(n == 1),
        }
    }

    fn token_owner(&self, digest: &str) -> Result<Option<Nick>, AccountError> {
        let owner: Option<String> = self.with(|conn| {
            redis::cmd("GET")
                .arg(format!("{}{digest}", token_prefix()))
                .query(conn)
        })?;
        Ok(owner.as_deref().and_then(nick))
    }
}
