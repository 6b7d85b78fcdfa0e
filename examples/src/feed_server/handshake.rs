//! Turning a `/feed` request into a WebSocket feed connection, or refusing it when the refusal
//! fault says so.

use std::sync::Arc;

use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tracing::debug;

use super::http::{self, Response as HttpResponse};
use super::live::LiveConnection;
use super::prefixed_stream::PrefixedStream;
use super::session::FeedSession;
use super::shared::ServerShared;
use super::stats::StatsCounters;

/// Client messages are kept in memory, so each one is kept small.
const MAX_CLIENT_MESSAGE_BYTES: usize = 1024 * 1024;

/// Serves one `/feed` upgrade request whose head (`bytes_read`) has already been read from `stream`.
pub(crate) async fn serve_feed(
    mut stream: TcpStream,
    bytes_read: Vec<u8>,
    cursor: Option<u64>,
    shared: Arc<ServerShared>,
) {
    if let Some(refusal) = shared.take_refusal() {
        StatsCounters::count(&shared.stats.handshakes_refused, 1);
        debug!(status = refusal.status, "handshake refused by fault");
        let mut response = HttpResponse::empty(refusal.status);
        if let Some(seconds) = refusal.retry_after_secs {
            response = response.with_header("Retry-After", seconds.to_string());
        }
        let _ = http::respond(&mut stream, &response).await;
        return;
    }

    let commands = shared.subscribe_commands();
    let mut live = None;
    // Counted live just before the 101 goes out: a client that sees its handshake complete
    // always finds itself in the live count.
    #[expect(
        clippy::result_large_err,
        reason = "the signature is tungstenite's Callback"
    )]
    let count_live = |_request: &Request, response: Response| -> Result<Response, ErrorResponse> {
        live = Some(LiveConnection::open(&shared.stats));
        Ok(response)
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_CLIENT_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_CLIENT_MESSAGE_BYTES));
    let handshake = tokio_tungstenite::accept_hdr_async_with_config(
        PrefixedStream::new(bytes_read, stream),
        count_live,
        Some(config),
    );
    let socket = match tokio::time::timeout(shared.config.request_head_timeout, handshake).await {
        Ok(Ok(socket)) => socket,
        Ok(Err(error)) => {
            debug!(%error, "websocket handshake failed");
            return;
        }
        Err(_) => {
            debug!("websocket handshake timed out");
            return;
        }
    };
    let Some(live) = live else {
        return;
    };

    let replay_overlap = shared.faults().replay_overlap;
    let first_seq = shared
        .feed
        .first_seq(cursor, replay_overlap, shared.config.start_live);
    debug!(
        connection = live.number(),
        first_seq,
        resumed = cursor.is_some(),
        "feed connection open"
    );
    FeedSession::new(live.number(), first_seq, Arc::clone(&shared))
        .run(socket, commands)
        .await;
    // Only now is the socket gone: uncount it.
    drop(live);
}
