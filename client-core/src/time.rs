//! Time as the core sees it: a point on the driver's monotonic clock.

use core::fmt;
use core::ops::{Add, Sub};
use core::time::Duration;

/// A point in time, measured from an origin the driver chose (usually when it started).
///
/// The core never reads a clock: every call that can change state takes the current
/// `Timestamp`. Drivers turn their own clock into one with [`Timestamp::from_duration`]
/// (native: `origin.elapsed()`, browser: `performance.now()`).
///
/// Kept in whole microseconds, as one `u64` (585,000 years of range): the session does
/// arithmetic on time at every input, and a plain integer keeps that small and fast, in
/// the browser build above all. Finer parts of a driver's clock are dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The driver's origin.
    pub const ZERO: Self = Self(0);

    /// The point `since_origin` after the driver's origin.
    pub const fn from_duration(since_origin: Duration) -> Self {
        Self(micros(since_origin))
    }

    /// The point `millis` milliseconds after the driver's origin.
    pub const fn from_millis(millis: u64) -> Self {
        Self(millis.saturating_mul(1_000))
    }

    /// How far this point is from the driver's origin.
    pub const fn since_origin(self) -> Duration {
        Duration::from_micros(self.0)
    }

    /// The time from `earlier` to `self`, or zero when `earlier` is later.
    pub const fn saturating_duration_since(self, earlier: Self) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

/// Whole microseconds of `duration`, saturating.
const fn micros(duration: Duration) -> u64 {
    duration
        .as_secs()
        .saturating_mul(1_000_000)
        .saturating_add(duration.subsec_micros() as u64)
}

impl Add<Duration> for Timestamp {
    type Output = Self;

    /// Saturates instead of overflowing: a deadline at the end of time never fires.
    fn add(self, rhs: Duration) -> Self {
        Self(self.0.saturating_add(micros(rhs)))
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
        write!(f, "t+{}ms", self.0 / 1_000)
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
        assert_eq!(end.since_origin(), Duration::from_micros(u64::MAX));
        assert!(end > Timestamp::from_duration(Duration::from_secs(1 << 40)));
    }

    #[test]
    fn keeps_whole_microseconds() {
        let t = Timestamp::from_duration(Duration::new(2, 3_456_789));
        assert_eq!(t.since_origin(), Duration::new(2, 3_456_000));
        assert_eq!(t + Duration::from_millis(1) - t, Duration::from_millis(1));
    }
}
