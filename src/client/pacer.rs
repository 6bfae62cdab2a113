//! Sending no faster than the server's flood control allows.
//!
//! A script piping a thousand lines would otherwise have all but the first burst refused
//! with `flood` errors (and be disconnected after [`crate::limits::FLOOD_KICK_AFTER`] of
//! them). The pacer mirrors the server's default allowance, one line short of the burst, so
//! with a server at its defaults nothing is ever refused; lines are delayed here instead.

use std::time::Duration;

use tokio::time::Instant;

use crate::limits::{FLOOD_BURST, FLOOD_RATE};

/// Lines sent at once before pacing starts: the server's default burst, less one line of
/// headroom for timing differences between its clock and ours.
pub const PACE_BURST: u32 = FLOOD_BURST - 1;

/// Lines per second once the burst is spent: the server's default refill rate.
pub const PACE_RATE: u32 = FLOOD_RATE;

/// A token bucket: [`PACE_BURST`] tokens, refilled at [`PACE_RATE`] a second.
#[derive(Debug)]
pub struct Pacer {
    tokens: f64,
    last: Instant,
}

impl Pacer {
    pub fn new() -> Pacer {
        Pacer {
            tokens: f64::from(PACE_BURST),
            last: Instant::now(),
        }
    }

    /// Waits until one more line may be sent, and counts it.
    pub async fn ready(&mut self) {
        let rate = f64::from(PACE_RATE);
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(f64::from(PACE_BURST));
        self.last = now;
        if self.tokens < 1.0 {
            let wait = Duration::from_secs_f64((1.0 - self.tokens) / rate);
            tokio::time::sleep(wait).await;
            self.tokens = 1.0;
            self.last = Instant::now();
        }
        self.tokens -= 1.0;
    }
}

impl Default for Pacer {
    fn default() -> Pacer {
        Pacer::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_goes_at_once_then_lines_go_at_the_rate() {
        let mut pacer = Pacer::new();
        let start = Instant::now();
        for _ in 0..PACE_BURST {
            pacer.ready().await;
        }
        assert_eq!(Instant::now(), start);
        for _ in 0..PACE_RATE {
            pacer.ready().await;
        }
        let took = Instant::now() - start;
        assert!(
            took >= Duration::from_millis(990) && took <= Duration::from_millis(1010),
            "{took:?}"
        );
    }
}
