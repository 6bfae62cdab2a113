//! Sessions and rooms for `GET /metrics`, read from the hub's state when scraped: the
//! state knows them already, so nothing is counted as they come and go.

use std::fmt;
use std::sync::{Arc, Weak};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;

use super::chat::ChatState;
use crate::fanout::Ordered;

/// Reads the hub's state without keeping it alive: the metrics outlive no hub they would
/// keep from being dropped.
pub(super) struct HubGauges(Weak<Ordered<ChatState>>);

impl HubGauges {
    pub fn of(chat: &Arc<Ordered<ChatState>>) -> HubGauges {
        HubGauges(Arc::downgrade(chat))
    }
}

impl fmt::Debug for HubGauges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HubGauges")
    }
}

impl Collector for HubGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let Some(chat) = self.0.upgrade() else {
            return Ok(());
        };
        let (sessions, rooms) = {
            let chat = chat.lock();
            (chat.sessions.len(), chat.rooms.len())
        };
        let gauges = [
            (
                "sessions",
                "Sessions connected now (registered connections).",
                sessions,
            ),
            (
                "rooms",
                "Rooms that exist now, those feeds keep open included.",
                rooms,
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}
