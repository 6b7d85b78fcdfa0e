//! Interop with a server on the Python `websockets` library (`tests/interop/websockets_server.py`):
//! server-initiated pings the client must answer, close codes 1001/1011/1012 that the client
//! reconnects after (resuming exactly-once), and the server's `max_size` limit, whose 1009
//! close is fatal by default.
//!
//! Needs `scripts/test-interop.sh` (it installs the server into `.venv-interop/` and
//! exports `INTEROP_PYTHON`, `INTEROP_RWSCAT`).

mod interop_support;

use std::time::Duration;

use interop_support::{
    Rwscat, ServerProcess, assert_contiguous, assert_each_resumed_from_its_last_cursor, cursors,
    describe_states, disconnects, feed_client_builder, python, start_listening_server,
};
use resilient_ws::{Client, Disconnect, Failure, State};
use resilient_ws_tests::Recorder;
use tokio::time::{sleep, timeout};

/// Bound of a single wait for messages or a state.
const LIMIT: Duration = Duration::from_secs(10);
/// Backstop of each test.
const TEST_LIMIT: Duration = Duration::from_secs(60);

async fn start_server(args: &[&str]) -> ServerProcess {
    start_listening_server(
        "python websockets server",
        python(),
        "websockets_server.py",
        args,
    )
    .await
}

fn feed_client(server: &ServerProcess) -> resilient_ws::ClientBuilder {
    feed_client_builder(server).seed(0x0057_0C4E)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_websockets_server_pings_are_answered_and_a_quiet_client_stays_connected() {
    timeout(TEST_LIMIT, async {
        // No messages at all; the library's keepalive pings every 200 ms and closes with
        // 1011 when a pong is 300 ms late, and the handler pings every 100 ms, counting
        // pongs.
        let server = start_server(&[
            "--ping-interval",
            "0.2",
            "--ping-timeout",
            "0.3",
            "--probe-pings",
            "100",
        ])
        .await;
        // The client's own heartbeat is long: the server's pings are all there is.
        let (client, events) = feed_client(&server)
            .heartbeat(Duration::from_secs(15), Duration::from_secs(10))
            .connect()
            .expect("client starts");
        let recorder = Recorder::spawn(events);
        recorder.wait_for("open", LIMIT, |r| r.opens() == 1).await;
        sleep(Duration::from_secs(3)).await;
        let stats = server.get("/stats").await;
        assert_eq!(
            (stats.u64("connections"), stats.u64("live")),
            (1, 1),
            "still on the first connection: {stats:?}; states: {:?}\n{}",
            describe_states(&recorder),
            server.output()
        );
        assert!(
            stats.u64("pongs") >= 10,
            "the client answered the server's pings: {stats:?}"
        );
        assert!(
            disconnects(&recorder).is_empty(),
            "{:?}",
            describe_states(&recorder)
        );
        client.close(1000, "test over").await.expect("close");
        let stats = server
            .wait_json("/stats", "the close", LIMIT, |s| s.u64("live") == 0)
            .await;
        assert_eq!(
            stats.list("closes"),
            vec![r#"{"code": 1000, "sent": 1000, "received": 1000}"#],
            "a clean close handshake"
        );
        eprintln!(
            "websockets: {} pongs in 3 s on one connection",
            stats.u64("pongs")
        );
    })
    .await
    .expect("test exceeded its deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_websockets_close_codes_1001_1011_1012_each_reconnect_and_resume_exactly_once() {
    timeout(TEST_LIMIT, async {
        let server = start_server(&[
            "--rate",
            "200",
            "--close-codes",
            "1001,1011,1012",
            "--close-after",
            "25",
        ])
        .await;
        let (client, events) = feed_client(&server).connect().expect("client starts");
        let recorder = Recorder::spawn(events);
        recorder.wait_delivered(150, LIMIT).await;
        let delivered = cursors(&recorder);
        assert_contiguous(&delivered, 1, "across three server closes");
        let codes: Vec<u16> = disconnects(&recorder)
            .into_iter()
            .map(|d| match d {
                Disconnect::Closed { code, .. } => code,
                other => panic!("expected a close frame, got {other}"),
            })
            .collect();
        assert_eq!(
            codes,
            vec![1001, 1011, 1012],
            "{:?}",
            describe_states(&recorder)
        );
        assert_eq!(recorder.opens(), 4);
        let stats = server.get("/stats").await;
        assert_eq!(stats.u64("connections"), 4, "{stats:?}");
        assert_eq!(stats.u64("max_live"), 1, "{stats:?}");
        let asked = assert_each_resumed_from_its_last_cursor(&stats, &recorder);
        assert_eq!(asked, ["null", "25", "50", "75"]);
        client.close(1000, "test over").await.expect("close");
    })
    .await
    .expect("test exceeded its deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_websockets_a_message_over_max_size_is_closed_1009_and_fatal() {
    timeout(TEST_LIMIT, async {
        let server = start_server(&["--max-size", "1024"]).await;
        // The default retry policy, failure cap and backoff.
        let (client, events) = Client::builder(server.ws_url("/feed"))
            .connect()
            .expect("client starts");
        let recorder = Recorder::spawn(events);
        recorder.wait_for("open", LIMIT, |r| r.opens() == 1).await;
        client.send_text("small").expect("send");
        client.send_text("x".repeat(2000)).expect("send");
        let state = recorder.wait_terminal(LIMIT).await;
        match &state {
            State::Failed(Failure::Fatal(Disconnect::Closed { code: 1009, .. })) => {}
            other => panic!(
                "expected Failed(Fatal(Closed{{code: 1009}})), got {other:?}; states: {:?}",
                describe_states(&recorder)
            ),
        }
        // Nothing more: no retry after a fatal close.
        sleep(Duration::from_millis(1500)).await;
        assert_eq!(client.state(), state);
        let stats = server.get("/stats").await;
        assert_eq!(
            stats.u64("connections"),
            1,
            "exactly one connection: {stats:?}"
        );
        assert_eq!(
            stats.u64("received"),
            1,
            "the small message arrived: {stats:?}"
        );
        assert_eq!(recorder.opens(), 1);
        eprintln!("websockets: {state}; server: {stats:?}");
    })
    .await
    .expect("test exceeded its deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_websockets_rwscat_reports_the_1009_close_and_exits_2() {
    timeout(TEST_LIMIT, async {
        let server = start_server(&["--max-size", "1024"]).await;
        let mut rwscat = Rwscat::start(&[&server.ws_url("/feed")]);
        rwscat.send_line(&"y".repeat(4000)).await;
        let code = rwscat.wait_exit(LIMIT).await;
        let stderr = rwscat.stderr().join("\n");
        assert_eq!(code, 2, "exit 2: rejected by the server; stderr:\n{stderr}");
        assert!(
            stderr.contains("rejected by the server") && stderr.contains("1009"),
            "stderr names the 1009 close:\n{stderr}"
        );
        let stats = server.get("/stats").await;
        assert_eq!(stats.u64("connections"), 1, "no retry: {stats:?}");
        eprintln!(
            "websockets: rwscat said: {}",
            stderr.lines().last().unwrap_or("")
        );
    })
    .await
    .expect("test exceeded its deadline");
}
