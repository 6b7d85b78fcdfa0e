//! The bounded in-memory log of messages clients sent.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

/// A message a client sent to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMessage {
    /// Number of the connection it arrived on (1 for the first WebSocket accepted).
    pub connection: u64,
    /// Milliseconds after server start at which it arrived.
    pub received_ms: u64,
    /// The message itself.
    pub payload: ClientPayload,
}

/// The content of a client message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientPayload {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
}

/// Keeps the last `capacity` client messages.
#[derive(Debug)]
pub(crate) struct ReceivedLog {
    capacity: usize,
    entries: Mutex<VecDeque<ClientMessage>>,
}

impl ReceivedLog {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Mutex::new(VecDeque::new()),
        }
    }

    pub(crate) fn record(&self, message: ClientMessage) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() == self.capacity {
            entries.pop_front();
        }
        entries.push_back(message);
    }

    pub(crate) fn snapshot(&self) -> Vec<ClientMessage> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(connection: u64, text: &str) -> ClientMessage {
        ClientMessage {
            connection,
            received_ms: 0,
            payload: ClientPayload::Text(text.into()),
        }
    }

    #[test]
    fn keeps_only_the_latest_entries() {
        let log = ReceivedLog::new(2);
        log.record(text(1, "a"));
        log.record(text(1, "b"));
        log.record(text(2, "c"));
        assert_eq!(log.snapshot(), vec![text(1, "b"), text(2, "c")]);
    }
}
