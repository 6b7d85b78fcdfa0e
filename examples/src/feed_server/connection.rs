//! One accepted TCP connection: read the request head, route it, answer it.

use std::sync::Arc;

use serde_json::json;
use tokio::net::TcpStream;
use tracing::debug;

use super::control::{self, AfterAnswer};
use super::handshake::serve_feed;
use super::http::{self, Response};
use super::routes::{self, Route};
use super::shared::ServerShared;

pub(crate) async fn serve_connection(mut stream: TcpStream, shared: Arc<ServerShared>) {
    // Feed messages are small and latency matters more than packet count.
    let _ = stream.set_nodelay(true);
    let (head, bytes_read) =
        match http::read_request_head(&mut stream, shared.config.request_head_timeout).await {
            Ok(read) => read,
            Err(error) => {
                debug!(%error, "no usable request head");
                if let Some(status) = error.status() {
                    let _ = http::respond(&mut stream, &Response::empty(status)).await;
                }
                return;
            }
        };
    // The path only: query values (cursors, maybe tokens) stay out of logs.
    debug!(method = %head.method, path = %head.path, "request");

    let response = match routes::route(&head, &shared.static_files) {
        Route::Feed { cursor } => return serve_feed(stream, bytes_read, cursor, shared).await,
        Route::Control(request) => {
            let (response, after) = control::answer(&request, &shared);
            let _ = http::respond(&mut stream, &response).await;
            if let AfterAnswer::Restart { down } = after {
                let _ = shared.request_restart(down, None);
            }
            return;
        }
        Route::Static(request) => shared.static_files.answer(request).await,
        Route::Forbidden(message) => {
            Response::json(403, json!({ "ok": false, "error": message }).to_string())
        }
        Route::UpgradeRequired => Response::empty(426).with_header("Upgrade", "websocket".into()),
        Route::MethodNotAllowed => Response::empty(405).with_header("Allow", "GET".into()),
        Route::NotFound => Response::json(
            404,
            json!({ "ok": false, "error": "not found" }).to_string(),
        ),
        Route::BadRequest(message) => control::bad_request(&message),
    };
    let response = if head.method == "HEAD" {
        response.for_head()
    } else {
        response
    };
    let _ = http::respond(&mut stream, &response).await;
}
