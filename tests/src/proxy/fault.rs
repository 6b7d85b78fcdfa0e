//! The faults the proxy can inject, and how its tasks wait for the fault to change.

use std::time::Duration;

use tokio::sync::watch;

/// A network failure injected by [`FaultProxy`](super::FaultProxy).
///
/// Each variant says whether it acts on connections already open, on new ones, or both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Fault {
    /// Forward everything unchanged.
    #[default]
    None,
    /// Reset (TCP RST), on both sides, every connection open when this is set, even if another
    /// fault replaces it at once; while in force, reset new connections as soon as accepted.
    Reset,
    /// Forward nothing in either direction but keep both sockets open, so the client sees a
    /// half-open connection; open and new connections alike. Bytes are held, not lost (a bounded
    /// amount, then TCP pushes back), and flow again once the fault is lifted, as after a healed
    /// partition. A client that closes its end while blackholed is noticed and torn down.
    Blackhole,
    /// Accept new TCP connections but never connect upstream nor forward a byte, so a WebSocket
    /// handshake stalls. Such a connection stays stalled even after the fault is lifted; open
    /// connections pass unchanged.
    StallHandshake,
    /// Forward in writes of at most `max_segment` bytes (0 counts as 1), `delay` apart, with
    /// TCP_NODELAY so each write leaves as its own segment; open and new connections.
    Slice {
        /// Largest write, in bytes.
        max_segment: usize,
        /// Pause between two writes in the same direction.
        delay: Duration,
    },
    /// Close a connection, both sides, once `bytes` have been forwarded downstream (server to
    /// client) on it, counted from when the fault reached it; new connections count from their
    /// first byte, handshake included. The last write is trimmed so exactly `bytes` arrive.
    CutAfter {
        /// Downstream bytes let through before the cut.
        bytes: u64,
    },
    /// When one side closes (EOF), wait `delay` before closing towards the other side.
    SlowClose {
        /// How long a close is held back.
        delay: Duration,
    },
    /// Deliver each chunk `base` plus a random part of `jitter` after it was read, keeping the
    /// order within each direction; the randomness comes from the proxy's seed.
    Latency {
        /// Delay every chunk gets.
        base: Duration,
        /// Upper bound (exclusive) of the random extra delay.
        jitter: Duration,
    },
    /// Accept new connections and close them at once, as a server that is going away would;
    /// open connections pass unchanged.
    Refuse,
}

/// The proxy's side of the fault: the fault in force, plus a count of resets so that a `Reset`
/// lifted at once still reaches every connection that was open when it was set.
#[derive(Debug)]
pub(crate) struct FaultControl {
    fault: watch::Sender<Fault>,
    resets: watch::Sender<u64>,
}

impl FaultControl {
    pub(crate) fn new() -> Self {
        Self {
            fault: watch::Sender::new(Fault::None),
            resets: watch::Sender::new(0),
        }
    }

    /// Puts `fault` in force.
    pub(crate) fn set(&self, fault: Fault) {
        if fault == Fault::Reset {
            self.resets.send_modify(|resets| *resets += 1);
        }
        self.fault.send_replace(fault);
    }

    /// The fault in force.
    pub(crate) fn current(&self) -> Fault {
        self.fault.borrow().clone()
    }

    /// A view for a new connection: only resets from now on concern it.
    pub(crate) fn watch(&self) -> FaultWatch {
        FaultWatch {
            fault: self.fault.subscribe(),
            resets: self.resets.subscribe(),
        }
    }
}

/// A connection's view of the fault.
#[derive(Debug, Clone)]
pub(crate) struct FaultWatch {
    fault: watch::Receiver<Fault>,
    resets: watch::Receiver<u64>,
}

impl FaultWatch {
    /// The fault in force.
    pub(crate) fn current(&self) -> Fault {
        self.fault.borrow().clone()
    }

    /// Waits until the fault satisfies `condition`.
    pub(crate) async fn wait_until(&mut self, condition: impl FnMut(&Fault) -> bool) {
        if self.fault.wait_for(condition).await.is_err() {
            proxy_gone().await;
        }
    }

    /// Waits until a `Reset` is set after this view was made.
    pub(crate) async fn reset_requested(&mut self) {
        if self.resets.changed().await.is_err() {
            proxy_gone().await;
        }
    }
}

/// Once the proxy is gone its tasks are being aborted: never return, so no caller spins.
async fn proxy_gone() {
    std::future::pending::<()>().await;
}
