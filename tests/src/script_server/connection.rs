//! One scripted connection: the handshake, then the steps, with the outcome logged.

use std::sync::Arc;

use tokio::net::TcpStream;
use tracing::debug;

use super::ServerState;
use super::error::ConnectionError;
use super::handshake;
use super::script::Reply;
use super::steps;
use crate::live_count::LiveGuard;

/// Serves `stream`, the `index`-th connection, as the script says.
pub(crate) async fn serve(
    stream: TcpStream,
    live: LiveGuard,
    state: Arc<ServerState>,
    index: usize,
) {
    let outcome = run(stream, &state, index).await;
    match outcome {
        Ok(()) => debug!(index, "scripted connection finished"),
        // Clients that vanish are what these tests are about: not a server failure.
        Err(error) => debug!(index, %error, "scripted connection ended early"),
    }
    // The socket is gone by now; only then does the connection stop counting as live.
    drop(live);
}

async fn run(
    stream: TcpStream,
    state: &Arc<ServerState>,
    index: usize,
) -> Result<(), ConnectionError> {
    let (rejection, steps) = match state.replies.for_connection(index) {
        Reply::Reject(rejection) => (Some(rejection), Vec::new()),
        Reply::Accept(steps) => (None, steps),
    };
    match handshake::answer(stream, rejection, state).await? {
        None => Ok(()),
        Some(socket) => {
            let inbox = state.recorder.open_inbox();
            steps::perform(socket, steps, &inbox).await
        }
    }
}
