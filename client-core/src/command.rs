//! Outputs for the driver: what to do with sockets.

use crate::ids::{ConnId, MsgId};
use crate::payload::Payload;
use crate::resume::Cursor;
use alloc::string::String;

/// Something the driver must do. Drain them with
/// [`Session::poll_command`](crate::Session::poll_command) after every call that can
/// change the session, and carry them out in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Open a socket named `conn`. Report its progress with that id.
    Open(OpenRequest),
    /// Send a message on `conn`.
    Send {
        /// The socket.
        conn: ConnId,
        /// The message.
        payload: Payload,
        /// The application's id for it; `None` for messages the session makes itself
        /// (a resume request, a heartbeat probe).
        id: Option<MsgId>,
    },
    /// Send a WebSocket Ping frame on `conn`.
    Ping {
        /// The socket.
        conn: ConnId,
    },
    /// Start the close handshake on `conn`, then report
    /// [`SocketEvent::Ended`](crate::SocketEvent::Ended) when the peer answers or the
    /// connection ends.
    Close {
        /// The socket.
        conn: ConnId,
        /// The close code.
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// Release `conn` now, without waiting for anything. Every socket the session opened
    /// gets exactly one `Abort`, always before the next `Open`: that is how the session
    /// guarantees at most one live socket.
    Abort {
        /// The socket.
        conn: ConnId,
    },
}

impl Command {
    /// The socket this command is about.
    pub fn conn(&self) -> ConnId {
        match self {
            Self::Open(request) => request.conn,
            Self::Send { conn, .. }
            | Self::Ping { conn }
            | Self::Close { conn, .. }
            | Self::Abort { conn } => *conn,
        }
    }
}

/// How to open the next socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenRequest {
    /// The id to report this socket's events with.
    pub conn: ConnId,
    /// The attempt number within the current run of failures, from 1.
    pub attempt: u32,
    /// The URL, with the resume query parameter applied when the resume mode uses one.
    pub url: String,
    /// The resume header, when the resume mode uses one.
    pub resume_header: Option<(String, String)>,
    /// The cursor this attempt resumes from.
    pub cursor: Option<Cursor>,
}
