//! Receive and send throughput: resilient-ws against a bare tokio-tungstenite client (and,
//! for receive, peers: see peers.rs), on the same runtime, against the same server process.

use std::hint::black_box;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use resilient_ws::{Client, Event, Payload, SendError};
use resilient_ws_core::json_cursor;
use tokio::runtime::Runtime;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::Scale;
use crate::clients::{
    BenchResult, bare_config_like_resilient, bare_connect, run_trial, unexpected, wait_open,
};
use crate::report::{Table, median, ratio, thousands};
use crate::servers::{FIRST_SEQ, ServerProcess, payload};
use crate::system::{context_switches, process_cpu_ns};

/// Receive throughput must reach this share of the baseline's.
const RECEIVE_TARGET: f64 = 0.95;
/// Send throughput must reach this share of the baseline's.
const SEND_TARGET: f64 = 1.0;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Receiver {
    Bare,
    Resilient,
    ResilientCursor,
    BareSmallBuffers,
    BareScan,
    Ezsockets,
    TokioWebsockets,
}

impl Receiver {
    const ALL: [Self; 7] = [
        Self::Bare,
        Self::Resilient,
        Self::ResilientCursor,
        Self::BareSmallBuffers,
        Self::BareScan,
        Self::Ezsockets,
        Self::TokioWebsockets,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::Bare => "tokio-tungstenite (baseline, default config)",
            Self::Resilient => "resilient-ws (no cursor)",
            Self::ResilientCursor => "resilient-ws, cursor_field(\"seq\")",
            Self::BareSmallBuffers => "tokio-tungstenite, 4 KiB buffers (as resilient-ws)",
            Self::BareScan => "tokio-tungstenite + the same cursor scan",
            Self::Ezsockets => "ezsockets 0.7 (peer, default config)",
            Self::TokioWebsockets => "tokio-websockets 0.13 (peer, default config)",
        }
    }

    fn has_target(self) -> bool {
        matches!(self, Self::Resilient | Self::ResilientCursor)
    }
}

/// One run: time from the first message to the last, and what the process spent on it.
#[derive(Clone, Copy)]
struct Run {
    rate: f64,
    cpu_ns_per_message: f64,
    switches_per_1k: f64,
}

/// Suite 1: messages per second received, from the first message to the last.
pub(crate) fn receive(runtime: &Runtime, server: &ServerProcess, scale: &Scale) -> Vec<Table> {
    let sizes = [
        (scale.small_messages, 64usize),
        (scale.large_messages, 16 * 1024),
    ];
    let mut runs: Vec<Vec<Vec<Run>>> = vec![vec![Vec::new(); sizes.len()]; Receiver::ALL.len()];
    let mut errors = Vec::new();
    for (size_index, (n, size)) in sizes.iter().enumerate() {
        let url = server.url(&format!("/blast?n={n}&size={size}"));
        for _ in 0..scale.repeats {
            // Interleaved, so drift in the machine's load spreads over every client.
            for (index, receiver) in Receiver::ALL.iter().enumerate() {
                let trial = receive_once(*receiver, url.clone(), *n);
                let (cpu, switches) = (process_cpu_ns(), context_switches());
                let result = run_trial(runtime, trial);
                let cpu = process_cpu_ns().saturating_sub(cpu) as f64;
                let switches = context_switches().saturating_sub(switches) as f64;
                match result {
                    Ok(elapsed) => runs[index][size_index].push(Run {
                        rate: (*n - 1) as f64 / elapsed.as_secs_f64().max(1e-9),
                        cpu_ns_per_message: cpu / *n as f64,
                        switches_per_1k: switches * 1_000.0 / *n as f64,
                    }),
                    Err(error) => errors.push(format!("{} ({size} B): {error}", receiver.label())),
                }
            }
        }
    }
    let (small_n, large_n) = (scale.small_messages, scale.large_messages);
    let mut table = Table::new(
        "1. Receive throughput",
        format!(
            "{} messages of 64 B and {} of 16 KiB from a blast server writing pre-built frames; \
             msg/s from the first message to the last, median of {} runs; ratio to the \
             baseline (target ≥ {RECEIVE_TARGET} for resilient-ws). CPU = on-CPU time of all \
             the client process's threads per message (from /proc/self/task/*/schedstat), \
             switches = context switches per 1,000 messages.",
            thousands(small_n as f64),
            thousands(large_n as f64),
            scale.repeats
        ),
        &[
            "client",
            "64 B msg/s",
            "ratio",
            "CPU ns/msg",
            "switches/1k",
            "16 KiB msg/s",
            "MiB/s",
            "ratio",
            "CPU ns/msg",
        ],
    );
    let medians: Vec<Vec<Run>> = runs
        .iter()
        .map(|sizes| {
            sizes
                .iter()
                .map(|runs| Run {
                    rate: median(&runs.iter().map(|run| run.rate).collect::<Vec<_>>()),
                    cpu_ns_per_message: median(
                        &runs
                            .iter()
                            .map(|run| run.cpu_ns_per_message)
                            .collect::<Vec<_>>(),
                    ),
                    switches_per_1k: median(
                        &runs
                            .iter()
                            .map(|run| run.switches_per_1k)
                            .collect::<Vec<_>>(),
                    ),
                })
                .collect()
        })
        .collect();
    let baseline = &medians[0];
    for (index, receiver) in Receiver::ALL.iter().enumerate() {
        let [small, large] = [medians[index][0], medians[index][1]];
        let small_ratio = small.rate / baseline[0].rate;
        let large_ratio = large.rate / baseline[1].rate;
        let meets = |value: f64| !receiver.has_target() || value >= RECEIVE_TARGET;
        table.row(vec![
            receiver.label().into(),
            thousands(small.rate),
            ratio(small_ratio, meets(small_ratio)),
            thousands(small.cpu_ns_per_message),
            format!("{:.1}", small.switches_per_1k),
            thousands(large.rate),
            format!("{:.0}", large.rate * 16_384.0 / 1_048_576.0),
            ratio(large_ratio, meets(large_ratio)),
            thousands(large.cpu_ns_per_message),
        ]);
    }
    let position = |wanted: Receiver| Receiver::ALL.iter().position(|r| *r == wanted);
    if let (Some(scan), Some(cursor)) = (
        position(Receiver::BareScan),
        position(Receiver::ResilientCursor),
    ) {
        table.note(format!(
            "resilient-ws with cursors against a baseline doing the same cursor scan (64 B): {:.2}",
            medians[cursor][0].rate / medians[scan][0].rate
        ));
    }
    table.note(
        "every client reads on a task spawned on the same runtime (multi-thread, 2 workers) and \
         sets TCP_NODELAY, except ezsockets, whose connector does not (Nagle's algorithm only \
         delays what a client sends)",
    );
    table.note(
        "peers (no target, shown for comparison): ezsockets 0.7 = `ezsockets::connect` with \
         `ClientConfig::new(url)`, messages counted in `ClientExt::on_text`, the last one \
         signalled over a oneshot channel; its socket task forwards every message over an \
         unbounded channel to its client actor, which calls the handler. It runs on its own \
         tokio-tungstenite 0.26 (tungstenite 0.26), not the 0.30 of the baseline and \
         resilient-ws, in this benchmark only. tokio-websockets 0.13 = `ClientBuilder` with \
         its default `Config` and `Limits` over plain TCP, a `StreamExt::next` loop as the \
         baseline's",
    );
    table.notes.extend(errors);
    vec![table, crate::diagnose::core_cost(scale)]
}

async fn receive_once(receiver: Receiver, url: String, n: u64) -> BenchResult<Duration> {
    match receiver {
        Receiver::Bare => bare_receive(url, n, None, false).await,
        Receiver::BareSmallBuffers => {
            bare_receive(url, n, Some(bare_config_like_resilient()), false).await
        }
        Receiver::BareScan => bare_receive(url, n, None, true).await,
        Receiver::Resilient => resilient_receive(url, n, false).await,
        Receiver::ResilientCursor => resilient_receive(url, n, true).await,
        Receiver::Ezsockets => crate::peers::ezsockets_receive(url, n).await,
        Receiver::TokioWebsockets => crate::peers::tokio_websockets_receive(url, n).await,
    }
}

async fn bare_receive(
    url: String,
    n: u64,
    config: Option<WebSocketConfig>,
    scan: bool,
) -> BenchResult<Duration> {
    let extract = scan.then(|| json_cursor("seq"));
    let mut ws = bare_connect(&url, config).await?;
    let mut count = 0;
    let mut first = None;
    while let Some(message) = ws.next().await {
        if let Message::Text(text) = message? {
            if let Some(extract) = &extract {
                // The same work resilient-ws does per message: own the text, scan it.
                let payload = Payload::from(text.as_str());
                black_box(extract(&payload));
            } else {
                black_box(&text);
            }
            let first = *first.get_or_insert_with(Instant::now);
            count += 1;
            if count == n {
                return Ok(first.elapsed());
            }
        }
    }
    Err(format!("connection ended after {count} of {n} messages").into())
}

async fn resilient_receive(url: String, n: u64, cursor: bool) -> BenchResult<Duration> {
    let mut builder = Client::builder(url);
    if cursor {
        builder = builder.cursor_field("seq");
    }
    let (client, mut events) = builder.connect()?;
    wait_open(&mut events).await?;
    let mut count = 0;
    let mut first = None;
    while let Some(event) = events.recv().await {
        match event {
            Event::Message {
                payload,
                cursor: found,
            } => {
                if cursor && found.is_none() {
                    return Err("a message without a cursor: the payload has no seq".into());
                }
                black_box((&payload, found));
                let first = *first.get_or_insert_with(Instant::now);
                count += 1;
                if count == n {
                    let elapsed = first.elapsed();
                    drop(client);
                    return Ok(elapsed);
                }
            }
            other => {
                if let Some(error) = unexpected(&other) {
                    return Err(error);
                }
            }
        }
    }
    Err(format!("event stream ended after {count} of {n} messages").into())
}

#[derive(Clone, Copy)]
enum Sender {
    Bare,
    BareBatched,
    Resilient,
}

impl Sender {
    const ALL: [Self; 3] = [Self::Bare, Self::Resilient, Self::BareBatched];

    fn label(self) -> &'static str {
        match self {
            Self::Bare => "tokio-tungstenite `send()` loop (baseline)",
            Self::BareBatched => "tokio-tungstenite `feed()`, flush every 256",
            Self::Resilient => "resilient-ws `send_text` loop",
        }
    }
}

/// Suite 2: messages per second sent, until the server has received them all.
pub(crate) fn send(runtime: &Runtime, server: &ServerProcess, scale: &Scale) -> Table {
    let (n, size) = (scale.send_messages, 64usize);
    let url = server.url(&format!("/sink?n={n}&size={size}"));
    let mut rates = vec![Vec::new(); Sender::ALL.len()];
    let mut errors = Vec::new();
    for _ in 0..scale.repeats {
        for (index, sender) in Sender::ALL.iter().enumerate() {
            let trial = send_once(*sender, url.clone(), n, size);
            match run_trial(runtime, trial) {
                Ok(elapsed) => rates[index].push(n as f64 / elapsed.as_secs_f64().max(1e-9)),
                Err(error) => errors.push(format!("{}: {error}", sender.label())),
            }
        }
    }
    let mut table = Table::new(
        "2. Send throughput",
        format!(
            "{} messages of {size} B to a server that counts bytes and answers `done` once all \
             have arrived; msg/s from the first send to `done`, median of {} runs. resilient-ws \
             handles `QueueFull` by yielding and retrying. Target ratio ≥ {SEND_TARGET}.",
            thousands(n as f64),
            scale.repeats
        ),
        &["client", "msg/s", "ratio"],
    );
    let baseline = median(&rates[0]);
    for (index, sender) in Sender::ALL.iter().enumerate() {
        let rate = median(&rates[index]);
        let value = rate / baseline;
        let meets = !matches!(sender, Sender::Resilient) || value >= SEND_TARGET;
        table.row(vec![
            sender.label().into(),
            thousands(rate),
            ratio(value, meets),
        ]);
    }
    table.notes.extend(errors);
    table
}

async fn send_once(sender: Sender, url: String, n: u64, size: usize) -> BenchResult<Duration> {
    let text = payload(FIRST_SEQ, size);
    match sender {
        Sender::Bare | Sender::BareBatched => {
            let batched = matches!(sender, Sender::BareBatched);
            let mut ws = bare_connect(&url, None).await?;
            let start = Instant::now();
            for index in 1..=n {
                let message = Message::text(text.clone());
                if batched && index % 256 != 0 && index != n {
                    ws.feed(message).await?;
                } else {
                    ws.send(message).await?;
                }
            }
            while let Some(message) = ws.next().await {
                if matches!(message?, Message::Text(ref done) if done.as_str() == "done") {
                    return Ok(start.elapsed());
                }
            }
            Err("connection ended before `done`".into())
        }
        Sender::Resilient => {
            let (client, mut events) = Client::builder(url).connect()?;
            wait_open(&mut events).await?;
            let done = tokio::spawn(async move {
                while let Some(event) = events.recv().await {
                    match event {
                        Event::Message { payload, .. } if payload.as_text() == Some("done") => {
                            return Ok(Instant::now());
                        }
                        other => {
                            if let Some(error) = unexpected(&other) {
                                return Err(error);
                            }
                        }
                    }
                }
                Err::<Instant, crate::clients::BenchError>(
                    "event stream ended before `done`".into(),
                )
            });
            let start = Instant::now();
            for _ in 0..n {
                let mut message = Payload::from(text.clone());
                loop {
                    match client.send(message) {
                        Ok(_) => break,
                        Err(SendError::QueueFull { payload, .. }) => {
                            message = payload;
                            tokio::task::yield_now().await;
                        }
                        Err(error) => return Err(error.into()),
                    }
                }
            }
            let end = done.await??;
            Ok(end - start)
        }
    }
}
