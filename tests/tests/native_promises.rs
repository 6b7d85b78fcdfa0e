//! The promises that broke where a fault met traffic (issue 10), each end to end against
//! a real server on 127.0.0.1: a server close while the application sends, timers while
//! the application does not read, a server that sends one message and drops, a crowd
//! told the same Retry-After, and messages handed to the writer when the socket goes.

use std::collections::BTreeSet;
use std::time::Duration;

use resilient_ws::{Client, ClientBuilder, Event, Failure, State};
use resilient_ws_tests::wait::eventually;
use resilient_ws_tests::{
    Behaviour, ClientMessage, Fault, FaultProxy, Recorder, Script, ScriptServer, Step,
};
use tokio::time::{Instant, sleep, timeout};

/// Upper bound of every wait for something that should happen.
const LIMIT: Duration = Duration::from_secs(10);

fn accept(then: Vec<Step>) -> Behaviour {
    Behaviour::Accept { then }
}

async fn start(script: Script) -> ScriptServer {
    ScriptServer::start(script)
        .await
        .expect("script server starts")
}

fn builder(url: String) -> ClientBuilder {
    Client::builder(url)
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
        .seed(0x1010)
        .no_heartbeat()
}

/// The numbered texts the server read, over all connections, in order.
fn received_numbers(server: &ScriptServer) -> Vec<u64> {
    server
        .received()
        .into_iter()
        .flatten()
        .filter_map(|message| match message {
            ClientMessage::Text(text) => text.split(':').next()?.parse().ok(),
            _ => None,
        })
        .collect()
}

/// The numbers of the messages handed back in `Event::Unsent`.
fn unsent_numbers(recorder: &Recorder) -> Vec<u64> {
    recorder
        .unsent()
        .into_iter()
        .filter_map(|unsent| unsent.payload.as_text()?.split(':').next()?.parse().ok())
        .collect()
}

/// Each wait before a retry, with the number the attempt after it has.
fn reconnecting(recorder: &Recorder) -> Vec<(u32, Duration)> {
    recorder
        .retry_waits()
        .into_iter()
        .map(|(attempt, delay, _)| (attempt, delay))
        .collect()
}

fn assert_strictly_increasing(numbers: &[u64], what: &str) {
    assert!(
        numbers.windows(2).all(|pair| pair[0] < pair[1]),
        "{what}: duplicated or out of order: {numbers:?}"
    );
}

/// Item 1: a server that closes with a retryable code while the application streams
/// sends is a close like any other: the client reconnects, and our own writer racing the
/// close is never a protocol error that ends the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_close_while_sending_reconnects() {
    for code in [1012, 1011, 1001] {
        for trial in 0..5 {
            let script = Script::new(accept(vec![
                Step::Wait(Duration::from_millis(150)),
                Step::Close {
                    code,
                    reason: "restarting".into(),
                },
            ]))
            .then(accept(vec![]));
            let server = start(script).await;
            let (client, events) = builder(server.url("/feed")).connect().unwrap();
            let recorder = Recorder::spawn(events);
            let deadline = Instant::now() + LIMIT;
            let mut next = 0u64;
            // Send as fast as the queue takes them until the second connection is open.
            while recorder.opens() < 2 && Instant::now() < deadline {
                match client.send_text(format!("{next}:x")) {
                    Ok(_) => next += 1,
                    Err(_) => sleep(Duration::from_millis(1)).await,
                }
                if next % 64 == 0 {
                    tokio::task::yield_now().await;
                }
                assert!(
                    !matches!(client.state(), State::Failed(_)),
                    "close {code}, trial {trial}: {:?}",
                    client.state()
                );
            }
            assert_eq!(
                recorder.opens(),
                2,
                "close {code}, trial {trial}: reconnected"
            );
            client.close(1000, "").await.unwrap();
            let received = received_numbers(&server);
            assert_strictly_increasing(&received, &format!("close {code}"));
            server.shutdown().await;
        }
    }
}

/// Item 2, one side: the application does not read its events, and still the retry
/// timers and the connect deadline run (a dead server keeps the client trying) and the
/// state stays current.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_go_on_while_the_application_does_not_read() {
    let server = start(Script::new(accept(vec![]))).await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    proxy.set_fault(Fault::Refuse);
    let (client, _events) = builder(format!("ws://{}/feed", proxy.addr()))
        .backoff(Duration::from_millis(10), Duration::from_millis(50))
        .max_failures(None)
        .event_buffer(8)
        .connect()
        .unwrap();
    // Nobody reads `_events`: 8 events fill it within a few attempts.
    sleep(Duration::from_millis(500)).await;
    let early = client.stats().attempts;
    sleep(Duration::from_millis(1_000)).await;
    let late = client.stats().attempts;
    assert!(
        late >= early + 10,
        "attempts stopped while the application was not reading: {early} then {late}"
    );
    assert!(
        matches!(
            client.state(),
            State::Reconnecting { attempt, .. } | State::Connecting { attempt }
                if u64::from(attempt) + 1 >= late
        ),
        "the state is current: {:?} after {late} attempts",
        client.state()
    );
    proxy.shutdown().await;
    server.shutdown().await;
}

/// Item 2, the rule's two sides: a connection that goes silent while the application is
/// not reading is found dead in time; one whose data waits for the application is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_connection_is_found_while_the_application_does_not_read() {
    // The server sends exactly what fills the event buffer, then nothing: no data waits.
    let server = start(Script::new(accept(vec![Step::SendFeed {
        from: 1,
        count: 4,
    }])))
    .await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let (client, _events) = builder(format!("ws://{}/feed", proxy.addr()))
        .heartbeat(Duration::from_millis(300), Duration::from_millis(300))
        .event_buffer(4)
        .connect()
        .unwrap();
    eventually("open", LIMIT, || client.state() == State::Open).await;
    // Pings are answered while the application does not read: not mistaken for dead.
    sleep(Duration::from_millis(1_200)).await;
    assert_eq!(client.state(), State::Open, "a live connection stays open");
    assert_eq!(client.stats().heartbeat_timeouts, 0);
    proxy.set_fault(Fault::Blackhole);
    let blackholed = Instant::now();
    eventually("found dead", LIMIT, || client.state() != State::Open).await;
    let found = blackholed.elapsed();
    assert!(
        found <= Duration::from_millis(600 + 300),
        "found after {found:?}, bound interval + timeout"
    );
    assert_eq!(client.stats().heartbeat_timeouts, 1);
    proxy.set_fault(Fault::None);
    proxy.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_application_is_not_mistaken_for_a_dead_connection() {
    let server = start(Script::new(accept(vec![Step::SendFeed {
        from: 1,
        count: 300,
    }])))
    .await;
    let (client, mut events) = builder(server.url("/feed"))
        .cursor_field("seq")
        .heartbeat(Duration::from_millis(200), Duration::from_millis(200))
        .event_buffer(16)
        .connect()
        .unwrap();
    eventually("open", LIMIT, || client.state() == State::Open).await;
    // Stalled for five heartbeat windows while data waits in the socket.
    sleep(Duration::from_millis(2_000)).await;
    assert_eq!(client.state(), State::Open);
    let mut delivered = Vec::new();
    timeout(LIMIT, async {
        while delivered.len() < 300 {
            match events.recv().await {
                Some(Event::Message { cursor, .. }) => delivered.push(cursor.unwrap().0),
                Some(_) => {}
                None => break,
            }
        }
    })
    .await
    .expect("the feed arrives once the application reads");
    assert_eq!(delivered, (1..=300).collect::<Vec<u64>>());
    assert_eq!(client.stats().heartbeat_timeouts, 0);
    assert_eq!(client.stats().attempts, 1, "never reconnected");
    client.close(1000, "").await.unwrap();
    server.shutdown().await;
}

/// Item 3: a server that accepts, sends one message and closes. When the message is a
/// replay the client drops, nothing is progress: the failure cap ends the session, after
/// a growing backoff.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_only_replays_and_drops_hits_the_failure_cap() {
    let script = Script::new(accept(vec![
        Step::SendFeed { from: 1, count: 1 },
        Step::Close {
            code: 1011,
            reason: String::new(),
        },
    ]));
    let server = start(script).await;
    let (_client, events) = builder(server.url("/feed"))
        .cursor_field("seq")
        .resume_query("cursor")
        .backoff(Duration::from_millis(100), Duration::from_millis(2_000))
        .max_failures(Some(3))
        .connect()
        .unwrap();
    let recorder = Recorder::spawn(events);
    let state = recorder.wait_terminal(LIMIT).await;
    assert!(
        matches!(
            state,
            State::Failed(Failure::TooManyFailures { attempts: 3, .. })
        ),
        "{state:?}"
    );
    // The first connection delivered seq 1 (progress); then three replays.
    assert_eq!(server.connections(), 4);
    assert_eq!(recorder.delivered(), [1]);
    let delays: Vec<Duration> = reconnecting(&recorder)
        .into_iter()
        .map(|(_, d)| d)
        .collect();
    assert!(
        delays
            .iter()
            .all(|delay| *delay >= Duration::from_millis(100)),
        "a floor under every delay after a failure: {delays:?}"
    );
    server.shutdown().await;
}

/// Item 3, the other side: new data on every short connection is progress, so the
/// session goes on, but at a growing backoff's pace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_sends_new_data_and_drops_is_backed_off() {
    let mut script = Script::new(accept(vec![
        Step::SendFeed { from: 1, count: 1 },
        Step::DropTcp,
    ]));
    for seq in 2..=6 {
        script = script.then(accept(vec![
            Step::SendFeed {
                from: seq,
                count: 1,
            },
            Step::DropTcp,
        ]));
    }
    let server = start(script.then(accept(vec![]))).await;
    let (client, events) = builder(server.url("/feed"))
        .cursor_field("seq")
        .resume_query("cursor")
        .backoff(Duration::from_millis(20), Duration::from_millis(2_000))
        .max_failures(Some(3))
        .connect()
        .unwrap();
    let recorder = Recorder::spawn(events);
    recorder.wait_delivered(6, LIMIT).await;
    recorder.assert_exactly_once(6);
    let attempts: Vec<u32> = reconnecting(&recorder)
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    assert_eq!(attempts[..6], [2, 3, 4, 5, 6, 7], "the backoff grows");
    assert!(!matches!(client.state(), State::Failed(_)));
    client.close(1000, "").await.unwrap();
    server.shutdown().await;
}

/// Item 4: clients refused together with the same Retry-After come back spread over the
/// backoff window, and Retry-After: 0 never makes a tight loop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_told_the_same_retry_after_spreads_out() {
    let script = Script::new(Behaviour::Reject {
        status: 503,
        retry_after: Some(1),
    })
    .then(accept(vec![]));
    let mut delays = Vec::new();
    for seed in 0..20 {
        let server = start(script.clone()).await;
        let (client, events) = builder(server.url("/feed"))
            .backoff(Duration::from_millis(250), Duration::from_secs(5))
            .seed(seed)
            .connect()
            .unwrap();
        let recorder = Recorder::spawn(events);
        recorder
            .wait_for("a retry", LIMIT, |recorder| {
                !reconnecting(recorder).is_empty()
            })
            .await;
        delays.extend(reconnecting(&recorder).first().map(|(_, delay)| *delay));
        drop(client);
        server.shutdown().await;
    }
    let (low, high) = (delays.iter().min().unwrap(), delays.iter().max().unwrap());
    assert!(*low >= Duration::from_secs(1), "{delays:?}");
    assert!(
        *high - *low >= Duration::from_millis(250),
        "20 clients within {:?} of each other: {delays:?}",
        *high - *low
    );

    let zero = Script::new(Behaviour::Reject {
        status: 503,
        retry_after: Some(0),
    });
    let server = start(zero).await;
    let (client, _events) = builder(server.url("/feed"))
        .backoff(Duration::from_millis(250), Duration::from_secs(5))
        .max_failures(None)
        .connect()
        .unwrap();
    sleep(Duration::from_millis(1_000)).await;
    let attempts = client.stats().attempts;
    assert!(
        attempts <= 11,
        "{attempts} attempts in 1 s with Retry-After: 0 (floor 100 ms)"
    );
    drop(client);
    server.shutdown().await;
}

/// Item 6: the peer stops reading while the application sends 500 messages of 16 KiB,
/// then closes with a fatal code. Every message the client wrote to the OS socket reaches
/// the peer (it reads what is buffered after its close); every other one comes back in
/// `Unsent`. Nothing vanishes in between, and `messages_sent` counts what was written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_the_writer_never_wrote_come_back() {
    let script = Script::new(accept(vec![
        Step::Stall(Duration::from_millis(1_500)),
        Step::Close {
            code: 1008,
            reason: "policy".into(),
        },
    ]));
    let server = start(script).await;
    let (client, events) = builder(server.url("/feed"))
        .queue(1_000, 16 * 1024 * 1024)
        .connect()
        .unwrap();
    let recorder = Recorder::spawn(events);
    eventually("open", LIMIT, || client.state() == State::Open).await;
    let filler = "x".repeat(16 * 1024);
    for n in 0..500u64 {
        client.send_text(format!("{n}:{filler}")).unwrap();
    }
    let state = recorder.wait_terminal(LIMIT).await;
    assert!(
        matches!(state, State::Failed(Failure::Fatal(_))),
        "{state:?}"
    );
    let sent = client.stats().messages_sent;
    // The peer reads what reached it after its close, until the client's socket is gone.
    eventually("the peer has read everything", LIMIT, || {
        server.live_connections() == 0
    })
    .await;
    let received = received_numbers(&server);
    let unsent = unsent_numbers(&recorder);
    assert_strictly_increasing(&received, "received");
    assert_strictly_increasing(&unsent, "unsent");
    let all: BTreeSet<u64> = received.iter().chain(&unsent).copied().collect();
    assert_eq!(
        received.len() + unsent.len(),
        all.len(),
        "received and handed back at once"
    );
    let missing: Vec<u64> = (0..500).filter(|n| !all.contains(n)).collect();
    assert!(
        missing.is_empty(),
        "{} received, {} unsent, {} vanished: {missing:?}",
        received.len(),
        unsent.len(),
        missing.len()
    );
    assert!(
        !unsent.is_empty(),
        "the peer stalled: some were never written"
    );
    assert_eq!(
        sent,
        received.len() as u64,
        "messages_sent counts what was written"
    );
    server.shutdown().await;
}
