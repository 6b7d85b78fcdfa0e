//! The demo: the native client against the feed server while faults are injected on a
//! schedule, with a verified summary at the end. The `demo` binary runs it with the
//! defaults; the tests run a shorter schedule.

mod faults;
mod verify;

use std::io::{IsTerminal, Write};
use std::time::Duration;

use resilient_ws::{Client, Event, State};
use tokio::time::{Instant, sleep_until};

pub use faults::FaultKind;
pub use verify::DeliveryCheck;

use crate::feed_server::{FeedConfig, FeedServer, FeedServerError};

/// How the demo runs.
#[derive(Clone, Debug)]
pub struct DemoConfig {
    /// Feed messages per second.
    pub rate: u32,
    /// Time between faults; the run lasts `(faults + 1) * phase`.
    pub phase: Duration,
    /// Heartbeat interval and timeout of the client.
    pub heartbeat: (Duration, Duration),
    /// How long the server stays down on restart.
    pub restart_down: Duration,
    /// Print progress while running.
    pub progress: bool,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            rate: 200,
            phase: Duration::from_secs(3),
            heartbeat: (Duration::from_millis(500), Duration::from_millis(500)),
            restart_down: Duration::from_millis(1500),
            progress: true,
        }
    }
}

/// What the demo measured.
#[derive(Clone, Debug)]
pub struct DemoReport {
    /// Messages the feed held.
    pub total: u64,
    /// Delivery as the application saw it.
    pub delivery: DeliveryCheck,
    /// Times the client reconnected.
    pub reconnects: u64,
    /// Most client sockets the server saw open at once.
    pub max_live_sockets: u64,
    /// Time from each fault to the first message on a fresh connection.
    pub recoveries: Vec<(FaultKind, Option<Duration>)>,
    /// How long the run took.
    pub elapsed: Duration,
}

impl DemoReport {
    /// Every message exactly once, in order, on one socket at a time.
    pub fn passed(&self) -> bool {
        self.delivery.is_exact(self.total) && self.max_live_sockets <= 1
    }
}

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The feed server failed.
    #[error("feed server: {0}")]
    Server(#[from] FeedServerError),
    /// The client could not start.
    #[error("client: {0}")]
    Client(#[from] resilient_ws::BuildError),
}

/// Runs the demo and reports what it measured.
pub async fn run(config: DemoConfig) -> Result<DemoReport, DemoError> {
    let schedule = FaultKind::SCHEDULE;
    let run_for = config.phase * u32::try_from(schedule.len() + 1).unwrap_or(u32::MAX);
    let total = u64::from(config.rate) * run_for.as_secs().max(1);
    let server = FeedServer::start(FeedConfig {
        rate: config.rate,
        total: Some(total),
        ..FeedConfig::default()
    })
    .await?;
    let (interval, timeout) = config.heartbeat;
    let (client, mut events) = Client::builder(server.url())
        .cursor_field("seq")
        .resume_query("cursor")
        .heartbeat(interval, timeout)
        .backoff(Duration::from_millis(100), Duration::from_secs(2))
        .connect_timeout(Duration::from_secs(1))
        .stability_window(Duration::from_millis(500))
        .max_failures(None)
        .connect()?;

    let started = Instant::now();
    // A run that cannot finish (a bug) still ends: everything has a deadline.
    let deadline = started + run_for * 3;
    let mut delivery = DeliveryCheck::default();
    let mut recoveries: Vec<(FaultKind, Option<Duration>)> = Vec::new();
    let mut waiting_recovery: Option<(Instant, bool)> = None;
    let mut next_fault = 0;
    let mut progress = Progress::new(config.progress, started);
    while delivery.delivered < total && Instant::now() < deadline {
        let fault_at = started + config.phase * u32::try_from(next_fault + 1).unwrap_or(u32::MAX);
        tokio::select! {
            event = events.recv() => match event {
                Some(Event::Message { cursor, .. }) => {
                    delivery.observe(cursor.map(|c| c.0));
                    // The first message on a connection opened after the fault ends it.
                    if let Some((at, true)) = waiting_recovery {
                        waiting_recovery = None;
                        if let Some(last) = recoveries.last_mut() {
                            last.1 = Some(at.elapsed());
                        }
                    }
                }
                Some(Event::StateChanged { state, reason }) => {
                    if state == State::Open {
                        if let Some((_, reopened)) = waiting_recovery.as_mut() {
                            *reopened = true;
                        }
                    }
                    progress.state(&state, &reason.to_string());
                }
                Some(_) => {}
                None => break,
            },
            () = sleep_until(fault_at), if next_fault < schedule.len() => {
                let kind = schedule[next_fault];
                progress.note(&format!("injecting fault: {}", kind.describe(&config)));
                kind.inject(&server, &config).await?;
                recoveries.push((kind, None));
                waiting_recovery = Some((Instant::now(), false));
                next_fault += 1;
            }
            () = progress.tick() => progress.show(delivery.delivered, total, &client),
        }
    }
    progress.finish();
    let reconnects = client.stats().reconnects;
    let max_live_sockets = server.stats().max_live_connections;
    client.close(1000, "demo finished").await.ok();
    server.shutdown().await?;
    Ok(DemoReport {
        total,
        delivery,
        reconnects,
        max_live_sockets,
        recoveries,
        elapsed: started.elapsed(),
    })
}

/// Live progress on stderr: one rewritten line on a terminal, a line a second otherwise.
struct Progress {
    enabled: bool,
    terminal: bool,
    started: Instant,
    state: String,
    ticker: tokio::time::Interval,
}

impl Progress {
    fn new(enabled: bool, started: Instant) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let every = if terminal {
            Duration::from_millis(100)
        } else {
            Duration::from_secs(1)
        };
        Self {
            enabled,
            terminal,
            started,
            state: "connecting".into(),
            ticker: tokio::time::interval(every),
        }
    }

    async fn tick(&mut self) {
        self.ticker.tick().await;
    }

    fn state(&mut self, state: &State, reason: &str) {
        self.state = state.name().to_owned();
        if matches!(state, State::Reconnecting { .. } | State::Open) {
            self.note(&format!("{state} ({reason})"));
        }
    }

    fn note(&self, line: &str) {
        if self.enabled {
            let clear = if self.terminal { "\r\x1b[2K" } else { "" };
            eprintln!(
                "{clear}[{:5.1}s] {line}",
                self.started.elapsed().as_secs_f64()
            );
        }
    }

    fn show(&self, delivered: u64, total: u64, client: &Client) {
        if !self.enabled {
            return;
        }
        let line = format!(
            "[{:5.1}s] {:<12} delivered {delivered}/{total}  reconnects {}  cursor {}",
            self.started.elapsed().as_secs_f64(),
            self.state,
            client.stats().reconnects,
            client
                .last_cursor()
                .map_or_else(|| "-".to_owned(), |c| c.to_string()),
        );
        let mut stderr = std::io::stderr();
        if self.terminal {
            let _ = write!(stderr, "\r\x1b[2K{line}");
        } else {
            let _ = writeln!(stderr, "{line}");
        }
        let _ = stderr.flush();
    }

    fn finish(&self) {
        if self.enabled && self.terminal {
            eprintln!();
        }
    }
}
