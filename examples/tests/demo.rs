//! The demo on a compressed schedule: every fault recovers and delivery stays exact.

use std::time::Duration;

use resilient_ws_examples::demo::{self, DemoConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_recovers_with_exactly_once_delivery() {
    let config = DemoConfig {
        rate: 300,
        phase: Duration::from_millis(1200),
        heartbeat: (Duration::from_millis(200), Duration::from_millis(200)),
        restart_down: Duration::from_millis(400),
        progress: false,
    };
    let report = tokio::time::timeout(Duration::from_secs(30), demo::run(config))
        .await
        .expect("the demo finishes")
        .expect("the demo runs");
    assert!(report.passed(), "{report:?}");
    assert!(
        report.reconnects >= 4,
        "one reconnect per fault at least: {report:?}"
    );
    for (kind, recovery) in &report.recoveries {
        let recovery = recovery.unwrap_or_else(|| panic!("{kind:?} never recovered: {report:?}"));
        assert!(
            recovery < Duration::from_secs(3),
            "{kind:?} took {recovery:?}"
        );
    }
}
