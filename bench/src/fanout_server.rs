//! The fan-out suite's servers, each in a child process of its own (this binary with
//! `--serve-fanout KIND ...`), so that the bench process's figures are its clients' alone and
//! the server's resident set can be read from `/proc/<pid>/status`.
//!
//! Two kinds of server publish the same messages:
//! - `hub`: a [`resilient_ws_server::Hub`] mounted at `/feed` with `hub.router`, served by
//!   `axum::serve` (cursors, a replay buffer, per-subscriber bounded queues, a welcome frame);
//! - `broadcast` / `broadcast-batched`: the baseline, a plain tokio-tungstenite loop per
//!   connection over a `tokio::sync::broadcast` channel (no replay, no cursors). `broadcast`
//!   writes each message with `send` (one flush per message); `broadcast-batched` feeds
//!   whatever the channel already holds and flushes once. With `--keep` it also keeps every
//!   published message in a `Vec`, and `/replay` sends them all to one client, the plain way
//!   a server without a replay buffer would.
//!
//! The parent drives the child over stdin, one command a line, one answer a line:
//! - `publish M SIZE`: publishes M messages back to back from the stdin thread; answers
//!   `DONE <µs>`;
//! - `pace M EVERY_US SIZE`: publishes M messages, one every EVERY_US µs; answers
//!   `DONE <µs> <ms>`, the second figure being when the first subscriber was evicted (hub) or
//!   first lagged (baseline) since the pace began, or -1;
//! - `stats`: answers `STATS key=value ...`;
//! - `epoch`: answers `EPOCH <epoch>` (`-` for the baseline).
//!
//! Payloads are `{"seq":N,"t":T,"data":"aa…"}` padded to SIZE bytes, where T is when the
//! message was published, in µs since the Unix epoch (comparable across processes). The child
//! exits when its stdin closes, so it never outlives the benchmark.

use std::io::{self, BufRead, BufReader, Write as _};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use futures_util::{SinkExt, StreamExt};
use resilient_ws_server::{Hub, HubConfig, StartPoint};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

use crate::servers::unix_micros;

/// Most messages the batched baseline feeds before one flush.
const BATCH_MAX: usize = 1_024;
/// Listen backlog: thousands of subscribers connect at once.
const BACKLOG: u32 = 4_096;

/// Which server a child runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ServerKind {
    /// resilient-ws-server's hub.
    Hub,
    /// The baseline: a broadcast channel and a `send()` per message.
    Broadcast,
    /// The baseline, feeding what the channel holds and flushing once.
    BroadcastBatched,
}

impl ServerKind {
    fn arg(self) -> &'static str {
        match self {
            Self::Hub => "hub",
            Self::Broadcast => "broadcast",
            Self::BroadcastBatched => "broadcast-batched",
        }
    }

    fn parse(arg: &str) -> Option<Self> {
        [Self::Hub, Self::Broadcast, Self::BroadcastBatched]
            .into_iter()
            .find(|kind| kind.arg() == arg)
    }

    /// Whether a connection's first frame is the hub's welcome.
    pub(crate) fn welcomes(self) -> bool {
        self == Self::Hub
    }

    /// The label of its rows.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Hub => "resilient-ws-server hub",
            Self::Broadcast => "tokio-tungstenite broadcast loop, `send()` (baseline)",
            Self::BroadcastBatched => "tokio-tungstenite broadcast loop, `feed()` + one flush",
        }
    }
}

/// How a child server is set up.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ServerSetup {
    pub(crate) kind: ServerKind,
    /// The hub's `queue_max_messages` (its bytes bound is 256 B a message, at least the
    /// default), or the broadcast channel's capacity.
    pub(crate) queue: usize,
    /// The hub's `history_max_messages` (its bytes bound is 256 B a message, at least the
    /// default).
    pub(crate) history: usize,
    /// The baseline keeps every message for `/replay`.
    pub(crate) keep: bool,
    /// SO_SNDBUF of the listening socket, which accepted sockets inherit (the kernel's
    /// autotuning when `None`).
    pub(crate) send_buffer: Option<u32>,
}

/// A server child process, killed and reaped when dropped.
pub(crate) struct FanoutServer {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    port: u16,
}

impl FanoutServer {
    /// Starts `--serve-fanout` as `setup` says and waits until it listens.
    pub(crate) fn spawn(setup: ServerSetup) -> io::Result<Self> {
        let mut command = Command::new(std::env::current_exe()?);
        command.args([
            "--serve-fanout",
            setup.kind.arg(),
            "--queue",
            &setup.queue.to_string(),
            "--history",
            &setup.history.to_string(),
        ]);
        if setup.keep {
            command.arg("--keep");
        }
        if let Some(bytes) = setup.send_buffer {
            command.args(["--sndbuf", &bytes.to_string()]);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or(io::ErrorKind::BrokenPipe)?;
        let mut server = Self {
            child,
            stdin,
            stdout: BufReader::new(stdout),
            port: 0,
        };
        let line = server.read_line()?;
        server.port = line
            .strip_prefix("LISTEN ")
            .and_then(|port| port.trim().parse().ok())
            .ok_or_else(|| io::Error::other(format!("server did not start: {line:?}")))?;
        Ok(server)
    }

    /// `ws://127.0.0.1:<port><path>`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}{path}", self.port)
    }

    /// The child's resident set (VmRSS), in KiB.
    pub(crate) fn rss_kib(&self) -> Option<u64> {
        crate::system::rss_kib_of(&self.child.id().to_string())
    }

    /// Sends one command and returns the answer's fields after `expect`.
    pub(crate) fn command(&mut self, line: &str, expect: &str) -> io::Result<Vec<String>> {
        let stdin = self.stdin.as_mut().ok_or(io::ErrorKind::BrokenPipe)?;
        writeln!(stdin, "{line}")?;
        stdin.flush()?;
        let answer = self.read_line()?;
        let fields = answer
            .strip_prefix(expect)
            .ok_or_else(|| io::Error::other(format!("`{line}` answered {answer:?}")))?;
        Ok(fields.split_whitespace().map(str::to_owned).collect())
    }

    /// `stats` as key/value pairs.
    pub(crate) fn stats(&mut self) -> io::Result<Vec<(String, u64)>> {
        Ok(self
            .command("stats", "STATS")?
            .iter()
            .filter_map(|pair| pair.split_once('='))
            .filter_map(|(key, value)| Some((key.to_owned(), value.parse().ok()?)))
            .collect())
    }

    fn read_line(&mut self) -> io::Result<String> {
        let mut line = String::new();
        if self.stdout.read_line(&mut line)? == 0 {
            return Err(io::Error::other("the server process ended"));
        }
        Ok(line.trim_end().to_owned())
    }
}

impl Drop for FanoutServer {
    fn drop(&mut self) {
        self.stdin = None;
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Looks a value up in [`FanoutServer::stats`]'s answer.
pub(crate) fn stat(stats: &[(String, u64)], key: &str) -> Option<u64> {
    stats
        .iter()
        .find(|(name, _)| name == key)
        .map(|(_, value)| *value)
}

/// A payload of `size` bytes (or more, if the fields need it) carrying `seq` and the time it
/// is built at.
fn payload(seq: u64, size: usize) -> String {
    let head = format!(
        "{{\"seq\":{seq},\"t\":{},\"data\":\"",
        unix_micros(SystemTime::now())
    );
    let pad = size.saturating_sub(head.len() + 2);
    let mut text = String::with_capacity(head.len() + pad + 2);
    text.push_str(&head);
    text.extend(std::iter::repeat_n('a', pad));
    text.push_str("\"}");
    text
}

/// The `seq` and `t` of a payload (`None` for anything else, such as the hub's welcome).
pub(crate) fn fields(text: &str) -> Option<(u64, u64)> {
    let (seq, rest) = text.strip_prefix("{\"seq\":")?.split_once(',')?;
    let (time, _) = rest.strip_prefix("\"t\":")?.split_once(',')?;
    Some((seq.parse().ok()?, time.parse().ok()?))
}

/// The baseline's shared state: the channel, counters, and the kept messages.
struct Baseline {
    sender: broadcast::Sender<Message>,
    batched: bool,
    connections: AtomicUsize,
    /// Connections awaiting a write to their socket right now.
    sending: AtomicUsize,
    /// `RecvError::Lagged` seen, and the messages they skipped.
    lagged: AtomicU64,
    skipped: AtomicU64,
    kept: Option<Mutex<Vec<Utf8Bytes>>>,
}

/// What publishes: the hub, or the baseline's channel with its own sequence numbers.
enum Publisher {
    Hub(Hub),
    Baseline { state: Arc<Baseline>, seq: u64 },
}

impl Publisher {
    fn publish(&mut self, size: usize) {
        match self {
            Self::Hub(hub) => {
                // Only fails once shut down, which this process never does.
                let _ = hub.publish_with(|seq| payload(seq, size));
            }
            Self::Baseline { state, seq } => {
                *seq += 1;
                let text = Utf8Bytes::from(payload(*seq, size));
                if let Some(kept) = &state.kept {
                    kept.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(text.clone());
                }
                // An error only means nobody is subscribed.
                let _ = state.sender.send(Message::Text(text));
            }
        }
    }

    /// Evictions (hub) or lag events (baseline) so far.
    fn trouble(&self) -> u64 {
        match self {
            Self::Hub(hub) => hub.stats().evicted_slow,
            Self::Baseline { state, .. } => state.lagged.load(Ordering::Relaxed),
        }
    }

    fn stats(&self) -> String {
        match self {
            Self::Hub(hub) => {
                let stats = hub.stats();
                format!(
                    "STATS subscribers={} connections={} head={} evicted_slow={} evicted_dead={} \
                     replayed={} queued={}",
                    stats.subscribers,
                    stats.connections,
                    stats.head,
                    stats.evicted_slow,
                    stats.evicted_dead,
                    stats.replayed,
                    stats.queued_messages
                )
            }
            Self::Baseline { state, seq } => format!(
                "STATS connections={} head={seq} lagged={} skipped={} sending={}",
                state.connections.load(Ordering::Relaxed),
                state.lagged.load(Ordering::Relaxed),
                state.skipped.load(Ordering::Relaxed),
                state.sending.load(Ordering::Relaxed)
            ),
        }
    }
}

/// Listens on 127.0.0.1, any port, with `SO_REUSEADDR`, a deep backlog and, if asked, a
/// send buffer size for every accepted socket.
fn listen(send_buffer: Option<u32>) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    if let Some(bytes) = send_buffer {
        socket.set_send_buffer_size(bytes)?;
    }
    socket.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
    socket.listen(BACKLOG)
}

/// The child process's `main`:
/// `--serve-fanout KIND --queue N --history N [--keep] [--sndbuf BYTES]`.
pub(crate) fn serve_main(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let kind = args.first().and_then(|arg| ServerKind::parse(arg)).ok_or(
        "usage: --serve-fanout hub|broadcast|broadcast-batched [--queue N] [--history N] \
             [--keep] [--sndbuf BYTES]",
    )?;
    let number = |name: &str, default: usize| -> Result<usize, Box<dyn std::error::Error>> {
        match args.iter().position(|arg| arg == name) {
            Some(at) => Ok(args.get(at + 1).ok_or("a value is missing")?.parse()?),
            None => Ok(default),
        }
    };
    let queue = number("--queue", HubConfig::DEFAULT_QUEUE_MAX_MESSAGES)?.max(1);
    let history = number("--history", HubConfig::DEFAULT_HISTORY_MAX_MESSAGES)?.max(1);
    let keep = args.iter().any(|arg| arg == "--keep");
    let send_buffer = match number("--sndbuf", 0)? {
        0 => None,
        bytes => Some(u32::try_from(bytes)?),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let listener = runtime.block_on(async { listen(send_buffer) })?;
    let port = listener.local_addr()?.port();
    let publisher = if kind == ServerKind::Hub {
        let config = HubConfig {
            history_max_messages: history,
            history_max_bytes: history
                .saturating_mul(256)
                .max(HubConfig::DEFAULT_HISTORY_MAX_BYTES),
            queue_max_messages: queue,
            queue_max_bytes: queue
                .saturating_mul(256)
                .max(HubConfig::DEFAULT_QUEUE_MAX_BYTES),
            start: StartPoint::Live,
            ..HubConfig::default()
        };
        let hub = Hub::new(config);
        let app: axum::Router = hub.router("/feed");
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Publisher::Hub(hub)
    } else {
        let (sender, _) = broadcast::channel(queue);
        let state = Arc::new(Baseline {
            sender,
            batched: kind == ServerKind::BroadcastBatched,
            connections: AtomicUsize::new(0),
            sending: AtomicUsize::new(0),
            lagged: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            kept: keep.then(|| Mutex::new(Vec::new())),
        });
        let accepting = Arc::clone(&state);
        runtime.spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        tokio::spawn(baseline_connection(stream, Arc::clone(&accepting)));
                    }
                    // Out of descriptors, most likely: let connections end first.
                    Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            }
        });
        Publisher::Baseline { state, seq: 0 }
    };
    {
        let mut stdout = io::stdout().lock();
        writeln!(stdout, "LISTEN {port}")?;
        stdout.flush()?;
    }
    answer_commands(publisher);
    // Connections are not closed one by one: the process ends with them.
    std::process::exit(0);
}

/// Answers the parent's commands until stdin closes.
fn answer_commands(mut publisher: Publisher) {
    let stdin = io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let words: Vec<&str> = line.split_whitespace().collect();
        let number = |at: usize| -> u64 { words.get(at).and_then(|w| w.parse().ok()).unwrap_or(0) };
        let answer = match words.first().copied() {
            Some("publish") => {
                let (count, size) = (number(1), usize::try_from(number(2)).unwrap_or(64));
                let start = Instant::now();
                for _ in 0..count {
                    publisher.publish(size);
                }
                format!("DONE {}", start.elapsed().as_micros())
            }
            Some("pace") => pace(
                &mut publisher,
                number(1),
                Duration::from_micros(number(2).max(1)),
                usize::try_from(number(3)).unwrap_or(64),
            ),
            Some("stats") => publisher.stats(),
            Some("epoch") => match &publisher {
                Publisher::Hub(hub) => format!("EPOCH {}", hub.epoch()),
                Publisher::Baseline { .. } => "EPOCH -".to_owned(),
            },
            _ => format!("ERROR unknown command {line:?}"),
        };
        let mut stdout = io::stdout().lock();
        let _ = writeln!(stdout, "{answer}");
        let _ = stdout.flush();
    }
}

/// Publishes `count` messages one every `every` (absolute deadlines, so no drift), and
/// notes when the first eviction or lag happened.
fn pace(publisher: &mut Publisher, count: u64, every: Duration, size: usize) -> String {
    let before = publisher.trouble();
    let start = Instant::now();
    let mut first_trouble: Option<Duration> = None;
    for index in 0..count {
        let due = start + every * u32::try_from(index).unwrap_or(u32::MAX);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        publisher.publish(size);
        if first_trouble.is_none() && index % 10 == 0 && publisher.trouble() > before {
            first_trouble = Some(start.elapsed());
        }
    }
    if first_trouble.is_none() && publisher.trouble() > before {
        first_trouble = Some(start.elapsed());
    }
    format!(
        "DONE {} {}",
        start.elapsed().as_micros(),
        first_trouble.map_or(-1, |at| i64::try_from(at.as_millis()).unwrap_or(i64::MAX))
    )
}

/// One baseline connection: subscribe, handshake, then forward every broadcast message
/// until either side ends.
async fn baseline_connection(stream: TcpStream, state: Arc<Baseline>) {
    // Subscribed before the handshake completes, so a client that has its 101 misses nothing.
    let mut receiver = state.sender.subscribe();
    let _ = stream.set_nodelay(true);
    let mut path = String::new();
    // tungstenite's callback signature, whose error is an HTTP response.
    #[allow(clippy::result_large_err)]
    let callback = |request: &Request, response: Response| {
        path = request.uri().path().to_owned();
        Ok(response)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await else {
        return;
    };
    state.connections.fetch_add(1, Ordering::Relaxed);
    if path == "/replay" {
        drop(receiver);
        replay(&mut ws, &state).await;
    } else {
        forward(&mut ws, &mut receiver, &state).await;
    }
    state.connections.fetch_sub(1, Ordering::Relaxed);
}

/// The plain loop: the next broadcast message out, or the client's frames in.
async fn forward(
    ws: &mut WebSocketStream<TcpStream>,
    receiver: &mut broadcast::Receiver<Message>,
    state: &Baseline,
) {
    loop {
        tokio::select! {
            received = receiver.recv() => match received {
                Ok(message) => {
                    state.sending.fetch_add(1, Ordering::Relaxed);
                    let sent = if state.batched {
                        send_batch(ws, receiver, state, message).await
                    } else {
                        ws.send(message).await
                    };
                    state.sending.fetch_sub(1, Ordering::Relaxed);
                    if sent.is_err() {
                        return;
                    }
                }
                Err(RecvError::Lagged(skipped)) => {
                    state.lagged.fetch_add(1, Ordering::Relaxed);
                    state.skipped.fetch_add(skipped, Ordering::Relaxed);
                }
                Err(RecvError::Closed) => return,
            },
            incoming = ws.next() => match incoming {
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

/// Feeds `first` and whatever the channel already holds (up to [`BATCH_MAX`]), then
/// flushes once.
async fn send_batch(
    ws: &mut WebSocketStream<TcpStream>,
    receiver: &mut broadcast::Receiver<Message>,
    state: &Baseline,
    first: Message,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    ws.feed(first).await?;
    for _ in 0..BATCH_MAX {
        match receiver.try_recv() {
            Ok(message) => ws.feed(message).await?,
            Err(TryRecvError::Lagged(skipped)) => {
                state.lagged.fetch_add(1, Ordering::Relaxed);
                state.skipped.fetch_add(skipped, Ordering::Relaxed);
            }
            Err(_) => break,
        }
    }
    ws.flush().await
}

/// Sends every kept message (a snapshot), the plain way, then waits for the client to go.
async fn replay(ws: &mut WebSocketStream<TcpStream>, state: &Baseline) {
    let kept = state.kept.as_ref().map_or_else(Vec::new, |kept| {
        kept.lock().unwrap_or_else(PoisonError::into_inner).clone()
    });
    for text in kept {
        let message = Message::Text(text);
        let sent = if state.batched {
            ws.feed(message).await
        } else {
            ws.send(message).await
        };
        if sent.is_err() {
            return;
        }
    }
    if ws.flush().await.is_err() {
        return;
    }
    while let Some(Ok(message)) = ws.next().await {
        if message.is_close() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_carry_seq_and_time() {
        let text = payload(42, 64);
        assert_eq!(text.len(), 64);
        let (seq, time) = fields(&text).expect("fields");
        assert_eq!(seq, 42);
        assert!(time > 1_600_000_000_000_000);
        assert_eq!(fields(r#"{"type":"welcome","epoch":"x"}"#), None);
    }
}
