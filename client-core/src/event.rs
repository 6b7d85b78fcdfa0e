//! Outputs for the application: state changes, messages, and anything handed back.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use crate::error::millis;
use crate::payload::Payload;
use crate::queue::Unsent;
use crate::resume::Cursor;
use crate::retry::Disconnect;
use crate::time::Timestamp;

/// Where the session is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// Created; `connect` not called yet.
    Idle,
    /// A socket is handshaking.
    Connecting {
        /// The attempt number within the current run of failures, from 1.
        attempt: u32,
    },
    /// A socket is open.
    Open,
    /// Waiting before the next attempt.
    Reconnecting {
        /// The number the next attempt will have.
        attempt: u32,
        /// When it will be made; `None` while the network is offline.
        retry_at: Option<Timestamp>,
        /// The backoff delay chosen.
        delay: Duration,
    },
    /// The application asked to close; the queue is flushing and the close handshake is
    /// under way.
    Closing,
    /// Closed by the application. `connect` starts again.
    Closed,
    /// Ended by a fatal error or the failure cap. `connect` starts again.
    Failed(Failure),
}

impl State {
    /// The state's name: `idle`, `connecting`, `open`, `reconnecting`, `closing`,
    /// `closed` or `failed`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Connecting { .. } => "connecting",
            Self::Open => "open",
            Self::Reconnecting { .. } => "reconnecting",
            Self::Closing => "closing",
            Self::Closed => "closed",
            Self::Failed(_) => "failed",
        }
    }

    /// Whether the session has stopped for good (closed or failed) until `connect`.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Closed | Self::Failed(_))
    }
}

/// Why a session failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The retry policy judged the disconnect fatal (for example HTTP 401 or close 4401).
    #[error("rejected: {0}")]
    Fatal(Disconnect),
    /// The failure cap was reached.
    #[error("gave up after {attempts} failed attempts: {last}")]
    TooManyFailures {
        /// Consecutive failed attempts.
        attempts: u32,
        /// The last attempt's error.
        last: Disconnect,
    },
    /// The next retry would end beyond the time budget for a run of failures.
    #[error("gave up after retrying for {} ms: {last}", millis(*elapsed))]
    RetryBudgetExhausted {
        /// How long the run of failures had lasted.
        elapsed: Duration,
        /// The last attempt's error.
        last: Disconnect,
    },
}

impl Failure {
    /// The disconnect that ended the session.
    pub fn last_error(&self) -> &Disconnect {
        match self {
            Self::Fatal(last)
            | Self::TooManyFailures { last, .. }
            | Self::RetryBudgetExhausted { last, .. } => last,
        }
    }
}

/// Why the state changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The application called `connect`.
    ConnectCalled,
    /// The handshake completed.
    HandshakeComplete,
    /// The socket ended or the attempt failed.
    Disconnected(Disconnect),
    /// The backoff delay ran out.
    RetryDue,
    /// The network went offline.
    WentOffline,
    /// The network came back.
    CameOnline,
    /// The application called `close`.
    CloseCalled,
    /// The close handshake finished.
    CloseComplete,
    /// The close deadline passed before the flush and close handshake finished.
    CloseTimedOut,
}

/// Something the application should know. Drain them with
/// [`Session::poll_event`](crate::Session::poll_event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The state changed.
    StateChanged {
        /// The new state.
        state: State,
        /// Why.
        reason: Reason,
    },
    /// A message arrived (replays of already delivered cursors are not reported).
    Message {
        /// The message.
        payload: Payload,
        /// Its cursor, when it has one.
        cursor: Option<Cursor>,
    },
    /// Cursors are contiguous and the server skipped some: it could not resume from
    /// where the client left off. The message at `received` follows as usual.
    CursorGap {
        /// The last cursor delivered before the gap.
        last: Cursor,
        /// The first cursor after it.
        received: Cursor,
    },
    /// Messages the session accepted but never handed to a socket, because it closed or
    /// failed first. Oldest first.
    Unsent(Vec<Unsent>),
    /// The server could not continue the stream from the client's cursor: its history
    /// changed (a new epoch) or no longer reaches back that far. Messages before this
    /// event and after it are not one sequence; cursors start afresh (a lower cursor after
    /// it is new, not a replay). What follows is what the server chose to send (the hub:
    /// from its oldest message, by default).
    Discontinuity {
        /// The epoch of the cursor the client resumed from, if it knew one.
        previous_epoch: Option<String>,
        /// The server's epoch now.
        epoch: String,
        /// The server's reason (the hub: `epoch_changed`, `cursor_too_old`,
        /// `cursor_ahead`).
        reason: String,
        /// The last cursor delivered before the discontinuity.
        last_cursor: Option<Cursor>,
    },
}

impl fmt::Display for State {
    /// Plain words for logs and command-line tools, e.g. `reconnecting in 180 ms (attempt 3)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Connecting { attempt } => write!(f, "connecting (attempt {attempt})"),
            Self::Reconnecting {
                attempt,
                retry_at: Some(_),
                delay,
            } => write!(
                f,
                "reconnecting in {} ms (attempt {attempt})",
                millis(*delay)
            ),
            Self::Reconnecting { retry_at: None, .. } => f.write_str("waiting for the network"),
            Self::Failed(failure) => write!(f, "failed: {failure}"),
            other => f.write_str(other.name()),
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ConnectCalled => f.write_str("connect requested"),
            Self::HandshakeComplete => f.write_str("handshake complete"),
            Self::Disconnected(disconnect) => disconnect.fmt(f),
            Self::RetryDue => f.write_str("backoff elapsed"),
            Self::WentOffline => f.write_str("network offline"),
            Self::CameOnline => f.write_str("network back online"),
            Self::CloseCalled => f.write_str("close requested"),
            Self::CloseComplete => f.write_str("close handshake complete"),
            Self::CloseTimedOut => f.write_str("close timed out"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;
    use std::prelude::rust_2024::*;

    #[test]
    fn states_read_as_plain_words() {
        let reconnecting = State::Reconnecting {
            attempt: 3,
            retry_at: Some(Timestamp::from_millis(1)),
            delay: Duration::from_millis(180),
        };
        let reason = Reason::Disconnected(Disconnect::Abnormal {
            detail: "connection reset".into(),
        });
        assert_eq!(
            format!("{reconnecting}: {reason}"),
            "reconnecting in 180 ms (attempt 3): connection lost: connection reset"
        );
        assert_eq!(State::Open.to_string(), "open");
    }
}
