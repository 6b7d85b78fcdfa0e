//! Errors of the feed server's in-process API.

use std::io;
use std::net::SocketAddr;

/// Why a feed server could not start or could not carry out a request.
#[derive(Debug, thiserror::Error)]
pub enum FeedServerError {
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address that was asked for.
        addr: SocketAddr,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
    /// The fault settings are inconsistent or unsendable.
    #[error("invalid faults: {0}")]
    InvalidFaults(String),
    /// A close code a server may not put on the wire.
    #[error("close code {0} cannot be sent (use 1000-1003, 1007-1014 or 3000-4999)")]
    InvalidCloseCode(u16),
    /// A directory to serve files from is missing, unreadable or badly mounted.
    #[error("cannot serve files from {}: {reason}", dir.display())]
    StaticDir {
        /// The directory that was given.
        dir: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The configuration cannot be carried out.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The history file could not be opened, read or reset.
    #[error("history: {0}")]
    History(#[from] resilient_ws_server::HistoryError),
    /// The hub refused to publish (its history file failed).
    #[error("feed: {0}")]
    Hub(#[from] resilient_ws_server::HubError),
    /// The server has already been shut down.
    #[error("the feed server has stopped")]
    Stopped,
}
