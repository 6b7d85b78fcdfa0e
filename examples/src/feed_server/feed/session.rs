//! One WebSocket feed connection after its handshake: streams the feed from its first sequence
//! number, answers client messages, and carries out faults and server-wide commands.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::Instant;
use tracing::debug;

use super::ConnectionCommand;
use super::faults::FaultAction;
use crate::feed_server::muzzle::Muzzle;
use crate::feed_server::received::{ClientMessage, ClientPayload};
use crate::feed_server::shared::ServerShared;
use crate::feed_server::stats::StatsCounters;

type FeedSocket = WebSocket;

/// Messages written before one flush while catching up; bounds the time between reads.
const MAX_BATCH: u64 = 64;
/// A client that never answers our close frame is dropped after this.
const CLOSE_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
const CLOSE_REASON: &str = "feed-server fault";
const APP_PONG: &str = r#"{"type":"pong"}"#;

/// How the feed part of a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Drop,
    Close(u16),
    Silence,
    PeerGone,
}

impl From<FaultAction> for Ending {
    fn from(action: FaultAction) -> Self {
        match action {
            FaultAction::Drop => Self::Drop,
            FaultAction::Close(code) => Self::Close(code),
            FaultAction::Silence => Self::Silence,
        }
    }
}

enum Step {
    Command(Result<ConnectionCommand, RecvError>),
    Inbound(Option<Result<Message, axum::Error>>),
    Send,
}

pub(crate) struct FeedSession {
    connection: u64,
    next_seq: u64,
    /// Feed messages sent on this connection; fault thresholds count these.
    sent: u64,
    shared: Arc<ServerShared>,
}

impl FeedSession {
    pub(crate) fn new(connection: u64, first_seq: u64, shared: Arc<ServerShared>) -> Self {
        Self {
            connection,
            next_seq: first_seq,
            sent: 0,
            shared,
        }
    }

    /// Runs until the connection ends; the socket is dropped when this returns.
    pub(crate) async fn run(
        mut self,
        mut socket: FeedSocket,
        mut commands: broadcast::Receiver<ConnectionCommand>,
        muzzle: Muzzle,
    ) {
        let ending = self.stream_feed(&mut socket, &mut commands).await;
        debug!(
            connection = self.connection,
            sent = self.sent,
            ?ending,
            "feed connection ending"
        );
        if ending == Ending::Silence {
            stay_silent(socket, &muzzle, &mut commands).await;
            return;
        }
        // Unsubscribe first: a closing connection is no longer "current" for server-wide commands.
        drop(commands);
        match ending {
            Ending::Drop => drop_abruptly(socket),
            Ending::Close(code) => close_with_code(socket, code).await,
            Ending::Silence | Ending::PeerGone => {}
        }
    }

    async fn stream_feed(
        &mut self,
        socket: &mut FeedSocket,
        commands: &mut broadcast::Receiver<ConnectionCommand>,
    ) -> Ending {
        loop {
            // Read every round, so faults changed at runtime apply to this connection at once.
            let faults = self.shared.faults();
            if let Some(action) = faults.action_due(self.sent) {
                return action.into();
            }
            let batch_limit = faults
                .messages_before_fault(self.sent)
                .map_or(MAX_BATCH, |left| left.min(MAX_BATCH));
            let due = self.shared.feed.available_at(self.next_seq);
            let step = tokio::select! {
                biased;
                command = commands.recv() => Step::Command(command),
                inbound = socket.next() => Step::Inbound(inbound),
                () = sleep_until_due(due) => Step::Send,
            };
            let ending = match step {
                Step::Command(command) => command_ending(command),
                Step::Inbound(inbound) => self.handle_inbound(socket, inbound).await,
                Step::Send => {
                    // A client that stops reading blocks the send; commands must still get through.
                    tokio::select! {
                        biased;
                        command = commands.recv() => command_ending(command),
                        sent = self.send_batch(socket, batch_limit) => {
                            sent.err().map(|_| Ending::PeerGone)
                        }
                    }
                }
            };
            if let Some(ending) = ending {
                return ending;
            }
        }
    }

    async fn handle_inbound(
        &mut self,
        socket: &mut FeedSocket,
        inbound: Option<Result<Message, axum::Error>>,
    ) -> Option<Ending> {
        let message = match inbound {
            None => return Some(Ending::PeerGone),
            Some(Err(error)) => {
                debug!(connection = self.connection, %error, "feed connection read failed");
                return Some(Ending::PeerGone);
            }
            Some(Ok(message)) => message,
        };
        // Protocol pings are answered by tungstenite itself on the next read or write.
        let payload = match message {
            Message::Text(text) => ClientPayload::Text(text.as_str().to_owned()),
            Message::Binary(bytes) => ClientPayload::Binary(bytes.to_vec()),
            Message::Ping(_) | Message::Pong(_) | Message::Close(_) => {
                return None;
            }
        };
        let answer_with_pong = matches!(&payload, ClientPayload::Text(text) if is_app_ping(text));
        self.record(payload);
        if answer_with_pong && socket.send(Message::text(APP_PONG)).await.is_err() {
            return Some(Ending::PeerGone);
        }
        None
    }

    fn record(&self, payload: ClientPayload) {
        StatsCounters::count(&self.shared.stats.client_messages_received, 1);
        self.shared.received.record(ClientMessage {
            connection: self.connection,
            received_ms: self.shared.feed.millis_since_start(),
            payload,
        });
    }

    /// Sends what is available, up to `limit` messages, then flushes. Progress is kept in `self`
    /// as it goes, so a cancelled batch still counts what was handed to the socket.
    async fn send_batch(&mut self, socket: &mut FeedSocket, limit: u64) -> Result<(), axum::Error> {
        let feed = &self.shared.feed;
        let head = feed.available_head(Instant::now());
        let available = head.saturating_sub(self.next_seq.saturating_sub(1));
        for _ in 0..available.min(limit) {
            socket
                .feed(Message::text(feed.message(self.next_seq)))
                .await?;
            feed.note_sent(self.next_seq);
            StatsCounters::count(&self.shared.stats.messages_sent, 1);
            self.next_seq += 1;
            self.sent += 1;
        }
        socket.flush().await
    }
}

fn command_ending(command: Result<ConnectionCommand, RecvError>) -> Option<Ending> {
    match command {
        Ok(ConnectionCommand::Drop) | Err(RecvError::Closed) => Some(Ending::Drop),
        Ok(ConnectionCommand::Silence) => Some(Ending::Silence),
        Ok(ConnectionCommand::Close(code)) => Some(Ending::Close(code)),
        Err(RecvError::Lagged(_)) => None,
    }
}

async fn sleep_until_due(due: Option<Instant>) {
    match due {
        Some(instant) => tokio::time::sleep_until(instant).await,
        // Past the end of the feed: nothing more will ever be due.
        None => std::future::pending().await,
    }
}

/// True for the application-level heartbeat `{"type":"ping"}` (browsers cannot send ping frames).
fn is_app_ping(text: &str) -> bool {
    #[derive(Deserialize)]
    struct Typed {
        #[serde(rename = "type")]
        kind: String,
    }
    text.contains("ping")
        && serde_json::from_str::<Typed>(text).is_ok_and(|typed| typed.kind == "ping")
}

/// Ends the connection without a close frame, as a crashed server or a broken network would:
/// dropping the socket closes the TCP connection.
fn drop_abruptly(socket: FeedSocket) {
    drop(socket);
}

async fn close_with_code(mut socket: FeedSocket, code: u16) {
    let frame = CloseFrame {
        code,
        reason: CLOSE_REASON.into(),
    };
    let _ = tokio::time::timeout(CLOSE_HANDSHAKE_TIMEOUT, async {
        if socket.send(Message::Close(Some(frame))).await.is_ok() {
            // Wait for the client's close frame and the end of the stream.
            while let Some(Ok(_)) = socket.next().await {}
        }
    })
    .await;
}

/// Neither sends nor answers anything, like a peer that vanished without closing: the client
/// sees an open socket that never responds. The muzzled stream discards inbound bytes unparsed
/// and reports only their end, so reading it notices when the client gives up and the live
/// count stays exact; whatever tungstenite answers goes nowhere.
async fn stay_silent(
    mut socket: FeedSocket,
    muzzle: &Muzzle,
    commands: &mut broadcast::Receiver<ConnectionCommand>,
) {
    muzzle.engage();
    loop {
        tokio::select! {
            command = commands.recv() => {
                if matches!(command, Ok(ConnectionCommand::Drop) | Err(RecvError::Closed)) {
                    return;
                }
            }
            // Only frames read before the muzzle was engaged can still arrive: ignored.
            inbound = socket.next() => {
                if !matches!(inbound, Some(Ok(_))) {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_the_app_ping() {
        assert!(is_app_ping(r#"{"type":"ping"}"#));
        assert!(is_app_ping(r#"{ "type" : "ping", "id": 3 }"#));
        assert!(!is_app_ping(r#"{"type":"pong"}"#));
        assert!(!is_app_ping("ping"));
    }
}
