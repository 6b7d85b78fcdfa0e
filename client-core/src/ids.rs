//! Identifiers the core hands out.

use core::fmt;

/// Names one socket. Every `Open` command carries a fresh one, and every input from the
/// driver carries the id of the socket it came from, so input from an abandoned socket
/// is recognised and ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConnId(pub(crate) u64);

impl ConnId {
    /// The number behind the id, for logs and spans.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

/// Names one message the application sent, in the order it was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MsgId(pub(crate) u64);

impl MsgId {
    /// An id numbered by the driver, for [`Session::send_as`](crate::Session::send_as):
    /// ids start at 1 and increase in the order messages are sent.
    pub const fn new(id: u64) -> Self {
        Self(id)
    }

    /// The number behind the id: ids increase in the order `send` accepted the messages.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for MsgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "msg#{}", self.0)
    }
}

/// Hands out increasing ids.
#[derive(Clone, Debug, Default)]
pub(crate) struct IdSequence {
    last: u64,
}

impl IdSequence {
    /// The id `next` will return.
    pub(crate) fn peek(&self) -> u64 {
        self.last + 1
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.last += 1;
        self.last
    }

    /// Goes on after `used`, an id handed out elsewhere.
    pub(crate) fn skip_past(&mut self, used: u64) {
        self.last = self.last.max(used);
    }
}
