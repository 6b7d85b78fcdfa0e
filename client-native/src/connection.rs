//! One socket, from the session's `Open` until it ends or the session drops it: the
//! request provider, the handshake, reading and writing the open WebSocket, and the brief
//! goodbyes (our close reply, the close frame for a protocol error) before its end is
//! reported. Polled by the driver, which owns it; dropping it drops the TCP stream at once.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use resilient_ws_core::{ConnId, Disconnect, OpenRequest, Payload, Unsent};
use tokio::time::Sleep;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::handshake::Stream;
use crate::request::{ConnectRequest, ProviderFuture};
use crate::socket::{
    SocketSettings, closed_by_server, connect, provide, stream_error, write_error,
};
use crate::text::Payloads;
use crate::writer::Writer;

/// How long our goodbyes may take: the reply to a server's close frame, the close frame
/// for a protocol error, and the reader's chance to explain a failed write.
const GOODBYE_GRACE: Duration = Duration::from_millis(250);

/// Frames written before a flush, at most: feed + flush batching, bounded so that a long
/// queue does not hold the driver's other work up.
const MAX_WRITES_PER_FLUSH: usize = 256;

type Handshaking = Pin<Box<dyn Future<Output = Result<Stream, Disconnect>> + Send>>;

/// What one read of the open socket gives.
type ReadResult = Option<Result<Message, tungstenite::Error>>;

/// What the socket reports to the session.
#[derive(Debug)]
pub(crate) enum Input {
    Opened,
    Message(Payload),
    /// A control frame: proof of life.
    Pong,
    /// Whether a message waits that the application has no room for.
    Backlog(bool),
    Ended(Disconnect),
}

/// One socket of the session.
pub(crate) struct Connection {
    pub(crate) conn: ConnId,
    phase: Phase,
    writer: Writer,
    /// Set for the handshake: the resume header the session asked for.
    resume_header: Option<(String, String)>,
    settings: Arc<SocketSettings>,
    span: tracing::Span,
}

enum Phase {
    /// Waiting for the request provider's URL and headers.
    Providing(ProviderFuture),
    /// The handshake, boxed: its state is large and needed only until the socket opens.
    Handshaking(Handshaking),
    Open(Box<Open>),
    /// The socket ended; the goodbye goes out (until the grace passes) before the end is
    /// reported.
    Ending {
        ws: Box<Stream>,
        reason: Option<Disconnect>,
        goodbye: Goodbye,
        grace: Pin<Box<Sleep>>,
    },
    /// Reported; nothing more comes.
    Done,
}

/// What goes out before an end is reported.
enum Goodbye {
    /// Our close frame, for a protocol error; taken once queued, then flushed.
    Close(Option<CloseFrame>),
    /// Our reply to the server's close frame, which tungstenite queued as it read it.
    Reply,
}

struct Open {
    ws: Stream,
    opened_reported: bool,
    /// A message read while the application had no room for it: reading stops until it
    /// has gone on.
    held: Option<Message>,
    /// Whether `Backlog(true)` was reported for `held`.
    backlog: bool,
    /// What the message path read that was not a message: `poll_read` reports it.
    unread: Option<ReadResult>,
    payloads: Payloads,
    /// Frames were written and not flushed yet.
    unflushed: bool,
    /// A write failed: the reader has until the grace passes to say why (the server's
    /// close frame, above all).
    write_failed: Option<(tungstenite::Error, Pin<Box<Sleep>>)>,
}

impl Connection {
    /// Starts the socket the session asked for with `open`; `url` is the session's URL
    /// with the resume parameter.
    pub(crate) fn start(open: OpenRequest, settings: Arc<SocketSettings>) -> Self {
        let span = tracing::debug_span!("socket", conn = open.conn.get(), attempt = open.attempt);
        let writer = Writer::new();
        let phase = match provide(&open, &settings) {
            Some(provided) => Phase::Providing(provided),
            None => Phase::Handshaking(Box::pin(connect(
                ConnectRequest::new(open.url),
                open.resume_header.clone(),
                Arc::clone(&settings),
                writer.written_counter(),
            ))),
        };
        Self {
            conn: open.conn,
            phase,
            writer,
            resume_header: open.resume_header,
            settings,
            span,
        }
    }

    pub(crate) fn writer(&mut self) -> &mut Writer {
        &mut self.writer
    }

    /// The next thing the socket reports. A message is taken only while `room`; without
    /// it the socket reads just the control frames in front of the next message (they
    /// prove the connection alive) and holds that message, reporting a backlog, so the
    /// heartbeat does not mistake the application's slowness for a dead connection.
    /// `resume_url` adds the session's resume parameter to a provided URL (`None`: the
    /// session released this attempt). The open socket's reads register `reader`;
    /// everything else (provider, handshake, timers, goodbyes) registers `cx`.
    pub(crate) fn poll_input(
        &mut self,
        cx: &mut Context<'_>,
        reader: &mut Context<'_>,
        room: bool,
        mut resume_url: impl FnMut(&str) -> Option<String>,
    ) -> Poll<Input> {
        // The message path: an open socket reading on, without the span's bookkeeping.
        if let Phase::Open(open) = &mut self.phase {
            if open.opened_reported {
                match open.poll_read(cx, reader, room) {
                    Poll::Ready(Read::Input(input)) => return Poll::Ready(input),
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Read::Closed(reason, close)) => self.say_goodbye(reason, close),
                }
            }
        }
        let span = self.span.clone();
        let _entered = span.enter();
        loop {
            match &mut self.phase {
                Phase::Providing(provided) => {
                    let result = ready!(provided.as_mut().poll(cx));
                    let request = match result {
                        Ok(request) => request,
                        Err(error) => {
                            return self.end(abnormal(format!("request provider failed: {error}")));
                        }
                    };
                    let Some(url) = resume_url(&request.url) else {
                        return self.end(abnormal("the session released this attempt".into()));
                    };
                    self.phase = Phase::Handshaking(Box::pin(connect(
                        ConnectRequest {
                            url,
                            headers: request.headers,
                        },
                        self.resume_header.take(),
                        Arc::clone(&self.settings),
                        self.writer.written_counter(),
                    )));
                }
                Phase::Handshaking(handshake) => match ready!(handshake.as_mut().poll(cx)) {
                    Ok(ws) => {
                        tracing::debug!("handshake complete");
                        self.phase = Phase::Open(Box::new(Open {
                            ws,
                            opened_reported: false,
                            held: None,
                            backlog: false,
                            unread: None,
                            payloads: Payloads::default(),
                            unflushed: false,
                            write_failed: None,
                        }));
                    }
                    Err(disconnect) => {
                        tracing::debug!(error = %disconnect, "attempt failed");
                        return self.end(disconnect);
                    }
                },
                Phase::Open(open) => {
                    if !open.opened_reported {
                        open.opened_reported = true;
                        return Poll::Ready(Input::Opened);
                    }
                    match open.poll_read(cx, reader, room) {
                        Poll::Ready(Read::Input(input)) => return Poll::Ready(input),
                        Poll::Ready(Read::Closed(reason, close)) => self.say_goodbye(reason, close),
                        Poll::Pending => return Poll::Pending,
                    }
                }
                Phase::Ending {
                    ws,
                    reason,
                    goodbye,
                    grace,
                } => {
                    let finished = grace.as_mut().poll(cx).is_ready()
                        || match goodbye {
                            Goodbye::Close(close) => poll_send_close(ws, close, cx).is_ready(),
                            // Polling the stream sends tungstenite's reply and reads to the end.
                            Goodbye::Reply => {
                                matches!(ws.poll_next_unpin(cx), Poll::Ready(None | Some(Err(_))))
                            }
                        };
                    if !finished {
                        return Poll::Pending;
                    }
                    let reason = reason
                        .take()
                        .unwrap_or_else(|| abnormal("socket ended".into()));
                    return self.end(reason);
                }
                Phase::Done => return Poll::Pending,
            }
        }
    }

    /// The per-message path: the open socket's next message, for an application with
    /// room for it. `Ready(None)` when the socket has anything else to say (or is not
    /// open and reading): [`poll_input`](Self::poll_input) says it.
    #[inline]
    pub(crate) fn poll_message(&mut self, reader: &mut Context<'_>) -> Poll<Option<Payload>> {
        let Phase::Open(open) = &mut self.phase else {
            return Poll::Ready(None);
        };
        if !open.opened_reported
            || open.held.is_some()
            || open.write_failed.is_some()
            || open.unread.is_some()
        {
            return Poll::Ready(None);
        }
        let Poll::Ready(read) = open.ws.poll_next_unpin(reader) else {
            open.payloads.end_batch();
            return Poll::Pending;
        };
        match read {
            Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => {
                Poll::Ready(Some(open.payloads.of(message)))
            }
            other => {
                open.unread = Some(other);
                Poll::Ready(None)
            }
        }
    }

    /// Writes the frames waiting, flushing once after a batch.
    pub(crate) fn poll_write(&mut self, cx: &mut Context<'_>) {
        let Phase::Open(open) = &mut self.phase else {
            return;
        };
        if open.write_failed.is_some() {
            return;
        }
        if let Err(error) = open.write(&mut self.writer, cx) {
            let _entered = self.span.enter();
            tracing::debug!(%error, "write failed");
            open.write_failed = Some((error, Box::pin(tokio::time::sleep(GOODBYE_GRACE))));
            // The reader's grace is polled on the next read.
            cx.waker().wake_by_ref();
        }
    }

    /// Whether the writer has frames it could not write yet.
    pub(crate) fn is_writing(&self) -> bool {
        self.writer.has_waiting()
    }

    /// The socket is gone: the application messages it never wrote, oldest first.
    pub(crate) fn finish(self) -> Vec<Unsent> {
        self.writer.finish()
    }

    fn say_goodbye(&mut self, reason: Disconnect, close: Option<CloseFrame>) {
        let Phase::Open(open) = std::mem::replace(&mut self.phase, Phase::Done) else {
            return;
        };
        self.phase = Phase::Ending {
            ws: Box::new(open.ws),
            reason: Some(reason),
            goodbye: match close {
                Some(frame) => Goodbye::Close(Some(frame)),
                None => Goodbye::Reply,
            },
            grace: Box::pin(tokio::time::sleep(GOODBYE_GRACE)),
        };
    }

    fn end(&mut self, reason: Disconnect) -> Poll<Input> {
        tracing::debug!(reason = %reason, "socket ended");
        self.phase = Phase::Done;
        Poll::Ready(Input::Ended(reason))
    }
}

/// What a read found.
enum Read {
    Input(Input),
    /// The socket is ending for this reason; send this close frame first (or, for
    /// `None`, flush our reply to the server's).
    Closed(Disconnect, Option<CloseFrame>),
}

impl Open {
    fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        reader: &mut Context<'_>,
        room: bool,
    ) -> Poll<Read> {
        if let Some(held) = self.held.take_if(|_| room) {
            if std::mem::take(&mut self.backlog) {
                self.held = Some(held);
                return Poll::Ready(Read::Input(Input::Backlog(false)));
            }
            return Poll::Ready(Read::Input(Input::Message(self.payloads.of(held))));
        }
        if let Some((_, grace)) = &mut self.write_failed {
            if grace.as_mut().poll(cx).is_ready() {
                let (error, _) = self.write_failed.take().expect("checked above");
                return Poll::Ready(Read::Input(Input::Ended(write_error(error))));
            }
        }
        if self.held.is_some() {
            // Waiting for room (the driver is woken when there is).
            return Poll::Pending;
        }
        let read = match self.unread.take() {
            Some(read) => read,
            None => {
                let Poll::Ready(read) = self.ws.poll_next_unpin(reader) else {
                    self.payloads.end_batch();
                    return Poll::Pending;
                };
                read
            }
        };
        let read = match read {
            Some(Ok(message)) => message,
            Some(Err(error)) => {
                let reason = stream_error(error);
                // Tell the server why, as RFC 6455 (7.1.7) asks; best effort, briefly.
                let close = match &reason {
                    Disconnect::Protocol { code, .. } => Some(CloseFrame {
                        code: (*code).into(),
                        reason: "".into(),
                    }),
                    _ => None,
                };
                return match close {
                    Some(close) => Poll::Ready(Read::Closed(reason, Some(close))),
                    None => Poll::Ready(Read::Input(Input::Ended(reason))),
                };
            }
            None => {
                return Poll::Ready(Read::Input(Input::Ended(abnormal(
                    "connection closed without a close frame".into(),
                ))));
            }
        };
        Poll::Ready(Read::Input(match read {
            Message::Text(_) | Message::Binary(_) if room => Input::Message(self.payloads.of(read)),
            Message::Text(_) | Message::Binary(_) => {
                self.held = Some(read);
                self.backlog = true;
                Input::Backlog(true)
            }
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Input::Pong,
            Message::Close(frame) => {
                return Poll::Ready(Read::Closed(closed_by_server(frame), None));
            }
        }))
    }

    /// Feeds the waiting frames (up to a batch), then flushes.
    fn write(
        &mut self,
        writer: &mut Writer,
        cx: &mut Context<'_>,
    ) -> Result<(), tungstenite::Error> {
        for _ in 0..MAX_WRITES_PER_FLUSH {
            if !writer.has_waiting() {
                break;
            }
            if self.ws.poll_ready_unpin(cx)?.is_pending() {
                break;
            }
            let Some(message) = writer.take() else { break };
            self.ws.start_send_unpin(message)?;
            self.unflushed = true;
        }
        if self.unflushed && self.ws.poll_flush_unpin(cx)?.is_ready() {
            self.unflushed = false;
        }
        if writer.has_waiting() && !self.unflushed {
            // The batch bound stopped it, not the socket: more on the next round.
            cx.waker().wake_by_ref();
        }
        Ok(())
    }
}

/// Sends `close` (taken once it is queued) and flushes it.
fn poll_send_close(
    ws: &mut Stream,
    close: &mut Option<CloseFrame>,
    cx: &mut Context<'_>,
) -> Poll<()> {
    if close.is_some() {
        match ws.poll_ready_unpin(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(_)) => return Poll::Ready(()),
            Poll::Ready(Ok(())) => {
                if ws.start_send_unpin(Message::Close(close.take())).is_err() {
                    return Poll::Ready(());
                }
            }
        }
    }
    ws.poll_flush_unpin(cx).map(|_| ())
}

fn abnormal(detail: String) -> Disconnect {
    Disconnect::Abnormal { detail }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("conn", &self.conn)
            .finish_non_exhaustive()
    }
}
