//! A small seeded pseudo-random generator for backoff jitter.
//!
//! Jitter needs spread, not secrecy, and the core must be reproducible from a seed:
//! SplitMix64 is tiny, fast, and passes BigCrush, which is plenty for spreading retries.

/// Deterministic pseudo-random numbers from a 64-bit seed (SplitMix64).
#[derive(Clone, Debug)]
pub(crate) struct SeededRng {
    state: u64,
}

impl SeededRng {
    pub(crate) fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform draw from `0..=max`, without modulo bias worth caring about for jitter
    /// (the multiply-shift maps 64 random bits onto the range).
    pub(crate) fn up_to(&mut self, max: u64) -> u64 {
        if max == u64::MAX {
            return self.next_u64();
        }
        ((u128::from(self.next_u64()) * (u128::from(max) + 1)) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::prelude::rust_2024::*;

    #[test]
    fn same_seed_same_sequence() {
        let mut a = SeededRng::new(7);
        let mut b = SeededRng::new(7);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn up_to_stays_in_range_and_spreads() {
        let mut rng = SeededRng::new(42);
        let mut buckets = [0u32; 10];
        for _ in 0..10_000 {
            let v = rng.up_to(9);
            assert!(v <= 9);
            buckets[v as usize] += 1;
        }
        // Each bucket expects 1,000; a broken mapping would leave some near zero.
        assert!(
            buckets.iter().all(|&n| (800..1200).contains(&n)),
            "{buckets:?}"
        );
    }

    #[test]
    fn up_to_zero_is_zero() {
        let mut rng = SeededRng::new(1);
        assert_eq!(rng.up_to(0), 0);
    }
}
