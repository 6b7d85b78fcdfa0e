//! Errors the core returns.

use core::time::Duration;

use crate::payload::Payload;

/// A message the session could not accept. Every variant hands the message back.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SendError {
    /// The outbound queue is at its message or byte bound.
    #[error("outbound queue is full ({queued} messages, {queued_bytes} bytes waiting)")]
    QueueFull {
        /// The message, handed back.
        payload: Payload,
        /// Messages waiting.
        queued: usize,
        /// Bytes waiting.
        queued_bytes: usize,
    },
    /// The message alone is larger than the queue's byte bound.
    #[error("message is larger than the outbound queue's bound of {max_bytes} bytes")]
    TooLarge {
        /// The message, handed back.
        payload: Payload,
        /// The byte bound.
        max_bytes: usize,
    },
    /// The session is closing, closed or failed: call `connect` first.
    #[error("session is not running (closing, closed or failed)")]
    NotRunning {
        /// The message, handed back.
        payload: Payload,
    },
}

impl SendError {
    /// The message that was not accepted.
    pub fn into_payload(self) -> Payload {
        match self {
            Self::QueueFull { payload, .. }
            | Self::TooLarge { payload, .. }
            | Self::NotRunning { payload } => payload,
        }
    }
}

/// A configuration the session refuses to run with.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// The URL is not `ws://` or `wss://`.
    #[error("URL must start with ws:// or wss://")]
    UrlScheme,
    /// A duration that must be positive is zero.
    #[error("{0} must be greater than zero")]
    ZeroDuration(&'static str),
    /// The backoff's maximum is below its initial window.
    // Whole milliseconds: formatting a Duration would pull float formatting into the
    // browser build.
    #[error("backoff max ({} ms) is below backoff initial ({} ms)", millis(*max), millis(*initial))]
    BackoffMaxBelowInitial {
        /// The initial window.
        initial: Duration,
        /// The maximum window.
        max: Duration,
    },
    /// The backoff multiplier is below 1 or not a number.
    #[error("backoff multiplier must be a finite number of at least 1.0")]
    BackoffMultiplier,
    /// A bound that must be positive is zero.
    #[error("{0} must be greater than zero")]
    ZeroBound(&'static str),
}

/// A close the session refuses to send.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CloseError {
    /// Applications may close with 1000 or 3000-4999 only (RFC 6455, 7.4).
    #[error("close code {0} is not allowed: use 1000 or 3000-4999")]
    Code(u16),
    /// A close reason is at most 123 bytes of UTF-8.
    #[error("close reason is {0} bytes; at most 123 fit in a close frame")]
    ReasonTooLong(usize),
}

/// Whether an application may close with `code` and `reason`: 1000 or 3000-4999, and a
/// reason of at most 123 bytes (RFC 6455, 7.4 and 5.5). [`Session::close`](crate::Session::close)
/// asks this first; a driver may ask it before handing the close over.
pub fn check_close(code: u16, reason: &str) -> Result<(), CloseError> {
    if !(code == 1000 || (3000..=4999).contains(&code)) {
        return Err(CloseError::Code(code));
    }
    if reason.len() > 123 {
        return Err(CloseError::ReasonTooLong(reason.len()));
    }
    Ok(())
}

/// Whole milliseconds, for messages.
pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
