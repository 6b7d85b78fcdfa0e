//! The native client through the fault-injecting proxy, in front of the reference feed server.
//!
//! Every scenario streams the cursor feed (`{"seq":n,...}`, resumed with `?cursor=N`) from an
//! in-process [`FeedServer`] through a [`FaultProxy`] on 127.0.0.1, breaks the network or the
//! server in one way, and asserts that the feed `1..=total` was delivered exactly once and in
//! order, and that the client never had two sockets open at once (counted at the proxy).

use std::future::Future;
use std::time::Duration;

use resilient_ws::{Client, ClientBuilder, Disconnect, Event, Failure, Reason, State};
use resilient_ws_examples::feed_server::{Faults, FeedConfig, FeedServer, FeedServerHandle};
use resilient_ws_tests::{Fault, FaultProxy, Recorder};
use tokio::time::{Instant, timeout};

/// Bound of any single wait for the feed or a state.
const LIMIT: Duration = Duration::from_secs(10);
/// Bound of a whole scenario (every wait inside is bounded too; this is the backstop).
const SCENARIO_LIMIT: Duration = Duration::from_secs(25);
/// Bound of a server or proxy shutdown.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(5);

const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(300);
const HEARTBEAT_TIMEOUT: Duration = Duration::from_millis(300);
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
const CLOSE_TIMEOUT: Duration = Duration::from_millis(500);
/// Measured times may exceed their bound by this much: timer wheel ticks (1 ms), the
/// driver's and the recorder's task hops, and a loaded machine's scheduling delays.
const SLACK: Duration = Duration::from_millis(100);

/// A feed server with a fault proxy in front of it.
struct Rig {
    server: FeedServerHandle,
    proxy: FaultProxy,
}

impl Rig {
    async fn start(config: FeedConfig) -> Self {
        let server = FeedServer::start(config).await.expect("feed server starts");
        let proxy = FaultProxy::start(server.addr())
            .await
            .expect("fault proxy starts");
        Self { server, proxy }
    }

    /// A feed of `total` messages at `rate` per second (0: all at once), with `faults`.
    async fn feed(rate: u32, total: u64, faults: Faults) -> Self {
        Self::start(FeedConfig {
            rate,
            total: Some(total),
            faults,
            ..FeedConfig::default()
        })
        .await
    }

    /// A client of the feed through the proxy, with short timings.
    fn client(&self) -> ClientBuilder {
        Client::builder(format!("ws://{}/feed", self.proxy.addr()))
            .cursor_field("seq")
            .resume_query("cursor")
            .backoff(Duration::from_millis(20), Duration::from_millis(500))
            .heartbeat(HEARTBEAT_INTERVAL, HEARTBEAT_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .stability_window(Duration::from_millis(200))
            .close_timeout(CLOSE_TIMEOUT)
            .max_failures(None)
            .seed(0x00C0_FFEE)
    }

    /// Asserts the one-socket invariant at the proxy, then closes `client` and stops both
    /// servers.
    async fn finish(self, client: Client) {
        self.assert_one_socket_at_a_time();
        client.close(1000, "test over").await.expect("close");
        timeout(SHUTDOWN_LIMIT, self.proxy.shutdown())
            .await
            .expect("proxy shuts down");
        timeout(SHUTDOWN_LIMIT, self.server.shutdown())
            .await
            .expect("feed server shuts down")
            .expect("feed server shuts down cleanly");
    }

    /// At most one client socket open at any moment, counted at the proxy.
    ///
    /// Not with [`FaultProxy::max_live_connections`]: it counts a connection until the
    /// proxy's own task for it has ended, which happens after the client has closed its
    /// socket (the task must first see the FIN, pass the close on to the server, or finish a
    /// cut). A client that closes its old socket and at once connects again, as it should,
    /// is then counted twice for a moment; seen in practice after `Fault::CutAfter`.
    /// [`FaultProxy::max_open_client_sockets`] instead asks the kernel, at every accept,
    /// whether an earlier client socket is still open (not yet closed by the client): the
    /// client closes its old socket before connecting the next, and on loopback that FIN is
    /// in the kernel's table before the new connection can be accepted, so the check has no
    /// race and allows no overlap at all.
    fn assert_one_socket_at_a_time(&self) {
        let open = self
            .proxy
            .max_open_client_sockets()
            .expect("the kernel's TCP table is readable (Linux)");
        if self.proxy.max_live_connections() > open {
            eprintln!(
                "note: the proxy's teardown-inclusive count saw {} connections at once; the \
                 client had at most {open} socket(s) open",
                self.proxy.max_live_connections()
            );
        }
        assert!(
            open <= 1,
            "the client had {open} sockets open at once: {:?} (proxy accepted {}, its own \
             teardown-inclusive count saw {})",
            self.proxy.client_socket_overlaps(),
            self.proxy.connections_accepted(),
            self.proxy.max_live_connections(),
        );
    }
}

/// A client session and what the test knows about its clock.
struct Session {
    client: Client,
    recorder: Recorder,
    /// Instants just before and just after `connect()`: the client's clock starts in between.
    before: Instant,
    after: Instant,
}

impl Session {
    fn start(builder: ClientBuilder) -> Self {
        let before = Instant::now();
        let (client, events) = builder.connect().expect("client starts");
        let after = Instant::now();
        Self {
            client,
            recorder: Recorder::spawn(events),
            before,
            after,
        }
    }

    /// When the session decided to reconnect because of `disconnect`, on the client's own
    /// clock (time since it started): a `Reconnecting` state carries its retry time and its
    /// delay, whose difference is the moment of the decision. Measured this way, a
    /// deadline is checked without the delays of the event channel and the recorder.
    fn decided_to_reconnect(&self, disconnect: &Disconnect) -> Option<Duration> {
        self.recorder
            .states()
            .into_iter()
            .find_map(|(_, state, reason)| match state {
                State::Reconnecting {
                    retry_at: Some(retry_at),
                    delay,
                    ..
                } if reason == Reason::Disconnected(disconnect.clone()) => {
                    Some(retry_at.since_origin().saturating_sub(delay))
                }
                _ => None,
            })
    }
}

/// Runs a scenario under the backstop deadline.
async fn scenario(body: impl Future<Output = ()>) {
    init_tracing();
    timeout(SCENARIO_LIMIT, body)
        .await
        .expect("scenario exceeded its deadline");
}

/// Logs to the test's output when `RUST_LOG` is set (e.g. `RUST_LOG=resilient_ws=debug`).
fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// True once the session has gone to `Reconnecting` at least once.
fn has_reconnected(recorder: &Recorder) -> bool {
    recorder
        .states()
        .iter()
        .any(|(_, state, _)| matches!(state, State::Reconnecting { .. }))
}

/// The first time the session went to `Reconnecting` because of `disconnect`.
fn reconnecting_because(recorder: &Recorder, disconnect: &Disconnect) -> Option<Instant> {
    recorder.first_state(|state, reason| {
        matches!(state, State::Reconnecting { .. })
            && *reason == Reason::Disconnected(disconnect.clone())
    })
}

/// Waits for the whole feed, then asserts it arrived exactly once and in order.
async fn assert_whole_feed(recorder: &Recorder, total: u64) {
    let total_len = usize::try_from(total).expect("small total");
    recorder.wait_delivered(total_len, LIMIT).await;
    recorder.assert_exactly_once(total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_mid_stream_resumes_exactly_once() {
    scenario(async {
        const TOTAL: u64 = 400;
        let rig = Rig::feed(500, TOTAL, Faults::default()).await;
        let (client, events) = rig.client().connect().expect("client starts");
        let recorder = Recorder::spawn(events);
        for (round, at) in [60_u64, 160, 260].into_iter().enumerate() {
            let resets = u64::try_from(round).expect("small");
            // The session's own counters and state, not the recorder (which may lag), so
            // that every reset hits an open connection.
            recorder
                .wait_for(
                    &format!("{at} messages on an open connection"),
                    LIMIT,
                    |_| client.state() == State::Open && client.stats().messages_delivered >= at,
                )
                .await;
            // A reset reaches every open connection even when lifted at once.
            rig.proxy.set_fault(Fault::Reset);
            rig.proxy.set_fault(Fault::None);
            recorder
                .wait_for("the reconnect after the reset", LIMIT, |_| {
                    client.stats().reconnects > resets
                })
                .await;
        }
        assert_whole_feed(&recorder, TOTAL).await;
        let stats = client.stats();
        assert!(stats.reconnects >= 3, "{stats:?}");
        rig.finish(client).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blackhole_is_detected_within_interval_plus_timeout() {
    scenario(async {
        const TOTAL: u64 = 400;
        let rig = Rig::feed(500, TOTAL, Faults::default()).await;
        let session = Session::start(rig.client());
        let recorder = &session.recorder;
        recorder.wait_delivered(100, LIMIT).await;

        rig.proxy.set_fault(Fault::Blackhole);
        let fault_at = Instant::now();
        recorder
            .wait_for("the heartbeat to find the connection dead", LIMIT, |r| {
                reconnecting_because(r, &Disconnect::HeartbeatTimeout).is_some()
            })
            .await;
        let decided = session
            .decided_to_reconnect(&Disconnect::HeartbeatTimeout)
            .expect("waited for it");
        // The decision on the test's clock: at the latest and at the earliest.
        let latest = session.after + decided;
        let earliest = session.before + decided;
        let last_message_at = recorder
            .events()
            .into_iter()
            .filter(|(_, event)| matches!(event, Event::Message { .. }))
            .map(|(at, _)| at)
            .next_back()
            .expect("messages before the blackhole");
        let bound = HEARTBEAT_INTERVAL + HEARTBEAT_TIMEOUT;
        // The last message was recorded no earlier than the session took it in, so this
        // errs on the short side, never on the long side.
        let silence = latest.saturating_duration_since(last_message_at);
        assert!(
            silence <= bound + SLACK,
            "dead connection found {silence:?} after the last message (bound {bound:?} + {SLACK:?})"
        );
        // Not before a whole timeout of silence after the blackhole: a message was due every
        // 2 ms until then, so no probe was pending when the fault was set.
        let after_fault = earliest.saturating_duration_since(fault_at);
        eprintln!("blackhole: dead after {silence:?} of silence, {after_fault:?} after the fault");
        assert!(
            after_fault >= HEARTBEAT_TIMEOUT,
            "dead connection declared only {after_fault:?} after the blackhole"
        );
        assert_eq!(session.client.stats().heartbeat_timeouts, 1);

        rig.proxy.set_fault(Fault::None);
        assert_whole_feed(recorder, TOTAL).await;
        assert!(session.client.stats().reconnects >= 1);
        rig.finish(session.client).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_handshake_times_out_then_connects() {
    scenario(async {
        const TOTAL: u64 = 200;
        let rig = Rig::feed(1000, TOTAL, Faults::default()).await;
        rig.proxy.set_fault(Fault::StallHandshake);
        let session = Session::start(rig.client());
        let recorder = &session.recorder;
        recorder
            .wait_for("the connect deadline", LIMIT, |r| {
                reconnecting_because(r, &Disconnect::ConnectTimeout).is_some()
            })
            .await;
        rig.proxy.set_fault(Fault::None);
        // The first attempt started when the client's clock did.
        let waited = session
            .decided_to_reconnect(&Disconnect::ConnectTimeout)
            .expect("waited for it");
        eprintln!("stalled handshake abandoned after {waited:?}");
        assert!(
            waited >= CONNECT_TIMEOUT,
            "handshake abandoned after {waited:?}, before the {CONNECT_TIMEOUT:?} deadline"
        );
        assert!(
            waited <= CONNECT_TIMEOUT + SLACK,
            "stalled handshake abandoned after {waited:?} (deadline {CONNECT_TIMEOUT:?} + {SLACK:?})"
        );
        assert_eq!(recorder.opens(), 0, "opened through a stalled handshake");
        assert!(rig.proxy.connections_accepted() >= 1);

        assert_whole_feed(recorder, TOTAL).await;
        rig.finish(session.client).await;
    })
    .await;
}

/// Where `Fault::Slice` starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SliceFrom {
    /// From the first byte: the HTTP upgrade too arrives in pieces.
    Handshake,
    /// Once the connection is open: only the feed's frames arrive in pieces.
    Open,
}

/// Streams a short feed through `Fault::Slice` with segments of at most `max_segment`
/// bytes, `gap` apart, and tells what went wrong, if anything: the session must open once
/// and deliver the feed exactly once in order.
async fn sliced_feed(max_segment: usize, gap: Duration, from: SliceFrom) -> Result<(), String> {
    let total: u64 = if from == SliceFrom::Handshake { 10 } else { 30 };
    let rig = Rig::start(FeedConfig {
        rate: if from == SliceFrom::Handshake { 0 } else { 50 },
        total: Some(total),
        payload_bytes: 8,
        ..FeedConfig::default()
    })
    .await;
    let slice = Fault::Slice {
        max_segment,
        delay: gap,
    };
    if from == SliceFrom::Handshake {
        rig.proxy.set_fault(slice.clone());
    }
    // A sliced handshake is hundreds of writes; a handshake that cannot succeed ends the
    // session after two attempts instead of running into the wait's limit.
    let (client, events) = rig
        .client()
        .connect_timeout(Duration::from_secs(8))
        // A pong can wait behind a backlog of tiny writes; liveness is not under test.
        .heartbeat(Duration::from_secs(2), Duration::from_secs(3))
        .max_failures(Some(2))
        .connect()
        .expect("client starts");
    let recorder = Recorder::spawn(events);
    if from == SliceFrom::Open {
        recorder
            .wait_for("the first open", LIMIT, |r| r.opens() >= 1)
            .await;
        rig.proxy.set_fault(slice);
    }
    let total_len = usize::try_from(total).expect("small");
    recorder
        .wait_for("the whole feed or the end of the session", LIMIT, |r| {
            r.delivered().len() >= total_len
                || r.states().iter().any(|(_, state, _)| state.is_terminal())
        })
        .await;
    let outcome =
        if recorder.opens() == 1 && recorder.delivered() == (1..=total).collect::<Vec<_>>() {
            Ok(())
        } else {
            let states: Vec<String> = recorder
                .states()
                .iter()
                .map(|(_, state, reason)| format!("{state} ({reason})"))
                .collect();
            Err(format!(
                "segments of at most {max_segment} byte(s) {gap:?} apart, from {from:?}: {} \
             message(s) delivered of {total}, {} byte(s) down; states: {states:?}",
                recorder.delivered().len(),
                rig.proxy.bytes_down(),
            ))
        };
    rig.finish(client).await;
    outcome
}

/// Fails with every problem found, once all have run.
fn assert_all_ok(outcomes: &[Result<(), String>]) {
    let failures: Vec<&String> = outcomes.iter().filter_map(|o| o.as_ref().err()).collect();
    assert!(failures.is_empty(), "{failures:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_to_three_byte_segments_from_the_handshake_on() {
    scenario(async {
        // 2 ms apart, so that the client reads most segments on their own, as over a slow
        // link that delivers tiny segments. (tungstenite's own client handshake refused a
        // response head that came in more than 64 reads averaging under 128 bytes.)
        let gap = Duration::from_millis(2);
        let (one, two, three) = tokio::join!(
            sliced_feed(1, gap, SliceFrom::Handshake),
            sliced_feed(2, gap, SliceFrom::Handshake),
            sliced_feed(3, gap, SliceFrom::Handshake)
        );
        assert_all_ok(&[one, two, three]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_to_three_byte_segments_once_open() {
    scenario(async {
        let gap = Duration::from_millis(1);
        let (one, two, three) = tokio::join!(
            sliced_feed(1, gap, SliceFrom::Open),
            sliced_feed(2, gap, SliceFrom::Open),
            sliced_feed(3, gap, SliceFrom::Open)
        );
        assert_all_ok(&[one, two, three]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_after_n_bytes_sweep_resumes_exactly_once() {
    scenario(async {
        const TOTAL: u64 = 30;
        // The 101 response head is 129 bytes and each feed frame 63 (2 of header, then a
        // `{"seq":n,...}` text): a step of 23 lands before, inside and between them, and the
        // extra values hit the edges (end of the head, inside and after a frame header, the
        // first frame boundary).
        let cuts = (0..=300)
            .step_by(23)
            .chain([128, 129, 130, 131, 132, 191, 192, 193, 194]);
        for bytes in cuts {
            let rig = Rig::feed(0, TOTAL, Faults::default()).await;
            rig.proxy.set_fault(Fault::CutAfter { bytes });
            let (client, events) = rig.client().connect().expect("client starts");
            let recorder = Recorder::spawn(events);
            // Keep the cut until it has happened once, then let the client resume.
            recorder
                .wait_for(&format!("the cut after {bytes} bytes"), LIMIT, |r| {
                    has_reconnected(r)
                })
                .await;
            rig.proxy.set_fault(Fault::None);
            let total_len = usize::try_from(TOTAL).expect("small");
            recorder.wait_delivered(total_len, LIMIT).await;
            assert_eq!(
                recorder.delivered(),
                (1..=TOTAL).collect::<Vec<_>>(),
                "cut after {bytes} bytes: not exactly-once in order"
            );
            rig.finish(client).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_close_completes_within_close_timeout() {
    scenario(async {
        const TOTAL: u64 = 100;
        let rig = Rig::feed(0, TOTAL, Faults::default()).await;
        let (client, events) = rig.client().connect().expect("client starts");
        let recorder = Recorder::spawn(events);
        assert_whole_feed(&recorder, TOTAL).await;

        // Every close is held back far longer than the client will wait.
        rig.proxy.set_fault(Fault::SlowClose {
            delay: Duration::from_secs(3),
        });
        let started = Instant::now();
        client.close(1000, "bye").await.expect("close");
        let took = started.elapsed();
        eprintln!("close under a slow close took {took:?}");
        assert_eq!(client.state(), State::Closed);
        assert!(
            took <= CLOSE_TIMEOUT + SLACK,
            "close took {took:?} (close timeout {CLOSE_TIMEOUT:?} + {SLACK:?})"
        );
        recorder
            .wait_for("the closed state", LIMIT, |r| {
                r.first_state(|state, _| *state == State::Closed).is_some()
            })
            .await;
        // The close frames crossed as usual; only the TCP close lagged, and the client did
        // not wait for it beyond its grace period.
        let closed_because = recorder
            .states()
            .into_iter()
            .find(|(_, state, _)| *state == State::Closed)
            .map(|(_, _, reason)| reason);
        assert_eq!(closed_because, Some(Reason::CloseComplete));
        recorder.assert_exactly_once(TOTAL);
        assert_eq!(client.stats().reconnects, 0);
        rig.finish(client).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_with_jitter_causes_no_reconnects() {
    scenario(async {
        const TOTAL: u64 = 300;
        let rig = Rig::feed(150, TOTAL, Faults::default()).await;
        rig.proxy.set_fault(Fault::Latency {
            base: Duration::from_millis(20),
            jitter: Duration::from_millis(20),
        });
        let heartbeat_interval = Duration::from_millis(200);
        let (client, events) = rig
            .client()
            .heartbeat(heartbeat_interval, HEARTBEAT_TIMEOUT)
            .connect()
            .expect("client starts");
        let recorder = Recorder::spawn(events);
        assert_whole_feed(&recorder, TOTAL).await;
        // Then idle, so that only pings and pongs cross the slow link for several intervals.
        let idle_since = Instant::now();
        let bytes_up_before = rig.proxy.bytes_up();
        let idle = heartbeat_interval * 4;
        let _ = timeout(idle, async {
            let mut state = client.watch_state();
            state.wait_for(|state| *state != State::Open).await.is_ok()
        })
        .await;
        assert!(
            idle_since.elapsed() >= idle,
            "left the open state while idle"
        );
        assert_eq!(client.state(), State::Open);
        assert!(
            rig.proxy.bytes_up() > bytes_up_before,
            "no heartbeat crossed the slow link while idle"
        );
        let stats = client.stats();
        assert_eq!(stats.reconnects, 0, "spurious reconnect: {stats:?}");
        assert_eq!(stats.heartbeat_timeouts, 0, "spurious timeout: {stats:?}");
        assert_eq!(recorder.opens(), 1);
        assert_eq!(rig.proxy.connections_accepted(), 1);
        rig.finish(client).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_server_restart_resumes_from_cursor() {
    scenario(async {
        const TOTAL: u64 = 400;
        let rig = Rig::feed(500, TOTAL, Faults::default()).await;
        let (client, events) = rig.client().connect().expect("client starts");
        let recorder = Recorder::spawn(events);
        recorder.wait_delivered(100, LIMIT).await;
        timeout(LIMIT, rig.server.restart(Duration::from_millis(300)))
            .await
            .expect("restart in time")
            .expect("restart");
        // The head kept advancing while the server was down; the client resumes from its
        // cursor and gets everything it missed.
        assert_whole_feed(&recorder, TOTAL).await;
        assert!(
            client.stats().reconnects >= 1,
            "stats: {:?}",
            client.stats()
        );
        assert!(rig.server.stats().connections_accepted >= 2);
        rig.finish(client).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flapping_server_ends_at_the_failure_cap() {
    scenario(async {
        let rig = Rig::feed(
            1000,
            100,
            Faults {
                drop_every: Some(0),
                ..Faults::default()
            },
        )
        .await;
        let (client, events) = rig
            .client()
            .max_failures(Some(4))
            .stability_window(Duration::from_secs(2))
            .connect()
            .expect("client starts");
        let recorder = Recorder::spawn(events);
        let terminal = recorder.wait_terminal(LIMIT).await;
        assert!(
            matches!(
                terminal,
                State::Failed(Failure::TooManyFailures { attempts: 4, .. })
            ),
            "ended in {terminal:?}"
        );
        assert_eq!(rig.server.stats().connections_accepted, 4);
        assert_eq!(rig.proxy.connections_accepted(), 4);
        assert!(recorder.delivered().is_empty());
        rig.finish(client).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_replay_is_deduplicated() {
    scenario(async {
        const TOTAL: u64 = 300;
        const OVERLAP: u64 = 5;
        let rig = Rig::feed(
            1000,
            TOTAL,
            Faults {
                drop_every: Some(40),
                replay_overlap: OVERLAP,
                ..Faults::default()
            },
        )
        .await;
        let (client, events) = rig.client().connect().expect("client starts");
        let recorder = Recorder::spawn(events);
        assert_whole_feed(&recorder, TOTAL).await;
        // Every resume repeats the last OVERLAP messages, and each is dropped as a replay
        // (waited for, in case a reconnect has opened and its replays are still on the way).
        recorder
            .wait_for("every replay to be dropped", Duration::from_secs(3), |_| {
                let stats = client.stats();
                stats.replays_dropped == OVERLAP * stats.reconnects
            })
            .await;
        let stats = client.stats();
        assert!(stats.reconnects >= 5, "stats: {stats:?}");
        assert!(stats.replays_dropped > 0, "stats: {stats:?}");
        rig.finish(client).await;
    })
    .await;
}
