//! The columns of the matrix: what the application does meanwhile.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use resilient_ws::Client;
use resilient_ws_tests::matrix::SendLedger;
use tokio::task::JoinHandle;
use tokio::time::{MissedTickBehavior, interval};

/// Bytes of each message the sender sends.
pub(crate) const SEND_SIZE: usize = 100;
/// Bytes each of those takes on the wire from the client: a 2-byte header and a 4-byte mask.
pub(crate) const SEND_FRAME: u64 = SEND_SIZE as u64 + 6;
/// The sender's pace: this many messages every tick (2,000 a second).
const SEND_BURST: usize = 4;
const SEND_TICK: Duration = Duration::from_millis(2);

/// One traffic pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Traffic {
    /// Connected, nothing flows (a few feed messages at the start).
    Idle,
    /// The feed streams at 1,000 messages a second; the application reads every event.
    Receiving,
    /// The application sends 2,000 messages a second; the feed is idle.
    Sending,
    /// Both at once.
    Both,
    /// The application never reads its events until the fault has been lifted for a while
    /// (several heartbeat windows in all): a short feed fills its event buffer exactly, so
    /// the client holds it up with no data waiting on the socket.
    ConsumerStalled,
}

impl Traffic {
    /// Every column, in the order printed.
    pub(crate) const ALL: [Self; 5] = [
        Self::Idle,
        Self::Receiving,
        Self::Sending,
        Self::Both,
        Self::ConsumerStalled,
    ];

    /// The column's name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Receiving => "receiving",
            Self::Sending => "sending",
            Self::Both => "both",
            Self::ConsumerStalled => "consumer stalled",
        }
    }

    /// Whether the feed streams.
    pub(crate) fn receives(self) -> bool {
        matches!(self, Self::Receiving | Self::Both)
    }

    /// Whether the application sends.
    pub(crate) fn sends(self) -> bool {
        matches!(self, Self::Sending | Self::Both)
    }

    /// Whether the application stops reading its events.
    pub(crate) fn stalls(self) -> bool {
        self == Self::ConsumerStalled
    }
}

/// Sends numbered messages at a steady pace until stopped.
pub(crate) struct Sender {
    stop: Arc<AtomicBool>,
    task: JoinHandle<SendLedger>,
}

impl Sender {
    /// Starts sending through `client`.
    pub(crate) fn spawn(client: Client) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let task = tokio::spawn(async move {
            let mut ledger = SendLedger::new("m", SEND_SIZE);
            let mut ticks = interval(SEND_TICK);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            while !stopped.load(Ordering::Relaxed) {
                ticks.tick().await;
                for _ in 0..SEND_BURST {
                    let (n, text) = ledger.next_message();
                    match client.send_text(text) {
                        Ok(_) => ledger.accepted(n),
                        Err(_) => ledger.refused(),
                    }
                }
            }
            ledger
        });
        Self { stop, task }
    }

    /// Stops sending and returns what was sent.
    pub(crate) async fn stop(self) -> Result<SendLedger, String> {
        self.stop.store(true, Ordering::Relaxed);
        self.task
            .await
            .map_err(|error| format!("the sender failed: {error}"))
    }
}
