//! The fault matrix of issue 10 for the native client: every fault crossed with every
//! traffic pattern, each cell on its own runtime, feed server and fault proxy on 127.0.0.1,
//! judged against the whole contract (see `cell.rs`). Prints the matrix, a summary line and
//! every failing cell with what broke.
//!
//! `FAULT_MATRIX_ONLY='reset;close 1012'` runs only the cells whose `fault x traffic` name
//! contains one of the parts; `FAULT_MATRIX_JOBS=N` runs N cells at once (default 3).

mod cell;
mod fault;
mod timing;
mod traffic;

use std::time::{Duration, Instant};

use resilient_ws_tests::matrix::{CellResult, Outcome, Table, in_own_runtime, run_bounded};

use fault::Fault;
use traffic::Traffic;

/// Cells run at once by default: they mostly wait on timers, so more than the two cores.
const DEFAULT_JOBS: usize = 3;

#[test]
fn fault_matrix() {
    init_tracing();
    let only: Vec<String> = std::env::var("FAULT_MATRIX_ONLY")
        .map(|only| only.split(';').map(|part| part.trim().to_owned()).collect())
        .unwrap_or_default();
    let jobs = std::env::var("FAULT_MATRIX_JOBS")
        .ok()
        .and_then(|jobs| jobs.parse().ok())
        .unwrap_or(DEFAULT_JOBS);
    let cells: Vec<(usize, Fault, Traffic)> = Fault::ALL
        .into_iter()
        .flat_map(|fault| {
            Traffic::ALL
                .into_iter()
                .map(move |traffic| (fault, traffic))
        })
        .enumerate()
        .map(|(index, (fault, traffic))| (index, fault, traffic))
        .filter(|(_, fault, traffic)| {
            let name = format!("{} x {}", fault.name(), traffic.name());
            only.is_empty() || only.iter().any(|part| name.contains(part.as_str()))
        })
        .collect();
    let started = Instant::now();
    let results = run_bounded(&cells, jobs, |&(index, fault, traffic)| {
        let began = Instant::now();
        let outcome = in_own_runtime(timing::CELL_LIMIT, || cell::run(index, fault, traffic));
        let result = CellResult {
            row: fault.name(),
            column: traffic.name().to_owned(),
            outcome: match outcome {
                Ok(measured) => Outcome::Passed(measured),
                Err(why) => Outcome::Failed(why),
            },
            took: began.elapsed(),
        };
        eprintln!(
            "{} {} x {} ({:.1?})",
            if matches!(result.outcome, Outcome::Passed(_)) {
                "pass"
            } else {
                "FAIL"
            },
            result.row,
            result.column,
            result.took
        );
        result
    });
    let mut table = Table::new(
        Fault::ALL.iter().map(|fault| fault.name()).collect(),
        Traffic::ALL
            .iter()
            .map(|traffic| traffic.name().to_owned())
            .collect(),
    );
    for result in results {
        table.record(result);
    }
    let took = started.elapsed();
    println!("\n{}", table.details());
    println!("{}", table.failure_report());
    println!("{}", table.render());
    println!(
        "{} in {:.0?} ({jobs} at once)",
        table.summary(),
        Duration::from_secs(took.as_secs())
    );
    let failures: Vec<String> = table
        .failures()
        .iter()
        .map(|cell| format!("{} x {}", cell.row, cell.column))
        .collect();
    assert!(
        failures.is_empty(),
        "{}; failing cells: {}",
        table.summary(),
        failures.join(", ")
    );
}

/// Logs to the test's output when `RUST_LOG` is set (e.g. `RUST_LOG=resilient_ws=debug`).
fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}
