//! Which messages the browser has written. A browser socket takes every `send` at once and
//! holds what it has not yet passed on in `bufferedAmount`, so "written" here means "left
//! that buffer": of the bytes handed to the socket, the first `handed - bufferedAmount`
//! have left. The messages still in the buffer when the socket ends are known exactly
//! (the value stays after the close) and go back to the session.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use resilient_ws_core::{ConnId, MsgId, Payload, Unsent};

/// The current socket's application messages that have not yet left its buffer.
#[derive(Default)]
pub(crate) struct Writes {
    /// The socket they went to.
    conn: Option<ConnId>,
    /// Bytes handed to that socket so far, heartbeat probes included, counted as
    /// `bufferedAmount` counts them (a text's UTF-8 length, which is its Rust length).
    handed: f64,
    /// The messages not yet seen to leave, oldest first, each with `handed` at its end.
    waiting: VecDeque<(f64, Unsent)>,
}

impl Writes {
    /// A new socket: nothing handed to it yet.
    pub(crate) fn opened(&mut self, conn: ConnId) {
        self.conn = Some(conn);
        self.handed = 0.0;
    }

    /// The socket `waiting` messages went to, while any wait.
    pub(crate) fn pending(&self) -> Option<ConnId> {
        self.conn.filter(|_| !self.waiting.is_empty())
    }

    /// `payload` was handed to the socket; `id` for an application message.
    pub(crate) fn handed(&mut self, id: Option<MsgId>, payload: Payload) {
        self.handed += payload.len() as f64;
        if let Some(id) = id {
            self.waiting
                .push_back((self.handed, Unsent { id, payload }));
        }
    }

    /// How many of the oldest waiting messages have left, and their bytes, with
    /// `buffered` bytes still in the socket's buffer; they wait no more. NaN (no socket
    /// to ask) confirms none.
    pub(crate) fn left(&mut self, buffered: f64) -> (usize, usize) {
        let gone = self.handed - buffered;
        let (mut messages, mut bytes) = (0, 0);
        while self.waiting.front().is_some_and(|(end, _)| *end <= gone) {
            if let Some((_, message)) = self.waiting.pop_front() {
                messages += 1;
                bytes += message.payload.len();
            }
        }
        (messages, bytes)
    }

    /// Socket `conn` ended with `buffered` bytes never sent: the messages that never left,
    /// oldest first, for `Session::return_unwritten`; None when `conn` is not the socket
    /// tracked here.
    pub(crate) fn ended(&mut self, conn: ConnId, buffered: f64) -> Option<Vec<Unsent>> {
        if self.conn != Some(conn) {
            return None;
        }
        self.conn = None;
        self.left(buffered);
        let mut unwritten = Vec::with_capacity(self.waiting.len());
        while let Some((_, message)) = self.waiting.pop_front() {
            unwritten.push(message);
        }
        Some(unwritten)
    }
}
