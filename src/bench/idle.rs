//! Idle connections: registered clients that say nothing, and what each costs the server.

use std::time::Duration;

use indicatif::ProgressBar;

use super::load::{Crowd, Shape};
use super::probe::Sampler;
use super::report::Idle;

/// Time for the server to finish the join notices and settle before memory is read.
const SETTLE: Duration = Duration::from_secs(3);

pub async fn measure(
    shape: Shape,
    server: &Sampler,
    progress: &ProgressBar,
) -> anyhow::Result<Idle> {
    let before = server.sample()?;
    let crowd = Crowd::gather(shape.clone(), progress).await?;
    progress.set_message("settling");
    tokio::time::sleep(SETTLE).await;
    let after = server.sample()?;
    crowd.disperse().await;
    Ok(Idle {
        connections: shape.clients,
        rss_before_bytes: before.rss_bytes,
        rss_after_bytes: after.rss_bytes,
        bytes_per_connection: after.rss_bytes.saturating_sub(before.rss_bytes) as f64
            / shape.clients.max(1) as f64,
        fds_after: after.fds,
    })
}
