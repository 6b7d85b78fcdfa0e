//! The accept loop both servers share: one task that accepts, spawns a task per connection into a
//! `JoinSet`, reaps finished ones, and on shutdown aborts and awaits them all so nothing leaks.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use tracing::{debug, warn};

/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop cannot spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(10);

/// A running accept loop. Dropping it stops the loop too; `shutdown` also waits for the end.
#[derive(Debug)]
pub(crate) struct AcceptLoop {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl AcceptLoop {
    /// Spawns the loop. `on_accept` sees every accepted socket and returns the future that serves
    /// it, or `None` when it has already dealt with the socket (e.g. refused it).
    pub(crate) fn spawn<H, F>(listener: TcpListener, mut on_accept: H) -> Self
    where
        H: FnMut(TcpStream, SocketAddr) -> Option<F> + Send + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                tokio::select! {
                    // A send or a dropped sender both mean stop.
                    _ = &mut stopped => break,
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                    accepted = listener.accept() => match accepted {
                        Ok((socket, peer)) => {
                            if let Some(serve) = on_accept(socket, peer) {
                                connections.spawn(serve);
                            }
                        }
                        Err(error) => {
                            warn!(%error, "accept failed");
                            tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                        }
                    },
                }
            }
            debug!(open = connections.len(), "accept loop stopping");
            connections.shutdown().await;
        });
        Self {
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops accepting, closes every connection and waits until all their tasks are gone.
    pub(crate) async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            // The loop may already be gone; then there is nothing to stop.
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            if let Err(error) = task.await {
                warn!(%error, "accept loop task failed");
            }
        }
    }
}
