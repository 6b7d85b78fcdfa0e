//! The task that owns the listener and every connection task: accepts, restarts, shuts down.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::{error, info, warn};

use super::connection::serve_connection;
use super::shared::ServerShared;

/// Pause after a failed accept (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);
/// Pause between attempts to listen again after a restart when the port is not free yet.
const RELISTEN_RETRY: Duration = Duration::from_millis(200);

#[derive(Debug)]
pub(crate) enum SupervisorCommand {
    /// Close the listener and every connection, listen again after `down`.
    /// `done` fires once everything is closed.
    Restart {
        down: Duration,
        done: Option<oneshot::Sender<()>>,
    },
    /// Close everything and end; `done` fires once every task has ended.
    Shutdown { done: oneshot::Sender<()> },
}

pub(crate) struct Supervisor {
    addr: SocketAddr,
    listener: Option<TcpListener>,
    relisten_at: Option<Instant>,
    connections: JoinSet<()>,
    shared: Arc<ServerShared>,
}

impl Supervisor {
    pub(crate) fn new(listener: TcpListener, addr: SocketAddr, shared: Arc<ServerShared>) -> Self {
        shared.stats.listening.store(true, Ordering::SeqCst);
        Self {
            addr,
            listener: Some(listener),
            relisten_at: None,
            connections: JoinSet::new(),
            shared,
        }
    }

    pub(crate) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<SupervisorCommand>) {
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(SupervisorCommand::Restart { down, done }) => {
                        self.go_down().await;
                        info!(down_ms = down.as_millis(), "feed server restarting");
                        self.relisten_at = Some(Instant::now() + down);
                        if let Some(done) = done {
                            let _ = done.send(());
                        }
                    }
                    Some(SupervisorCommand::Shutdown { done }) => {
                        self.go_down().await;
                        info!("feed server shut down");
                        let _ = done.send(());
                        return;
                    }
                    None => {
                        self.go_down().await;
                        return;
                    }
                },
                accepted = accept(self.listener.as_ref()) => match accepted {
                    Ok((stream, _peer)) => {
                        self.connections.spawn(serve_connection(stream, Arc::clone(&self.shared)));
                    }
                    Err(error) => {
                        warn!(%error, "accept failed");
                        tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    }
                },
                Some(finished) = self.connections.join_next() => {
                    if let Err(failure) = finished {
                        if failure.is_panic() {
                            error!(%failure, "connection task panicked");
                        }
                    }
                }
                () = sleep_until(self.relisten_at) => self.listen_again().await,
            }
        }
    }

    /// Closes the listener and ends every connection task, waiting until their sockets are dropped.
    async fn go_down(&mut self) {
        self.listener = None;
        self.relisten_at = None;
        self.shared.stats.listening.store(false, Ordering::SeqCst);
        self.connections.abort_all();
        while self.connections.join_next().await.is_some() {}
    }

    async fn listen_again(&mut self) {
        match TcpListener::bind(self.addr).await {
            Ok(listener) => {
                self.listener = Some(listener);
                self.relisten_at = None;
                self.shared.stats.listening.store(true, Ordering::SeqCst);
                info!(addr = %self.addr, "feed server listening again");
            }
            Err(error) => {
                warn!(addr = %self.addr, %error, "cannot listen again yet");
                self.relisten_at = Some(Instant::now() + RELISTEN_RETRY);
            }
        }
    }
}

async fn accept(
    listener: Option<&TcpListener>,
) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
    match listener {
        Some(listener) => listener.accept().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
