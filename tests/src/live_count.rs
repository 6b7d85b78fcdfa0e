//! Counting connections that are open right now, and the most that were ever open at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Live and peak numbers of open connections, shared by a server's tasks.
#[derive(Debug, Default)]
pub(crate) struct LiveCount {
    live: AtomicUsize,
    peak: AtomicUsize,
}

impl LiveCount {
    /// Counts one more open connection until the returned guard is dropped.
    pub(crate) fn enter(self: &Arc<Self>) -> LiveGuard {
        let now_live = self.live.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now_live, Ordering::SeqCst);
        LiveGuard {
            count: Arc::clone(self),
        }
    }

    /// Connections open right now.
    pub(crate) fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    /// The highest number of connections that were open at the same time.
    pub(crate) fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

/// One open connection; dropping it (after the socket) makes the count exact again.
#[derive(Debug)]
pub(crate) struct LiveGuard {
    count: Arc<LiveCount>,
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.count.live.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_remembers_the_highest_simultaneous_count() {
        let count = Arc::new(LiveCount::default());
        let first = count.enter();
        let second = count.enter();
        assert_eq!((count.live(), count.peak()), (2, 2));
        drop(first);
        drop(second);
        let _third = count.enter();
        assert_eq!((count.live(), count.peak()), (1, 2));
    }
}
