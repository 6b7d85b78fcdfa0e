//! The application's view of what happens: a `Stream` of events, read from the channel
//! the driver fills (`channel.rs`), with JSON decoding on top.

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::Stream;
use resilient_ws_core::{Cursor, Event, Payload};
use serde::de::DeserializeOwned;

use crate::baton::Baton;
use crate::channel::EventChannel;

/// Room for events kept between bursts, at most: the channel and the stream swap their
/// buffers, so this bounds both.
const KEEP_WHILE_IDLE: usize = 32;

/// The session's events: state changes with their reasons, messages with their cursors,
/// gaps, and messages handed back. Bounded: an application that stops reading stops the
/// client reading messages from the socket, so memory stays flat.
///
/// It ends once the session has stopped and every [`Client`](crate::Client) handle is gone.
///
/// While your task waits on it (in [`recv`](Self::recv) or `next`), the client reads the
/// socket on your task, so messages reach you without crossing threads. While your task
/// does anything else, the client's own task reads, so a closed or dead connection is
/// noticed behind a busy application too. A stream that was polled and then left
/// unpolled without being dropped (a `select!` whose other branch runs long) is read at
/// the heartbeat's deadlines until it is polled again.
pub struct Events {
    channel: Arc<EventChannel>,
    /// The driver, run on this task while it waits for events and nothing else has them.
    baton: Arc<Baton>,
    /// The events taken from the channel and not read yet: all of them at once, so the
    /// lock is taken once per burst, not once per event.
    ready: VecDeque<Event>,
}

impl Events {
    pub(crate) fn new(channel: Arc<EventChannel>, baton: Arc<Baton>) -> Self {
        Self {
            channel,
            baton,
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
        self.baton.application_busy();
        if let Poll::Ready(more) = self.channel.poll_take(&mut self.ready, None) {
            return Poll::Ready(more.then(|| self.ready.pop_front()).flatten());
        }
        // Nothing waits: read the socket on this task.
        self.baton.run_inline();
        let taken = self.channel.poll_take(&mut self.ready, Some(cx));
        if taken.is_pending() {
            self.baton.application_waits(cx.waker());
        }
        taken.map(|more| more.then(|| self.ready.pop_front()).flatten())
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
    /// Nobody reads the events any more: stop keeping them, and let the driver read on.
    fn drop(&mut self) {
        self.channel.close();
        self.baton.application_gone();
    }
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("channel", &self.channel)
            .field("ready", &self.ready.len())
            .finish_non_exhaustive()
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
