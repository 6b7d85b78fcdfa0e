//! The builder: every setting of the session and the socket, with documented defaults.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::Duration;

use resilient_ws_core::{
    Config, Cursor, Disconnect, HeartbeatConfig, Payload, Probe, ResumeMode, RetryAction, Session,
    WelcomeReader, json_cursor, json_welcome, redact_url,
};
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tracing::Instrument;

use crate::baton::Baton;
use crate::channel::EventChannel;
use crate::client::Client;
use crate::clock::Clock;
use crate::driver::Driver;
use crate::error::BuildError;
use crate::events::Events;
use crate::handshake::Target;
use crate::mailbox::Mailbox;
use crate::request::{AttemptInfo, ConnectRequest, ProviderError, RequestProvider};
use crate::socket::SocketSettings;
use crate::tls::TlsRoots;

/// Default size of the socket's read and write buffers: small, because tungstenite's read
/// buffer is resident for as long as the connection lives (its 128 KiB defaults cost
/// ~140 KB per idle connection). While data streams in, the client reads ahead in 128 KiB
/// chunks anyway, and frees them once the socket is drained.
pub const DEFAULT_IO_BUFFER: usize = 4 * 1024;
/// Default ceiling of the socket's write buffer before writes wait.
pub const DEFAULT_MAX_WRITE_BUFFER: usize = 1024 * 1024;
/// Default largest inbound message.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 16 * 1024 * 1024;
/// Default number of messages buffered for the application.
pub const DEFAULT_EVENT_BUFFER: usize = 1024;
/// Default bytes of messages buffered for the application.
pub const DEFAULT_EVENT_BUFFER_BYTES: usize = 256 * 1024;

/// Builds a [`Client`]. Start with [`Client::builder`](crate::Client::builder); every
/// setting has a default listed in the README.
#[must_use]
pub struct ClientBuilder {
    config: Config,
    headers: Vec<(String, String)>,
    protocols: Vec<String>,
    provider: Option<RequestProvider>,
    tls: TlsRoots,
    max_message_size: usize,
    io_buffer: usize,
    max_write_buffer: usize,
    event_buffer: usize,
    event_buffer_bytes: usize,
    seed: Option<u64>,
}

impl crate::Client {
    /// A builder for a client of `url` (`ws://` or `wss://`).
    pub fn builder(url: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(url)
    }
}

impl ClientBuilder {
    /// A builder for `url`, with every default.
    pub fn new(url: impl Into<String>) -> Self {
        let mut config = Config::new(url);
        // A server that sends no welcome is unaffected; the hub's is read out of the box.
        config.welcome = Some(json_welcome());
        Self {
            config,
            headers: Vec::new(),
            protocols: Vec::new(),
            provider: None,
            tls: TlsRoots::Default,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            io_buffer: DEFAULT_IO_BUFFER,
            max_write_buffer: DEFAULT_MAX_WRITE_BUFFER,
            event_buffer: DEFAULT_EVENT_BUFFER,
            event_buffer_bytes: DEFAULT_EVENT_BUFFER_BYTES,
            seed: None,
        }
    }

    /// The backoff window: first `initial` (default 250 ms), doubling up to `max`
    /// (default 30 s), with full jitter.
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.config.backoff.initial = initial;
        self.config.backoff.max = max;
        self
    }

    /// How much the backoff window grows per failure (default 2.0).
    pub fn backoff_multiplier(mut self, multiplier: f64) -> Self {
        self.config.backoff.multiplier = multiplier;
        self
    }

    /// Consecutive failed attempts before giving up (default 10); `None` never gives up.
    pub fn max_failures(mut self, max: Option<u32>) -> Self {
        self.config.max_failures = max;
        self
    }

    /// Longest run of failures before giving up (default no limit).
    pub fn max_retry_duration(mut self, budget: Option<Duration>) -> Self {
        self.config.max_retry_duration = budget;
        self
    }

    /// How long a connection must stay up (or deliver a message) to count as healthy
    /// (default 5 s).
    pub fn stability_window(mut self, window: Duration) -> Self {
        self.config.stability_window = window;
        self
    }

    /// Deadline for DNS, TCP, TLS and the upgrade together (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// Sends a Ping after `interval` of silence (default 15 s) and drops the connection if
    /// nothing arrives within `timeout` more (default 10 s).
    pub fn heartbeat(mut self, interval: Duration, timeout: Duration) -> Self {
        let probe = self
            .config
            .heartbeat
            .take()
            .map_or(Probe::PingFrame, |heartbeat| heartbeat.probe);
        self.config.heartbeat = Some(HeartbeatConfig {
            interval,
            timeout,
            probe,
        });
        self
    }

    /// What the heartbeat sends (default a Ping frame); [`Probe::IdleOnly`] for servers
    /// that send their own heartbeats.
    pub fn heartbeat_probe(mut self, probe: Probe) -> Self {
        let mut heartbeat = self.config.heartbeat.take().unwrap_or_default();
        heartbeat.probe = probe;
        self.config.heartbeat = Some(heartbeat);
        self
    }

    /// Turns the heartbeat off.
    pub fn no_heartbeat(mut self) -> Self {
        self.config.heartbeat = None;
        self
    }

    /// Overrides the retry decision for the disconnects `predicate` answers; `None` keeps
    /// the default ([`resilient_ws_core::default_action`]).
    pub fn retry_predicate(
        mut self,
        predicate: impl Fn(&Disconnect) -> Option<RetryAction> + Send + Sync + 'static,
    ) -> Self {
        self.config.retry.predicate = Some(Arc::new(predicate));
        self
    }

    /// Longest Retry-After honoured (default 60 s).
    pub fn max_retry_after(mut self, max: Duration) -> Self {
        self.config.retry.max_retry_after = max;
        self
    }

    /// Bounds of the outbound queue (default 1,024 messages, 1 MiB).
    pub fn queue(mut self, max_messages: usize, max_bytes: usize) -> Self {
        self.config.queue.max_messages = max_messages;
        self.config.queue.max_bytes = max_bytes;
        self
    }

    /// Takes cursors from a JSON top-level field (`"seq"`) or JSON pointer (`"/meta/seq"`).
    pub fn cursor_field(mut self, spec: &str) -> Self {
        self.config.cursor = Some(json_cursor(spec));
        self
    }

    /// Takes cursors with a function of your own.
    pub fn cursor_extractor(
        mut self,
        extract: impl Fn(&Payload) -> Option<Cursor> + Send + Sync + 'static,
    ) -> Self {
        self.config.cursor = Some(Arc::new(extract));
        self
    }

    /// Resumes with `?NAME=<last cursor>` on every reconnect.
    pub fn resume_query(mut self, name: impl Into<String>) -> Self {
        self.config.resume = ResumeMode::QueryParam(name.into());
        self
    }

    /// Resumes with a request header `NAME: <last cursor>`.
    pub fn resume_header(mut self, name: impl Into<String>) -> Self {
        self.config.resume = ResumeMode::Header(name.into());
        self
    }

    /// Resumes with a first message built from the last cursor.
    pub fn resume_message(
        mut self,
        build: impl Fn(Cursor) -> Payload + Send + Sync + 'static,
    ) -> Self {
        self.config.resume = ResumeMode::FirstMessage(Arc::new(build));
        self
    }

    /// Resumes the first connection from this cursor (for example one saved by a previous
    /// run); messages at or before it are dropped as replays.
    pub fn start_cursor(mut self, cursor: u64) -> Self {
        self.config.start_cursor = Some(Cursor(cursor));
        self
    }

    /// Reads the server's welcome, the first message of each connection when it is one
    /// (`resilient-ws-server`'s hub sends one): it is not delivered, its epoch goes back
    /// beside the resume cursor, and a stream that does not continue the one resumed from
    /// is reported as [`Event::Discontinuity`](crate::Event::Discontinuity). On by default
    /// with the hub's format ([`resilient_ws_core::json_welcome`]); `None` turns it off.
    pub fn welcome(mut self, reader: Option<WelcomeReader>) -> Self {
        self.config.welcome = reader;
        self
    }

    /// The query parameter that carries the epoch beside the resume cursor (default
    /// `epoch`); `None` never sends it.
    pub fn epoch_query(mut self, name: Option<&str>) -> Self {
        self.config.epoch_query = name.map(str::to_owned);
        self
    }

    /// Cursors rise by exactly one, so a skip is reported as a gap event.
    pub fn contiguous_cursors(mut self, contiguous: bool) -> Self {
        self.config.contiguous_cursors = contiguous;
        self
    }

    /// Deadline for `close` to flush and finish the close handshake (default 5 s).
    pub fn close_timeout(mut self, timeout: Duration) -> Self {
        self.config.close_timeout = timeout;
        self
    }

    /// Adds a request header to every handshake. Its value is never logged.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Offers a subprotocol (`Sec-WebSocket-Protocol`).
    pub fn protocol(mut self, protocol: impl Into<String>) -> Self {
        self.protocols.push(protocol.into());
        self
    }

    /// Builds every attempt's URL and headers anew, for example to fetch a fresh token.
    /// The resume parameter or header is added to what it returns.
    pub fn request_provider<F, Fut>(mut self, provide: F) -> Self
    where
        F: Fn(AttemptInfo) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<ConnectRequest, ProviderError>> + Send + 'static,
    {
        self.provider = Some(Arc::new(move |info| Box::pin(provide(info))));
        self
    }

    /// Which certificate authorities to trust (default the bundled webpki roots).
    pub fn tls_roots(mut self, roots: TlsRoots) -> Self {
        self.tls = roots;
        self
    }

    /// Largest inbound message (default 16 MiB); a larger one ends the connection with
    /// close code 1009, which is fatal by default.
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Size of the socket's read and write buffers (default 4 KiB): the read buffer is
    /// held for as long as the connection lives; writes are handed to the socket in
    /// chunks of this size when a burst of messages goes out.
    pub fn io_buffer_size(mut self, bytes: usize) -> Self {
        self.io_buffer = bytes;
        self
    }

    /// Messages buffered for the application before the client stops reading the socket
    /// (default 1,024; state changes and other events are not counted). The application
    /// takes them a burst at a time, so up to twice as many may be in memory.
    pub fn event_buffer(mut self, events: usize) -> Self {
        self.event_buffer = events.max(1);
        self
    }

    /// Bytes of messages buffered for the application before the client stops reading
    /// the socket (default 256 KiB; a larger message still goes through, alone). Like
    /// [`event_buffer`](Self::event_buffer), whichever bound is reached first.
    pub fn event_buffer_bytes(mut self, bytes: usize) -> Self {
        self.event_buffer_bytes = bytes.max(1);
        self
    }

    /// Fixes the jitter seed (default a fresh random one per client), to replay a run.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The session settings, for anything without a method here.
    pub fn config_mut(&mut self) -> &mut Config {
        &mut self.config
    }

    /// Starts the session: returns a handle and the stream of its events. The first attempt
    /// begins at once. Must be called inside a tokio runtime.
    pub fn connect(self) -> Result<(Client, Events), BuildError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| BuildError::NoRuntime)?;
        self.config.validate()?;
        Target::parse(&self.config.url).map_err(BuildError::Url)?;
        for (name, value) in &self.headers {
            if HeaderName::from_bytes(name.as_bytes()).is_err()
                || HeaderValue::from_str(value).is_err()
            {
                return Err(BuildError::Header { name: name.clone() });
            }
        }
        if let Some(bad) = self.protocols.iter().find(|protocol| !is_token(protocol)) {
            return Err(BuildError::Subprotocol {
                protocol: bad.clone(),
            });
        }
        let websocket = WebSocketConfig::default()
            .read_buffer_size(self.io_buffer)
            .write_buffer_size(self.io_buffer)
            .max_write_buffer_size(self.max_write_buffer.max(self.io_buffer + 1))
            .max_message_size(Some(self.max_message_size))
            .max_frame_size(Some(self.max_message_size));
        let settings = SocketSettings {
            headers: self.headers,
            protocols: self.protocols,
            provider: self.provider,
            websocket,
            tls: self.tls.client_config()?,
        };
        let close_timeout = self.config.close_timeout;
        // The writer confirms what reached the OS socket, so nothing unwritten is lost.
        let mut config = self.config;
        config.confirm_writes = true;
        let seed = self.seed.unwrap_or_else(random_seed);
        let mut session = Session::new(config, seed)?;
        let clock = Clock::start();
        session.connect(clock.now());
        let span =
            tracing::info_span!("resilient_ws", url = %redact_url(session.config().url.as_str()));
        let mailbox = Arc::new(Mailbox::new(
            session.config().queue,
            session.state().clone(),
        ));
        let channel = Arc::new(EventChannel::new(
            self.event_buffer,
            self.event_buffer_bytes,
        ));
        let client = Client::new(Arc::clone(&mailbox), close_timeout);
        let driver = Driver::new(
            session,
            clock,
            mailbox,
            Arc::clone(&channel),
            Arc::new(settings),
            span.clone(),
        );
        let baton = Baton::new(driver, runtime.clone());
        runtime.spawn(baton.background().instrument(span));
        let events = Events::new(channel, baton);
        Ok((client, events))
    }
}

/// Whether `text` is an HTTP token (RFC 9110, 5.6.2), as a subprotocol name must be.
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte))
}

/// A seed from the OS's randomness, without another dependency: std seeds every
/// `RandomState` from it.
fn random_seed() -> u64 {
    RandomState::new().hash_one(0u8)
}
