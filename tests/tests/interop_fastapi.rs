//! Interop with a dashboard feed built on FastAPI + uvicorn (`tests/interop/fastapi_feed.py`),
//! the way many dashboards are: initial data on connect, then the handler blocks on
//! `receive_text()` while a background task broadcasts `{"seq": N, ...}` to everyone, and
//! uvicorn pings every client each second and drops it when the pong is a second late
//! (`--ws-ping-interval 1 --ws-ping-timeout 1`). Resume: `?cursor=N` replays from a ring
//! buffer; restarts keep the counter and the ring (an event log on disk).
//!
//! Needs `scripts/test-interop.sh` (it installs the server into `.venv-interop/` and
//! exports `INTEROP_PYTHON`, `INTEROP_RWSCAT`).

mod interop_support;

use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;
use interop_support::{
    Json, Rwscat, ServerProcess, TempDir, addr_after, assert_contiguous, cursors,
    cursors_before_each_attempt, describe_states, disconnects, python,
};
use resilient_ws::{Client, Event};
use resilient_ws_tests::Recorder;
use tokio::time::{Instant, sleep, timeout};

/// How long the passive client must stay on its one connection.
const PASSIVE: Duration = Duration::from_secs(30);
/// Bound of a single wait for messages or a state.
const LIMIT: Duration = Duration::from_secs(15);
/// Bound of a reconnection across a server restart (a Python start on a busy machine).
const RESTART_LIMIT: Duration = Duration::from_secs(30);
/// Between broadcasts.
const BROADCAST_MS: u64 = 50;
/// Backstop of each test.
const TEST_LIMIT: Duration = Duration::from_secs(120);

/// Starts uvicorn with the feed on `port` (0: any), its event log at `log`.
async fn start_feed(log: &Path, port: u16) -> ServerProcess {
    let mut command = python();
    command
        .args(["-m", "uvicorn", "--app-dir", ".", "fastapi_feed:app"])
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--ws-ping-interval", "1", "--ws-ping-timeout", "1"])
        .env("FEED_LOG", log)
        .env("FEED_INTERVAL_MS", BROADCAST_MS.to_string());
    ServerProcess::start("uvicorn fastapi_feed", command, |line| {
        addr_after(line, "Uvicorn running on http://")
    })
    .await
}

/// The `head` of a snapshot message: the last broadcast before the connection joined.
fn snapshot_head(text: &str) -> u64 {
    assert!(text.contains("\"snapshot\""), "not a snapshot: {text}");
    Json(text.to_owned()).u64("head")
}

fn snapshots(texts: &[String]) -> usize {
    texts.iter().filter(|t| t.contains("\"snapshot\"")).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_fastapi_passive_client_stays_on_one_connection_for_30_s_and_resumes_after_a_restart()
 {
    timeout(TEST_LIMIT, async {
        let dir = TempDir::new("fastapi");
        let log = dir.join("feed.log");
        let mut server = start_feed(&log, 0).await;
        let (client, events) = Client::builder(server.ws_url("/feed"))
            .cursor_field("seq")
            .resume_query("cursor")
            .backoff(Duration::from_millis(100), Duration::from_secs(1))
            .max_failures(None)
            .seed(0x0FA5_7A91)
            .connect()
            .expect("client starts");
        let recorder = Recorder::spawn(events);
        recorder.wait_delivered(1, LIMIT).await;
        let head = snapshot_head(&recorder.texts()[0]);

        // 30 s of listening, on one connection: uvicorn pings every second and would drop
        // a client whose pong is a second late. Checked as it goes, to fail early.
        let started = Instant::now();
        while started.elapsed() < PASSIVE {
            assert!(
                recorder.opens() == 1 && disconnects(&recorder).is_empty(),
                "the passive client lost its connection after {:?}: {:?}\n{}",
                started.elapsed(),
                describe_states(&recorder),
                server.output()
            );
            sleep(Duration::from_millis(200)).await;
        }
        let stats = server.get("/stats").await;
        assert_eq!(
            stats.u64("connections"),
            1,
            "one connection in 30 s: {stats:?}"
        );
        assert_eq!(stats.u64("live"), 1, "{stats:?}");
        assert!(stats.list("closes").is_empty(), "{stats:?}");
        let seq = stats.u64("seq");
        recorder
            .wait_for(&format!("every broadcast up to {seq}"), LIMIT, |r| {
                cursors(r).last().is_some_and(|&last| last >= seq)
            })
            .await;
        let passive = cursors(&recorder);
        assert_contiguous(&passive, head + 1, "30 s on one connection");
        let nominal = PASSIVE.as_millis() as usize / BROADCAST_MS as usize;
        assert!(
            passive.len() >= nominal / 2,
            "the feed barely moved: {} broadcasts in 30 s",
            passive.len()
        );
        eprintln!(
            "fastapi: {} broadcasts on one connection in {:?} (head {head})",
            passive.len(),
            started.elapsed()
        );

        // A crash and a restart on the same port: the client resumes from its cursor.
        server.kill().await;
        // The event log has one line per broadcast: its length is the counter.
        let killed_at = std::fs::read_to_string(&log)
            .expect("event log")
            .lines()
            .count() as u64;
        sleep(Duration::from_millis(300)).await;
        let server = start_feed(&log, server.addr.port()).await;
        recorder
            .wait_for("the reconnection after the restart", RESTART_LIMIT, |r| {
                r.opens() == 2
            })
            .await;
        let target = killed_at + 40;
        server
            .wait_json("/stats", "40 broadcasts after the restart", LIMIT, |s| {
                s.u64("seq") >= target
            })
            .await;
        recorder
            .wait_for(&format!("every broadcast up to {target}"), LIMIT, |r| {
                cursors(r).last().is_some_and(|&last| last >= target)
            })
            .await;
        let all = cursors(&recorder);
        assert_contiguous(&all, head + 1, "across the restart");
        assert_eq!(
            snapshots(&recorder.texts()),
            2,
            "one snapshot per connection"
        );
        assert!(
            !recorder
                .events()
                .iter()
                .any(|(_, e)| matches!(e, Event::CursorGap { .. })),
            "no gap reported"
        );
        let stats = server.get("/stats").await;
        assert_eq!(stats.u64("connections"), 1, "restarted server: {stats:?}");
        let resumed_from = cursors_before_each_attempt(&recorder)
            .last()
            .copied()
            .flatten()
            .expect("a cursor before the reconnection");
        assert_eq!(
            stats.list("cursors"),
            vec![resumed_from.to_string()],
            "resumed from the last delivered cursor"
        );

        client.close(1000, "test over").await.expect("close");
        server
            .wait_json("/stats", "the close", LIMIT, |s| s.u64("live") == 0)
            .await;
        let stats = server.get("/stats").await;
        assert_eq!(stats.list("closes"), vec!["1000"], "{stats:?}");
        eprintln!(
            "fastapi: {} broadcasts exactly once across a restart; states: {:?}",
            all.len(),
            describe_states(&recorder)
        );
    })
    .await
    .expect("test exceeded its deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_fastapi_rwscat_follows_the_feed_across_a_restart() {
    timeout(TEST_LIMIT, async {
        let dir = TempDir::new("fastapi-rwscat");
        let log = dir.join("feed.log");
        let mut server = start_feed(&log, 0).await;
        let url = server.ws_url("/feed");
        let mut rwscat = Rwscat::start(&[
            &url,
            "--cursor-field",
            "seq",
            "--resume-param",
            "cursor",
            "--count",
            "100",
            "--backoff-initial",
            "100",
            "--backoff-max",
            "1000",
            "--max-failures",
            "0",
        ]);
        rwscat.wait_stdout(40, LIMIT).await;
        server.kill().await;
        sleep(Duration::from_millis(300)).await;
        let server = start_feed(&log, server.addr.port()).await;
        let code = rwscat.wait_exit(RESTART_LIMIT).await;
        let lines = rwscat.stdout();
        let stderr = rwscat.stderr().join("\n");
        assert_eq!(code, 0, "rwscat's exit code; stderr:\n{stderr}");
        assert_eq!(lines.len(), 100, "--count 100");

        let second_snapshot = lines
            .iter()
            .rposition(|l| l.contains("\"snapshot\""))
            .expect("a snapshot");
        assert_eq!(
            snapshots(&lines),
            2,
            "two connections, two snapshots: {lines:?}"
        );
        assert_ne!(second_snapshot, 0, "{lines:?}");
        let head = snapshot_head(&lines[0]);
        let seqs: Vec<u64> = lines
            .iter()
            .filter(|l| !l.contains("\"snapshot\""))
            .map(|l| Json(l.clone()).u64("seq"))
            .collect();
        assert_contiguous(&seqs, head + 1, "rwscat's stdout");
        let resumed_from = Json(lines[second_snapshot - 1].clone()).u64("seq");
        let stats = server.get("/stats").await;
        assert_eq!(stats.u64("connections"), 1, "restarted server: {stats:?}");
        assert_eq!(stats.list("cursors"), vec![resumed_from.to_string()]);
        assert!(
            stderr.contains("reconnecting") && stderr.contains("connection lost"),
            "rwscat told about the loss on stderr:\n{stderr}"
        );
    })
    .await
    .expect("test exceeded its deadline");
}

/// The control: this server really drops a client that does not answer its pings (so the
/// 30 s run above proves the client answers them). A raw tokio-tungstenite client that
/// never reads (and so never pongs) is gone within ping interval + timeout + slack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_fastapi_the_server_drops_a_client_that_never_answers_pings() {
    timeout(TEST_LIMIT, async {
        let dir = TempDir::new("fastapi-control");
        let server = start_feed(&dir.join("feed.log"), 0).await;
        let (mut socket, _) = tokio_tungstenite::connect_async(server.ws_url("/feed"))
            .await
            .expect("connect");
        let first = timeout(LIMIT, socket.next())
            .await
            .expect("the snapshot arrives")
            .expect("a frame")
            .expect("a message");
        assert!(first.to_text().unwrap_or("").contains("snapshot"));
        let opened = Instant::now();
        // Never read again: no pong goes back.
        let stats = server
            .wait_json(
                "/stats",
                "the server dropping the silent client",
                LIMIT,
                |s| s.u64("connections") == 1 && s.u64("live") == 0,
            )
            .await;
        let after = opened.elapsed();
        assert!(
            after <= Duration::from_secs(4),
            "dropped after {after:?} (ping every 1 s, timeout 1 s): {stats:?}"
        );
        drop(socket);
        eprintln!("fastapi: a client that never pongs is dropped after {after:?}: {stats:?}");
    })
    .await
    .expect("test exceeded its deadline");
}
