//! The numbered sequence: a pure function of the sequence number, whose head
//! advances in real time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

const NANOS_PER_SEC: u128 = 1_000_000_000;
const NANOS_PER_MILLI: u128 = 1_000_000;

/// One feed message, as sent on the wire (JSON text). Clients may parse it with [`FeedMessage::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedMessage {
    /// Sequence number, from 1; doubles as the resume cursor.
    pub seq: u64,
    /// Milliseconds after server start at which this message became available (0 when the rate is 0).
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

/// The shared feed. Connections ask it what is available; nothing is stored per message.
#[derive(Debug)]
pub(crate) struct Feed {
    started: Instant,
    rate: u32,
    total: Option<u64>,
    payload_bytes: usize,
    /// With rate 0 the feed is produced on demand, so the head is what has been sent so far.
    highest_sent: AtomicU64,
}

impl Feed {
    pub(crate) fn new(rate: u32, total: Option<u64>, payload_bytes: usize) -> Self {
        Self {
            started: Instant::now(),
            rate,
            total,
            payload_bytes,
            highest_sent: AtomicU64::new(0),
        }
    }

    /// Highest sequence number a connection may send at `now`.
    pub(crate) fn available_head(&self, now: Instant) -> u64 {
        let produced = if self.rate == 0 {
            u64::MAX
        } else {
            let elapsed = now.saturating_duration_since(self.started).as_nanos();
            u64::try_from(elapsed * u128::from(self.rate) / NANOS_PER_SEC).unwrap_or(u64::MAX)
        };
        self.total.map_or(produced, |total| produced.min(total))
    }

    /// The head as reported in stats: produced so far (with rate 0: sent so far).
    pub(crate) fn reported_head(&self) -> u64 {
        if self.rate == 0 {
            self.highest_sent.load(Ordering::Relaxed)
        } else {
            self.available_head(Instant::now())
        }
    }

    /// When message `seq` becomes available; `None` if it never will (past the end of the feed).
    pub(crate) fn available_at(&self, seq: u64) -> Option<Instant> {
        if self.total.is_some_and(|total| seq > total) {
            return None;
        }
        let offset = u64::try_from(self.available_after_nanos(seq)).ok()?;
        self.started.checked_add(Duration::from_nanos(offset))
    }

    /// First sequence number for a new connection.
    pub(crate) fn first_seq(
        &self,
        cursor: Option<u64>,
        replay_overlap: u64,
        start_live: bool,
    ) -> u64 {
        match cursor {
            Some(cursor) => cursor
                .saturating_add(1)
                .saturating_sub(replay_overlap)
                .max(1),
            None if start_live => self.reported_head().saturating_add(1),
            None => 1,
        }
    }

    /// The wire text of message `seq`.
    pub(crate) fn message(&self, seq: u64) -> String {
        let ts_ms =
            u64::try_from(self.available_after_nanos(seq) / NANOS_PER_MILLI).unwrap_or(u64::MAX);
        // Letters cycle from an offset derived from seq, so a wrong payload for a seq shows up.
        let data: String = (0..self.payload_bytes)
            .map(|i| {
                let letter = (seq.wrapping_add(i as u64) % 26) as u8;
                char::from(b'a' + letter)
            })
            .collect();
        format!(r#"{{"seq":{seq},"ts_ms":{ts_ms},"data":"{data}"}}"#)
    }

    pub(crate) fn millis_since_start(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub(crate) fn note_sent(&self, seq: u64) {
        self.highest_sent.fetch_max(seq, Ordering::Relaxed);
    }

    /// Nanoseconds after start at which `seq` becomes available: the first instant with
    /// `elapsed * rate >= seq * 1e9`, rounded up so `available_head` at that instant includes it.
    fn available_after_nanos(&self, seq: u64) -> u128 {
        if self.rate == 0 {
            return 0;
        }
        (u128::from(seq) * NANOS_PER_SEC).div_ceil(u128::from(self.rate))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_is_a_pure_function_of_seq() {
        let feed = Feed::new(4, None, 5);
        let text = feed.message(3);
        assert_eq!(text, r#"{"seq":3,"ts_ms":750,"data":"defgh"}"#);
        assert_eq!(text, Feed::new(4, None, 5).message(3));
        let parsed = FeedMessage::parse(&text).expect("valid JSON");
        assert_eq!(parsed.seq, 3);
        assert_eq!(parsed.ts_ms, 750);
    }

    #[test]
    fn head_follows_time_and_stops_at_total() {
        let feed = Feed::new(10, Some(25), 0);
        assert_eq!(feed.available_head(feed.started), 0);
        assert_eq!(
            feed.available_head(feed.started + Duration::from_millis(999)),
            9
        );
        assert_eq!(
            feed.available_head(feed.started + Duration::from_secs(60)),
            25
        );
        let at = feed.available_at(7).expect("within total");
        assert_eq!(feed.available_head(at), 7);
        assert_eq!(feed.available_at(26), None);
    }

    #[test]
    fn rate_zero_makes_everything_available_at_once() {
        let feed = Feed::new(0, Some(100), 0);
        assert_eq!(feed.available_head(feed.started), 100);
        assert_eq!(feed.reported_head(), 0);
        feed.note_sent(40);
        assert_eq!(feed.reported_head(), 40);
        assert_eq!(feed.first_seq(None, 0, true), 41);
    }

    #[test]
    fn first_seq_honours_cursor_and_overlap() {
        let feed = Feed::new(0, None, 0);
        assert_eq!(feed.first_seq(None, 5, false), 1);
        assert_eq!(feed.first_seq(Some(10), 0, false), 11);
        assert_eq!(feed.first_seq(Some(10), 3, false), 8);
        assert_eq!(feed.first_seq(Some(1), 30, false), 1);
    }
}
