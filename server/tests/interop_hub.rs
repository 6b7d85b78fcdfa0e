//! Interop: a Python `websockets` client (tests/interop/hub_resume_client.py) reads from a
//! hub, disconnects and resumes with `?cursor=N&epoch=E` several times while the hub
//! publishes, and checks every message arrives exactly once.
//!
//! Needs the interop venv: `INTEROP_PYTHON` (exported by scripts/test-interop.sh) is the
//! Python that has `websockets`. Named `interop_*` so `-- --skip interop_` leaves it out.

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use resilient_ws_server::{Hub, HubConfig};
use support::Server;
use tokio::process::Command;
use tokio::time::{sleep, timeout};

const ROUNDS: u64 = 5;
const COUNT: u64 = 200;

fn interop_python() -> PathBuf {
    match std::env::var_os("INTEROP_PYTHON") {
        Some(python) if !python.is_empty() => PathBuf::from(python),
        _ => panic!(
            "INTEROP_PYTHON is not set: this suite drives the Python websockets client that \
             scripts/test-interop.sh installs; run ./scripts/test-interop.sh"
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interop_hub_python_client_resumes_exactly_once() {
    let python = interop_python();
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/interop/hub_resume_client.py");
    let hub = Hub::new(HubConfig::default());
    let server = Server::start(&hub).await;

    // About 1000 messages a second, so each reconnect has missed some.
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = tokio::spawn({
        let (hub, stop) = (hub.clone(), Arc::clone(&stop));
        async move {
            for n in 0..600_000u64 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                hub.publish(&n).expect("publishes");
                sleep(Duration::from_millis(1)).await;
            }
        }
    });

    let child = Command::new(python)
        .arg(script)
        .arg(server.url(""))
        .args([
            "--count",
            &COUNT.to_string(),
            "--rounds",
            &ROUNDS.to_string(),
        ])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("starts the Python client");
    let output = timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("the client finishes within 120 s")
        .expect("the client runs");
    stop.store(true, Ordering::Relaxed);
    publisher.await.expect("the publisher ends");

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "client failed:\n{stdout}\n{stderr}"
    );
    let summary = format!(
        "hub resume ok: {ROUNDS} rounds, {} messages",
        ROUNDS * COUNT
    );
    assert!(stdout.contains(&summary), "{stdout}");
    let stats = hub.stats();
    assert_eq!(
        (stats.fresh, stats.resumed, stats.discontinuities),
        (1, ROUNDS - 1, 0)
    );
    assert!(stats.replayed > 0, "reconnects replayed what they missed");
}
