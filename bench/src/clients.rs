//! What every suite needs to run clients: the runtime, the bare baseline client, and a few
//! waits on resilient-ws's event stream.

use std::time::Duration;

use resilient_ws::{Event, Events, State};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A suite's error, as text for its table.
pub(crate) type BenchError = Box<dyn std::error::Error + Send + Sync>;
pub(crate) type BenchResult<T> = Result<T, BenchError>;

/// The bare baseline: a tokio-tungstenite client.
pub(crate) type Bare = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Longest any single measurement may take before it is reported as failed.
pub(crate) const TRIAL_TIMEOUT: Duration = Duration::from_secs(120);

/// The runtime every client runs on, baseline and resilient-ws alike: multi-thread, two
/// workers.
pub(crate) fn runtime() -> std::io::Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

/// Connects the baseline client: tokio-tungstenite's `connect_async` with `config` (its
/// defaults when `None`) and TCP_NODELAY, as resilient-ws sets it.
pub(crate) async fn bare_connect(url: &str, config: Option<WebSocketConfig>) -> BenchResult<Bare> {
    let (ws, _) = tokio_tungstenite::connect_async_with_config(url, config, true).await?;
    Ok(ws)
}

/// tokio-tungstenite's defaults with resilient-ws's default buffer sizes.
pub(crate) fn bare_config_like_resilient() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(resilient_ws::DEFAULT_IO_BUFFER)
        .write_buffer_size(resilient_ws::DEFAULT_IO_BUFFER)
}

/// Waits for the session to open; an error if it reconnects, fails or ends first.
pub(crate) async fn wait_open(events: &mut Events) -> BenchResult<()> {
    while let Some(event) = events.recv().await {
        if let Event::StateChanged { state, reason } = event {
            match state {
                State::Open => return Ok(()),
                State::Connecting { .. } => {}
                other => {
                    return Err(format!("session went {other} ({reason}) before opening").into());
                }
            }
        }
    }
    Err("event stream ended before the session opened".into())
}

/// An error for an event that means the measurement is void (the session lost its
/// connection or stopped).
pub(crate) fn unexpected(event: &Event) -> Option<BenchError> {
    match event {
        Event::StateChanged { state, reason } if !matches!(state, State::Open) => {
            Some(format!("session went {state} ({reason}) during the measurement").into())
        }
        _ => None,
    }
}

/// Runs `future` on `runtime` as a spawned task (so it runs on a worker thread, like the
/// tasks it talks to), bounded by [`TRIAL_TIMEOUT`].
pub(crate) fn run_trial<T: Send + 'static>(
    runtime: &Runtime,
    future: impl std::future::Future<Output = BenchResult<T>> + Send + 'static,
) -> BenchResult<T> {
    let task = runtime.spawn(async move { tokio::time::timeout(TRIAL_TIMEOUT, future).await });
    match runtime.block_on(task) {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(format!("timed out after {} s", TRIAL_TIMEOUT.as_secs()).into()),
        Err(join) => Err(format!("trial task failed: {join}").into()),
    }
}
