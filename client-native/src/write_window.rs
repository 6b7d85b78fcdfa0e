//! How many queued application messages may be on their way to the socket at once.
//!
//! Messages stay in the session's bounded queue until the writer has room, so a slow
//! network fills that queue and `send` reports it, instead of an unbounded channel
//! growing behind the scenes.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

/// Messages handed to the writer and not yet flushed, at most.
pub(crate) const WRITE_WINDOW: usize = 256;

/// Counts messages in flight between the driver and the writer.
#[derive(Debug)]
pub(crate) struct WriteWindow {
    in_flight: AtomicUsize,
    /// Wakes the driver when room frees up.
    wake: Arc<Notify>,
}

impl WriteWindow {
    pub(crate) fn new(wake: Arc<Notify>) -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            wake,
        }
    }

    /// How many more messages the writer may be handed now.
    pub(crate) fn room(&self) -> usize {
        WRITE_WINDOW.saturating_sub(self.in_flight.load(Ordering::Acquire))
    }

    pub(crate) fn acquire(&self, messages: usize) {
        self.in_flight.fetch_add(messages, Ordering::AcqRel);
    }

    pub(crate) fn release(&self, messages: usize) {
        if messages > 0 {
            self.in_flight.fetch_sub(messages, Ordering::AcqRel);
            self.wake.notify_one();
        }
    }

    /// Forgets what an ended socket had in flight.
    pub(crate) fn reset(&self) {
        self.in_flight.store(0, Ordering::Release);
        self.wake.notify_one();
    }
}
