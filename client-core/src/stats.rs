//! Counters for dashboards and tests.

use core::time::Duration;

/// A snapshot of a session's counters, from [`Session::stats`](crate::Session::stats).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Sockets the session asked for.
    pub attempts: u64,
    /// Successful opens after the first.
    pub reconnects: u64,
    /// Inputs from sockets other than the current one, ignored.
    pub stale_inputs: u64,
    /// Inbound messages dropped because their cursor was already delivered.
    pub replays_dropped: u64,
    /// Messages delivered to the application.
    pub messages_delivered: u64,
    /// Application messages handed to a socket.
    pub messages_sent: u64,
    /// Connections found dead by the heartbeat.
    pub heartbeat_timeouts: u64,
    /// Messages waiting in the outbound queue.
    pub queued: usize,
    /// Bytes waiting in the outbound queue.
    pub queued_bytes: usize,
    /// Failed attempts since the last healthy connection.
    pub consecutive_failures: u32,
    /// Time since the last state change.
    pub time_in_state: Duration,
}
