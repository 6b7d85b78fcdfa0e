//! One accepted TCP connection, served by hyper's HTTP/1.1 server with the axum router: one
//! request per connection (keep-alive off, as a test server should be predictable), a deadline
//! for the request head, a bound on its size, and WebSocket upgrades.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpStream;
use tower::ServiceExt;
use tracing::debug;

use super::muzzle::{Muzzle, MuzzledStream};
use super::shared::ServerShared;

/// Largest request head accepted (hyper's smallest read buffer); a longer one gets 431.
const MAX_REQUEST_HEAD_BYTES: usize = 8 * 1024;

/// What a handler knows about the connection its request arrived on (a request extension).
#[derive(Debug, Clone)]
pub(crate) struct ConnectionContext {
    /// The supervisor's generation when the connection was accepted.
    pub(crate) generation: u64,
    /// Silences the connection's stream (the silence fault, once upgraded to a WebSocket).
    pub(crate) muzzle: Muzzle,
    /// A restart asked for on this connection, carried out once its answer has been sent.
    restart_after_answer: Arc<Mutex<Option<(Duration, bool)>>>,
}

impl ConnectionContext {
    fn new(generation: u64) -> Self {
        Self {
            generation,
            muzzle: Muzzle::default(),
            restart_after_answer: Arc::default(),
        }
    }

    /// Restarts the server (down for `down`, forgetting the history if `forget`) once this
    /// connection's answer is out: restarting closes every connection, this one included.
    pub(crate) fn restart_after_answer(&self, down: Duration, forget: bool) {
        *self.lock_restart() = Some((down, forget));
    }

    fn take_restart(&self) -> Option<(Duration, bool)> {
        self.lock_restart().take()
    }

    fn lock_restart(&self) -> std::sync::MutexGuard<'_, Option<(Duration, bool)>> {
        self.restart_after_answer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Serves the one request of a connection (or its WebSocket upgrade, whose socket then lives on
/// in the task the `/feed` handler hands to the supervisor).
pub(crate) async fn serve_connection(
    stream: TcpStream,
    generation: u64,
    router: Router,
    shared: Arc<ServerShared>,
) {
    // Feed messages are small and latency matters more than packet count.
    let _ = stream.set_nodelay(true);
    let context = ConnectionContext::new(generation);
    let io = TokioIo::new(MuzzledStream::new(stream, context.muzzle.clone()));
    let request_context = context.clone();
    let service = router.map_request(move |mut request: Request<Incoming>| {
        request.extensions_mut().insert(request_context.clone());
        request
    });
    let served = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(shared.config.request_head_timeout)
        .max_buf_size(MAX_REQUEST_HEAD_BYTES)
        .keep_alive(false)
        .serve_connection(io, TowerToHyperService::new(service))
        .with_upgrades()
        .await;
    if let Err(error) = served {
        debug!(%error, "HTTP connection ended with an error");
    }
    if let Some((down, forget)) = context.take_restart() {
        let _ = shared.request_restart(down, forget, None);
    }
}
