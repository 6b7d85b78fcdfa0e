//! The driver's clock, turned into the core's timestamps.

use resilient_ws_core::Timestamp;
use tokio::time::Instant;

/// Measures time from when the client started; tokio's clock, so tests may pause it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    origin: Instant,
}

impl Clock {
    pub(crate) fn start() -> Self {
        Self {
            origin: Instant::now(),
        }
    }

    pub(crate) fn now(&self) -> Timestamp {
        Timestamp::from_duration(self.origin.elapsed())
    }

    pub(crate) fn instant(&self, at: Timestamp) -> Instant {
        self.origin + at.since_origin()
    }
}
