//! The client's timings in every cell, and the bounds derived from them.

use std::time::Duration;

/// Backoff window: first 20 ms, doubling up to 500 ms.
pub(crate) const BACKOFF_INITIAL: Duration = Duration::from_millis(20);
pub(crate) const BACKOFF_MAX: Duration = Duration::from_millis(500);
/// Ping after 300 ms of silence, dead 300 ms later.
pub(crate) const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(300);
pub(crate) const HEARTBEAT_TIMEOUT: Duration = Duration::from_millis(300);
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// A connection open this long counts as healthy.
pub(crate) const STABILITY_WINDOW: Duration = Duration::from_millis(200);
pub(crate) const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// A break the client must notice (state not open, or a new attempt) within the heartbeat's
/// interval plus timeout, plus this for a loaded machine and the sampler's period.
pub(crate) const NOTICE_SLACK: Duration = Duration::from_millis(400);
/// Longest that `client.state()` and `client.stats()` may take to read: they must never wait
/// for the application or the network.
pub(crate) const READ_BOUND: Duration = Duration::from_millis(250);
/// Bound of the warm-up (first open and traffic flowing) and of any wait that is not itself
/// a contract bound.
pub(crate) const SETUP_LIMIT: Duration = Duration::from_secs(5);
/// How long the stalled application keeps not reading after the fault is lifted.
pub(crate) const STALL_TAIL: Duration = Duration::from_millis(300);
/// Backstop of a whole cell.
pub(crate) const CELL_LIMIT: Duration = Duration::from_secs(40);

/// While flapping for 1.5 s with this backoff, full jitter makes about 10 attempts; a client
/// whose backoff does not grow makes well over 50.
pub(crate) const FLAP_MAX_ATTEMPTS: u64 = 30;
/// Refused with `Retry-After: 0` for 1.2 s: at most one attempt per initial backoff window
/// on average (a client without a floor under its delays makes hundreds).
pub(crate) const RETRY_AFTER_ZERO_MAX_REFUSALS: u64 = 60;
/// Refused with `Retry-After: 1` for 2.6 s: attempts at least a second apart.
pub(crate) const RETRY_AFTER_ONE_MAX_REFUSALS: u64 = 4;
