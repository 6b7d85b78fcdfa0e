//! Messages between tungstenite and the session.
//!
//! Both sides keep text in a shared buffer that is valid UTF-8 by construction:
//! tungstenite's `Utf8Bytes` (checked when the frame was read) and the core's `Text`
//! (checked, or made from a `str`, when it was built). Moving a buffer from one to the
//! other needs no second check, which for large messages would cost as much as the read.
//!
//! Messages are copied into batch buffers rather than handed on sharing tungstenite's read
//! buffer, as measured (BENCHMARKS.md, table 1). A message that shares the read buffer
//! keeps all of it alive until the application drops it, so tungstenite allocates a fresh
//! one for the frames after it, and the application's thread frees them; and every such
//! message shares one reference count, which the driver's thread raises as it reads and the
//! application's lowers as it drops, bouncing between the two cores. Sharing cost 10,295 ns
//! per 16 KiB message against 7,858 for the copy, and no less at 64 B. A batch buffer holds
//! the messages of one read batch (a larger message gets its own), is written by the driver
//! only until it is full, and is freed as a whole.

use resilient_ws_core::{Binary, Payload, Text};
use tokio_tungstenite::tungstenite::{Bytes, Message, Utf8Bytes};

use bytes::BytesMut;

/// The batch buffer's size; a larger message gets a buffer of its own size.
const BATCH_BUFFER: usize = 64 * 1024;

/// Copies messages into batch buffers; holds none while the socket is idle.
#[derive(Debug, Default)]
pub(crate) struct Payloads {
    batch: BytesMut,
}

impl Payloads {
    /// The payload of a data message read from the socket.
    pub(crate) fn of(&mut self, message: Message) -> Payload {
        match message {
            Message::Text(text) => {
                let bytes = self.copy(text.into());
                // SAFETY: the bytes are those of a `Utf8Bytes`, which holds valid UTF-8
                // (tungstenite checks every text frame it reads), copied unchanged.
                #[allow(unsafe_code)]
                let text = unsafe { Text::from_utf8_unchecked(bytes) };
                Payload::Text(text)
            }
            other => Payload::Binary(Binary::from(self.copy(other.into_data()))),
        }
    }

    /// The read batch is over: the buffer goes (its messages keep what they use), so an
    /// idle connection holds none.
    pub(crate) fn end_batch(&mut self) {
        self.batch = BytesMut::new();
    }

    fn copy(&mut self, bytes: Bytes) -> Bytes {
        if self.batch.capacity() < bytes.len() {
            self.batch = BytesMut::with_capacity(BATCH_BUFFER.max(bytes.len()));
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
