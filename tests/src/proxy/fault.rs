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
    /// Reset (TCP RST) every open connection, both sides, now; reset new ones as soon as accepted.
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

/// Waits until the fault satisfies `condition`. If the proxy is gone (the sender dropped) this
/// never returns: the proxy's tasks are being aborted then, and returning would make callers spin.
pub(crate) async fn wait_for_fault(
    faults: &mut watch::Receiver<Fault>,
    condition: impl FnMut(&Fault) -> bool,
) {
    if faults.wait_for(condition).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Waits until the fault is [`Fault::Reset`].
pub(crate) async fn reset_requested(faults: &mut watch::Receiver<Fault>) {
    wait_for_fault(faults, |fault| *fault == Fault::Reset).await;
}
