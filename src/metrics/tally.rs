//! Lines and bytes written to connections, tallied per thread.
//!
//! Every write adds to these, on whichever worker thread runs the connection. One shared
//! pair of counters would have every worker write the same cache line after every write it
//! makes; here each thread adds to a slot of its own, and a scrape sums the slots.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;

/// Slots a tally has; threads beyond this many share them (correctly, only less cheaply).
const SLOTS: usize = 16;

/// The two counters of one thread, on a cache line (and its neighbour, which some CPUs
/// fetch along) of their own.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Slot {
    lines: AtomicU64,
    bytes: AtomicU64,
}

/// `charla_lines_written_total` and `charla_bytes_written_total`.
#[derive(Debug, Default)]
pub struct WriteTally {
    slots: [Slot; SLOTS],
}

static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's slot, the same in every tally.
    static SLOT: usize = NEXT_SLOT.fetch_add(1, Ordering::Relaxed) % SLOTS;
}

impl WriteTally {
    /// A write took `lines` whole lines (the end of a line counts it) and `bytes` bytes.
    pub fn add(&self, lines: u64, bytes: u64) {
        let slot = &self.slots[SLOT.with(|slot| *slot)];
        slot.lines.fetch_add(lines, Ordering::Relaxed);
        slot.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn lines(&self) -> u64 {
        self.slots
            .iter()
            .map(|s| s.lines.load(Ordering::Relaxed))
            .sum()
    }

    pub fn bytes(&self) -> u64 {
        self.slots
            .iter()
            .map(|s| s.bytes.load(Ordering::Relaxed))
            .sum()
    }
}

impl Collector for WriteTally {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counters = [
            (
                "lines_written",
                "Lines written whole to clients: every event, messages and answers alike (a WebSocket frame is a line).",
                self.lines(),
            ),
            (
                "bytes_written",
                "Bytes written to clients, before any WebSocket framing.",
                self.bytes(),
            ),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value);
            let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(metric)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_every_thread_adds_is_summed() {
        let tally = std::sync::Arc::new(WriteTally::default());
        let threads: Vec<_> = (0..2 * SLOTS)
            .map(|_| {
                let tally = tally.clone();
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        tally.add(2, 30);
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(tally.lines(), 2 * SLOTS as u64 * 200);
        assert_eq!(tally.bytes(), 2 * SLOTS as u64 * 3000);
    }
}
