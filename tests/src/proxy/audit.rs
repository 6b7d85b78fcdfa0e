//! Which client sockets are still open, as the kernel sees them, whenever the proxy accepts a
//! new connection.
//!
//! [`FaultProxy::max_live_connections`](super::FaultProxy::max_live_connections) counts a
//! connection as live until the proxy's task for it has ended, and that task ends some time
//! after the client has closed its socket: it has to observe the client's FIN in its own
//! task, pass the close on to the server, and (after a cut or a reset) finish its own
//! teardown. A client that closes its old socket and at once opens a new one, as it should,
//! can therefore be counted twice for a moment.
//!
//! The audit asks the kernel instead. When connection `n` is accepted, the client's socket of
//! every earlier connection is looked up in the kernel's TCP table (`/proc/net/tcp`, Linux)
//! by its address pair: a socket still `ESTABLISHED` or in `CLOSE_WAIT` (the client got a FIN
//! but has not closed its end) is one the client still holds open, so the client has two
//! sockets at once. A socket the client has closed is in `FIN_WAIT*`, `TIME_WAIT`, `CLOSING`
//! or `LAST_ACK`, or gone after a reset. The client closes its old socket before it connects
//! the new one, so on loopback its FIN is in the table before the new connection can be
//! accepted: no race with the proxy's tasks remains. The one imprecision left is on the
//! lenient side: an old socket closed between the new connection's handshake and the check
//! goes unnoticed.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::PoisonError;

use tracing::{debug, warn};

/// The kernel's table of IPv4 TCP sockets.
const TCP_TABLE: &str = "/proc/net/tcp";

/// TCP states (include/net/tcp_states.h) in which the socket's owner has not closed it.
const ESTABLISHED: u8 = 0x01;
const SYN_SENT: u8 = 0x02;
const CLOSE_WAIT: u8 = 0x08;

/// Two client sockets that were open at once: `older` was still open when `newer` was
/// accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketOverlap {
    /// Accept index (from 0) of the connection whose client socket was still open.
    pub older: u64,
    /// Accept index of the connection just accepted.
    pub newer: u64,
    /// The kernel's state of the older client socket: `ESTABLISHED`, `SYN_SENT` or `CLOSE_WAIT`.
    pub older_state: &'static str,
}

/// One accepted connection whose client socket has not been seen closed yet.
#[derive(Debug, Clone, Copy)]
struct Watched {
    index: u64,
    /// The client's address: its socket is the table entry from here to the proxy.
    client: SocketAddr,
}

#[derive(Debug, Default)]
struct AuditState {
    watched: Vec<Watched>,
    overlaps: Vec<SocketOverlap>,
    peak: usize,
    /// Set when the kernel's table could not be read: the audit then knows nothing.
    unavailable: bool,
}

/// The audit of one proxy's client sockets.
#[derive(Debug)]
pub(crate) struct SocketAudit {
    proxy: SocketAddr,
    state: Mutex<AuditState>,
}

impl SocketAudit {
    pub(crate) fn new(proxy: SocketAddr) -> Self {
        Self {
            proxy,
            state: Mutex::default(),
        }
    }

    /// Called as soon as connection `index` from `client` is accepted: checks every earlier
    /// client socket not yet seen closed.
    pub(crate) fn on_accept(&self, index: u64, client: SocketAddr) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let mut open = 1;
        if !state.watched.is_empty() && !state.unavailable {
            match std::fs::read_to_string(TCP_TABLE) {
                Ok(table) => {
                    let mut still_open = Vec::new();
                    for watched in std::mem::take(&mut state.watched) {
                        // A port reused by the new connection itself is the new socket.
                        if watched.client == client {
                            continue;
                        }
                        if let Some(tcp_state) =
                            client_socket_state(&table, watched.client, self.proxy)
                                .filter(|tcp_state| is_open(*tcp_state))
                        {
                            debug!(
                                older = watched.index,
                                newer = index,
                                state = state_name(tcp_state),
                                "client socket still open at a new accept"
                            );
                            state.overlaps.push(SocketOverlap {
                                older: watched.index,
                                newer: index,
                                older_state: state_name(tcp_state),
                            });
                            still_open.push(watched);
                        }
                    }
                    open += still_open.len();
                    state.watched = still_open;
                }
                Err(error) => {
                    warn!(%error, "cannot read {TCP_TABLE}; the socket audit is off");
                    state.unavailable = true;
                }
            }
        }
        state.peak = state.peak.max(open);
        state.watched.push(Watched { index, client });
    }

    /// The most client sockets open at once, as checked at every accept; `None` when the
    /// kernel's table cannot be read (not Linux).
    pub(crate) fn peak(&self) -> Option<usize> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        (!state.unavailable && std::path::Path::new(TCP_TABLE).exists()).then_some(state.peak)
    }

    /// Every overlap found, in the order found.
    pub(crate) fn overlaps(&self) -> Vec<SocketOverlap> {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .overlaps
            .clone()
    }
}

fn is_open(tcp_state: u8) -> bool {
    matches!(tcp_state, ESTABLISHED | SYN_SENT | CLOSE_WAIT)
}

fn state_name(tcp_state: u8) -> &'static str {
    match tcp_state {
        ESTABLISHED => "ESTABLISHED",
        SYN_SENT => "SYN_SENT",
        CLOSE_WAIT => "CLOSE_WAIT",
        _ => "closed",
    }
}

/// The state of the socket from `client` to `proxy` in `table`, if it is there.
fn client_socket_state(table: &str, client: SocketAddr, proxy: SocketAddr) -> Option<u8> {
    let local = table_address(client)?;
    let remote = table_address(proxy)?;
    table.lines().skip(1).find_map(|line| {
        let mut fields = line.split_whitespace().skip(1);
        let (entry_local, entry_remote, entry_state) =
            (fields.next()?, fields.next()?, fields.next()?);
        (entry_local == local && entry_remote == remote)
            .then(|| u8::from_str_radix(entry_state, 16).ok())
            .flatten()
    })
}

/// An IPv4 address as the table prints it: the address as a native-endian hex word, a colon,
/// the port in hex.
pub(crate) fn table_address(address: SocketAddr) -> Option<String> {
    match address {
        SocketAddr::V4(v4) => Some(format!(
            "{:08X}:{:04X}",
            u32::from_ne_bytes(v4.ip().octets()),
            v4.port()
        )),
        SocketAddr::V6(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "  sl  local_address rem_address   st tx_queue rx_queue\n\
        0: 0100007F:9871 0100007F:C030 06 00000000:00000000\n\
        1: 0100007F:9872 0100007F:C030 01 00000000:00000000\n";

    #[test]
    #[cfg(target_endian = "little")]
    fn finds_the_client_socket_by_its_address_pair() {
        let proxy: SocketAddr = "127.0.0.1:49200".parse().unwrap();
        let closed: SocketAddr = "127.0.0.1:39025".parse().unwrap();
        let open: SocketAddr = "127.0.0.1:39026".parse().unwrap();
        let gone: SocketAddr = "127.0.0.1:39027".parse().unwrap();
        assert_eq!(client_socket_state(TABLE, closed, proxy), Some(0x06));
        assert_eq!(client_socket_state(TABLE, open, proxy), Some(ESTABLISHED));
        assert_eq!(client_socket_state(TABLE, gone, proxy), None);
        assert!(!is_open(0x06));
        assert!(is_open(CLOSE_WAIT));
    }

    /// Waits until the proxy has accepted `count` connections.
    async fn accepted(proxy: &crate::FaultProxy, count: u64) {
        tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while proxy.connections_accepted() < count {
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
        })
        .await
        .expect("the proxy accepts");
    }

    #[tokio::test]
    #[cfg(target_os = "linux")]
    async fn flags_a_socket_still_open_at_the_next_accept_and_only_that() {
        use tokio::net::{TcpListener, TcpStream};
        let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream_addr = upstream.local_addr().unwrap();
        // Holds every upstream connection open until the test ends.
        let server = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = upstream.accept().await {
                held.push(socket);
            }
        });
        let proxy = crate::FaultProxy::start(upstream_addr).await.unwrap();

        // Closed before the next connects: no overlap.
        let first = TcpStream::connect(proxy.addr()).await.unwrap();
        accepted(&proxy, 1).await;
        drop(first);
        let second = TcpStream::connect(proxy.addr()).await.unwrap();
        accepted(&proxy, 2).await;
        assert_eq!(proxy.max_open_client_sockets(), Some(1));
        assert!(proxy.client_socket_overlaps().is_empty());

        // Still open when the next connects: an overlap, however briefly.
        let third = TcpStream::connect(proxy.addr()).await.unwrap();
        accepted(&proxy, 3).await;
        assert_eq!(proxy.max_open_client_sockets(), Some(2));
        assert_eq!(
            proxy.client_socket_overlaps(),
            vec![SocketOverlap {
                older: 1,
                newer: 2,
                older_state: "ESTABLISHED",
            }]
        );
        drop((second, third));
        proxy.shutdown().await;
        server.abort();
    }
}
