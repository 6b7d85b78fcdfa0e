//! Resume over a real socket: N+1.. exactly once across the replay/live boundary while
//! publishing, and an explicit welcome when a cursor cannot be honoured.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use resilient_ws_server::{Hub, HubConfig, ResumeReason, ResumeRequest, StartPoint};
use support::{Server, close_frame, expect_seqs, next_frame, next_seq, welcome, within};
use tokio::time::{Instant, sleep};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// Publishes `{"seq":N,"data":N}` in bursts of `burst` with a 1 ms pause between bursts,
/// until stopped (at most `max` messages or 60 s).
fn publish_continuously(
    hub: &Hub,
    burst: u64,
    max: u64,
) -> (Arc<AtomicBool>, tokio::task::JoinHandle<u64>) {
    let stop = Arc::new(AtomicBool::new(false));
    let task = tokio::spawn({
        let (hub, stop) = (hub.clone(), Arc::clone(&stop));
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut published = 0;
            while !stop.load(Ordering::Relaxed) && published < max && Instant::now() < deadline {
                for _ in 0..burst {
                    hub.publish(&published).expect("publishes");
                    published += 1;
                }
                sleep(Duration::from_millis(1)).await;
            }
            published
        }
    });
    (stop, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_is_exactly_once_across_the_replay_live_boundary() {
    // Roomy bounds: a trial delayed by a busy machine must not turn into a discontinuity
    // or a slow-consumer eviction; the boundary is what is under test.
    let config = HubConfig {
        history_max_messages: 1_000_000,
        queue_max_messages: 1_000_000,
        ..HubConfig::default()
    };
    let hub = Hub::new(config);
    let server = Arc::new(Server::start(&hub).await);
    let (stop, publisher) = publish_continuously(&hub, 5, 500_000);
    support::wait_for_stats(&hub, |s| s.head >= 300).await;
    let epoch = hub.epoch();
    // Four clients at a time, 25 trials each: every trial resumes at a different distance
    // behind the head (0 = at the head) while messages keep coming.
    let clients: Vec<_> = (0..4u64)
        .map(|client| {
            let (hub, server, epoch) = (hub.clone(), Arc::clone(&server), epoch.clone());
            tokio::spawn(async move {
                for trial in 0..25u64 {
                    let behind = (client * 25 + trial) * 7 % 250;
                    let cursor = hub.head() - behind;
                    let mut ws = server
                        .connect(&format!("cursor={cursor}&epoch={epoch}"))
                        .await;
                    let welcome = welcome(&mut ws).await;
                    assert_eq!(
                        (welcome.resumed, welcome.reason.as_str(), welcome.from),
                        (true, "resumed", cursor + 1),
                        "{welcome:?}"
                    );
                    assert_eq!(welcome.epoch, epoch);
                    // Replay runs to welcome.head; 50 more are live.
                    let count = welcome.head + 50 - cursor;
                    expect_seqs(&mut ws, cursor + 1, count).await;
                    within(ws.close(None)).await.expect("closes");
                }
            })
        })
        .collect();
    for client in clients {
        within(client).await.expect("every trial passes");
    }
    stop.store(true, Ordering::Relaxed);
    within(publisher).await.expect("the publisher ends");
    let stats = hub.stats();
    assert_eq!(
        (stats.resumed, stats.evicted_slow, stats.discontinuities),
        (100, 0, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_while_publishing_from_another_thread_never_gaps() {
    // The same boundary without sockets, so many more trials: a thread publishes as fast
    // as it can while subscriptions resume at varying distances behind the head.
    let config = HubConfig {
        queue_max_messages: 1 << 20,
        queue_max_bytes: 1 << 30,
        ..HubConfig::default()
    };
    let hub = Hub::new(config);
    // The publisher stays within 5000 of `floor` (the latest trial's head), so a trial the
    // machine delays never finds its cursor gone from the 10 000-message buffer.
    let floor = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = std::thread::spawn({
        let (hub, stop, floor) = (hub.clone(), Arc::clone(&stop), Arc::clone(&floor));
        move || {
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            let mut published = 0u64;
            while !stop.load(Ordering::Relaxed) && std::time::Instant::now() < deadline {
                if hub.head() > floor.load(Ordering::Relaxed) + 5000 {
                    std::thread::sleep(Duration::from_micros(50));
                    continue;
                }
                hub.publish_with(|seq| format!("{seq}")).expect("publishes");
                published += 1;
            }
            published
        }
    });
    support::wait_for_stats(&hub, |s| s.head >= 1000).await;
    let epoch = hub.epoch();
    for trial in 0..1000u64 {
        let head = hub.head();
        floor.store(head, Ordering::Relaxed);
        let cursor = head - trial % 500;
        let request = ResumeRequest {
            cursor: Some(cursor),
            epoch: Some(epoch.clone()),
        };
        let mut sub = hub.subscribe(&request).expect("subscribes");
        assert_eq!(sub.welcome().reason, ResumeReason::Resumed);
        // Live messages must keep coming past this trial's head.
        floor.store(sub.welcome().head, Ordering::Relaxed);
        let until = sub.welcome().head + 20;
        for expected in cursor + 1..=until {
            let record = within(sub.next()).await.expect("fed");
            assert_eq!(record.cursor, expected, "trial {trial}");
            assert_eq!(record.payload, expected.to_string().as_str().into());
        }
    }
    stop.store(true, Ordering::Relaxed);
    let published = publisher.join().expect("the publisher thread ends");
    assert!(published > 1000, "publishing went on during the trials");
}

#[tokio::test]
async fn a_cursor_that_cannot_be_resumed_is_reported() {
    let config = HubConfig {
        history_max_messages: 10,
        ..HubConfig::default()
    };
    let hub = Hub::new(config);
    let server = Server::start(&hub).await;
    for n in 0..30 {
        hub.publish(&n).expect("publishes");
    }
    let epoch = hub.epoch();
    // The buffer holds 21..=30.
    let cases = [
        (format!("cursor=20&epoch={epoch}"), true, "resumed", 21),
        (format!("cursor=30&epoch={epoch}"), true, "resumed", 31),
        ("cursor=25".to_owned(), true, "resumed", 26),
        (
            format!("cursor=19&epoch={epoch}"),
            false,
            "cursor_too_old",
            21,
        ),
        (
            format!("cursor=31&epoch={epoch}"),
            false,
            "cursor_ahead",
            21,
        ),
        (
            "cursor=25&epoch=another".to_owned(),
            false,
            "epoch_changed",
            21,
        ),
        (format!("epoch={epoch}"), false, "fresh", 21),
    ];
    let mut open = Vec::new();
    for (query, resumed, reason, from) in cases {
        let mut ws = server.connect(&query).await;
        let got = welcome(&mut ws).await;
        let summary = (got.resumed, got.reason.as_str(), got.from, got.head);
        assert_eq!(summary, (resumed, reason, from, 30), "{query}");
        // Whatever the reason, the stream follows from `from` to the head, then live.
        expect_seqs(&mut ws, from, 31 - from).await;
        open.push(ws);
    }
    hub.publish(&"live").expect("publishes");
    for ws in &mut open {
        assert_eq!(next_seq(ws).await, 31);
    }
    let stats = hub.stats();
    assert_eq!(
        (stats.resumed, stats.discontinuities, stats.fresh),
        (3, 3, 1)
    );
}

#[tokio::test]
async fn the_welcome_has_exactly_the_documented_shape() {
    let hub = Hub::new(HubConfig::default());
    let server = Server::start(&hub).await;
    hub.publish(&1).expect("publishes");
    hub.publish(&2).expect("publishes");
    let epoch = hub.epoch();
    let mut ws = server.connect(&format!("cursor=1&epoch={epoch}")).await;
    let Message::Text(first) = next_frame(&mut ws).await else {
        panic!("the welcome is a text frame");
    };
    assert_eq!(
        first.as_str(),
        format!(
            r#"{{"type":"welcome","epoch":"{epoch}","resumed":true,"reason":"resumed","from":2,"head":2}}"#
        )
    );
    let Message::Text(second) = next_frame(&mut ws).await else {
        panic!("messages are text frames");
    };
    assert_eq!(
        second.as_str(),
        r#"{"seq":2,"data":2}"#,
        "the default envelope"
    );
}

#[tokio::test]
async fn live_start_skips_the_buffer() {
    let config = HubConfig {
        start: StartPoint::Live,
        on_discontinuity: StartPoint::Live,
        ..HubConfig::default()
    };
    let hub = Hub::new(config);
    let server = Server::start(&hub).await;
    for n in 0..5 {
        hub.publish(&n).expect("publishes");
    }
    let mut fresh = server.connect("").await;
    let mut other = server.connect("cursor=3&epoch=gone").await;
    let fresh_welcome = welcome(&mut fresh).await;
    let other_welcome = welcome(&mut other).await;
    assert_eq!(
        (fresh_welcome.reason.as_str(), fresh_welcome.from),
        ("fresh", 6)
    );
    assert_eq!(
        (other_welcome.reason.as_str(), other_welcome.from),
        ("epoch_changed", 6)
    );
    hub.publish(&"live").expect("publishes");
    assert_eq!(next_seq(&mut fresh).await, 6);
    assert_eq!(next_seq(&mut other).await, 6);
}

#[tokio::test]
async fn a_bad_cursor_is_refused_with_400_before_the_upgrade() {
    let hub = Hub::new(HubConfig::default());
    let server = Server::start(&hub).await;
    for query in ["cursor=abc", "cursor=-1", "cursor=99999999999999999999"] {
        let error = within(tokio_tungstenite::connect_async(server.url(query)))
            .await
            .expect_err("refused");
        let WsError::Http(response) = error else {
            panic!("expected an HTTP refusal, got {error}");
        };
        assert_eq!(response.status(), 400, "{query}");
        let body = String::from_utf8(response.body().clone().unwrap_or_default()).expect("UTF-8");
        assert!(body.contains("invalid `cursor` query parameter"), "{body}");
    }
    assert_eq!(hub.stats().connections, 0);
}

#[tokio::test]
async fn without_the_welcome_an_impossible_resume_is_closed_with_4001() {
    let config = HubConfig {
        welcome: false,
        history_max_messages: 5,
        ..HubConfig::default()
    };
    let hub = Hub::new(config);
    let server = Server::start(&hub).await;
    for n in 0..10 {
        hub.publish(&n).expect("publishes");
    }
    let epoch = hub.epoch();
    for (query, reason) in [
        (format!("cursor=2&epoch={epoch}"), "cursor_too_old"),
        (format!("cursor=11&epoch={epoch}"), "cursor_ahead"),
        ("cursor=7&epoch=old".to_owned(), "epoch_changed"),
    ] {
        let mut ws = server.connect(&query).await;
        let frame = close_frame(&mut ws).await.expect("a close frame");
        assert_eq!(
            u16::from(frame.code),
            resilient_ws_server::CLOSE_RESUME_IMPOSSIBLE
        );
        assert_eq!(
            frame.reason.as_str(),
            format!("resume impossible: {reason}")
        );
    }
    // A resumable cursor gets its messages directly, and a fresh client the buffer.
    let mut ws = server.connect(&format!("cursor=7&epoch={epoch}")).await;
    expect_seqs(&mut ws, 8, 3).await;
    let mut fresh = server.connect("").await;
    expect_seqs(&mut fresh, 6, 5).await;
}
