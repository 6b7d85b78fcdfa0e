//! A subscriber's queue: bounded by count and bytes, filled without ever waiting.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

use crate::payload::Record;

/// Why the hub stopped feeding a subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Closed {
    /// Its queue overflowed: the client did not keep up (close 1013, resume from the cursor).
    SlowConsumer,
    /// The hub shut down (close 1012, resume from the cursor).
    ShutDown,
}

#[derive(Debug, Default)]
struct Queue {
    records: VecDeque<Record>,
    bytes: usize,
    closed: Option<Closed>,
}

/// The queue between `publish` (never waits) and the subscriber's connection.
#[derive(Debug)]
pub(crate) struct Outbox {
    queue: Mutex<Queue>,
    max_messages: usize,
    max_bytes: usize,
    // `notify_one` keeps a permit, so a wake-up between a check and the wait is not lost;
    // each has one waiter (the writer and the connection's supervisor).
    readable: Notify,
    closing: Notify,
}

impl Outbox {
    pub(crate) fn new(max_messages: usize, max_bytes: usize) -> Self {
        Self {
            queue: Mutex::default(),
            max_messages,
            max_bytes,
            readable: Notify::new(),
            closing: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Nothing panics while holding it, but a poisoned queue is still consistent.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a record, or closes the outbox as a slow consumer when it does not fit.
    /// Returns whether the subscriber is still fed.
    pub(crate) fn push(&self, record: &Record) -> bool {
        let mut queue = self.lock();
        if queue.closed.is_some() {
            return false;
        }
        let size = record.payload.len();
        if queue.records.len() >= self.max_messages || queue.bytes + size > self.max_bytes {
            drop(queue);
            self.close(Closed::SlowConsumer);
            return false;
        }
        queue.bytes += size;
        queue.records.push_back(record.clone());
        drop(queue);
        self.readable.notify_one();
        true
    }

    /// Stops feeding: what is queued is dropped (the client resumes from its cursor).
    pub(crate) fn close(&self, why: Closed) {
        let mut queue = self.lock();
        if queue.closed.is_none() {
            queue.closed = Some(why);
            queue.records = VecDeque::new();
            queue.bytes = 0;
        }
        drop(queue);
        self.readable.notify_one();
        self.closing.notify_one();
    }

    /// The next queued record, or why the outbox closed. Cancel-safe.
    pub(crate) async fn next(&self) -> Result<Record, Closed> {
        loop {
            {
                let mut queue = self.lock();
                if let Some(why) = queue.closed {
                    return Err(why);
                }
                if let Some(record) = queue.records.pop_front() {
                    queue.bytes -= record.payload.len();
                    return Ok(record);
                }
            }
            self.readable.notified().await;
        }
    }

    /// Resolves when the outbox closes. Cancel-safe.
    pub(crate) async fn closed(&self) -> Closed {
        loop {
            if let Some(why) = self.lock().closed {
                return why;
            }
            self.closing.notified().await;
        }
    }

    /// Why the outbox closed, if it did.
    pub(crate) fn status(&self) -> Option<Closed> {
        self.lock().closed
    }

    /// Queued messages and bytes.
    pub(crate) fn usage(&self) -> (usize, usize) {
        let queue = self.lock();
        (queue.records.len(), queue.bytes)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::payload::Payload;

    fn record(cursor: u64, size: usize) -> Record {
        Record {
            cursor,
            published_at: SystemTime::UNIX_EPOCH,
            payload: Payload::from(vec![0; size]),
        }
    }

    #[tokio::test]
    async fn delivers_in_order_until_the_count_bound() {
        let outbox = Outbox::new(2, 1 << 20);
        assert!(outbox.push(&record(1, 1)));
        assert!(outbox.push(&record(2, 1)));
        assert_eq!(outbox.next().await.map(|r| r.cursor), Ok(1));
        assert!(outbox.push(&record(3, 1)));
        assert!(
            !outbox.push(&record(4, 1)),
            "a third queued message overflows"
        );
        assert_eq!(outbox.next().await, Err(Closed::SlowConsumer));
        assert_eq!(
            outbox.usage(),
            (0, 0),
            "an evicted queue frees its messages"
        );
        assert!(!outbox.push(&record(5, 1)));
    }

    #[tokio::test]
    async fn byte_bound_overflows() {
        let outbox = Outbox::new(100, 10);
        assert!(outbox.push(&record(1, 6)));
        assert_eq!(outbox.usage(), (1, 6));
        assert!(!outbox.push(&record(2, 5)));
        assert_eq!(outbox.closed().await, Closed::SlowConsumer);
    }

    #[tokio::test]
    async fn a_waiting_reader_wakes_for_a_push_and_a_close() {
        let outbox = std::sync::Arc::new(Outbox::new(10, 100));
        let reader = tokio::spawn({
            let outbox = std::sync::Arc::clone(&outbox);
            async move { (outbox.next().await, outbox.next().await) }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(outbox.push(&record(1, 1)));
        outbox.close(Closed::ShutDown);
        let (first, second) = tokio::time::timeout(Duration::from_secs(5), reader)
            .await
            .expect("the reader wakes")
            .expect("the reader does not panic");
        assert!(first == Ok(record(1, 1)) || first == Err(Closed::ShutDown));
        assert_eq!(second, Err(Closed::ShutDown));
    }
}
