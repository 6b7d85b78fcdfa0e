//! Counters and gauges of a hub, for tests, dashboards and benchmarks.

/// A snapshot of a hub's state and counters (counters start at 0 when the hub is created).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HubStats {
    /// The current epoch.
    pub epoch: String,
    /// The latest cursor published (0: none yet in this epoch).
    pub head: u64,
    /// Subscriptions currently fed.
    pub subscribers: usize,
    /// WebSocket connections currently open (or closing).
    pub connections: usize,
    /// Messages published.
    pub published: u64,
    /// Messages in the replay buffer.
    pub buffered_messages: usize,
    /// Payload bytes in the replay buffer.
    pub buffered_bytes: usize,
    /// Messages queued for subscribers and not yet handed to their sockets, summed.
    pub queued_messages: usize,
    /// Payload bytes queued for subscribers, summed.
    pub queued_bytes: usize,
    /// Buffered messages handed to subscribers as replay.
    pub replayed: u64,
    /// Subscriptions that resumed (welcome reason `resumed`).
    pub resumed: u64,
    /// Subscriptions without a cursor (welcome reason `fresh`).
    pub fresh: u64,
    /// Subscriptions whose cursor could not be resumed (`epoch_changed`, `cursor_too_old`,
    /// `cursor_ahead`).
    pub discontinuities: u64,
    /// Subscribers evicted because their queue overflowed (closed with 1013).
    pub evicted_slow: u64,
    /// Connections evicted because they sent nothing after a ping.
    pub evicted_dead: u64,
    /// Pings sent.
    pub pings_sent: u64,
}
