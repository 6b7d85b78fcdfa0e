//! The outbound queue: what the application sent that has not yet been handed to a socket,
//! and, for drivers that confirm writes, what was handed over but not yet written.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::error::SendError;
use crate::ids::MsgId;
use crate::payload::Payload;

/// Bounds of the outbound queue. A send that would cross either is refused and the message
/// handed back; nothing is dropped silently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueBounds {
    /// Most messages waiting at once. Default 1,024.
    pub max_messages: usize,
    /// Most payload bytes waiting at once. Default 1 MiB.
    pub max_bytes: usize,
}

impl QueueBounds {
    /// Whether a message of `len` bytes fits beside `usage`; hands `payload` back in the
    /// error when it does not. The session's own queue asks this, and so may a driver
    /// that admits messages on another thread before they reach the session.
    pub fn admit(&self, usage: QueueUsage, payload: Payload) -> Result<Payload, SendError> {
        let len = payload.len();
        if len > self.max_bytes {
            return Err(SendError::TooLarge {
                payload,
                max_bytes: self.max_bytes,
            });
        }
        if usage.messages >= self.max_messages || usage.bytes + len > self.max_bytes {
            return Err(SendError::QueueFull {
                payload,
                queued: usage.messages,
                queued_bytes: usage.bytes,
            });
        }
        Ok(payload)
    }
}

/// What counts against the queue's bounds: messages waiting, plus those handed to a socket
/// and not yet confirmed written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueUsage {
    /// Messages.
    pub messages: usize,
    /// Their payload bytes.
    pub bytes: usize,
}

impl core::ops::Add for QueueUsage {
    type Output = Self;

    fn add(self, other: Self) -> Self {
        Self {
            messages: self.messages + other.messages,
            bytes: self.bytes + other.bytes,
        }
    }
}

impl Default for QueueBounds {
    fn default() -> Self {
        Self {
            max_messages: 1024,
            max_bytes: 1024 * 1024,
        }
    }
}

/// A message the session accepted but never handed to a socket, given back to the
/// application when the session closes or fails.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsent {
    /// The id `send` returned.
    pub id: MsgId,
    /// The message.
    pub payload: Payload,
}

/// Messages in the order they were sent, bounded by count and bytes. Messages handed to
/// a socket and not yet confirmed written count against the bounds too: a peer that
/// stops reading fills the queue, and `send` says so, instead of a writer's buffer
/// growing behind it.
#[derive(Clone, Debug, Default)]
pub(crate) struct OutboundQueue {
    messages: VecDeque<Unsent>,
    bytes: usize,
    /// Handed to a socket, not yet confirmed written: how many, and their bytes.
    in_flight: usize,
    in_flight_bytes: usize,
    bounds: QueueBounds,
}

impl OutboundQueue {
    pub(crate) fn new(bounds: QueueBounds) -> Self {
        Self {
            messages: VecDeque::new(),
            bytes: 0,
            in_flight: 0,
            in_flight_bytes: 0,
            bounds,
        }
    }

    /// Appends a message, or hands it back when it does not fit.
    pub(crate) fn push(&mut self, id: MsgId, payload: Payload) -> Result<(), SendError> {
        let payload = self.bounds.admit(self.usage(), payload)?;
        self.bytes += payload.len();
        self.messages.push_back(Unsent { id, payload });
        Ok(())
    }

    /// What counts against the bounds now.
    pub(crate) fn usage(&self) -> QueueUsage {
        QueueUsage {
            messages: self.messages.len() + self.in_flight,
            bytes: self.bytes + self.in_flight_bytes,
        }
    }

    /// The oldest message.
    pub(crate) fn pop(&mut self) -> Option<Unsent> {
        let message = self.messages.pop_front()?;
        self.bytes -= message.payload.len();
        Some(message)
    }

    /// The oldest message, kept counted as in flight until [`confirm`](Self::confirm)
    /// or [`requeue`](Self::requeue).
    pub(crate) fn pop_in_flight(&mut self) -> Option<Unsent> {
        let message = self.pop()?;
        self.in_flight += 1;
        self.in_flight_bytes += message.payload.len();
        Some(message)
    }

    /// The `messages` oldest messages in flight, of `bytes` bytes together, were written;
    /// returns how many of them there were.
    pub(crate) fn confirm(&mut self, messages: usize, bytes: usize) -> usize {
        let messages = messages.min(self.in_flight);
        self.in_flight -= messages;
        self.in_flight_bytes = self.in_flight_bytes.saturating_sub(bytes);
        messages
    }

    /// The socket is gone: `unwritten` (the newest messages in flight, oldest first) go
    /// back to the front of the queue; the rest of those in flight were written. Returns
    /// how many were written.
    pub(crate) fn requeue(&mut self, unwritten: Vec<Unsent>) -> usize {
        let written = self.in_flight.saturating_sub(unwritten.len());
        self.in_flight = 0;
        self.in_flight_bytes = 0;
        for message in unwritten.into_iter().rev() {
            self.bytes += message.payload.len();
            self.messages.push_front(message);
        }
        written
    }

    /// Whether messages handed to a socket wait for the driver's word on them.
    pub(crate) fn has_in_flight(&self) -> bool {
        self.in_flight > 0
    }

    /// Empties the queue, oldest first.
    pub(crate) fn take_all(&mut self) -> Vec<Unsent> {
        self.bytes = 0;
        // Popped one by one: `drain` and `Vec::from` each add their own code to the
        // browser build for what pop_front already does.
        let mut all = Vec::with_capacity(self.messages.len());
        while let Some(message) = self.messages.pop_front() {
            all.push(message);
        }
        all
    }

    pub(crate) fn len(&self) -> usize {
        self.messages.len()
    }

    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::prelude::rust_2024::*;

    fn queue(max_messages: usize, max_bytes: usize) -> OutboundQueue {
        OutboundQueue::new(QueueBounds {
            max_messages,
            max_bytes,
        })
    }

    #[test]
    fn keeps_order_and_counts_bytes() {
        let mut q = queue(10, 100);
        q.push(MsgId(1), "ab".into()).unwrap();
        q.push(MsgId(2), "cde".into()).unwrap();
        assert_eq!((q.len(), q.bytes()), (2, 5));
        assert_eq!(q.pop().unwrap().id, MsgId(1));
        assert_eq!(q.bytes(), 3);
        assert_eq!(q.take_all()[0].id, MsgId(2));
        assert!(q.is_empty());
        assert_eq!(q.bytes(), 0);
    }

    #[test]
    fn full_by_count_hands_the_message_back() {
        let mut q = queue(1, 100);
        q.push(MsgId(1), "a".into()).unwrap();
        let err = q.push(MsgId(2), "b".into()).unwrap_err();
        assert!(matches!(err, SendError::QueueFull { queued: 1, .. }));
        assert_eq!(err.into_payload(), Payload::from("b"));
    }

    #[test]
    fn messages_in_flight_count_against_the_bounds_until_confirmed() {
        let mut q = queue(2, 100);
        q.push(MsgId(1), "a".into()).unwrap();
        q.push(MsgId(2), "b".into()).unwrap();
        assert_eq!(q.pop_in_flight().unwrap().id, MsgId(1));
        assert!(
            q.push(MsgId(3), "c".into()).is_err(),
            "one queued, one in flight"
        );
        assert_eq!(q.confirm(5, 1), 1);
        q.push(MsgId(3), "c".into()).unwrap();
    }

    #[test]
    fn unwritten_messages_go_back_to_the_front_in_order() {
        let mut q = queue(10, 100);
        for id in 1..=4 {
            q.push(MsgId(id), "x".into()).unwrap();
        }
        let handed: Vec<Unsent> = (0..3).map(|_| q.pop_in_flight().unwrap()).collect();
        assert_eq!(q.confirm(1, 1), 1);
        let written = q.requeue(handed[1..].to_vec());
        assert_eq!(written, 0);
        let order: Vec<u64> = q.take_all().iter().map(|m| m.id.get()).collect();
        assert_eq!(order, [2, 3, 4]);
    }

    #[test]
    fn full_by_bytes_and_too_large() {
        let mut q = queue(10, 4);
        q.push(MsgId(1), "abc".into()).unwrap();
        assert!(matches!(
            q.push(MsgId(2), "de".into()),
            Err(SendError::QueueFull {
                queued_bytes: 3,
                ..
            })
        ));
        assert!(matches!(
            q.push(MsgId(3), "abcde".into()),
            Err(SendError::TooLarge { max_bytes: 4, .. })
        ));
        assert_eq!(q.len(), 1);
    }
}
