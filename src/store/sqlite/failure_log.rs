//! How often the writer logs a failure that repeats on every try (a full disk fails each
//! move of staged history, every [`super::MERGE_INTERVAL`]): so the log says it, how long
//! it lasts and when it ends without flooding.

use std::time::{Duration, Instant};

/// At most one log line per this long for a failure that keeps repeating; the first is
/// logged at once, and each later line says how many failures were not logged since.
pub const FAILURE_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// A repeating failure's log: which tries to log, and whether it has ended.
#[derive(Debug, Default)]
pub struct FailureLog {
    /// When a failure was last logged, while failing.
    logged_at: Option<Instant>,
    /// Failures since then that were not logged.
    unlogged: u64,
}

impl FailureLog {
    /// A try failed at `now`: `Some(failures not logged before this one)` when this one is
    /// to be logged.
    pub fn failed(&mut self, now: Instant) -> Option<u64> {
        match self.logged_at {
            Some(at) if now.saturating_duration_since(at) < FAILURE_LOG_INTERVAL => {
                self.unlogged += 1;
                None
            }
            _ => {
                self.logged_at = Some(now);
                Some(std::mem::take(&mut self.unlogged))
            }
        }
    }

    /// A try worked: `Some(failures not logged)` when it ends a failure, to be logged once.
    pub fn worked(&mut self) -> Option<u64> {
        self.logged_at.take()?;
        Some(std::mem::take(&mut self.unlogged))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_failure_is_logged_then_one_a_minute_then_the_end() {
        let mut log = FailureLog::default();
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        assert_eq!(log.worked(), None, "nothing failed: nothing to say");
        assert_eq!(log.failed(at(0)), Some(0));
        // Every quarter second for the rest of the minute: quiet, counted.
        for try_ in 1..240 {
            assert_eq!(log.failed(at(try_ * 250)), None);
        }
        assert_eq!(log.failed(at(60_000)), Some(239));
        assert_eq!(log.failed(at(60_250)), None);
        assert_eq!(log.worked(), Some(1));
        assert_eq!(log.worked(), None, "the end is said once");
        // A new failure after it ended is logged at once.
        assert_eq!(log.failed(at(60_500)), Some(0));
    }
}
