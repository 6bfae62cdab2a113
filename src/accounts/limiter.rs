//! Login attempts counted per key (an address, an account) in fixed windows, so guessing a
//! password costs the guesser time and the server no more than a few hashes a minute.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Attempts per key in the current window of each; at most `tracked` keys at once.
pub struct Attempts<K> {
    most: u32,
    window: Duration,
    tracked: usize,
    counts: Mutex<HashMap<K, (Instant, u32)>>,
}

/// Over the allowance: refuse without trying.
#[derive(Debug, PartialEq, Eq)]
pub struct Exhausted;

impl<K: Hash + Eq> Attempts<K> {
    pub fn new(most: u32, window: Duration, tracked: usize) -> Attempts<K> {
        Attempts {
            most,
            window,
            tracked,
            counts: Mutex::default(),
        }
    }

    /// Counts one attempt of `key` at `now`; refused past `most` in its window.
    pub fn spend(&self, key: K, now: Instant) -> Result<(), Exhausted> {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let window = self.window;
        if !counts.contains_key(&key) && counts.len() >= self.tracked {
            // Forget the keys whose window is over: they start afresh anyway.
            counts.retain(|_, (start, _)| now.saturating_duration_since(*start) < window);
            if counts.len() >= self.tracked {
                return Err(Exhausted);
            }
        }
        let (start, count) = counts.entry(key).or_insert((now, 0));
        if now.saturating_duration_since(*start) >= window {
            (*start, *count) = (now, 0);
        }
        if *count >= self.most {
            return Err(Exhausted);
        }
        *count += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_key_and_starts_again_after_the_window() {
        let attempts = Attempts::new(2, Duration::from_secs(60), 10);
        let t = Instant::now();
        assert_eq!(attempts.spend("a", t), Ok(()));
        assert_eq!(attempts.spend("a", t), Ok(()));
        assert_eq!(attempts.spend("a", t), Err(Exhausted));
        assert_eq!(
            attempts.spend("b", t),
            Ok(()),
            "another key has its own count"
        );
        let later = t + Duration::from_secs(60);
        assert_eq!(attempts.spend("a", later), Ok(()));
    }

    #[test]
    fn tracks_a_bounded_number_of_keys() {
        let attempts = Attempts::new(5, Duration::from_secs(60), 2);
        let t = Instant::now();
        attempts.spend(1, t).unwrap();
        attempts.spend(2, t).unwrap();
        assert_eq!(attempts.spend(3, t), Err(Exhausted));
        // Once the others' windows are over, they make room.
        attempts.spend(3, t + Duration::from_secs(61)).unwrap();
    }
}
