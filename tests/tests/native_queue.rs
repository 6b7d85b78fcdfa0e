//! The native client's outbound queue and event stream end to end: messages sent while
//! offline, the queue's bounds, flushing on close, messages handed back, JSON in and out,
//! dropping the last handle, and a slow consumer pushing back on a fast server.

use std::collections::BTreeMap;
use std::time::Duration;

use resilient_ws::{
    Client, ClientBuilder, Event, Events, JsonEvent, MsgId, Payload, Reason, SendError,
    SendJsonError, State,
};
use resilient_ws_tests::script_server::feed_message;
use resilient_ws_tests::wait::eventually;
use resilient_ws_tests::{
    Behaviour, ClientMessage, Fault, FaultProxy, Recorder, Script, ScriptServer, Step,
};
use tokio::time::{Instant, sleep, timeout};

/// Upper bound of every wait for something that should happen.
const LIMIT: Duration = Duration::from_secs(10);

// ---- helpers ----

/// A script server that records what it reads and never closes on its own.
async fn listening_server() -> ScriptServer {
    ScriptServer::start(Script::new(Behaviour::Accept { then: vec![] }))
        .await
        .expect("script server starts")
}

/// A proxy in front of `server` that refuses every connection until told otherwise: the
/// server is "down".
async fn down_proxy(server: &ScriptServer) -> FaultProxy {
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    proxy.set_fault(Fault::Refuse);
    proxy
}

fn builder(url: String) -> ClientBuilder {
    Client::builder(url)
        .backoff(Duration::from_millis(50), Duration::from_millis(200))
        .max_failures(None)
        .seed(0x0E0E)
        .no_heartbeat()
}

/// Everything the server read, over all connections, in order.
fn all_received(server: &ScriptServer) -> Vec<ClientMessage> {
    server.received().into_iter().flatten().collect()
}

/// The text messages the server read, over all connections, in order.
fn received_texts(server: &ScriptServer) -> Vec<String> {
    all_received(server)
        .into_iter()
        .filter_map(|message| match message {
            ClientMessage::Text(text) => Some(text),
            _ => None,
        })
        .collect()
}

/// Every message handed back in `Event::Unsent`, oldest first.
fn unsent(recorder: &Recorder) -> Vec<(MsgId, Payload)> {
    recorder
        .unsent()
        .into_iter()
        .map(|unsent| (unsent.id, unsent.payload))
        .collect()
}

/// Reads events until the session is open, panicking after `LIMIT`.
async fn recv_until_open(events: &mut Events) {
    timeout(LIMIT, async {
        loop {
            match events.recv().await {
                Some(Event::StateChanged {
                    state: State::Open, ..
                }) => return,
                Some(_) => {}
                None => panic!("the event stream ended before the session opened"),
            }
        }
    })
    .await
    .expect("the session opens");
}

/// Waits until the client has failed at least `n` attempts against the refusing proxy.
async fn wait_refused(proxy: &FaultProxy, client: &Client, n: u64) {
    eventually(&format!("{n} refused attempts"), LIMIT, || {
        proxy.connections_accepted() >= n && client.stats().attempts >= n
    })
    .await;
}

// ---- the offline queue ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_sent_offline_are_delivered_in_order_once_the_server_is_up() {
    let server = listening_server().await;
    let proxy = down_proxy(&server).await;
    let (client, events) = builder(format!("ws://{}/feed", proxy.addr()))
        .connect()
        .unwrap();
    let recorder = Recorder::spawn(events);
    wait_refused(&proxy, &client, 1).await;

    let lines: Vec<String> = (1..=50).map(|n| format!("line-{n}")).collect();
    let mut ids = Vec::new();
    for line in &lines {
        ids.push(
            client
                .send_text(line.as_str())
                .expect("queued while offline"),
        );
    }
    assert!(
        ids.windows(2).all(|pair| pair[0] < pair[1]),
        "ids rise: {ids:?}"
    );
    assert_eq!(client.stats().queued, 50);
    // More failed attempts go by; the queue waits.
    let before = proxy.connections_accepted();
    wait_refused(&proxy, &client, before + 2).await;
    assert_eq!(client.stats().queued, 50);
    assert_eq!(recorder.opens(), 0);
    assert_eq!(server.connections(), 0);

    proxy.set_fault(Fault::None);
    eventually("the server reads 50 lines", LIMIT, || {
        received_texts(&server).len() >= 50
    })
    .await;
    // Nothing more arrives later: no duplicates.
    sleep(Duration::from_millis(300)).await;
    assert_eq!(
        received_texts(&server),
        lines,
        "all 50, in order, exactly once"
    );
    assert_eq!(server.received().len(), 1, "one accepted connection");
    assert_eq!(client.state(), State::Open);
    assert_eq!(client.stats().queued, 0);
    assert_eq!(client.stats().messages_sent, 50);
    assert!(unsent(&recorder).is_empty());
    client.close(1000, "").await.unwrap();
    proxy.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_hands_messages_back() {
    let server = listening_server().await;
    let proxy = down_proxy(&server).await;
    let (client, events) = builder(format!("ws://{}/feed", proxy.addr()))
        .queue(3, 1024)
        .connect()
        .unwrap();
    let recorder = Recorder::spawn(events);
    wait_refused(&proxy, &client, 1).await;

    for text in ["m1", "m2", "m3"] {
        client.send_text(text).unwrap();
    }
    let full = client.send_text("m4").unwrap_err();
    assert_eq!(
        full,
        SendError::QueueFull {
            payload: Payload::Text("m4".into()),
            queued: 3,
            queued_bytes: 6
        }
    );
    assert_eq!(full.into_payload(), Payload::Text("m4".into()));
    let big = vec![7u8; 1025];
    let too_large = client.send_binary(big.clone()).unwrap_err();
    assert!(
        matches!(
            too_large,
            SendError::TooLarge {
                max_bytes: 1024,
                ..
            }
        ),
        "{too_large:?}"
    );
    assert_eq!(too_large.into_payload(), Payload::from(big));
    assert_eq!(client.stats().queued, 3);
    assert_eq!(client.stats().queued_bytes, 6);

    proxy.set_fault(Fault::None);
    eventually("the three queued messages arrive", LIMIT, || {
        received_texts(&server).len() >= 3
    })
    .await;
    // Room again once open.
    client.send_text("m4").unwrap();
    eventually("m4 arrives", LIMIT, || received_texts(&server).len() >= 4).await;
    sleep(Duration::from_millis(200)).await;
    assert_eq!(received_texts(&server), ["m1", "m2", "m3", "m4"]);
    assert!(unsent(&recorder).is_empty());
    client.close(1000, "").await.unwrap();
    proxy.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_byte_bound_hands_messages_back_too() {
    let server = listening_server().await;
    let proxy = down_proxy(&server).await;
    let (client, events) = builder(format!("ws://{}/feed", proxy.addr()))
        .queue(100, 100)
        .connect()
        .unwrap();
    let _recorder = Recorder::spawn(events);
    let forty = "x".repeat(40);
    client.send_text(forty.as_str()).unwrap();
    client.send_text(forty.as_str()).unwrap();
    assert_eq!(
        client.send_text(forty.as_str()),
        Err(SendError::QueueFull {
            payload: Payload::from(forty.clone()),
            queued: 2,
            queued_bytes: 80
        })
    );
    // A message that fits the remaining bytes is still taken.
    client.send_text("y".repeat(20)).unwrap();
    assert_eq!(client.stats().queued_bytes, 100);
    drop(client);
    proxy.shutdown().await;
    server.shutdown().await;
}

// ---- close ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_flushes_the_queue_then_sends_the_close_frame() {
    let server = listening_server().await;
    let (client, events) = builder(server.url("/feed")).connect().unwrap();
    let recorder = Recorder::spawn(events);
    recorder.wait_for("open", LIMIT, |r| r.opens() == 1).await;

    let messages: Vec<String> = (1..=200)
        .map(|n| format!("msg-{n:03}-{}", "p".repeat(512)))
        .collect();
    for message in &messages {
        client.send_text(message.as_str()).unwrap();
    }
    timeout(LIMIT, client.close(4000, "bye"))
        .await
        .expect("close returns")
        .unwrap();
    assert_eq!(client.state(), State::Closed);
    // The watched state changes first; the event reaches the stream right after.
    assert_eq!(recorder.wait_terminal(LIMIT).await, State::Closed);
    let (_, last_state, reason) = recorder
        .states()
        .pop()
        .expect("state changes were recorded");
    assert_eq!(last_state, State::Closed);
    assert_eq!(reason, Reason::CloseComplete);
    assert!(unsent(&recorder).is_empty(), "everything went out");

    eventually("the server reads the close frame", LIMIT, || {
        all_received(&server)
            .iter()
            .any(|m| matches!(m, ClientMessage::Close { .. }))
    })
    .await;
    let mut expected: Vec<ClientMessage> = messages.into_iter().map(ClientMessage::Text).collect();
    expected.push(ClientMessage::Close {
        code: Some(4000),
        reason: "bye".into(),
    });
    assert_eq!(
        server.received(),
        [expected],
        "200 messages in order, then the close"
    );
    eventually("the server's side is closed", LIMIT, || {
        server.live_connections() == 0
    })
    .await;
    assert_eq!(server.connections(), 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_while_disconnected_hands_unsent_messages_back() {
    let server = listening_server().await;
    let proxy = down_proxy(&server).await;
    let (client, events) = builder(format!("ws://{}/feed", proxy.addr()))
        .connect()
        .unwrap();
    let recorder = Recorder::spawn(events);
    wait_refused(&proxy, &client, 1).await;

    let payloads = [
        Payload::Text("one".into()),
        Payload::from(vec![2, 2]),
        Payload::Text("three".into()),
        Payload::from(vec![]),
        Payload::Text("five".into()),
    ];
    let sent: Vec<(MsgId, Payload)> = payloads
        .iter()
        .map(|payload| (client.send(payload.clone()).unwrap(), payload.clone()))
        .collect();

    let started = Instant::now();
    timeout(LIMIT, client.close(1000, ""))
        .await
        .unwrap()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "no socket to wait for"
    );
    assert_eq!(client.state(), State::Closed);
    recorder
        .wait_for("the unsent messages", LIMIT, |r| !unsent(r).is_empty())
        .await;
    assert_eq!(
        unsent(&recorder),
        sent,
        "ids and payloads as send returned them"
    );
    assert_eq!(client.stats().queued, 0);

    // A closed session takes no more messages and hands them back.
    assert_eq!(
        client.send_text("late"),
        Err(SendError::NotRunning {
            payload: Payload::Text("late".into())
        })
    );
    let refused = proxy.connections_accepted();
    proxy.set_fault(Fault::None);
    sleep(Duration::from_millis(500)).await;
    assert_eq!(
        proxy.connections_accepted(),
        refused,
        "no attempt after close()"
    );
    assert!(received_texts(&server).is_empty());
    proxy.shutdown().await;
    server.shutdown().await;
}

// ---- JSON ----

#[tokio::test]
async fn json_in_and_out_with_malformed_messages_reported_not_fatal() {
    let server = ScriptServer::start(Script::new(Behaviour::Accept {
        then: vec![
            Step::SendText(r#"{"seq":1}"#.into()),
            Step::SendText("not json {".into()),
            Step::SendText(r#"{"seq":"two"}"#.into()),
            Step::SendText(r#"{"seq":3}"#.into()),
            Step::EchoUntilClosed,
        ],
    }))
    .await
    .unwrap();
    let (client, events) = builder(server.url("/feed")).connect().unwrap();
    let mut events = events.json::<BTreeMap<String, u64>>();

    let sent = BTreeMap::from([("seq".to_owned(), 4u64)]);
    client.send_json(&sent).unwrap();
    // A value JSON cannot encode is refused before it is queued.
    let not_encodable = BTreeMap::from([((1u8, 2u8), 3u8)]);
    assert!(matches!(
        client.send_json(&not_encodable),
        Err(SendJsonError::Encode(_))
    ));

    let mut decoded = Vec::new();
    let mut malformed = Vec::new();
    let mut states = Vec::new();
    timeout(LIMIT, async {
        while decoded.len() < 3 {
            match events.recv().await.expect("the stream goes on") {
                JsonEvent::Message { value, cursor } => {
                    assert_eq!(cursor, None);
                    decoded.push(value);
                }
                JsonEvent::Malformed { payload, error } => {
                    assert!(!error.to_string().is_empty());
                    malformed.push(payload);
                }
                JsonEvent::Other(Event::StateChanged { state, .. }) => states.push(state),
                JsonEvent::Other(other) => panic!("unexpected event {other:?}"),
            }
        }
    })
    .await
    .expect("three good messages arrive");
    let seq = |n: u64| BTreeMap::from([("seq".to_owned(), n)]);
    // The echo of what the client sent comes last: the server echoes once its steps are done.
    assert_eq!(decoded, [seq(1), seq(3), seq(4)]);
    assert_eq!(
        malformed,
        [
            Payload::Text("not json {".into()),
            Payload::Text(r#"{"seq":"two"}"#.into())
        ]
    );
    assert_eq!(
        states,
        [State::Connecting { attempt: 1 }, State::Open],
        "malformed messages do not end the session"
    );
    assert_eq!(client.state(), State::Open);
    assert_eq!(
        all_received(&server),
        [ClientMessage::Text(r#"{"seq":4}"#.into())]
    );
    assert_eq!(server.connections(), 1);
    client.close(1000, "").await.unwrap();
    server.shutdown().await;
}

// ---- dropping the handles ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_every_handle_closes_gracefully_and_ends_the_stream() {
    let server = listening_server().await;
    let (client, mut events) = builder(server.url("/feed")).connect().unwrap();
    let other = client.clone();
    recv_until_open(&mut events).await;

    drop(other);
    sleep(Duration::from_millis(200)).await;
    assert!(
        all_received(&server).is_empty(),
        "one handle left: still open"
    );
    assert_eq!(client.state(), State::Open);

    drop(client);
    let mut last_state = None;
    let ended = timeout(Duration::from_secs(5), async {
        while let Some(event) = events.recv().await {
            if let Event::StateChanged { state, .. } = event {
                last_state = Some(state);
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the event stream ends after the last handle is dropped"
    );
    assert_eq!(last_state, Some(State::Closed));
    eventually("the server reads the close frame", LIMIT, || {
        !all_received(&server).is_empty()
    })
    .await;
    assert_eq!(
        all_received(&server),
        [ClientMessage::Close {
            code: Some(1000),
            reason: String::new()
        }]
    );
    eventually("the connection is gone", LIMIT, || {
        server.live_connections() == 0
    })
    .await;
    assert_eq!(server.connections(), 1);
    server.shutdown().await;
}

// ---- a slow consumer ----

/// Size of the filler messages between the numbered ones.
const BLOB: usize = 16 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_pushes_back_on_a_fast_server() {
    // 4,000 numbered messages, each followed by a 16 KiB filler: ~66 MB in all, far more
    // than the client's event buffers and the sockets' kernel buffers together.
    let n: u64 = 4000;
    let steps = (1..=n)
        .flat_map(|seq| {
            [
                Step::SendText(feed_message(seq)),
                Step::SendOversized { len: BLOB },
            ]
        })
        .collect();
    let server = ScriptServer::start(Script::new(Behaviour::Accept { then: steps }))
        .await
        .unwrap();
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let (client, mut events) = builder(format!("ws://{}/feed", proxy.addr()))
        .cursor_field("seq")
        .connect()
        .unwrap();
    let total = n * (BLOB as u64 + feed_message(n).len() as u64);

    // Nobody reads the events: the client must stop reading the socket, and the server stall.
    eventually("the server starts sending", LIMIT, || {
        proxy.bytes_down() > 0
    })
    .await;
    sleep(Duration::from_millis(1000)).await;
    let first = proxy.bytes_down();
    sleep(Duration::from_millis(300)).await;
    let second = proxy.bytes_down();
    assert_eq!(first, second, "bytes kept flowing to a client nobody reads");
    assert!(
        second < total / 3,
        "{second} of {total} bytes went down before the client pushed back"
    );
    assert_eq!(client.state(), State::Open);

    // Now read everything: each numbered message exactly once, in order, fillers between.
    let mut next = 1;
    let mut fillers = 0;
    let mut expect_filler = false;
    timeout(Duration::from_secs(15), async {
        while next <= n || fillers < n {
            match events.recv().await.expect("the stream goes on") {
                Event::Message {
                    payload,
                    cursor: Some(cursor),
                } => {
                    assert!(!expect_filler, "filler missing before {cursor:?}");
                    assert_eq!(cursor.0, next, "in order, exactly once");
                    assert_eq!(payload, Payload::from(feed_message(next)));
                    next += 1;
                    expect_filler = true;
                }
                Event::Message {
                    payload,
                    cursor: None,
                } => {
                    assert!(expect_filler, "a filler out of place after {}", next - 1);
                    assert_eq!(payload.len(), BLOB);
                    fillers += 1;
                    expect_filler = false;
                }
                Event::StateChanged {
                    state: State::Connecting { .. } | State::Open,
                    ..
                } => {}
                other => panic!("unexpected event {other:?}"),
            }
        }
    })
    .await
    .expect("everything arrives once the consumer reads");
    assert_eq!((next, fillers), (n + 1, n));
    assert_eq!(client.stats().messages_delivered, 2 * n);
    assert_eq!(client.stats().reconnects, 0);
    assert!(proxy.bytes_down() > total, "every payload byte went down");
    client.close(1000, "").await.unwrap();
    proxy.shutdown().await;
    server.shutdown().await;
}

/// `send_wait` waits while the queue is full (a peer that stops reading fills it once the
/// OS buffers are full) and goes on once the peer reads again: nothing is refused, nothing
/// lost, the order kept, and no busy retry loop is needed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_wait_waits_for_room_while_the_peer_stops_reading() {
    const STALL: Duration = Duration::from_millis(1_500);
    let server = ScriptServer::start(Script::new(Behaviour::Accept {
        then: vec![Step::Stall(STALL)],
    }))
    .await
    .unwrap();
    let (client, mut events) = builder(server.url("/feed"))
        .queue(4, 1024 * 1024)
        .connect()
        .unwrap();
    recv_until_open(&mut events).await;
    let recorder = Recorder::spawn(events);
    let filler = "x".repeat(64 * 1024);
    let started = Instant::now();
    let sender = {
        let client = client.clone();
        tokio::spawn(async move {
            let mut waited = Duration::ZERO;
            for n in 0..200u32 {
                let before = Instant::now();
                client
                    .send_wait(Payload::from(format!("{n}:{filler}")))
                    .await
                    .expect("waits instead of refusing");
                waited = waited.max(before.elapsed());
            }
            waited
        })
    };
    let longest_wait = timeout(LIMIT, sender).await.expect("all sent").unwrap();
    assert!(
        longest_wait >= Duration::from_millis(200),
        "12.5 MiB cannot fit in the OS buffers of a peer that stopped reading: some send must \
         have waited (longest {longest_wait:?})"
    );
    assert!(
        started.elapsed() >= STALL / 2,
        "sent before the peer read again"
    );
    eventually("all arrived", LIMIT, || {
        received_texts(&server).len() == 200
    })
    .await;
    let numbers: Vec<u32> = received_texts(&server)
        .iter()
        .map(|text| text.split(':').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(numbers, (0..200).collect::<Vec<u32>>());
    assert!(unsent(&recorder).is_empty());
    client.close(1000, "").await.unwrap();
    server.shutdown().await;
}

/// A session that stops while `send_wait` waits hands the message back at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_wait_returns_when_the_session_stops() {
    let server = listening_server().await;
    let proxy = down_proxy(&server).await;
    let (client, _events) = builder(format!("ws://{}/feed", proxy.addr()))
        .queue(1, 1024)
        .connect()
        .unwrap();
    client.send_text("fills the queue").unwrap();
    let waiting = {
        let client = client.clone();
        tokio::spawn(async move { client.send_wait(Payload::Text("waits".into())).await })
    };
    sleep(Duration::from_millis(100)).await;
    assert!(!waiting.is_finished(), "a full queue makes it wait");
    client.close(1000, "").await.unwrap();
    let result = timeout(LIMIT, waiting).await.expect("woken").unwrap();
    assert!(
        matches!(&result, Err(SendError::NotRunning { payload }) if *payload == Payload::Text("waits".into())),
        "{result:?}"
    );
    proxy.shutdown().await;
    server.shutdown().await;
}

/// The sink forwards a whole stream through a queue of four while the peer stops reading:
/// it waits for room instead of refusing, and every message arrives once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_forwards_a_stream_through_a_full_queue_without_dropping() {
    use futures_util::{SinkExt, StreamExt, stream};
    const STALL: Duration = Duration::from_millis(1_000);
    let server = ScriptServer::start(Script::new(Behaviour::Accept {
        then: vec![Step::Stall(STALL)],
    }))
    .await
    .unwrap();
    let (client, mut events) = builder(server.url("/feed"))
        .queue(4, 1024 * 1024)
        .connect()
        .unwrap();
    recv_until_open(&mut events).await;
    let recorder = Recorder::spawn(events);
    let filler = "x".repeat(64 * 1024);
    let mut messages = stream::iter(0..200u32).map(|n| Ok(Payload::from(format!("{n}:{filler}"))));
    let started = Instant::now();
    let mut sink = client.sink();
    timeout(LIMIT, sink.send_all(&mut messages))
        .await
        .expect("all handed to the queue")
        .expect("the sink waits for room instead of refusing");
    assert!(
        started.elapsed() >= STALL / 2,
        "12.5 MiB cannot all be queued while the peer does not read"
    );
    eventually("all arrived", LIMIT, || {
        received_texts(&server).len() == 200
    })
    .await;
    let numbers: Vec<u32> = received_texts(&server)
        .iter()
        .map(|text| text.split(':').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(numbers, (0..200).collect::<Vec<u32>>());
    assert!(unsent(&recorder).is_empty());
    client.close(1000, "").await.unwrap();
    server.shutdown().await;
}

/// A sink meeting a stopped session ends with the message handed back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_hands_the_message_back_once_the_session_stops() {
    use futures_util::SinkExt;
    let server = listening_server().await;
    let proxy = down_proxy(&server).await;
    let (client, _events) = builder(format!("ws://{}/feed", proxy.addr()))
        .queue(1, 1024)
        .connect()
        .unwrap();
    let mut sink = client.sink();
    sink.send(Payload::from("queued")).await.unwrap();
    let waiting = tokio::spawn(async move { sink.send(Payload::from("waits")).await });
    sleep(Duration::from_millis(100)).await;
    assert!(!waiting.is_finished(), "a full queue makes it wait");
    client.close(1000, "").await.unwrap();
    let result = timeout(LIMIT, waiting).await.expect("woken").unwrap();
    assert!(
        matches!(&result, Err(SendError::NotRunning { payload }) if *payload == Payload::from("waits")),
        "{result:?}"
    );
    proxy.shutdown().await;
    server.shutdown().await;
}
