//! Liveness: clients that only listen stay connected through many pings; a client that
//! sends nothing after a ping is evicted within ping_interval + ping_timeout.

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use resilient_ws_server::{Hub, HubConfig};
use support::{LIMIT, Server, next_seq, wait_for_stats, welcome, within};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};
use tokio_tungstenite::tungstenite::Message;

const INTERVAL: Duration = Duration::from_millis(300);
const TIMEOUT: Duration = Duration::from_millis(300);
/// Scheduling slack on a busy 2-core machine.
const SLACK: Duration = Duration::from_millis(1500);

fn config() -> HubConfig {
    HubConfig {
        ping_interval: INTERVAL,
        ping_timeout: TIMEOUT,
        ..HubConfig::default()
    }
}

#[tokio::test]
async fn a_passive_listener_stays_connected_across_many_pings() {
    let config = HubConfig {
        ping_interval: Duration::from_millis(100),
        ping_timeout: Duration::from_millis(100),
        ..HubConfig::default()
    };
    let hub = Hub::new(config);
    let server = Server::start(&hub).await;
    let mut ws = server.connect("").await;
    welcome(&mut ws).await;
    // Read (the library answers pings) but never send anything ourselves, for 15 intervals.
    let end = Instant::now() + Duration::from_millis(1500);
    let mut pings = 0;
    while let Ok(frame) = timeout(end.saturating_duration_since(Instant::now()), ws.next()).await {
        match frame {
            Some(Ok(Message::Ping(_))) => pings += 1,
            other => panic!("the listener must stay connected, got {other:?}"),
        }
    }
    assert!(pings >= 8, "pings are sent every interval, saw {pings}");
    let stats = hub.stats();
    assert_eq!((stats.evicted_dead, stats.subscribers), (0, 1));
    hub.publish(&"still here").expect("publishes");
    assert_eq!(next_seq(&mut ws).await, 1);
}

#[tokio::test]
async fn a_silent_socket_is_evicted_within_interval_plus_timeout() {
    let hub = Hub::new(config());
    let server = Server::start(&hub).await;
    // A raw TCP client that completes the handshake and then never reads or writes.
    let mut tcp = within(TcpStream::connect(server.addr))
        .await
        .expect("connects");
    let request = "GET /feed HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
                   Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                   Sec-WebSocket-Version: 13\r\n\r\n";
    within(tcp.write_all(request.as_bytes()))
        .await
        .expect("writes");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0; 1];
        within(tcp.read_exact(&mut byte))
            .await
            .expect("reads the response");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    let upgraded = Instant::now();

    let stats = wait_for_stats(&hub, |s| s.evicted_dead == 1).await;
    let elapsed = upgraded.elapsed();
    assert!(
        elapsed >= INTERVAL + TIMEOUT - Duration::from_millis(100),
        "evicted early: {elapsed:?}"
    );
    assert!(
        elapsed <= INTERVAL + TIMEOUT + SLACK,
        "evicted late: {elapsed:?}"
    );
    assert!(stats.pings_sent >= 1);
    wait_for_stats(&hub, |s| s.connections == 0 && s.subscribers == 0).await;

    // The server dropped the connection: what it wrote (the welcome, a ping), then EOF.
    let mut received = Vec::new();
    within(tcp.read_to_end(&mut received))
        .await
        .expect("reads to EOF");
    assert_eq!(
        received[0], 0x81,
        "a final text frame (the welcome) comes first"
    );
    let welcome_len = usize::from(received[1]);
    assert!(welcome_len < 126, "a short welcome");
    assert_eq!(
        &received[2 + welcome_len..2 + welcome_len + 2],
        [0x89, 0x00],
        "then an empty ping"
    );
}

#[tokio::test]
async fn a_client_that_stops_polling_is_evicted() {
    let hub = Hub::new(config());
    let server = Server::start(&hub).await;
    let mut ws = server.connect("").await;
    welcome(&mut ws).await;
    let stalled = Instant::now();
    // Not polling the stream: nothing answers the pings.
    wait_for_stats(&hub, |s| s.evicted_dead == 1).await;
    let elapsed = stalled.elapsed();
    assert!(
        elapsed >= INTERVAL + TIMEOUT - Duration::from_millis(100),
        "evicted early: {elapsed:?}"
    );
    assert!(
        elapsed <= INTERVAL + TIMEOUT + SLACK,
        "evicted late: {elapsed:?}"
    );
    // Polling again shows the pings, then the end of the connection (no close frame).
    let deadline = Instant::now() + LIMIT;
    loop {
        match timeout(
            deadline.saturating_duration_since(Instant::now()),
            ws.next(),
        )
        .await
        {
            Ok(Some(Ok(Message::Ping(_)))) => {}
            Ok(None | Some(Err(_))) => break,
            Ok(Some(Ok(other))) => panic!("only pings before the end, got {other:?}"),
            Err(_) => panic!("the connection did not end"),
        }
    }
}
