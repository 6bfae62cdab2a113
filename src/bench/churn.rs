//! Connect, register, disconnect, as fast as the server allows; then look for leaks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::load::Shape;
use super::probe::Sampler;
use super::report::Churn;

/// Cycles under way at once.
const CONCURRENCY: usize = 64;

/// Time for the server to close everything before fds and memory are read again.
const SETTLE: Duration = Duration::from_secs(2);

pub async fn measure(
    shape: Shape,
    cycles: usize,
    server: Option<&Sampler>,
    progress: &ProgressBar,
) -> anyhow::Result<Churn> {
    let before = server.map(Sampler::sample).transpose()?;
    progress.set_length(cycles as u64);
    progress.set_message("connect/disconnect cycles");
    let gate = Arc::new(Semaphore::new(CONCURRENCY));
    let mut joins = JoinSet::new();
    let mut failures = 0;
    let dialer = shape.dialer()?;
    let started = Instant::now();
    for id in 0..cycles {
        let permit = gate.clone().acquire_owned().await?;
        let dialer = dialer.clone();
        joins.spawn(async move {
            let ok = dialer.register(id, "#churn").await.is_ok();
            drop(permit);
            ok
        });
        while let Some(done) = joins.try_join_next() {
            failures += usize::from(!done?);
            progress.inc(1);
        }
    }
    while let Some(done) = joins.join_next().await {
        failures += usize::from(!done?);
        progress.inc(1);
    }
    let seconds = started.elapsed().as_secs_f64();
    tokio::time::sleep(SETTLE).await;
    let after = server.map(Sampler::sample).transpose()?;
    Ok(Churn {
        cycles,
        seconds,
        connections_per_s: cycles as f64 / seconds,
        failures,
        fds_before: before.map(|s| s.fds),
        fds_after: after.map(|s| s.fds),
        rss_before_bytes: before.map(|s| s.rss_bytes),
        rss_after_bytes: after.map(|s| s.rss_bytes),
    })
}
