//! Every bound and policy of a hub, each with a named default.

use std::time::Duration;

/// Where a connection starts when it does not resume: the first cursor it is sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StartPoint {
    /// From the oldest message still in the replay buffer (everything buffered is replayed).
    #[default]
    Oldest,
    /// From the next message published (nothing is replayed).
    Live,
}

/// The bounds and policies of a [`Hub`](crate::Hub).
///
/// Build one from [`HubConfig::default()`] and change the fields you need:
///
/// ```
/// use std::time::Duration;
/// use resilient_ws_server::{HubConfig, StartPoint};
///
/// let config = HubConfig {
///     ping_interval: Duration::from_secs(5),
///     start: StartPoint::Live,
///     ..HubConfig::default()
/// };
/// assert_eq!(config.ping_timeout, HubConfig::DEFAULT_PING_TIMEOUT);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubConfig {
    /// The replay buffer keeps at most this many messages (the oldest go first).
    pub history_max_messages: usize,
    /// The replay buffer keeps at most this many payload bytes. A single message larger than
    /// this is delivered live but not kept.
    pub history_max_bytes: usize,
    /// Messages older than this leave the replay buffer.
    pub history_max_age: Duration,
    /// A subscriber's queue (messages published but not yet handed to its socket) holds at
    /// most this many messages; one more and the subscriber is evicted as a slow consumer.
    pub queue_max_messages: usize,
    /// A subscriber's queue holds at most this many payload bytes; one more message that
    /// does not fit and the subscriber is evicted as a slow consumer.
    pub queue_max_bytes: usize,
    /// How often each connection is pinged. `Duration::ZERO` turns pings and the dead-client
    /// check off.
    pub ping_interval: Duration,
    /// A client that sends no frame at all (a pong counts) within this long after a ping
    /// is due is evicted as dead.
    pub ping_timeout: Duration,
    /// How long closing a connection may take: writing the close frame and waiting for the
    /// client's reply. The TCP connection is dropped after it.
    pub close_timeout: Duration,
    /// Whether the first frame of every connection is the welcome (see the crate's
    /// protocol section). Without it, a resume that cannot be honoured is refused with
    /// close code [`CLOSE_RESUME_IMPOSSIBLE`](crate::CLOSE_RESUME_IMPOSSIBLE).
    pub welcome: bool,
    /// The WebSocket read and write buffers of each connection, held for its whole life.
    /// tungstenite's default (128 KiB) would cost an idle subscriber about 138 KB; messages
    /// larger than the buffer are read in several calls.
    pub socket_buffer_size: usize,
    /// Where a connection without a cursor starts.
    pub start: StartPoint,
    /// Where a connection whose cursor cannot be resumed (another epoch, too old, ahead)
    /// starts, after a welcome that says so.
    pub on_discontinuity: StartPoint,
}

impl HubConfig {
    /// Default of [`history_max_messages`](Self::history_max_messages): 10 000.
    pub const DEFAULT_HISTORY_MAX_MESSAGES: usize = 10_000;
    /// Default of [`history_max_bytes`](Self::history_max_bytes): 16 MiB.
    pub const DEFAULT_HISTORY_MAX_BYTES: usize = 16 << 20;
    /// Default of [`history_max_age`](Self::history_max_age): 10 minutes.
    pub const DEFAULT_HISTORY_MAX_AGE: Duration = Duration::from_secs(600);
    /// Default of [`queue_max_messages`](Self::queue_max_messages): 1024.
    pub const DEFAULT_QUEUE_MAX_MESSAGES: usize = 1024;
    /// Default of [`queue_max_bytes`](Self::queue_max_bytes): 4 MiB.
    pub const DEFAULT_QUEUE_MAX_BYTES: usize = 4 << 20;
    /// Default of [`ping_interval`](Self::ping_interval): 15 s.
    pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(15);
    /// Default of [`ping_timeout`](Self::ping_timeout): 10 s.
    pub const DEFAULT_PING_TIMEOUT: Duration = Duration::from_secs(10);
    /// Default of [`socket_buffer_size`](Self::socket_buffer_size): 4 KiB.
    pub const DEFAULT_SOCKET_BUFFER_SIZE: usize = 4 << 10;
    /// Default of [`close_timeout`](Self::close_timeout): 5 s.
    pub const DEFAULT_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            history_max_messages: Self::DEFAULT_HISTORY_MAX_MESSAGES,
            history_max_bytes: Self::DEFAULT_HISTORY_MAX_BYTES,
            history_max_age: Self::DEFAULT_HISTORY_MAX_AGE,
            queue_max_messages: Self::DEFAULT_QUEUE_MAX_MESSAGES,
            queue_max_bytes: Self::DEFAULT_QUEUE_MAX_BYTES,
            ping_interval: Self::DEFAULT_PING_INTERVAL,
            ping_timeout: Self::DEFAULT_PING_TIMEOUT,
            close_timeout: Self::DEFAULT_CLOSE_TIMEOUT,
            welcome: true,
            socket_buffer_size: Self::DEFAULT_SOCKET_BUFFER_SIZE,
            start: StartPoint::Oldest,
            on_discontinuity: StartPoint::Oldest,
        }
    }
}
