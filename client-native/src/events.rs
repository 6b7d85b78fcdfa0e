//! The application's view of what happens: a `Stream` of events.

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use futures_util::Stream;
use resilient_ws_core::{Cursor, Event, Payload};
use serde::de::DeserializeOwned;

use crate::shared::{Shared, Wakeups, store_waker};

/// Room for events kept between bursts, at most: the queue and the stream swap their
/// buffers, so this bounds both.
const KEEP_WHILE_IDLE: usize = 32;

/// The session's events: state changes with their reasons, messages with their cursors,
/// gaps, and messages handed back. Bounded: an application that stops reading stops the
/// client reading the socket, so memory stays flat.
///
/// It ends once the session has stopped and every [`Client`](crate::Client) handle is gone.
#[derive(Debug)]
pub struct Events {
    shared: Arc<Shared>,
    /// The events taken from the shared queue and not read yet: all of them at once, so
    /// the lock is taken once per burst, not once per event.
    ready: VecDeque<Event>,
}

impl Events {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            ready: VecDeque::new(),
        }
    }

    /// The next event; `None` once the stream has ended.
    pub async fn recv(&mut self) -> Option<Event> {
        std::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        if let Some(event) = self.ready.pop_front() {
            return Poll::Ready(Some(event));
        }
        if self.ready.capacity() > KEEP_WHILE_IDLE {
            // A burst is over: an idle connection keeps no room for the next one.
            self.ready = VecDeque::new();
        }
        let mut inner = self.shared.lock();
        let Some(wakeups) = inner.events.poll_take(&mut self.ready, cx) else {
            return if inner.events.finished {
                Poll::Ready(None)
            } else {
                Poll::Pending
            };
        };
        drop(inner);
        wakeups.wake(&self.shared);
        Poll::Ready(self.ready.pop_front())
    }

    /// Decodes every message as JSON into `T`. A message that does not decode is reported
    /// as [`JsonEvent::Malformed`] and the session goes on.
    pub fn json<T: DeserializeOwned>(self) -> JsonEvents<T> {
        JsonEvents {
            events: self,
            decoded: PhantomData,
        }
    }
}

impl Stream for Events {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        self.poll_event(cx)
    }
}

impl Drop for Events {
    /// Nobody reads the events any more: stop keeping them, and let the socket read on.
    fn drop(&mut self) {
        let mut inner = self.shared.lock();
        let wakeups = inner.events.close();
        drop(inner);
        wakeups.wake(&self.shared);
    }
}

/// The application's events, waiting for [`Events`] to take them. The socket task stops
/// reading while it holds `capacity` events or `max_bytes` of messages, so a slow consumer
/// pushes back into TCP. The byte bound also keeps a fast stream of large messages from
/// piling up between the socket and the application: freed in large runs, they make the
/// allocator hand memory back to the system and fault it in again.
#[derive(Debug)]
pub(crate) struct EventQueue {
    queue: VecDeque<Event>,
    capacity: usize,
    /// Bytes of the messages in `queue`.
    bytes: usize,
    max_bytes: usize,
    /// The application dropped its stream: events are no longer kept.
    closed: bool,
    /// The driver has stopped: once the queue is empty, the stream ends.
    pub(crate) finished: bool,
    /// The application, waiting for events.
    consumer: Option<Waker>,
    /// The socket task, waiting for room.
    producer: Option<Waker>,
}

impl EventQueue {
    pub(crate) fn new(capacity: usize, max_bytes: usize) -> Self {
        Self {
            queue: VecDeque::new(),
            capacity,
            bytes: 0,
            max_bytes,
            closed: false,
            finished: false,
            consumer: None,
            producer: None,
        }
    }

    /// Adds an event for the application; false when nobody reads them any more. While
    /// the queue is full, a state change replaces the state change queued last instead
    /// of growing the queue: the session's timers go on whatever the application does
    /// (a dead server keeps a reconnecting client busy), and the latest state is what
    /// the application needs when it catches up.
    pub(crate) fn push(&mut self, event: Event) -> bool {
        if self.closed {
            return false;
        }
        if self.is_full() && matches!(event, Event::StateChanged { .. }) {
            if let Some(last @ Event::StateChanged { .. }) = self.queue.back_mut() {
                *last = event;
                return true;
            }
        }
        if let Event::Message { payload, .. } = &event {
            self.bytes += payload.len();
        }
        self.queue.push_back(event);
        true
    }

    /// Whether the socket should stop reading until the application catches up.
    pub(crate) fn is_full(&self) -> bool {
        !self.closed && (self.queue.len() >= self.capacity || self.bytes >= self.max_bytes)
    }

    /// The application's waker, if it waits for events.
    pub(crate) fn take_consumer(&mut self) -> Option<Waker> {
        self.consumer.take()
    }

    /// The socket task's waker, if it waits for room.
    pub(crate) fn take_producer(&mut self) -> Option<Waker> {
        self.producer.take()
    }

    /// For the socket task: ready once there is room, else woken when there is.
    pub(crate) fn register_producer(&mut self, cx: &Context<'_>) {
        store_waker(&mut self.producer, cx);
    }

    /// For [`Events`]: swaps every waiting event into the empty `into` and returns the
    /// tasks to wake (the socket task and the driver, which pause while the queue is
    /// full); `None` with the waker stored when nothing waits.
    fn poll_take(&mut self, into: &mut VecDeque<Event>, cx: &Context<'_>) -> Option<Wakeups> {
        if self.queue.is_empty() {
            store_waker(&mut self.consumer, cx);
            return None;
        }
        let mut wakeups = Wakeups::default();
        if self.is_full() {
            wakeups.driver();
        }
        wakeups.reader(self.producer.take());
        std::mem::swap(&mut self.queue, into);
        self.bytes = 0;
        Some(wakeups)
    }

    /// Marks the stream ended by the driver.
    pub(crate) fn finish(&mut self) -> Option<Waker> {
        self.finished = true;
        self.consumer.take()
    }

    /// The application dropped its stream.
    fn close(&mut self) -> Wakeups {
        let mut wakeups = Wakeups::default();
        if self.is_full() {
            wakeups.driver();
        }
        self.closed = true;
        self.queue = VecDeque::new();
        wakeups.reader(self.producer.take());
        wakeups
    }
}

/// An event with messages decoded as JSON.
#[derive(Debug)]
pub enum JsonEvent<T> {
    /// A message that decoded.
    Message {
        /// The decoded value.
        value: T,
        /// The message's cursor.
        cursor: Option<Cursor>,
    },
    /// A message that did not decode; the session is unaffected.
    Malformed {
        /// The message as it came.
        payload: Payload,
        /// Why it did not decode.
        error: serde_json::Error,
    },
    /// Any other event.
    Other(Event),
}

/// [`Events`] with messages decoded as JSON; from [`Events::json`].
#[derive(Debug)]
pub struct JsonEvents<T> {
    events: Events,
    decoded: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> JsonEvents<T> {
    /// The next event; `None` once the stream has ended.
    pub async fn recv(&mut self) -> Option<JsonEvent<T>> {
        self.events.recv().await.map(decode)
    }
}

impl<T: DeserializeOwned> Stream for JsonEvents<T> {
    type Item = JsonEvent<T>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.events)
            .poll_next(cx)
            .map(|event| event.map(decode))
    }
}

fn decode<T: DeserializeOwned>(event: Event) -> JsonEvent<T> {
    let Event::Message { payload, cursor } = event else {
        return JsonEvent::Other(event);
    };
    let decoded = match &payload {
        Payload::Text(text) => serde_json::from_str(text),
        Payload::Binary(bytes) => serde_json::from_slice(bytes),
    };
    match decoded {
        Ok(value) => JsonEvent::Message { value, cursor },
        Err(error) => JsonEvent::Malformed { payload, error },
    }
}
