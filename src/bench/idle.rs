//! Idle connections: registered clients that say nothing, and what each costs the server.

use std::time::Duration;

use indicatif::ProgressBar;

use super::adapter::{Protocol, Registered};
use super::load::{Crowd, Shape, room_name};
use super::probe::Sampler;
use super::report::Idle;

/// Time for the server to finish the join notices and settle before memory is read.
const SETTLE: Duration = Duration::from_secs(3);

pub async fn measure(
    shape: Shape,
    server: &Sampler,
    progress: &ProgressBar,
) -> anyhow::Result<Idle> {
    // One client first, outside the count: what the first join costs once (the room, its
    // history read from the store, the allocator's first pages) is in `before`, not charged
    // to each connection. Its nick follows the crowd's (`b0`…), so none collides.
    let first = shape
        .dialer()?
        .register(shape.clients, &room_name(&shape, 0))
        .await?;
    // It hears the crowd's joins: read them, lest the server hold them for it.
    let first = tokio::spawn(drain(first, shape.protocol));
    tokio::time::sleep(SETTLE).await;
    let before = server.sample()?;
    let crowd = Crowd::gather(shape.clone(), progress).await?;
    progress.set_message("settling");
    tokio::time::sleep(SETTLE).await;
    let after = server.sample()?;
    crowd.disperse().await;
    first.abort();
    Ok(Idle {
        connections: shape.clients,
        rss_before_bytes: before.rss_bytes,
        rss_after_bytes: after.rss_bytes,
        bytes_per_connection: after.rss_bytes.saturating_sub(before.rss_bytes) as f64
            / shape.clients.max(1) as f64,
        fds_after: after.fds,
    })
}

/// Reads and drops what comes, answering the server's pings, until the connection ends.
async fn drain(registered: Registered, protocol: Protocol) {
    let Registered {
        mut reader,
        mut writer,
    } = registered;
    while let Ok(Some(line)) = reader.line().await {
        if let Some(pong) = protocol.answer(line.as_bytes()) {
            if writer.send(&pong).await.is_err() {
                return;
            }
        }
    }
}
