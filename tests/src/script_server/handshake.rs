//! The HTTP side of a scripted connection: record the upgrade request, then upgrade or reject.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::server::{
    Callback, ErrorResponse, Request, Response,
};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::http::header::{CONNECTION, CONTENT_LENGTH, RETRY_AFTER};
use tokio_tungstenite::{WebSocketStream, accept_hdr_async, tungstenite};

use super::ServerState;
use super::error::ConnectionError;
use super::script::Rejection;

/// Reads and records the upgrade request, then answers 101, or the `rejection` when given.
/// Returns the upgraded socket, or `None` once the rejection was sent.
pub(crate) async fn answer(
    stream: TcpStream,
    rejection: Option<Rejection>,
    state: &Arc<ServerState>,
) -> Result<Option<WebSocketStream<TcpStream>>, ConnectionError> {
    let rejecting = rejection.is_some();
    let answer = ScriptedAnswer {
        state: Arc::clone(state),
        rejection,
    };
    match accept_hdr_async(stream, answer).await {
        Ok(socket) => Ok(Some(socket)),
        // tungstenite reports the rejection it was told to send as an HTTP error.
        Err(tungstenite::Error::Http(_)) if rejecting => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// The handshake callback: sees the request before tungstenite answers it.
struct ScriptedAnswer {
    state: Arc<ServerState>,
    rejection: Option<Rejection>,
}

impl Callback for ScriptedAnswer {
    fn on_request(self, request: &Request, response: Response) -> Result<Response, ErrorResponse> {
        self.state.recorder.request(request);
        match self.rejection {
            Some(rejection) => Err(error_response(&rejection)),
            None => {
                // Counted before the 101 is written, so a client that sees it sees the count.
                self.state.accepted.fetch_add(1, Ordering::SeqCst);
                Ok(response)
            }
        }
    }
}

fn error_response(rejection: &Rejection) -> ErrorResponse {
    let body = format!("rejected by script: {}\n", rejection.status);
    let mut response = ErrorResponse::new(None);
    *response.status_mut() = rejection.status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    headers.insert(CONNECTION, HeaderValue::from_static("close"));
    if let Some(seconds) = rejection.retry_after {
        headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    *response.body_mut() = Some(body);
    response
}
