//! What receivers saw: latencies, and per sender which sequence numbers arrived.

use std::collections::HashSet;

use hdrhistogram::Histogram;

use super::payload::Stamp;

/// Highest delay a histogram records, in microseconds; anything slower counts as this.
const MAX_LATENCY_US: u64 = 600_000_000;

/// A histogram of delays in microseconds, three significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds")
}

/// Records a delay of `us` microseconds (at least 1, at most [`MAX_LATENCY_US`]).
pub fn record_delay(histogram: &mut Histogram<u64>, us: u64) {
    histogram.saturating_record(us.clamp(1, MAX_LATENCY_US));
}

/// The latencies of every delivery of a step, all receivers together: up to the moment
/// the generator read each line, and up to the moment it reached the client's socket
/// (see `arrival`). One histogram of each for all receivers, not one each: at three
/// significant digits a histogram is ~300 KB, and a thousand of them made every record a
/// cache miss (a quarter of the generator's CPU) and 3 GB at 10,000 clients.
pub struct Latencies {
    pub read: Histogram<u64>,
    pub socket: Histogram<u64>,
}

impl Latencies {
    pub fn new() -> Latencies {
        Latencies {
            read: histogram(),
            socket: histogram(),
        }
    }

    /// Records one delivery: from when it was meant to be sent until it was read at
    /// `read_us`, and until it reached the socket at `arrived_us` when the kernel said.
    pub fn record(&mut self, stamp: &Stamp, read_us: u64, arrived_us: Option<u64>) {
        record(&mut self.read, stamp, read_us);
        if let Some(arrived_us) = arrived_us {
            record(&mut self.socket, stamp, arrived_us);
        }
    }

    pub fn reset(&mut self) {
        self.read.reset();
        self.socket.reset();
    }
}

fn record(histogram: &mut Histogram<u64>, stamp: &Stamp, at_us: u64) {
    record_delay(histogram, at_us.saturating_sub(stamp.intended_us));
}

/// One receiver's record of a step (merged into one for the report).
#[derive(Default)]
pub struct Tally {
    /// Deliveries counted once each.
    pub unique: u64,
    pub duplicates: u64,
    /// Arrived after a later message of the same sender.
    pub reordered: u64,
    /// Per sender, indexed by sender id: what has arrived so far.
    senders: Vec<Arrivals>,
    /// Messages that arrived more than a window ahead of their sender's first missing one
    /// (only when a server loses or badly reorders): sender and sequence number.
    far_ahead: HashSet<(u32, u64)>,
}

/// Which sequence numbers of one sender have arrived, in 24 bytes and no pointer: this is
/// looked up for every delivery of every receiver, and chasing a heap bitset per sender
/// was a cache miss each time (a fifth of the generator's CPU).
#[derive(Default, Clone, Copy)]
struct Arrivals {
    /// Every sequence number below this has arrived.
    next: u64,
    /// Bit `i`: `next + 1 + i` has arrived.
    window: u64,
    /// Highest sequence number seen, plus one (0: none yet).
    highest_plus_one: u64,
}

impl Tally {
    /// Counts the arrival of `stamp`'s message.
    pub fn record(&mut self, stamp: &Stamp) {
        let sender = stamp.sender as usize;
        if self.senders.len() <= sender {
            self.senders.resize(sender + 1, Arrivals::default());
        }
        let arrivals = &mut self.senders[sender];
        let seq = stamp.seq;
        let fresh = if seq < arrivals.next {
            false
        } else if seq == arrivals.next {
            // The usual case: in order. Move past it and past any that came early.
            let ones = arrivals.window.trailing_ones();
            arrivals.next += 1 + u64::from(ones);
            arrivals.window = arrivals.window.checked_shr(ones + 1).unwrap_or(0);
            self.pull_far_ahead(stamp.sender);
            true
        } else if seq - arrivals.next <= 64 {
            let bit = 1u64 << (seq - arrivals.next - 1);
            let fresh = arrivals.window & bit == 0;
            arrivals.window |= bit;
            fresh
        } else {
            self.far_ahead.insert((stamp.sender, seq))
        };
        if !fresh {
            self.duplicates += 1;
            return;
        }
        self.unique += 1;
        let arrivals = &mut self.senders[sender];
        if arrivals.highest_plus_one > seq + 1 {
            self.reordered += 1;
        } else {
            arrivals.highest_plus_one = seq + 1;
        }
    }

    /// Moves `sender`'s far-ahead arrivals that now fall within its window into it.
    fn pull_far_ahead(&mut self, sender: u32) {
        if self.far_ahead.is_empty() {
            return;
        }
        // `next` itself is still missing (else it would have moved on): only what lies
        // beyond it moves into the window.
        let arrivals = &mut self.senders[sender as usize];
        for offset in 1..=64 {
            if self.far_ahead.remove(&(sender, arrivals.next + offset)) {
                arrivals.window |= 1 << (offset - 1);
            }
        }
    }

    /// Adds another receiver's counts (not what arrived from whom).
    pub fn merge(&mut self, other: &Tally) {
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
        let mut t = Tally::default();
        let mut latency = Latencies::new();
        for (s, q) in [(0, 0), (0, 2), (0, 1), (0, 2), (1, 0), (1, 200)] {
            t.record(&stamp(s, q));
            latency.record(&stamp(s, q), 3_000, (s == 0).then_some(1_500));
        }
        assert_eq!(t.unique, 5);
        assert_eq!(t.duplicates, 1);
        assert_eq!(t.reordered, 1);
        assert_eq!(latency.read.len(), 6);
        assert_eq!(latency.socket.len(), 4, "only stamped arrivals");
        // Far ahead of the window, then the gap filled in: all counted once.
        let mut t = Tally::default();
        for q in [0, 500, 70, 1, 500] {
            t.record(&stamp(2, q));
        }
        for q in 2..=600 {
            t.record(&stamp(2, q));
        }
        assert_eq!(t.unique, 601);
        assert_eq!(
            t.duplicates, 3,
            "500 a second time, then 70 and 500 again in the sweep"
        );
        assert!(t.far_ahead.is_empty());
        // Out of order with something far ahead pending: the gap stays a gap.
        let mut t = Tally::default();
        for q in [2, 3, 200, 0, 1, 1] {
            t.record(&stamp(3, q));
        }
        assert_eq!((t.unique, t.duplicates), (5, 1));
        assert!((latency.read.value_at_quantile(0.5) as i64 - 2_000).abs() < 5);
        assert!((latency.socket.value_at_quantile(0.5) as i64 - 500).abs() < 5);
    }
}
