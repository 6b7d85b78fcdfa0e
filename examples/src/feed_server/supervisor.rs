//! The task that owns the listener, every connection task (HTTP exchanges and upgraded
//! WebSockets alike) and the producer: accepts, restarts (forgetting the history if asked),
//! shuts down.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
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

/// The task of an upgraded WebSocket connection, handed over to be run with the others.
pub(crate) struct AdoptedTask(Pin<Box<dyn Future<Output = ()> + Send>>);

impl AdoptedTask {
    pub(crate) fn new(task: impl Future<Output = ()> + Send + 'static) -> Self {
        Self(Box::pin(task))
    }
}

impl fmt::Debug for AdoptedTask {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("AdoptedTask")
    }
}

#[derive(Debug)]
pub(crate) enum SupervisorCommand {
    /// Close the listener and every connection, listen again after `down`; with `forget`, the
    /// history goes too (a new epoch). `done` fires once everything is closed.
    Restart {
        down: Duration,
        forget: bool,
        done: Option<oneshot::Sender<()>>,
    },
    /// Close everything and end; `done` fires once every task has ended.
    Shutdown { done: oneshot::Sender<()> },
    /// Run a WebSocket connection's task, unless it was accepted before the last restart.
    Adopt { generation: u64, task: AdoptedTask },
}

pub(crate) struct Supervisor {
    addr: SocketAddr,
    listener: Option<TcpListener>,
    relisten_at: Option<Instant>,
    /// Counts the times everything was closed; a connection accepted in an older generation is
    /// not let back in.
    generation: u64,
    connections: JoinSet<()>,
    /// The producer publishing into the hub (at most one task; aborted when the set drops).
    producer: JoinSet<()>,
    router: Router,
    shared: Arc<ServerShared>,
}

impl Supervisor {
    pub(crate) fn new(
        listener: TcpListener,
        addr: SocketAddr,
        router: Router,
        shared: Arc<ServerShared>,
    ) -> Self {
        shared.stats.listening.store(true, Ordering::SeqCst);
        let mut producer = JoinSet::new();
        producer.spawn(shared.production.run(shared.hub()));
        Self {
            addr,
            listener: Some(listener),
            relisten_at: None,
            generation: 0,
            connections: JoinSet::new(),
            producer,
            router,
            shared,
        }
    }

    pub(crate) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<SupervisorCommand>) {
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(SupervisorCommand::Restart { down, forget, done }) => {
                        self.go_down().await;
                        if forget {
                            self.forget_history().await;
                        }
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
                    Some(SupervisorCommand::Adopt { generation, task }) => {
                        if generation == self.generation {
                            self.connections.spawn(task.0);
                        }
                        // Otherwise dropping the task closes a socket from before a restart.
                    }
                    None => {
                        self.go_down().await;
                        return;
                    }
                },
                accepted = accept(self.listener.as_ref()) => match accepted {
                    Ok((stream, _peer)) => {
                        self.connections.spawn(serve_connection(
                            stream,
                            self.generation,
                            self.router.clone(),
                            Arc::clone(&self.shared),
                        ));
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
        self.generation += 1;
        self.shared.stats.listening.store(false, Ordering::SeqCst);
        self.connections.abort_all();
        while self.connections.join_next().await.is_some() {}
    }

    /// Stops the producer, replaces the hub with a fresh one (a new epoch) and starts producing
    /// into it. The connections are already gone, so nothing holds the old hub any more.
    async fn forget_history(&mut self) {
        self.producer.abort_all();
        while self.producer.join_next().await.is_some() {}
        match self.shared.forget_history() {
            Ok(hub) => {
                info!(epoch = %hub.epoch(), "history forgotten: a new epoch");
                self.producer.spawn(self.shared.production.run(hub));
            }
            Err(error) => error!(%error, "cannot start a new history; the feed stops"),
        }
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
