//! A check's last 24 hours in bounded memory: its runs counted in buckets of
//! [`CHECK_UPTIME_BUCKET`], [`CHECK_UPTIME_BUCKETS`] of them, each keeping how many runs
//! there were and how many failed, for `/status`'s uptime; and, for the newest
//! [`CHECK_CHART_BUCKETS`] only, how long they took, for the page's chart.
//!
//! Both are rings allocated whole at a check's first run and indexed by the bucket's
//! number, so a day of runs costs what one costs: a check's memory does not grow with
//! time, and no growing buffer is left with twice the room it needs.

use std::time::Duration;

use crate::limits::{CHECK_CHART_BUCKETS, CHECK_UPTIME_BUCKET, CHECK_UPTIME_BUCKETS};

/// The runs of one bucket.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    runs: u16,
    failed: u16,
}

/// A check's recent runs, bucket by bucket.
#[derive(Debug, Clone, Default)]
pub struct Uptime {
    /// Bucket `n` (milliseconds since the epoch / the bucket's length) is at `n %` the
    /// ring's length; empty before the first run.
    counts: Box<[Counts]>,
    /// Milliseconds the runs of each of the newest buckets took together, likewise.
    took_ms: Box<[u32]>,
    /// The number of the newest bucket with a run.
    newest: u64,
}

fn bucket_ms() -> u64 {
    CHECK_UPTIME_BUCKET.as_millis() as u64
}

impl Uptime {
    /// Counts one run at `now_ms` (since the epoch): whether it succeeded, how long it took.
    pub fn record(&mut self, now_ms: u64, up: bool, took: Duration) {
        let now = self.roll(now_ms / bucket_ms());
        let counts = &mut self.counts[now as usize % CHECK_UPTIME_BUCKETS];
        counts.runs = counts.runs.saturating_add(1);
        counts.failed = counts.failed.saturating_add(u16::from(!up));
        let took = u32::try_from(took.as_millis()).unwrap_or(u32::MAX);
        let sum = &mut self.took_ms[now as usize % CHECK_CHART_BUCKETS];
        *sum = sum.saturating_add(took);
    }

    /// Moves the window on to bucket `now`, emptying the slots it passes (each last held
    /// the bucket one ring's length older); returns the bucket to count in, the newest
    /// when the clock went back.
    fn roll(&mut self, now: u64) -> u64 {
        if self.counts.is_empty() {
            self.counts = vec![Counts::default(); CHECK_UPTIME_BUCKETS].into_boxed_slice();
            self.took_ms = vec![0; CHECK_CHART_BUCKETS].into_boxed_slice();
            self.newest = now;
        }
        let first = self.newest + 1;
        for n in first.max(now.saturating_sub(CHECK_UPTIME_BUCKETS as u64 - 1))..=now {
            self.counts[n as usize % CHECK_UPTIME_BUCKETS] = Counts::default();
        }
        for n in first.max(now.saturating_sub(CHECK_CHART_BUCKETS as u64 - 1))..=now {
            self.took_ms[n as usize % CHECK_CHART_BUCKETS] = 0;
        }
        self.newest = self.newest.max(now);
        self.newest
    }

    /// The buckets of the window ending at `now_ms` up to the newest with a run, each
    /// with its number.
    fn window(&self, now_ms: u64) -> impl Iterator<Item = (u64, Counts)> + '_ {
        let now = now_ms / bucket_ms();
        let oldest = now.saturating_sub(CHECK_UPTIME_BUCKETS as u64 - 1);
        let from = oldest.max(self.newest.saturating_sub(CHECK_UPTIME_BUCKETS as u64 - 1));
        let to = self.newest.min(now);
        // Before the first run there is no ring to read.
        let ring = !self.counts.is_empty();
        (from..=to)
            .filter(move |_| ring)
            .map(|n| (n, self.counts[n as usize % CHECK_UPTIME_BUCKETS]))
    }

    /// The share of runs that succeeded in the last 24 hours, in thousandths; `None`
    /// without a run.
    pub fn permille(&self, now_ms: u64) -> Option<u64> {
        let (runs, failed) = self.window(now_ms).fold((0u64, 0u64), |(r, f), (_, c)| {
            (r + u64::from(c.runs), f + u64::from(c.failed))
        });
        (runs > 0).then(|| (runs - failed) * 1000 / runs)
    }

    /// The mean time a run took in each of the last `count` buckets (at most
    /// [`CHECK_CHART_BUCKETS`]), oldest first, in milliseconds, separated by commas; a
    /// bucket without a run is empty (`12,,15`).
    pub fn responses(&self, now_ms: u64, count: usize) -> String {
        let count = count.min(CHECK_CHART_BUCKETS);
        let now = now_ms / bucket_ms();
        let mut out = vec![String::new(); count];
        for (n, counts) in self.window(now_ms) {
            let Some(slot) = (count as u64).checked_sub(now - n + 1) else {
                continue;
            };
            if counts.runs > 0 {
                let took = self.took_ms[n as usize % CHECK_CHART_BUCKETS];
                out[slot as usize] = (took / u32::from(counts.runs)).to_string();
            }
        }
        out.join(",")
    }
}

/// Thousandths as a percentage people read: `99.8%`, `100%`.
pub fn percent(permille: u64) -> String {
    if permille % 10 == 0 {
        format!("{}%", permille / 10)
    } else {
        format!("{}.{}%", permille / 10, permille % 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_800_000_000_000;

    #[test]
    fn uptime_counts_the_last_day_and_forgets_the_rest() {
        let mut uptime = Uptime::default();
        assert_eq!(uptime.permille(MS), None);
        let ms = Duration::from_millis;
        for i in 0..9 {
            uptime.record(MS + i * 1000, true, ms(10));
        }
        uptime.record(MS + 9000, false, ms(30));
        assert_eq!(uptime.permille(MS + 9000), Some(900));
        assert_eq!(percent(900), "90%");
        assert_eq!(percent(998), "99.8%");
        let bucket = bucket_ms();
        // A bucket later, a slow run: the chart has both buckets, the one now last.
        uptime.record(MS + bucket, true, ms(100));
        assert_eq!(uptime.responses(MS + bucket, 3), ",12,100");
        // Two buckets without a run: the chart moves on, empty.
        assert_eq!(uptime.responses(MS + 3 * bucket, 4), "12,100,,");
        // A day later, only the new runs count; memory stays bounded.
        let day = CHECK_UPTIME_BUCKETS as u64 * bucket;
        assert_eq!(uptime.permille(MS + day + bucket), None);
        for i in 0..CHECK_UPTIME_BUCKETS as u64 * 3 {
            uptime.record(MS + day + i * bucket / 2, i % 2 == 0, ms(5));
        }
        assert_eq!(uptime.counts.len(), CHECK_UPTIME_BUCKETS);
        assert_eq!(uptime.took_ms.len(), CHECK_CHART_BUCKETS);
        let end = MS + day + CHECK_UPTIME_BUCKETS as u64 * 3 * bucket / 2;
        assert_eq!(uptime.permille(end), Some(500));
        // The chart's ring went round many times: each bucket holds its own runs only.
        assert_eq!(uptime.responses(end - bucket, 3), "5,5,5");
        assert_eq!(
            uptime
                .responses(end, CHECK_CHART_BUCKETS * 2)
                .split(',')
                .count(),
            CHECK_CHART_BUCKETS
        );
        // A clock that went back counts in the newest bucket, never in a stale slot: 287
        // of 575 runs succeeded.
        uptime.record(end - 10 * bucket, false, ms(5));
        assert_eq!(uptime.permille(end), Some(499));
    }
}
