//! What is sent on a `/feed` WebSocket connection once its handshake is accepted: the numbered
//! sequence from the client's cursor on, answers to its messages, and the per-connection faults.
//!
//! The HTTP side (`router.rs`) talks to this module through two calls and nothing else:
//! [`Accepted::new`] just before the `101 Switching Protocols` goes out (the connection is
//! counted live and subscribed to server-wide [`ConnectionCommand`]s), then [`serve`] with the
//! upgraded socket. Whatever produces the messages can change behind these two calls.

mod faults;
mod sequence;
mod session;

use std::sync::Arc;

use axum::extract::ws::WebSocket;
use tokio::sync::broadcast;
use tracing::debug;

use super::live::LiveConnection;
use super::muzzle::Muzzle;
use super::shared::ServerShared;
use session::FeedSession;

pub(crate) use faults::validate_close_code;
pub use faults::{CloseAfter, Faults, Refusal};
pub(crate) use sequence::Feed;
pub use sequence::FeedMessage;

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
    cursor: Option<u64>,
    commands: broadcast::Receiver<ConnectionCommand>,
    muzzle: Muzzle,
}

impl Accepted {
    /// Counts the connection live and subscribes it to server-wide commands. Called just before
    /// the `101` goes out, so a client that sees its handshake complete always finds itself in
    /// the live count, and a command sent just after that still reaches it. `muzzle` silences
    /// the connection's stream (the silence fault).
    pub(crate) fn new(shared: &ServerShared, cursor: Option<u64>, muzzle: Muzzle) -> Self {
        Self {
            commands: shared.subscribe_commands(),
            live: LiveConnection::open(&shared.stats),
            cursor,
            muzzle,
        }
    }
}

/// Serves the feed on an upgraded socket until the connection ends; the socket is dropped
/// (closed) before this returns, and only then is the connection uncounted.
pub(crate) async fn serve(socket: WebSocket, accepted: Accepted, shared: Arc<ServerShared>) {
    let Accepted {
        live,
        cursor,
        commands,
        muzzle,
    } = accepted;
    let replay_overlap = shared.faults().replay_overlap;
    let first_seq = shared
        .feed
        .first_seq(cursor, replay_overlap, shared.config.start_live);
    debug!(
        connection = live.number(),
        first_seq,
        resumed = cursor.is_some(),
        "feed connection open"
    );
    FeedSession::new(live.number(), first_seq, shared)
        .run(socket, commands, muzzle)
        .await;
    // Only now is the socket gone: uncount it.
    drop(live);
}
