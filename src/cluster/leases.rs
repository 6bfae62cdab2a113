//! Which node runs a check or heartbeat that several nodes have (the same configuration on
//! every node behind a load balancer): the one holding its lease in Redis,
//! `charla:runs:NAME` = `NODE:RUN`, set if absent and renewed by its holder every
//! [`CLUSTER_HEARTBEAT`] for [`CLUSTER_LEASE_TTL`], let go when the node shuts down. The
//! others stand by: they neither run it, post for it nor list it, and take it over when
//! the lease is free (at once after a shutdown, within the lease's time after a node
//! died). Leases rather than electing by node number: a node's number is taken again by
//! another run after it died, and a lease needs no agreement between the nodes beyond one
//! `SET … NX` in Redis.
//!
//! A node counts a lease as held until [`CLUSTER_HEARTBEAT`] before it could have expired
//! in Redis, so that a node cut off from Redis stops running a name before another can take
//! it. Names are keyed by name alone: a name defined differently on two nodes (another
//! probe) is still run by one of them at a time.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock};

use redis::aio::ConnectionManager;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{PREFIX, Shared};
use crate::limits::{CLUSTER_HEARTBEAT, CLUSTER_LEASE_TTL, CLUSTER_LEASES};

/// Claims or renews each lease in `KEYS` for `ARGV[1]` (this node's `NODE:RUN`) for
/// `ARGV[2]` ms: `1` held, `0` another node's, `2` a key that is no lease (another type, or
/// no expiry), left alone.
const CLAIM_LEASES: &str = r"
local held = {}
for i, key in ipairs(KEYS) do
  local value = redis.pcall('GET', key)
  if type(value) == 'table' and value.err then
    held[i] = 2
  elseif value == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
    held[i] = 1
  elseif not value then
    redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
    held[i] = 1
  elseif redis.call('PTTL', key) < 0 then
    held[i] = 2
  else
    held[i] = 0
  end
end
return held
";

/// Lets go of each lease in `KEYS` that `ARGV[1]` holds.
const RELEASE: &str = r"
for _, key in ipairs(KEYS) do
  if redis.pcall('GET', key) == ARGV[1] then redis.call('DEL', key) end
end
return 0
";

static CLAIM_LEASES_SCRIPT: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(CLAIM_LEASES));
static RELEASE_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(RELEASE));

/// The names this node has and asked about, and until when it holds each.
#[derive(Default)]
pub(super) struct Leases {
    names: HashMap<String, Option<Instant>>,
    /// Past [`CLUSTER_LEASES`] names: logged once.
    warned: bool,
    /// The names whose key in Redis is no lease, logged when found (not every renewal).
    skipped: HashSet<String>,
}

impl Leases {
    /// Whether this node runs `name` now; `name` is claimed from now on. Past
    /// [`CLUSTER_LEASES`] names a new one is run here unclaimed.
    pub(super) fn holds(&mut self, name: &str) -> bool {
        if let Some(until) = self.names.get(name) {
            return until.is_some_and(|until| Instant::now() < until);
        }
        if self.names.len() >= CLUSTER_LEASES {
            if !self.warned {
                self.warned = true;
                tracing::warn!(
                    limit = CLUSTER_LEASES,
                    "more checks and heartbeats than leases are claimed; the rest run on this node unclaimed"
                );
            }
            return true;
        }
        self.names.insert(name.to_string(), None);
        false
    }
}

fn key(name: &str) -> String {
    format!("{PREFIX}runs:{name}")
}

fn mine(shared: &Shared) -> String {
    format!("{}:{}", shared.node.number(), shared.run)
}

/// Claims and renews this node's leases every [`CLUSTER_HEARTBEAT`] until `shutdown`, then
/// lets them go.
pub(super) async fn run(
    shared: Arc<Shared>,
    mut redis: ConnectionManager,
    shutdown: CancellationToken,
) {
    let mut every = tokio::time::interval(CLUSTER_HEARTBEAT);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = every.tick() => renew(&shared, &mut redis).await,
        }
    }
    release(&shared, &mut redis).await;
}

async fn renew(shared: &Shared, redis: &mut ConnectionManager) {
    let names: Vec<String> = shared
        .leases
        .lock()
        .unwrap()
        .names
        .keys()
        .cloned()
        .collect();
    if names.is_empty() {
        return;
    }
    let sent = Instant::now();
    let mut script = CLAIM_LEASES_SCRIPT.prepare_invoke();
    for name in &names {
        script.key(key(name));
    }
    script
        .arg(mine(shared))
        .arg(CLUSTER_LEASE_TTL.as_millis() as u64);
    let claimed = script.invoke_async::<Vec<u8>>(redis);
    let held = match tokio::time::timeout(CLUSTER_LEASE_TTL, claimed).await {
        Ok(Ok(held)) if held.len() == names.len() => held,
        Ok(Ok(_)) => {
            tracing::warn!("Redis answered the claim of leases with another count; skipped");
            return;
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot renew this node's leases on checks and heartbeats");
            return;
        }
        Err(_) => {
            tracing::warn!("Redis did not answer the renewal of this node's leases in time");
            return;
        }
    };
    let until = sent + CLUSTER_LEASE_TTL.saturating_sub(CLUSTER_HEARTBEAT);
    let mut changed = false;
    {
        let mut leases = shared.leases.lock().unwrap();
        for (name, held) in names.iter().zip(held) {
            if held != 2 {
                leases.skipped.remove(name);
            } else if leases.skipped.insert(name.clone()) {
                tracing::warn!(key = %key(name), "skipped a key in Redis that is no lease; nobody runs its name while it is there");
            }
            let Some(entry) = leases.names.get_mut(name) else {
                continue;
            };
            let was = entry.is_some_and(|u| sent < u);
            let now = held == 1;
            if was != now {
                changed = true;
                tracing::info!(name = %name, runs = now, "the lease on a check or heartbeat changed");
            }
            *entry = now.then_some(until);
        }
    }
    if changed {
        shared.alerts_changed.notify_one();
    }
}

async fn release(shared: &Shared, redis: &mut ConnectionManager) {
    let names: Vec<String> = {
        let mut leases = shared.leases.lock().unwrap();
        let held = leases
            .names
            .iter()
            .filter(|(_, until)| until.is_some())
            .map(|(name, _)| name.clone())
            .collect();
        leases.names.values_mut().for_each(|until| *until = None);
        held
    };
    if names.is_empty() {
        return;
    }
    let mut script = RELEASE_SCRIPT.prepare_invoke();
    for name in &names {
        script.key(key(name));
    }
    script.arg(mine(shared));
    let done = tokio::time::timeout(CLUSTER_HEARTBEAT, script.invoke_async::<i64>(redis)).await;
    if !matches!(done, Ok(Ok(_))) {
        tracing::warn!("could not let go of this node's leases; they expire on their own");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name is not run until claimed; past the limit, a new name runs unclaimed.
    #[test]
    fn names_wait_for_their_lease_and_past_the_limit_run_unclaimed() {
        let mut leases = Leases::default();
        assert!(!leases.holds("web"));
        leases
            .names
            .insert("web".into(), Some(Instant::now() + CLUSTER_HEARTBEAT));
        assert!(leases.holds("web"));
        leases.names.insert("web".into(), Some(Instant::now()));
        assert!(!leases.holds("web"), "an expired lease is not held");
        for n in leases.names.len()..CLUSTER_LEASES {
            leases.holds(&format!("c{n}"));
        }
        assert!(leases.holds("one-more"));
        assert!(!leases.names.contains_key("one-more"));
    }
}
