//! One proxied connection: connect upstream, run both directions together, and tear down the way
//! the ending calls for (reset, cut, or a normal close).

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::debug;

use super::ProxyState;
use super::fault::{Fault, FaultWatch};
use super::pump::{self, Abort, Direction};
use super::splitmix::SplitMix64;
use crate::live_count::LiveGuard;

/// The client's socket, counted as live until it is dropped.
#[derive(Debug)]
pub(crate) struct ClientSocket {
    // Declared first so the socket is closed before the live count goes down.
    stream: TcpStream,
    _live: LiveGuard,
}

impl ClientSocket {
    /// Wraps an accepted socket with its live-count guard.
    pub(crate) fn new(stream: TcpStream, live: LiveGuard) -> Self {
        Self {
            stream,
            _live: live,
        }
    }

    /// Closes the connection with a TCP RST instead of a FIN.
    pub(crate) fn reset(self) {
        reset(&self.stream);
    }
}

/// How a proxied connection ended.
#[derive(Debug)]
enum Ending {
    /// Both directions reached end of stream and passed it on.
    Closed,
    /// A direction stopped short.
    Aborted(Abort),
    /// `Fault::Reset` arrived.
    Reset,
}

/// Decides at accept time what happens to a new connection under the fault in force. Resets and
/// refusals are done on the spot; otherwise returns the future that serves the connection.
pub(crate) fn admit(
    client: ClientSocket,
    state: Arc<ProxyState>,
    faults: FaultWatch,
    index: u64,
) -> Option<impl Future<Output = ()> + Send + 'static> {
    match faults.current() {
        Fault::Reset => {
            client.reset();
            None
        }
        Fault::Refuse => None,
        Fault::StallHandshake => Some(Admitted::Stalled.run(client, state, faults, index)),
        _ => Some(Admitted::Proxied.run(client, state, faults, index)),
    }
}

/// How an admitted connection is served.
#[derive(Debug, Clone, Copy)]
enum Admitted {
    /// Held under `Fault::StallHandshake`.
    Stalled,
    /// Proxied to the upstream server.
    Proxied,
}

impl Admitted {
    async fn run(
        self,
        client: ClientSocket,
        state: Arc<ProxyState>,
        faults: FaultWatch,
        index: u64,
    ) {
        match self {
            Self::Stalled => stall(client, faults).await,
            Self::Proxied => serve(client, state, faults, index).await,
        }
    }
}

/// Proxies `client` to the upstream server until the connection ends.
async fn serve(
    mut client: ClientSocket,
    state: Arc<ProxyState>,
    mut faults: FaultWatch,
    index: u64,
) {
    set_nodelay(&client.stream);
    let connected = tokio::select! {
        connected = TcpStream::connect(state.upstream) => connected,
        () = faults.reset_requested() => return client.reset(),
    };
    let mut upstream = match connected {
        Ok(upstream) => upstream,
        Err(error) => {
            // Mirror a refused upstream as the closest thing a client can see: a reset.
            debug!(index, %error, "upstream unreachable; resetting the client");
            return client.reset();
        }
    };
    set_nodelay(&upstream);

    let ending = {
        let (client_read, client_write) = client.stream.split();
        let (upstream_read, upstream_write) = upstream.split();
        let rng = SplitMix64::new(state.seed).fork(index);
        let up = pump::run(
            client_read,
            upstream_write,
            Direction::Up,
            faults.clone(),
            &state.bytes_up,
            rng.fork(0),
            state.tap.as_ref().map(|tap| (tap, index)),
        );
        let down = pump::run(
            upstream_read,
            client_write,
            Direction::Down,
            faults.clone(),
            &state.bytes_down,
            rng.fork(1),
            None,
        );
        tokio::select! {
            ended = async { tokio::try_join!(up, down) } => match ended {
                Ok(_) => Ending::Closed,
                Err(abort) => Ending::Aborted(abort),
            },
            () = faults.reset_requested() => Ending::Reset,
        }
    };
    debug!(index, ?ending, "proxied connection ended");
    if let Some(tap) = &state.tap {
        tap.on_end(index);
    }
    match ending {
        Ending::Reset => {
            reset(&upstream);
            client.reset();
        }
        Ending::Aborted(Abort::Cut(_)) => {
            // A FIN, not a reset, so the client can read every byte that was let through.
            let _ = client.stream.shutdown().await;
            let _ = upstream.shutdown().await;
        }
        Ending::Closed | Ending::Aborted(_) => {}
    }
}

/// Holds a connection accepted under `Fault::StallHandshake`: nothing is forwarded and no upstream
/// connection is made. Inbound bytes are discarded only so a client that gives up is noticed.
async fn stall(mut client: ClientSocket, mut faults: FaultWatch) {
    let mut discarded = [0; 1024];
    loop {
        tokio::select! {
            read = client.stream.read(&mut discarded) => {
                if matches!(read, Ok(0) | Err(_)) {
                    return;
                }
            }
            () = faults.reset_requested() => return client.reset(),
        }
    }
}

/// Makes the next close of `stream` send a RST.
fn reset(stream: &TcpStream) {
    if let Err(error) = stream.set_zero_linger() {
        debug!(%error, "could not arm a reset");
    }
}

/// Each write leaves as its own segment, which `Fault::Slice` relies on.
fn set_nodelay(stream: &TcpStream) {
    if let Err(error) = stream.set_nodelay(true) {
        debug!(%error, "could not set TCP_NODELAY");
    }
}
