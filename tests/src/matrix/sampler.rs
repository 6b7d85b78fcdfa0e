//! Reading a client's state and counters every few milliseconds, independently of its events.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use resilient_ws::{Client, State};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior, interval};

/// How often the sampler looks.
const PERIOD: Duration = Duration::from_millis(10);

/// What the client showed at one moment.
#[derive(Debug, Clone)]
pub struct Sample {
    /// When it was read.
    pub at: Instant,
    /// `client.state()`.
    pub state: State,
    /// `client.stats().attempts`.
    pub attempts: u64,
    /// `client.stats().consecutive_failures`.
    pub consecutive_failures: u32,
    /// How long `state()` and `stats()` took together.
    pub took: Duration,
}

/// Samples a client's `state()` and `stats()` in the background until dropped.
#[derive(Debug)]
pub struct Sampler {
    samples: Arc<Mutex<Vec<Sample>>>,
    task: JoinHandle<()>,
}

impl Sampler {
    /// Starts sampling `client` (a clone of the application's handle).
    pub fn spawn(client: Client) -> Self {
        let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
        let sink = Arc::clone(&samples);
        let task = tokio::spawn(async move {
            let mut ticks = interval(PERIOD);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let started = Instant::now();
                let state = client.state();
                let stats = client.stats();
                let sample = Sample {
                    at: started,
                    state,
                    attempts: stats.attempts,
                    consecutive_failures: stats.consecutive_failures,
                    took: started.elapsed(),
                };
                sink.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(sample);
            }
        });
        Self { samples, task }
    }

    /// Every sample so far.
    pub fn samples(&self) -> Vec<Sample> {
        self.samples
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The samples taken from `from` to `to`, both included.
    pub fn between(&self, from: Instant, to: Instant) -> Vec<Sample> {
        self.samples()
            .into_iter()
            .filter(|sample| sample.at >= from && sample.at <= to)
            .collect()
    }

    /// The longest a sample took to read.
    pub fn slowest_read(&self) -> Duration {
        self.samples()
            .iter()
            .map(|sample| sample.took)
            .max()
            .unwrap_or_default()
    }

    /// Stops sampling (dropping it does too).
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.task.abort();
    }
}
