//! The current socket's outbound frames, from the session to the socket's writer, and
//! the application messages among them until they are wholly written to the OS socket.
//!
//! The session hands queued application messages over only while fewer than
//! [`WRITE_WINDOW`] are on their way (waiting here or taken by the writer and not yet
//! written), so a slow network fills the session's bounded queue and `send` reports it.
//! Each message the writer takes is remembered with the offset where it ends in the
//! socket's outbound byte stream; the transport counts the bytes the OS accepts
//! ([`crate::written`]), so a message counts as written only once all of its bytes are.
//! When the socket goes, what was never written goes back to the session, which sends it
//! on the next connection or hands it back as unsent.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use resilient_ws_core::{MsgId, Payload, Unsent};
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::{Bytes, Message};

use crate::text::message_of;

/// Queued application messages handed to the writer and not yet written, at most.
pub(crate) const WRITE_WINDOW: usize = 256;

/// A frame for the writer.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// An application message from the queue, tracked until written.
    Queued(MsgId, Payload),
    /// A message the session made itself (resume request, heartbeat probe).
    Control(Payload),
    Ping,
    Close {
        code: u16,
        reason: String,
    },
}

/// Application messages wholly written since the writer last asked, for the session's
/// [`SocketEvent::Written`](resilient_ws_core::SocketEvent::Written).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Written {
    pub(crate) messages: usize,
    pub(crate) bytes: usize,
}

/// An application message the writer took and the OS has not wholly accepted yet.
#[derive(Debug)]
struct InFlight {
    /// Where its last byte sits in the socket's outbound byte stream.
    end: u64,
    id: MsgId,
    /// Sharing the frame's buffer, to hand back if it is never written.
    payload: Payload,
}

/// One socket's outbound frames, from its `Open` until it goes.
#[derive(Debug)]
pub(crate) struct Writer {
    waiting: VecDeque<Outbound>,
    /// How many of `waiting` are queued application messages.
    queued_waiting: usize,
    /// Taken for the socket, not yet wholly written, oldest first.
    in_flight: VecDeque<InFlight>,
    /// The end of the last frame taken, in the outbound byte stream.
    taken_end: u64,
    /// Bytes of the outbound stream the OS has accepted, counted by the transport.
    written: Arc<AtomicU64>,
}

impl Writer {
    pub(crate) fn new() -> Self {
        Self {
            waiting: VecDeque::new(),
            queued_waiting: 0,
            in_flight: VecDeque::new(),
            taken_end: 0,
            written: Arc::default(),
        }
    }

    /// The counter the socket's transport adds accepted bytes to.
    pub(crate) fn written_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.written)
    }

    /// Whether the writer may be handed another queued message.
    pub(crate) fn has_room(&self) -> bool {
        self.queued_waiting + self.in_flight.len() < WRITE_WINDOW
    }

    pub(crate) fn push(&mut self, frame: Outbound) {
        if matches!(frame, Outbound::Queued(..)) {
            self.queued_waiting += 1;
        }
        self.waiting.push_back(frame);
    }

    /// Whether a frame waits to be written.
    pub(crate) fn has_waiting(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// The next frame to write, as a message; application messages are remembered until
    /// the OS has all of their bytes.
    pub(crate) fn take(&mut self) -> Option<Message> {
        let message = match self.waiting.pop_front()? {
            Outbound::Queued(id, payload) => {
                self.queued_waiting -= 1;
                let message = message_of(payload.clone());
                self.taken_end += wire_len(&message);
                self.in_flight.push_back(InFlight {
                    end: self.taken_end,
                    id,
                    payload,
                });
                return Some(message);
            }
            Outbound::Control(payload) => message_of(payload),
            Outbound::Ping => Message::Ping(Bytes::new()),
            Outbound::Close { code, reason } => Message::Close(Some(CloseFrame {
                code: code.into(),
                reason: reason.into(),
            })),
        };
        self.taken_end += wire_len(&message);
        Some(message)
    }

    /// Forgets the messages the OS has wholly accepted since the last call; returns them
    /// counted.
    pub(crate) fn confirm(&mut self) -> Written {
        let written = self.written.load(Ordering::Acquire);
        let mut done = Written::default();
        while self.in_flight.front().is_some_and(|m| m.end <= written) {
            if let Some(message) = self.in_flight.pop_front() {
                done.messages += 1;
                done.bytes += message.payload.len();
            }
        }
        done
    }

    /// The socket is gone: the application messages it never wrote, oldest first.
    pub(crate) fn finish(mut self) -> Vec<Unsent> {
        self.confirm();
        let taken = self.in_flight.into_iter().map(|message| Unsent {
            id: message.id,
            payload: message.payload,
        });
        let waiting = self.waiting.into_iter().filter_map(|frame| match frame {
            Outbound::Queued(id, payload) => Some(Unsent { id, payload }),
            _ => None,
        });
        taken.chain(waiting).collect()
    }
}

/// The bytes a client frame takes on the wire: header, extended length, mask, payload
/// (RFC 6455, 5.2). tungstenite writes each message as one frame.
fn wire_len(message: &Message) -> u64 {
    let payload = match message {
        Message::Close(Some(frame)) => 2 + frame.reason.len(),
        other => other.len(),
    } as u64;
    let extended = match payload {
        0..=125 => 0,
        126..=65_535 => 2,
        _ => 8,
    };
    2 + extended + 4 + payload
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_lengths_follow_the_frame_format() {
        assert_eq!(wire_len(&Message::Text("abc".into())), 2 + 4 + 3);
        assert_eq!(
            wire_len(&Message::Binary(vec![0; 126].into())),
            2 + 2 + 4 + 126
        );
        assert_eq!(
            wire_len(&Message::Binary(vec![0; 70_000].into())),
            2 + 8 + 4 + 70_000
        );
        assert_eq!(wire_len(&Message::Ping(Bytes::new())), 6);
    }

    #[test]
    fn a_message_counts_as_written_only_once_all_its_bytes_are() {
        let ids = [MsgId::new(1), MsgId::new(2), MsgId::new(3)];
        let mut writer = Writer::new();
        let counter = writer.written_counter();
        writer.push(Outbound::Ping);
        writer.push(Outbound::Queued(ids[0], "first".into()));
        writer.push(Outbound::Queued(ids[1], "second".into()));
        assert_eq!(std::iter::from_fn(|| writer.take()).count(), 3);
        // The ping (6) and "first" (11) but one byte.
        counter.store(6 + 10, Ordering::Release);
        assert_eq!(writer.confirm().messages, 0);
        counter.store(6 + 11, Ordering::Release);
        assert_eq!(writer.confirm().messages, 1);
        writer.push(Outbound::Queued(ids[2], "third".into()));
        let texts: Vec<Payload> = writer.finish().into_iter().map(|m| m.payload).collect();
        assert_eq!(texts, [Payload::from("second"), Payload::from("third")]);
    }
}
