//! The faults the demo injects, in order.

use super::DemoConfig;
use crate::feed_server::{Faults, FeedServerError, FeedServerHandle, Refusal};

/// One kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Every connection is dropped without a close frame.
    Reset,
    /// The server goes silent on every connection: a half-open connection only the
    /// heartbeat can notice.
    HalfOpen,
    /// Connections are dropped and the next two handshakes are refused with HTTP 503.
    Refusals,
    /// The server restarts: listener and connections gone for a while.
    Restart,
}

impl FaultKind {
    /// The demo's schedule.
    pub const SCHEDULE: [Self; 4] = [Self::Reset, Self::HalfOpen, Self::Refusals, Self::Restart];

    /// A line for people.
    pub fn describe(self, config: &DemoConfig) -> String {
        match self {
            Self::Reset => "connection reset".into(),
            Self::HalfOpen => {
                let (interval, timeout) = config.heartbeat;
                format!(
                    "half-open connection (heartbeat {} ms + {} ms)",
                    interval.as_millis(),
                    timeout.as_millis()
                )
            }
            Self::Refusals => "dropped, then 2 handshakes refused with 503".into(),
            Self::Restart => format!(
                "server restart ({} ms down)",
                config.restart_down.as_millis()
            ),
        }
    }

    /// Makes it happen.
    pub(super) async fn inject(
        self,
        server: &FeedServerHandle,
        config: &DemoConfig,
    ) -> Result<(), FeedServerError> {
        match self {
            Self::Reset => {
                server.drop_all();
            }
            Self::HalfOpen => {
                server.silence_all();
            }
            Self::Refusals => {
                let refusals = Faults {
                    refuse: Some(Refusal {
                        status: 503,
                        remaining: Some(2),
                        retry_after_secs: None,
                    }),
                    ..Faults::default()
                };
                server.set_faults(refusals)?;
                server.drop_all();
            }
            // Returns once the server is down; it comes back by itself after `down`.
            Self::Restart => server.restart(config.restart_down).await?,
        }
        Ok(())
    }
}
