//! Fan-out latency, measured on a sample of room messages: the time from taking a message
//! in to writing it to the last member it was for.
//!
//! Timing every message would cost every delivery a shared count to bring down; a sampled
//! message carries a [`FanoutProbe`] in the room's log, and only its members count it down
//! as they write it. The member that brings the count to zero observes the time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use prometheus_client::metrics::histogram::Histogram;

/// Messages are sampled at most once per this long: enough observations for a histogram,
/// few enough that the probes' counts cost nothing measurable.
pub const FANOUT_SAMPLE_INTERVAL: Duration = Duration::from_millis(10);

/// One sampled message's way to its members.
#[derive(Debug)]
pub struct FanoutProbe {
    taken: Instant,
    /// Members that have still to write it.
    left: AtomicUsize,
    histogram: Histogram,
}

impl FanoutProbe {
    pub(super) fn new(taken: Instant, members: usize, histogram: Histogram) -> Arc<FanoutProbe> {
        Arc::new(FanoutProbe {
            taken,
            left: AtomicUsize::new(members),
            histogram,
        })
    }

    /// One member's connection wrote the message (or had nothing to write for it); the
    /// last one observes how long it took.
    pub fn written(&self) {
        if self.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.histogram.observe(self.taken.elapsed().as_secs_f64());
        }
    }
}

/// Decides which messages are probed: the first after [`FANOUT_SAMPLE_INTERVAL`] has passed
/// since the last. Kept under the hub's lock.
#[derive(Debug)]
pub struct FanoutSampler {
    next: Instant,
}

impl Default for FanoutSampler {
    fn default() -> FanoutSampler {
        FanoutSampler {
            next: Instant::now(),
        }
    }
}

impl FanoutSampler {
    /// Whether a message fanned out at `now` is to be probed.
    pub fn due(&mut self, now: Instant) -> bool {
        if now < self.next {
            return false;
        }
        self.next = now + FANOUT_SAMPLE_INTERVAL;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// How many observations `histogram` has, as a scrape shows it.
    fn observed(histogram: &Histogram) -> String {
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register("h", "", histogram.clone());
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).unwrap();
        let count = text.lines().find(|l| l.starts_with("h_count ")).unwrap();
        count["h_count ".len()..].to_string()
    }

    #[test]
    fn the_last_member_to_write_observes_once() {
        let histogram = Histogram::new([1.0]);
        let probe = FanoutProbe::new(Instant::now(), 3, histogram.clone());
        probe.written();
        probe.written();
        assert_eq!(observed(&histogram), "0");
        probe.written();
        assert_eq!(observed(&histogram), "1");
    }

    #[test]
    fn one_message_is_sampled_per_interval() {
        let t0 = Instant::now();
        let mut sampler = FanoutSampler { next: t0 };
        assert!(sampler.due(t0));
        assert!(!sampler.due(t0 + FANOUT_SAMPLE_INTERVAL / 2));
        assert!(sampler.due(t0 + FANOUT_SAMPLE_INTERVAL));
        assert!(!sampler.due(t0 + FANOUT_SAMPLE_INTERVAL));
    }
}
