//! How long to wait before each reconnection attempt.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::Duration;

/// The wait before the first attempt after a disconnection: short, because a server
/// restart takes about this long.
pub const RECONNECT_FIRST_DELAY: Duration = Duration::from_millis(500);

/// The longest wait between attempts; the wait doubles from the first up to this.
pub const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(30);

/// Doubling delays with ±25 % jitter, so the clients of a restarted server do not all
/// knock at the same instant.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    pub fn new() -> Backoff {
        Backoff {
            next: RECONNECT_FIRST_DELAY,
        }
    }

    /// The wait before the next attempt.
    pub fn delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(RECONNECT_MAX_DELAY);
        // A fresh RandomState is randomly keyed: a random number without a dependency.
        let random = RandomState::new().hash_one(0u8);
        let permille = 750 + random % 501;
        base * u32::try_from(permille).unwrap_or(1000) / 1000
    }
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_bound_with_some_jitter() {
        let mut backoff = Backoff::new();
        let first = backoff.delay();
        assert!(first >= RECONNECT_FIRST_DELAY * 3 / 4 && first <= RECONNECT_FIRST_DELAY * 5 / 4);
        let second = backoff.delay();
        assert!(second >= RECONNECT_FIRST_DELAY * 3 / 2, "{second:?}");
        for _ in 0..20 {
            assert!(backoff.delay() <= RECONNECT_MAX_DELAY * 5 / 4);
        }
    }
}
