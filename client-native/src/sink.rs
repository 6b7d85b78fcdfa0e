//! The send side as a `Sink`: for pipelines that forward a stream of messages.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use futures_util::Sink;
use resilient_ws_core::{Payload, SendError};
use tokio::sync::{Notify, futures::OwnedNotified};

use crate::client::Client;

/// A [`Sink`] of payloads into the session's outbound queue, from [`Client::sink`].
///
/// It holds at most one message: `start_send` takes it, and `poll_ready` / `poll_flush`
/// hand it to the queue, waiting while the queue is full (room comes as messages are
/// written to the socket). Flushed means queued, not yet written: the queue sends it on this
/// connection or the next. A message that can never fit, or that meets a stopped session,
/// ends the sink with the [`SendError`] that carries it back.
pub struct ClientSink {
    client: Client,
    room: Arc<Notify>,
    /// Taken by `start_send`, not queued yet.
    pending: Option<Payload>,
    /// Registered for room before the last attempt, so room made in between is not missed.
    waiting: Option<Pin<Box<OwnedNotified>>>,
}

impl Client {
    /// The send side as a [`futures_util::Sink`] of payloads: it waits for room as
    /// [`send_wait`](Self::send_wait) does, so `stream.forward(client.sink())` or
    /// `sink.send_all(..)` never drops a message; see [`ClientSink`].
    pub fn sink(&self) -> ClientSink {
        ClientSink::new(self.clone(), self.room())
    }
}

impl ClientSink {
    fn new(client: Client, room: Arc<Notify>) -> Self {
        Self {
            client,
            room,
            pending: None,
            waiting: None,
        }
    }

    /// Queues the pending message, waiting for room while the queue is full.
    fn poll_queue(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), SendError>> {
        loop {
            let Some(payload) = self.pending.take() else {
                return Poll::Ready(Ok(()));
            };
            if let Some(waiting) = self.waiting.as_mut() {
                if waiting.as_mut().poll(cx).is_pending() {
                    self.pending = Some(payload);
                    return Poll::Pending;
                }
                self.waiting = None;
            }
            let mut notified = Box::pin(Arc::clone(&self.room).notified_owned());
            notified.as_mut().enable();
            match self.client.send(payload) {
                Ok(_) => return Poll::Ready(Ok(())),
                Err(SendError::QueueFull { payload, .. }) => {
                    self.pending = Some(payload);
                    self.waiting = Some(notified);
                }
                Err(error) => return Poll::Ready(Err(error)),
            }
        }
    }
}

impl Sink<Payload> for ClientSink {
    type Error = SendError;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SendError>> {
        self.get_mut().poll_queue(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Payload) -> Result<(), SendError> {
        let this = self.get_mut();
        debug_assert!(this.pending.is_none(), "start_send without poll_ready");
        this.pending = Some(item);
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SendError>> {
        self.get_mut().poll_queue(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SendError>> {
        ready!(self.get_mut().poll_queue(cx))?;
        Poll::Ready(Ok(()))
    }
}

impl std::fmt::Debug for ClientSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSink")
            .field("pending", &self.pending.is_some())
            .finish_non_exhaustive()
    }
}
