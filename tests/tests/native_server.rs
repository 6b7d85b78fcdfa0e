//! The native client against the scriptable server: which failures end a session and which
//! are retried (HTTP statuses, close codes, malformed frames, a flapping server), when the
//! retries go, what each handshake carries, and a close that races a handshake.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use resilient_ws::{
    AttemptInfo, Client, ClientBuilder, ConnectRequest, Cursor, Disconnect, Event, Failure,
    Payload, Reason, RetryAction, State,
};
use resilient_ws_tests::script_server::raw_frame;
use resilient_ws_tests::wait::eventually;
use resilient_ws_tests::{Behaviour, Fault, FaultProxy, Recorder, Script, ScriptServer, Step};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::time::{Instant, sleep, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{
    Callback, ErrorResponse, Request, Response,
};

/// Upper bound of every wait for something that should happen.
const LIMIT: Duration = Duration::from_secs(10);
/// The backoff window most tests use: short, so retries (or their absence) show quickly.
const INITIAL: Duration = Duration::from_millis(100);
/// A short stability window, for the connections that must count as healthy.
const STABILITY: Duration = Duration::from_millis(50);
/// Long enough for several backoff windows: a retry that was going to happen has happened.
const SETTLE: Duration = Duration::from_millis(700);

// ---- helpers ----

async fn start(script: Script) -> ScriptServer {
    ScriptServer::start(script)
        .await
        .expect("script server starts")
}

/// A client with a short backoff, a fixed jitter seed and no heartbeat (nothing here waits
/// long enough for one).
fn builder(url: String) -> ClientBuilder {
    Client::builder(url)
        .backoff(INITIAL, Duration::from_secs(2))
        .seed(0x7E57)
        .no_heartbeat()
}

fn accept(then: Vec<Step>) -> Behaviour {
    Behaviour::Accept { then }
}

fn close_step(code: u16, reason: &str) -> Step {
    Step::Close {
        code,
        reason: reason.to_owned(),
    }
}

/// Every `Reconnecting` state: the delay chosen and the disconnect that caused it.
fn retries(recorder: &Recorder) -> Vec<(Duration, Disconnect)> {
    recorder
        .retry_waits()
        .into_iter()
        .filter_map(|(_, delay, reason)| match reason {
            Reason::Disconnected(disconnect) => Some((delay, disconnect)),
            _ => None,
        })
        .collect()
}

/// When each `Connecting` state was recorded, by attempt number.
fn connecting_times(recorder: &Recorder) -> Vec<(u32, Instant)> {
    recorder
        .states()
        .into_iter()
        .filter_map(|(at, state, _)| match state {
            State::Connecting { attempt } => Some((attempt, at)),
            _ => None,
        })
        .collect()
}

/// Waits for the session to fail and returns why, panicking on any other terminal state.
async fn wait_failed(recorder: &Recorder) -> Failure {
    match recorder.wait_terminal(LIMIT).await {
        State::Failed(failure) => failure,
        other => panic!("expected a failed session, got {other:?}"),
    }
}

/// A session ended by `script` without a retry: returns the failure after checking that the
/// server saw exactly one connection, even several backoff windows later.
async fn fails_without_retry(
    script: Script,
    configure: fn(ClientBuilder) -> ClientBuilder,
) -> Failure {
    let server = start(script).await;
    let (client, events) = configure(builder(server.url("/feed"))).connect().unwrap();
    let recorder = Recorder::spawn(events);
    let failure = wait_failed(&recorder).await;
    sleep(SETTLE).await;
    assert_eq!(server.connections(), 1, "no retry after {failure}");
    assert_eq!(client.stats().attempts, 1);
    assert!(
        retries(&recorder).is_empty(),
        "never reconnecting: {:?}",
        recorder.states()
    );
    assert!(matches!(client.state(), State::Failed(_)));
    assert!(
        client.send_text("late").is_err(),
        "a failed session takes no sends"
    );
    drop(client);
    server.shutdown().await;
    failure
}

// ---- HTTP statuses at the handshake ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_401_403_404_fail_without_retry() {
    async fn rejected(status: u16) {
        let script = Script::new(Behaviour::Reject {
            status,
            retry_after: None,
        });
        let failure = fails_without_retry(script, |b| b).await;
        assert_eq!(
            failure,
            Failure::Fatal(Disconnect::Rejected {
                status,
                retry_after: None
            })
        );
    }
    tokio::join!(rejected(401), rejected(403), rejected(404));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fatal_close_codes_after_open_fail_without_retry() {
    async fn closed(code: u16) {
        let script = Script::new(accept(vec![close_step(code, "go away")]));
        let failure = fails_without_retry(script, |b| b).await;
        assert_eq!(
            failure,
            Failure::Fatal(Disconnect::Closed {
                code,
                reason: "go away".into()
            })
        );
    }
    tokio::join!(closed(4401), closed(1008));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured_for_429_and_503() {
    async fn retried_after(status: u16) {
        let script = Script::new(Behaviour::Reject {
            status,
            retry_after: Some(1),
        })
        .then(accept(vec![Step::SendFeed { from: 1, count: 3 }]));
        let server = start(script).await;
        let (client, events) = builder(server.url("/feed"))
            .cursor_field("seq")
            .connect()
            .unwrap();
        let recorder = Recorder::spawn(events);
        recorder.wait_delivered(3, LIMIT).await;
        recorder.assert_exactly_once(3);
        let retries = retries(&recorder);
        assert_eq!(retries.len(), 1, "{status}: one retry: {retries:?}");
        let (delay, disconnect) = &retries[0];
        assert_eq!(
            disconnect,
            &Disconnect::Rejected {
                status,
                retry_after: Some(Duration::from_secs(1))
            }
        );
        // The Retry-After, plus a jitter drawn from the backoff window (2 x INITIAL after
        // one failure), so a crowd told the same Retry-After does not come back at once.
        assert!(
            *delay >= Duration::from_secs(1) && *delay <= Duration::from_secs(1) + INITIAL * 2,
            "{status}: {delay:?}"
        );
        let times = connecting_times(&recorder);
        assert_eq!(
            times
                .iter()
                .map(|(attempt, _)| *attempt)
                .collect::<Vec<_>>(),
            vec![1, 2]
        );
        let gap = times[1].1 - times[0].1;
        assert!(
            gap >= Duration::from_millis(950),
            "{status}: second handshake {gap:?} after the first, before the Retry-After"
        );
        assert!(gap < Duration::from_secs(3), "{status}: {gap:?}");
        assert_eq!(server.connections(), 2);
        assert_eq!(server.accepted(), 1);
        assert_eq!(client.state(), State::Open);
        client.close(1000, "").await.unwrap();
        server.shutdown().await;
    }
    tokio::join!(retried_after(429), retried_after(503));
}

#[tokio::test]
async fn status_503_without_retry_after_takes_the_normal_backoff() {
    let script = Script::new(Behaviour::Reject {
        status: 503,
        retry_after: None,
    })
    .then(accept(vec![Step::SendFeed { from: 1, count: 3 }]));
    let server = start(script).await;
    let (client, events) = builder(server.url("/feed"))
        .cursor_field("seq")
        .connect()
        .unwrap();
    let recorder = Recorder::spawn(events);
    recorder.wait_delivered(3, LIMIT).await;
    recorder.assert_exactly_once(3);
    let retries = retries(&recorder);
    assert_eq!(retries.len(), 1, "{retries:?}");
    let (delay, disconnect) = &retries[0];
    assert_eq!(
        *disconnect,
        Disconnect::Rejected {
            status: 503,
            retry_after: None
        }
    );
    // One failure so far: the window is initial * 2.
    assert!(*delay <= 2 * INITIAL, "delay {delay:?}");
    let times = connecting_times(&recorder);
    let gap = times[1].1 - times[0].1;
    assert!(gap < Duration::from_millis(900), "fast retry, took {gap:?}");
    assert_eq!(server.connections(), 2);
    client.close(1000, "").await.unwrap();
    server.shutdown().await;
}

// ---- close codes that retry ----

/// Runs a server whose every connection delivers one message, stays open past the
/// stability window (so the connection counts as healthy) and then closes with `code`,
/// and returns the first `n` retry delays.
async fn delays_after_healthy_close(code: u16, n: usize) -> Vec<Duration> {
    let server = start(Script::new(accept(vec![
        Step::SendText("hello".into()),
        Step::Wait(STABILITY * 2),
        close_step(code, ""),
    ])))
    .await;
    let (client, events) = builder(server.url("/feed"))
        .stability_window(STABILITY)
        .max_failures(None)
        .connect()
        .unwrap();
    let recorder = Recorder::spawn(events);
    recorder
        .wait_for(&format!("{n} retries after close {code}"), LIMIT, |r| {
            retries(r).len() >= n && r.opens() > n
        })
        .await;
    let retries = retries(&recorder);
    for (_, disconnect) in &retries {
        assert_eq!(
            *disconnect,
            Disconnect::Closed {
                code,
                reason: String::new()
            }
        );
    }
    // Each connection was healthy: the failure count never grows, every attempt is the first.
    for (_, state, _) in recorder.states() {
        if let State::Reconnecting { attempt, .. } = state {
            assert_eq!(
                attempt, 1,
                "{code}: healthy connections reset the failure count"
            );
        }
    }
    // Each of the n closed connections delivered its message before its close (the last
    // connection's may still be on its way: it opened, nothing more is known).
    assert!(
        recorder.texts().len() >= n,
        "{code}: {} messages from {n} healthy connections",
        recorder.texts().len()
    );
    assert_eq!(server.max_live_connections(), 1);
    client.close(1000, "").await.unwrap();
    server.shutdown().await;
    retries
        .into_iter()
        .take(n)
        .map(|(delay, _)| delay)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_restart_1012_retries_within_the_initial_window() {
    let delays = delays_after_healthy_close(1012, 6).await;
    assert!(
        delays.iter().all(|delay| *delay <= INITIAL),
        "quick first retry after a healthy connection: {delays:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_again_later_1013_retries_from_the_doubled_window() {
    let delays = delays_after_healthy_close(1013, 8).await;
    assert!(
        delays.iter().all(|delay| *delay <= 2 * INITIAL),
        "within the doubled window: {delays:?}"
    );
    // With the fixed seed the draws are fixed; from [0, 2 * initial] some exceed initial,
    // which the quick first retry ([0, initial]) never would.
    assert!(
        delays.iter().any(|delay| *delay > INITIAL),
        "no quick first retry after 1013: {delays:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn normal_away_and_internal_error_closes_reconnect() {
    let script = Script::new(accept(vec![
        Step::SendText("1".into()),
        close_step(1000, "bye"),
    ]))
    .then(accept(vec![
        Step::SendText("2".into()),
        close_step(1001, ""),
    ]))
    .then(accept(vec![
        Step::SendText("3".into()),
        close_step(1011, "oops"),
    ]))
    .then(accept(vec![Step::SendText("4".into())]));
    let server = start(script).await;
    let (client, events) = builder(server.url("/feed")).connect().unwrap();
    let recorder = Recorder::spawn(events);
    recorder.wait_delivered(4, LIMIT).await;
    assert_eq!(recorder.texts(), ["1", "2", "3", "4"]);
    let codes: Vec<(u16, String)> = retries(&recorder)
        .into_iter()
        .map(|(_, disconnect)| match disconnect {
            Disconnect::Closed { code, reason } => (code, reason),
            other => panic!("unexpected disconnect {other:?}"),
        })
        .collect();
    assert_eq!(
        codes,
        [
            (1000, "bye".to_owned()),
            (1001, String::new()),
            (1011, "oops".to_owned())
        ]
    );
    assert_eq!(recorder.opens(), 4);
    assert_eq!(server.connections(), 4);
    assert_eq!(server.max_live_connections(), 1);
    assert_eq!(client.state(), State::Open);
    client.close(1000, "").await.unwrap();
    server.shutdown().await;
}

// ---- a flapping server ----

#[tokio::test]
async fn flapping_server_reaches_the_failure_cap() {
    let server = start(Script::new(accept(vec![Step::DropTcp]))).await;
    let (client, events) = builder(server.url("/feed"))
        .backoff(Duration::from_millis(50), Duration::from_millis(200))
        .max_failures(Some(3))
        .connect()
        .unwrap();
    let recorder = Recorder::spawn(events);
    let failure = wait_failed(&recorder).await;
    match &failure {
        Failure::TooManyFailures {
            attempts: 3,
            last: Disconnect::Abnormal { .. },
        } => {}
        other => panic!("expected TooManyFailures after 3 abnormal ends, got {other:?}"),
    }
    sleep(SETTLE).await;
    assert_eq!(server.connections(), 3);
    assert_eq!(server.accepted(), 3, "every handshake completed");
    assert_eq!(recorder.opens(), 3);
    assert_eq!(client.stats().attempts, 3);
    // Accepted and dropped at once is a failure: the attempt numbers climb.
    let attempts: Vec<u32> = connecting_times(&recorder)
        .iter()
        .map(|(a, _)| *a)
        .collect();
    assert_eq!(attempts, [1, 2, 3]);
    drop(client);
    server.shutdown().await;
}

// ---- malformed frames ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_text_fails_with_1007() {
    let script = Script::new(accept(vec![Step::SendRaw(raw_frame::invalid_utf8_text())]));
    let failure = fails_without_retry(script, |b| b).await;
    match failure {
        Failure::Fatal(Disconnect::Protocol { code: 1007, .. }) => {}
        other => panic!("expected a fatal 1007, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_bits_fail_with_1002() {
    let script = Script::new(accept(vec![Step::SendRaw(raw_frame::reserved_bits_text())]));
    let failure = fails_without_retry(script, |b| b).await;
    match failure {
        Failure::Fatal(Disconnect::Protocol { code: 1002, .. }) => {}
        other => panic!("expected a fatal 1002, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_message_fails_with_1009() {
    let script = Script::new(accept(vec![
        Step::SendText("small".into()),
        Step::SendOversized { len: 4096 },
    ]));
    let failure = fails_without_retry(script, |b| b.max_message_size(1024)).await;
    let Failure::Fatal(disconnect @ Disconnect::Protocol { code: 1009, .. }) = &failure else {
        panic!("expected a fatal 1009, got {failure:?}");
    };
    let shown = disconnect.to_string();
    assert!(
        shown.contains("1009")
            && shown.to_lowercase().contains("too long")
            && shown.contains("4096"),
        "the error should say the message was too big: {shown:?}"
    );
    assert!(failure.to_string().contains(&shown), "{failure}");
}

#[tokio::test]
async fn retry_predicate_makes_a_protocol_violation_retryable() {
    let script = Script::new(accept(vec![Step::SendRaw(raw_frame::invalid_utf8_text())]))
        .then(accept(vec![Step::SendText("fine".into())]));
    let server = start(script).await;
    let (client, events) = builder(server.url("/feed"))
        .retry_predicate(|disconnect| {
            matches!(disconnect, Disconnect::Protocol { code: 1007, .. })
                .then_some(RetryAction::Reconnect)
        })
        .connect()
        .unwrap();
    let recorder = Recorder::spawn(events);
    recorder.wait_delivered(1, LIMIT).await;
    assert_eq!(recorder.texts(), ["fine"]);
    let retries = retries(&recorder);
    assert_eq!(retries.len(), 1, "{retries:?}");
    assert!(
        matches!(retries[0].1, Disconnect::Protocol { code: 1007, .. }),
        "{retries:?}"
    );
    assert_eq!(server.connections(), 2);
    assert_eq!(client.state(), State::Open);
    client.close(1000, "").await.unwrap();
    server.shutdown().await;
}

// ---- what each handshake carries ----

#[tokio::test]
async fn custom_headers_and_resume_query_reach_the_server() {
    let script = Script::new(accept(vec![
        Step::SendFeed { from: 1, count: 5 },
        Step::DropTcp,
    ]))
    .then(accept(vec![Step::SendFeed { from: 4, count: 4 }]));
    let server = start(script).await;
    let (client, events) = builder(server.url("/feed?tenant=acme"))
        .header("x-api-key", "k-123")
        .header("x-client-name", "suite")
        .cursor_field("seq")
        .resume_query("cursor")
        .connect()
        .unwrap();
    let recorder = Recorder::spawn(events);
    recorder.wait_delivered(7, LIMIT).await;
    recorder.assert_exactly_once(7);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert_eq!(request.header("x-api-key"), Some("k-123"));
        assert_eq!(request.header("X-Client-Name"), Some("suite"));
        assert_eq!(request.query_param("tenant"), Some("acme"));
        assert!(request.path.starts_with("/feed?"), "{}", request.path);
    }
    assert_eq!(
        requests[0].query_param("cursor"),
        None,
        "nothing to resume yet"
    );
    assert_eq!(requests[1].query_param("cursor"), Some("5"));
    client.close(1000, "").await.unwrap();
    server.shutdown().await;
}

#[tokio::test]
async fn resume_header_carries_the_cursor() {
    let script = Script::new(accept(vec![
        Step::SendFeed { from: 1, count: 5 },
        Step::DropTcp,
    ]))
    .then(accept(vec![Step::SendFeed { from: 6, count: 2 }]));
    let server = start(script).await;
    let (client, events) = builder(server.url("/feed"))
        .cursor_field("seq")
        .resume_header("x-resume-after")
        .connect()
        .unwrap();
    let recorder = Recorder::spawn(events);
    recorder.wait_delivered(7, LIMIT).await;
    recorder.assert_exactly_once(7);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].header("x-resume-after"), None);
    assert_eq!(requests[1].header("x-resume-after"), Some("5"));
    assert_eq!(
        requests[1].path, "/feed",
        "the cursor goes in the header only"
    );
    client.close(1000, "").await.unwrap();
    server.shutdown().await;
}

#[tokio::test]
async fn request_provider_builds_every_attempt_with_a_fresh_token() {
    let script = Script::new(Behaviour::Reject {
        status: 503,
        retry_after: None,
    })
    .then(accept(vec![
        Step::SendFeed { from: 1, count: 2 },
        Step::DropTcp,
    ]))
    .then(accept(vec![Step::SendFeed { from: 3, count: 2 }]));
    let server = start(script).await;
    let url = server.url("/feed?tenant=acme");
    let calls = Arc::new(AtomicU32::new(0));
    let seen: Arc<Mutex<Vec<AttemptInfo>>> = Arc::default();
    let (client, events) = {
        let calls = Arc::clone(&calls);
        let seen = Arc::clone(&seen);
        builder(server.url("/ignored"))
            .header("x-static", "always")
            .cursor_field("seq")
            .resume_query("cursor")
            .request_provider(move |info| {
                let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                seen.lock().unwrap().push(info);
                let request = ConnectRequest::new(url.clone())
                    .header("authorization", format!("Bearer token-{n}"));
                async move { Ok(request) }
            })
            .connect()
            .unwrap()
    };
    let recorder = Recorder::spawn(events);
    recorder.wait_delivered(4, LIMIT).await;
    recorder.assert_exactly_once(4);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let requests = server.requests();
    let tokens: Vec<_> = requests.iter().map(|r| r.header("authorization")).collect();
    assert_eq!(
        tokens,
        [
            Some("Bearer token-1"),
            Some("Bearer token-2"),
            Some("Bearer token-3")
        ]
    );
    for request in &requests {
        assert_eq!(request.header("x-static"), Some("always"));
        assert_eq!(request.query_param("tenant"), Some("acme"));
        assert!(
            request.path.starts_with("/feed?"),
            "the provider's URL: {}",
            request.path
        );
    }
    assert_eq!(requests[1].query_param("cursor"), None);
    assert_eq!(
        requests[2].query_param("cursor"),
        Some("2"),
        "resume added to the provided URL"
    );
    let seen = seen.lock().unwrap().clone();
    // Attempt 2 follows the 503; the drop comes before the stability window, so the run
    // of failures (and the backoff) goes on, though its messages reset the failure cap.
    let attempts: Vec<u32> = seen.iter().map(|info| info.attempt).collect();
    assert_eq!(attempts, [1, 2, 3]);
    let cursors: Vec<Option<Cursor>> = seen.iter().map(|info| info.cursor).collect();
    assert_eq!(cursors, [None, None, Some(Cursor(2))]);
    assert!(
        seen.windows(2).all(|pair| pair[0].conn < pair[1].conn),
        "a fresh socket per attempt: {seen:?}"
    );
    client.close(1000, "").await.unwrap();
    server.shutdown().await;
}

/// Which subprotocol the negotiating server answers with.
#[derive(Clone, Copy)]
enum Answer {
    /// The last one the client offered.
    LastOffered,
    /// This one, offered or not.
    Fixed(&'static str),
}

/// A handshake callback that answers with a subprotocol and reports the offer.
struct PickProtocol {
    answer: Answer,
    offered: oneshot::Sender<Option<String>>,
}

impl Callback for PickProtocol {
    fn on_request(
        self,
        request: &Request,
        mut response: Response,
    ) -> Result<Response, ErrorResponse> {
        let offered = request
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let chosen = match self.answer {
            Answer::LastOffered => offered
                .as_deref()
                .and_then(|list| list.split(',').next_back()),
            Answer::Fixed(protocol) => Some(protocol),
        };
        if let Some(chosen) = chosen {
            response
                .headers_mut()
                .insert("sec-websocket-protocol", chosen.trim().parse().unwrap());
        }
        let _ = self.offered.send(offered);
        Ok(response)
    }
}

/// A one-connection server that answers with a subprotocol as `answer` says and sends one
/// message. Returns its address, the offered header, and the task.
async fn negotiating_server(
    answer: Answer,
) -> (
    std::net::SocketAddr,
    oneshot::Receiver<Option<String>>,
    tokio::task::JoinHandle<()>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (offered_tx, offered_rx) = oneshot::channel();
    let task = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let callback = PickProtocol {
            answer,
            offered: offered_tx,
        };
        // A client that refuses the answer may leave at any point: not a server failure.
        let Ok(mut socket) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
            return;
        };
        if socket.send(Message::text("negotiated")).await.is_ok() {
            while let Some(Ok(_)) = socket.next().await {}
        }
    });
    (addr, offered_rx, task)
}

#[tokio::test]
async fn subprotocols_are_offered_and_negotiated() {
    // The script server chooses none, which RFC 6455 allows: the session opens without one,
    // and the offer arrived as sent.
    let server = start(Script::new(accept(vec![Step::SendText("plain".into())]))).await;
    let (client, events) = builder(server.url("/feed"))
        .protocol("feed.v2")
        .protocol("feed.v1")
        .connect()
        .unwrap();
    let recorder = Recorder::spawn(events);
    recorder.wait_delivered(1, LIMIT).await;
    assert_eq!(recorder.texts(), ["plain"]);
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].header("sec-websocket-protocol"),
        Some("feed.v2, feed.v1")
    );
    client.close(1000, "").await.unwrap();
    server.shutdown().await;

    // A server that picks one of the offered: the session opens and delivers.
    let (addr, offered, task) = negotiating_server(Answer::LastOffered).await;
    let (client, events) = builder(format!("ws://{addr}/feed"))
        .protocol("feed.v2")
        .protocol("feed.v1")
        .connect()
        .unwrap();
    let recorder = Recorder::spawn(events);
    recorder.wait_delivered(1, LIMIT).await;
    assert_eq!(recorder.texts(), ["negotiated"]);
    assert_eq!(
        timeout(LIMIT, offered).await.unwrap().unwrap().as_deref(),
        Some("feed.v2, feed.v1")
    );
    client.close(1000, "").await.unwrap();
    assert_eq!(client.state(), State::Closed);
    timeout(LIMIT, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_subprotocol_that_was_not_offered_fails_the_session() {
    let (addr, _offered, task) = negotiating_server(Answer::Fixed("feed.v9")).await;
    let (client, events) = builder(format!("ws://{addr}/feed"))
        .protocol("feed.v1")
        .connect()
        .unwrap();
    let recorder = Recorder::spawn(events);
    match wait_failed(&recorder).await {
        Failure::Fatal(Disconnect::Protocol { code: 1002, .. }) => {}
        other => panic!("expected a fatal 1002, got {other:?}"),
    }
    assert_eq!(recorder.opens(), 0);
    drop(client);
    task.abort();
    let _ = task.await;
}

#[tokio::test]
async fn a_subprotocol_cannot_smuggle_a_header_into_the_handshake() {
    let server = start(Script::new(accept(vec![]))).await;
    let refused = builder(server.url("/feed"))
        .protocol("chat\r\nx-injected: yes")
        .connect();
    assert!(
        matches!(refused, Err(resilient_ws::BuildError::Subprotocol { .. })),
        "a subprotocol with CR LF must be refused: {refused:?}"
    );
    assert_eq!(server.connections(), 0, "nothing was sent");
    server.shutdown().await;
}

// ---- close racing a handshake ----

/// A client whose first handshake is stalled by the proxy: returns once the proxy holds it.
async fn stalled_client(
    proxy: &FaultProxy,
    configure: impl FnOnce(ClientBuilder) -> ClientBuilder,
) -> (Client, Recorder) {
    proxy.set_fault(Fault::StallHandshake);
    let (client, events) = configure(
        builder(format!("ws://{}/feed", proxy.addr())).connect_timeout(Duration::from_secs(5)),
    )
    .connect()
    .unwrap();
    let recorder = Recorder::spawn(events);
    eventually("the proxy holds the handshake", LIMIT, || {
        proxy.connections_accepted() == 1 && proxy.live_connections() == 1
    })
    .await;
    assert_eq!(client.state(), State::Connecting { attempt: 1 });
    (client, recorder)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_during_a_stalled_handshake_ends_promptly_and_for_good() {
    let server = start(Script::new(accept(vec![Step::EchoUntilClosed]))).await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let (client, recorder) = stalled_client(&proxy, |b| b).await;

    let started = Instant::now();
    timeout(LIMIT, client.close(1000, "bye"))
        .await
        .unwrap()
        .unwrap();
    let took = started.elapsed();
    assert_eq!(client.state(), State::Closed);
    assert!(took < Duration::from_millis(500), "close took {took:?}");
    // The stalled socket was dropped, not left behind.
    eventually("the stalled socket is closed", LIMIT, || {
        proxy.live_connections() == 0
    })
    .await;
    // Lifting the stall must not let a late attempt through.
    proxy.set_fault(Fault::None);
    sleep(SETTLE).await;
    assert_eq!(proxy.connections_accepted(), 1, "no attempt after close()");
    assert_eq!(server.connections(), 0);
    assert_eq!(client.state(), State::Closed);
    assert!(retries(&recorder).is_empty(), "{:?}", recorder.states());
    assert_eq!(recorder.opens(), 0);
    proxy.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_during_a_stalled_handshake_hands_queued_messages_back() {
    let server = start(Script::new(accept(vec![Step::EchoUntilClosed]))).await;
    let proxy = FaultProxy::start(server.addr()).await.unwrap();
    let (client, recorder) =
        stalled_client(&proxy, |b| b.close_timeout(Duration::from_millis(400))).await;
    let id = client.send_text("pending").unwrap();

    let started = Instant::now();
    timeout(LIMIT, client.close(1000, "bye"))
        .await
        .unwrap()
        .unwrap();
    let took = started.elapsed();
    assert_eq!(client.state(), State::Closed);
    assert!(
        took < Duration::from_millis(1500),
        "close is bounded by the close timeout (400 ms), not the connect timeout: {took:?}"
    );
    recorder
        .wait_for("the unsent message", LIMIT, |r| {
            r.events()
                .iter()
                .any(|(_, e)| matches!(e, Event::Unsent(_)))
        })
        .await;
    let unsent: Vec<_> = recorder
        .events()
        .into_iter()
        .filter_map(|(_, event)| match event {
            Event::Unsent(unsent) => Some(unsent),
            _ => None,
        })
        .flatten()
        .map(|unsent| (unsent.id, unsent.payload))
        .collect();
    assert_eq!(unsent, [(id, Payload::Text("pending".into()))]);
    proxy.set_fault(Fault::None);
    sleep(SETTLE).await;
    assert_eq!(proxy.connections_accepted(), 1, "no attempt after close()");
    assert_eq!(server.connections(), 0);
    assert_eq!(client.state(), State::Closed);
    proxy.shutdown().await;
    server.shutdown().await;
}
