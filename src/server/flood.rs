//! Flood control: a token bucket per connection.
//!
//! A client may send [`crate::limits::FLOOD_BURST`] lines at once; the allowance refills at
//! [`crate::limits::FLOOD_RATE`] lines a second. A line beyond it is refused with a `flood`
//! error (not relayed, so the room stays readable); after
//! [`crate::limits::FLOOD_KICK_AFTER`] refusals in a row the client is disconnected
//! ("flooding"). Time is passed in, so tests need no clock.

use std::time::Instant;

/// What to do with one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Refuse,
    Kick,
}

#[derive(Debug)]
pub struct FloodGate {
    // f32, not f64: one of these lives in every connection's task, and its size counts
    // against the idle-memory target; a lines-per-second allowance needs no more.
    burst: f32,
    rate: f32,
    kick_after: u32,
    tokens: f32,
    last: Instant,
    refused_in_row: u32,
}

impl FloodGate {
    /// `rate` 0 lets everything through.
    pub fn new(burst: u32, rate: u32, kick_after: u32, now: Instant) -> FloodGate {
        FloodGate {
            burst: burst.max(1) as f32,
            rate: rate as f32,
            kick_after,
            tokens: burst.max(1) as f32,
            last: now,
            refused_in_row: 0,
        }
    }

    pub fn check(&mut self, now: Instant) -> Verdict {
        if self.rate == 0.0 {
            return Verdict::Pass;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f32();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.refused_in_row = 0;
            return Verdict::Pass;
        }
        self.refused_in_row += 1;
        if self.refused_in_row >= self.kick_after {
            Verdict::Kick
        } else {
            Verdict::Refuse
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_refuse_then_kick() {
        let t0 = Instant::now();
        let mut gate = FloodGate::new(3, 1, 2, t0);
        assert_eq!(gate.check(t0), Verdict::Pass);
        assert_eq!(gate.check(t0), Verdict::Pass);
        assert_eq!(gate.check(t0), Verdict::Pass);
        assert_eq!(gate.check(t0), Verdict::Refuse);
        assert_eq!(gate.check(t0), Verdict::Kick);
    }

    #[test]
    fn allowance_refills_at_the_rate_and_resets_the_count() {
        let t0 = Instant::now();
        let mut gate = FloodGate::new(2, 2, 3, t0);
        gate.check(t0);
        gate.check(t0);
        assert_eq!(gate.check(t0), Verdict::Refuse);
        // Half a second at 2 lines/s buys one line.
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!(gate.check(t1), Verdict::Pass);
        assert_eq!(gate.check(t1), Verdict::Refuse);
        assert_eq!(gate.check(t1), Verdict::Refuse);
        // Never more than the burst, however long the pause.
        let t2 = t1 + Duration::from_secs(3600);
        assert_eq!(gate.check(t2), Verdict::Pass);
        assert_eq!(gate.check(t2), Verdict::Pass);
        assert_eq!(gate.check(t2), Verdict::Refuse);
    }

    #[test]
    fn rate_zero_is_off() {
        let t0 = Instant::now();
        let mut gate = FloodGate::new(1, 0, 1, t0);
        assert!((0..10_000).all(|_| gate.check(t0) == Verdict::Pass));
    }
}
