//! Starting a feed server in-process, and the handle that observes and steers it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use resilient_ws_server::Hub;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::info;

use super::config::FeedConfig;
use super::error::FeedServerError;
use super::feed::{ConnectionCommand, Faults};
use super::received::ClientMessage;
use super::router::{FEED_PATH, router};
use super::shared::ServerShared;
use super::static_dirs::check_mounts;
use super::stats::FeedStats;
use super::supervisor::Supervisor;

/// Entry point of the feed server; see [`FeedServer::start`].
#[derive(Debug)]
pub enum FeedServer {}

impl FeedServer {
    /// Binds `config.listen` and starts serving in the current tokio runtime. Fails if the
    /// faults are invalid, a static directory is missing, or the address cannot be bound.
    pub async fn start(config: FeedConfig) -> Result<FeedServerHandle, FeedServerError> {
        config.validate()?;
        let mounts = check_mounts(&config.static_dirs)?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| FeedServerError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener
            .local_addr()
            .map_err(|source| FeedServerError::Bind {
                addr: config.listen,
                source,
            })?;
        let (commands, command_receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(ServerShared::new(config, commands)?);
        let router = router(Arc::clone(&shared), &mounts);
        let supervisor = Supervisor::new(listener, addr, router, Arc::clone(&shared));
        let task = tokio::spawn(supervisor.run(command_receiver));
        info!(%addr, "feed server listening");
        Ok(FeedServerHandle {
            addr,
            shared,
            task: Some(task),
        })
    }
}

/// A running feed server. Dropping it stops the server abruptly; [`shutdown`](Self::shutdown)
/// stops it and waits until every task has ended.
#[derive(Debug)]
pub struct FeedServerHandle {
    addr: SocketAddr,
    shared: Arc<ServerShared>,
    task: Option<JoinHandle<()>>,
}

impl FeedServerHandle {
    /// The address the server listens on (kept across restarts).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The feed's WebSocket URL, `ws://ADDR/feed`.
    pub fn url(&self) -> String {
        format!("ws://{}{FEED_PATH}", self.addr)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> FeedStats {
        self.shared.stats()
    }

    /// The client messages received so far (the latest `received_log_capacity`), oldest first.
    pub fn received(&self) -> Vec<ClientMessage> {
        self.shared.received.snapshot()
    }

    /// The faults in force now (a counted refusal shows how many remain).
    pub fn faults(&self) -> Faults {
        self.shared.faults()
    }

    /// Replaces the faults; current connections follow them from their next step.
    pub fn set_faults(&self, faults: Faults) -> Result<(), FeedServerError> {
        self.shared.set_faults(faults)
    }

    /// Drops every current connection abruptly (no close frame); returns how many were told.
    pub fn drop_all(&self) -> usize {
        self.shared.command_all(ConnectionCommand::Drop)
    }

    /// Makes every current connection go silent; returns how many were told.
    pub fn silence_all(&self) -> usize {
        self.shared.command_all(ConnectionCommand::Silence)
    }

    /// Closes every current (not silent) connection with `code`; returns how many were told.
    pub fn close_all(&self, code: u16) -> Result<usize, FeedServerError> {
        self.shared.close_all(code)
    }

    /// The feed's current epoch (it changes only when the history is forgotten, or on a
    /// process restart without a history file).
    pub fn epoch(&self) -> String {
        self.shared.hub().epoch()
    }

    /// The hub the feed is published into (its stats, or to publish nothing else: the producer
    /// owns the cursors). A restart that forgets the history replaces it.
    pub fn hub(&self) -> Hub {
        self.shared.hub()
    }

    /// Closes the listener and every connection, and listens again on the same port after
    /// `down`. Returns once everything is closed; the history (epoch, head, buffer) is kept, and
    /// the producer goes on publishing meanwhile, so clients resume exactly once.
    pub async fn restart(&self, down: Duration) -> Result<(), FeedServerError> {
        self.restart_with(down, false).await
    }

    /// Like [`restart`](Self::restart), and the history is dropped too (the history file
    /// included): the feed starts again from message 1 in a new epoch, so resuming clients are
    /// told `epoch_changed` (an explicit discontinuity). Returns once everything is closed and
    /// the new history has begun.
    pub async fn restart_forgetting_history(&self, down: Duration) -> Result<(), FeedServerError> {
        self.restart_with(down, true).await
    }

    async fn restart_with(&self, down: Duration, forget: bool) -> Result<(), FeedServerError> {
        let (done, closed) = oneshot::channel();
        self.shared.request_restart(down, forget, Some(done))?;
        closed.await.map_err(|_| FeedServerError::Stopped)
    }

    /// Stops the server and waits until the listener, every connection and every task are gone.
    pub async fn shutdown(mut self) -> Result<(), FeedServerError> {
        let (done, closed) = oneshot::channel();
        self.shared.request_shutdown(done)?;
        closed.await.map_err(|_| FeedServerError::Stopped)?;
        if let Some(task) = self.task.take() {
            task.await.map_err(|_| FeedServerError::Stopped)?;
        }
        Ok(())
    }
}

impl Drop for FeedServerHandle {
    fn drop(&mut self) {
        // Aborting the supervisor drops its JoinSet, which aborts every connection task.
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
