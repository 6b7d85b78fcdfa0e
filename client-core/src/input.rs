//! Inputs from the driver: what happened on a socket.

use crate::epoch::Welcome;
use crate::payload::Payload;
use crate::retry::Disconnect;

/// Something that happened on a socket, reported with
/// [`Session::handle_socket`](crate::Session::handle_socket) and the socket's id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SocketEvent {
    /// The handshake completed: the socket is open.
    Opened,
    /// A message arrived.
    Message(Payload),
    /// The first message of the connection was the server's welcome, recognised by the
    /// driver itself (the browser's host reads it with the browser's own JSON parser)
    /// instead of by [`Config::welcome`](crate::Config).
    Welcome(Welcome),
    /// A Ping or Pong frame arrived: proof of life that carries no message.
    Pong,
    /// The next `messages` application messages handed to this socket (in the order of
    /// their [`Command::Send`](crate::Command::Send)), `bytes` of payload together, are now
    /// wholly written to the operating system's socket. Only for sessions with
    /// [`Config::confirm_writes`](crate::Config) on; until then they count against the
    /// queue's bounds.
    Written {
        /// How many messages.
        messages: usize,
        /// Their payloads' bytes together.
        bytes: usize,
    },
    /// Whether the driver holds inbound data it cannot hand over because the application
    /// is not taking events (`true`), or has handed it over (`false`). Data waiting is
    /// proof of life: the heartbeat cannot hear a connection it is not reading, so while
    /// data waits the connection counts as alive, and it is judged afresh once the
    /// application catches up.
    Backlog(bool),
    /// The socket ended or the attempt failed, and why. A close frame from the server is
    /// [`Disconnect::Closed`].
    Ended(Disconnect),
}
