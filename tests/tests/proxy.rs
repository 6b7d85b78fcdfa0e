//! Self-tests of the fault-injecting proxy: each fault, with plain TCP on both sides.

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use resilient_ws_tests::wait;
use resilient_ws_tests::{Fault, FaultProxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, sleep, timeout};

/// Upper bound for any single test.
const TEST_DEADLINE: Duration = Duration::from_secs(10);
/// How long a read must stay quiet to count as "nothing arrives".
const QUIET: Duration = Duration::from_millis(250);

/// A plain TCP server behind the proxy, serving each connection with one handler.
struct Upstream {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Upstream {
    async fn start<H, F>(handler: H) -> Self
    where
        H: Fn(TcpStream) -> F + Send + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        let task = tokio::spawn(async move {
            // Dropped with the task, which aborts every connection handler.
            let mut connections = JoinSet::new();
            while let Ok((socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                connections.spawn(handler(socket));
            }
        });
        Self {
            addr,
            accepted,
            task,
        }
    }

    async fn echo() -> Self {
        Self::start(echo).await
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// An echo server and a proxy in front of it.
async fn echo_behind_proxy() -> (Upstream, FaultProxy) {
    let upstream = Upstream::echo().await;
    let proxy = FaultProxy::start(upstream.addr).await.unwrap();
    (upstream, proxy)
}

/// Shuts the proxy down, then the server behind it.
async fn stop(proxy: FaultProxy, upstream: Upstream) {
    proxy.shutdown().await;
    upstream.stop().await;
}

async fn echo(mut socket: TcpStream) {
    let (mut reader, mut writer) = socket.split();
    let _ = tokio::io::copy(&mut reader, &mut writer).await;
}

/// Runs a test body under the deadline.
async fn within<F: Future<Output = ()>>(body: F) {
    wait::within(TEST_DEADLINE, body).await;
}

/// Polls `condition` for up to 2 s.
async fn eventually(what: &str, condition: impl Fn() -> bool) {
    wait::eventually(what, Duration::from_secs(2), condition).await;
}

/// Reads exactly `len` bytes, failing the test after 2 s.
async fn read_exact(stream: &mut TcpStream, len: usize) -> Vec<u8> {
    let mut buffer = vec![0; len];
    timeout(Duration::from_secs(2), stream.read_exact(&mut buffer))
        .await
        .expect("read timed out")
        .expect("read failed");
    buffer
}

/// Writes `bytes` and expects them echoed back.
async fn assert_echoes(stream: &mut TcpStream, bytes: &[u8]) {
    stream.write_all(bytes).await.unwrap();
    assert_eq!(read_exact(stream, bytes.len()).await, bytes);
}

/// Expects no byte and no end of stream for `QUIET`.
async fn assert_quiet(stream: &mut TcpStream) {
    let mut buffer = [0; 64];
    let read = timeout(QUIET, stream.read(&mut buffer)).await;
    assert!(read.is_err(), "expected silence, got {read:?}");
}

/// The next read's outcome, within 2 s.
async fn next_read(stream: &mut TcpStream) -> io::Result<usize> {
    let mut buffer = [0; 64];
    timeout(Duration::from_secs(2), stream.read(&mut buffer))
        .await
        .expect("read timed out")
}

#[tokio::test]
async fn passes_bytes_through_and_counts_connections_exactly() {
    within(async {
        let (upstream, proxy) = echo_behind_proxy().await;
        let mut first = TcpStream::connect(proxy.addr()).await.unwrap();
        let mut second = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_echoes(&mut first, b"hello").await;
        assert_echoes(&mut second, b"world!").await;

        assert_eq!(proxy.connections_accepted(), 2);
        assert_eq!(proxy.live_connections(), 2);
        assert_eq!(proxy.max_live_connections(), 2);
        eventually("bytes counted", || {
            proxy.bytes_up() == 11 && proxy.bytes_down() == 11
        })
        .await;

        drop(first);
        eventually("one left", || proxy.live_connections() == 1).await;
        drop(second);
        eventually("none left", || proxy.live_connections() == 0).await;
        assert_eq!(proxy.max_live_connections(), 2);
        assert_eq!(upstream.accepted(), 2);

        stop(proxy, upstream).await;
    })
    .await;
}

#[tokio::test]
async fn reset_resets_open_connections_and_new_ones() {
    within(async {
        let (upstream, proxy) = echo_behind_proxy().await;
        let mut open = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_echoes(&mut open, b"ping").await;

        proxy.set_fault(Fault::Reset);
        let error = next_read(&mut open).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::ConnectionReset);

        let mut fresh = TcpStream::connect(proxy.addr()).await.unwrap();
        let error = next_read(&mut fresh).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::ConnectionReset);
        eventually("all closed", || proxy.live_connections() == 0).await;
        assert_eq!(proxy.connections_accepted(), 2);
        assert_eq!(
            upstream.accepted(),
            1,
            "a reset connection never reaches upstream"
        );

        stop(proxy, upstream).await;
    })
    .await;
}

#[tokio::test]
async fn a_reset_lifted_at_once_still_resets_every_open_connection() {
    within(async {
        let (upstream, proxy) = echo_behind_proxy().await;
        let mut open = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_echoes(&mut open, b"ping").await;

        proxy.set_fault(Fault::Reset);
        proxy.set_fault(Fault::None);
        let error = next_read(&mut open).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::ConnectionReset);
        let mut fresh = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_echoes(&mut fresh, b"fine").await;

        stop(proxy, upstream).await;
    })
    .await;
}

#[tokio::test]
async fn blackhole_holds_bytes_both_ways_until_lifted() {
    within(async {
        let (upstream, proxy) = echo_behind_proxy().await;
        let mut open = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_echoes(&mut open, b"before").await;
        eventually("echo counted", || {
            proxy.bytes_up() == 6 && proxy.bytes_down() == 6
        })
        .await;

        proxy.set_fault(Fault::Blackhole);
        open.write_all(b"held").await.unwrap();
        assert_quiet(&mut open).await;
        assert_eq!((proxy.bytes_up(), proxy.bytes_down()), (6, 6));

        // A new connection is blackholed too, yet reaches upstream at the TCP level.
        let mut fresh = TcpStream::connect(proxy.addr()).await.unwrap();
        fresh.write_all(b"also held").await.unwrap();
        assert_quiet(&mut fresh).await;
        eventually("fresh reached upstream", || upstream.accepted() == 2).await;
        assert_eq!(proxy.live_connections(), 2);

        // A client that gives up is noticed even though nothing is forwarded.
        drop(fresh);
        eventually("closed client noticed", || proxy.live_connections() == 1).await;

        proxy.set_fault(Fault::None);
        assert_eq!(read_exact(&mut open, 4).await, b"held");
        assert_echoes(&mut open, b"after").await;

        stop(proxy, upstream).await;
    })
    .await;
}

#[tokio::test]
async fn stall_handshake_never_reaches_upstream_while_open_connections_pass() {
    within(async {
        let (upstream, proxy) = echo_behind_proxy().await;
        let mut open = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_echoes(&mut open, b"open").await;

        proxy.set_fault(Fault::StallHandshake);
        let mut stalled = TcpStream::connect(proxy.addr()).await.unwrap();
        stalled
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        assert_quiet(&mut stalled).await;
        assert_echoes(&mut open, b"still open").await;

        // Lifting the fault does not release a connection that was stalled.
        proxy.set_fault(Fault::None);
        assert_quiet(&mut stalled).await;
        assert_eq!(upstream.accepted(), 1);
        assert_eq!(proxy.live_connections(), 2);

        drop(stalled);
        eventually("stalled client noticed", || proxy.live_connections() == 1).await;
        let mut fresh = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_echoes(&mut fresh, b"fresh").await;

        stop(proxy, upstream).await;
    })
    .await;
}

#[tokio::test]
async fn slice_forwards_small_segments_spaced_by_the_delay() {
    within(async {
        let (upstream, proxy) = echo_behind_proxy().await;
        // Long enough that a briefly descheduled test thread does not see two segments as one.
        let delay = Duration::from_millis(80);
        proxy.set_fault(Fault::Slice {
            max_segment: 3,
            delay,
        });
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
        let sent = b"abcdefghi";
        let started = Instant::now();
        client.write_all(sent).await.unwrap();

        let mut received = Vec::new();
        let mut reads = 0;
        while received.len() < sent.len() && reads < 64 {
            let mut buffer = [0; 64];
            let read = timeout(Duration::from_secs(2), client.read(&mut buffer))
                .await
                .unwrap()
                .unwrap();
            assert!((1..=3).contains(&read), "a segment of {read} bytes");
            received.extend_from_slice(&buffer[..read]);
            reads += 1;
        }
        assert_eq!(received, sent);
        assert!(reads >= 3);
        // Three downstream writes, two delays between them at least.
        assert!(
            started.elapsed() >= delay * 2,
            "took {:?}",
            started.elapsed()
        );

        stop(proxy, upstream).await;
    })
    .await;
}

/// Upstream that greets with ten bytes, echoes, and reports when its peer closes.
async fn greeting_upstream() -> (Upstream, mpsc::UnboundedReceiver<()>) {
    let (closed_tx, closed_rx) = mpsc::unbounded_channel();
    let upstream = Upstream::start(move |mut socket: TcpStream| {
        let closed = closed_tx.clone();
        async move {
            socket.write_all(b"0123456789").await.unwrap();
            echo(socket).await;
            let _ = closed.send(());
        }
    })
    .await;
    (upstream, closed_rx)
}

/// Reads to end of stream within 2 s.
async fn read_to_end(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    timeout(Duration::from_secs(2), stream.read_to_end(&mut received))
        .await
        .expect("no end of stream")
        .expect("read failed");
    received
}

#[tokio::test]
async fn cut_after_closes_both_sides_after_exactly_that_many_bytes() {
    within(async {
        let (upstream, mut upstream_closed) = greeting_upstream().await;
        let proxy = FaultProxy::start(upstream.addr).await.unwrap();

        // A new connection counts from its first byte.
        proxy.set_fault(Fault::CutAfter { bytes: 4 });
        let mut fresh = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(read_to_end(&mut fresh).await, b"0123");
        timeout(Duration::from_secs(2), upstream_closed.recv())
            .await
            .expect("upstream side not closed");

        // An open connection counts from when the fault arrives.
        proxy.set_fault(Fault::None);
        let mut open = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(read_exact(&mut open, 10).await, b"0123456789");
        proxy.set_fault(Fault::CutAfter { bytes: 3 });
        open.write_all(b"abcdef").await.unwrap();
        assert_eq!(read_to_end(&mut open).await, b"abc");
        timeout(Duration::from_secs(2), upstream_closed.recv())
            .await
            .expect("upstream side not closed");
        eventually("all closed", || proxy.live_connections() == 0).await;

        stop(proxy, upstream).await;
    })
    .await;
}

#[tokio::test]
async fn slow_close_delays_passing_on_an_end_of_stream() {
    within(async {
        let upstream = Upstream::start(|mut socket: TcpStream| async move {
            socket.write_all(b"bye").await.unwrap();
        })
        .await;
        let proxy = FaultProxy::start(upstream.addr).await.unwrap();
        let delay = Duration::from_millis(300);
        proxy.set_fault(Fault::SlowClose { delay });
        let started = Instant::now();
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(read_exact(&mut client, 3).await, b"bye");
        assert_eq!(next_read(&mut client).await.unwrap(), 0);
        // Without the fault the end of stream would follow the bytes within milliseconds.
        assert!(
            started.elapsed() >= delay,
            "close held only {:?}",
            started.elapsed()
        );

        stop(proxy, upstream).await;
    })
    .await;
}

#[tokio::test]
async fn latency_delays_every_chunk_and_keeps_the_order() {
    within(async {
        let upstream = Upstream::echo().await;
        let proxy = FaultProxy::start_seeded(upstream.addr, 7).await.unwrap();
        let base = Duration::from_millis(60);
        proxy.set_fault(Fault::Latency {
            base,
            jitter: Duration::from_millis(40),
        });
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();

        let started = Instant::now();
        assert_echoes(&mut client, b"?").await;
        let round_trip = started.elapsed();
        assert!(round_trip >= base * 2, "round trip {round_trip:?}");

        // Separate small writes become separate chunks with different jitter: none may overtake.
        let sent: Vec<u8> = (b'a'..=b't').collect();
        for byte in &sent {
            client.write_all(&[*byte]).await.unwrap();
            sleep(Duration::from_millis(3)).await;
        }
        assert_eq!(read_exact(&mut client, sent.len()).await, sent);

        stop(proxy, upstream).await;
    })
    .await;
}

#[tokio::test]
async fn refuse_closes_new_connections_but_not_open_ones() {
    within(async {
        let (upstream, proxy) = echo_behind_proxy().await;
        let mut open = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_echoes(&mut open, b"open").await;

        proxy.set_fault(Fault::Refuse);
        let mut refused = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(next_read(&mut refused).await.unwrap(), 0);
        assert_echoes(&mut open, b"still open").await;
        assert_eq!(upstream.accepted(), 1);
        assert_eq!(proxy.connections_accepted(), 2);
        eventually("refused one closed", || proxy.live_connections() == 1).await;

        stop(proxy, upstream).await;
    })
    .await;
}

#[tokio::test]
async fn shutdown_closes_every_connection_and_the_listener() {
    within(async {
        let (upstream, proxy) = echo_behind_proxy().await;
        let mut clients = Vec::new();
        for _ in 0..3 {
            let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
            assert_echoes(&mut client, b"up").await;
            clients.push(client);
        }
        // One of them in a state that keeps its task waiting on the fault.
        proxy.set_fault(Fault::StallHandshake);
        let stalled = TcpStream::connect(proxy.addr()).await.unwrap();
        eventually("four live", || proxy.live_connections() == 4).await;
        assert_eq!(proxy.max_live_connections(), 4);

        let addr = proxy.addr();
        proxy.shutdown().await;
        clients.push(stalled);
        for client in &mut clients {
            // Closed: end of stream, or a reset if the proxy had unread bytes.
            match next_read(client).await {
                Ok(read) => assert_eq!(read, 0),
                Err(error) => assert_eq!(error.kind(), io::ErrorKind::ConnectionReset),
            }
        }
        assert!(
            TcpStream::connect(addr).await.is_err(),
            "listener still open"
        );
        upstream.stop().await;
    })
    .await;
}
