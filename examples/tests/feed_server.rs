//! Integration tests of the reference feed server through its in-process API, a minimal
//! tokio-tungstenite client and raw HTTP requests. Everything runs on 127.0.0.1; every wait is
//! bounded; every server is shut down at the end.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use resilient_ws_examples::feed_server::{
    ClientMessage, ClientPayload, CloseAfter, Faults, FeedConfig, FeedMessage, FeedServer,
    FeedServerHandle, FeedStats, Refusal,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Upper bound for any single step (connect, read, request).
const STEP: Duration = Duration::from_secs(5);
/// How long "nothing arrives" is watched for.
const QUIET: Duration = Duration::from_millis(300);
/// Upper bound on frames read while waiting for a connection to end.
const MAX_FRAMES: usize = 10_000;

// ---- helpers ---------------------------------------------------------------------------------

async fn start(config: FeedConfig) -> FeedServerHandle {
    FeedServer::start(config).await.expect("feed server starts")
}

/// A feed of `total` messages, all available at once.
fn finite_feed(total: u64) -> FeedConfig {
    FeedConfig {
        rate: 0,
        total: Some(total),
        payload_bytes: 8,
        ..FeedConfig::default()
    }
}

/// Connects and reads the welcome frame, which must come first and be well formed.
async fn connect(url: &str) -> Client {
    connect_welcomed(url).await.0
}

/// Connects without reading anything.
async fn connect_raw(url: &str) -> Client {
    timeout(STEP, connect_async(url))
        .await
        .expect("connect in time")
        .expect("handshake accepted")
        .0
}

/// Connects and returns the welcome frame, checked for the hub's keys in the hub's order.
async fn connect_welcomed(url: &str) -> (Client, Welcome) {
    let mut client = connect_raw(url).await;
    let text = match timeout(STEP, client.next()).await.expect("welcome in time") {
        Some(Ok(Message::Text(text))) => text,
        other => panic!("expected the welcome frame, got {other:?}"),
    };
    let welcome: Welcome = serde_json::from_str(text.as_str()).expect("welcome JSON");
    // Exactly these keys, in this order.
    let rebuilt = format!(
        r#"{{"type":"welcome","epoch":"{}","resumed":{},"reason":"{}","from":{},"head":{}}}"#,
        welcome.epoch, welcome.resumed, welcome.reason, welcome.from, welcome.head
    );
    assert_eq!(text.as_str(), rebuilt);
    assert_eq!(welcome.resumed, welcome.reason == "resumed", "{text}");
    assert!(!welcome.epoch.is_empty());
    (client, welcome)
}

/// The hub's welcome frame.
#[derive(Debug, serde::Deserialize)]
struct Welcome {
    epoch: String,
    resumed: bool,
    reason: String,
    from: u64,
    head: u64,
}

/// The next feed message; panics on anything else.
async fn next_feed(client: &mut Client) -> FeedMessage {
    match timeout(STEP, client.next()).await.expect("message in time") {
        Some(Ok(Message::Text(text))) => FeedMessage::parse(text.as_str()).expect("feed JSON"),
        other => panic!("expected a feed message, got {other:?}"),
    }
}

async fn read_seqs(client: &mut Client, count: usize) -> Vec<u64> {
    let mut seqs = Vec::with_capacity(count);
    for _ in 0..count {
        seqs.push(next_feed(client).await.seq);
    }
    seqs
}

/// How a connection ended, seen from the client.
#[derive(Debug, PartialEq)]
enum End {
    /// The server sent a close frame.
    Closed(Option<u16>),
    /// The connection ended without a close frame.
    Abrupt,
}

/// Reads feed messages until the connection ends; returns their sequence numbers and the ending.
async fn read_until_end(client: &mut Client) -> (Vec<u64>, End) {
    let mut seqs = Vec::new();
    for _ in 0..MAX_FRAMES {
        match timeout(STEP, client.next())
            .await
            .expect("connection ends in time")
        {
            Some(Ok(Message::Text(text))) => {
                seqs.push(FeedMessage::parse(text.as_str()).expect("feed JSON").seq);
            }
            Some(Ok(Message::Close(frame))) => {
                let code = frame.map(|CloseFrame { code, .. }| u16::from(code));
                return (seqs, End::Closed(code));
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return (seqs, End::Abrupt),
        }
    }
    panic!("connection did not end within {MAX_FRAMES} frames");
}

/// Asserts that nothing at all arrives for a while.
async fn assert_quiet(client: &mut Client) {
    if let Ok(frame) = timeout(QUIET, client.next()).await {
        panic!("expected silence, got {frame:?}");
    }
}

/// Polls the stats until `predicate` holds; the stats change asynchronously to the client's view.
async fn wait_for_stats(
    server: &FeedServerHandle,
    what: &str,
    predicate: impl Fn(&FeedStats) -> bool,
) -> FeedStats {
    let polls = 500;
    for _ in 0..polls {
        let stats = server.stats();
        if predicate(&stats) {
            return stats;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}: {:?}", server.stats());
}

/// Sends raw bytes, reads until the server closes, returns the answer as text.
async fn raw_exchange(addr: SocketAddr, request: &[u8]) -> String {
    timeout(STEP, async {
        let mut stream = TcpStream::connect(addr).await.expect("tcp connect");
        stream.write_all(request).await.expect("request written");
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.expect("answer read");
        String::from_utf8_lossy(&answer).into_owned()
    })
    .await
    .expect("answer in time")
}

struct HttpAnswer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl HttpAnswer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("JSON body")
    }
}

fn parse_answer(answer: &str) -> HttpAnswer {
    let (head, body) = answer.split_once("\r\n\r\n").expect("complete response");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|status| status.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.to_owned(), value.trim().to_owned()))
        .collect();
    HttpAnswer {
        status,
        headers,
        body: body.to_owned(),
    }
}

async fn http_get(addr: SocketAddr, target: &str) -> HttpAnswer {
    let request = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    parse_answer(&raw_exchange(addr, request.as_bytes()).await)
}

/// The handshake must be refused; returns the status and the Retry-After header.
async fn expect_refusal(url: &str) -> (u16, Option<String>) {
    match timeout(STEP, connect_async(url))
        .await
        .expect("answer in time")
    {
        Err(tungstenite::Error::Http(response)) => {
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned);
            (response.status().as_u16(), retry_after)
        }
        Err(other) => panic!("expected an HTTP refusal, got {other:?}"),
        Ok(_) => panic!("expected an HTTP refusal, the handshake succeeded"),
    }
}

// ---- the feed --------------------------------------------------------------------------------

#[tokio::test]
async fn feed_starts_at_one_with_well_formed_messages() {
    let server = start(finite_feed(20)).await;
    let mut client = connect(&server.url()).await;
    for expected in 1..=20 {
        let message = next_feed(&mut client).await;
        assert_eq!(message.seq, expected);
        assert_eq!(message.ts_ms, 0, "rate 0: everything is available at start");
        assert_eq!(message.data.len(), 8);
        assert!(message.data.bytes().all(|byte| byte.is_ascii_lowercase()));
    }
    assert_quiet(&mut client).await;
    let stats = server.stats();
    assert_eq!((stats.messages_sent, stats.head), (20, 20));
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn resume_from_cursor_continues_after_it() {
    let server = start(finite_feed(50)).await;
    let mut client = connect(&format!("{}?cursor=10", server.url())).await;
    assert_eq!(read_seqs(&mut client, 5).await, vec![11, 12, 13, 14, 15]);
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn replay_overlap_repeats_messages_up_to_the_cursor() {
    let server = start(FeedConfig {
        faults: Faults {
            replay_overlap: 3,
            ..Faults::default()
        },
        ..finite_feed(50)
    })
    .await;
    let mut resumed = connect(&format!("{}?cursor=10", server.url())).await;
    assert_eq!(read_seqs(&mut resumed, 4).await, vec![8, 9, 10, 11]);
    let mut fresh = connect(&server.url()).await;
    assert_eq!(
        read_seqs(&mut fresh, 2).await,
        vec![1, 2],
        "no overlap without a cursor"
    );
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn live_feed_advances_in_real_time_and_start_live_skips_history() {
    let server = start(FeedConfig {
        rate: 50,
        start_live: true,
        ..FeedConfig::default()
    })
    .await;
    let head = wait_for_stats(&server, "head to reach 10", |stats| stats.head >= 10)
        .await
        .head;
    let mut live = connect(&server.url()).await;
    let first = next_feed(&mut live).await;
    assert!(
        first.seq > head,
        "start-live begins after the head ({first:?}, head {head})"
    );
    assert_eq!(first.ts_ms, first.seq * 20, "50/s: one message every 20 ms");
    assert_eq!(next_feed(&mut live).await.seq, first.seq + 1);

    let mut from_start = connect(&format!("{}?cursor=0", server.url())).await;
    assert_eq!(
        read_seqs(&mut from_start, 3).await,
        vec![1, 2, 3],
        "a cursor wins"
    );
    server.shutdown().await.expect("clean shutdown");
}

// ---- the hub: welcome, epochs, history ---------------------------------------------------------

#[tokio::test]
async fn welcome_says_where_the_feed_starts_and_why() {
    let server = start(finite_feed(20)).await;
    let epoch = server.epoch();
    let url = server.url();

    let (mut fresh, welcome) = connect_welcomed(&url).await;
    assert_eq!(
        (welcome.reason.as_str(), welcome.from, welcome.head),
        ("fresh", 1, 20)
    );
    assert_eq!(welcome.epoch, epoch);
    assert_eq!(read_seqs(&mut fresh, 1).await, vec![1]);

    let (mut resumed, welcome) = connect_welcomed(&format!("{url}?cursor=10&epoch={epoch}")).await;
    assert_eq!((welcome.reason.as_str(), welcome.from), ("resumed", 11));
    assert_eq!(
        read_seqs(&mut resumed, 10).await,
        (11..=20).collect::<Vec<_>>()
    );
    assert_quiet(&mut resumed).await;

    let (mut other, welcome) = connect_welcomed(&format!("{url}?cursor=10&epoch=elsewhere")).await;
    assert_eq!(
        (welcome.reason.as_str(), welcome.from),
        ("epoch_changed", 1)
    );
    assert_eq!(read_seqs(&mut other, 1).await, vec![1]);

    let (_, welcome) = connect_welcomed(&format!("{url}?cursor=21")).await;
    assert_eq!(welcome.reason, "cursor_ahead");

    assert_eq!(
        expect_refusal(&format!("{url}?cursor=abc")).await,
        (400, None)
    );
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn without_the_welcome_the_feed_comes_first_and_impossible_resumes_get_4001() {
    let server = start(FeedConfig {
        welcome: false,
        ..finite_feed(5)
    })
    .await;
    let mut client = connect_raw(&server.url()).await;
    assert_eq!(read_seqs(&mut client, 5).await, vec![1, 2, 3, 4, 5]);
    let mut resumed = connect_raw(&format!("{}?cursor=3", server.url())).await;
    assert_eq!(read_seqs(&mut resumed, 2).await, vec![4, 5]);
    let mut other = connect_raw(&format!("{}?cursor=3&epoch=elsewhere", server.url())).await;
    assert_eq!(
        read_until_end(&mut other).await,
        (vec![], End::Closed(Some(4001)))
    );
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn a_cursor_older_than_the_history_is_told_so() {
    let server = start(FeedConfig {
        history: 10,
        ..finite_feed(50)
    })
    .await;
    let (mut client, welcome) = connect_welcomed(&format!("{}?cursor=5", server.url())).await;
    assert_eq!(
        (welcome.reason.as_str(), welcome.from, welcome.head),
        ("cursor_too_old", 41, 50)
    );
    assert_eq!(
        read_seqs(&mut client, 10).await,
        (41..=50).collect::<Vec<_>>()
    );
    let (_, welcome) = connect_welcomed(&format!("{}?cursor=40", server.url())).await;
    assert_eq!((welcome.reason.as_str(), welcome.from), ("resumed", 41));
    assert_eq!(server.hub().stats().buffered_messages, 10);
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_forgetting_history_starts_a_new_epoch_from_one() {
    let server = start(finite_feed(30)).await;
    let old_epoch = server.epoch();
    let url = server.url();
    let mut client = connect(&url).await;
    assert_eq!(read_seqs(&mut client, 3).await, vec![1, 2, 3]);

    server
        .restart_forgetting_history(Duration::from_millis(200))
        .await
        .expect("restart");
    assert_eq!(read_until_end(&mut client).await.1, End::Abrupt);
    wait_for_stats(&server, "listening again", |s| s.listening).await;
    let new_epoch = server.epoch();
    assert_ne!(new_epoch, old_epoch);
    assert_eq!(
        server.stats().head,
        30,
        "rate 0: the new epoch is filled at once"
    );

    let (mut client, welcome) =
        connect_welcomed(&format!("{url}?cursor=3&epoch={old_epoch}")).await;
    assert_eq!(
        (
            welcome.reason.as_str(),
            welcome.from,
            welcome.epoch.as_str()
        ),
        ("epoch_changed", 1, new_epoch.as_str())
    );
    assert_eq!(read_seqs(&mut client, 2).await, vec![1, 2]);

    // The same over HTTP; a plain restart keeps the epoch.
    let answer = http_get(server.addr(), "/control/restart?down_ms=100").await;
    assert_eq!(answer.json()["forget"], false);
    assert_eq!(read_until_end(&mut client).await.1, End::Abrupt);
    wait_for_stats(&server, "listening again", |s| s.listening).await;
    assert_eq!(server.epoch(), new_epoch);
    let answer = http_get(server.addr(), "/control/restart?down_ms=100&forget=1").await;
    assert_eq!(answer.json()["forget"], true);
    wait_for_stats(&server, "listening again", |s| s.listening).await;
    let stats = http_get(server.addr(), "/control/stats").await.json();
    assert_ne!(stats["epoch"], new_epoch.as_str());
    assert_eq!(stats["epoch"], server.epoch().as_str());
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_history_file_keeps_the_epoch_across_processes_so_clients_resume_exactly_once() {
    let scratch = Scratch::new("history");
    let file = scratch.0.join("feed.history");
    let config = |total| FeedConfig {
        history_file: Some(file.clone()),
        ..finite_feed(total)
    };

    let first = start(config(30)).await;
    let (mut client, welcome) = connect_welcomed(&first.url()).await;
    let epoch = welcome.epoch;
    assert_eq!(
        read_seqs(&mut client, 10).await,
        (1..=10).collect::<Vec<_>>()
    );
    first.shutdown().await.expect("clean shutdown");

    // A new server on the same file: the same epoch and head, and the feed goes on to 60.
    let second = start(config(60)).await;
    assert_eq!(second.epoch(), epoch);
    let (mut client, welcome) =
        connect_welcomed(&format!("{}?cursor=10&epoch={epoch}", second.url())).await;
    assert_eq!(
        (welcome.reason.as_str(), welcome.from, welcome.head),
        ("resumed", 11, 60)
    );
    assert_eq!(
        read_seqs(&mut client, 50).await,
        (11..=60).collect::<Vec<_>>()
    );
    assert_quiet(&mut client).await;

    // Forgetting the history resets the file too: a third server keeps the new epoch.
    second
        .restart_forgetting_history(Duration::from_millis(50))
        .await
        .expect("restart");
    let forgotten = second.epoch();
    assert_ne!(forgotten, epoch);
    second.shutdown().await.expect("clean shutdown");
    let third = start(config(60)).await;
    assert_eq!(third.epoch(), forgotten);
    let (_, welcome) = connect_welcomed(&format!("{}?cursor=10&epoch={epoch}", third.url())).await;
    assert_eq!(welcome.reason, "epoch_changed");
    third.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_keep_listeners_and_drop_clients_that_never_answer() {
    let server = start(FeedConfig {
        ping_interval: Duration::from_millis(100),
        ping_timeout: Duration::from_millis(100),
        ..finite_feed(3)
    })
    .await;
    let mut listener = connect(&server.url()).await;
    assert_eq!(read_seqs(&mut listener, 3).await, vec![1, 2, 3]);
    // Reading answers the pings (tungstenite queues the pong and writes it on the next read).
    let mut pings = 0;
    let until = tokio::time::Instant::now() + Duration::from_millis(600);
    while let Ok(frame) = tokio::time::timeout_at(until, listener.next()).await {
        match frame {
            Some(Ok(Message::Ping(_))) => pings += 1,
            other => panic!("expected pings only, got {other:?}"),
        }
    }
    assert!(pings >= 3, "{pings} pings in 600 ms");
    assert_eq!(server.stats().live_connections, 1, "a listener stays");

    // A client that never reads never answers: dropped after interval + timeout.
    let _deaf = connect(&server.url()).await;
    wait_for_stats(&server, "two live", |s| s.live_connections == 2).await;
    let stats = wait_for_stats(&server, "the deaf client dropped", |s| {
        s.live_connections == 1
    })
    .await;
    assert_eq!(stats.connections_accepted, 2);
    server.shutdown().await.expect("clean shutdown");
}

// ---- faults ----------------------------------------------------------------------------------

// On two worker threads, like a real service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_every_cuts_connections_without_a_close_frame() {
    let server = start(FeedConfig {
        faults: Faults {
            drop_every: Some(3),
            ..Faults::default()
        },
        ..finite_feed(100)
    })
    .await;
    let mut first = connect(&server.url()).await;
    assert_eq!(
        read_until_end(&mut first).await,
        (vec![1, 2, 3], End::Abrupt)
    );
    let mut second = connect(&format!("{}?cursor=3", server.url())).await;
    assert_eq!(
        read_until_end(&mut second).await,
        (vec![4, 5, 6], End::Abrupt)
    );
    let stats = wait_for_stats(&server, "no live connection", |s| s.live_connections == 0).await;
    assert_eq!(stats.connections_accepted, 2);
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn refusal_answers_status_and_retry_after_then_lets_through() {
    let server = start(FeedConfig {
        faults: Faults {
            refuse: Some(Refusal {
                status: 503,
                remaining: Some(2),
                retry_after_secs: Some(7),
            }),
            ..Faults::default()
        },
        ..finite_feed(5)
    })
    .await;
    for _ in 0..2 {
        assert_eq!(expect_refusal(&server.url()).await, (503, Some("7".into())));
    }
    assert_eq!(server.faults().refuse, None, "the counted refusal ran out");
    let mut client = connect(&server.url()).await;
    assert_eq!(read_seqs(&mut client, 1).await, vec![1]);
    let stats = server.stats();
    assert_eq!(
        (stats.handshakes_refused, stats.connections_accepted),
        (2, 1)
    );

    server
        .set_faults(Faults {
            refuse: Some(Refusal {
                status: 429,
                remaining: None,
                retry_after_secs: None,
            }),
            ..Faults::default()
        })
        .expect("valid faults");
    for _ in 0..3 {
        assert_eq!(expect_refusal(&server.url()).await, (429, None));
    }
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn close_after_and_close_all_send_the_close_code() {
    let server = start(FeedConfig {
        faults: Faults {
            close_after: Some(CloseAfter {
                code: 4000,
                after: 2,
            }),
            ..Faults::default()
        },
        ..finite_feed(5)
    })
    .await;
    let mut client = connect(&server.url()).await;
    assert_eq!(
        read_until_end(&mut client).await,
        (vec![1, 2], End::Closed(Some(4000)))
    );

    server.set_faults(Faults::default()).expect("valid faults");
    let mut client = connect(&format!("{}?cursor=2", server.url())).await;
    assert_eq!(read_seqs(&mut client, 3).await, vec![3, 4, 5]);
    assert!(server.close_all(1006).is_err(), "1006 may never be sent");
    assert_eq!(server.close_all(1012).expect("sendable code"), 1);
    assert_eq!(
        read_until_end(&mut client).await,
        (vec![], End::Closed(Some(1012)))
    );
    wait_for_stats(&server, "no live connection", |s| s.live_connections == 0).await;
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn silent_connection_neither_sends_nor_answers_pings_but_stays_open() {
    let server = start(FeedConfig {
        faults: Faults {
            silent_after: Some(2),
            ..Faults::default()
        },
        ..finite_feed(100)
    })
    .await;
    let mut client = connect(&server.url()).await;
    assert_eq!(read_seqs(&mut client, 2).await, vec![1, 2]);
    client
        .send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .expect("ping sent");
    assert_quiet(&mut client).await;
    assert_eq!(server.stats().live_connections, 1, "the socket stays open");
    drop(client);
    wait_for_stats(&server, "the abandoned socket to be noticed", |s| {
        s.live_connections == 0
    })
    .await;

    server.set_faults(Faults::default()).expect("valid faults");
    let mut client = connect(&format!("{}?cursor=97", server.url())).await;
    assert_eq!(read_seqs(&mut client, 3).await, vec![98, 99, 100]);
    assert_eq!(server.silence_all(), 1);
    client
        .send(Message::text(r#"{"type":"ping"}"#))
        .await
        .expect("app ping sent");
    assert_quiet(&mut client).await;
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn drop_all_ends_every_connection_abruptly() {
    let server = start(FeedConfig {
        rate: 20,
        ..FeedConfig::default()
    })
    .await;
    let mut clients = Vec::new();
    for _ in 0..2 {
        let mut client = connect(&server.url()).await;
        next_feed(&mut client).await;
        clients.push(client);
    }
    assert_eq!(server.drop_all(), 2);
    for client in &mut clients {
        assert_eq!(read_until_end(client).await.1, End::Abrupt);
    }
    server.shutdown().await.expect("clean shutdown");
}

// On two worker threads, like a real service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_listens_again_on_the_same_port_and_keeps_the_head() {
    let server = start(FeedConfig {
        rate: 100,
        ..FeedConfig::default()
    })
    .await;
    let url = server.url();
    let mut client = connect(&url).await;
    let last = *read_seqs(&mut client, 5)
        .await
        .last()
        .expect("five messages");
    let head_before = server.stats().head;

    server
        .restart(Duration::from_secs(1))
        .await
        .expect("restart");
    let stats = server.stats();
    assert!(!stats.listening);
    assert_eq!(stats.live_connections, 0, "restart closes every connection");
    assert_eq!(read_until_end(&mut client).await.1, End::Abrupt);
    assert!(
        timeout(STEP, connect_async(url.as_str()))
            .await
            .expect("in time")
            .is_err(),
        "nobody listens while down"
    );

    wait_for_stats(&server, "listening again", |s| s.listening).await;
    let mut resumed = connect(&format!("{url}?cursor={last}")).await;
    assert_eq!(next_feed(&mut resumed).await.seq, last + 1);
    assert_eq!(server.url(), url, "same port");
    assert!(
        server.stats().head >= head_before,
        "the head survives a restart"
    );
    server.shutdown().await.expect("clean shutdown");
}

// ---- counting, messages from clients, shutdown -----------------------------------------------

// On two worker threads, like a real service.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_and_max_live_counts_are_exact() {
    let server = start(FeedConfig {
        rate: 10,
        ..FeedConfig::default()
    })
    .await;
    let mut clients = Vec::new();
    for expected_live in 1..=3 {
        clients.push(connect(&server.url()).await);
        // Counted before the 101 is sent, so no waiting is needed here.
        assert_eq!(server.stats().live_connections, expected_live);
    }
    let mut leaving = clients.pop().expect("three clients");
    leaving.close(None).await.expect("close sent");
    let stats = wait_for_stats(&server, "two live", |s| s.live_connections == 2).await;
    assert_eq!(stats.max_live_connections, 3);
    server.drop_all();
    let stats = wait_for_stats(&server, "none live", |s| s.live_connections == 0).await;
    assert_eq!(
        (stats.max_live_connections, stats.connections_accepted),
        (3, 3)
    );
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn app_ping_gets_pong_and_client_messages_are_logged() {
    let server = start(finite_feed(2)).await;
    let mut client = connect(&server.url()).await;
    assert_eq!(read_seqs(&mut client, 2).await, vec![1, 2]);

    client
        .send(Message::text(r#"{"type":"ping"}"#))
        .await
        .expect("app ping sent");
    match timeout(STEP, client.next()).await.expect("pong in time") {
        Some(Ok(Message::Text(text))) => assert_eq!(text.as_str(), r#"{"type":"pong"}"#),
        other => panic!("expected the app pong, got {other:?}"),
    }
    client
        .send(Message::Binary(vec![1, 2, 3].into()))
        .await
        .expect("binary sent");
    client
        .send(Message::Ping(b"hb".to_vec().into()))
        .await
        .expect("ping sent");
    match timeout(STEP, client.next()).await.expect("pong in time") {
        Some(Ok(Message::Pong(payload))) => assert_eq!(&payload[..], b"hb"),
        other => panic!("expected a protocol pong, got {other:?}"),
    }

    wait_for_stats(&server, "two client messages", |s| {
        s.client_messages_received == 2
    })
    .await;
    let payloads: Vec<(u64, ClientPayload)> = server
        .received()
        .into_iter()
        .map(
            |ClientMessage {
                 connection,
                 payload,
                 ..
             }| (connection, payload),
        )
        .collect();
    assert_eq!(
        payloads,
        vec![
            (1, ClientPayload::Text(r#"{"type":"ping"}"#.into())),
            (1, ClientPayload::Binary(vec![1, 2, 3])),
        ]
    );
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn shutdown_closes_every_connection_and_the_listener() {
    let server = start(finite_feed(1)).await;
    let url = server.url();
    let mut client = connect(&url).await;
    assert_eq!(read_seqs(&mut client, 1).await, vec![1]);
    server.shutdown().await.expect("clean shutdown");
    assert_eq!(read_until_end(&mut client).await.1, End::Abrupt);
    assert!(
        timeout(STEP, connect_async(url.as_str()))
            .await
            .expect("in time")
            .is_err(),
        "nobody listens after shutdown"
    );
}

// ---- HTTP ------------------------------------------------------------------------------------

#[tokio::test]
async fn control_endpoints_answer_json_and_drive_faults() {
    let server = start(finite_feed(100)).await;
    let addr = server.addr();

    let stats = http_get(addr, "/control/stats").await;
    assert_eq!(stats.status, 200);
    assert_eq!(stats.header("Access-Control-Allow-Origin"), Some("*"));
    assert_eq!(stats.header("Content-Type"), Some("application/json"));
    for key in [
        "connections_accepted",
        "live_connections",
        "max_live_connections",
        "handshakes_refused",
        "messages_sent",
        "client_messages_received",
        "head",
    ] {
        assert!(
            stats.json()[key].is_u64(),
            "stats has {key}: {}",
            stats.body
        );
    }

    let refuse = http_get(addr, "/control/refuse?status=503&count=1&retry_after=3").await;
    assert_eq!(refuse.status, 200);
    assert_eq!(expect_refusal(&server.url()).await, (503, Some("3".into())));

    let faults = http_get(addr, "/control/faults?drop_every=2").await;
    assert_eq!(faults.json()["faults"]["drop_every"], 2);
    let mut client = connect(&server.url()).await;
    assert_eq!(read_until_end(&mut client).await, (vec![1, 2], End::Abrupt));
    let cleared = http_get(addr, "/control/clear").await;
    assert!(cleared.json()["faults"]["drop_every"].is_null());

    let mut client = connect(&format!("{}?cursor=99", server.url())).await;
    assert_eq!(read_seqs(&mut client, 1).await, vec![100]);
    let close = http_get(addr, "/control/close?code=1012").await;
    assert_eq!(close.json()["connections"], 1);
    assert_eq!(read_until_end(&mut client).await.1, End::Closed(Some(1012)));

    let mut client = connect(&format!("{}?cursor=99", server.url())).await;
    assert_eq!(read_seqs(&mut client, 1).await, vec![100]);
    assert_eq!(http_get(addr, "/control/drop").await.status, 200);
    assert_eq!(read_until_end(&mut client).await.1, End::Abrupt);
    assert_eq!(http_get(addr, "/control/silence").await.status, 200);

    assert_eq!(http_get(addr, "/control/close?code=1006").await.status, 400);
    assert_eq!(
        http_get(addr, "/control/refuse?status=200").await.status,
        400
    );
    assert_eq!(http_get(addr, "/control/nope").await.status, 404);
    assert_eq!(http_get(addr, "/").await.status, 404);
    let plain_feed = http_get(addr, "/feed").await;
    assert_eq!(plain_feed.status, 426);
    assert_eq!(
        plain_feed.header("Upgrade"),
        Some("websocket"),
        "426 names the protocol"
    );
    // The control endpoints act on GET only: neither POST nor HEAD drops anything.
    let mut client = connect(&format!("{}?cursor=99", server.url())).await;
    assert_eq!(read_seqs(&mut client, 1).await, vec![100]);
    for request in [
        &b"POST /control/drop HTTP/1.1\r\n\r\n"[..],
        b"HEAD /control/drop HTTP/1.1\r\n\r\n",
        b"HEAD /feed HTTP/1.1\r\n\r\n",
    ] {
        let answer = parse_answer(&raw_exchange(addr, request).await);
        assert_eq!(answer.status, 405, "{}", String::from_utf8_lossy(request));
    }
    assert_quiet(&mut client).await;

    let restart = http_get(addr, "/control/restart?down_ms=200").await;
    assert_eq!(restart.json()["down_ms"], 200);
    assert_eq!(read_until_end(&mut client).await.1, End::Abrupt);
    wait_for_stats(&server, "listening again", |s| s.listening).await;
    assert_eq!(http_get(addr, "/control/stats").await.status, 200);
    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn bad_request_heads_get_400_or_431_and_slow_ones_are_cut_off() {
    let server = start(FeedConfig {
        request_head_timeout: Duration::from_millis(300),
        ..finite_feed(1)
    })
    .await;
    let addr = server.addr();

    let garbage = raw_exchange(addr, b"GARBAGE\r\n\r\n").await;
    assert!(garbage.starts_with("HTTP/1.1 400 "), "{garbage}");

    let oversized = format!(
        "GET /feed HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "a".repeat(9 * 1024)
    );
    let oversized = raw_exchange(addr, oversized.as_bytes()).await;
    assert!(oversized.starts_with("HTTP/1.1 431 "), "{oversized}");

    // A head not finished within request_head_timeout (300 ms): the connection is closed.
    let started = std::time::Instant::now();
    let unfinished = raw_exchange(addr, b"GET /feed HTTP/1.1\r\nHost: x\r\n").await;
    let waited = started.elapsed();
    assert_eq!(unfinished, "", "no answer to half a request");
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(3),
        "cut off after {waited:?}, expected about 300 ms"
    );

    assert_eq!(server.stats().connections_accepted, 0);
    server.shutdown().await.expect("clean shutdown");
}

// ---- static files ----------------------------------------------------------------------------

/// A scratch directory tree for one test, removed when dropped.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "resilient-ws-feed-static-{}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Self(dir)
    }

    fn write(&self, relative: &str, contents: &[u8]) -> std::path::PathBuf {
        let path = self.0.join(relative);
        std::fs::create_dir_all(path.parent().expect("has a parent")).expect("parent dir");
        std::fs::write(&path, contents).expect("file written");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const WASM_MAGIC: &[u8] = b"\0asm\x01\0\0\0";

/// `site/` at `/` and `pkg/` at `/pkg`, with `secret.txt` next to them (outside both).
async fn static_server(scratch: &Scratch) -> FeedServerHandle {
    scratch.write("site/index.html", b"<!doctype html><title>dash</title>");
    scratch.write("site/dashboard.js", b"export const x = 1;\n");
    scratch.write("site/dashboard.css", b"body { margin: 0 }\n");
    scratch.write("site/docs/index.html", b"<p>docs</p>");
    scratch.write("pkg/resilient_ws_wasm_bg.wasm", WASM_MAGIC);
    scratch.write(
        "pkg/resilient-ws.js",
        b"export default function init() {}\n",
    );
    scratch.write("pkg/resilient-ws.d.ts", b"export {};\n");
    scratch.write("pkg/package.json", b"{}");
    scratch.write("pkg/snippets/a.js", b"export {};\n");
    scratch.write("secret.txt", b"top secret");
    start(FeedConfig {
        static_dirs: vec![
            ("/".into(), scratch.0.join("site")),
            ("/pkg".into(), scratch.0.join("pkg")),
        ],
        ..finite_feed(3)
    })
    .await
}

#[tokio::test]
async fn static_files_are_served_with_their_content_type() {
    let scratch = Scratch::new("types");
    let server = static_server(&scratch).await;
    let addr = server.addr();

    for (target, content_type, body) in [
        (
            "/",
            "text/html; charset=utf-8",
            "<!doctype html><title>dash</title>",
        ),
        (
            "/index.html",
            "text/html; charset=utf-8",
            "<!doctype html><title>dash</title>",
        ),
        (
            "/dashboard.js?v=2",
            "text/javascript; charset=utf-8",
            "export const x = 1;\n",
        ),
        (
            "/dashboard.css",
            "text/css; charset=utf-8",
            "body { margin: 0 }\n",
        ),
        ("/docs/", "text/html; charset=utf-8", "<p>docs</p>"),
        (
            "/pkg/resilient-ws.js",
            "text/javascript; charset=utf-8",
            "export default function init() {}\n",
        ),
        (
            "/pkg/resilient_ws_wasm_bg.wasm",
            "application/wasm",
            "\0asm\u{1}\0\0\0",
        ),
        ("/pkg/package.json", "application/json", "{}"),
    ] {
        let answer = http_get(addr, target).await;
        assert_eq!(answer.status, 200, "{target}");
        assert_eq!(
            answer.header("Content-Type"),
            Some(content_type),
            "{target}"
        );
        assert_eq!(answer.header("Cache-Control"), Some("no-store"), "{target}");
        assert_eq!(
            answer.header("Content-Length"),
            Some(body.len().to_string().as_str()),
            "{target}"
        );
        assert_eq!(answer.body, body, "{target}");
    }

    // Any other file is served too (its type is mime_guess's, not checked here).
    let types = http_get(addr, "/pkg/resilient-ws.d.ts").await;
    assert_eq!((types.status, types.body.as_str()), (200, "export {};\n"));

    // A directory without its trailing slash is redirected, so relative links resolve; under a
    // prefix, the redirect keeps the prefix.
    for (target, location) in [("/docs", "/docs/"), ("/pkg/snippets", "/pkg/snippets/")] {
        let answer = http_get(addr, target).await;
        assert_eq!(
            (answer.status, answer.header("Location")),
            (307, Some(location)),
            "{target}"
        );
    }

    // HEAD gives the headers of GET without the body.
    let head = parse_answer(
        &raw_exchange(
            addr,
            b"HEAD /pkg/resilient_ws_wasm_bg.wasm HTTP/1.1\r\n\r\n",
        )
        .await,
    );
    assert_eq!(head.status, 200);
    assert_eq!(head.header("Content-Type"), Some("application/wasm"));
    assert_eq!(head.header("Content-Length"), Some("8"));
    assert_eq!(head.body, "");

    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn static_files_refuse_traversal_and_answer_404_for_missing_files() {
    let scratch = Scratch::new("traversal");
    let server = static_server(&scratch).await;
    let addr = server.addr();

    for target in [
        "/../secret.txt",
        "/pkg/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/pkg/%2E%2E/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/..%5csecret.txt",
        "/.hidden",
        "/missing.html",
        "/pkg/missing.wasm",
        "/nope/",
        "/secret.txt",
    ] {
        let answer = http_get(addr, target).await;
        assert_eq!(answer.status, 404, "{target}");
        assert_eq!(answer.json()["ok"], false, "{target}");
        assert_eq!(
            answer.header("Access-Control-Allow-Origin"),
            Some("*"),
            "{target}"
        );
        assert!(!answer.body.contains("top secret"), "{target}");
    }
    let post = raw_exchange(addr, b"POST /index.html HTTP/1.1\r\n\r\n").await;
    assert_eq!(parse_answer(&post).status, 405);

    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn feed_and_control_keep_priority_over_a_static_root() {
    let scratch = Scratch::new("priority");
    scratch.write("site/feed", b"not the feed");
    scratch.write("site/control/stats", b"not the stats");
    let server = static_server(&scratch).await;

    let mut client = connect(&server.url()).await;
    assert_eq!(read_seqs(&mut client, 3).await, vec![1, 2, 3]);
    let stats = http_get(server.addr(), "/control/stats").await;
    assert_eq!(stats.json()["connections_accepted"], 1);
    assert_eq!(http_get(server.addr(), "/feed").await.status, 426);

    server.shutdown().await.expect("clean shutdown");
}

#[tokio::test]
async fn missing_static_dir_stops_the_start() {
    let scratch = Scratch::new("missing");
    let error = FeedServer::start(FeedConfig {
        static_dirs: vec![("/".into(), scratch.0.join("does-not-exist"))],
        ..FeedConfig::default()
    })
    .await
    .expect_err("a missing directory is refused");
    assert!(error.to_string().contains("does-not-exist"), "{error}");
}
