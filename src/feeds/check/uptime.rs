//! A check's last 24 hours in bounded memory: its runs counted in buckets of
//! [`CHECK_UPTIME_BUCKET`], [`CHECK_UPTIME_BUCKETS`] of them, each keeping how many runs
//! succeeded and how long they took, for `/status`'s uptime and the page's chart.

use std::collections::VecDeque;
use std::time::Duration;

use crate::limits::{CHECK_UPTIME_BUCKET, CHECK_UPTIME_BUCKETS};

/// The runs of one bucket.
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    runs: u16,
    up: u16,
    /// Milliseconds all its runs took together.
    took_ms: u32,
}

/// A check's recent runs, bucket by bucket.
#[derive(Debug, Clone, Default)]
pub struct Uptime {
    buckets: VecDeque<Bucket>,
    /// The number of the newest bucket (milliseconds since the epoch / the bucket's length).
    newest: u64,
}

fn bucket_ms() -> u64 {
    CHECK_UPTIME_BUCKET.as_millis() as u64
}

impl Uptime {
    /// Counts one run at `now_ms` (since the epoch): whether it succeeded, how long it took.
    pub fn record(&mut self, now_ms: u64, up: bool, took: Duration) {
        self.roll(now_ms);
        let bucket = self.buckets.back_mut().expect("rolled to a bucket");
        bucket.runs = bucket.runs.saturating_add(1);
        bucket.up = bucket.up.saturating_add(u16::from(up));
        let took = u32::try_from(took.as_millis()).unwrap_or(u32::MAX);
        bucket.took_ms = bucket.took_ms.saturating_add(took);
    }

    /// Moves the window on to `now_ms`'s bucket, dropping what is older than the window.
    fn roll(&mut self, now_ms: u64) {
        let now = now_ms / bucket_ms();
        if self.buckets.is_empty() || now > self.newest + CHECK_UPTIME_BUCKETS as u64 {
            self.buckets.clear();
            self.buckets.push_back(Bucket::default());
        } else {
            for _ in self.newest..now {
                self.buckets.push_back(Bucket::default());
            }
        }
        self.newest = self.newest.max(now);
        while self.buckets.len() > CHECK_UPTIME_BUCKETS {
            self.buckets.pop_front();
        }
    }

    /// The buckets of the window ending at `now_ms`, oldest first, with how many more recent
    /// buckets had no run since.
    fn window(&self, now_ms: u64) -> impl Iterator<Item = &Bucket> {
        let now = now_ms / bucket_ms();
        let stale = now.saturating_sub(self.newest) as usize;
        let keep = CHECK_UPTIME_BUCKETS.saturating_sub(stale);
        let skip = self.buckets.len().saturating_sub(keep);
        self.buckets.iter().skip(skip)
    }

    /// The share of runs that succeeded in the last 24 hours, in thousandths; `None`
    /// without a run.
    pub fn permille(&self, now_ms: u64) -> Option<u64> {
        let (runs, up) = self.window(now_ms).fold((0u64, 0u64), |(r, u), b| {
            (r + u64::from(b.runs), u + u64::from(b.up))
        });
        (runs > 0).then(|| up * 1000 / runs)
    }

    /// The mean time a run took in each of the last `count` buckets, oldest first, in
    /// milliseconds, separated by commas; a bucket without a run is empty (`12,,15`).
    pub fn responses(&self, now_ms: u64, count: usize) -> String {
        let now = now_ms / bucket_ms();
        let mut out = vec![String::new(); count];
        for (age, bucket) in self.buckets.iter().rev().enumerate() {
            let age = age as u64 + now.saturating_sub(self.newest);
            let Some(slot) = (count as u64).checked_sub(age + 1) else {
                break;
            };
            if bucket.runs > 0 {
                out[slot as usize] = (bucket.took_ms / u32::from(bucket.runs)).to_string();
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
        assert!(uptime.buckets.len() <= CHECK_UPTIME_BUCKETS);
        assert_eq!(
            uptime.permille(MS + day + CHECK_UPTIME_BUCKETS as u64 * 3 * bucket / 2),
            Some(500)
        );
    }
}
