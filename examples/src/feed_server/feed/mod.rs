//! What is sent on a `/feed` WebSocket connection once its handshake is accepted: the hub's
//! welcome and the feed from the client's cursor on (a hub subscription), answers to its
//! messages, and the per-connection faults. The producer that publishes into the hub lives here
//! too (`producer.rs`).
//!
//! The HTTP side (`router.rs`) talks to this module through two calls and nothing else:
//! [`Accepted::new`] just before the `101 Switching Protocols` goes out (the connection is
//! counted live, subscribed to the hub and to server-wide [`ConnectionCommand`]s), then
//! [`serve`] with the upgraded socket. The hub's own axum handler cannot inject faults, so the
//! connection runs its own send loop over a [`Subscription`].

mod faults;
mod producer;
mod session;

use std::sync::Arc;

use axum::extract::ws::WebSocket;
use resilient_ws_server::{HubError, ResumeRequest, Subscription};
use tokio::sync::broadcast;
use tracing::debug;

use super::live::LiveConnection;
use super::muzzle::Muzzle;
use super::shared::ServerShared;
use session::FeedSession;

pub(crate) use faults::validate_close_code;
pub use faults::{CloseAfter, Faults, Refusal};
pub use producer::FeedMessage;
pub(crate) use producer::Production;

/// Client messages are kept in memory, so each one is kept small.
pub(crate) const MAX_CLIENT_MESSAGE_BYTES: usize = 1024 * 1024;

/// Commands to every current WebSocket connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnectionCommand {
    /// End abruptly, without a close frame.
    Drop,
    /// Stop sending and answering, keep the socket open.
    Silence,
    /// Close with this code.
    Close(u16),
}

/// A `/feed` handshake about to be accepted: what the connection was asked for, and what it was
/// given before its socket exists.
#[derive(Debug)]
pub(crate) struct Accepted {
    live: LiveConnection,
    subscription: Subscription,
    commands: broadcast::Receiver<ConnectionCommand>,
    muzzle: Muzzle,
}

impl Accepted {
    /// Subscribes the connection to the hub as `request` asks (from `cursor - replay_overlap`
    /// when that fault is on), counts it live and subscribes it to server-wide commands. Called
    /// just before the `101` goes out, so a client that sees its handshake complete always finds
    /// itself in the live count, gets every message published after that, and a command sent
    /// just after that still reaches it. `muzzle` silences the connection's stream (the silence
    /// fault).
    pub(crate) fn new(
        shared: &ServerShared,
        mut request: ResumeRequest,
        muzzle: Muzzle,
    ) -> Result<Self, HubError> {
        let overlap = shared.faults().replay_overlap;
        request.cursor = request.cursor.map(|cursor| cursor.saturating_sub(overlap));
        let subscription = shared.hub().subscribe(&request)?;
        Ok(Self {
            commands: shared.subscribe_commands(),
            live: LiveConnection::open(&shared.stats),
            subscription,
            muzzle,
        })
    }
}

/// Serves the feed on an upgraded socket until the connection ends; the socket is dropped
/// (closed) before this returns, and only then is the connection uncounted.
pub(crate) async fn serve(socket: WebSocket, accepted: Accepted, shared: Arc<ServerShared>) {
    let Accepted {
        live,
        subscription,
        commands,
        muzzle,
    } = accepted;
    let welcome = subscription.welcome();
    debug!(
        connection = live.number(),
        reason = welcome.reason.as_str(),
        from = welcome.from,
        head = welcome.head,
        "feed connection open"
    );
    FeedSession::new(live.number(), subscription, shared)
        .run(socket, commands, muzzle)
        .await;
    // Only now is the socket gone: uncount it.
    drop(live);
}
