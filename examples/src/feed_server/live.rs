//! Precise counting of live WebSocket connections.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::stats::StatsCounters;

/// Held for as long as a WebSocket connection's socket is open: created when the handshake is
/// accepted, dropped after the socket is dropped. Tests rely on the live count being exact.
#[derive(Debug)]
pub(crate) struct LiveConnection {
    number: u64,
    stats: Arc<StatsCounters>,
}

impl LiveConnection {
    pub(crate) fn open(stats: &Arc<StatsCounters>) -> Self {
        let number = stats.connections_accepted.fetch_add(1, Ordering::SeqCst) + 1;
        let live = stats.live_connections.fetch_add(1, Ordering::SeqCst) + 1;
        stats.max_live_connections.fetch_max(live, Ordering::SeqCst);
        Self {
            number,
            stats: Arc::clone(stats),
        }
    }

    /// The connection's number: 1 for the first WebSocket accepted, and so on.
    pub(crate) fn number(&self) -> u64 {
        self.number
    }
}

impl Drop for LiveConnection {
    fn drop(&mut self) {
        self.stats.live_connections.fetch_sub(1, Ordering::SeqCst);
    }
}
