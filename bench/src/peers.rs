//! The peers of the receive table, each with its defaults, receiving from the same blast
//! server as the baseline and timed the same way (from the first message to the last):
//! ezsockets, a reconnecting client, and tokio-websockets, an engine.

use std::hint::black_box;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ezsockets::client::ClientCloseMode;
use futures_util::StreamExt;
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use crate::clients::BenchResult;

/// How long a peer may take to finish its close once the measurement is over.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// What an ezsockets client reports once: the time from its first message to its `n`th, or
/// why the measurement is void.
type Outcome = Result<Duration, String>;

/// The ezsockets client's handler: counts text messages in `on_text` and reports the
/// outcome over a channel. A close or a lost connection before the `n`th message voids the
/// measurement (instead of the default reconnect, which would count a second blast).
struct EzCounter {
    n: u64,
    count: u64,
    first: Option<Instant>,
    done: Option<oneshot::Sender<Outcome>>,
}

impl EzCounter {
    /// Reports `outcome` unless one was reported already.
    fn report(&mut self, outcome: Outcome) {
        if let Some(done) = self.done.take() {
            // The trial may have stopped waiting (it timed out): nothing to tell then.
            let _ = done.send(outcome);
        }
    }

    /// Voids the measurement (if it is still running) and stops the client.
    fn ended(&mut self, how: &str) -> ClientCloseMode {
        let (count, n) = (self.count, self.n);
        self.report(Err(format!("{how} after {count} of {n} messages")));
        ClientCloseMode::Close
    }
}

#[async_trait]
impl ezsockets::ClientExt for EzCounter {
    type Call = ();

    async fn on_text(&mut self, text: ezsockets::Utf8Bytes) -> Result<(), ezsockets::Error> {
        black_box(&text);
        let first = *self.first.get_or_insert_with(Instant::now);
        self.count += 1;
        if self.count == self.n {
            self.report(Ok(first.elapsed()));
        }
        Ok(())
    }

    async fn on_binary(&mut self, bytes: ezsockets::Bytes) -> Result<(), ezsockets::Error> {
        black_box(&bytes);
        Ok(())
    }

    async fn on_call(&mut self, (): ()) -> Result<(), ezsockets::Error> {
        Ok(())
    }

    async fn on_close(
        &mut self,
        _frame: Option<ezsockets::CloseFrame>,
    ) -> Result<ClientCloseMode, ezsockets::Error> {
        Ok(self.ended("the server closed the connection"))
    }

    async fn on_disconnect(&mut self) -> Result<ClientCloseMode, ezsockets::Error> {
        Ok(self.ended("the connection was lost"))
    }
}

/// ezsockets with `ClientConfig::new(url)` (its defaults) through `ezsockets::connect` (its
/// tokio connector): the `n` messages are counted in `ClientExt::on_text`, then the client
/// closes and its actor is awaited, so that nothing of it runs into the next trial.
pub(crate) async fn ezsockets_receive(url: String, n: u64) -> BenchResult<Duration> {
    let (done_tx, done_rx) = oneshot::channel();
    let counter = EzCounter {
        n,
        count: 0,
        first: None,
        done: Some(done_tx),
    };
    let (client, actor) =
        ezsockets::connect(|_| counter, ezsockets::ClientConfig::new(url.as_str())).await;
    let actor = tokio::spawn(actor);
    let outcome = done_rx
        .await
        .unwrap_or_else(|_| Err("the client stopped before reporting".into()));
    // A client that already stopped (the measurement is void then) refuses the close.
    let _ = client.close(None);
    let closed = tokio::time::timeout(CLOSE_TIMEOUT, actor).await;
    let elapsed = outcome?;
    match closed {
        Ok(Ok(Ok(()))) => Ok(elapsed),
        Ok(Ok(Err(error))) => Err(format!("the client failed while closing: {error}").into()),
        Ok(Err(join)) => Err(format!("the client's task failed: {join}").into()),
        Err(_) => Err(format!("the client did not close within {CLOSE_TIMEOUT:?}").into()),
    }
}

/// tokio-websockets with its default `Config` and `Limits` over plain TCP (connected here
/// to set TCP_NODELAY as every other client does, then upgraded by its `ClientBuilder`),
/// read with a `StreamExt::next` loop as the baseline is.
pub(crate) async fn tokio_websockets_receive(url: String, n: u64) -> BenchResult<Duration> {
    let builder = tokio_websockets::ClientBuilder::new().uri(&url)?;
    let address = url
        .strip_prefix("ws://")
        .and_then(|rest| rest.split('/').next())
        .ok_or_else(|| format!("not a ws:// URL: {url}"))?;
    let stream = TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    let (mut ws, _) = builder.connect_on(stream).await?;
    let mut count = 0;
    let mut first = None;
    while let Some(message) = ws.next().await {
        let message = message?;
        if let Some(text) = message.as_text() {
            black_box(text);
            let first = *first.get_or_insert_with(Instant::now);
            count += 1;
            if count == n {
                return Ok(first.elapsed());
            }
        }
    }
    Err(format!("connection ended after {count} of {n} messages").into())
}
