//! The handle the application keeps: send, close, and look at the session.

use std::sync::Arc;
use std::time::Duration;

use resilient_ws_core::{CloseError, Cursor, MsgId, Payload, SendError, State, Stats, check_close};
use serde::Serialize;
use tokio::sync::{Notify, watch};

use crate::error::SendJsonError;
use crate::mailbox::{Mailbox, Request};

/// Extra time `close` waits beyond the close timeout for the driver to report the end.
const CLOSE_SLACK: Duration = Duration::from_secs(1);

/// A handle to a running session. Clone it freely; when the last handle is dropped the
/// session closes gracefully and its task ends.
pub struct Client {
    mailbox: Arc<Mailbox>,
    close_timeout: Duration,
}

impl Client {
    pub(crate) fn new(mailbox: Arc<Mailbox>, close_timeout: Duration) -> Self {
        mailbox.add_handle();
        Self {
            mailbox,
            close_timeout,
        }
    }

    /// Queues a text message. It leaves at once while connected, or on the next
    /// connection, in the order sent; a full queue hands it back in the error.
    pub fn send_text(&self, text: impl Into<String>) -> Result<MsgId, SendError> {
        self.send(Payload::from(text.into()))
    }

    /// Queues a binary message, like [`send_text`](Self::send_text).
    pub fn send_binary(&self, bytes: impl Into<Vec<u8>>) -> Result<MsgId, SendError> {
        self.send(Payload::from(bytes.into()))
    }

    /// Encodes `value` as JSON and queues it as a text message.
    pub fn send_json<T: Serialize + ?Sized>(&self, value: &T) -> Result<MsgId, SendJsonError> {
        let text = serde_json::to_string(value)?;
        Ok(self.send_text(text)?)
    }

    /// Queues a message, like [`send_text`](Self::send_text). A message accepted just as
    /// the session stops comes back in [`Event::Unsent`](crate::Event::Unsent).
    pub fn send(&self, payload: Payload) -> Result<MsgId, SendError> {
        self.mailbox.send(payload)
    }

    /// Queues a message, waiting while the queue is full: room comes as messages are
    /// written to the socket (the queue counts them until then). Fails at once, handing
    /// the message back, when it can never fit ([`SendError::TooLarge`]) or the session
    /// has stopped ([`SendError::NotRunning`]), also while waiting. Dropping the future
    /// drops the message; [`send`](Self::send) never waits.
    pub async fn send_wait(&self, mut payload: Payload) -> Result<MsgId, SendError> {
        loop {
            // Registered before the attempt, so room made in between is not missed.
            let room = self.mailbox.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            match self.send(payload) {
                Err(SendError::QueueFull { payload: back, .. }) => payload = back,
                done => return done,
            }
            room.await;
        }
    }

    /// Notified whenever the outbound queue may have room (or the session stopped).
    pub(crate) fn room(&self) -> Arc<Notify> {
        Arc::clone(&self.mailbox.room)
    }

    /// Closes the session: flushes the queue, completes the close handshake, and returns
    /// once the session is closed (at most the close timeout, plus a second). Messages
    /// that could not be sent come back as [`Event::Unsent`](crate::Event::Unsent).
    ///
    /// Events keep arriving meanwhile; while closing, the client reads the socket even if
    /// the application has stopped reading them, so a slow consumer cannot hold the close
    /// up.
    pub async fn close(&self, code: u16, reason: &str) -> Result<(), CloseError> {
        check_close(code, reason)?;
        let mut state = self.mailbox.state.subscribe();
        self.mailbox.request(Request::Close {
            code,
            reason: reason.to_owned(),
        });
        let closed = state.wait_for(State::is_terminal);
        let _ = tokio::time::timeout(self.close_timeout + CLOSE_SLACK, closed).await;
        Ok(())
    }

    /// Starts the session again after it closed or failed. Does nothing while it runs.
    pub fn reconnect(&self) {
        self.mailbox.request(Request::Connect);
    }

    /// Tells the session whether the network is up: offline ends the socket at once,
    /// online reconnects at once.
    pub fn set_online(&self, online: bool) {
        self.mailbox.request(Request::SetOnline(online));
    }

    /// Probes the connection now instead of waiting for the heartbeat interval.
    pub fn check_liveness(&self) {
        self.mailbox.request(Request::CheckLiveness);
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.mailbox.state.borrow().clone()
    }

    /// A watch of the state, to await changes.
    pub fn watch_state(&self) -> watch::Receiver<State> {
        self.mailbox.state.subscribe()
    }

    /// The session's counters.
    pub fn stats(&self) -> Stats {
        self.mailbox.stats()
    }

    /// The cursor of the last delivered message.
    pub fn last_cursor(&self) -> Option<Cursor> {
        self.mailbox.last_cursor()
    }
}

impl Clone for Client {
    fn clone(&self) -> Self {
        Self::new(Arc::clone(&self.mailbox), self.close_timeout)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.mailbox.remove_handle();
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}
