//! One WebSocket connection: the welcome, replay and live messages out; liveness in; and
//! the close that ends it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::sync::Notify;
use tokio::time::{Instant, sleep, sleep_until, timeout};
use tracing::Instrument;

use crate::codes::{CLOSE_RESUME_IMPOSSIBLE, CLOSE_SHUTDOWN, CLOSE_SLOW_CONSUMER};
use crate::hub::{ConnectionGuard, Hub, Subscription};
use crate::outbox::{Closed, Outbox};
use crate::payload::Record;
use crate::resume::{ResumeReason, ResumeRequest};

type Sink = SplitSink<WebSocket, Message>;
type Stream = SplitStream<WebSocket>;

/// Why a connection ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// The client sent a close frame.
    ClientClosed,
    /// The socket failed or ended without a close frame.
    Gone,
    /// No frame came back within the ping timeout.
    Dead,
    /// The queue overflowed.
    SlowConsumer,
    /// The hub shut down.
    ShutDown,
    /// The cursor cannot be resumed and there is no welcome to say so.
    ResumeImpossible(ResumeReason),
}

impl From<Closed> for End {
    fn from(why: Closed) -> Self {
        match why {
            Closed::SlowConsumer => Self::SlowConsumer,
            Closed::ShutDown => Self::ShutDown,
        }
    }
}

/// Serves one upgraded connection until it ends, in a span of its own.
pub(crate) async fn serve(
    socket: WebSocket,
    hub: Hub,
    request: ResumeRequest,
    guard: ConnectionGuard,
) {
    let span = tracing::info_span!("hub_connection", conn = guard.id);
    run(socket, &hub, &request).instrument(span).await;
    // Counted open until the close is done, so shutdown waits for it.
    drop(guard);
}

async fn run(socket: WebSocket, hub: &Hub, request: &ResumeRequest) {
    let config = hub.config();
    let (mut sink, mut stream) = socket.split();
    let end = match hub.subscribe(request) {
        Err(_) => End::ShutDown,
        Ok(sub) => {
            let welcome = sub.welcome();
            // Server-side values only: the client's query values are never logged.
            tracing::debug!(
                reason = welcome.reason.as_str(),
                from = welcome.from,
                head = welcome.head,
                "subscribed"
            );
            if !config.welcome && welcome.reason.is_discontinuity() {
                End::ResumeImpossible(welcome.reason)
            } else {
                feed(&mut sink, &mut stream, sub, hub).await
            }
        }
    };
    match end {
        End::SlowConsumer => {
            tracing::warn!("evicted: queue full (slow consumer), closing with 1013")
        }
        End::Dead => {
            hub.count_dead();
            tracing::info!("evicted: no frame within the ping timeout");
        }
        End::ResumeImpossible(reason) => {
            tracing::info!(reason = reason.as_str(), "cannot resume, closing with 4001");
        }
        End::ClientClosed | End::Gone | End::ShutDown => tracing::debug!(?end, "ending"),
    }
    finish(sink, stream, end, config.close_timeout).await;
}

/// Runs the connection until something ends it; the subscription ends with it.
async fn feed(sink: &mut Sink, stream: &mut Stream, sub: Subscription, hub: &Hub) -> End {
    let frames = AtomicU64::new(0);
    let ping = Notify::new();
    let outbox = sub.outbox();
    tokio::select! {
        end = read(stream, &frames) => end,
        end = write(sink, sub, &ping, hub) => end,
        end = supervise(&outbox, &frames, &ping, hub) => end,
    }
}

/// Counts inbound frames (any frame proves the client alive) until the client closes.
async fn read(stream: &mut Stream, frames: &AtomicU64) -> End {
    while let Some(message) = stream.next().await {
        match message {
            Ok(Message::Close(_)) => return End::ClientClosed,
            // The feed is one-way: data from the client only counts as liveness.
            Ok(_) => {
                frames.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => return End::Gone,
        }
    }
    End::Gone
}

enum Out {
    Ping,
    Record(Result<Record, Closed>),
}

async fn next_out(sub: &mut Subscription, ping: &Notify) -> Out {
    tokio::select! {
        biased;
        () = ping.notified() => Out::Ping,
        next = sub.next() => Out::Record(next),
    }
}

/// Writes the welcome, then replay and live messages and pings, flushing whenever nothing
/// more is ready (so a burst goes out in few writes).
async fn write(sink: &mut Sink, mut sub: Subscription, ping: &Notify, hub: &Hub) -> End {
    if hub.config().welcome {
        let welcome = Utf8Bytes::from(sub.welcome().to_json());
        if sink.feed(Message::Text(welcome)).await.is_err() {
            return End::Gone;
        }
    }
    loop {
        let out = match next_out(&mut sub, ping).now_or_never() {
            Some(out) => out,
            None => {
                if sink.flush().await.is_err() {
                    return End::Gone;
                }
                next_out(&mut sub, ping).await
            }
        };
        let message = match out {
            Out::Ping => {
                hub.count_ping();
                Message::Ping(Bytes::new())
            }
            Out::Record(Ok(record)) => record.payload.to_message(),
            Out::Record(Err(why)) => return why.into(),
        };
        if sink.feed(message).await.is_err() {
            return End::Gone;
        }
    }
}

/// Ends the connection when the hub stops feeding it, or when no frame arrives within the
/// ping timeout after a ping is due (the writer sends it as soon as the socket takes it).
async fn supervise(outbox: &Outbox, frames: &AtomicU64, ping: &Notify, hub: &Hub) -> End {
    let config = hub.config();
    let liveness = async {
        if config.ping_interval.is_zero() {
            return std::future::pending().await;
        }
        let mut due = Instant::now() + config.ping_interval;
        loop {
            sleep_until(due).await;
            let seen = frames.load(Ordering::Relaxed);
            ping.notify_one();
            sleep(config.ping_timeout).await;
            if frames.load(Ordering::Relaxed) == seen {
                return End::Dead;
            }
            due = (due + config.ping_interval).max(Instant::now());
        }
    };
    tokio::select! {
        why = outbox.closed() => why.into(),
        end = liveness => end,
    }
}

/// Closes as `end` requires, within `close_timeout`.
async fn finish(mut sink: Sink, mut stream: Stream, end: End, close_timeout: Duration) {
    let (code, reason) = match end {
        // Nobody is there to read a close frame.
        End::Gone | End::Dead => return,
        End::ClientClosed => {
            // The reply to the client's close is queued; flush it.
            let _ = timeout(close_timeout, sink.close()).await;
            return;
        }
        End::SlowConsumer => (CLOSE_SLOW_CONSUMER, "slow consumer".to_owned()),
        End::ShutDown => (CLOSE_SHUTDOWN, "server shutting down".to_owned()),
        End::ResumeImpossible(why) => (
            CLOSE_RESUME_IMPOSSIBLE,
            format!("resume impossible: {}", why.as_str()),
        ),
    };
    let handshake = async {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        if sink.send(Message::Close(Some(frame))).await.is_err() {
            return;
        }
        // Wait for the client's reply: dropping a socket with unread input resets it,
        // and the reset can destroy our close frame before the client reads it.
        while let Some(Ok(message)) = stream.next().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    };
    let _ = timeout(close_timeout, handshake).await;
}
