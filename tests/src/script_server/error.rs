//! What can go wrong starting the script server, and ending one of its connections.

use std::io;

use tokio_tungstenite::tungstenite;

/// Why [`ScriptServer::start`](super::ScriptServer::start) failed.
#[derive(Debug, thiserror::Error)]
pub enum ScriptServerError {
    /// 127.0.0.1 could not be bound.
    #[error("could not bind 127.0.0.1: {0}")]
    Bind(#[from] io::Error),
    /// A `Behaviour::Reject` status that is not an HTTP error status (300-999): a 1xx or 2xx
    /// answer would not be a rejection.
    #[error("a rejection needs an HTTP status from 300 to 999, got {0}")]
    InvalidRejectStatus(u16),
}

/// Why a scripted connection ended before its script did (logged, never fatal to the server).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectionError {
    /// The WebSocket layer failed: a bad handshake, or a peer that went away.
    #[error("websocket: {0}")]
    WebSocket(#[from] tungstenite::Error),
    /// A raw write to the TCP stream failed.
    #[error("tcp: {0}")]
    Io(#[from] io::Error),
}
