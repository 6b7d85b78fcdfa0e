//! The current socket's outbound frames, waiting for its writer.
//!
//! The session hands queued application messages over only while fewer than
//! [`WRITE_WINDOW`] are on their way to the socket (waiting here or being written), so a
//! slow network fills the session's bounded queue and `send` reports it, instead of a
//! queue here growing behind the scenes.

use std::collections::VecDeque;
use std::task::{Context, Poll, Waker};

use resilient_ws_core::{ConnId, Payload};

use crate::shared::store_waker;

/// Queued application messages handed to the writer and not yet flushed, at most.
pub(crate) const WRITE_WINDOW: usize = 256;

/// A frame for the writer.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// An application message from the queue; counted against the write window.
    Queued(Payload),
    /// A message the session made itself (resume request, heartbeat probe).
    Control(Payload),
    Ping,
    Close {
        code: u16,
        reason: String,
    },
}

/// Frames for one socket, from its `Open` until its `Abort`.
#[derive(Debug)]
pub(crate) struct WriterSlot {
    pub(crate) conn: ConnId,
    frames: VecDeque<Outbound>,
    /// How many of `frames` are queued application messages.
    queued_waiting: usize,
    /// Queued application messages waiting here or being written.
    in_flight: usize,
    /// The writer, waiting for frames.
    waker: Option<Waker>,
}

impl WriterSlot {
    pub(crate) fn new(conn: ConnId) -> Self {
        Self {
            conn,
            frames: VecDeque::new(),
            queued_waiting: 0,
            in_flight: 0,
            waker: None,
        }
    }

    /// Whether the writer may be handed another queued message.
    pub(crate) fn has_room(&self) -> bool {
        self.in_flight < WRITE_WINDOW
    }

    /// Adds a frame; returns the writer's waker if it was waiting for one.
    pub(crate) fn push(&mut self, frame: Outbound) -> Option<Waker> {
        if matches!(frame, Outbound::Queued(_)) {
            self.queued_waiting += 1;
            self.in_flight += 1;
        }
        self.frames.push_back(frame);
        self.waker.take()
    }

    /// For the writer: counts `flushed` queued messages as gone, then takes every frame
    /// waiting into `into` and returns how many of them are queued messages; pending
    /// (and woken by the next frame) when none wait. The second value says whether the
    /// window was full before, so the session may hand over more now.
    pub(crate) fn poll_take(
        &mut self,
        flushed: usize,
        into: &mut VecDeque<Outbound>,
        cx: &mut Context<'_>,
    ) -> (Poll<usize>, bool) {
        let was_full = !self.has_room();
        self.in_flight -= flushed;
        let reopened = was_full && self.has_room();
        if self.frames.is_empty() {
            store_waker(&mut self.waker, cx);
            return (Poll::Pending, reopened);
        }
        std::mem::swap(&mut self.frames, into);
        (
            Poll::Ready(std::mem::take(&mut self.queued_waiting)),
            reopened,
        )
    }

    /// The writer's waker, so that it finds its slot gone and ends.
    pub(crate) fn into_waker(self) -> Option<Waker> {
        self.waker
    }
}
