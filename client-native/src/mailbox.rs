//! What the application's handles share with the driver: requests going in, in the order
//! they were made, and the session's status coming out.
//!
//! The session itself belongs to the driver task alone. A `send` still answers at once,
//! as the session would: the mailbox admits the message against the queue's bounds (the
//! core's own rule, [`QueueBounds::admit`]) using what the session held when the driver
//! last reported plus what waits here, numbers it, and leaves it for the driver. The
//! numbers continue the session's own, and the driver hands messages over in order.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Waker};

use resilient_ws_core::{Cursor, MsgId, Payload, QueueBounds, QueueUsage, SendError, State, Stats};
use tokio::sync::{Notify, watch};

/// Something a handle asked of the session.
#[derive(Debug)]
pub(crate) enum Request {
    Send(MsgId, Payload),
    Close { code: u16, reason: String },
    Connect,
    SetOnline(bool),
    CheckLiveness,
}

/// Shared by every [`Client`](crate::Client) handle and the driver.
pub(crate) struct Mailbox {
    inner: Mutex<Inner>,
    bounds: QueueBounds,
    /// Wakes every `send_wait`: the queue may have room, or the session stopped.
    pub(crate) room: Arc<Notify>,
    pub(crate) state: watch::Sender<State>,
    /// Live handles; at zero the driver closes the session and stops.
    handles: AtomicUsize,
}

struct Inner {
    requests: VecDeque<Request>,
    /// The last id handed out.
    last_id: u64,
    /// What the session's queue held when the driver last reported.
    session_usage: QueueUsage,
    /// What waits in `requests`.
    waiting: QueueUsage,
    /// Whether the session takes messages: not once it closes or stops.
    accepting: bool,
    stats: Stats,
    last_cursor: Option<Cursor>,
    /// The driver, waiting for requests.
    driver: Option<Waker>,
}

impl Mailbox {
    pub(crate) fn new(bounds: QueueBounds, state: State) -> Self {
        let accepting = accepts(&state);
        Self {
            inner: Mutex::new(Inner {
                requests: VecDeque::new(),
                last_id: 0,
                session_usage: QueueUsage::default(),
                waiting: QueueUsage::default(),
                accepting,
                stats: Stats::default(),
                last_cursor: None,
                driver: None,
            }),
            bounds,
            room: Arc::new(Notify::new()),
            state: watch::channel(state).0,
            handles: AtomicUsize::new(0),
        }
    }

    /// A panic elsewhere cannot leave the mailbox half-changed in a way that matters more
    /// than the client going on, so poisoning is ignored.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits a message for the driver, or hands it back.
    pub(crate) fn send(&self, payload: Payload) -> Result<MsgId, SendError> {
        let mut inner = self.lock();
        if !inner.accepting {
            return Err(SendError::NotRunning { payload });
        }
        let payload = self
            .bounds
            .admit(inner.session_usage + inner.waiting, payload)?;
        inner.last_id += 1;
        let id = MsgId::new(inner.last_id);
        inner.waiting.messages += 1;
        inner.waiting.bytes += payload.len();
        inner.requests.push_back(Request::Send(id, payload));
        wake(inner);
        Ok(id)
    }

    /// Leaves a request other than a send for the driver.
    pub(crate) fn request(&self, request: Request) {
        let mut inner = self.lock();
        match &request {
            // As the session does: no message is taken once a close was asked for, and a
            // stopped session takes them again once it is started.
            Request::Close { .. } => inner.accepting = false,
            Request::Connect if self.state.borrow().is_terminal() => inner.accepting = true,
            _ => {}
        }
        inner.requests.push_back(request);
        wake(inner);
    }

    /// For the driver: moves every request into `into`, oldest first; stores the waker
    /// when none wait.
    pub(crate) fn take_requests(&self, into: &mut VecDeque<Request>, cx: &Context<'_>) {
        let mut inner = self.lock();
        if inner.requests.is_empty() {
            if !inner
                .driver
                .as_ref()
                .is_some_and(|waker| waker.will_wake(cx.waker()))
            {
                inner.driver = Some(cx.waker().clone());
            }
            return;
        }
        std::mem::swap(&mut inner.requests, into);
        // The driver hands them all to the session before it reports again.
        inner.session_usage = inner.session_usage + inner.waiting;
        inner.waiting = QueueUsage::default();
    }

    /// For the driver: the session's status after a round of work.
    pub(crate) fn report(
        &self,
        usage: QueueUsage,
        stats: Stats,
        last_cursor: Option<Cursor>,
        state: Option<&State>,
    ) {
        let mut inner = self.lock();
        let freed = usage.messages < inner.session_usage.messages
            || usage.bytes < inner.session_usage.bytes;
        inner.session_usage = usage;
        inner.stats = stats;
        inner.last_cursor = last_cursor;
        if let Some(state) = state {
            inner.accepting = accepts(state);
        }
        drop(inner);
        if let Some(state) = state {
            self.state.send_replace(state.clone());
        }
        if freed || state.is_some() {
            // Room in the queue, or a state change that may end the wait either way.
            self.room.notify_waiters();
        }
    }

    /// The session's counters as last reported, with the messages waiting here counted
    /// as queued.
    pub(crate) fn stats(&self) -> Stats {
        let inner = self.lock();
        let mut stats = inner.stats.clone();
        stats.queued += inner.waiting.messages;
        stats.queued_bytes += inner.waiting.bytes;
        stats
    }

    pub(crate) fn last_cursor(&self) -> Option<Cursor> {
        self.lock().last_cursor
    }

    pub(crate) fn add_handle(&self) {
        self.handles.fetch_add(1, Ordering::AcqRel);
    }

    /// Drops a handle; wakes the driver when it was the last.
    pub(crate) fn remove_handle(&self) {
        if self.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            let inner = self.lock();
            wake(inner);
        }
    }

    pub(crate) fn handles_left(&self) -> usize {
        self.handles.load(Ordering::Acquire)
    }
}

/// Wakes the driver, after releasing the lock.
fn wake(mut inner: MutexGuard<'_, Inner>) {
    let waker = inner.driver.take();
    drop(inner);
    if let Some(waker) = waker {
        waker.wake();
    }
}

/// Whether a session in `state` takes messages.
fn accepts(state: &State) -> bool {
    !matches!(state, State::Closing | State::Closed | State::Failed(_))
}

impl std::fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailbox")
            .field("state", &*self.state.borrow())
            .finish_non_exhaustive()
    }
}
