//! The crate's errors.

/// Why [`Hub::publish`](crate::Hub::publish) or [`Hub::subscribe`](crate::Hub::subscribe)
/// failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HubError {
    /// [`Hub::shutdown`](crate::Hub::shutdown) was called.
    #[error("the hub is shut down")]
    ShutDown,
    /// The history store could not persist the message; it was not published.
    #[error("the history store failed: {0}")]
    History(#[from] HistoryError),
    /// The data given to [`Hub::publish`](crate::Hub::publish) is not serializable as JSON.
    #[error("the data could not be serialized as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Why a [`HistoryStore`](crate::HistoryStore) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    /// Reading or writing the store failed.
    #[error("history I/O failed: {0}")]
    Io(#[from] std::io::Error),
    /// The stored history is not one this crate wrote (or was damaged other than by a
    /// write cut short, which is repaired).
    #[error("the stored history is corrupt: {0}")]
    Corrupt(&'static str),
}

/// A query string the hub refuses (answered with 400 Bad Request before the upgrade).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResumeQueryError {
    /// `cursor` is not a decimal integer that fits in a `u64`.
    #[error(
        "invalid `cursor` query parameter: expected a decimal integer from 0 to 18446744073709551615 (the last cursor received)"
    )]
    InvalidCursor,
}
