//! The demo: a client keeps a feed exactly-once through resets, a half-open connection,
//! refusals and a server restart, all on an embedded local server. About 15 seconds.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use resilient_ws_examples::demo::{self, DemoConfig, DemoReport};

#[tokio::main]
async fn main() -> ExitCode {
    let config = DemoConfig::default();
    println!(
        "resilient-ws demo: a feed of {} msg/s through {} faults, one every {} s\n",
        config.rate,
        demo::FaultKind::SCHEDULE.len(),
        config.phase.as_secs()
    );
    let report = match demo::run(config.clone()).await {
        Ok(report) => report,
        Err(error) => {
            eprintln!("demo could not run: {error}");
            return ExitCode::FAILURE;
        }
    };
    print_summary(&report, &config);
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn print_summary(report: &DemoReport, config: &DemoConfig) {
    let delivery = &report.delivery;
    println!("\nsummary after {:.1} s", report.elapsed.as_secs_f64());
    println!("  messages in the feed     {}", report.total);
    println!("  delivered                {}", delivery.delivered);
    println!(
        "  lost                     {}",
        delivery.lost + report.total.saturating_sub(delivery.delivered)
    );
    println!("  duplicated               {}", delivery.duplicated);
    println!("  reconnects               {}", report.reconnects);
    println!("  most sockets at once     {}", report.max_live_sockets);
    println!("  recovery after each fault (fault to first message on a new connection):");
    for (kind, recovery) in &report.recoveries {
        let time = recovery.map_or_else(
            || "not recovered".to_owned(),
            |d| format!("{} ms", d.as_millis()),
        );
        println!("    {:<52} {time:>10}", kind.describe(config));
    }
    if report.passed() {
        println!("\nverdict: OK, every message exactly once, in order, one socket at a time");
    } else {
        println!("\nverdict: FAILED");
    }
}
