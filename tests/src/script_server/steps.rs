//! Running a connection's steps on an upgraded WebSocket.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tracing::trace;

use super::error::ConnectionError;
use super::feed::feed_message;
use super::raw_frame::{self, FIN, OPCODE_TEXT};
use super::record::Inbox;
use super::script::Step;

/// How long `Step::Close` waits for the client's answering close frame.
const CLOSE_ANSWER_TIMEOUT: Duration = Duration::from_secs(2);
/// Oversized payloads are written in pieces of this size, never built whole.
const OVERSIZED_PIECE: usize = 64 * 1024;

type Socket = WebSocketStream<TcpStream>;

/// Whether the connection goes on after a step.
enum Flow {
    Continue,
    Ended,
}

/// Runs `steps` in order; if they leave the connection open, listens until the client leaves.
pub(crate) async fn perform(
    mut socket: Socket,
    steps: Vec<Step>,
    inbox: &Inbox,
) -> Result<(), ConnectionError> {
    for step in steps {
        trace!(?step, "script step");
        if let Flow::Ended = perform_step(&mut socket, step, inbox).await? {
            return Ok(());
        }
    }
    listen(&mut socket, inbox, Echo::No).await
}

async fn perform_step(
    socket: &mut Socket,
    step: Step,
    inbox: &Inbox,
) -> Result<Flow, ConnectionError> {
    match step {
        Step::SendText(text) => socket.send(Message::text(text)).await?,
        Step::SendBinary(bytes) => socket.send(Message::binary(bytes)).await?,
        Step::SendFeed { from, count } => {
            for seq in from..from.saturating_add(count) {
                socket.feed(Message::text(feed_message(seq))).await?;
            }
            socket.flush().await?;
        }
        Step::Close { code, reason } => {
            let frame = CloseFrame {
                code: code.into(),
                reason: reason.into(),
            };
            socket.close(Some(frame)).await?;
            // A client that never answers must not hold the script up for long.
            if let Ok(listened) =
                timeout(CLOSE_ANSWER_TIMEOUT, listen(socket, inbox, Echo::No)).await
            {
                listened?;
            }
            return Ok(Flow::Ended);
        }
        // Dropping the socket closes TCP with no close frame.
        Step::DropTcp => return Ok(Flow::Ended),
        Step::SendRaw(bytes) => write_raw(socket, &[&bytes]).await?,
        Step::SendOversized { len } => {
            let header = raw_frame::header(FIN | OPCODE_TEXT, len as u64);
            let piece = vec![b'x'; len.min(OVERSIZED_PIECE)];
            let mut pieces = vec![header.as_slice()];
            let mut left = len;
            while left > 0 {
                let size = left.min(piece.len());
                pieces.push(&piece[..size]);
                left -= size;
            }
            write_raw(socket, &pieces).await?;
        }
        Step::Wait(pause) => {
            if let Ok(listened) = timeout(pause, listen(socket, inbox, Echo::No)).await {
                // The client left during the pause.
                listened?;
                return Ok(Flow::Ended);
            }
        }
        // Holding the socket without polling it: no reads, no pongs, until the task is aborted.
        Step::GoSilent => return std::future::pending().await,
        Step::Stall(pause) => tokio::time::sleep(pause).await,
        Step::EchoUntilClosed => {
            listen(socket, inbox, Echo::Yes).await?;
            return Ok(Flow::Ended);
        }
    }
    Ok(Flow::Continue)
}

/// Whether `listen` sends data messages back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Echo {
    Yes,
    No,
}

/// Reads and records client messages until the client closes or leaves. Reading is what makes
/// tungstenite answer pings and close frames.
async fn listen(socket: &mut Socket, inbox: &Inbox, echo: Echo) -> Result<(), ConnectionError> {
    while let Some(message) = socket.next().await {
        let message = message?;
        inbox.record(&message);
        if echo == Echo::Yes && (message.is_text() || message.is_binary()) {
            socket.send(message).await?;
        }
    }
    Ok(())
}

/// Writes bytes straight to the TCP stream, after whatever tungstenite still had buffered.
async fn write_raw(socket: &mut Socket, pieces: &[&[u8]]) -> Result<(), ConnectionError> {
    socket.flush().await?;
    let stream = socket.get_mut();
    for piece in pieces {
        stream.write_all(piece).await?;
    }
    stream.flush().await?;
    Ok(())
}
