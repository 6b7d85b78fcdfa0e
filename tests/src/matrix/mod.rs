//! Support for fault matrices: every fault crossed with every traffic pattern, one cell each,
//! each cell run on its own runtime and servers and judged against the whole contract.
//!
//! - [`run_bounded`] runs the cells a few at a time, each through [`in_own_runtime`], which
//!   turns a deadline overrun or a panic into a failure naming the cell;
//! - [`Table`] collects the outcomes and prints them as a matrix (rows faults, columns
//!   traffic), with a summary line and the failures with their messages;
//! - [`SendLedger`] keeps what the application's `send` accepted and judges what reached the
//!   server, came back as unsent, or was lost (and where);
//! - [`Sampler`] reads a client's state and counters every few milliseconds, so that a test
//!   can tell what the client showed while the application was not reading its events;
//! - [`until`] is a bounded wait that returns an error instead of panicking.

mod ledger;
mod report;
mod runner;
mod sampler;

pub use ledger::{SendLedger, SendVerdict, Wire};
pub use report::{CellResult, Outcome, Table};
pub use runner::{in_own_runtime, run_bounded};
pub use sampler::{Sample, Sampler};

use std::time::Duration;

use tokio::time::{Instant, sleep};

/// How often [`until`] looks again.
const POLL: Duration = Duration::from_millis(5);

/// Polls `done` until it holds and returns how long that took, or an error naming `what`
/// after `limit`.
pub async fn until(
    what: &str,
    limit: Duration,
    mut done: impl FnMut() -> bool,
) -> Result<Duration, String> {
    let started = Instant::now();
    loop {
        if done() {
            return Ok(started.elapsed());
        }
        if started.elapsed() >= limit {
            return Err(format!("timed out after {limit:?} waiting for {what}"));
        }
        sleep(POLL).await;
    }
}
