//! The replay buffer: the latest messages, bounded by count, bytes and age.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use crate::payload::Record;

/// The bounds of a [`ReplayBuffer`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bounds {
    pub(crate) max_messages: usize,
    pub(crate) max_bytes: usize,
    pub(crate) max_age: Duration,
}

/// Consecutive records, oldest first; cursors have no holes, so a cursor's index is its
/// distance from the first.
#[derive(Debug)]
pub(crate) struct ReplayBuffer {
    records: VecDeque<Record>,
    bytes: usize,
    bounds: Bounds,
}

impl ReplayBuffer {
    pub(crate) fn new(bounds: Bounds) -> Self {
        Self {
            records: VecDeque::new(),
            bytes: 0,
            bounds,
        }
    }

    /// Appends the next record (its cursor follows the last one's) and applies the bounds.
    pub(crate) fn push(&mut self, record: Record, now: SystemTime) {
        debug_assert!(
            self.records
                .back()
                .is_none_or(|last| last.cursor + 1 == record.cursor)
        );
        self.bytes += record.payload.len();
        self.records.push_back(record);
        self.trim(now);
    }

    /// Drops what the bounds no longer allow, oldest first.
    pub(crate) fn trim(&mut self, now: SystemTime) {
        while let Some(oldest) = self.records.front() {
            let too_old = now
                .duration_since(oldest.published_at)
                .is_ok_and(|age| age > self.bounds.max_age);
            let over =
                self.records.len() > self.bounds.max_messages || self.bytes > self.bounds.max_bytes;
            if !(too_old || over) {
                break;
            }
            self.bytes -= oldest.payload.len();
            self.records.pop_front();
        }
    }

    /// The oldest buffered cursor, if any.
    pub(crate) fn first_cursor(&self) -> Option<u64> {
        self.records.front().map(|record| record.cursor)
    }

    /// The records from cursor `from` on (empty when `from` is past the last).
    pub(crate) fn since(&self, from: u64) -> VecDeque<Record> {
        let skip = self
            .first_cursor()
            .map_or(0, |first| from.saturating_sub(first));
        let skip = usize::try_from(skip).unwrap_or(usize::MAX);
        self.records.iter().skip(skip).cloned().collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::Payload;

    const T0: SystemTime = SystemTime::UNIX_EPOCH;

    fn record(cursor: u64, size: usize, at: SystemTime) -> Record {
        Record {
            cursor,
            published_at: at,
            payload: Payload::from(vec![0; size]),
        }
    }

    fn bounds(max_messages: usize, max_bytes: usize, max_age_secs: u64) -> Bounds {
        Bounds {
            max_messages,
            max_bytes,
            max_age: Duration::from_secs(max_age_secs),
        }
    }

    fn cursors(records: &VecDeque<Record>) -> Vec<u64> {
        records.iter().map(|r| r.cursor).collect()
    }

    #[test]
    fn bounded_by_count() {
        let mut buffer = ReplayBuffer::new(bounds(3, 1 << 20, 60));
        for cursor in 1..=5 {
            buffer.push(record(cursor, 10, T0), T0);
        }
        assert_eq!(cursors(&buffer.since(0)), [3, 4, 5]);
        assert_eq!((buffer.len(), buffer.bytes()), (3, 30));
    }

    #[test]
    fn bounded_by_bytes() {
        let mut buffer = ReplayBuffer::new(bounds(100, 25, 60));
        for cursor in 1..=4 {
            buffer.push(record(cursor, 10, T0), T0);
        }
        assert_eq!(cursors(&buffer.since(0)), [3, 4]);
        buffer.push(record(5, 26, T0), T0);
        assert_eq!(
            buffer.first_cursor(),
            None,
            "a message over the byte bound is not kept"
        );
        assert_eq!(buffer.bytes(), 0);
    }

    #[test]
    fn bounded_by_age() {
        let mut buffer = ReplayBuffer::new(bounds(100, 1 << 20, 10));
        let later = T0 + Duration::from_secs(11);
        buffer.push(record(1, 1, T0), T0);
        buffer.push(record(2, 1, later), later);
        assert_eq!(cursors(&buffer.since(0)), [2]);
        buffer.trim(later + Duration::from_secs(11));
        assert_eq!(buffer.len(), 0);
    }

    #[test]
    fn since_slices_by_cursor() {
        let mut buffer = ReplayBuffer::new(bounds(100, 1 << 20, 60));
        for cursor in 11..=15 {
            buffer.push(record(cursor, 1, T0), T0);
        }
        assert_eq!(cursors(&buffer.since(13)), [13, 14, 15]);
        assert_eq!(cursors(&buffer.since(5)), [11, 12, 13, 14, 15]);
        assert!(buffer.since(16).is_empty());
    }
}
