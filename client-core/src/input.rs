//! Inputs from the driver: what happened on a socket.

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
    /// A Ping or Pong frame arrived: proof of life that carries no message.
    Pong,
    /// The socket ended or the attempt failed, and why. A close frame from the server is
    /// [`Disconnect::Closed`].
    Ended(Disconnect),
}
