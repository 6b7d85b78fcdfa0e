//! One WebSocket feed connection after its handshake: sends the hub's welcome, then the
//! subscription's messages (replay, then live), answers client messages, pings like the hub,
//! and carries out faults and server-wide commands.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::{FutureExt, SinkExt, StreamExt};
use resilient_ws_server::{
    CLOSE_RESUME_IMPOSSIBLE, CLOSE_SHUTDOWN, CLOSE_SLOW_CONSUMER, Closed, Payload, Record,
    Subscription,
};
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
const FAULT_CLOSE_REASON: &str = "feed-server fault";
const APP_PONG: &str = r#"{"type":"pong"}"#;

/// How the feed part of a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ending {
    Drop,
    Close(u16, String),
    Silence,
    PeerGone,
    /// No frame arrived within the ping timeout: dropped without a close frame, as the hub does.
    Dead,
}

impl From<FaultAction> for Ending {
    fn from(action: FaultAction) -> Self {
        match action {
            FaultAction::Drop => Self::Drop,
            FaultAction::Close(code) => Self::Close(code, FAULT_CLOSE_REASON.into()),
            FaultAction::Silence => Self::Silence,
        }
    }
}

impl From<Closed> for Ending {
    /// The hub's close codes and reasons.
    fn from(why: Closed) -> Self {
        match why {
            Closed::SlowConsumer => Self::Close(CLOSE_SLOW_CONSUMER, "slow consumer".into()),
            _ => Self::Close(CLOSE_SHUTDOWN, "server shutting down".into()),
        }
    }
}

enum Step {
    Command(Result<ConnectionCommand, RecvError>),
    Inbound(Option<Result<Message, axum::Error>>),
    Ping,
    Dead,
    Ready(Result<(), Closed>),
}

pub(crate) struct FeedSession {
    connection: u64,
    subscription: Subscription,
    /// The welcome frame, until it is written (it goes first).
    welcome: Option<Utf8Bytes>,
    /// A message taken from the subscription and not yet handed to the socket: kept here so
    /// a cancelled write loses nothing.
    pending: Option<Record>,
    /// Feed messages sent on this connection; fault thresholds count these (not the welcome).
    sent: u64,
    /// When the client must have sent a frame by (a ping is out), if one is.
    dead_at: Option<Instant>,
    shared: Arc<ServerShared>,
}

impl FeedSession {
    pub(crate) fn new(
        connection: u64,
        subscription: Subscription,
        shared: Arc<ServerShared>,
    ) -> Self {
        let welcome = shared
            .config
            .welcome
            .then(|| Utf8Bytes::from(subscription.welcome().to_json()));
        Self {
            connection,
            subscription,
            welcome,
            pending: None,
            sent: 0,
            dead_at: None,
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
        drop(self.subscription);
        match ending {
            Ending::Drop | Ending::Dead => drop_abruptly(socket),
            Ending::Close(code, reason) => close_with_code(socket, code, reason).await,
            Ending::Silence | Ending::PeerGone => {}
        }
    }

    async fn stream_feed(
        &mut self,
        socket: &mut FeedSocket,
        commands: &mut broadcast::Receiver<ConnectionCommand>,
    ) -> Ending {
        let welcome = self.subscription.welcome();
        if !self.shared.config.welcome && welcome.reason.is_discontinuity() {
            // No welcome to say so: refused as the hub refuses it.
            let reason = format!("resume impossible: {}", welcome.reason.as_str());
            return Ending::Close(CLOSE_RESUME_IMPOSSIBLE, reason);
        }
        let interval = self.shared.config.ping_interval;
        let mut ping_at = (!interval.is_zero()).then(|| Instant::now() + interval);
        loop {
            // Read every round, so faults changed at runtime apply to this connection at once.
            let faults = self.shared.faults();
            if let Some(action) = faults.action_due(self.sent) {
                return action.into();
            }
            let batch_limit = faults
                .messages_before_fault(self.sent)
                .map_or(MAX_BATCH, |left| left.min(MAX_BATCH));
            let step = tokio::select! {
                biased;
                command = commands.recv() => Step::Command(command),
                inbound = socket.next() => Step::Inbound(inbound),
                () = sleep_until(self.dead_at) => Step::Dead,
                () = sleep_until(ping_at) => Step::Ping,
                ready = self.ready() => Step::Ready(ready),
            };
            let ending = match step {
                Step::Command(command) => command_ending(command),
                Step::Inbound(inbound) => {
                    // Any frame proves the client alive.
                    self.dead_at = None;
                    self.handle_inbound(socket, inbound).await
                }
                Step::Dead => Some(Ending::Dead),
                Step::Ping => {
                    ping_at = Some(Instant::now() + interval);
                    if self.dead_at.is_none() {
                        self.dead_at = Some(Instant::now() + self.shared.config.ping_timeout);
                    }
                    tokio::select! {
                        biased;
                        command = commands.recv() => command_ending(command),
                        sent = socket.send(Message::Ping(Default::default())) => {
                            sent.err().map(|_| Ending::PeerGone)
                        }
                    }
                }
                Step::Ready(Err(why)) => Some(why.into()),
                // A client that stops reading blocks the send; commands must still get through.
                Step::Ready(Ok(())) => tokio::select! {
                    biased;
                    command = commands.recv() => command_ending(command),
                    sent = self.send_batch(socket, batch_limit) => {
                        sent.err().map(|_| Ending::PeerGone)
                    }
                },
            };
            if let Some(ending) = ending {
                return ending;
            }
        }
    }
    /// Resolves when there is something to send: the welcome, or a message (taken from the
    /// subscription into `pending`). Cancel-safe.
    async fn ready(&mut self) -> Result<(), Closed> {
        if self.welcome.is_none() && self.pending.is_none() {
            self.pending = Some(self.subscription.next().await?);
        }
        Ok(())
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
            received_ms: self.shared.millis_since_start(),
            payload,
        });
    }

    /// Sends the welcome if it has not gone yet, then what is ready, up to `limit` messages,
    /// then flushes. Progress is kept in `self` as it goes, so a cancelled batch loses nothing
    /// and counts what was handed to the socket.
    async fn send_batch(&mut self, socket: &mut FeedSocket, limit: u64) -> Result<(), axum::Error> {
        if let Some(welcome) = self.welcome.clone() {
            socket.feed(Message::Text(welcome)).await?;
            self.welcome = None;
        }
        for _ in 0..limit {
            let record = match self.pending.take() {
                Some(record) => record,
                // A closed subscription comes back on the next round (it stays closed).
                None => match self.subscription.next().now_or_never() {
                    Some(Ok(record)) => record,
                    _ => break,
                },
            };
            self.pending = Some(record.clone());
            socket.feed(to_message(&record.payload)).await?;
            self.pending = None;
            StatsCounters::count(&self.shared.stats.messages_sent, 1);
            self.sent += 1;
        }
        socket.flush().await
    }
}

/// The WebSocket message of a payload; the bytes are shared, not copied.
fn to_message(payload: &Payload) -> Message {
    match payload {
        Payload::Text(text) => Message::Text(text.clone()),
        Payload::Binary(bytes) => Message::Binary(bytes.clone()),
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

fn command_ending(command: Result<ConnectionCommand, RecvError>) -> Option<Ending> {
    match command {
        Ok(ConnectionCommand::Drop) | Err(RecvError::Closed) => Some(Ending::Drop),
        Ok(ConnectionCommand::Silence) => Some(Ending::Silence),
        Ok(ConnectionCommand::Close(code)) => Some(Ending::Close(code, FAULT_CLOSE_REASON.into())),
        Err(RecvError::Lagged(_)) => None,
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

async fn close_with_code(mut socket: FeedSocket, code: u16, reason: String) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
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
