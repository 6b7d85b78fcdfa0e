//! The bounded channel between the driver and the application's [`Events`]: one small
//! lock that each side takes once per burst, the room it leaves, and the wakers of the
//! side that waits.
//!
//! [`Events`]: crate::Events

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use resilient_ws_core::Event;

/// How many more messages, and bytes of them, the channel takes before it is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Room {
    pub(crate) messages: usize,
    pub(crate) bytes: usize,
}

impl Room {
    /// While the session closes: a close must finish even if the application stopped
    /// reading.
    pub(crate) const UNLIMITED: Self = Self {
        messages: usize::MAX,
        bytes: usize::MAX,
    };

    pub(crate) fn is_empty(self) -> bool {
        self.messages == 0 || self.bytes == 0
    }

    /// Counts a message of `len` bytes against the room.
    pub(crate) fn take(&mut self, len: usize) {
        self.messages = self.messages.saturating_sub(1);
        self.bytes = self.bytes.saturating_sub(len);
    }
}

/// The driver's side and the application's side of the events, under one small lock that
/// each takes once per burst.
#[derive(Debug)]
pub(crate) struct EventChannel {
    inner: Mutex<EventQueue>,
}

impl EventChannel {
    pub(crate) fn new(capacity: usize, max_bytes: usize) -> Self {
        Self {
            inner: Mutex::new(EventQueue::new(capacity, max_bytes)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, EventQueue> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// For the driver: how much more the channel takes; when nothing, the driver is woken
    /// once the application makes room.
    pub(crate) fn room(&self, cx: &Context<'_>) -> Room {
        let mut queue = self.lock();
        let room = queue.room();
        if room.is_empty() {
            store_waker(&mut queue.producer, cx);
        }
        room
    }

    /// For the driver: hands `events` over, emptying it, and wakes the application unless
    /// it is the application's own task that ran the driver.
    pub(crate) fn deliver(&self, events: &mut VecDeque<Event>, wake: bool) {
        if events.is_empty() {
            return;
        }
        let mut guard = self.lock();
        let queue = &mut *guard;
        if queue.queue.is_empty() && !queue.closed {
            // The application has taken everything: hand the whole batch over at once.
            std::mem::swap(&mut queue.queue, events);
            for event in &queue.queue {
                if let Event::Message { payload, .. } = event {
                    queue.messages += 1;
                    queue.bytes += payload.len();
                }
            }
        } else {
            for event in events.drain(..) {
                queue.push(event);
            }
        }
        if !wake {
            return;
        }
        let consumer = queue.consumer.take();
        drop(guard);
        if let Some(waker) = consumer {
            waker.wake();
        }
    }

    /// For the driver: it has stopped; the stream ends once the application has read
    /// every event.
    pub(crate) fn finish(&self) {
        let mut queue = self.lock();
        queue.finished = true;
        let consumer = queue.consumer.take();
        drop(queue);
        if let Some(waker) = consumer {
            waker.wake();
        }
    }

    /// For [`Events`](crate::Events): swaps every waiting event into the empty `into` and wakes the
    /// driver if it waits for room. `Ready(false)` once the stream has ended; when
    /// nothing waits, `cx` (if any) is woken once something does.
    pub(crate) fn poll_take(
        &self,
        into: &mut VecDeque<Event>,
        cx: Option<&Context<'_>>,
    ) -> Poll<bool> {
        let mut queue = self.lock();
        if queue.queue.is_empty() {
            if queue.finished {
                return Poll::Ready(false);
            }
            if let Some(cx) = cx {
                store_waker(&mut queue.consumer, cx);
            }
            return Poll::Pending;
        }
        std::mem::swap(&mut queue.queue, into);
        queue.messages = 0;
        queue.bytes = 0;
        let producer = queue.producer.take();
        drop(queue);
        if let Some(waker) = producer {
            waker.wake();
        }
        Poll::Ready(true)
    }

    /// The application dropped its stream.
    pub(crate) fn close(&self) {
        let mut queue = self.lock();
        queue.closed = true;
        queue.queue = VecDeque::new();
        let producer = queue.producer.take();
        drop(queue);
        if let Some(waker) = producer {
            waker.wake();
        }
    }
}

/// The events waiting for [`Events`] to take them. The driver reads no more messages
/// while it holds `capacity` events or `max_bytes` of messages, so a slow consumer pushes
/// back into TCP. The byte bound also keeps a fast stream of large messages from piling
/// up between the socket and the application: freed in large runs, they make the
/// allocator hand memory back to the system and fault it in again.
#[derive(Debug)]
struct EventQueue {
    queue: VecDeque<Event>,
    /// Most messages waiting; other events (state changes, gaps) are few and not counted.
    capacity: usize,
    /// Messages in `queue`, and their bytes.
    messages: usize,
    bytes: usize,
    max_bytes: usize,
    /// The application dropped its stream: events are no longer kept.
    closed: bool,
    /// The driver has stopped: once the queue is empty, the stream ends.
    finished: bool,
    /// The application, waiting for events.
    consumer: Option<Waker>,
    /// The driver, waiting for room.
    producer: Option<Waker>,
}

impl EventQueue {
    fn new(capacity: usize, max_bytes: usize) -> Self {
        Self {
            queue: VecDeque::new(),
            capacity,
            messages: 0,
            bytes: 0,
            max_bytes,
            closed: false,
            finished: false,
            consumer: None,
            producer: None,
        }
    }

    /// Adds an event for the application, unless nobody reads them any more. While the
    /// queue is full, a state change replaces the state change queued last instead of
    /// growing the queue: the session's timers go on whatever the application does (a
    /// dead server keeps a reconnecting client busy), and the latest state is what the
    /// application needs when it catches up.
    fn push(&mut self, event: Event) {
        if self.closed {
            return;
        }
        if self.room().is_empty() && matches!(event, Event::StateChanged { .. }) {
            if let Some(last @ Event::StateChanged { .. }) = self.queue.back_mut() {
                *last = event;
                return;
            }
        }
        if let Event::Message { payload, .. } = &event {
            self.messages += 1;
            self.bytes += payload.len();
        }
        self.queue.push_back(event);
    }

    fn room(&self) -> Room {
        if self.closed {
            return Room::UNLIMITED;
        }
        Room {
            messages: self.capacity.saturating_sub(self.messages),
            bytes: self.max_bytes.saturating_sub(self.bytes),
        }
    }
}

/// Stores the task's waker, unless the one stored already wakes it.
fn store_waker(slot: &mut Option<Waker>, cx: &Context<'_>) {
    if !slot
        .as_ref()
        .is_some_and(|waker| waker.will_wake(cx.waker()))
    {
        *slot = Some(cx.waker().clone());
    }
}
