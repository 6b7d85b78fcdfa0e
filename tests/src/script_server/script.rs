//! What the script server does: a [`Script`] of per-connection [`Behaviour`]s made of [`Step`]s.

use std::time::Duration;

use tokio_tungstenite::tungstenite::http::StatusCode;

use super::error::ScriptServerError;

/// One action on an accepted WebSocket connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send a text message.
    SendText(String),
    /// Send a binary message.
    SendBinary(Vec<u8>),
    /// Send `count` text messages [`feed_message`](super::feed_message)`(n)` for n from `from`.
    SendFeed {
        /// First sequence number.
        from: u64,
        /// Number of messages.
        count: u64,
    },
    /// Send a close frame, wait (bounded) for the client's answer, then close the TCP stream.
    /// Ends the connection.
    Close {
        /// Close code, sent as given (even one a peer must not send, such as 1006).
        code: u16,
        /// Close reason.
        reason: String,
    },
    /// Close the TCP stream without a close frame. Ends the connection.
    DropTcp,
    /// Write these bytes to the TCP stream as they are, e.g. a frame from
    /// [`raw_frame`](super::raw_frame).
    SendRaw(Vec<u8>),
    /// Send one text frame with a payload of `len` bytes.
    SendOversized {
        /// Payload length in bytes.
        len: usize,
    },
    /// Pause, still reading (and recording) client messages and answering pings. Ends the
    /// connection if the client leaves meanwhile.
    Wait(Duration),
    /// Stop reading and answering, but keep the socket open until the server shuts down.
    GoSilent,
    /// Stop reading for this long (the client's writes back up into TCP), then go on.
    Stall(Duration),
    /// Echo text and binary messages and answer pings until the client closes. Ends the
    /// connection.
    EchoUntilClosed,
}

/// What the server does with one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    /// Answer the upgrade request with an HTTP error status.
    Reject {
        /// HTTP status, 300 to 999.
        status: u16,
        /// Value of a `Retry-After` header, in seconds.
        retry_after: Option<u32>,
    },
    /// Upgrade, then run the steps in order. When the steps run out without ending the
    /// connection, the server keeps reading (recording, answering pings) until the client leaves.
    Accept {
        /// Steps run after the upgrade.
        then: Vec<Step>,
    },
}

/// The behaviours for successive connections, in accept order; the last one repeats forever.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    behaviours: Vec<Behaviour>,
}

impl Script {
    /// A script whose first connection gets `first` (and so do all later ones, unless more
    /// behaviours follow).
    pub fn new(first: Behaviour) -> Self {
        Self {
            behaviours: vec![first],
        }
    }

    /// Appends the behaviour for the next connection.
    pub fn then(mut self, next: Behaviour) -> Self {
        self.behaviours.push(next);
        self
    }

    /// Checks the script and turns it into the replies the server gives.
    pub(crate) fn into_replies(self) -> Result<Replies, ScriptServerError> {
        let replies = self
            .behaviours
            .into_iter()
            .map(|behaviour| match behaviour {
                Behaviour::Reject {
                    status,
                    retry_after,
                } => StatusCode::from_u16(status)
                    .ok()
                    .filter(|code| !code.is_informational() && !code.is_success())
                    .map(|status| {
                        Reply::Reject(Rejection {
                            status,
                            retry_after,
                        })
                    })
                    .ok_or(ScriptServerError::InvalidRejectStatus(status)),
                Behaviour::Accept { then } => Ok(Reply::Accept(then)),
            })
            .collect::<Result<_, _>>()?;
        Ok(Replies { replies })
    }
}

impl From<Behaviour> for Script {
    fn from(only: Behaviour) -> Self {
        Self::new(only)
    }
}

/// A checked script.
#[derive(Debug)]
pub(crate) struct Replies {
    /// Never empty: a `Script` starts with one behaviour.
    replies: Vec<Reply>,
}

impl Replies {
    /// The reply for the connection accepted `index`-th (from 0).
    pub(crate) fn for_connection(&self, index: usize) -> Reply {
        let last = self.replies.len().saturating_sub(1);
        self.replies[index.min(last)].clone()
    }
}

/// A checked behaviour.
#[derive(Debug, Clone)]
pub(crate) enum Reply {
    Reject(Rejection),
    Accept(Vec<Step>),
}

/// A checked `Behaviour::Reject`.
#[derive(Debug, Clone)]
pub(crate) struct Rejection {
    pub(crate) status: StatusCode,
    pub(crate) retry_after: Option<u32>,
}
