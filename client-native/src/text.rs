//! Messages between tungstenite and the session, without copying them.
//!
//! Both sides keep text in a shared buffer that is valid UTF-8 by construction:
//! tungstenite's `Utf8Bytes` (checked when the frame was read) and the core's `Text`
//! (checked, or made from a `str`, when it was built). Moving a buffer from one to the
//! other needs no second check, which for large messages would cost as much as the read.

use resilient_ws_core::{Binary, Payload, Text};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// The payload of a data message read from the socket.
pub(crate) fn text_payload(text: Utf8Bytes) -> Payload {
    // SAFETY: a `Utf8Bytes` holds valid UTF-8 (tungstenite checks every text frame it
    // reads), and the buffer is passed on unchanged.
    #[allow(unsafe_code)]
    let text = unsafe { Text::from_utf8_unchecked(text.into()) };
    Payload::Text(text)
}

/// The message that carries `payload`.
pub(crate) fn message_of(payload: Payload) -> Message {
    match payload {
        Payload::Text(text) => {
            // SAFETY: a `Text` holds valid UTF-8 (see `resilient_ws_core::Text`), and the
            // buffer is passed on unchanged.
            #[allow(unsafe_code)]
            let text = unsafe { Utf8Bytes::from_bytes_unchecked(text.into_bytes()) };
            Message::Text(text)
        }
        Payload::Binary(bytes) => Message::Binary(bytes.into_bytes()),
    }
}

/// A binary payload from a message's bytes.
pub(crate) fn binary_payload(bytes: tokio_tungstenite::tungstenite::Bytes) -> Payload {
    Payload::Binary(Binary::from(bytes))
}
