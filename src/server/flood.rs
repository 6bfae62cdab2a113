//! Flood control: a token bucket per connection.
//!
//! A client may send [`crate::limits::FLOOD_BURST`] lines at once; the allowance refills at
//! [`crate::limits::FLOOD_RATE`] lines a second. A line beyond it is refused with a `flood`
//! error (not relayed, so the room stays readable); after
//! [`crate::limits::FLOOD_KICK_AFTER`] refusals in a row the client is disconnected
//! ("flooding"). Time is passed in, so tests need no clock.

use std::time::Instant;

use crate::limits::Limits;

/// What to do with one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Refuse,
    Kick,
}

/// One connection's allowance. Only the state is kept here: the rule (burst, rate, kick)
/// comes from the [`Limits`] in force at each check, so every idle connection does not
/// carry its own copy.
#[derive(Debug)]
pub struct FloodGate {
    // f32, not f64: one of these lives in every connection's task, and its size counts
    // against the idle-memory target; a lines-per-second allowance needs no more.
    tokens: f32,
    refused_in_row: u32,
    last: Instant,
}

impl FloodGate {
    /// A full allowance.
    pub fn new(limits: &Limits, now: Instant) -> FloodGate {
        FloodGate {
            tokens: burst(limits),
            refused_in_row: 0,
            last: now,
        }
    }

    /// A rate of 0 lets everything through.
    pub fn check(&mut self, limits: &Limits, now: Instant) -> Verdict {
        if limits.flood_rate == 0 {
            return Verdict::Pass;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f32();
        self.last = now;
        self.tokens = (self.tokens + elapsed * limits.flood_rate as f32).min(burst(limits));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.refused_in_row = 0;
            return Verdict::Pass;
        }
        self.refused_in_row += 1;
        if self.refused_in_row >= limits.flood_kick_after {
            Verdict::Kick
        } else {
            Verdict::Refuse
        }
    }
}

fn burst(limits: &Limits) -> f32 {
    limits.flood_burst.max(1) as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn rule(burst: u32, rate: u32, kick_after: u32) -> Limits {
        Limits {
            flood_burst: burst,
            flood_rate: rate,
            flood_kick_after: kick_after,
            ..Limits::default()
        }
    }

    #[test]
    fn burst_then_refuse_then_kick() {
        let t0 = Instant::now();
        let limits = rule(3, 1, 2);
        let mut gate = FloodGate::new(&limits, t0);
        assert_eq!(gate.check(&limits, t0), Verdict::Pass);
        assert_eq!(gate.check(&limits, t0), Verdict::Pass);
        assert_eq!(gate.check(&limits, t0), Verdict::Pass);
        assert_eq!(gate.check(&limits, t0), Verdict::Refuse);
        assert_eq!(gate.check(&limits, t0), Verdict::Kick);
    }

    #[test]
    fn allowance_refills_at_the_rate_and_resets_the_count() {
        let t0 = Instant::now();
        let limits = rule(2, 2, 3);
        let mut gate = FloodGate::new(&limits, t0);
        gate.check(&limits, t0);
        gate.check(&limits, t0);
        assert_eq!(gate.check(&limits, t0), Verdict::Refuse);
        // Half a second at 2 lines/s buys one line.
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!(gate.check(&limits, t1), Verdict::Pass);
        assert_eq!(gate.check(&limits, t1), Verdict::Refuse);
        assert_eq!(gate.check(&limits, t1), Verdict::Refuse);
        // Never more than the burst, however long the pause.
        let t2 = t1 + Duration::from_secs(3600);
        assert_eq!(gate.check(&limits, t2), Verdict::Pass);
        assert_eq!(gate.check(&limits, t2), Verdict::Pass);
        assert_eq!(gate.check(&limits, t2), Verdict::Refuse);
    }

    #[test]
    fn rate_zero_is_off() {
        let t0 = Instant::now();
        let limits = rule(1, 0, 1);
        let mut gate = FloodGate::new(&limits, t0);
        assert!((0..10_000).all(|_| gate.check(&limits, t0) == Verdict::Pass));
    }
}
