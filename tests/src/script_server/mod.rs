//! A scriptable WebSocket server on 127.0.0.1: each connection follows the next [`Behaviour`] of
//! a [`Script`] (an HTTP rejection, or a list of [`Step`]s), and everything clients send is
//! recorded for the test to inspect.

mod connection;
mod error;
mod feed;
mod handshake;
pub mod raw_frame;
mod record;
mod script;
mod steps;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use tokio::net::TcpListener;
use tracing::debug;

use crate::accept_loop::AcceptLoop;
use crate::live_count::LiveCount;
pub use error::ScriptServerError;
pub use feed::feed_message;
use record::Recorder;
pub use record::{ClientMessage, RecordedRequest};
use script::Replies;
pub use script::{Behaviour, Script, Step};

/// What the accept loop and the connection tasks share.
#[derive(Debug)]
struct ServerState {
    replies: Replies,
    connections: AtomicUsize,
    accepted: AtomicU64,
    live: Arc<LiveCount>,
    recorder: Arc<Recorder>,
}

/// A WebSocket server that follows a [`Script`].
///
/// ```no_run
/// # async fn demo() -> Result<(), resilient_ws_tests::ScriptServerError> {
/// use resilient_ws_tests::{Behaviour, Script, ScriptServer, Step};
/// let script = Script::new(Behaviour::Reject { status: 503, retry_after: Some(1) })
///     .then(Behaviour::Accept { then: vec![Step::SendFeed { from: 1, count: 3 }] });
/// let server = ScriptServer::start(script).await?;
/// let url = server.url("/feed");
/// // ... run a client against `url`, then inspect server.requests() and server.received()
/// server.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ScriptServer {
    addr: SocketAddr,
    state: Arc<ServerState>,
    accept_loop: AcceptLoop,
}

impl ScriptServer {
    /// Checks `script`, binds 127.0.0.1 on an ephemeral port and starts serving.
    pub async fn start(script: Script) -> Result<Self, ScriptServerError> {
        let replies = script.into_replies()?;
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(ServerState {
            replies,
            connections: AtomicUsize::new(0),
            accepted: AtomicU64::new(0),
            live: Arc::new(LiveCount::default()),
            recorder: Arc::new(Recorder::default()),
        });
        let accept_state = Arc::clone(&state);
        let accept_loop = AcceptLoop::spawn(listener, move |socket, peer| {
            let index = accept_state.connections.fetch_add(1, Ordering::SeqCst);
            let live = accept_state.live.enter();
            debug!(index, %peer, "script server accepted a connection");
            Some(connection::serve(
                socket,
                live,
                Arc::clone(&accept_state),
                index,
            ))
        });
        debug!(%addr, "script server started");
        Ok(Self {
            addr,
            state,
            accept_loop,
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://127.0.0.1:<port><path>`; a missing leading `/` is added.
    pub fn url(&self, path: &str) -> String {
        let slash = if path.starts_with('/') { "" } else { "/" };
        format!("ws://{}{slash}{path}", self.addr)
    }

    /// Connections accepted at the TCP level: handshakes attempted.
    pub fn connections(&self) -> u64 {
        self.state.connections.load(Ordering::SeqCst) as u64
    }

    /// Handshakes answered with 101 Switching Protocols.
    pub fn accepted(&self) -> u64 {
        self.state.accepted.load(Ordering::SeqCst)
    }

    /// TCP connections open on the server right now.
    pub fn live_connections(&self) -> usize {
        self.state.live.live()
    }

    /// The most TCP connections that were ever open at the same time.
    pub fn max_live_connections(&self) -> usize {
        self.state.live.peak()
    }

    /// Every upgrade request read so far, in arrival order (rejected ones included).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.recorder.requests()
    }

    /// What clients sent, one list per accepted connection, in acceptance order.
    pub fn received(&self) -> Vec<Vec<ClientMessage>> {
        self.state.recorder.received()
    }

    /// Stops accepting, closes every connection (silent ones too) and waits until all server
    /// tasks have ended.
    pub async fn shutdown(mut self) {
        self.accept_loop.shutdown().await;
        debug!(addr = %self.addr, "script server shut down");
    }
}
