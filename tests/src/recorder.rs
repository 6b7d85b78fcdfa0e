//! Records a client's events with their arrival times, for assertions.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use resilient_ws::{Event, Events, Reason, State, Unsent};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep};

/// How often `wait_for` looks again.
const POLL: Duration = Duration::from_millis(5);

type Log = Arc<Mutex<Vec<(Instant, Event)>>>;

/// Drains a client's event stream in the background and keeps every event.
pub struct Recorder {
    log: Log,
    task: JoinHandle<()>,
}

impl Recorder {
    /// Starts recording `events`.
    pub fn spawn(mut events: Events) -> Self {
        let log: Log = Arc::default();
        let sink = Arc::clone(&log);
        let task = tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                sink.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push((Instant::now(), event));
            }
        });
        Self { log, task }
    }

    /// A copy of everything recorded so far.
    pub fn events(&self) -> Vec<(Instant, Event)> {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Cursors of the delivered messages, in order (0 for a message without one).
    pub fn delivered(&self) -> Vec<u64> {
        self.events()
            .iter()
            .filter_map(|(_, event)| match event {
                Event::Message { cursor, .. } => Some(cursor.map_or(0, |c| c.0)),
                _ => None,
            })
            .collect()
    }

    /// Every wait before a retry, in order: the number the next attempt has, the delay
    /// chosen, and why the session is reconnecting.
    pub fn retry_waits(&self) -> Vec<(u32, Duration, Reason)> {
        self.states()
            .into_iter()
            .filter_map(|(_, state, reason)| match state {
                State::Reconnecting { attempt, delay, .. } => Some((attempt, delay, reason)),
                _ => None,
            })
            .collect()
    }

    /// Every message handed back in `Event::Unsent`, in the order they came back.
    pub fn unsent(&self) -> Vec<Unsent> {
        self.events()
            .into_iter()
            .filter_map(|(_, event)| match event {
                Event::Unsent(unsent) => Some(unsent),
                _ => None,
            })
            .flatten()
            .collect()
    }

    /// Texts of the delivered messages, in order.
    pub fn texts(&self) -> Vec<String> {
        self.events()
            .iter()
            .filter_map(|(_, event)| match event {
                Event::Message { payload, .. } => payload.as_text().map(str::to_owned),
                _ => None,
            })
            .collect()
    }

    /// State changes with their reasons and times.
    pub fn states(&self) -> Vec<(Instant, State, Reason)> {
        self.events()
            .into_iter()
            .filter_map(|(at, event)| match event {
                Event::StateChanged { state, reason } => Some((at, state, reason)),
                _ => None,
            })
            .collect()
    }

    /// The first time a state change matched `matches`.
    pub fn first_state(&self, matches: impl Fn(&State, &Reason) -> bool) -> Option<Instant> {
        self.states()
            .into_iter()
            .find(|(_, state, reason)| matches(state, reason))
            .map(|(at, _, _)| at)
    }

    /// How many times the session opened.
    pub fn opens(&self) -> usize {
        self.states()
            .iter()
            .filter(|(_, state, _)| *state == State::Open)
            .count()
    }

    /// Waits until `done` holds for the recorded events, panicking with `what` after
    /// `limit`.
    pub async fn wait_for(&self, what: &str, limit: Duration, done: impl Fn(&Recorder) -> bool) {
        let deadline = Instant::now() + limit;
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "timed out after {limit:?} waiting for {what}; states: {:?}",
                self.states()
                    .iter()
                    .map(|(_, s, r)| format!("{s} ({r})"))
                    .collect::<Vec<_>>()
            );
            sleep(POLL).await;
        }
    }

    /// Waits for `n` delivered messages.
    pub async fn wait_delivered(&self, n: usize, limit: Duration) {
        self.wait_for(&format!("{n} messages"), limit, |r| {
            r.delivered().len() >= n
        })
        .await;
    }

    /// Waits for a terminal state (closed or failed) and returns it.
    pub async fn wait_terminal(&self, limit: Duration) -> State {
        self.wait_for("a terminal state", limit, |r| {
            r.states().iter().any(|(_, state, _)| state.is_terminal())
        })
        .await;
        self.states()
            .into_iter()
            .map(|(_, state, _)| state)
            .rfind(State::is_terminal)
            .unwrap_or(State::Idle)
    }

    /// Asserts that the feed `1..=n` arrived exactly once and in order.
    pub fn assert_exactly_once(&self, n: u64) {
        let expected: Vec<u64> = (1..=n).collect();
        assert_eq!(
            self.delivered(),
            expected,
            "delivery was not exactly-once in order"
        );
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}
