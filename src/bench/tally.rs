//! What receivers saw: latencies, and per sender which sequence numbers arrived.

use hdrhistogram::Histogram;

use super::payload::Stamp;

/// Highest latency the histogram records, in microseconds; slower deliveries count as this.
const MAX_LATENCY_US: u64 = 600_000_000;

/// One receiver's record of a step (merged into one for the report).
pub struct Tally {
    pub latency_us: Histogram<u64>,
    /// Deliveries counted once each.
    pub unique: u64,
    pub duplicates: u64,
    /// Arrived after a later message of the same sender.
    pub reordered: u64,
    /// Per sender: bit `seq` set once that message arrived; and the highest seq seen.
    seen: Vec<(Vec<u64>, Option<u64>)>,
}

impl Tally {
    pub fn new() -> Tally {
        Tally {
            latency_us: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
                .expect("valid histogram bounds"),
            unique: 0,
            duplicates: 0,
            reordered: 0,
            seen: Vec::new(),
        }
    }

    pub fn record(&mut self, stamp: Stamp, now_us: u64) {
        let latency = now_us
            .saturating_sub(stamp.intended_us)
            .clamp(1, MAX_LATENCY_US);
        self.latency_us.saturating_record(latency);
        let sender = stamp.sender as usize;
        if self.seen.len() <= sender {
            self.seen.resize_with(sender + 1, Default::default);
        }
        let (bits, highest) = &mut self.seen[sender];
        let (word, bit) = ((stamp.seq / 64) as usize, stamp.seq % 64);
        if bits.len() <= word {
            bits.resize(word + 1, 0);
        }
        if bits[word] & (1 << bit) != 0 {
            self.duplicates += 1;
            return;
        }
        bits[word] |= 1 << bit;
        self.unique += 1;
        match highest {
            Some(h) if *h > stamp.seq => self.reordered += 1,
            _ => *highest = Some(stamp.seq),
        }
    }

    /// Adds another receiver's counts (not its per-sender bits).
    pub fn merge(&mut self, other: &Tally) {
        self.latency_us
            .add(&other.latency_us)
            .expect("histograms of equal bounds");
        self.unique += other.unique;
        self.duplicates += other.duplicates;
        self.reordered += other.reordered;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(sender: u32, seq: u64) -> Stamp {
        Stamp {
            step: 0,
            sender,
            seq,
            intended_us: 1_000,
        }
    }

    #[test]
    fn counts_duplicates_and_reorders() {
        let mut t = Tally::new();
        for (s, q) in [(0, 0), (0, 2), (0, 1), (0, 2), (1, 0), (1, 200)] {
            t.record(stamp(s, q), 3_000);
        }
        assert_eq!(t.unique, 5);
        assert_eq!(t.duplicates, 1);
        assert_eq!(t.reordered, 1);
        assert_eq!(t.latency_us.len(), 6);
        assert!((t.latency_us.value_at_quantile(0.5) as i64 - 2_000).abs() < 5);
    }
}
