//! The rows of the matrix: what goes wrong.

use std::time::Duration;

use crate::timing::{BACKOFF_MAX, CONNECT_TIMEOUT, HEARTBEAT_INTERVAL, HEARTBEAT_TIMEOUT};

/// What a flapping server sends before it drops each connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlapData {
    /// Nothing: it drops right after the handshake.
    Nothing,
    /// One new feed message.
    New,
    /// One message the client already has (a replay of its cursor).
    Replayed,
}

/// One fault, injected once the client has warmed up, lifted after its hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// TCP reset of the open connection (both sides), at once.
    Reset,
    /// Nothing crosses in either direction, sockets stay open, for a while.
    Blackhole,
    /// The current connection drops and every new handshake stalls, for a while.
    Stall,
    /// The link carries 64-byte writes 2 ms apart (32 KB/s each way) for 2.5 s, then the
    /// connection is reset: the peer reads slower than a fast client writes (the heartbeat's
    /// pings wait behind the data), and the connection breaks with the client's buffers full.
    SlowReads,
    /// The server closes with this code.
    Close(u16),
    /// The server drops the connection without a close frame (1006).
    Abnormal,
    /// The server stops (listener and connections) and comes back on the same port.
    Restart,
    /// The current connection drops and every handshake is refused with 503 (and this
    /// Retry-After, in seconds), for a while.
    Refuse(Option<u32>),
    /// The current connection drops and every new one is dropped by the server after
    /// sending this, for a while.
    Flap(FlapData),
}

impl Fault {
    /// Every row, in the order printed.
    pub(crate) const ALL: [Self; 17] = [
        Self::Reset,
        Self::Blackhole,
        Self::Stall,
        Self::SlowReads,
        Self::Close(1000),
        Self::Close(1001),
        Self::Close(1011),
        Self::Close(1012),
        Self::Close(1013),
        Self::Abnormal,
        Self::Restart,
        Self::Refuse(None),
        Self::Refuse(Some(1)),
        Self::Refuse(Some(0)),
        Self::Flap(FlapData::Nothing),
        Self::Flap(FlapData::New),
        Self::Flap(FlapData::Replayed),
    ];

    /// The row's name.
    pub(crate) fn name(self) -> String {
        match self {
            Self::Reset => "TCP reset".into(),
            Self::Blackhole => "blackhole".into(),
            Self::Stall => "stalled handshakes".into(),
            Self::SlowReads => "slow reads, then reset".into(),
            Self::Close(code) => format!("server close {code}"),
            Self::Abnormal => "server drop (1006)".into(),
            Self::Restart => "server restart".into(),
            Self::Refuse(None) => "refused 503".into(),
            Self::Refuse(Some(seconds)) => format!("refused 503, Retry-After {seconds}"),
            Self::Flap(FlapData::Nothing) => "flapping, no data".into(),
            Self::Flap(FlapData::New) => "flapping, new data".into(),
            Self::Flap(FlapData::Replayed) => "flapping, replays".into(),
        }
    }

    /// How long the fault is held before it is lifted.
    pub(crate) fn hold(self) -> Duration {
        match self {
            Self::Reset | Self::Close(_) | Self::Abnormal => Duration::ZERO,
            Self::Blackhole | Self::Restart | Self::Refuse(None) | Self::Refuse(Some(0)) => {
                Duration::from_millis(1200)
            }
            Self::Stall => Duration::from_millis(1600),
            Self::SlowReads => Duration::from_millis(2500),
            Self::Refuse(Some(_)) => Duration::from_millis(2600),
            Self::Flap(_) => Duration::from_millis(1500),
        }
    }

    /// Whether the client must keep making attempts while the fault is held: at least two
    /// (timers alive), also while the application does not read its events.
    pub(crate) fn retries_while_held(self) -> bool {
        matches!(
            self,
            Self::Stall | Self::Restart | Self::Refuse(_) | Self::Flap(_)
        )
    }

    /// Whether each new connection needs a new feed message to send (the feed must go on).
    pub(crate) fn needs_endless_feed(self) -> bool {
        self == Self::Flap(FlapData::New)
    }

    /// From the fault lifted (or the consumer back, if later) to the client open again with
    /// traffic flowing: the longest backoff window, a handshake that may have to time out,
    /// a dead connection the heartbeat may have to find, a server's Retry-After and its
    /// jitter, and two seconds of slack for a loaded machine.
    pub(crate) fn recovery_bound(self) -> Duration {
        let base = BACKOFF_MAX
            + CONNECT_TIMEOUT
            + HEARTBEAT_INTERVAL
            + HEARTBEAT_TIMEOUT
            // A loaded machine: the bound is there to catch timers that stopped, which
            // never recover at all.
            + Duration::from_secs(2);
        match self {
            Self::Refuse(Some(seconds)) => {
                base + Duration::from_secs(u64::from(seconds)) + BACKOFF_MAX
            }
            _ => base,
        }
    }
}
