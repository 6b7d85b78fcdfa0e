//! Who reads the socket: the application's task while it waits for events, the client's
//! own task while the application does anything else. Each test takes away one of the
//! two and checks that what the socket says is still heard.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake};
use std::thread::{self, Thread};
use std::time::Duration;

use resilient_ws::{Client, ClientBuilder, Event, Events, State};
use resilient_ws_tests::wait::eventually;
use resilient_ws_tests::{Behaviour, Script, ScriptServer, Step};
use tokio::time::{Instant, sleep, timeout};

/// Upper bound of every wait for something that should happen.
const LIMIT: Duration = Duration::from_secs(10);

async fn start(then: Vec<Step>) -> ScriptServer {
    ScriptServer::start(Script::new(Behaviour::Accept { then }))
        .await
        .expect("script server starts")
}

/// A server that sends one message, then drops the TCP stream after `wait`.
async fn one_message_then_drop(wait: Duration) -> ScriptServer {
    start(vec![
        Step::SendFeed { from: 1, count: 1 },
        Step::Wait(wait),
        Step::DropTcp,
    ])
    .await
}

/// Reads until the first message.
async fn take_message(events: &mut Events) {
    timeout(LIMIT, async {
        while !matches!(events.recv().await, Some(Event::Message { .. }) | None) {}
    })
    .await
    .expect("the message arrives");
}

fn builder(url: String) -> ClientBuilder {
    Client::builder(url)
        .backoff(Duration::from_secs(5), Duration::from_secs(5))
        .seed(0x11)
}

/// The application takes a message and works on it without polling the stream: the
/// server's drop is still noticed at once, with no heartbeat to find it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drop_is_noticed_while_the_application_works_on_a_message() {
    let server = one_message_then_drop(Duration::from_millis(300)).await;
    let (client, mut events) = builder(server.url("/feed"))
        .no_heartbeat()
        .connect()
        .unwrap();
    take_message(&mut events).await;
    let taken = Instant::now();
    // Busy with the message: the stream is not polled until the drop has been noticed.
    eventually("the drop noticed", LIMIT, || client.state() != State::Open).await;
    let noticed = taken.elapsed();
    assert!(
        noticed < Duration::from_millis(300 + 500),
        "noticed {noticed:?} after the message, the server dropped 300 ms after it"
    );
    assert_eq!(client.stats().heartbeat_timeouts, 0);
    drop(events);
    client.close(1000, "").await.unwrap();
    server.shutdown().await;
}

/// The application starts waiting, then stops polling without dropping the stream (a
/// `select!` whose other branch runs long): the socket wakes a task that does not read it.
/// The heartbeat's timer still runs, the client's task reads at its deadline, and the
/// drop is found by that read, not mistaken for a dead connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drop_is_found_when_the_application_stops_polling_mid_wait() {
    let server = one_message_then_drop(Duration::from_millis(200)).await;
    let (client, mut events) = builder(server.url("/feed"))
        .heartbeat(Duration::from_millis(600), Duration::from_millis(2_000))
        .connect()
        .unwrap();
    take_message(&mut events).await;
    let taken = Instant::now();
    // Waits, then gives up on the wait: the stream stays, unpolled.
    let waited = timeout(Duration::from_millis(50), events.recv()).await;
    assert!(waited.is_err(), "nothing more comes: {waited:?}");
    eventually("the drop found", LIMIT, || client.state() != State::Open).await;
    let found = taken.elapsed();
    assert!(
        found < Duration::from_millis(600 + 500),
        "found {found:?} after the message, by the heartbeat's deadline (600 ms) at the latest"
    );
    assert_eq!(
        client.stats().heartbeat_timeouts,
        0,
        "the read at the deadline found the drop; the connection was not judged dead"
    );
    drop(events);
    client.close(1000, "").await.unwrap();
    server.shutdown().await;
}

/// The stream is polled on a thread with no tokio runtime: reading the socket there
/// (the socket's end makes the client start timers and reconnect) runs in the client's
/// own runtime, and every event arrives.
#[test]
fn events_are_read_from_a_thread_without_a_runtime() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (server, client, mut events) = runtime.block_on(async {
        let server = start(vec![
            Step::SendFeed { from: 1, count: 50 },
            Step::Wait(Duration::from_millis(100)),
            Step::Close {
                code: 1001,
                reason: "restarting".into(),
            },
        ])
        .await;
        let (client, events) = builder(server.url("/feed")).connect().unwrap();
        (server, client, events)
    });
    let seen = thread::spawn(move || {
        let mut seen = Vec::new();
        let deadline = std::time::Instant::now() + LIMIT;
        while std::time::Instant::now() < deadline {
            match block_on(events.recv()) {
                Some(Event::Message { .. }) => seen.push("message"),
                Some(Event::StateChanged {
                    state: State::Reconnecting { .. },
                    ..
                }) => {
                    seen.push("reconnecting");
                    break;
                }
                Some(_) => {}
                None => break,
            }
        }
        seen
    })
    .join()
    .expect("the reading thread does not panic");
    assert_eq!(seen.iter().filter(|&&what| what == "message").count(), 50);
    assert_eq!(seen.last(), Some(&"reconnecting"), "{seen:?}");
    runtime.block_on(async {
        client.close(1000, "").await.unwrap();
        server.shutdown().await;
    });
}

/// Polls `future` to completion on this thread, parking it between wake-ups.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Arc::new(Unpark(thread::current())).into();
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        thread::park_timeout(Duration::from_millis(100));
    }
}

/// While the application keeps up, sleeping between messages, every message still
/// arrives in order: the reads move between the two tasks without a gap or a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_move_between_the_tasks_without_a_gap() {
    let server = start(vec![Step::SendFeed {
        from: 1,
        count: 2_000,
    }])
    .await;
    let (client, mut events) = builder(server.url("/feed"))
        .cursor_field("seq")
        .event_buffer(64)
        .connect()
        .unwrap();
    let mut delivered = Vec::new();
    timeout(LIMIT, async {
        while delivered.len() < 2_000 {
            match events.recv().await {
                Some(Event::Message { cursor, .. }) => {
                    delivered.push(cursor.expect("a cursor").0);
                    // Now busy, now waiting: both tasks read.
                    if delivered.len() % 97 == 0 {
                        sleep(Duration::from_millis(2)).await;
                    }
                }
                Some(_) => {}
                None => break,
            }
        }
    })
    .await
    .expect("the feed arrives");
    assert_eq!(delivered, (1..=2_000).collect::<Vec<u64>>());
    client.close(1000, "").await.unwrap();
    server.shutdown().await;
}
