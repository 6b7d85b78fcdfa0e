//! Restarts: with a `FileHistory` the epoch survives and clients resume exactly once;
//! without one a restart is a new epoch, and resuming clients are told so.

mod support;

use resilient_ws_server::{FileHistory, Hub, HubConfig};
use support::{Server, TempPath, close_frame, expect_seqs, next_seq, welcome, within};

#[tokio::test]
async fn file_history_keeps_the_epoch_and_resumes_exactly_once() {
    let path = TempPath::new("restart");
    let (epoch, last_seen) = {
        let hub = Hub::with_history(
            HubConfig::default(),
            FileHistory::open(&path.0).expect("opens"),
        )
        .expect("starts");
        let server = Server::start(&hub).await;
        let mut ws = server.connect("").await;
        let first = welcome(&mut ws).await;
        assert_eq!((first.reason.as_str(), first.head), ("fresh", 0));
        for n in 0..50 {
            hub.publish(&n).expect("publishes");
        }
        // The client has read 20 when the process "restarts".
        expect_seqs(&mut ws, 1, 20).await;
        let closing = tokio::spawn(async move { close_frame(&mut ws).await });
        within(hub.shutdown()).await;
        let frame = within(closing)
            .await
            .expect("reads")
            .expect("a close frame");
        assert_eq!(u16::from(frame.code), resilient_ws_server::CLOSE_SHUTDOWN);
        (first.epoch, 20)
    };

    let hub = Hub::with_history(
        HubConfig::default(),
        FileHistory::open(&path.0).expect("reopens"),
    )
    .expect("restarts");
    assert_eq!(
        (hub.epoch(), hub.head()),
        (epoch.clone(), 50),
        "the same epoch goes on"
    );
    let server = Server::start(&hub).await;
    for n in 50..60 {
        hub.publish(&n).expect("publishes");
    }
    let mut ws = server
        .connect(&format!("cursor={last_seen}&epoch={epoch}"))
        .await;
    let resumed = welcome(&mut ws).await;
    assert_eq!(
        (
            resumed.resumed,
            resumed.reason.as_str(),
            resumed.from,
            resumed.head
        ),
        (true, "resumed", 21, 60)
    );
    expect_seqs(&mut ws, 21, 40).await;
    hub.publish(&"live").expect("publishes");
    assert_eq!(next_seq(&mut ws).await, 61, "live follows with no gap");
    assert_eq!(hub.stats().replayed, 40);
}

#[tokio::test]
async fn a_restart_without_history_is_a_new_epoch() {
    let old_epoch = {
        let hub = Hub::new(HubConfig::default());
        for n in 0..10 {
            hub.publish(&n).expect("publishes");
        }
        hub.epoch()
    };
    let hub = Hub::new(HubConfig::default());
    assert_ne!(
        hub.epoch(),
        old_epoch,
        "history was lost, so the epoch changes"
    );
    for n in 0..3 {
        hub.publish(&n).expect("publishes");
    }
    let server = Server::start(&hub).await;
    let mut ws = server.connect(&format!("cursor=2&epoch={old_epoch}")).await;
    let got = welcome(&mut ws).await;
    assert_eq!(
        (got.resumed, got.reason.as_str(), got.from, got.epoch),
        (false, "epoch_changed", 1, hub.epoch())
    );
    expect_seqs(&mut ws, 1, 3).await;
}
