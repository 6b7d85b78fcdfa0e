//! Time as the core sees it: a point on the driver's monotonic clock.

use core::fmt;
use core::ops::{Add, Sub};
use core::time::Duration;

/// A point in time, measured from an origin the driver chose (usually when it started).
///
/// The core never reads a clock: every call that can change state takes the current
/// `Timestamp`. Drivers turn their own clock into one with [`Timestamp::from_duration`]
/// (native: `origin.elapsed()`, browser: `performance.now()`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(Duration);

impl Timestamp {
    /// The driver's origin.
    pub const ZERO: Self = Self(Duration::ZERO);

    /// The point `since_origin` after the driver's origin.
    pub const fn from_duration(since_origin: Duration) -> Self {
        Self(since_origin)
    }

    /// The point `millis` milliseconds after the driver's origin.
    pub const fn from_millis(millis: u64) -> Self {
        Self(Duration::from_millis(millis))
    }

    /// How far this point is from the driver's origin.
    pub const fn since_origin(self) -> Duration {
        self.0
    }

    /// The time from `earlier` to `self`, or zero when `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Self) -> Duration {
        self.0.saturating_sub(earlier.0)
    }
}

impl Add<Duration> for Timestamp {
    type Output = Self;

    /// Saturates instead of overflowing: a deadline at the end of time never fires.
    fn add(self, rhs: Duration) -> Self {
        Self(self.0.saturating_add(rhs))
    }
}

impl Sub for Timestamp {
    type Output = Duration;

    fn sub(self, rhs: Self) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t+{}ms", crate::error::millis(self.0))
    }
}

/// Keeps time monotonic: a driver whose clock steps back cannot move the core backwards.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct MonotonicClock {
    latest: Timestamp,
}

impl MonotonicClock {
    /// Records `now` and returns the time to act on: never earlier than any time seen before.
    pub(crate) fn advance(&mut self, now: Timestamp) -> Timestamp {
        self.latest = self.latest.max(now);
        self.latest
    }

    /// The latest time seen.
    pub(crate) fn now(&self) -> Timestamp {
        self.latest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::prelude::rust_2024::*;

    #[test]
    fn clock_never_goes_back() {
        let mut clock = MonotonicClock::default();
        assert_eq!(
            clock.advance(Timestamp::from_millis(10)),
            Timestamp::from_millis(10)
        );
        assert_eq!(
            clock.advance(Timestamp::from_millis(4)),
            Timestamp::from_millis(10)
        );
        assert_eq!(clock.now(), Timestamp::from_millis(10));
    }

    #[test]
    fn adding_saturates() {
        let end = Timestamp::from_duration(Duration::MAX) + Duration::from_secs(1);
        assert_eq!(end.since_origin(), Duration::MAX);
    }
}
