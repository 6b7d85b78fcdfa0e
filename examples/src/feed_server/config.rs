//! What a feed server is started with.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::feed::Faults;

/// Configuration of a feed server. Build it with struct update syntax over [`FeedConfig::default`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedConfig {
    /// Address to listen on. Default `127.0.0.1:0` (an ephemeral port, read it back with
    /// [`FeedServerHandle::addr`](super::FeedServerHandle::addr)).
    pub listen: SocketAddr,
    /// Messages produced per second; `0` means every message is available at once and each
    /// connection sends as fast as it can. Default 10.
    pub rate: u32,
    /// Last sequence number of the feed; `None` means the feed never ends. Default `None`.
    pub total: Option<u64>,
    /// Length of the `data` padding in each message, in bytes. Default 32.
    pub payload_bytes: usize,
    /// When true, a client without `?cursor=` starts after the current head (only new messages)
    /// instead of at message 1. Default false.
    pub start_live: bool,
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

impl Default for FeedConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            rate: 10,
            total: None,
            payload_bytes: 32,
            start_live: false,
            faults: Faults::default(),
            received_log_capacity: 10_000,
            request_head_timeout: Duration::from_secs(10),
            static_dirs: Vec::new(),
        }
    }
}
