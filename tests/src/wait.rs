//! Bounded waits for the suites: every wait in a test ends, one way or the other.

use std::future::Future;
use std::time::Duration;

use tokio::time::{Instant, sleep, timeout};

/// How often `eventually` looks again.
const POLL: Duration = Duration::from_millis(5);

/// Polls `done` until it holds, panicking with `what` after `limit`.
pub async fn eventually(what: &str, limit: Duration, done: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?}: {what}"
        );
        sleep(POLL).await;
    }
}

/// Runs a test body, panicking if it takes longer than `limit`.
pub async fn within<F: Future<Output = ()>>(limit: Duration, body: F) {
    timeout(limit, body)
        .await
        .expect("test exceeded its deadline");
}
