//! What the hub stores and sends: shared buffers, so fan-out never copies per subscriber.

use std::time::SystemTime;

use axum::extract::ws::{Message, Utf8Bytes};
use bytes::Bytes;

/// The body of one published message: a text or a binary WebSocket message.
///
/// Both variants are reference-counted buffers: cloning one (for the replay buffer and for
/// every subscriber's queue) copies a pointer, never the bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// Sent as a text message (UTF-8).
    Text(Utf8Bytes),
    /// Sent as a binary message.
    Binary(Bytes),
}

impl Payload {
    /// The size of the body in bytes (what the byte bounds count).
    pub fn len(&self) -> usize {
        match self {
            Self::Text(text) => text.len(),
            Self::Binary(bytes) => bytes.len(),
        }
    }

    /// Whether the body is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The WebSocket message that carries this payload (a cheap clone).
    pub(crate) fn to_message(&self) -> Message {
        match self {
            Self::Text(text) => Message::Text(text.clone()),
            Self::Binary(bytes) => Message::Binary(bytes.clone()),
        }
    }
}

impl From<String> for Payload {
    fn from(text: String) -> Self {
        Self::Text(text.into())
    }
}

impl From<&str> for Payload {
    fn from(text: &str) -> Self {
        Self::Text(text.into())
    }
}

impl From<Utf8Bytes> for Payload {
    fn from(text: Utf8Bytes) -> Self {
        Self::Text(text)
    }
}

impl From<Bytes> for Payload {
    fn from(bytes: Bytes) -> Self {
        Self::Binary(bytes)
    }
}

impl From<Vec<u8>> for Payload {
    fn from(bytes: Vec<u8>) -> Self {
        Self::Binary(bytes.into())
    }
}

/// One published message as the hub keeps it: its cursor, when it was published and its
/// payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The cursor the hub assigned (1, 2, 3, ... within an epoch).
    pub cursor: u64,
    /// When it was published (the age bound of the replay buffer counts from here).
    pub published_at: SystemTime,
    /// The message body.
    pub payload: Payload,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_bytes() {
        let payload = Payload::from(String::from("{\"seq\":1}"));
        let Message::Text(sent) = payload.to_message() else {
            panic!("a text payload must become a text message");
        };
        let Payload::Text(kept) = &payload else {
            unreachable!()
        };
        assert_eq!(
            sent.as_ptr(),
            kept.as_ptr(),
            "fan-out must not copy the body"
        );
        assert_eq!(payload.len(), 9);
    }

    #[test]
    fn bytes_become_binary() {
        let payload = Payload::from(vec![1, 2, 3]);
        assert_eq!(
            payload.to_message(),
            Message::Binary(Bytes::from_static(&[1, 2, 3]))
        );
        assert!(!payload.is_empty());
    }
}
