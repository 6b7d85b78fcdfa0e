//! One socket: a task that connects, then reads and writes until it ends or is aborted.
//!
//! The driver talks to it through channels and ends it with `abort`, which drops the
//! TCP stream at once. Every report it sends carries its `ConnId`, so reports that race
//! with an abort are recognised as stale by the session.

use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{FutureExt, SinkExt, StreamExt};
use resilient_ws_core::{ConnId, Disconnect, OpenRequest, Payload, ResumeMode, SocketEvent};
use rustls::ClientConfig;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Bytes, Message};
use tracing::Instrument;

use crate::handshake::{Handshake, Stream, Target};
use crate::request::{AttemptInfo, ConnectRequest, RequestProvider};
use crate::write_window::WriteWindow;

/// Frames written per flush at most, so one burst cannot starve the reader.
const MAX_BATCH: usize = 256;

/// Messages handed to the driver in one report at most, and their bytes: batching spares a
/// task wake-up per message, the bounds keep what waits in the channel small.
const MAX_REPORT_MESSAGES: usize = 32;
const MAX_REPORT_BYTES: usize = 64 * 1024;

/// What a socket tells the driver: its id and one or more events, in order.
pub(crate) type Report = (ConnId, Vec<SocketEvent>);

/// How long to wait for our reply to a server's close frame to go out.
const CLOSE_REPLY_GRACE: Duration = Duration::from_millis(250);

/// What every socket of a client shares.
pub(crate) struct SocketSettings {
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) protocols: Vec<String>,
    pub(crate) provider: Option<RequestProvider>,
    pub(crate) resume: ResumeMode,
    pub(crate) websocket: WebSocketConfig,
    pub(crate) tls: Arc<ClientConfig>,
}

/// A frame for the writer.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// An application message from the queue; counted against the write window.
    Queued(Payload),
    /// A message the session made itself (resume request, heartbeat probe).
    Control(Payload),
    Ping,
    Close {
        code: u16,
        reason: String,
    },
}

/// A running socket task.
pub(crate) struct SocketTask {
    pub(crate) conn: ConnId,
    outbound: mpsc::UnboundedSender<Outbound>,
    handle: JoinHandle<()>,
}

impl SocketTask {
    pub(crate) fn spawn(
        open: OpenRequest,
        settings: Arc<SocketSettings>,
        inbound: mpsc::Sender<Report>,
        window: Arc<WriteWindow>,
    ) -> Self {
        let conn = open.conn;
        let (outbound, outbound_rx) = mpsc::unbounded_channel();
        let span = tracing::debug_span!("socket", conn = conn.get(), attempt = open.attempt);
        let task = run(open, settings, inbound, outbound_rx, window).instrument(span);
        Self {
            conn,
            outbound,
            handle: tokio::spawn(task),
        }
    }

    /// Hands a frame to the writer; false when the task has already ended.
    pub(crate) fn send(&self, frame: Outbound) -> bool {
        self.outbound.send(frame).is_ok()
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
    inbound: mpsc::Sender<Report>,
    outbound: mpsc::UnboundedReceiver<Outbound>,
    window: Arc<WriteWindow>,
) {
    let conn = open.conn;
    let stream = match connect(&open, &settings).await {
        Ok(stream) => stream,
        Err(disconnect) => {
            tracing::debug!(error = %disconnect, "attempt failed");
            let _ = inbound
                .send((conn, vec![SocketEvent::Ended(disconnect)]))
                .await;
            return;
        }
    };
    tracing::debug!("handshake complete");
    if inbound
        .send((conn, vec![SocketEvent::Opened]))
        .await
        .is_err()
    {
        return;
    }
    let (mut sink, stream) = stream.split();
    let ended = tokio::select! {
        disconnect = read_until_end(conn, stream, &inbound) => disconnect,
        result = write_until_error(&mut sink, outbound, &window) => match result {
            Ok(()) => return, // the driver is gone
            Err(error) => stream_error(error),
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
    let _ = inbound.send((conn, vec![SocketEvent::Ended(ended)])).await;
}

/// Builds the attempt's handshake and performs it: the provider's (or the configured)
/// URL and headers, plus the resume parameter or header, plus subprotocols.
async fn connect(open: &OpenRequest, settings: &SocketSettings) -> Result<Stream, Disconnect> {
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
            ConnectRequest {
                url: settings.resume.apply_to_url(&provided.url, open.cursor),
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
    }
    .open()
    .await
}

/// Reads until the socket ends, forwarding every frame to the driver: each report carries
/// what has arrived so far, up to a bound. A full channel stops the reading, which pushes
/// back into TCP: a slow consumer keeps memory flat.
async fn read_until_end(
    conn: ConnId,
    mut stream: SplitStream<Stream>,
    inbound: &mpsc::Sender<Report>,
) -> Disconnect {
    while let Some(first) = stream.next().await {
        let mut batch = Vec::new();
        let mut bytes = 0;
        let mut item = Some(first);
        while let Some(next) = item.take() {
            let event = match next {
                Ok(Message::Text(text)) => SocketEvent::Message(Payload::Text(into_string(text))),
                Ok(Message::Binary(bytes)) => SocketEvent::Message(Payload::Binary(bytes.into())),
                Ok(Message::Ping(_) | Message::Pong(_)) => SocketEvent::Pong,
                Ok(Message::Frame(_)) => SocketEvent::Pong,
                Ok(Message::Close(frame)) => {
                    let _ = inbound.send((conn, batch)).await;
                    // Polling once more sends tungstenite's close reply.
                    let _ = tokio::time::timeout(CLOSE_REPLY_GRACE, stream.next()).await;
                    return closed_by_server(frame);
                }
                Err(error) => {
                    let _ = inbound.send((conn, batch)).await;
                    return stream_error(error);
                }
            };
            if let SocketEvent::Message(payload) = &event {
                bytes += payload.len();
            }
            batch.push(event);
            if batch.len() < MAX_REPORT_MESSAGES && bytes < MAX_REPORT_BYTES {
                // Whatever is already decoded comes along; nothing waits for more.
                item = stream.next().now_or_never().flatten();
            }
        }
        if inbound.send((conn, batch)).await.is_err() {
            break;
        }
    }
    Disconnect::Abnormal {
        detail: "connection closed without a close frame".into(),
    }
}

/// Writes frames as they come: feeds everything waiting, then flushes once.
async fn write_until_error(
    sink: &mut SplitSink<Stream, Message>,
    mut outbound: mpsc::UnboundedReceiver<Outbound>,
    window: &WriteWindow,
) -> Result<(), tungstenite::Error> {
    while let Some(first) = outbound.recv().await {
        let mut queued = 0;
        let mut next = Some(first);
        let mut batch = 0;
        while let Some(frame) = next {
            if matches!(frame, Outbound::Queued(_)) {
                queued += 1;
            }
            sink.feed(into_message(frame)).await?;
            batch += 1;
            next = if batch < MAX_BATCH {
                outbound.try_recv().ok()
            } else {
                None
            };
        }
        sink.flush().await?;
        window.release(queued);
    }
    Ok(())
}

fn into_message(frame: Outbound) -> Message {
    match frame {
        Outbound::Queued(payload) | Outbound::Control(payload) => match payload {
            Payload::Text(text) => Message::Text(text.into()),
            Payload::Binary(bytes) => Message::Binary(bytes.into()),
        },
        Outbound::Ping => Message::Ping(Bytes::new()),
        Outbound::Close { code, reason } => Message::Close(Some(CloseFrame {
            code: code.into(),
            reason: reason.into(),
        })),
    }
}

/// Takes the text without copying when tungstenite holds the only reference.
fn into_string(text: tungstenite::Utf8Bytes) -> String {
    let bytes = Vec::from(Bytes::from(text));
    String::from_utf8(bytes).unwrap_or_else(|error| {
        // Unreachable in practice: tungstenite validated the UTF-8 already.
        String::from_utf8_lossy(error.as_bytes()).into_owned()
    })
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
