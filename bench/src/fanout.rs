//! Fan-out: resilient-ws-server's hub against a plain tokio-tungstenite broadcast loop,
//! both in child processes (fanout_server.rs), with lightweight tokio-tungstenite clients
//! in this process.
//!
//! Four tables: messages/s delivered in total to 1,000 and 10,000 subscribers (table 8a),
//! the server's resident memory per idle subscriber (8b, measured on the same connections
//! before the throughput trials), the speed of a replay to a client resuming 100,000 messages
//! behind (8c), and what one subscriber that stops reading does to the others' latency (8d).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt;
use tokio::net::TcpSocket;
use tokio::runtime::Runtime;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::Scale;
use crate::clients::{BenchResult, bare_config_like_resilient, bare_connect, runtime};
use crate::fanout_server::{FanoutServer, ServerKind, ServerSetup, fields, stat};
use crate::report::{Table, median, ms, percentile, ratio, thousands};
use crate::servers::unix_micros;
use crate::system::{open_files_limit, socket_budget};

/// Bytes of every published message.
const SIZE: usize = 64;
/// Handshakes in flight at once while subscribers connect.
const CONNECT_BATCH: usize = 250;
/// Longest connecting every subscriber may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest one trial may take once publishing has begun.
const TRIAL_TIMEOUT: Duration = Duration::from_secs(60);
/// Pause after the subscribers connected and the warm-up message arrived, before the RSS.
const SETTLE: Duration = Duration::from_millis(1_000);
/// Messages a client resuming from cursor 0 is behind.
const REPLAY_MESSAGES: u64 = 100_000;
/// Subscribers that read normally in the stalled-subscriber table.
const STALL_READERS: usize = 100;
/// Messages paced in the stalled-subscriber table (half with `--quick`), one every
/// [`STALL_EVERY`], of [`STALL_SIZE`] bytes.
const STALL_MESSAGES: u64 = 2_400;
const STALL_EVERY: Duration = Duration::from_millis(5);
const STALL_SIZE: usize = 512;
/// Latencies of the first messages of a paced run are not counted (connections warm up).
const STALL_WARMUP: u64 = 100;
/// The stalled subscriber's receive buffer (SO_RCVBUF), so its socket fills soon.
const STALL_RCVBUF: u32 = 4_096;
/// The servers' send buffers in the stalled-subscriber table (SO_SNDBUF, the kernel
/// doubles it), so the stalled socket fills within the run rather than after megabytes.
const STALL_SNDBUF: u32 = 64 * 1_024;
/// The hub's and the channel's bound per subscriber in table 8d: the hub's default.
const STALL_QUEUE: usize = resilient_ws_server::HubConfig::DEFAULT_QUEUE_MAX_MESSAGES;

/// The three servers of table 8a (the first is the baseline of the ratios).
const THROUGHPUT_KINDS: [ServerKind; 3] = [
    ServerKind::Broadcast,
    ServerKind::Hub,
    ServerKind::BroadcastBatched,
];

/// What every subscriber in this process shares: the trial's target and how far they got.
struct Progress {
    /// The `seq` that ends the current trial.
    target: AtomicU64,
    /// Subscribers that have received `target`.
    reached: AtomicUsize,
    /// Messages received up to `target`, summed over the subscribers that reached it.
    received: AtomicU64,
    /// When the last subscriber received `target`, ns since `base`.
    last_ns: AtomicU64,
    /// Subscribers that have connected (after the welcome, for the hub).
    opened: AtomicUsize,
    /// Subscribers whose connection failed or ended.
    ended: AtomicUsize,
    changed: Notify,
    base: Instant,
}

impl Progress {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            target: AtomicU64::new(u64::MAX),
            reached: AtomicUsize::new(0),
            received: AtomicU64::new(0),
            last_ns: AtomicU64::new(0),
            opened: AtomicUsize::new(0),
            ended: AtomicUsize::new(0),
            changed: Notify::new(),
            base: Instant::now(),
        })
    }

    fn bump(&self, counter: &AtomicUsize) {
        counter.fetch_add(1, Ordering::AcqRel);
        self.changed.notify_waiters();
    }

    /// Waits until `counter` reaches `wanted`, every subscriber is accounted for, or
    /// `deadline`; returns `counter`.
    async fn wait(&self, counter: &AtomicUsize, wanted: usize, deadline: Instant) -> usize {
        loop {
            let now = counter.load(Ordering::Acquire);
            let ended = self.ended.load(Ordering::Acquire);
            if now >= wanted || now + ended >= wanted || Instant::now() >= deadline {
                return now;
            }
            let _ = tokio::time::timeout(Duration::from_millis(20), self.changed.notified()).await;
        }
    }
}

/// How the fan-out sizes follow the run's scale: the largest is the memory suite's
/// connection count (10,000, or 1,000 with `--quick`), the other a tenth of it; each trial
/// delivers twice the receive suite's small-message count in total.
struct Sizes {
    /// Fan-out sizes, smallest first.
    subscribers: Vec<usize>,
    /// Messages delivered in total per throughput trial (M × N).
    deliveries: u64,
    /// Throughput trials per server and size, and replay clients per server.
    repeats: usize,
    /// Messages of each stalled-subscriber run: [`STALL_MESSAGES`], half in a quick run
    /// (one repeat).
    stall_messages: u64,
}

impl Sizes {
    fn of(scale: &Scale) -> Self {
        let top = scale.memory_connections.max(10);
        Self {
            subscribers: vec![top / 10, top],
            deliveries: scale.small_messages * 2,
            repeats: scale.repeats.max(1),
            stall_messages: if scale.repeats > 1 {
                STALL_MESSAGES
            } else {
                STALL_MESSAGES / 2
            },
        }
    }

    /// M: messages published per trial to `subscribers`.
    fn messages(&self, subscribers: usize) -> u64 {
        (self.deliveries / subscribers.max(1) as u64).max(1)
    }
}

/// The fan-out suite: tables 8a to 8d.
pub(crate) fn fanout(scale: &Scale) -> Vec<Table> {
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(error) => return vec![Table::failed("8. Fan-out", &format!("runtime: {error}"))],
    };
    let sizes = Sizes::of(scale);
    let (mut throughput, memory) = throughput_and_memory(&runtime, &sizes);
    throughput.note(format!(
        "server processes: 2 tokio workers each; client process: up to {} subscribers on 2 \
         tokio workers, tokio-tungstenite 0.30 with 4 KiB read and write buffers",
        thousands(sizes.subscribers.last().copied().unwrap_or(0) as f64)
    ));
    let replay = replay(&runtime, sizes.repeats);
    let stall = stall(&runtime, sizes.stall_messages);
    runtime.shutdown_timeout(Duration::from_secs(1));
    vec![throughput, memory, replay, stall]
}

/// One server kind at one fan-out size: its trials and its memory.
struct FanoutRun {
    /// msg/s delivered, per trial.
    rates: Vec<f64>,
    /// How long the server's publish loop took, per trial (s).
    publish: Vec<f64>,
    /// The server's VmRSS (KiB) before the first subscriber connected, and with all of
    /// them connected and idle.
    rss_before: u64,
    rss_after: u64,
    /// Subscribers connected.
    open: usize,
}

/// Tables 8a and 8b, on the same connections.
fn throughput_and_memory(runtime: &Runtime, sizes: &Sizes) -> (Table, Table) {
    let mut throughput = Table::new(
        "8a. Fan-out throughput",
        format!(
            "One server process publishes M messages of {SIZE} B back to back \
             (`hub.publish_with` / `broadcast::Sender::send` in a loop on one thread) to N \
             subscribers connected from this process; msg/s = N × M ÷ (time from the publish \
             command to the last subscriber's last message), median of {} runs after a warm-up \
             message. M × N = {} per run. Every subscriber's bound (the hub's \
             `queue_max_messages`, the channel's capacity) is M + 16, so nothing is evicted \
             or skipped; ratio to the `send()` baseline at the same N.",
            sizes.repeats,
            thousands(sizes.deliveries as f64),
        ),
        &[
            "server",
            "subscribers",
            "M",
            "msg/s delivered",
            "ratio",
            "publish loop",
        ],
    );
    let mut memory = Table::new(
        "8b. Server memory per subscriber",
        format!(
            "The same server processes: (VmRSS of the server with N idle subscribers \
             connected, after one warm-up message reached all and {} s settled − VmRSS before \
             the first connected) ÷ N. The hub's connections use its 4 KiB socket buffers \
             (`HubConfig::socket_buffer_size`); the baselines, tokio-tungstenite 0.30's \
             defaults (128 KiB read and write buffers).",
            SETTLE.as_secs_f64()
        ),
        &[
            "server",
            "subscribers",
            "per subscriber",
            "ratio",
            "RSS before",
            "RSS after",
        ],
    );
    let budget = socket_budget();
    for &subscribers in &sizes.subscribers {
        if subscribers > budget {
            let (soft, hard) = open_files_limit().unwrap_or((0, 0));
            let why = format!(
                "{subscribers} subscribers not run: each process needs one descriptor per \
                 subscriber plus a few hundred, and the open-files limit is {soft} (hard \
                 {hard}); raise it with `ulimit -n` before the run"
            );
            throughput.note(why.clone());
            memory.note(why);
            continue;
        }
        let messages = sizes.messages(subscribers);
        let mut runs = Vec::new();
        for kind in THROUGHPUT_KINDS {
            let setup = ServerSetup {
                kind,
                queue: usize::try_from(messages).unwrap_or(usize::MAX) + 16,
                history: resilient_ws_server::HubConfig::DEFAULT_HISTORY_MAX_MESSAGES,
                keep: false,
                send_buffer: None,
            };
            match fanout_run(runtime, setup, subscribers, messages, sizes.repeats) {
                Ok((run, errors)) => {
                    for error in errors {
                        throughput.note(format!("{} at {subscribers}: {error}", kind.label()));
                    }
                    runs.push((kind, run));
                }
                Err(error) => {
                    throughput.note(format!("{} at {subscribers}: {error}", kind.label()));
                }
            }
        }
        let baseline = runs
            .iter()
            .find(|(kind, _)| *kind == ServerKind::Broadcast)
            .map(|(_, run)| (median(&run.rates), per_subscriber(run)));
        let (base_rate, base_memory) = baseline.unwrap_or((f64::NAN, f64::NAN));
        let largest = sizes.subscribers.last() == Some(&subscribers);
        if let Some((_, hub)) = runs
            .iter()
            .find(|(kind, _)| largest && *kind == ServerKind::Hub)
        {
            memory.note(format!(
                "hub − `send()` baseline at {} subscribers: {} B per subscriber",
                thousands(subscribers as f64),
                thousands(per_subscriber(hub) - base_memory)
            ));
        }
        for (kind, run) in &runs {
            let rate = median(&run.rates);
            throughput.row(vec![
                kind.label().into(),
                thousands(subscribers as f64),
                thousands(messages as f64),
                thousands(rate),
                ratio(rate / base_rate, true),
                ms(Duration::from_secs_f64(median(&run.publish))),
            ]);
            let per = per_subscriber(run);
            memory.row(vec![
                kind.label().into(),
                thousands(run.open as f64),
                format!("{} B", thousands(per)),
                ratio(per / base_memory, true),
                format!("{:.1} MiB", run.rss_before as f64 / 1024.0),
                format!("{:.1} MiB", run.rss_after as f64 / 1024.0),
            ]);
        }
    }
    throughput.note(
        "the hub queues a reference-counted copy of each message per subscriber and its writer \
         task flushes whenever nothing more is queued; the `send()` baseline flushes (one \
         write) per message; the batched baseline feeds what the channel already holds and \
         flushes once, as the hub does",
    );
    throughput.note(
        "publish loop = how long the server's loop of M publishes took, median: the hub's \
         `publish_with` queues the message for every subscriber under the hub's lock (O(N) \
         per message); `broadcast::Sender::send` stores it once and wakes the receivers",
    );
    memory.note(
        "most of either figure is tungstenite's 128 KiB read buffer, which it zero-fills on \
         the first read (axum's `WebSocketUpgrade` defaults, not set by `hub.router`); the \
         difference is the hub's own per-subscriber state",
    );
    memory.note(
        "the hub's figure includes its per-subscriber state (queue, subscription, the \
         connection's reader, writer and supervisor) and axum's upgrade; the baselines hold a \
         `broadcast::Receiver` and the WebSocket per connection",
    );
    (throughput, memory)
}

fn per_subscriber(run: &FanoutRun) -> f64 {
    (run.rss_after.saturating_sub(run.rss_before) * 1024) as f64 / run.open.max(1) as f64
}

/// Starts a server, connects `subscribers`, measures its memory, then runs `repeats` trials
/// of `messages` each. Returns the run and the trials' errors.
fn fanout_run(
    runtime: &Runtime,
    setup: ServerSetup,
    subscribers: usize,
    messages: u64,
    repeats: usize,
) -> BenchResult<(FanoutRun, Vec<String>)> {
    let mut server = FanoutServer::spawn(setup)?;
    std::thread::sleep(Duration::from_millis(200));
    let rss_before = server.rss_kib().ok_or("no VmRSS for the server")?;
    let progress = Progress::new();
    let url = server.url("/feed");
    let permits = Arc::new(Semaphore::new(CONNECT_BATCH));
    let tasks: Vec<JoinHandle<()>> = (0..subscribers)
        .map(|_| {
            runtime.spawn(counting_subscriber(
                url.clone(),
                setup.kind.welcomes(),
                Arc::clone(&progress),
                Arc::clone(&permits),
            ))
        })
        .collect();
    let result = (|| -> BenchResult<_> {
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        let open = runtime.block_on(progress.wait(&progress.opened, subscribers, deadline));
        if open < subscribers {
            return Err(format!(
                "only {open} of {subscribers} subscribers connected ({} failed)",
                progress.ended.load(Ordering::Acquire)
            )
            .into());
        }
        let mut head = 0;
        // The warm-up: every subscriber's first message, then the idle memory.
        trial(runtime, &mut server, &progress, subscribers, &mut head, 1)?;
        std::thread::sleep(SETTLE);
        let rss_after = server.rss_kib().ok_or("no VmRSS for the server")?;
        let mut rates = Vec::new();
        let mut publish = Vec::new();
        let mut errors = Vec::new();
        for _ in 0..repeats {
            match trial(
                runtime,
                &mut server,
                &progress,
                subscribers,
                &mut head,
                messages,
            ) {
                Ok((rate, loop_time)) => {
                    rates.push(rate);
                    publish.push(loop_time);
                }
                Err(error) => {
                    errors.push(error.to_string());
                    break;
                }
            }
        }
        Ok((
            FanoutRun {
                rates,
                publish,
                rss_before,
                rss_after,
                open,
            },
            errors,
        ))
    })();
    // The server first, so its side of every connection goes at once.
    drop(server);
    for task in tasks {
        task.abort();
    }
    result
}

/// One trial: publishes `messages`, waits until every subscriber has the last; msg/s
/// delivered in total, and how long the server's publish loop took (s).
fn trial(
    runtime: &Runtime,
    server: &mut FanoutServer,
    progress: &Progress,
    subscribers: usize,
    head: &mut u64,
    messages: u64,
) -> BenchResult<(f64, f64)> {
    let target = *head + messages;
    progress.reached.store(0, Ordering::Release);
    progress.received.store(0, Ordering::Release);
    progress.last_ns.store(0, Ordering::Release);
    progress.target.store(target, Ordering::Release);
    let start = Instant::now();
    let answer = server.command(&format!("publish {messages} {SIZE}"), "DONE")?;
    let loop_micros: f64 = answer
        .first()
        .and_then(|us| us.parse().ok())
        .unwrap_or(f64::NAN);
    *head = target;
    let deadline = start + TRIAL_TIMEOUT;
    let reached = runtime.block_on(progress.wait(&progress.reached, subscribers, deadline));
    if reached < subscribers {
        return Err(format!(
            "{reached} of {subscribers} subscribers got message {target} within {} s ({} \
             connections ended)",
            TRIAL_TIMEOUT.as_secs(),
            progress.ended.load(Ordering::Acquire)
        )
        .into());
    }
    let received = progress.received.load(Ordering::Acquire);
    let expected = messages * subscribers as u64;
    if received != expected {
        return Err(format!("{received} messages delivered, {expected} expected").into());
    }
    let end = progress.base + Duration::from_nanos(progress.last_ns.load(Ordering::Acquire));
    let elapsed = end.saturating_duration_since(start).as_secs_f64();
    Ok((received as f64 / elapsed.max(1e-9), loop_micros / 1e6))
}

/// A subscriber that counts messages and reports reaching each trial's target.
async fn counting_subscriber(
    url: String,
    welcome: bool,
    progress: Arc<Progress>,
    permits: Arc<Semaphore>,
) {
    let permit = permits.acquire_owned().await;
    let Ok(mut ws) = bare_connect(&url, Some(bare_config_like_resilient())).await else {
        progress.bump(&progress.ended);
        return;
    };
    if !welcome {
        progress.bump(&progress.opened);
    }
    drop(permit);
    let mut count = 0u64;
    let mut welcomed = !welcome;
    while let Some(Ok(message)) = ws.next().await {
        let Message::Text(text) = message else {
            continue;
        };
        let Some((seq, _)) = fields(text.as_str()) else {
            if !welcomed {
                welcomed = true;
                progress.bump(&progress.opened);
            }
            continue;
        };
        count += 1;
        if seq == progress.target.load(Ordering::Acquire) {
            progress.received.fetch_add(count, Ordering::AcqRel);
            count = 0;
            let at = u64::try_from(progress.base.elapsed().as_nanos()).unwrap_or(u64::MAX);
            progress.last_ns.fetch_max(at, Ordering::AcqRel);
            progress.bump(&progress.reached);
        }
    }
    progress.bump(&progress.ended);
}

/// Table 8c: a client resuming `REPLAY_MESSAGES` behind.
fn replay(runtime: &Runtime, repeats: usize) -> Table {
    let mut table = Table::new(
        "8c. Replay speed",
        format!(
            "The server publishes {} messages of {SIZE} B with nobody connected, then one \
             client (tokio-tungstenite 0.30, default config) connects and reads until the \
             last; msg/s = {} ÷ (time from connecting to the last message), median of \
             {repeats} clients one after another. The hub: `?cursor=0&epoch=<epoch>` with \
             `history_max_messages` = {} (and 256 B a message for `history_max_bytes`), \
             welcome `resumed`, from 1. The baseline has no replay: its `/replay` sends a \
             `Vec` of every published message in a plain loop, with `send()` per message or \
             `feed()` and one flush.",
            thousands(REPLAY_MESSAGES as f64),
            thousands(REPLAY_MESSAGES as f64),
            thousands(REPLAY_MESSAGES as f64 + 1_000.0),
        ),
        &["server", "msg/s", "ratio", "time to the head"],
    );
    let kinds = [
        (ServerKind::Broadcast, "/replay"),
        (ServerKind::Hub, "/feed?cursor=0&epoch="),
        (ServerKind::BroadcastBatched, "/replay"),
    ];
    let mut baseline = f64::NAN;
    for (kind, path) in kinds {
        match replay_runs(runtime, kind, path, repeats) {
            Ok(times) => {
                let seconds = median(&times);
                let rate = REPLAY_MESSAGES as f64 / seconds;
                if kind == ServerKind::Broadcast {
                    baseline = rate;
                }
                let label = match kind {
                    ServerKind::Hub => "resilient-ws-server hub (replay buffer)",
                    ServerKind::Broadcast => "plain loop over a `Vec`, `send()` (baseline)",
                    ServerKind::BroadcastBatched => "plain loop over a `Vec`, `feed()` + one flush",
                };
                table.row(vec![
                    label.into(),
                    thousands(rate),
                    ratio(rate / baseline, true),
                    ms(Duration::from_secs_f64(seconds)),
                ]);
            }
            Err(error) => table.note(format!("{}: {error}", kind.label())),
        }
    }
    table
}

/// Replay times (s) of `repeats` clients, one after another.
fn replay_runs(
    runtime: &Runtime,
    kind: ServerKind,
    path: &str,
    repeats: usize,
) -> BenchResult<Vec<f64>> {
    let mut server = FanoutServer::spawn(ServerSetup {
        kind,
        queue: resilient_ws_server::HubConfig::DEFAULT_QUEUE_MAX_MESSAGES,
        history: usize::try_from(REPLAY_MESSAGES)? + 1_000,
        keep: true,
        send_buffer: None,
    })?;
    server.command(&format!("publish {REPLAY_MESSAGES} {SIZE}"), "DONE")?;
    let epoch = server.command("epoch", "EPOCH")?.join("");
    let url = if kind.welcomes() {
        server.url(&format!("{path}{epoch}"))
    } else {
        server.url(path)
    };
    let mut times = Vec::new();
    for _ in 0..repeats {
        let client = replay_client(url.clone(), kind.welcomes());
        let task = runtime.spawn(async move { tokio::time::timeout(TRIAL_TIMEOUT, client).await });
        let elapsed = runtime
            .block_on(task)?
            .map_err(|_| format!("no head within {} s", TRIAL_TIMEOUT.as_secs()))??;
        times.push(elapsed.as_secs_f64());
    }
    if kind.welcomes() {
        let stats = server.stats()?;
        let replayed = stat(&stats, "replayed").unwrap_or(0);
        let wanted = REPLAY_MESSAGES * repeats as u64;
        if replayed != wanted {
            return Err(format!("the hub replayed {replayed}, {wanted} expected").into());
        }
    }
    Ok(times)
}

/// Connects and reads until `REPLAY_MESSAGES`, checking order; the time from connecting.
async fn replay_client(url: String, welcome: bool) -> BenchResult<Duration> {
    let start = Instant::now();
    let mut ws = bare_connect(&url, None).await?;
    let mut next = 1;
    while let Some(message) = ws.next().await {
        let Message::Text(text) = message? else {
            continue;
        };
        let Some((seq, _)) = fields(text.as_str()) else {
            if welcome && !text.as_str().contains("\"reason\":\"resumed\",\"from\":1,") {
                return Err(format!("unexpected welcome {}", text.as_str()).into());
            }
            continue;
        };
        if seq != next {
            return Err(format!("message {seq} where {next} was due").into());
        }
        if seq == REPLAY_MESSAGES {
            return Ok(start.elapsed());
        }
        next += 1;
    }
    Err(format!("the connection ended at message {}", next - 1).into())
}

/// One paced run's outcome.
struct StallRun {
    /// Every reader's publish-to-receive latencies, sorted.
    latencies: Vec<Duration>,
    /// Readers that received every message.
    complete: usize,
    /// When the first eviction (hub) or lag (baseline) happened, from the pace's start.
    first_trouble: Option<Duration>,
    /// The server's counters after the run.
    stats: Vec<(String, u64)>,
}

/// Table 8d: readers' latency with and without one subscriber that stops reading.
fn stall(runtime: &Runtime, messages: u64) -> Table {
    let mut table = Table::new(
        "8d. One stalled subscriber and the others' latency",
        format!(
            "{STALL_READERS} subscribers read normally while the server publishes {} messages \
             of {STALL_SIZE} B, one every {} ms; latency = receive time − publish time (the \
             payload carries the publisher's clock, the same machine's), over every reader's \
             messages after the first {STALL_WARMUP}. \"With\": one more subscriber connects \
             (SO_RCVBUF {} B) and never reads. Bound per subscriber: {STALL_QUEUE} messages \
             (the hub's default `queue_max_messages` and 4 MiB; the channel's capacity). Both \
             servers' sockets have SO_SNDBUF {} KiB (set on the listener), so the stalled \
             connection's buffers fill within the run rather than after megabytes.",
            thousands(messages as f64),
            STALL_EVERY.as_millis(),
            thousands(f64::from(STALL_RCVBUF)),
            STALL_SNDBUF / 1_024,
        ),
        &[
            "server",
            "stalled",
            "p50",
            "p99",
            "max",
            "p99 ratio",
            "p99 ÷ without",
            "readers complete",
            "the stalled subscriber",
        ],
    );
    let kinds = [ServerKind::Broadcast, ServerKind::Hub];
    let mut base_p99 = [Duration::ZERO; 2];
    for kind in kinds {
        let mut without = Duration::ZERO;
        for (index, stalled) in [false, true].into_iter().enumerate() {
            match stall_run(runtime, kind, stalled, messages) {
                Ok(run) => {
                    let p99 = percentile(&run.latencies, 99.0);
                    if kind == ServerKind::Broadcast {
                        base_p99[index] = p99;
                    }
                    if !stalled {
                        without = p99;
                    }
                    table.row(vec![
                        kind.label().into(),
                        if stalled { "with" } else { "without" }.into(),
                        ms(percentile(&run.latencies, 50.0)),
                        ms(p99),
                        ms(run.latencies.last().copied().unwrap_or_default()),
                        ratio(p99.as_secs_f64() / base_p99[index].as_secs_f64(), true),
                        ratio(p99.as_secs_f64() / without.as_secs_f64(), true),
                        format!("{} of {STALL_READERS}", run.complete),
                        fate(kind, stalled, &run),
                    ]);
                }
                Err(error) => table.note(format!(
                    "{}, {} stalled: {error}",
                    kind.label(),
                    if stalled { "with" } else { "without" }
                )),
            }
        }
    }
    table.note(
        "the hub's publisher only queues: the stalled subscriber's writer waits on its full \
         socket while its queue fills, and the overflow closes it with 1013 (the close frame \
         waits up to `close_timeout`, then the connection drops). The baseline's \
         `broadcast::Sender::send` never waits either: the stalled connection's task sits in \
         `ws.send()` on its full socket and stops receiving; the channel overwrites its \
         slots, and the task would see `RecvError::Lagged` (messages skipped) only if its \
         socket drained",
    );
    table.note(
        "p99 ratio compares each row with the baseline in the same condition (without / with \
         the stalled subscriber); p99 ÷ without compares a server with itself",
    );
    table
}

/// What happened to the stalled subscriber (and any lag among the readers), from the
/// server's counters.
fn fate(kind: ServerKind, stalled: bool, run: &StallRun) -> String {
    let value = |key: &str| stat(&run.stats, key).unwrap_or(0);
    let at = run.first_trouble.map_or_else(String::new, |at| {
        format!(" after {:.1} s", at.as_secs_f64())
    });
    if kind == ServerKind::Hub {
        return match (value("evicted_slow"), stalled) {
            (0, false) => "-".into(),
            (0, true) => format!(
                "still subscribed, {} messages queued",
                thousands(value("queued") as f64)
            ),
            (evicted, _) => format!("evicted with 1013{at} ({evicted} evicted)"),
        };
    }
    let stuck = if stalled {
        format!(
            "still connected, {} connection task(s) waiting in `send()`",
            value("sending")
        )
    } else {
        String::new()
    };
    let lagged = match value("lagged") {
        0 => String::new(),
        lagged => format!(
            "readers lagged {lagged} times{at}, {} messages skipped",
            thousands(value("skipped") as f64)
        ),
    };
    match (stuck.is_empty(), lagged.is_empty()) {
        (true, true) => "-".into(),
        (false, false) => format!("{stuck}; {lagged}"),
        _ => format!("{stuck}{lagged}"),
    }
}

/// One paced run against a fresh server.
fn stall_run(
    runtime: &Runtime,
    kind: ServerKind,
    stalled: bool,
    messages: u64,
) -> BenchResult<StallRun> {
    let mut server = FanoutServer::spawn(ServerSetup {
        kind,
        queue: STALL_QUEUE,
        history: resilient_ws_server::HubConfig::DEFAULT_HISTORY_MAX_MESSAGES,
        keep: false,
        send_buffer: Some(STALL_SNDBUF),
    })?;
    let url = server.url("/feed");
    let progress = Progress::new();
    progress.target.store(messages, Ordering::Release);
    let permits = Arc::new(Semaphore::new(CONNECT_BATCH));
    let readers: Vec<JoinHandle<Vec<u32>>> = (0..STALL_READERS)
        .map(|_| {
            runtime.spawn(timing_subscriber(
                url.clone(),
                kind.welcomes(),
                Arc::clone(&progress),
                Arc::clone(&permits),
            ))
        })
        .collect();
    let result = (|| -> BenchResult<_> {
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        let open = runtime.block_on(progress.wait(&progress.opened, STALL_READERS, deadline));
        if open < STALL_READERS {
            return Err(format!("only {open} of {STALL_READERS} readers connected").into());
        }
        let staller = if stalled {
            Some(runtime.block_on(stalled_subscriber(url.clone()))?)
        } else {
            None
        };
        // The hub subscribes after the handshake: wait until it counts everyone.
        let wanted = STALL_READERS as u64 + u64::from(stalled);
        let key = if kind.welcomes() {
            "subscribers"
        } else {
            "connections"
        };
        let subscribed = Instant::now() + Duration::from_secs(5);
        while stat(&server.stats()?, key).unwrap_or(0) < wanted && Instant::now() < subscribed {
            std::thread::sleep(Duration::from_millis(10));
        }
        let answer = server.command(
            &format!("pace {messages} {} {STALL_SIZE}", STALL_EVERY.as_micros()),
            "DONE",
        )?;
        let first_trouble = answer
            .get(1)
            .and_then(|ms| ms.parse::<u64>().ok())
            .map(Duration::from_millis);
        let done = Instant::now() + Duration::from_secs(10);
        runtime.block_on(progress.wait(&progress.reached, STALL_READERS, done));
        let stats = server.stats()?;
        drop(staller);
        Ok((first_trouble, stats))
    })();
    drop(server);
    let (first_trouble, stats) = result?;
    let mut latencies = Vec::new();
    let mut complete = 0;
    for reader in readers {
        let samples = runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(5), reader)
                .await
                .ok()
                .and_then(Result::ok)
        });
        if let Some(samples) = samples {
            complete += usize::from(samples.len() as u64 == messages - STALL_WARMUP);
            latencies.extend(
                samples
                    .into_iter()
                    .map(|micros| Duration::from_micros(u64::from(micros))),
            );
        }
    }
    latencies.sort();
    Ok(StallRun {
        latencies,
        complete,
        first_trouble,
        stats,
    })
}

/// A reader that records the latency of every message after the warm-up, until the
/// target; returns them in µs.
async fn timing_subscriber(
    url: String,
    welcome: bool,
    progress: Arc<Progress>,
    permits: Arc<Semaphore>,
) -> Vec<u32> {
    let permit = permits.acquire_owned().await;
    let Ok(mut ws) = bare_connect(&url, Some(bare_config_like_resilient())).await else {
        progress.bump(&progress.ended);
        return Vec::new();
    };
    if !welcome {
        progress.bump(&progress.opened);
    }
    drop(permit);
    let target = progress.target.load(Ordering::Acquire);
    let mut samples = Vec::with_capacity(usize::try_from(target).unwrap_or(0));
    let mut welcomed = !welcome;
    while let Some(Ok(message)) = ws.next().await {
        let Message::Text(text) = message else {
            continue;
        };
        let now = unix_micros(SystemTime::now());
        let Some((seq, sent)) = fields(text.as_str()) else {
            if !welcomed {
                welcomed = true;
                progress.bump(&progress.opened);
            }
            continue;
        };
        if seq > STALL_WARMUP {
            samples.push(u32::try_from(now.saturating_sub(sent)).unwrap_or(u32::MAX));
        }
        if seq >= target {
            progress.bump(&progress.reached);
            return samples;
        }
    }
    progress.bump(&progress.ended);
    samples
}

/// Connects with a small receive buffer and completes the handshake, then is never read.
async fn stalled_subscriber(
    url: String,
) -> BenchResult<tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>> {
    let address = url
        .strip_prefix("ws://")
        .and_then(|rest| rest.split('/').next())
        .ok_or("bad url")?
        .parse()?;
    let socket = TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(STALL_RCVBUF)?;
    let stream = socket.connect(address).await?;
    let (ws, _) = tokio_tungstenite::client_async(url, stream).await?;
    Ok(ws)
}
