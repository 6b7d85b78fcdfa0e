//! One socket: a task that connects, then reads and writes until it ends or is aborted.
//!
//! It feeds what it reads to the session itself and writes the frames the session hands
//! its writer slot (see `shared`); the driver spawns it and ends it with `abort`, which
//! drops the TCP stream at once. Everything it feeds carries its `ConnId`, so input that
//! races with an abort is recognised as stale by the session.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{FutureExt, SinkExt, StreamExt};
use resilient_ws_core::{ConnId, Disconnect, OpenRequest, Payload, SocketEvent};
use rustls::ClientConfig;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tracing::Instrument;

use crate::handshake::{Handshake, Stream, Target};
use crate::request::{AttemptInfo, ConnectRequest, RequestProvider};
use crate::shared::Shared;

/// Messages fed to the session under one lock at most, and their bytes: batching spares
/// a lock and a wake-up of the application per message, the bounds keep the batch small.
const MAX_FEED_MESSAGES: usize = 32;
const MAX_FEED_BYTES: usize = 64 * 1024;

/// Room for outbound frames kept between bursts, at most.
const KEEP_WHILE_IDLE: usize = 32;

/// How long to wait for our reply to a server's close frame to go out.
const CLOSE_REPLY_GRACE: Duration = Duration::from_millis(250);

/// What every socket of a client shares.
pub(crate) struct SocketSettings {
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) protocols: Vec<String>,
    pub(crate) provider: Option<RequestProvider>,
    pub(crate) websocket: WebSocketConfig,
    pub(crate) tls: Arc<ClientConfig>,
}

/// A running socket task.
pub(crate) struct SocketTask {
    pub(crate) conn: ConnId,
    handle: JoinHandle<()>,
}

impl SocketTask {
    pub(crate) fn spawn(
        open: OpenRequest,
        settings: Arc<SocketSettings>,
        shared: Arc<Shared>,
        written: Arc<AtomicU64>,
    ) -> Self {
        let conn = open.conn;
        let span = tracing::debug_span!("socket", conn = conn.get(), attempt = open.attempt);
        let task = run(open, settings, shared, written).instrument(span);
        Self {
            conn,
            handle: tokio::spawn(task),
        }
    }

    /// Ends the task and waits until its socket is dropped, so the next socket opens
    /// only after this one is gone.
    pub(crate) async fn abort(self) {
        self.handle.abort();
        let _ = self.handle.await;
    }
}

async fn run(
    open: OpenRequest,
    settings: Arc<SocketSettings>,
    shared: Arc<Shared>,
    written: Arc<AtomicU64>,
) {
    let conn = open.conn;
    // Boxed: the handshake's state is large and needed only until the socket is open,
    // while the task's own allocation lasts as long as the connection.
    let stream = match Box::pin(connect(&open, &settings, &shared, written)).await {
        Ok(stream) => stream,
        Err(disconnect) => {
            tracing::debug!(error = %disconnect, "attempt failed");
            let _ = shared.feed(conn, [SocketEvent::Ended(disconnect)]);
            return;
        }
    };
    drop(open);
    tracing::debug!("handshake complete");
    let (mut sink, stream) = stream.split();
    let reader = read_until_end(conn, stream, &shared);
    tokio::pin!(reader);
    let ended = tokio::select! {
        disconnect = &mut reader => disconnect,
        result = write_until_error(conn, &mut sink, &shared) => match result {
            Ok(()) => return, // the session released this socket
            // A write fails when the server closed or the connection broke under it.
            // What the reader has (the server's close frame and code, above all) says
            // what happened; our own write racing a close is never a protocol error.
            Err(error) => tokio::time::timeout(CLOSE_REPLY_GRACE, &mut reader)
                .await
                .unwrap_or_else(|_| write_error(error)),
        },
    };
    if let Disconnect::Protocol { code, .. } = &ended {
        // Tell the server why, as RFC 6455 (7.1.7) asks; best effort, briefly.
        let frame = CloseFrame {
            code: (*code).into(),
            reason: "".into(),
        };
        let _ =
            tokio::time::timeout(CLOSE_REPLY_GRACE, sink.send(Message::Close(Some(frame)))).await;
    }
    tracing::debug!(reason = %ended, "socket ended");
    let _ = shared.feed(conn, [SocketEvent::Ended(ended)]);
}

/// Builds the attempt's handshake and performs it: the provider's (or the configured)
/// URL and headers, plus the resume parameter or header, plus subprotocols.
async fn connect(
    open: &OpenRequest,
    settings: &SocketSettings,
    shared: &Shared,
    written: Arc<AtomicU64>,
) -> Result<Stream, Disconnect> {
    let provided = match &settings.provider {
        Some(provider) => {
            let info = AttemptInfo {
                conn: open.conn,
                attempt: open.attempt,
                cursor: open.cursor,
            };
            let provided = provider(info).await.map_err(|error| Disconnect::Abnormal {
                detail: format!("request provider failed: {error}"),
            })?;
            // The session applies the resume parameter, as it did to its own URL.
            let url = shared
                .lock()
                .session
                .resume_url(open.conn, &provided.url)
                .ok_or_else(|| Disconnect::Abnormal {
                    detail: "the session released this attempt".into(),
                })?;
            ConnectRequest {
                url,
                headers: provided.headers,
            }
        }
        None => ConnectRequest::new(open.url.clone()),
    };
    let target = Target::parse(&provided.url).map_err(|error| Disconnect::Abnormal {
        detail: format!("invalid request URL: {error}"),
    })?;
    let mut headers = Vec::new();
    for (name, value) in settings
        .headers
        .iter()
        .chain(&provided.headers)
        .chain(&open.resume_header)
    {
        // Parsing as HTTP rejects line breaks, so no header can smuggle another.
        if HeaderName::from_bytes(name.as_bytes()).is_err() || HeaderValue::from_str(value).is_err()
        {
            return Err(Disconnect::Abnormal {
                detail: format!("invalid request header {name:?}"),
            });
        }
        headers.push((name.as_str(), value.as_str()));
    }
    Handshake {
        target,
        headers,
        protocols: &settings.protocols,
        websocket: settings.websocket,
        tls: Arc::clone(&settings.tls),
        written,
    }
    .open()
    .await
}

/// Reports the socket open, then reads until it ends, feeding the session each burst of
/// frames under one lock (the first burst along with `Opened`: what arrived with the
/// handshake). While the application's queue is full it takes no more messages (see
/// `next_when_room`), which pushes back into TCP: a slow consumer keeps memory flat.
async fn read_until_end(
    conn: ConnId,
    mut stream: SplitStream<Stream>,
    shared: &Shared,
) -> Disconnect {
    let mut batch = vec![SocketEvent::Opened];
    let mut item = stream.next().now_or_never().flatten();
    loop {
        let mut bytes = 0;
        while let Some(next) = item.take() {
            let event = match next {
                // A copy of exactly the message: its bytes share tungstenite's read buffer,
                // so taking them over would copy anyway, or keep the whole buffer alive
                // with the message; and tungstenite has validated the UTF-8 already.
                Ok(Message::Text(text)) => {
                    SocketEvent::Message(Payload::Text(text.as_str().into()))
                }
                Ok(Message::Binary(bytes)) => SocketEvent::Message(Payload::Binary(bytes.to_vec())),
                Ok(Message::Ping(_) | Message::Pong(_)) => SocketEvent::Pong,
                Ok(Message::Frame(_)) => SocketEvent::Pong,
                Ok(Message::Close(frame)) => {
                    let _ = shared.feed(conn, batch.drain(..));
                    // Polling once more sends tungstenite's close reply.
                    let _ = tokio::time::timeout(CLOSE_REPLY_GRACE, stream.next()).await;
                    return closed_by_server(frame);
                }
                Err(error) => {
                    let _ = shared.feed(conn, batch.drain(..));
                    return stream_error(error);
                }
            };
            if let SocketEvent::Message(payload) = &event {
                bytes += payload.len();
            }
            batch.push(event);
            if batch.len() < MAX_FEED_MESSAGES && bytes < MAX_FEED_BYTES {
                // Whatever is already decoded comes along; nothing waits for more.
                item = stream.next().now_or_never().flatten();
            }
        }
        item = if shared.feed(conn, batch.drain(..)) {
            stream.next().await
        } else {
            next_when_room(conn, &mut stream, shared).await
        };
        if item.is_none() {
            break;
        }
    }
    Disconnect::Abnormal {
        detail: "connection closed without a close frame".into(),
    }
}

/// The application is behind, so no message may be read: waits for room, reading only
/// the control frames in front of the next message (they prove the connection alive).
/// A message that arrives meanwhile is held, and the session told that data waits, so
/// the heartbeat does not mistake the application's slowness for a dead connection; the
/// held message goes on once there is room. A connection that sends nothing while the
/// application is behind is judged by the heartbeat as usual.
async fn next_when_room(
    conn: ConnId,
    stream: &mut SplitStream<Stream>,
    shared: &Shared,
) -> Option<Result<Message, tungstenite::Error>> {
    loop {
        let next = tokio::select! {
            biased;
            () = std::future::poll_fn(|cx| shared.poll_room(cx)) => return stream.next().await,
            next = stream.next() => next,
        };
        match next {
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                let _ = shared.feed(conn, [SocketEvent::Pong]);
            }
            Some(Ok(Message::Text(_) | Message::Binary(_) | Message::Frame(_))) => {
                let _ = shared.feed(conn, [SocketEvent::Backlog(true)]);
                std::future::poll_fn(|cx| shared.poll_room(cx)).await;
                let _ = shared.feed(conn, [SocketEvent::Backlog(false)]);
                return next;
            }
            // A close, an error or the end: the caller reports them at once.
            other => return other,
        }
    }
}

/// Writes the frames the session hands this socket: takes everything waiting, feeds it,
/// then flushes once. Returns `Ok` once the session has released the socket.
async fn write_until_error(
    conn: ConnId,
    sink: &mut SplitSink<Stream, Message>,
    shared: &Shared,
) -> Result<(), tungstenite::Error> {
    let mut frames = VecDeque::new();
    loop {
        if std::future::poll_fn(|cx| shared.poll_frames(conn, &mut frames, cx))
            .await
            .is_none()
        {
            return Ok(());
        }
        for frame in frames.drain(..) {
            sink.feed(frame).await?;
        }
        sink.flush().await?;
        if frames.capacity() > KEEP_WHILE_IDLE {
            // The burst is over: an idle connection keeps no room for the next one.
            frames = VecDeque::new();
        }
    }
}

/// A write failed and the reader could not say why in time.
fn write_error(error: tungstenite::Error) -> Disconnect {
    use tungstenite::Error;
    use tungstenite::error::ProtocolError;
    match error {
        Error::Protocol(ProtocolError::SendAfterClosing) | Error::AlreadyClosed => {
            Disconnect::Abnormal {
                detail: "the connection closed while sending".into(),
            }
        }
        other => stream_error(other),
    }
}

fn closed_by_server(frame: Option<CloseFrame>) -> Disconnect {
    match frame {
        Some(frame) => Disconnect::Closed {
            code: frame.code.into(),
            reason: frame.reason.to_string(),
        },
        None => Disconnect::Closed {
            code: 1005,
            reason: String::new(),
        },
    }
}

/// An error on an open connection.
fn stream_error(error: tungstenite::Error) -> Disconnect {
    use tungstenite::Error;
    use tungstenite::error::ProtocolError;
    match error {
        Error::Capacity(error) => Disconnect::Protocol {
            code: 1009,
            detail: error.to_string(),
        },
        // A reset is the network's doing, not the server breaking the protocol.
        Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => Disconnect::Abnormal {
            detail: "connection reset without a close frame".into(),
        },
        Error::Protocol(error) => Disconnect::Protocol {
            code: 1002,
            detail: error.to_string(),
        },
        Error::Utf8(detail) => Disconnect::Protocol {
            code: 1007,
            detail: format!("invalid UTF-8 in a text message: {detail}"),
        },
        other => Disconnect::Abnormal {
            detail: other.to_string(),
        },
    }
}
