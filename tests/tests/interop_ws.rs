//! Interop with a broadcast feed on the Node `ws` library (`tests/interop/ws_server.mjs`):
//! resume with `?cursor=N`, sockets ended by `ws.terminate()` (no close frame), and a
//! half-open socket (paused: never read, never ponged, never closed) that the client must
//! find dead within its heartbeat interval + timeout.
//!
//! Needs `scripts/test-interop.sh` (it installs `ws` into `tests/interop/node_modules` and
//! exports `INTEROP_NODE`, `INTEROP_NODE_MODULES`, `INTEROP_RWSCAT`).

mod interop_support;

use std::time::Duration;

use interop_support::{
    Json, Rwscat, ServerProcess, assert_contiguous, assert_each_resumed_from_its_last_cursor,
    cursors, describe_states, disconnects, feed_client_builder, node, start_listening_server,
};
use resilient_ws::{Disconnect, Event, Reason, State};
use resilient_ws_tests::Recorder;
use tokio::time::timeout;

/// Bound of a single wait for messages or a state.
const LIMIT: Duration = Duration::from_secs(10);
/// Backstop of each test.
const TEST_LIMIT: Duration = Duration::from_secs(60);
const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(400);
const HEARTBEAT_TIMEOUT: Duration = Duration::from_millis(400);
/// Measured times may exceed their bound by this much: the event channel, the recorder's
/// task hops and a busy machine's scheduling.
const SLACK: Duration = Duration::from_millis(300);

async fn start_server(args: &[&str]) -> ServerProcess {
    start_listening_server("node ws server", node(), "ws_server.mjs", args).await
}

fn feed_client(server: &ServerProcess) -> resilient_ws::ClientBuilder {
    feed_client_builder(server)
        .heartbeat(HEARTBEAT_INTERVAL, HEARTBEAT_TIMEOUT)
        .seed(0x000E_0DE5)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_ws_terminated_sockets_are_replaced_and_the_broadcast_resumes_exactly_once() {
    timeout(TEST_LIMIT, async {
        let server = start_server(&[
            "--rate",
            "100",
            "--terminate-after",
            "30",
            "--terminate-count",
            "3",
        ])
        .await;
        let (client, events) = feed_client(&server).connect().expect("client starts");
        let recorder = Recorder::spawn(events);
        recorder.wait_delivered(180, LIMIT).await;
        assert_contiguous(&cursors(&recorder), 1, "across three terminate()s");
        let lost = disconnects(&recorder);
        assert_eq!(lost.len(), 3, "{:?}", describe_states(&recorder));
        assert!(
            lost.iter()
                .all(|d| matches!(d, Disconnect::Abnormal { .. })),
            "terminate() sends no close frame: {lost:?}"
        );
        let stats = server.get("/stats").await;
        assert_eq!(stats.u64("connections"), 4, "{stats:?}");
        assert_eq!(stats.u64("terminated"), 3, "{stats:?}");
        assert_eq!(stats.u64("max_live"), 1, "{stats:?}");
        assert_each_resumed_from_its_last_cursor(&stats, &recorder);
        client.close(1000, "test over").await.expect("close");
    })
    .await
    .expect("test exceeded its deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_ws_a_half_open_socket_is_found_within_interval_plus_timeout() {
    timeout(TEST_LIMIT, async {
        let server = start_server(&["--rate", "50", "--halfopen-after", "40"]).await;
        let (client, events) = feed_client(&server).connect().expect("client starts");
        let recorder = Recorder::spawn(events);
        recorder
            .wait_for("the reconnection", LIMIT, |r| r.opens() == 2)
            .await;
        recorder.wait_delivered(100, LIMIT).await;
        assert_contiguous(&cursors(&recorder), 1, "across the half-open socket");

        // From the last message on the frozen socket to the decision that it is dead.
        let events = recorder.events();
        let dead_at = events
            .iter()
            .position(|(_, e)| {
                matches!(
                    e,
                    Event::StateChanged {
                        state: State::Reconnecting { .. },
                        reason: Reason::Disconnected(Disconnect::HeartbeatTimeout),
                    }
                )
            })
            .unwrap_or_else(|| {
                panic!(
                    "no heartbeat timeout: {:?}\n{}",
                    describe_states(&recorder),
                    server.output()
                )
            });
        let (last_message_at, last_message) = events[..dead_at]
            .iter()
            .rev()
            .find_map(|(at, e)| match e {
                Event::Message { cursor, .. } => Some((*at, *cursor)),
                _ => None,
            })
            .expect("messages before the freeze");
        assert_eq!(
            last_message.map(|c| c.0),
            Some(40),
            "frozen after 40 messages"
        );
        let detection = events[dead_at].0 - last_message_at;
        let bound = HEARTBEAT_INTERVAL + HEARTBEAT_TIMEOUT;
        assert!(
            detection <= bound + SLACK,
            "found dead after {detection:?}, bound {bound:?} + {SLACK:?}"
        );
        assert!(
            detection >= HEARTBEAT_TIMEOUT,
            "found dead after only {detection:?}: before the pong could be late"
        );

        let stats = server.get("/stats").await;
        assert_eq!(stats.u64("connections"), 2, "{stats:?}");
        assert_eq!(stats.u64("frozen"), 1, "{stats:?}");
        assert_eq!(
            stats.list("cursors"),
            vec!["null".to_owned(), "40".to_owned()],
            "resumed from the last message on the frozen socket"
        );
        client.close(1000, "test over").await.expect("close");
        eprintln!(
            "ws: half-open socket found dead {detection:?} after its last message (bound {bound:?})"
        );
    })
    .await
    .expect("test exceeded its deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_ws_rwscat_rides_through_terminated_sockets() {
    timeout(TEST_LIMIT, async {
        let server = start_server(&[
            "--rate",
            "100",
            "--terminate-after",
            "25",
            "--terminate-count",
            "2",
        ])
        .await;
        let mut rwscat = Rwscat::start(&[
            &server.ws_url("/feed"),
            "--cursor-field",
            "seq",
            "--resume-param",
            "cursor",
            "--count",
            "80",
            "--backoff-initial",
            "50",
        ]);
        let code = rwscat.wait_exit(LIMIT).await;
        let stderr = rwscat.stderr().join("\n");
        assert_eq!(code, 0, "stderr:\n{stderr}");
        let seqs: Vec<u64> = rwscat
            .stdout()
            .iter()
            .map(|l| Json(l.clone()).u64("seq"))
            .collect();
        assert_eq!(seqs.len(), 80);
        assert_contiguous(&seqs, 1, "rwscat's stdout");
        let stats = server.get("/stats").await;
        assert_eq!(stats.u64("connections"), 3, "{stats:?}");
        // Resumed each time from further on (exactly where is rwscat's to know; its
        // stdout above shows nothing was lost or repeated).
        let asked = stats.list("cursors");
        assert_eq!(asked.len(), 3, "{stats:?}");
        assert_eq!(asked[0], "null");
        let resumed: Vec<u64> = asked[1..]
            .iter()
            .map(|c| c.parse().expect("a cursor"))
            .collect();
        assert!(resumed[0] > 0 && resumed[1] > resumed[0], "{stats:?}");
        assert_eq!(
            stderr.matches("without a close frame").count(),
            2,
            "stderr:\n{stderr}"
        );
    })
    .await
    .expect("test exceeded its deadline");
}
