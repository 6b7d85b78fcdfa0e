//! Messages between tungstenite and the session.
//!
//! Both sides keep text in a shared buffer that is valid UTF-8 by construction:
//! tungstenite's `Utf8Bytes` (checked when the frame was read) and the core's `Text`
//! (checked, or made from a `str`, when it was built). Moving a buffer from one to the
//! other needs no second check, which for large messages would cost as much as the read.
//!
//! Small messages are copied into batch buffers rather than handed on sharing
//! tungstenite's read buffer. A message that shares the read buffer keeps all of it alive
//! until the application drops it, so tungstenite allocates a fresh one for the frames
//! after it, and every message of a read raises and lowers one reference count. Measured
//! at 64 B with the application's task reading (alternating runs of one build with a
//! switch between the two): about 330 ns per message shared, 260 copied. A batch buffer
//! holds the messages of one read batch, is written only until it is full, and is freed
//! as a whole.
//!
//! Messages of [`SHARE_FROM`] bytes or more are handed on: one of them fills a read buffer
//! of its own in tungstenite anyway, and the copy is what costs (16 KiB: about 6,000 ns
//! per message shared, 7,100 copied, in the same runs).

use resilient_ws_core::{Binary, Payload, Text};
use tokio_tungstenite::tungstenite::{Bytes, Message, Utf8Bytes};

use bytes::BytesMut;

/// The batch buffer's size.
const BATCH_BUFFER: usize = 64 * 1024;

/// Messages at least this large keep tungstenite's buffer instead of a copy: the size of
/// its reads (`DEFAULT_IO_BUFFER`), so such a message filled a buffer of its own.
const SHARE_FROM: usize = 4 * 1024;

/// Copies small messages into batch buffers; holds none while the socket is idle.
#[derive(Debug, Default)]
pub(crate) struct Payloads {
    batch: BytesMut,
}

impl Payloads {
    /// The payload of a data message read from the socket.
    #[inline]
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

    #[inline]
    fn copy(&mut self, bytes: Bytes) -> Bytes {
        if bytes.len() >= SHARE_FROM {
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
