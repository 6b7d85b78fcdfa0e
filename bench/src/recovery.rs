//! Recovery: (a) from a server restart to the first resumed message, against the backoff
//! delay the client chose; (b) from a blackholed connection to its detection, against the
//! heartbeat's interval + timeout.
//!
//! The server runs in-process here so that the instant its listener is back is known
//! exactly; (b) puts the fault proxy of resilient-ws-tests between client and server.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use resilient_ws::{Client, Disconnect, Event, Reason, State};
use resilient_ws_tests::{Fault, FaultProxy};
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

use crate::Scale;
use crate::clients::{BenchResult, run_trial};
use crate::report::{Table, median, ms};
use crate::servers::LocalServer;

/// Recovery may take this much beyond the backoff delay.
const RESTART_SLACK: Duration = Duration::from_millis(5);
/// Detection may take this much beyond interval + timeout.
const DETECT_SLACK: Duration = Duration::from_millis(50);
/// How long any one wait may last.
const WAIT: Duration = Duration::from_secs(30);

/// An event as the application saw it, and when.
type Seen = (Instant, Event);

/// Forwards every event, with the instant it arrived, to a channel the suite reads.
fn record(mut events: resilient_ws::Events) -> mpsc::UnboundedReceiver<Seen> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if tx.send((Instant::now(), event)).is_err() {
                break;
            }
        }
    });
    rx
}

async fn next_seen(seen: &mut mpsc::UnboundedReceiver<Seen>) -> BenchResult<Seen> {
    match tokio::time::timeout(WAIT, seen.recv()).await {
        Ok(Some(item)) => Ok(item),
        Ok(None) => Err("event stream ended".into()),
        Err(_) => Err(format!("no event for {} s", WAIT.as_secs()).into()),
    }
}

/// Waits until the session is open and `messages` messages have arrived on that connection.
async fn wait_flowing(
    seen: &mut mpsc::UnboundedReceiver<Seen>,
    messages: usize,
) -> BenchResult<u64> {
    let mut count = 0;
    loop {
        let (_, event) = next_seen(seen).await?;
        match event {
            Event::Message { cursor, .. } => {
                count += 1;
                if count >= messages {
                    return Ok(cursor.map_or(0, |cursor| cursor.0));
                }
            }
            Event::StateChanged { state, .. } if !matches!(state, State::Open) => count = 0,
            _ => {}
        }
    }
}

/// One restart's figures.
struct Restart {
    /// Backoff delay of the attempt that got through (its `reconnecting` event's; due at the
    /// event's `retry_at`).
    delay: Duration,
    /// Listener back → first resumed message.
    recovery: Duration,
    /// First resumed message − max(listener back, the retry's scheduled time).
    overhead: Duration,
    /// Cursors skipped between the last message before and the first after.
    lost: u64,
}

/// The stability window of the restart trials' client: short, so the trials stay short.
const STABLE: Duration = Duration::from_millis(300);

async fn restart_trials(
    downs: Vec<Duration>,
    repeats: usize,
) -> BenchResult<Vec<(Duration, Vec<Restart>)>> {
    let mut server = LocalServer::start(0)?;
    let port = server.port;
    let url = format!("ws://127.0.0.1:{port}/feed?every_us=2000");
    let (client, events) = Client::builder(url)
        .cursor_field("seq")
        .resume_query("cursor")
        .max_failures(None)
        .stability_window(STABLE)
        .connect()?;
    // The client's clock starts inside `connect()`: this is its origin to within µs.
    let origin = Instant::now();
    let mut seen = record(events);
    let mut results = Vec::new();
    for down in downs {
        let mut trials = Vec::new();
        for _ in 0..repeats {
            let mut last_cursor = wait_flowing(&mut seen, 50).await?;
            // Healthy before each restart: only a connection that outlived the stability
            // window resets the backoff, so every trial starts from the first window.
            tokio::time::sleep(STABLE).await;
            while let Ok((_, event)) = seen.try_recv() {
                if let Event::Message {
                    cursor: Some(cursor),
                    ..
                } = event
                {
                    last_cursor = cursor.0;
                }
            }
            server.stop().await;
            tokio::time::sleep(down).await;
            server = LocalServer::start(port)?;
            let listening = Instant::now();
            let mut reconnecting: Option<(Instant, Duration)> = None;
            let mut attempt_delay: Option<(Instant, Duration)> = None;
            let mut reopened = false;
            let (resumed_at, first_cursor) = loop {
                let (at, event) = next_seen(&mut seen).await?;
                match event {
                    Event::Message { cursor, .. } if reopened => {
                        break (at, cursor.map_or(0, |cursor| cursor.0));
                    }
                    Event::Message { cursor, .. } => {
                        last_cursor = cursor.map_or(last_cursor, |cursor| cursor.0);
                    }
                    Event::StateChanged { state, .. } => match state {
                        State::Reconnecting {
                            delay,
                            retry_at: Some(retry_at),
                            ..
                        } => reconnecting = Some((origin + retry_at.since_origin(), delay)),
                        State::Reconnecting { .. } => {}
                        State::Connecting { .. } => attempt_delay = reconnecting,
                        State::Open => reopened = true,
                        other => return Err(format!("session went {other}").into()),
                    },
                    _ => {}
                }
            };
            let (scheduled, delay) = attempt_delay.ok_or("reopened without a backoff")?;
            trials.push(Restart {
                delay,
                recovery: resumed_at.saturating_duration_since(listening),
                overhead: resumed_at.saturating_duration_since(listening.max(scheduled)),
                lost: first_cursor.saturating_sub(last_cursor + 1),
            });
        }
        results.push((down, trials));
    }
    drop(client);
    server.stop().await;
    Ok(results)
}

/// One blackhole's figures.
struct Blackhole {
    /// Blackhole set → detection.
    from_fault: Duration,
    /// Last inbound message → detection.
    from_last: Duration,
}

async fn blackhole_trials(
    heartbeats: Vec<(Duration, Duration)>,
    repeats: usize,
) -> BenchResult<Vec<((Duration, Duration), Vec<Blackhole>)>> {
    let server = LocalServer::start(0)?;
    let proxy = FaultProxy::start(SocketAddr::from((Ipv4Addr::LOCALHOST, server.port))).await?;
    let url = format!("ws://{}/feed?every_us=10000", proxy.addr());
    let mut results = Vec::new();
    for (interval, timeout) in heartbeats {
        let (client, events) = Client::builder(url.clone())
            .heartbeat(interval, timeout)
            .max_failures(None)
            .connect()?;
        let mut seen = record(events);
        let mut trials = Vec::new();
        for _ in 0..repeats {
            wait_flowing(&mut seen, 5).await?;
            let mut last = Instant::now();
            proxy.set_fault(Fault::Blackhole);
            let blackholed = Instant::now();
            let detected = loop {
                let (at, event) = next_seen(&mut seen).await?;
                match event {
                    Event::Message { .. } => last = at,
                    Event::StateChanged {
                        state: State::Reconnecting { .. },
                        reason: Reason::Disconnected(Disconnect::HeartbeatTimeout),
                    } => break at,
                    Event::StateChanged { state, reason } => {
                        return Err(
                            format!("session went {state} ({reason}) while blackholed").into()
                        );
                    }
                    _ => {}
                }
            };
            proxy.set_fault(Fault::None);
            trials.push(Blackhole {
                from_fault: detected.saturating_duration_since(blackholed),
                from_last: detected.saturating_duration_since(last),
            });
        }
        drop(client);
        results.push(((interval, timeout), trials));
    }
    proxy.shutdown().await;
    server.stop().await;
    Ok(results)
}

fn median_of(durations: impl Iterator<Item = Duration>) -> Duration {
    let secs: Vec<f64> = durations.map(|d| d.as_secs_f64()).collect();
    Duration::from_secs_f64(median(&secs).max(0.0))
}

fn max_of(durations: impl Iterator<Item = Duration>) -> Duration {
    durations.max().unwrap_or_default()
}

/// Suite 5 (a) and (b).
pub(crate) fn recovery(runtime: &Runtime, scale: &Scale) -> Vec<Table> {
    let mut restart = Table::new(
        "5a. Recovery from a server restart",
        "The server (in-process, sending `{\"seq\":N}` every 2 ms) closes its listener and every \
         connection, stays down, then listens again; the client (default backoff: first \
         window 250 ms, doubling; stability window 300 ms, outlived before every restart, so \
         each trial starts healthy) resumes with `?cursor=`. Recovery = listener back → first \
         resumed message; the backoff delay is the one chosen for the attempt that got \
         through; overhead = first resumed message − max(listener back, that attempt's \
         scheduled time: its `retry_at`): timer resolution (1 ms) and wake-up, connect, \
         handshake, first message, delivery. Target: recovery ≤ backoff delay + 5 ms.",
        &[
            "server down",
            "trials",
            "backoff delay (median)",
            "recovery (median / max)",
            "overhead (median / max)",
            "within delay + 5 ms",
            "lost",
        ],
    );
    let downs = scale.restart_downs.clone();
    match run_trial(runtime, restart_trials(downs, scale.restart_repeats)) {
        Ok(results) => {
            for (down, trials) in results {
                let within = trials
                    .iter()
                    .filter(|t| t.recovery <= t.delay + RESTART_SLACK)
                    .count();
                restart.row(vec![
                    ms(down),
                    trials.len().to_string(),
                    ms(median_of(trials.iter().map(|t| t.delay))),
                    format!(
                        "{} / {}",
                        ms(median_of(trials.iter().map(|t| t.recovery))),
                        ms(max_of(trials.iter().map(|t| t.recovery)))
                    ),
                    format!(
                        "{} / {}",
                        ms(median_of(trials.iter().map(|t| t.overhead))),
                        ms(max_of(trials.iter().map(|t| t.overhead)))
                    ),
                    format!(
                        "{within}/{}{}",
                        trials.len(),
                        if within == trials.len() {
                            ""
                        } else {
                            " (missed)"
                        }
                    ),
                    trials.iter().map(|t| t.lost).sum::<u64>().to_string(),
                ]);
            }
        }
        Err(error) => restart.note(format!("not measured: {error}")),
    }

    let mut blackhole = Table::new(
        "5b. Detecting a blackholed connection",
        "The fault proxy (resilient-ws-tests) stops forwarding in both directions but keeps \
         both sockets open; the server was sending a message every 10 ms. Detection = the \
         `reconnecting` event whose reason is the heartbeat timeout. Target: within \
         interval + timeout + 50 ms of the last inbound message.",
        &[
            "heartbeat interval + timeout",
            "trials",
            "after blackhole (median / max)",
            "after last message (median / max)",
            "excess (max)",
            "within +50 ms",
        ],
    );
    let heartbeats = scale.heartbeats.clone();
    match run_trial(
        runtime,
        blackhole_trials(heartbeats, scale.blackhole_repeats),
    ) {
        Ok(results) => {
            for ((interval, timeout), trials) in results {
                let budget = interval + timeout;
                let within = trials
                    .iter()
                    .filter(|t| t.from_last <= budget + DETECT_SLACK)
                    .count();
                let worst = max_of(trials.iter().map(|t| t.from_last));
                blackhole.row(vec![
                    format!("{} + {}", ms(interval), ms(timeout)),
                    trials.len().to_string(),
                    format!(
                        "{} / {}",
                        ms(median_of(trials.iter().map(|t| t.from_fault))),
                        ms(max_of(trials.iter().map(|t| t.from_fault)))
                    ),
                    format!(
                        "{} / {}",
                        ms(median_of(trials.iter().map(|t| t.from_last))),
                        ms(worst)
                    ),
                    ms(worst.saturating_sub(budget)),
                    format!(
                        "{within}/{}{}",
                        trials.len(),
                        if within == trials.len() {
                            ""
                        } else {
                            " (missed)"
                        }
                    ),
                ]);
            }
        }
        Err(error) => blackhole.note(format!("not measured: {error}")),
    }
    vec![restart, blackhole]
}
