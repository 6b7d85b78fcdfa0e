//! Tokens never reach the logs: a canary in the URL query and in the headers (static and
//! from a request provider) is sent to the server, yet appears in no TRACE log line, in no
//! event, and in no `Debug` of the settings or the handle.
//!
//! tungstenite and rustls log through the `log` crate, so its records are captured as well
//! (the client does its own handshake because tungstenite's traces the whole request).
//!
//! Each test runs on a current-thread runtime with its own subscriber set as the thread's
//! default, so the logs of the spawned driver and socket tasks (which run on that thread)
//! are captured, and the two tests cannot see each other's lines.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use resilient_ws::{Client, ConnectRequest, Event};
use resilient_ws_tests::{Behaviour, Recorder, Script, ScriptServer, Step};
use tokio::time::timeout;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::FmtSpan;

const LIMIT: Duration = Duration::from_secs(10);

/// Every canary starts with this, so one search finds any of them.
const CANARY: &str = "CANARY-";
const URL_CANARY: &str = "CANARY-URL-1234";
const HEADER_CANARY: &str = "CANARY-HEADER-5678";
const PROVIDER_CANARY: &str = "CANARY-PROVIDER-9012";
/// A bare query item (`?SECRET`, no name): some APIs take a key that way.
const BARE_CANARY: &str = "CANARY-BARE-3456";

/// Records from the `log` crate (tungstenite and rustls log through it), captured for the
/// whole test binary: `log` allows one logger per process.
static LOG_RECORDS: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct LogCapture;

impl log::Log for LogCapture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let line = format!("{} {}: {}", record.level(), record.target(), record.args());
        LOG_RECORDS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(line);
    }

    fn flush(&self) {}
}

/// Installs the `log` capture at TRACE, once.
fn capture_log_records() {
    static LOGGER: LogCapture = LogCapture;
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Trace);
    }
}

/// Everything `log` captured so far, one record a line.
fn log_records() -> String {
    LOG_RECORDS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .join("\n")
}

/// Log output, kept in memory.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// One writer per log line; every writer appends to the shared buffer.
struct CaptureWriter(Arc<Mutex<Vec<u8>>>);

impl io::Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Capture {
    type Writer = CaptureWriter;

    fn make_writer(&'a self) -> Self::Writer {
        CaptureWriter(Arc::clone(&self.0))
    }
}

/// A TRACE subscriber writing into `capture`, with span opens and closes too. The test
/// support crate is left out: its server sees the tokens, as it should.
fn subscriber(capture: Capture) -> impl tracing::Subscriber + Send + Sync {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new("trace,resilient_ws_tests=off"))
        .with_writer(capture)
        .with_ansi(false)
        .with_span_events(FmtSpan::NEW | FmtSpan::CLOSE)
        .finish()
}

/// Rejected once with 503, then three messages and a dropped connection, then a resume
/// from cursor 3 (the server replays 3) and an echo.
fn script() -> Script {
    Script::new(Behaviour::Reject {
        status: 503,
        retry_after: None,
    })
    .then(Behaviour::Accept {
        then: vec![Step::SendFeed { from: 1, count: 3 }, Step::DropTcp],
    })
    .then(Behaviour::Accept {
        then: vec![Step::SendFeed { from: 3, count: 4 }, Step::EchoUntilClosed],
    })
}

fn fast(builder: resilient_ws::ClientBuilder) -> resilient_ws::ClientBuilder {
    builder
        .cursor_field("seq")
        .resume_query("cursor")
        .backoff(Duration::from_millis(10), Duration::from_millis(100))
        .connect_timeout(Duration::from_secs(5))
}

/// Runs the scripted session: six messages exactly once, an echo, a clean close.
async fn run_session(client: &Client, recorder: &Recorder) {
    recorder.wait_delivered(6, LIMIT).await;
    recorder.assert_exactly_once(6);
    client.send_text("still here").expect("send");
    recorder
        .wait_for("the echo", LIMIT, |r| {
            r.texts().iter().any(|text| text == "still here")
        })
        .await;
    timeout(LIMIT, client.close(1000, "done"))
        .await
        .expect("close in time")
        .expect("close accepted");
    assert_eq!(client.state(), resilient_ws::State::Closed);
}

/// Checks the server really got the canaries, so their absence from the logs means
/// something, and that the resume cursor went into the URL.
fn assert_sent(server: &ScriptServer, query_token: &str, header: &str) {
    let requests = server.requests();
    assert_eq!(requests.len(), 3, "503, drop, resume: {requests:?}");
    for request in &requests {
        assert_eq!(
            request.query_param("token"),
            Some(query_token),
            "{request:?}"
        );
        assert_eq!(request.header("authorization"), Some(header), "{request:?}");
    }
    assert_eq!(requests[0].query_param("cursor"), None);
    assert_eq!(requests[2].query_param("cursor"), Some("3"));
}

/// The application-facing text: every event, Debug and Display.
fn events_text(recorder: &Recorder) -> String {
    let mut text = String::new();
    for (_, event) in recorder.events() {
        text.push_str(&format!("{event:?}\n"));
        if let Event::StateChanged { state, reason } = &event {
            text.push_str(&format!("{state}: {reason}\n"));
        }
    }
    text
}

fn assert_no_canary(what: &str, text: &str) {
    for canary in [CANARY, URL_CANARY, HEADER_CANARY, PROVIDER_CANARY, "Bearer"] {
        assert!(
            !text.contains(canary),
            "{what} contains {canary:?}:\n{}",
            lines_with(text, canary)
        );
    }
}

fn lines_with(text: &str, needle: &str) -> String {
    text.lines()
        .filter(|line| line.contains(needle))
        .collect::<Vec<_>>()
        .join("\n")
}

/// What the logs must show: the session's redacted URL, the sockets, the state changes.
fn assert_logged(logs: &str, redacted_url: &str) {
    assert!(!logs.is_empty(), "nothing was logged");
    assert!(
        logs.contains(redacted_url),
        "logs lack the redacted URL {redacted_url}:\n{logs}"
    );
    assert!(logs.contains("token=***"), "logs lack token=***:\n{logs}");
    for needle in [
        "reconnecting",
        "HTTP 503",
        "open",
        "closed",
        "handshake complete",
        "socket ended",
        "conn=",
        "attempt=",
    ] {
        assert!(logs.contains(needle), "logs lack {needle:?}:\n{logs}");
    }
    assert!(
        logs.lines()
            .any(|line| line.contains("TRACE") || line.contains("DEBUG") || line.contains("INFO")),
        "no leveled lines:\n{logs}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn tokens_in_the_url_and_headers_never_reach_the_logs() {
    capture_log_records();
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(subscriber(capture.clone()));

    let server = ScriptServer::start(script()).await.expect("server");
    let url = server.url(&format!("/feed?token={URL_CANARY}&x=1&{BARE_CANARY}"));
    let redacted_url = format!("ws://{}/feed?token=***&x=***&***", server.addr());
    let mut builder = fast(Client::builder(url))
        .header("Authorization", format!("Bearer {HEADER_CANARY}"))
        .header("X-Api-Key", HEADER_CANARY);
    let config = format!("{:?}", builder.config_mut());
    assert_no_canary("Debug of Config", &config);
    assert!(config.contains("token=***"), "{config}");

    let (client, events) = builder.connect().expect("client");
    let recorder = Recorder::spawn(events);
    run_session(&client, &recorder).await;
    assert_sent(&server, URL_CANARY, &format!("Bearer {HEADER_CANARY}"));
    assert!(
        server
            .requests()
            .iter()
            .all(|request| request.header("x-api-key") == Some(HEADER_CANARY))
    );

    assert_no_canary("Debug of Client", &format!("{client:?}"));
    assert_no_canary("Debug of Stats", &format!("{:?}", client.stats()));
    assert_no_canary("events", &events_text(&recorder));
    drop(client);
    drop(recorder);
    server.shutdown().await;

    let logs = capture.text();
    assert_logged(&logs, &redacted_url);
    assert_no_canary("logs", &logs);
    let records = log_records();
    assert!(
        records.contains("tungstenite"),
        "the log capture saw tungstenite: {records}"
    );
    assert_no_canary("log records", &records);
}

#[tokio::test(flavor = "current_thread")]
async fn tokens_from_a_request_provider_never_reach_the_logs() {
    capture_log_records();
    let capture = Capture::default();
    let _guard = tracing::subscriber::set_default(subscriber(capture.clone()));

    let server = ScriptServer::start(script()).await.expect("server");
    let base = server.url("/feed");
    let url = format!("{base}?token={PROVIDER_CANARY}&x=1");
    let redacted_url = format!("ws://{}/feed?token=***&x=***", server.addr());
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let provided = url.clone();
    let mut builder = fast(Client::builder(url)).request_provider(move |_info| {
        counted.fetch_add(1, Ordering::SeqCst);
        let request = ConnectRequest::new(provided.clone())
            .header("Authorization", format!("Bearer {PROVIDER_CANARY}"));
        async move { Ok(request) }
    });
    let config = format!("{:?}", builder.config_mut());
    assert_no_canary("Debug of Config", &config);

    let (client, events) = builder.connect().expect("client");
    let recorder = Recorder::spawn(events);
    run_session(&client, &recorder).await;
    assert_sent(
        &server,
        PROVIDER_CANARY,
        &format!("Bearer {PROVIDER_CANARY}"),
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3, "one request per attempt");

    assert_no_canary("Debug of Client", &format!("{client:?}"));
    assert_no_canary("events", &events_text(&recorder));
    drop(client);
    drop(recorder);
    server.shutdown().await;

    let logs = capture.text();
    assert_logged(&logs, &redacted_url);
    assert_no_canary("logs", &logs);
    assert_no_canary("log records", &log_records());
}
