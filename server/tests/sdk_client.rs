//! This SDK's own client against the hub, across restarts: with persisted history it
//! resumes exactly once in the same epoch; without it, it reports an explicit
//! discontinuity and takes the new epoch's messages, lower cursors included.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use resilient_ws::{Client, Event, Events};
use resilient_ws_server::{FileHistory, Hub, HubConfig};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::timeout;

use support::{LIMIT, TempPath};

/// The hub served at `/feed` on `addr` (the same port across restarts).
async fn serve(hub: &Hub, addr: SocketAddr) -> JoinHandle<()> {
    let listener = TcpListener::bind(addr).await.expect("binds the port again");
    let app = hub.router("/feed");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serves");
    })
}

/// Ends a hub as a restart would: every client gets 1012, then the listener goes.
async fn stop(hub: &Hub, server: JoinHandle<()>) {
    timeout(LIMIT, hub.shutdown()).await.expect("shuts down");
    server.abort();
    let _ = server.await;
}

fn publish(hub: &Hub, values: std::ops::RangeInclusive<u64>) {
    for value in values {
        hub.publish(&value).expect("published");
    }
}

/// What the application saw, in order: a message's cursor, or a discontinuity.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Message(u64),
    Discontinuity {
        previous: Option<String>,
        epoch: String,
        reason: String,
        last: Option<u64>,
    },
}

/// Reads events until `count` messages have arrived since the call.
async fn read(events: &mut Events, count: usize) -> Vec<Seen> {
    let mut seen = Vec::new();
    let mut messages = 0;
    timeout(LIMIT, async {
        while messages < count {
            match events.recv().await.expect("the stream goes on") {
                Event::Message { cursor, .. } => {
                    messages += 1;
                    seen.push(Seen::Message(cursor.expect("a seq").0));
                }
                Event::Discontinuity {
                    previous_epoch,
                    epoch,
                    reason,
                    last_cursor,
                } => seen.push(Seen::Discontinuity {
                    previous: previous_epoch,
                    epoch,
                    reason,
                    last: last_cursor.map(|c| c.0),
                }),
                _ => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{count} messages within the limit; saw {seen:?}"));
    seen
}

fn messages(range: std::ops::RangeInclusive<u64>) -> Vec<Seen> {
    range.map(Seen::Message).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_client_resumes_exactly_once_across_restarts_and_is_told_when_history_is_lost() {
    let temp = TempPath::new("sdk-client");
    let path = temp.0.clone();
    let config = HubConfig::default();
    let first = Hub::with_history(config.clone(), FileHistory::open(&path).unwrap()).unwrap();
    let epoch = first.epoch();
    publish(&first, 1..=20);
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let server = serve(&first, addr).await;
    let (client, mut events): (Client, Events) = Client::builder(format!("ws://{addr}/feed"))
        .cursor_field("seq")
        .resume_query("cursor")
        .backoff(Duration::from_millis(50), Duration::from_millis(200))
        .connect()
        .unwrap();
    assert_eq!(
        read(&mut events, 20).await,
        messages(1..=20),
        "the welcome is not delivered"
    );

    // A restart with the history on disk: the same epoch, and what was published while the
    // client was away arrives once, then live messages follow.
    stop(&first, server).await;
    drop(first);
    let second = Hub::with_history(config.clone(), FileHistory::open(&path).unwrap()).unwrap();
    assert_eq!(second.epoch(), epoch, "the file keeps the epoch");
    publish(&second, 21..=30);
    let server = serve(&second, addr).await;
    let mut seen = read(&mut events, 10).await;
    publish(&second, 31..=40);
    seen.extend(read(&mut events, 10).await);
    assert_eq!(seen, messages(21..=40), "exactly once, no discontinuity");
    assert_eq!(client.last_cursor().map(|c| c.0), Some(40));

    // A restart that lost the history: a new epoch, reported before its messages, whose
    // cursors start again at 1 and are not mistaken for replays.
    stop(&second, server).await;
    drop(second);
    let third = Hub::new(config);
    publish(&third, 1..=5);
    let server = serve(&third, addr).await;
    let seen = read(&mut events, 5).await;
    let mut expected = vec![Seen::Discontinuity {
        previous: Some(epoch.clone()),
        epoch: third.epoch(),
        reason: "epoch_changed".into(),
        last: Some(40),
    }];
    expected.extend(messages(1..=5));
    assert_eq!(seen, expected);
    assert_ne!(third.epoch(), epoch);
    client.close(1000, "").await.unwrap();
    stop(&third, server).await;
}
