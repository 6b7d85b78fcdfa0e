//! Exponential backoff with full jitter.
//!
//! `delay = random(0, min(max, initial * multiplier^n))`, where `n` counts the failed
//! attempts since the last healthy connection. Full jitter spreads a crowd of clients
//! that lost the same server evenly over the window instead of letting them return in
//! waves. With `n = 0` (a healthy connection just dropped) the window is `initial`, so
//! the first retry goes almost at once.

use core::time::Duration;

use crate::rng::SeededRng;

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
        let grown = self.initial.as_secs_f64() * powi(self.multiplier, failures);
        // `min` first: `grown` may be infinite, which `from_secs_f64` would reject.
        Duration::from_secs_f64(grown.min(self.max.as_secs_f64()))
    }

    /// A delay drawn uniformly from `[0, window(failures)]`, at microsecond resolution.
    pub(crate) fn delay(&self, failures: u32, rng: &mut SeededRng) -> Duration {
        let window = u64::try_from(self.window(failures).as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(rng.up_to(window))
    }
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
            delays.iter().any(|d| *d < window / 10),
            "full jitter reaches near zero"
        );
        assert!(
            delays.iter().any(|d| *d > window * 9 / 10),
            "and near the top"
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
