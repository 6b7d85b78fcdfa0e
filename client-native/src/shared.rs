//! State shared by the client handles and the driver task.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use resilient_ws_core::{Session, State, Timestamp};
use tokio::sync::{Notify, watch};

use crate::clock::Clock;

/// The session behind a lock the handles take only for the length of one call, so
/// `send` answers at once with the session's own verdict.
pub(crate) struct Shared {
    session: Mutex<Session>,
    pub(crate) clock: Clock,
    /// Wakes the driver after a handle changed the session.
    pub(crate) wake: Arc<Notify>,
    pub(crate) state: watch::Sender<State>,
    /// Live `Client` handles; at zero the driver closes the session and stops.
    pub(crate) handles: AtomicUsize,
}

impl Shared {
    pub(crate) fn new(session: Session, clock: Clock, wake: Arc<Notify>) -> Self {
        let (state, _) = watch::channel(session.state().clone());
        Self {
            session: Mutex::new(session),
            clock,
            wake,
            state,
            handles: AtomicUsize::new(0),
        }
    }

    /// Locks the session. A panic while it was held cannot leave it half-changed in a way
    /// that matters more than stopping the client, so poisoning is ignored.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs an application command on the session, then wakes the driver to carry out
    /// what it produced.
    pub(crate) fn command<R>(&self, apply: impl FnOnce(&mut Session, Timestamp) -> R) -> R {
        let result = apply(&mut self.lock(), self.clock.now());
        self.wake.notify_one();
        result
    }

    pub(crate) fn handles_left(&self) -> usize {
        self.handles.load(Ordering::Acquire)
    }
}
