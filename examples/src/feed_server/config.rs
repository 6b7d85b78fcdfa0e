//! What a feed server is started with.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use resilient_ws_server::HubConfig;

use super::error::FeedServerError;
use super::feed::Faults;

/// Configuration of a feed server. Build it with struct update syntax over [`FeedConfig::default`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedConfig {
    /// Address to listen on. Default `127.0.0.1:0` (an ephemeral port, read it back with
    /// [`FeedServerHandle::addr`](super::FeedServerHandle::addr)).
    pub listen: SocketAddr,
    /// Messages published per second; `0` publishes the whole feed (up to `total`, which it
    /// then requires) before the server starts listening, so every message is available at once
    /// and each connection sends as fast as it can. Default 10.
    pub rate: u32,
    /// Last sequence number of the feed; `None` means the feed never ends. Default `None`.
    pub total: Option<u64>,
    /// Length of the `data` padding in each message, in bytes. Default 32.
    pub payload_bytes: usize,
    /// When true, a client without `?cursor=` starts after the current head (only new messages,
    /// the hub's `StartPoint::Live`) instead of at the oldest message kept. Default false.
    pub start_live: bool,
    /// Whether every `/feed` connection starts with the hub's welcome frame
    /// (`{"type":"welcome","epoch":..,"resumed":..,"reason":..,"from":..,"head":..}`). Without
    /// it, a cursor that cannot be resumed is refused with close code 4001. Default true.
    pub welcome: bool,
    /// Messages the replay buffer keeps (the oldest go first); a client whose cursor is older
    /// is told `cursor_too_old`. Default [`FeedConfig::DEFAULT_HISTORY`].
    pub history: usize,
    /// A file that keeps the history (epoch, head and buffer) across process restarts, so
    /// clients resume exactly once; `None` keeps it in memory only (each start is a new
    /// epoch). Default `None`.
    pub history_file: Option<PathBuf>,
    /// How often each connection is pinged (`Duration::ZERO`: never). Default the hub's, 15 s.
    pub ping_interval: Duration,
    /// A connection from which no frame arrives within this long after a ping is dropped as
    /// dead. Default the hub's, 10 s.
    pub ping_timeout: Duration,
    /// Faults active from the start; they can be changed at runtime. Default: none.
    pub faults: Faults,
    /// How many client messages the in-memory log keeps (oldest are forgotten first). Default 10,000.
    pub received_log_capacity: usize,
    /// Deadline for a client to send its whole HTTP request head; a client that misses it is
    /// disconnected without an answer. Default 10 s.
    pub request_head_timeout: Duration,
    /// Directories whose files are served over plain HTTP `GET` and `HEAD`, each under a URL
    /// prefix: `("/", "examples/dashboard")`, `("/pkg", "client-wasm/pkg")`. The longest
    /// matching prefix wins; `/feed` and `/control/...` always come first (and cannot be
    /// prefixes); a directory path serves its `index.html`. A request path cannot leave its
    /// directory (`..` is refused), but symbolic links inside it are followed. Every directory
    /// must exist when the server starts. Default: none.
    pub static_dirs: Vec<(String, PathBuf)>,
}

impl FeedConfig {
    /// Default of [`history`](Self::history): 1,000,000 messages, more than any test or demo
    /// publishes, so every cursor of a run can be resumed.
    pub const DEFAULT_HISTORY: usize = 1_000_000;
}

impl Default for FeedConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            rate: 10,
            total: None,
            payload_bytes: 32,
            start_live: false,
            welcome: true,
            history: Self::DEFAULT_HISTORY,
            history_file: None,
            ping_interval: HubConfig::DEFAULT_PING_INTERVAL,
            ping_timeout: HubConfig::DEFAULT_PING_TIMEOUT,
            faults: Faults::default(),
            received_log_capacity: 10_000,
            request_head_timeout: Duration::from_secs(10),
            static_dirs: Vec::new(),
        }
    }
}

impl FeedConfig {
    /// Checks that the configuration can be carried out: valid faults, and a `total` for
    /// rate 0 (an endless feed published as fast as possible would never stop).
    pub(crate) fn validate(&self) -> Result<(), FeedServerError> {
        self.faults.validate()?;
        if self.rate == 0 && self.total.is_none() {
            return Err(FeedServerError::InvalidConfig(
                "rate 0 (as fast as possible) needs a total".into(),
            ));
        }
        Ok(())
    }
}
