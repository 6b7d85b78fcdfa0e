//! Messages between tungstenite and the session.
//!
//! Both sides keep text in a shared buffer that is valid UTF-8 by construction:
//! tungstenite's `Utf8Bytes` (checked when the frame was read) and the core's `Text`
//! (checked, or made from a `str`, when it was built). Moving a buffer from one to the
//! other needs no second check, which for large messages would cost as much as the read.
//!
//! Large messages are handed on as they are: they share tungstenite's read buffer. Small
//! ones are copied into a batch buffer instead. Every message that shares the read buffer
//! shares its reference count too, which the driver's thread raises as it reads and the
//! application's thread lowers as it drops messages: for a stream of small messages that
//! one counter would bounce between the two cores on every message, costing more than the
//! copy. A batch buffer is written by the driver only until it is full, so the application
//! releases it without contention.

use resilient_ws_core::{Binary, Payload, Text};
use tokio_tungstenite::tungstenite::{Bytes, Message, Utf8Bytes};

use bytes::BytesMut;

/// Messages up to this size are copied into the batch buffer.
const COPY_AT_MOST: usize = 512;

/// The batch buffer's size: the small messages of one read batch.
const BATCH_BUFFER: usize = 16 * 1024;

/// Copies small messages into batch buffers; holds nothing while the socket is idle.
#[derive(Debug, Default)]
pub(crate) struct Payloads {
    batch: BytesMut,
}

impl Payloads {
    /// The payload of a data message read from the socket.
    pub(crate) fn of(&mut self, message: Message) -> Payload {
        match message {
            Message::Text(text) => {
                let bytes = self.share_or_copy(text.into());
                // SAFETY: the bytes are those of a `Utf8Bytes`, which holds valid UTF-8
                // (tungstenite checks every text frame it reads), copied or passed on
                // unchanged.
                #[allow(unsafe_code)]
                let text = unsafe { Text::from_utf8_unchecked(bytes) };
                Payload::Text(text)
            }
            other => Payload::Binary(Binary::from(self.share_or_copy(other.into_data()))),
        }
    }

    /// The read batch is over: the buffer goes (its messages keep what they use), so an
    /// idle connection holds none.
    pub(crate) fn end_batch(&mut self) {
        self.batch = BytesMut::new();
    }

    fn share_or_copy(&mut self, bytes: Bytes) -> Bytes {
        if bytes.len() > COPY_AT_MOST {
            return bytes;
        }
        if self.batch.capacity() < bytes.len() {
            self.batch = BytesMut::with_capacity(BATCH_BUFFER);
        }
        self.batch.extend_from_slice(&bytes);
        self.batch.split().freeze()
    }
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
