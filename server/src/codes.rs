//! The close codes the hub sends, so clients decide from codes, never from reason text.

/// Sent to every connection by [`Hub::shutdown`](crate::Hub::shutdown) (1012, service
/// restart): resume from your cursor.
pub const CLOSE_SHUTDOWN: u16 = 1012;

/// Sent to a client whose queue overflowed (1013, try again later), reason
/// `"slow consumer"`: resume from your cursor.
pub const CLOSE_SLOW_CONSUMER: u16 = 1013;

/// Sent instead of the welcome when [`HubConfig::welcome`](crate::HubConfig::welcome) is
/// off and the client's cursor cannot be resumed (4001, an application code outside the
/// 4400-4499 range that resilient-ws clients treat as fatal). The reason is
/// `"resume impossible: <reason>"` with the welcome's reason (`epoch_changed`,
/// `cursor_too_old` or `cursor_ahead`). A client should drop its cursor and epoch and
/// reconnect fresh; what it missed is the application's to recover.
pub const CLOSE_RESUME_IMPOSSIBLE: u16 = 4001;
