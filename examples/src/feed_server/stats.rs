//! Server-wide counters and their public snapshot.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::Serialize;

/// A snapshot of the server's counters (also served as JSON by `GET /control/stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FeedStats {
    /// WebSocket handshakes accepted since start.
    pub connections_accepted: u64,
    /// WebSocket connections whose socket is open now.
    pub live_connections: u64,
    /// Highest number of live connections seen at once.
    pub max_live_connections: u64,
    /// Handshakes refused with an HTTP status by the refusal fault.
    pub handshakes_refused: u64,
    /// Feed messages sent, over all connections.
    pub messages_sent: u64,
    /// Text and binary messages received from clients.
    pub client_messages_received: u64,
    /// Current head of the feed (with rate 0: highest sequence number sent so far).
    pub head: u64,
    /// Whether the listener is up (false while a restart is in progress).
    pub listening: bool,
}

/// The live counters behind [`FeedStats`].
#[derive(Debug, Default)]
pub(crate) struct StatsCounters {
    pub(crate) connections_accepted: AtomicU64,
    pub(crate) live_connections: AtomicU64,
    pub(crate) max_live_connections: AtomicU64,
    pub(crate) handshakes_refused: AtomicU64,
    pub(crate) messages_sent: AtomicU64,
    pub(crate) client_messages_received: AtomicU64,
    pub(crate) listening: AtomicBool,
}

impl StatsCounters {
    pub(crate) fn snapshot(&self, head: u64) -> FeedStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::SeqCst);
        FeedStats {
            connections_accepted: read(&self.connections_accepted),
            live_connections: read(&self.live_connections),
            max_live_connections: read(&self.max_live_connections),
            handshakes_refused: read(&self.handshakes_refused),
            messages_sent: read(&self.messages_sent),
            client_messages_received: read(&self.client_messages_received),
            head,
            listening: self.listening.load(Ordering::SeqCst),
        }
    }

    pub(crate) fn count(counter: &AtomicU64, amount: u64) {
        counter.fetch_add(amount, Ordering::SeqCst);
    }
}
