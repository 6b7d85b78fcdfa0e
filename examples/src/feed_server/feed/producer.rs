//! The producer: publishes message n = 1, 2, 3 ... into the hub at the configured rate. The
//! hub assigns the cursor, and the message is built around it, so `seq` is always the cursor.

use std::time::Duration;

use resilient_ws_server::{Hub, HubError};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tracing::{error, info};

const NANOS_PER_SEC: u128 = 1_000_000_000;
const NANOS_PER_MILLI: u128 = 1_000_000;

/// One feed message, as sent on the wire (JSON text). Clients may parse it with [`FeedMessage::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedMessage {
    /// Sequence number, from 1 in each epoch: the hub's cursor, and the client's resume cursor.
    pub seq: u64,
    /// When this message was due, in milliseconds after the epoch began: `seq * 1000 / rate`
    /// (0 when the rate is 0).
    pub ts_ms: u64,
    /// Deterministic padding, `payload_bytes` lowercase ASCII letters.
    pub data: String,
}

impl FeedMessage {
    /// Parses a feed message from the JSON text the server sent.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// What the producer publishes, and how fast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Production {
    /// Messages per second; 0: as fast as possible (then `total` is required).
    pub(crate) rate: u32,
    /// The last sequence number; `None`: never stops.
    pub(crate) total: Option<u64>,
    /// Length of the padding.
    pub(crate) payload_bytes: usize,
}

impl Production {
    /// The wire text of message `seq`.
    pub(crate) fn message(&self, seq: u64) -> String {
        let ts_ms = u64::try_from(self.due_after_nanos(seq) / NANOS_PER_MILLI).unwrap_or(u64::MAX);
        // Letters cycle from an offset derived from seq, so a wrong payload for a seq shows up.
        let data: String = (0..self.payload_bytes)
            .map(|i| {
                let letter = (seq.wrapping_add(i as u64) % 26) as u8;
                char::from(b'a' + letter)
            })
            .collect();
        format!(r#"{{"seq":{seq},"ts_ms":{ts_ms},"data":"{data}"}}"#)
    }

    /// Publishes the next message; returns its cursor.
    fn publish_next(&self, hub: &Hub) -> Result<u64, HubError> {
        hub.publish_with(|seq| self.message(seq))
    }

    /// Whether the hub already holds the whole feed.
    fn finished(&self, head: u64) -> bool {
        self.total.is_some_and(|total| head >= total)
    }

    /// At rate 0, publishes everything up to `total` at once (before the listener opens, so
    /// every message is available to the first client). Nothing to do at any other rate.
    pub(crate) fn fill(&self, hub: &Hub) -> Result<(), HubError> {
        if self.rate != 0 {
            return Ok(());
        }
        while !self.finished(hub.head()) {
            self.publish_next(hub)?;
        }
        Ok(())
    }

    /// Publishes at `rate` until `total` (forever without one). Message n is due at
    /// `n / rate` seconds after the epoch began, counted from now for a hub that restored a
    /// head (so a restarted server goes on at the same pace, with no burst).
    pub(crate) async fn run(self, hub: Hub) {
        if self.rate == 0 {
            // `fill` published everything already.
            return;
        }
        let head = hub.head();
        let origin = Instant::now()
            .checked_sub(Duration::from_nanos(
                u64::try_from(self.due_after_nanos(head)).unwrap_or(u64::MAX),
            ))
            .unwrap_or_else(Instant::now);
        let mut next = head + 1;
        while !self.finished(next - 1) {
            let due = u64::try_from(self.due_after_nanos(next)).unwrap_or(u64::MAX);
            tokio::time::sleep_until(origin + Duration::from_nanos(due)).await;
            match self.publish_next(&hub) {
                Ok(cursor) => next = cursor + 1,
                Err(error) => {
                    error!(%error, "the feed stops: publishing failed");
                    return;
                }
            }
        }
        info!(head = next - 1, "the feed is complete");
    }

    /// Nanoseconds after the epoch began at which `seq` is due: the first instant with
    /// `elapsed * rate >= seq * 1e9`.
    fn due_after_nanos(&self, seq: u64) -> u128 {
        if self.rate == 0 {
            return 0;
        }
        (u128::from(seq) * NANOS_PER_SEC).div_ceil(u128::from(self.rate))
    }
}

#[cfg(test)]
mod tests {
    use resilient_ws_server::HubConfig;

    use super::*;

    fn production(rate: u32, total: Option<u64>, payload_bytes: usize) -> Production {
        Production {
            rate,
            total,
            payload_bytes,
        }
    }

    #[test]
    fn message_is_a_pure_function_of_seq() {
        let text = production(4, None, 5).message(3);
        assert_eq!(text, r#"{"seq":3,"ts_ms":750,"data":"defgh"}"#);
        let parsed = FeedMessage::parse(&text).expect("valid JSON");
        assert_eq!((parsed.seq, parsed.ts_ms), (3, 750));
    }

    #[test]
    fn rate_zero_fills_up_to_total_with_seq_equal_to_the_cursor() {
        let hub = Hub::new(HubConfig::default());
        let feed = production(0, Some(5), 3);
        feed.fill(&hub).expect("fills");
        feed.fill(&hub).expect("nothing more to do");
        assert_eq!(hub.head(), 5);
        let mut sub = hub
            .subscribe(&resilient_ws_server::ResumeRequest::default())
            .expect("subscribes");
        let record = futures_util::FutureExt::now_or_never(sub.next())
            .expect("replayed at once")
            .expect("fed");
        let resilient_ws_server::Payload::Text(text) = record.payload else {
            panic!("a text message");
        };
        assert_eq!(text.as_str(), production(0, None, 3).message(1));
    }

    #[tokio::test(start_paused = true)]
    async fn publishes_at_the_rate_and_stops_at_total() {
        let hub = Hub::new(HubConfig::default());
        let started = Instant::now();
        production(10, Some(25), 0).run(hub.clone()).await;
        assert_eq!(hub.head(), 25);
        assert_eq!(started.elapsed(), Duration::from_millis(2500));
    }
}
