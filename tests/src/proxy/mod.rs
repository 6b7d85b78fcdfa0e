//! A fault-injecting TCP proxy on 127.0.0.1, placed between a client and a real server.
//!
//! Every connection is proxied by two directional pumps with bounded buffers, run together in
//! one task so that a reset or a shutdown ends both at once and the live count stays exact.

mod audit;
mod connection;
mod fault;
mod pump;
mod splitmix;
mod tap;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::net::TcpListener;
use tracing::debug;

use crate::accept_loop::AcceptLoop;
use crate::live_count::LiveCount;
use audit::SocketAudit;
pub use audit::SocketOverlap;
use connection::ClientSocket;
pub use fault::Fault;
use fault::FaultControl;
pub use tap::TappedMessage;
use tap::UpstreamTap;

/// Seed used by [`FaultProxy::start`], so runs are reproducible unless a test picks its own.
pub const DEFAULT_SEED: u64 = 0x5EED_0F0F_FA17_CAFE;

/// What the accept loop and the connection tasks share.
#[derive(Debug)]
struct ProxyState {
    upstream: SocketAddr,
    seed: u64,
    faults: FaultControl,
    accepted: AtomicU64,
    live: Arc<LiveCount>,
    audit: SocketAudit,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
    /// Set by [`FaultProxy::start_tapped`]: what clients wrote, parsed.
    tap: Option<UpstreamTap>,
}

/// A TCP proxy from 127.0.0.1 to one upstream address that injects a [`Fault`] on demand.
///
/// ```no_run
/// # async fn demo(server: std::net::SocketAddr) -> std::io::Result<()> {
/// use resilient_ws_tests::{Fault, FaultProxy};
/// let proxy = FaultProxy::start(server).await?;
/// // point the client at proxy.addr() ... then break the network:
/// proxy.set_fault(Fault::Blackhole);
/// proxy.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<ProxyState>,
    accept_loop: AcceptLoop,
}

impl FaultProxy {
    /// Binds 127.0.0.1 on an ephemeral port and forwards to `upstream`, with [`DEFAULT_SEED`].
    pub async fn start(upstream: SocketAddr) -> io::Result<Self> {
        Self::start_seeded(upstream, DEFAULT_SEED).await
    }

    /// Like [`start`](Self::start), with the seed that draws `Fault::Latency` jitter.
    pub async fn start_seeded(upstream: SocketAddr, seed: u64) -> io::Result<Self> {
        Self::start_with(upstream, seed, false).await
    }

    /// Like [`start`](Self::start), and also parses what clients write (client to server) so
    /// that [`upstream_messages`](Self::upstream_messages) tells which messages each client
    /// put on the wire, and [`unread_upstream_bytes`](Self::unread_upstream_bytes) how much it
    /// has written that the proxy has not read yet.
    pub async fn start_tapped(upstream: SocketAddr) -> io::Result<Self> {
        Self::start_with(upstream, DEFAULT_SEED, true).await
    }

    async fn start_with(upstream: SocketAddr, seed: u64, tapped: bool) -> io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(ProxyState {
            upstream,
            seed,
            faults: FaultControl::new(),
            accepted: AtomicU64::new(0),
            live: Arc::new(LiveCount::default()),
            audit: SocketAudit::new(addr),
            bytes_up: AtomicU64::new(0),
            bytes_down: AtomicU64::new(0),
            tap: tapped.then(|| UpstreamTap::new(addr)),
        });
        let accept_state = Arc::clone(&state);
        let accept_loop = AcceptLoop::spawn(listener, move |socket, peer| {
            let index = accept_state.accepted.fetch_add(1, Ordering::SeqCst);
            accept_state.audit.on_accept(index, peer);
            if let Some(tap) = &accept_state.tap {
                tap.on_accept(index, peer);
            }
            let client = ClientSocket::new(socket, accept_state.live.enter());
            debug!(index, %peer, "proxy accepted a connection");
            let faults = accept_state.faults.watch();
            connection::admit(client, Arc::clone(&accept_state), faults, index)
        });
        debug!(%addr, %upstream, "fault proxy started");
        Ok(Self {
            addr,
            state,
            accept_loop,
        })
    }

    /// The address clients should connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Switches to `fault`; it acts on open and new connections as its variant documents.
    pub fn set_fault(&self, fault: Fault) {
        debug!(?fault, "proxy fault set");
        self.state.faults.set(fault);
    }

    /// The fault in force.
    pub fn fault(&self) -> Fault {
        self.state.faults.current()
    }

    /// TCP connections accepted so far, including reset and refused ones.
    pub fn connections_accepted(&self) -> u64 {
        self.state.accepted.load(Ordering::SeqCst)
    }

    /// Client-side connections open through the proxy right now.
    pub fn live_connections(&self) -> usize {
        self.state.live.live()
    }

    /// The most client-side connections that were ever open at the same time.
    pub fn max_live_connections(&self) -> usize {
        self.state.live.peak()
    }

    /// The most client sockets that were open at the same time as the kernel saw them,
    /// checked at every accept (see [`SocketOverlap`]); `None` where the kernel's TCP table
    /// cannot be read (it is Linux's `/proc/net/tcp`).
    ///
    /// Unlike [`max_live_connections`](Self::max_live_connections), which counts a
    /// connection until the proxy has finished tearing it down, this counts a client socket
    /// only until the client has closed it, so a client that closes its old socket and at
    /// once opens the next is not counted twice.
    pub fn max_open_client_sockets(&self) -> Option<usize> {
        self.state.audit.peak()
    }

    /// Every time a client socket was still open when the next connection was accepted.
    pub fn client_socket_overlaps(&self) -> Vec<SocketOverlap> {
        self.state.audit.overlaps()
    }

    /// Bytes forwarded from clients to the server.
    pub fn bytes_up(&self) -> u64 {
        self.state.bytes_up.load(Ordering::Relaxed)
    }

    /// Bytes forwarded from the server to clients.
    pub fn bytes_down(&self) -> u64 {
        self.state.bytes_down.load(Ordering::Relaxed)
    }

    /// With [`start_tapped`](Self::start_tapped): the data messages each client wrote that
    /// the proxy read, per connection (accept index from 0, in accept order), in the order
    /// written; control frames left out. Empty for a proxy started otherwise.
    pub fn upstream_messages(&self) -> Vec<(u64, Vec<TappedMessage>)> {
        self.state
            .tap
            .as_ref()
            .map(UpstreamTap::messages)
            .unwrap_or_default()
    }

    /// With [`start_tapped`](Self::start_tapped): for every connection whose client socket
    /// is still open or closing, the bytes its client has written to that socket that the
    /// proxy has not read yet (the client socket's send queue and the proxy socket's receive
    /// queue, from the kernel's TCP table). `None` without the tap or where the table cannot
    /// be read (it is Linux's `/proc/net/tcp`).
    pub fn unread_upstream_bytes(&self) -> Option<Vec<(u64, u64)>> {
        self.state.tap.as_ref()?.unread_bytes()
    }

    /// With [`start_tapped`](Self::start_tapped): per connection (accept index), the most
    /// bytes its client had written that the proxy had not read, as measured by
    /// [`unread_upstream_bytes`](Self::unread_upstream_bytes) and when the proxy tore the
    /// connection down (what is unread then is lost with it). Empty without the tap.
    pub fn most_unread_upstream_bytes(&self) -> Vec<(u64, u64)> {
        self.state
            .tap
            .as_ref()
            .map(UpstreamTap::most_unread)
            .unwrap_or_default()
    }

    /// Stops accepting, closes every connection and waits until all proxy tasks have ended.
    pub async fn shutdown(mut self) {
        self.accept_loop.shutdown().await;
        debug!(addr = %self.addr, "fault proxy shut down");
    }
}
