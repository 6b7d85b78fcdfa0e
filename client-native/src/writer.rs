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
use std::task::{Context, Poll, Waker};

use resilient_ws_core::{ConnId, MsgId, Payload, Unsent};
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::{Bytes, Message};

use crate::shared::store_waker;

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
    /// A clone sharing the frame's buffer, to hand back if it is never written.
    message: Message,
}

/// Frames for one socket, from its `Open` until its `Abort`.
#[derive(Debug)]
pub(crate) struct WriterSlot {
    pub(crate) conn: ConnId,
    frames: VecDeque<Outbound>,
    /// How many of `frames` are queued application messages.
    queued_waiting: usize,
    /// Taken by the writer, not yet wholly written, oldest first.
    in_flight: VecDeque<InFlight>,
    /// The end of the last frame taken, in the outbound byte stream.
    taken_end: u64,
    /// Bytes of the outbound stream the OS has accepted, counted by the transport.
    written: Arc<AtomicU64>,
    /// The writer, waiting for frames.
    waker: Option<Waker>,
}

impl WriterSlot {
    pub(crate) fn new(conn: ConnId) -> Self {
        Self {
            conn,
            frames: VecDeque::new(),
            queued_waiting: 0,
            in_flight: VecDeque::new(),
            taken_end: 0,
            written: Arc::default(),
            waker: None,
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

    /// Adds a frame; returns the writer's waker if it was waiting for one.
    pub(crate) fn push(&mut self, frame: Outbound) -> Option<Waker> {
        if matches!(frame, Outbound::Queued(..)) {
            self.queued_waiting += 1;
        }
        self.frames.push_back(frame);
        self.waker.take()
    }

    /// For the writer: takes every frame waiting into `into`, as messages in order;
    /// pending (and woken by the next frame) when none wait. Also returns the messages
    /// that became wholly written since the last call, and whether that reopened a full
    /// window, so the session may hand over more.
    pub(crate) fn poll_take(
        &mut self,
        into: &mut VecDeque<Message>,
        cx: &mut Context<'_>,
    ) -> (Poll<()>, Written, bool) {
        let was_full = !self.has_room();
        let confirmed = self.confirm();
        let reopened = was_full && self.has_room();
        if self.frames.is_empty() {
            store_waker(&mut self.waker, cx);
            return (Poll::Pending, confirmed, reopened);
        }
        for frame in self.frames.drain(..) {
            let (message, id) = match frame {
                Outbound::Queued(id, payload) => (into_message(payload), Some(id)),
                Outbound::Control(payload) => (into_message(payload), None),
                Outbound::Ping => (Message::Ping(Bytes::new()), None),
                Outbound::Close { code, reason } => (
                    Message::Close(Some(CloseFrame {
                        code: code.into(),
                        reason: reason.into(),
                    })),
                    None,
                ),
            };
            self.taken_end += wire_len(&message);
            if let Some(id) = id {
                self.in_flight.push_back(InFlight {
                    end: self.taken_end,
                    id,
                    message: message.clone(),
                });
            }
            into.push_back(message);
        }
        self.queued_waiting = 0;
        (Poll::Ready(()), confirmed, reopened)
    }

    /// Drops the messages the OS has wholly accepted; returns them counted.
    fn confirm(&mut self) -> Written {
        let written = self.written.load(Ordering::Acquire);
        let mut done = Written::default();
        while self.in_flight.front().is_some_and(|m| m.end <= written) {
            if let Some(message) = self.in_flight.pop_front() {
                done.messages += 1;
                done.bytes += message.message.len();
            }
        }
        done
    }

    /// The socket is gone: the application messages it never wrote, oldest first, and
    /// the writer's waker, so that it finds its slot gone and ends.
    pub(crate) fn finish(mut self) -> (Vec<Unsent>, Option<Waker>) {
        self.confirm();
        let taken = self.in_flight.into_iter().map(|message| Unsent {
            id: message.id,
            payload: into_payload(message.message),
        });
        let waiting = self.frames.into_iter().filter_map(|frame| match frame {
            Outbound::Queued(id, payload) => Some(Unsent { id, payload }),
            _ => None,
        });
        (taken.chain(waiting).collect(), self.waker)
    }
}

fn into_message(payload: Payload) -> Message {
    match payload {
        Payload::Text(text) => Message::Text(text.into()),
        Payload::Binary(bytes) => Message::Binary(bytes.into()),
    }
}

/// Back from a frame that was never written: a copy, on this rare path only.
fn into_payload(message: Message) -> Payload {
    match message {
        Message::Text(text) => Payload::Text(text.as_str().to_owned()),
        other => Payload::Binary(other.into_data().to_vec()),
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
    use std::task::Waker;

    fn take(slot: &mut WriterSlot) -> (VecDeque<Message>, usize) {
        let mut into = VecDeque::new();
        let mut cx = Context::from_waker(Waker::noop());
        let (_, confirmed, _) = slot.poll_take(&mut into, &mut cx);
        (into, confirmed.messages)
    }

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

    /// A socket id and two message ids, as a session hands them out.
    fn ids() -> (ConnId, [MsgId; 2]) {
        use resilient_ws_core::{Command, Config, Session, Timestamp};
        let mut session = Session::new(Config::new("ws://h"), 0).unwrap();
        session.connect(Timestamp::ZERO);
        let Some(Command::Open(open)) = session.poll_command() else {
            unreachable!("connect opens a socket")
        };
        let mut send = || session.send("x".into(), Timestamp::ZERO).unwrap();
        (open.conn, [send(), send()])
    }

    #[test]
    fn a_message_counts_as_written_only_once_all_its_bytes_are() {
        let (conn, ids) = ids();
        let mut slot = WriterSlot::new(conn);
        let counter = slot.written_counter();
        slot.push(Outbound::Ping);
        slot.push(Outbound::Queued(ids[0], "first".into()));
        slot.push(Outbound::Queued(ids[1], "second".into()));
        assert_eq!(take(&mut slot).0.len(), 3);
        // The ping (6) and "first" (11) but one byte.
        counter.store(6 + 10, Ordering::Release);
        assert_eq!(take(&mut slot).1, 0);
        counter.store(6 + 11, Ordering::Release);
        assert_eq!(take(&mut slot).1, 1);
        slot.push(Outbound::Queued(ids[0], "third".into()));
        let (unwritten, _) = slot.finish();
        let texts: Vec<Payload> = unwritten.into_iter().map(|m| m.payload).collect();
        assert_eq!(texts, [Payload::from("second"), Payload::from("third")]);
    }
}
