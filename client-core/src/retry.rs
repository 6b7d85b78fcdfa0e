//! Which disconnects are worth another attempt.
//!
//! The decision comes from close codes and HTTP statuses, never from a close reason's
//! text: servers word reasons freely, and a client that parses them breaks on the next
//! release of the server.

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use core::fmt;
use core::time::Duration;

/// Why a socket ended or an attempt failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Disconnect {
    /// The server sent a close frame (code 1005 when the frame carried none).
    #[error("closed by the server with code {code}{}", reason_suffix(reason))]
    Closed {
        /// The close code.
        code: u16,
        /// The close reason, for people; it never decides a retry.
        reason: String,
    },
    /// The connection broke without a close frame (WebSocket's 1006): reset, end of
    /// stream, DNS or TCP failure, an I/O error.
    #[error("connection lost: {detail}")]
    Abnormal {
        /// What the driver saw.
        detail: String,
    },
    /// The client ended the connection because the server broke the protocol: a malformed
    /// frame (1002), invalid UTF-8 in a text message (1007), a message over the size limit
    /// (1009). Decided like a close with the same code.
    #[error("closed by the client with code {code}: {detail}")]
    Protocol {
        /// The close code the violation maps to.
        code: u16,
        /// What was wrong.
        detail: String,
    },
    /// TLS could not be established (certificate rejected, protocol mismatch).
    #[error("TLS failed: {detail}")]
    Tls {
        /// What the TLS library reported.
        detail: String,
    },
    /// The server answered the WebSocket handshake with an HTTP status other than 101.
    #[error("server refused the handshake with HTTP {status}")]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The server's Retry-After, when it sent one.
        retry_after: Option<Duration>,
    },
    /// The handshake (DNS, TCP, TLS and upgrade) did not finish before the connect deadline.
    #[error("no handshake within the connect deadline")]
    ConnectTimeout,
    /// Nothing arrived within the heartbeat's interval plus timeout: the connection is dead.
    #[error("no traffic within the heartbeat timeout")]
    HeartbeatTimeout,
}

fn reason_suffix(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(" ({reason})")
    }
}

/// What to do after a disconnect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryAction {
    /// Try again after the backoff delay; after a healthy connection the first retry
    /// goes almost at once.
    Reconnect,
    /// Try again after the backoff delay, never the quick first retry (close code 1013,
    /// "try again later").
    ReconnectSlowly,
    /// Try again after this long (the server's Retry-After), capped by
    /// [`RetryPolicy::max_retry_after`].
    ReconnectAfter(Duration),
    /// Stop: the session fails with this disconnect as its error.
    GiveUp,
}

/// A predicate that overrides the default decision; `None` falls back to [`default_action`].
pub type RetryPredicate = Arc<dyn Fn(&Disconnect) -> Option<RetryAction> + Send + Sync>;

/// Decides, for each disconnect, whether and when to try again.
#[derive(Clone)]
pub struct RetryPolicy {
    /// The longest Retry-After the client honours; longer ones are cut to this. Default 60 s.
    pub max_retry_after: Duration,
    /// Overrides the defaults when set.
    pub predicate: Option<RetryPredicate>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retry_after: Duration::from_secs(60),
            predicate: None,
        }
    }
}

impl fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("max_retry_after", &self.max_retry_after)
            .field("predicate", &self.predicate.as_ref().map(|_| "custom"))
            .finish()
    }
}

impl RetryPolicy {
    /// The action for `disconnect`: the predicate's if it has one, else the default;
    /// a Retry-After is capped at `max_retry_after`.
    pub fn decide(&self, disconnect: &Disconnect) -> RetryAction {
        let action = self
            .predicate
            .as_ref()
            .and_then(|predicate| predicate(disconnect))
            .unwrap_or_else(|| default_action(disconnect));
        match action {
            RetryAction::ReconnectAfter(wait) => {
                RetryAction::ReconnectAfter(wait.min(self.max_retry_after))
            }
            other => other,
        }
    }
}

/// The default decision (see the defaults table in the README):
///
/// - close codes 1002, 1003, 1007, 1008, 1009, 1010 and 4400-4499 give up; 1013 retries
///   without the quick first retry; every other code retries;
/// - HTTP 408, 429 and 5xx retry, after the server's Retry-After when it sent one; every
///   other status gives up (400, 401, 403, 404, and redirects, which are not followed);
/// - TLS failures give up (a rejected certificate does not fix itself);
/// - broken connections, connect timeouts and heartbeat timeouts retry.
pub fn default_action(disconnect: &Disconnect) -> RetryAction {
    match disconnect {
        Disconnect::Closed { code, .. } | Disconnect::Protocol { code, .. } => match code {
            1002 | 1003 | 1007 | 1008 | 1009 | 1010 | 4400..=4499 => RetryAction::GiveUp,
            1013 => RetryAction::ReconnectSlowly,
            _ => RetryAction::Reconnect,
        },
        Disconnect::Rejected {
            status,
            retry_after,
        } => match status {
            408 | 429 | 500..=599 => retry_after.map_or(RetryAction::Reconnect, |wait| {
                RetryAction::ReconnectAfter(wait)
            }),
            _ => RetryAction::GiveUp,
        },
        Disconnect::Tls { .. } => RetryAction::GiveUp,
        Disconnect::Abnormal { .. } | Disconnect::ConnectTimeout | Disconnect::HeartbeatTimeout => {
            RetryAction::Reconnect
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::prelude::rust_2024::*;

    fn closed(code: u16) -> Disconnect {
        Disconnect::Closed {
            code,
            reason: String::new(),
        }
    }

    fn rejected(status: u16, retry_after: Option<u64>) -> Disconnect {
        Disconnect::Rejected {
            status,
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    #[test]
    fn close_codes() {
        for code in [1000, 1001, 1005, 1006, 1011, 1012, 1014, 4000, 4500] {
            assert_eq!(
                default_action(&closed(code)),
                RetryAction::Reconnect,
                "{code}"
            );
        }
        for code in [1002, 1003, 1007, 1008, 1009, 1010, 4400, 4401, 4499] {
            assert_eq!(default_action(&closed(code)), RetryAction::GiveUp, "{code}");
        }
        assert_eq!(default_action(&closed(1013)), RetryAction::ReconnectSlowly);
    }

    #[test]
    fn protocol_violations_are_decided_by_their_code() {
        let oversized = Disconnect::Protocol {
            code: 1009,
            detail: "message too big".into(),
        };
        assert_eq!(default_action(&oversized), RetryAction::GiveUp);
    }

    #[test]
    fn reason_text_never_decides() {
        let fatal_sounding = Disconnect::Closed {
            code: 1001,
            reason: "unauthorized, do not retry".into(),
        };
        assert_eq!(default_action(&fatal_sounding), RetryAction::Reconnect);
    }

    #[test]
    fn http_statuses() {
        for status in [400, 401, 403, 404, 302, 410] {
            assert_eq!(
                default_action(&rejected(status, None)),
                RetryAction::GiveUp,
                "{status}"
            );
        }
        for status in [408, 429, 500, 502, 503] {
            assert_eq!(
                default_action(&rejected(status, None)),
                RetryAction::Reconnect,
                "{status}"
            );
        }
        assert_eq!(
            default_action(&rejected(429, Some(7))),
            RetryAction::ReconnectAfter(Duration::from_secs(7))
        );
    }

    #[test]
    fn retry_after_is_capped() {
        let policy = RetryPolicy {
            max_retry_after: Duration::from_secs(10),
            predicate: None,
        };
        assert_eq!(
            policy.decide(&rejected(503, Some(3600))),
            RetryAction::ReconnectAfter(Duration::from_secs(10))
        );
    }

    #[test]
    fn predicate_overrides_and_falls_back() {
        let policy = RetryPolicy {
            predicate: Some(Arc::new(|d: &Disconnect| {
                matches!(d, Disconnect::Closed { code: 4401, .. }).then_some(RetryAction::Reconnect)
            })),
            ..RetryPolicy::default()
        };
        assert_eq!(policy.decide(&closed(4401)), RetryAction::Reconnect);
        assert_eq!(policy.decide(&closed(4403)), RetryAction::GiveUp);
    }

    #[test]
    fn disconnects_read_well() {
        assert_eq!(
            closed(1012).to_string(),
            "closed by the server with code 1012"
        );
        assert_eq!(
            rejected(401, None).to_string(),
            "server refused the handshake with HTTP 401"
        );
    }
}
