//! Reconnect storm: thousands of clients lose their server at once; how evenly do they come
//! back?
//!
//! The server runs in a child process that logs the time of every TCP accept; it is killed
//! (SIGKILL: every socket closes at once, as in a crash) and started again on the same port.
//! Attempts are counted per 100 ms window as the clients scheduled them, as they made them,
//! and as the server accepted them; the busiest window is compared with two schedules
//! computed from the backoff policy: an even spread of the same clients over their backoff
//! windows, and the schedule without jitter, where every client waits whole windows.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use resilient_ws::{Client, Event, State};
use resilient_ws_core::Timestamp;
use tokio::runtime::Runtime;
use tokio::sync::Notify;

use crate::Scale;
use crate::clients::{BenchResult, runtime};
use crate::report::{Table, thousands};
use crate::servers::{ServerProcess, unix_micros};
use crate::system::scale_to_fd_limit;

/// The window attempts are counted in.
const WINDOW_MS: f64 = 100.0;
/// Target: the busiest window holds at most this many times the even spread.
const PEAK_TARGET: f64 = 2.0;
/// Clients started at once while setting up.
const CONNECT_BATCH: usize = 500;
/// resilient-ws's default backoff: first window and cap (the storm uses the defaults).
const BACKOFF_INITIAL_MS: f64 = 250.0;
const BACKOFF_MAX_MS: f64 = 30_000.0;

#[derive(Clone, Copy, Debug)]
enum Seen {
    /// A backoff wait began: the next attempt's number, and when it is due on the client's
    /// clock (its origin is in `Log::origins`).
    Reconnecting {
        attempt: u32,
        delay: Duration,
        retry_at: Option<Timestamp>,
    },
    Connecting {
        attempt: u32,
    },
    Open,
}

/// Every client's events that matter here, with when they arrived.
#[derive(Default)]
struct Log {
    entries: Mutex<Vec<(usize, Instant, Seen)>>,
    /// Each client's clock origin, to within microseconds: taken as `connect()` returns.
    origins: Mutex<Vec<Instant>>,
    opened: AtomicUsize,
    changed: Notify,
}

impl Log {
    fn push(&self, client: usize, seen: Seen) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((client, Instant::now(), seen));
        if matches!(seen, Seen::Open) {
            self.opened.fetch_add(1, Ordering::AcqRel);
            self.changed.notify_waiters();
        }
    }

    fn since(&self, from: Instant) -> Vec<(usize, Instant, Seen)> {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|(_, at, _)| *at >= from)
            .copied()
            .collect()
    }

    /// Waits until `target` opens have been seen in all, or `limit` passes.
    async fn wait_opened(&self, target: usize, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while self.opened.load(Ordering::Acquire) < target {
            if Instant::now() >= deadline {
                return false;
            }
            let _ = tokio::time::timeout(Duration::from_millis(50), self.changed.notified()).await;
        }
        true
    }
}

/// The busiest `WINDOW_MS` window (sliding) among sorted times in ms.
fn peak(sorted: &[f64]) -> usize {
    let mut best = 0;
    let mut start = 0;
    for (end, time) in sorted.iter().enumerate() {
        while sorted[start] <= time - WINDOW_MS {
            start += 1;
        }
        best = best.max(end + 1 - start);
    }
    best
}

/// The backoff window of attempt `attempt` (1 = the first retry after a healthy connection).
fn window_ms(attempt: u32) -> f64 {
    (BACKOFF_INITIAL_MS * 2f64.powi(attempt.saturating_sub(1).min(30) as i32)).min(BACKOFF_MAX_MS)
}

/// Per-window counts from 0 for a line of the report.
fn histogram(times: &[f64]) -> String {
    let last = times.iter().copied().fold(0.0, f64::max);
    let bins = (last / WINDOW_MS).floor() as usize + 1;
    let mut counts = vec![0usize; bins.min(60)];
    for time in times {
        let bin = (time / WINDOW_MS).floor().max(0.0) as usize;
        if let Some(count) = counts.get_mut(bin) {
            *count += 1;
        }
    }
    counts
        .iter()
        .map(|count| count.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

struct Scenario {
    label: String,
    down: Duration,
}

/// Suite 6.
pub(crate) fn storm(wanted: usize, scale: &Scale) -> Table {
    let (clients, scaled) = scale_to_fd_limit(wanted);
    let title = format!("6. Reconnect storm, {} clients", thousands(clients as f64));
    let title = title.as_str();
    let mut table = Table::new(
        title,
        format!(
            "{} clients (heartbeat off, 1 KiB buffers, default backoff: full jitter over 250 ms, \
             doubling), all connected and healthy; the server process is killed (SIGKILL) and \
             started again on the same port. Busiest {WINDOW_MS:.0} ms window (sliding) of: the \
             first retries as the clients scheduled them (`retry_at` of their `reconnecting` \
             event: the backoff policy itself, whatever the machine's speed), the attempts \
             they made (`connecting` events), and the TCP accepts at the server. Compared with \
             the even spread (each client's attempt uniform over its backoff window, summed) \
             and with the no-jitter schedule computed from the same instants of loss (every \
             client waits whole windows; if all lost the server at one instant, one window \
             would hold them all). Target: peak ≤ {PEAK_TARGET} × even spread.",
            thousands(clients as f64)
        ),
        &[
            "scenario",
            "counted at",
            "attempts",
            "peak / 100 ms",
            "even spread / 100 ms",
            "peak ÷ even",
            "no-jitter peak",
            "no-jitter ÷ even",
        ],
    );
    table.notes.extend(scaled);
    let scenarios = vec![
        Scenario {
            label: "restart at once".into(),
            down: Duration::ZERO,
        },
        Scenario {
            label: format!("restart after {} ms down", scale.storm_down.as_millis()),
            down: scale.storm_down,
        },
    ];
    if let Err(error) = run(clients, &scenarios, &mut table) {
        table.note(format!("not completed: {error}"));
    }
    table
}

fn run(clients: usize, scenarios: &[Scenario], table: &mut Table) -> BenchResult<()> {
    let mut server = ServerProcess::spawn(0, true)?;
    let port = server.port;
    let url = server.url("/idle?hello=1");
    let runtime: Runtime = runtime()?;
    let log = Arc::new(Log::default());
    let handles = runtime.block_on(start_clients(clients, &url, &log))?;
    // Every client has had its hello message, so every connection counts as healthy.
    std::thread::sleep(Duration::from_millis(500));
    let mut result = Ok(());
    for scenario in scenarios {
        let opened_before = log.opened.load(Ordering::Acquire);
        let lost_at = Instant::now();
        let lost_wall = unix_micros(SystemTime::now());
        server.kill();
        std::thread::sleep(scenario.down);
        server = ServerProcess::spawn(port, true)?;
        let back_ms = lost_at.elapsed().as_secs_f64() * 1e3;
        let all_back =
            runtime.block_on(log.wait_opened(opened_before + clients, Duration::from_secs(90)));
        let reconnected_ms = lost_at.elapsed().as_secs_f64() * 1e3;
        // Let the hello messages arrive, so the next scenario starts from healthy connections.
        std::thread::sleep(Duration::from_millis(500));
        let accepts = match server.accept_times() {
            Ok(times) => times,
            Err(error) => {
                result = Err(error.into());
                break;
            }
        };
        let entries = log.since(lost_at);
        let origins = log
            .origins
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        report(
            table, scenario, clients, back_ms, &entries, &origins, lost_at, &accepts, lost_wall,
        );
        table.note(format!(
            "{}: {} reconnected {:.0} ms after the kill",
            scenario.label,
            if all_back {
                "all clients"
            } else {
                "NOT all clients"
            },
            reconnected_ms
        ));
    }
    runtime.block_on(async move { drop(handles) });
    runtime.shutdown_timeout(Duration::from_secs(2));
    server.kill();
    result
}

async fn start_clients(clients: usize, url: &str, log: &Arc<Log>) -> BenchResult<Vec<Client>> {
    let mut handles = Vec::with_capacity(clients);
    for batch_start in (0..clients).step_by(CONNECT_BATCH) {
        let batch_end = (batch_start + CONNECT_BATCH).min(clients);
        for index in batch_start..batch_end {
            let (client, mut events) = Client::builder(url)
                .no_heartbeat()
                .io_buffer_size(1024)
                .event_buffer(16)
                .max_failures(None)
                .connect()?;
            log.origins
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Instant::now());
            handles.push(client);
            let log = Arc::clone(log);
            tokio::spawn(async move {
                while let Some(event) = events.recv().await {
                    match event {
                        Event::StateChanged {
                            state: State::Connecting { attempt },
                            ..
                        } => log.push(index, Seen::Connecting { attempt }),
                        Event::StateChanged {
                            state: State::Open, ..
                        } => log.push(index, Seen::Open),
                        Event::StateChanged {
                            state:
                                State::Reconnecting {
                                    attempt,
                                    retry_at,
                                    delay,
                                },
                            ..
                        } => log.push(
                            index,
                            Seen::Reconnecting {
                                attempt,
                                delay,
                                retry_at,
                            },
                        ),
                        _ => {}
                    }
                }
            });
        }
        if !log.wait_opened(batch_end, Duration::from_secs(60)).await {
            return Err(format!(
                "only {} of {batch_end} clients connected",
                log.opened.load(Ordering::Acquire)
            )
            .into());
        }
    }
    Ok(handles)
}

/// Sorted offsets in ms from `zero`.
fn offsets(times: impl Iterator<Item = Instant>, zero: Instant) -> Vec<f64> {
    let mut offsets: Vec<f64> = times
        .map(|at| at.saturating_duration_since(zero).as_secs_f64() * 1e3)
        .collect();
    offsets.sort_by(f64::total_cmp);
    offsets
}

/// One client's figures in one scenario.
#[derive(Clone, Copy, Default)]
struct Story {
    /// When it decided to retry (it lost the connection), on the shared clock.
    decided: Option<Instant>,
    /// When its first retry was due, and that retry's backoff window.
    first_retry: Option<(Instant, f64)>,
    last_attempt: Option<u32>,
    /// The attempt that got through.
    through: Option<u32>,
}

#[allow(clippy::too_many_arguments)]
fn report(
    table: &mut Table,
    scenario: &Scenario,
    clients: usize,
    back_ms: f64,
    entries: &[(usize, Instant, Seen)],
    origins: &[Instant],
    lost_at: Instant,
    accepts: &[u64],
    lost_wall: u64,
) {
    let mut stories = vec![Story::default(); clients];
    for (client, _, seen) in entries {
        let story = &mut stories[*client];
        match *seen {
            Seen::Reconnecting {
                attempt,
                delay,
                retry_at: Some(retry_at),
            } if story.first_retry.is_none() => {
                let due = origins[*client] + retry_at.since_origin();
                story.decided = Some(due - delay);
                story.first_retry = Some((due, window_ms(attempt)));
            }
            Seen::Reconnecting { .. } => {}
            Seen::Connecting { attempt } => story.last_attempt = Some(attempt),
            Seen::Open => {
                if story.through.is_none() {
                    story.through = story.last_attempt;
                }
            }
        }
    }
    let scheduled = offsets(
        stories
            .iter()
            .filter_map(|story| story.first_retry.map(|(due, _)| due)),
        lost_at,
    );
    let decided = offsets(stories.iter().filter_map(|story| story.decided), lost_at);
    let attempts = offsets(
        entries
            .iter()
            .filter(|(_, _, seen)| matches!(seen, Seen::Connecting { .. }))
            .map(|(_, at, _)| *at),
        lost_at,
    );
    let mut accepted: Vec<f64> = accepts
        .iter()
        .map(|time| (*time as f64 - lost_wall as f64) / 1e3)
        .collect();
    accepted.sort_by(f64::total_cmp);
    // The even spreads: every client's attempt uniform over its backoff window, summed.
    let even_first: f64 = stories
        .iter()
        .filter_map(|story| story.first_retry)
        .map(|(_, window)| WINDOW_MS / window)
        .sum();
    let even_through: f64 = stories
        .iter()
        .filter_map(|story| story.through)
        .map(|attempt| WINDOW_MS / window_ms(attempt))
        .sum();
    // Without jitter, from the same instants of loss every client waits whole windows: its
    // first retry, and its first retry at or after the server is back.
    let no_jitter = |until_back: bool| -> Vec<f64> {
        let mut times: Vec<f64> = decided
            .iter()
            .map(|decided| {
                let (mut at, mut attempt) = (*decided, 1);
                loop {
                    at += window_ms(attempt);
                    if !until_back || at >= back_ms {
                        return at;
                    }
                    attempt += 1;
                }
            })
            .collect();
        times.sort_by(f64::total_cmp);
        times
    };
    let (no_jitter_first, no_jitter_back) = (no_jitter(false), no_jitter(true));
    let mut rows: Vec<(&str, &[f64], f64, &[f64])> = vec![(
        "first retries as scheduled",
        &scheduled,
        even_first,
        &no_jitter_first,
    )];
    if scenario.down.is_zero() {
        rows.push((
            "`connecting` events",
            &attempts,
            even_first,
            &no_jitter_first,
        ));
    }
    rows.push(("server accepts", &accepted, even_through, &no_jitter_back));
    for (source, times, even, no_jitter) in rows {
        let busiest = peak(times) as f64;
        let value = busiest / even;
        let no_jitter_peak = peak(no_jitter) as f64;
        table.row(vec![
            scenario.label.clone(),
            source.into(),
            thousands(times.len() as f64),
            thousands(busiest),
            thousands(even),
            crate::report::ratio(value, value <= PEAK_TARGET),
            thousands(no_jitter_peak),
            format!("{:.2}", no_jitter_peak / even),
        ]);
    }
    let mut through_on = [0usize; 4];
    for attempt in stories.iter().filter_map(|story| story.through) {
        through_on[(attempt as usize).clamp(1, 4) - 1] += 1;
    }
    if let (Some(first), Some(last)) = (decided.first(), decided.last()) {
        if last - first > WINDOW_MS {
            table.note(format!(
                "{}: the clients took {:.0} ms just to notice the loss ({} cores for the \
                 clients, the dying server and the new one), longer than the first backoff \
                 window: here the machine spread the storm before the jitter could, so every \
                 peak is below even spread, the no-jitter schedule's too; the smaller run \
                 shows the policy itself",
                scenario.label,
                last - first,
                std::thread::available_parallelism().map_or(1, usize::from)
            ));
        }
    }
    let spread = match (decided.first(), decided.last()) {
        (Some(first), Some(last)) => format!("{first:.0}-{last:.0} ms"),
        _ => "-".into(),
    };
    table.note(format!(
        "{}: losses detected {spread} after the kill; server listening again after \
         {back_ms:.0} ms; server accepts per 100 ms: {}; client attempts (refused ones \
         included): {}; through on attempt 1/2/3/4+: {}/{}/{}/{}",
        scenario.label,
        histogram(&accepted),
        thousands(attempts.len() as f64),
        through_on[0],
        through_on[1],
        through_on[2],
        through_on[3],
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules() {
        assert_eq!(peak(&[0.0, 10.0, 50.0, 99.0, 100.0, 150.0, 300.0]), 4);
        assert_eq!(peak(&[0.0, 100.0, 200.0]), 1);
        assert_eq!(window_ms(3), 1_000.0);
    }
}
