//! The hub every task of a client meets at: the session behind one lock, with the queues
//! its outputs go to.
//!
//! Whoever changes the session (the application's `send`, the socket task with what it
//! read, the driver with a timer) drains the session's outputs at once, under the same
//! lock: events go to the application's queue, frames to the current socket's writer,
//! and only socket lifecycle commands (open, abort) and earlier deadlines to the driver
//! task. So a message read from the socket reaches the application with one task hand-off,
//! and a message sent reaches the socket with one, and the session stays the single place
//! where every decision is made.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use resilient_ws_core::{Command, ConnId, Event, Session, SocketEvent, State, Timestamp, Unsent};
use tokio::sync::{Notify, watch};
use tokio_tungstenite::tungstenite::Message;

use crate::clock::Clock;
use crate::events::EventQueue;
use crate::writer::{Outbound, WriterSlot, Written};

/// State shared by the client handles, the event stream, the driver and the socket task.
pub(crate) struct Shared {
    inner: Mutex<Inner>,
    pub(crate) clock: Clock,
    /// Wakes the driver: a socket to open or release, an earlier deadline, a state change,
    /// room for events again, or a handle dropped.
    pub(crate) wake: Notify,
    /// Wakes every `send_wait`: the outbound queue may have room, or the session stopped.
    pub(crate) room: Notify,
    pub(crate) state: watch::Sender<State>,
    /// Live `Client` handles; at zero the driver closes the session and stops.
    pub(crate) handles: AtomicUsize,
    /// The session's span, for what is logged while draining it from any task.
    span: tracing::Span,
}

/// What the lock guards.
pub(crate) struct Inner {
    pub(crate) session: Session,
    /// Events for the application.
    pub(crate) events: EventQueue,
    /// The current socket's outbound frames, from its `Open` until its `Abort`.
    pub(crate) writer: Option<WriterSlot>,
    /// `Open` and `Abort` commands for the driver, in the session's order.
    pub(crate) lifecycle: VecDeque<Command>,
    /// The deadline the driver's timer is armed for; a pump that finds an earlier one
    /// wakes the driver.
    pub(crate) armed_for: Option<Timestamp>,
}

/// Tasks to wake once the lock is released.
#[derive(Default)]
#[must_use]
pub(crate) struct Wakeups {
    application: Option<Waker>,
    writer: Option<Waker>,
    reader: Option<Waker>,
    driver: bool,
}

impl Wakeups {
    /// Wakes them; call without the lock held.
    pub(crate) fn wake(self, shared: &Shared) {
        for waker in [self.application, self.writer, self.reader]
            .into_iter()
            .flatten()
        {
            waker.wake();
        }
        if self.driver {
            shared.wake.notify_one();
        }
    }

    /// Wakes them, except the driver: for the driver itself, which is awake.
    pub(crate) fn wake_others(mut self, shared: &Shared) {
        self.driver = false;
        self.wake(shared);
    }

    /// Also wakes the socket reader waiting for room for events.
    pub(crate) fn reader(&mut self, waker: Option<Waker>) {
        if waker.is_some() {
            self.reader = waker;
        }
    }

    /// Also wakes the driver.
    pub(crate) fn driver(&mut self) {
        self.driver = true;
    }
}

impl Shared {
    pub(crate) fn new(
        session: Session,
        clock: Clock,
        events: EventQueue,
        span: tracing::Span,
    ) -> Self {
        let (state, _) = watch::channel(session.state().clone());
        Self {
            inner: Mutex::new(Inner {
                session,
                events,
                writer: None,
                lifecycle: VecDeque::new(),
                armed_for: None,
            }),
            clock,
            wake: Notify::new(),
            room: Notify::new(),
            state,
            handles: AtomicUsize::new(0),
            span,
        }
    }

    /// Locks the session. A panic while it was held cannot leave it half-changed in a way
    /// that matters more than stopping the client, so poisoning is ignored.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs a change on the session, drains its outputs, and wakes whoever they concern.
    pub(crate) fn with<R>(&self, apply: impl FnOnce(&mut Session, Timestamp) -> R) -> R {
        let now = self.clock.now();
        let mut inner = self.lock();
        let result = apply(&mut inner.session, now);
        let wakeups = self.pump(&mut inner);
        drop(inner);
        wakeups.wake(self);
        result
    }

    /// Feeds what socket `conn` reported, in order, under one lock. Returns whether the
    /// application's queue has room for more, that is whether the socket may read on.
    pub(crate) fn feed(&self, conn: ConnId, events: impl IntoIterator<Item = SocketEvent>) -> bool {
        let now = self.clock.now();
        let mut inner = self.lock();
        for event in events {
            inner.session.handle_socket(conn, event, now);
        }
        let wakeups = self.pump(&mut inner);
        let room = inner.has_room();
        drop(inner);
        wakeups.wake(self);
        room
    }

    /// For the socket task: ready once the application's queue has room for more events.
    pub(crate) fn poll_room(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut inner = self.lock();
        if inner.has_room() {
            return Poll::Ready(());
        }
        inner.events.register_producer(cx);
        Poll::Pending
    }

    /// For socket `conn`'s writer: tells the session which messages the OS has wholly
    /// accepted since the last call, then moves every frame waiting into `into`.
    /// `None` once the session has released the socket.
    pub(crate) fn poll_frames(
        &self,
        conn: ConnId,
        into: &mut VecDeque<Message>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<()>> {
        let mut inner = self.lock();
        let Some(slot) = inner.writer.as_mut().filter(|slot| slot.conn == conn) else {
            return Poll::Ready(None);
        };
        let (taken, written, reopened) = slot.poll_take(into, cx);
        if written.messages > 0 {
            let now = self.clock.now();
            let Written { messages, bytes } = written;
            inner
                .session
                .handle_socket(conn, SocketEvent::Written { messages, bytes }, now);
            // What the queue counted until it was written no longer takes room.
            self.room.notify_waiters();
        }
        if written.messages > 0 || reopened {
            // Room in the queue's bounds or the write window: the session may hand over
            // more queued messages.
            let wakeups = self.pump(&mut inner);
            drop(inner);
            wakeups.wake(self);
            if taken.is_pending() {
                // The pump may have handed this writer frames: look again at once.
                cx.waker().wake_by_ref();
            }
        }
        taken.map(Some)
    }

    /// Drains the session's outputs to where they go. Call after every change, under the
    /// lock; wake the returned tasks after releasing it.
    pub(crate) fn pump(&self, inner: &mut Inner) -> Wakeups {
        let mut wakeups = Wakeups::default();
        let Inner {
            session,
            events,
            writer,
            lifecycle,
            armed_for,
        } = inner;
        loop {
            // Queued messages leave only while the writer has room; the rest stay in the
            // session's bounded queue, where `send` sees them.
            let takes_queued = writer.as_ref().is_some_and(WriterSlot::has_room);
            let command = if takes_queued {
                session.poll_command()
            } else {
                session.poll_control()
            };
            let Some(command) = command else { break };
            let (conn, frame) = match command {
                Command::Open(_) => {
                    lifecycle.push_back(command);
                    wakeups.driver();
                    continue;
                }
                Command::Abort { conn } => {
                    if let Some(slot) = writer.take_if(|slot| slot.conn == conn) {
                        // What it never wrote goes back to the session before anything
                        // else can be handed out. Its writer ends; the driver aborts the
                        // task and waits for it.
                        let (unwritten, waker) = slot.finish();
                        session.return_unwritten(conn, unwritten);
                        wakeups.writer = waker;
                    }
                    lifecycle.push_back(command);
                    wakeups.driver();
                    continue;
                }
                Command::Send { conn, payload, id } => {
                    let frame = match id {
                        Some(id) => Outbound::Queued(id, payload),
                        None => Outbound::Control(payload),
                    };
                    (conn, frame)
                }
                Command::Ping { conn } => (conn, Outbound::Ping),
                Command::Close { conn, code, reason } => (conn, Outbound::Close { code, reason }),
            };
            match writer.as_mut().filter(|slot| slot.conn == conn) {
                Some(slot) => {
                    if let Some(waker) = slot.push(frame) {
                        wakeups.writer = Some(waker);
                    }
                }
                // No writer for it: an application message goes back to the session;
                // anything else for a released socket is moot.
                None => {
                    if let Outbound::Queued(id, payload) = frame {
                        session.return_unwritten(conn, vec![Unsent { id, payload }]);
                    }
                }
            }
        }
        let mut delivered = false;
        while let Some(event) = session.poll_event() {
            if let Event::StateChanged { state, reason } = &event {
                self.span.in_scope(|| log_state(state, reason));
                // A stopped session never makes room: waiting senders must hear it, and a
                // socket's end can hand messages back, which makes room.
                self.room.notify_waiters();
                self.state.send_replace(state.clone());
                // The driver decides on handles and timers by the state; a reader
                // waiting for room reads on while closing.
                wakeups.driver();
                wakeups.reader(events.take_producer());
            }
            delivered |= events.push(event);
        }
        if delivered {
            wakeups.application = events.take_consumer();
        }
        let deadline = session.poll_timeout().map(|(at, _)| at);
        if deadline.is_some_and(|at| armed_for.is_none_or(|armed| at < armed)) {
            wakeups.driver();
        }
        wakeups
    }

    pub(crate) fn handles_left(&self) -> usize {
        self.handles.load(Ordering::Acquire)
    }
}

impl Inner {
    /// Whether the socket may read on: the application's queue has room, or nobody
    /// reads it, or the session is closing (a close must finish even if the application
    /// stopped reading).
    pub(crate) fn has_room(&self) -> bool {
        !self.events.is_full() || *self.session.state() == State::Closing
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("state", &*self.state.borrow())
            .finish_non_exhaustive()
    }
}

/// Stores the task's waker, unless the one stored already wakes it.
pub(crate) fn store_waker(slot: &mut Option<Waker>, cx: &Context<'_>) {
    if !slot
        .as_ref()
        .is_some_and(|waker| waker.will_wake(cx.waker()))
    {
        *slot = Some(cx.waker().clone());
    }
}

fn log_state(state: &State, reason: &resilient_ws_core::Reason) {
    match state {
        State::Failed(_) => tracing::warn!(%reason, "{state}"),
        State::Reconnecting { .. } => tracing::info!(%reason, "{state}"),
        _ => tracing::debug!(%reason, "{state}"),
    }
}
