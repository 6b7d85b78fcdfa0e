//! Epoch names: a new one whenever history is lost, never equal to an earlier one.

use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A fresh epoch: the start time in milliseconds and 64 random bits, in hex
/// (`"19a2b3c4d5e-0123456789abcdef"`).
///
/// The time keeps epochs of successive runs distinct and sortable by eye; the random part
/// (std's per-process random hasher keys, mixed with a counter) keeps two hubs started in
/// the same millisecond apart.
pub(crate) fn new_epoch() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u128(now.as_nanos());
    hasher.write_u32(std::process::id());
    format!("{:x}-{:016x}", now.as_millis(), hasher.finish())
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn epochs_differ_and_are_url_safe() {
        let epochs: HashSet<String> = (0..1000).map(|_| new_epoch()).collect();
        assert_eq!(epochs.len(), 1000, "every call must make a new epoch");
        for epoch in &epochs {
            assert!(
                epoch.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-'),
                "{epoch}"
            );
        }
    }
}
