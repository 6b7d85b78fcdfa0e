//! Slow consumers: a client that stops reading is closed with 1013 once its bounded queue
//! overflows, while the publisher and another client go on at full pace, and it resumes
//! from its cursor.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use resilient_ws_server::{CLOSE_SLOW_CONSUMER, Hub, HubConfig};
use support::{Server, Ws, expect_seqs, next_frame, next_seq, welcome, within};
use tokio::sync::watch;
use tokio::time::{Instant, sleep};
use tokio_tungstenite::tungstenite::Message;

/// Reads consecutive seqs from 1 until it has read `target` (0: not known yet), and hands
/// the still open connection back.
async fn read_all(mut ws: Ws, received: Arc<AtomicU64>, mut target: watch::Receiver<u64>) -> Ws {
    loop {
        let have = received.load(Ordering::Relaxed);
        if have > 0 && have == *target.borrow() {
            return ws;
        }
        tokio::select! {
            seq = next_seq(&mut ws) => {
                assert_eq!(seq, have + 1, "the reader gets every message once, in order");
                received.store(seq, Ordering::Relaxed);
            }
            changed = target.changed() => changed.expect("the test holds the sender"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_is_closed_with_1013_while_another_keeps_up() {
    let config = HubConfig {
        queue_max_messages: 2000,
        queue_max_bytes: 2 << 20,
        history_max_messages: 100_000,
        history_max_bytes: 64 << 20,
        ping_interval: Duration::from_secs(60), // only the queue bound is under test
        close_timeout: Duration::from_secs(10),
        ..HubConfig::default()
    };
    let hub = Hub::new(config.clone());
    let server = Server::start(&hub).await;
    let mut stalled = server.connect("").await;
    let epoch = welcome(&mut stalled).await.epoch;
    let mut reader = server.connect("").await;
    welcome(&mut reader).await;
    let received = Arc::new(AtomicU64::new(0));
    let (target, target_rx) = watch::channel(0);
    let reading = tokio::spawn(read_all(reader, Arc::clone(&received), target_rx));

    // Publish 1 KiB messages as fast as the reader takes them (it never lags more than 600
    // behind, far from its bound); the stalled client reads nothing, so its socket buffers
    // and then its queue fill. Go on for 2000 more after it is evicted.
    let data = "x".repeat(1000);
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut published, mut evicted_at, mut max_queued_bytes) = (0u64, None, 0);
    while Instant::now() < deadline && published < 1_000_000 {
        if published - received.load(Ordering::Relaxed) > 500 {
            sleep(Duration::from_millis(1)).await;
            continue;
        }
        for _ in 0..100 {
            hub.publish(&data)
                .expect("publishing never waits for a subscriber");
            published += 1;
        }
        let stats = hub.stats();
        max_queued_bytes = max_queued_bytes.max(stats.queued_bytes);
        assert!(
            stats.queued_messages <= 2 * config.queue_max_messages,
            "{stats:?}"
        );
        if stats.evicted_slow > 0 && evicted_at.is_none() {
            evicted_at = Some(published);
        }
        if evicted_at.is_some_and(|at| published >= at + 2000) {
            break;
        }
        tokio::task::yield_now().await;
    }
    let evicted_at = evicted_at.expect("the stalled client overflowed its queue");
    assert!(
        published >= evicted_at + 2000,
        "publishing went on after the eviction"
    );
    target.send(published).expect("the reader listens");
    let _reader = within(reading).await.expect("the reader got everything");

    let stats = hub.stats();
    assert_eq!(
        (stats.evicted_slow, stats.subscribers),
        (1, 1),
        "only the stalled client"
    );
    assert!(
        max_queued_bytes <= 2 * config.queue_max_bytes,
        "queues stay bounded"
    );
    assert!(
        stats.queued_bytes <= config.queue_max_bytes,
        "the evicted queue was freed"
    );

    // The stalled client reads again: consecutive messages, then the 1013 close.
    let mut last = 0;
    let close = loop {
        match next_frame(&mut stalled).await {
            Message::Text(text) => {
                let frame: serde_json::Value = serde_json::from_str(&text).expect("JSON");
                assert_eq!(
                    frame["seq"].as_u64(),
                    Some(last + 1),
                    "no gap before the close"
                );
                last += 1;
            }
            Message::Close(frame) => break frame.expect("a close frame with a code"),
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(u16::from(close.code), CLOSE_SLOW_CONSUMER);
    assert_eq!(close.reason.as_str(), "slow consumer");
    assert!(last < evicted_at, "it was evicted behind the head");

    // It resumes from its cursor and gets the rest exactly once.
    let mut again = server
        .connect(&format!("cursor={last}&epoch={epoch}"))
        .await;
    let resumed = welcome(&mut again).await;
    assert_eq!(
        (resumed.reason.as_str(), resumed.from),
        ("resumed", last + 1)
    );
    expect_seqs(&mut again, last + 1, published - last).await;
}
