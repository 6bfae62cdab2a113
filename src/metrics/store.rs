//! The history file's writer, for `GET /metrics`: what it committed, what it could not and
//! what it refused, read from its own counts when scraped.

use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;

use crate::store::SqliteHistory;

/// `charla_history_written_total`, `charla_history_lost_total` and
/// `charla_history_refused_total` of a history file.
pub struct HistoryCounts(pub Arc<SqliteHistory>);

impl fmt::Debug for HistoryCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("HistoryCounts")
            .field(&self.0.path())
            .finish()
    }
}

impl Collector for HistoryCounts {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let stats = self.0.stats();
        let counters = [
            (
                "history_written",
                "History entries committed to the history file.",
                stats.written,
            ),
            (
                "history_lost",
                "History entries said but not written to the file (their transaction failed: the disk full, an I/O error); each was delivered live and its sender told not_stored.",
                stats.lost,
            ),
            (
                "history_refused",
                "Messages and posts refused because the history writer's queue was full (the disk far behind); none was said, each sender was told store_unavailable.",
                stats.refused,
            ),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        Ok(())
    }
}
