//! Exponential backoff with full jitter.
//!
//! `delay = random(0, min(max, initial * multiplier^n))`, where `n` counts the failed
//! attempts since the last healthy connection. Full jitter spreads a crowd of clients
//! that lost the same server evenly over the window instead of letting them return in
//! waves. With `n = 0` (a healthy connection just dropped) the window is `initial`, so
//! the first retry goes almost at once.
//!
//! After a failure (`n >= 1`) no delay is shorter than [`MIN_DELAY_AFTER_FAILURE`] (or
//! `initial`, when that is smaller): the draw is from `[floor, window]`, so a server that
//! fails at once can never pull a client into a tight loop. A server's Retry-After is
//! honoured with the same jitter on top (see [`BackoffConfig::delay_after`]), so a crowd
//! told "come back in 2 s" does not come back in one instant.

use core::time::Duration;

use crate::rng::SeededRng;

/// The shortest delay after a failed attempt: 100 ms, or the backoff's `initial` window
/// when that is smaller.
pub const MIN_DELAY_AFTER_FAILURE: Duration = Duration::from_millis(100);

/// How long to wait between attempts. See the module docs for the formula.
#[derive(Clone, Debug, PartialEq)]
pub struct BackoffConfig {
    /// The window of the first retry, and the base of the exponent. Default 250 ms.
    pub initial: Duration,
    /// The largest window, however many attempts failed. Default 30 s.
    pub max: Duration,
    /// How much the window grows per failed attempt. Default 2.0; must be at least 1.0.
    pub multiplier: f64,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(30),
            multiplier: 2.0,
        }
    }
}

impl BackoffConfig {
    /// The upper end of the jitter window after `failures` consecutive failed attempts.
    pub fn window(&self, failures: u32) -> Duration {
        let micros = |duration: Duration| {
            duration.as_secs() as f64 * 1e6 + f64::from(duration.subsec_micros())
        };
        let grown = micros(self.initial) * powi(self.multiplier, failures);
        // In whole microseconds through a saturating `as`: `from_secs_f64` would bring its
        // range checks (and their panics) into the browser build.
        Duration::from_micros(grown.min(micros(self.max)) as u64)
    }

    /// The floor under every delay after a failure.
    pub fn floor(&self) -> Duration {
        MIN_DELAY_AFTER_FAILURE.min(self.initial)
    }

    /// A delay drawn uniformly from `[0, window(0)]` after a healthy connection, else from
    /// `[floor, window(failures)]`, at microsecond resolution.
    pub(crate) fn delay(&self, failures: u32, rng: &mut SeededRng) -> Duration {
        let floor = if failures == 0 {
            Duration::ZERO
        } else {
            self.floor()
        };
        floor + jitter(self.window(failures) - floor, rng)
    }

    /// The delay before retrying when the server asked for `retry_after`: at least the
    /// floor, plus a uniform draw from the backoff window, so clients refused together
    /// spread out over at least one window instead of returning together.
    pub(crate) fn delay_after(
        &self,
        retry_after: Duration,
        failures: u32,
        rng: &mut SeededRng,
    ) -> Duration {
        retry_after.max(self.floor()) + jitter(self.window(failures.max(1)), rng)
    }
}

/// Uniform in `[0, window]`, at microsecond resolution.
fn jitter(window: Duration, rng: &mut SeededRng) -> Duration {
    let window = window.as_secs().saturating_mul(1_000_000) + u64::from(window.subsec_micros());
    Duration::from_micros(rng.up_to(window))
}

/// `base` raised to `exponent` by squaring: `f64::powi` lives in `std`, and the core is
/// `no_std`. Exact for the powers of two the default multiplier produces.
fn powi(base: f64, exponent: u32) -> f64 {
    let (mut result, mut square, mut rest) = (1.0, base, exponent);
    while rest > 0 {
        if rest & 1 == 1 {
            result *= square;
        }
        square *= square;
        rest >>= 1;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::prelude::rust_2024::*;

    #[test]
    fn window_grows_then_caps() {
        let backoff = BackoffConfig::default();
        assert_eq!(backoff.window(0), Duration::from_millis(250));
        assert_eq!(backoff.window(1), Duration::from_millis(500));
        assert_eq!(backoff.window(3), Duration::from_secs(2));
        assert_eq!(backoff.window(8), Duration::from_secs(30));
        assert_eq!(backoff.window(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn delays_stay_inside_the_window_and_use_all_of_it() {
        let backoff = BackoffConfig::default();
        let mut rng = SeededRng::new(3);
        let delays: Vec<Duration> = (0..2_000).map(|_| backoff.delay(4, &mut rng)).collect();
        let window = backoff.window(4);
        assert!(delays.iter().all(|d| *d <= window));
        assert!(
            delays.iter().all(|d| *d >= MIN_DELAY_AFTER_FAILURE),
            "never below the floor after a failure"
        );
        assert!(
            delays.iter().any(|d| *d < window / 10),
            "full jitter reaches near the floor"
        );
        assert!(
            delays.iter().any(|d| *d > window * 9 / 10),
            "and near the top"
        );
    }

    #[test]
    fn after_a_healthy_connection_the_first_retry_may_go_at_once() {
        let backoff = BackoffConfig::default();
        let mut rng = SeededRng::new(5);
        let delays: Vec<Duration> = (0..2_000).map(|_| backoff.delay(0, &mut rng)).collect();
        assert!(delays.iter().any(|d| *d < Duration::from_millis(5)));
        assert!(delays.iter().all(|d| *d <= backoff.initial));
    }

    #[test]
    fn floor_is_the_initial_window_when_smaller() {
        let backoff = BackoffConfig {
            initial: Duration::from_millis(10),
            ..BackoffConfig::default()
        };
        assert_eq!(backoff.floor(), Duration::from_millis(10));
        let mut rng = SeededRng::new(9);
        assert!((0..500).all(|_| backoff.delay(1, &mut rng) >= Duration::from_millis(10)));
    }

    #[test]
    fn retry_after_gets_a_floor_and_a_window_of_jitter() {
        let backoff = BackoffConfig::default();
        let mut rng = SeededRng::new(11);
        let zero: Vec<Duration> = (0..1_000)
            .map(|_| backoff.delay_after(Duration::ZERO, 1, &mut rng))
            .collect();
        assert!(zero.iter().all(|d| *d >= MIN_DELAY_AFTER_FAILURE));
        let two = Duration::from_secs(2);
        let spread: Vec<Duration> = (0..1_000)
            .map(|_| backoff.delay_after(two, 1, &mut rng))
            .collect();
        assert!(
            spread
                .iter()
                .all(|d| *d >= two && *d <= two + backoff.window(1))
        );
        let (low, high) = (spread.iter().min().unwrap(), spread.iter().max().unwrap());
        assert!(
            *high - *low > backoff.window(1) * 8 / 10,
            "spread over the window"
        );
    }

    #[test]
    fn multiplier_one_is_constant_window() {
        let backoff = BackoffConfig {
            multiplier: 1.0,
            ..BackoffConfig::default()
        };
        assert_eq!(backoff.window(20), Duration::from_millis(250));
    }
}
