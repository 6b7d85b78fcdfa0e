//! Fault injection settings, and the per-connection decisions derived from them.

use serde::Serialize;

use crate::feed_server::error::FeedServerError;

/// Faults the server injects. All are off by default; each can be changed at runtime and applies
/// at once to current connections (except `replay_overlap`, applied when a connection starts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Faults {
    /// Drop a connection abruptly (TCP shutdown, no close frame) once it has sent this many
    /// messages; `Some(0)` drops right after the handshake.
    pub drop_every: Option<u64>,
    /// Go silent once a connection has sent this many messages: stop sending and stop answering
    /// (no pongs), but keep the TCP socket open. `Some(0)` is silent from the handshake on.
    pub silent_after: Option<u64>,
    /// Refuse WebSocket handshakes with an HTTP status.
    pub refuse: Option<Refusal>,
    /// Close a connection with a close code once it has sent this many messages.
    pub close_after: Option<CloseAfter>,
    /// On a resume with `?cursor=N`, start at `N + 1 - replay_overlap` so the client must deduplicate.
    pub replay_overlap: u64,
}

/// Refusal of WebSocket handshakes with a plain HTTP response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Refusal {
    /// HTTP status to answer with (400-599).
    pub status: u16,
    /// How many more handshakes to refuse; `None` refuses every one.
    pub remaining: Option<u32>,
    /// Value of the `Retry-After` header, in seconds; `None` sends no header.
    pub retry_after_secs: Option<u32>,
}

/// Close with a code after a number of messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CloseAfter {
    /// The close code to send.
    pub code: u16,
    /// Messages sent on the connection before it is closed (0: right after the handshake).
    pub after: u64,
}

/// What a connection must do now because of a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FaultAction {
    Drop,
    Close(u16),
    Silence,
}

impl Faults {
    /// Checks that every setting can be carried out.
    pub(crate) fn validate(&self) -> Result<(), FeedServerError> {
        if let Some(refusal) = self.refuse {
            if !(400..=599).contains(&refusal.status) {
                return Err(FeedServerError::InvalidFaults(format!(
                    "refusal status {} is not in 400-599",
                    refusal.status
                )));
            }
            if refusal.remaining == Some(0) {
                return Err(FeedServerError::InvalidFaults(
                    "a refusal must cover at least one handshake (or all: remaining = None)".into(),
                ));
            }
        }
        if let Some(close) = self.close_after {
            validate_close_code(close.code)?;
        }
        Ok(())
    }

    /// The fault due for a connection that has sent `sent` messages, if any.
    /// When several are due, dropping wins over closing, which wins over going silent.
    pub(crate) fn action_due(&self, sent: u64) -> Option<FaultAction> {
        let reached = |threshold: Option<u64>| threshold.is_some_and(|limit| sent >= limit);
        if reached(self.drop_every) {
            Some(FaultAction::Drop)
        } else if let Some(close) = self.close_after.filter(|close| sent >= close.after) {
            Some(FaultAction::Close(close.code))
        } else if reached(self.silent_after) {
            Some(FaultAction::Silence)
        } else {
            None
        }
    }

    /// How many more messages a connection that has sent `sent` may send before a fault is due.
    pub(crate) fn messages_before_fault(&self, sent: u64) -> Option<u64> {
        [
            self.drop_every,
            self.close_after.map(|close| close.after),
            self.silent_after,
        ]
        .into_iter()
        .flatten()
        .map(|limit| limit.saturating_sub(sent))
        .min()
    }

    /// Consumes one refusal, if handshakes are being refused.
    pub(crate) fn take_refusal(&mut self) -> Option<Refusal> {
        let refusal = self.refuse?;
        if let Some(remaining) = refusal.remaining {
            let left = remaining.saturating_sub(1);
            self.refuse = (left > 0).then_some(Refusal {
                remaining: Some(left),
                ..refusal
            });
        }
        Some(refusal)
    }
}

/// Accepts only codes an endpoint may send (RFC 6455 section 7.4, plus the registered 1012-1014).
pub(crate) fn validate_close_code(code: u16) -> Result<(), FeedServerError> {
    match code {
        1000..=1003 | 1007..=1014 | 3000..=4999 => Ok(()),
        _ => Err(FeedServerError::InvalidCloseCode(code)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_wins_over_close_and_silence() {
        let faults = Faults {
            drop_every: Some(3),
            silent_after: Some(2),
            close_after: Some(CloseAfter {
                code: 4000,
                after: 3,
            }),
            ..Faults::default()
        };
        assert_eq!(faults.action_due(1), None);
        assert_eq!(faults.action_due(2), Some(FaultAction::Silence));
        assert_eq!(faults.action_due(3), Some(FaultAction::Drop));
        assert_eq!(faults.messages_before_fault(0), Some(2));
        assert_eq!(Faults::default().messages_before_fault(7), None);
    }

    #[test]
    fn counted_refusal_runs_out() {
        let mut faults = Faults {
            refuse: Some(Refusal {
                status: 503,
                remaining: Some(2),
                retry_after_secs: Some(1),
            }),
            ..Faults::default()
        };
        assert_eq!(faults.take_refusal().map(|r| r.status), Some(503));
        assert_eq!(faults.take_refusal().map(|r| r.status), Some(503));
        assert_eq!(faults.take_refusal(), None);
    }

    #[test]
    fn unsendable_close_codes_are_rejected() {
        for code in [0, 999, 1004, 1005, 1006, 1015, 2000, 5000] {
            assert!(validate_close_code(code).is_err(), "{code}");
        }
        for code in [1000, 1001, 1011, 1012, 1013, 1014, 3000, 4000, 4999] {
            assert!(validate_close_code(code).is_ok(), "{code}");
        }
    }
}
