//! The application's view of what happens: a `Stream` of events.

use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;
use resilient_ws_core::{Cursor, Event, Payload};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

/// The session's events: state changes with their reasons, messages with their cursors,
/// gaps, and messages handed back. Bounded: an application that stops reading stops the
/// client reading the socket, so memory stays flat.
///
/// It ends once the session has stopped and every [`Client`](crate::Client) handle is gone.
#[derive(Debug)]
pub struct Events {
    /// Batches from the driver: one per burst of events.
    receiver: mpsc::Receiver<Vec<Event>>,
    /// The rest of the batch being read.
    ready: std::vec::IntoIter<Event>,
}

impl Events {
    pub(crate) fn new(receiver: mpsc::Receiver<Vec<Event>>) -> Self {
        Self {
            receiver,
            ready: Vec::new().into_iter(),
        }
    }

    /// The next event; `None` once the stream has ended.
    pub async fn recv(&mut self) -> Option<Event> {
        std::future::poll_fn(|cx| self.poll_event(cx)).await
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        loop {
            if let Some(event) = self.ready.next() {
                return Poll::Ready(Some(event));
            }
            match self.receiver.poll_recv(cx) {
                Poll::Ready(Some(batch)) => self.ready = batch.into_iter(),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
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
