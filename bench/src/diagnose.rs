//! Where resilient-ws's receive time goes: its sans-IO session alone, and models of its
//! task pipeline built from tokio-tungstenite and tokio channels without the session.

use std::collections::VecDeque;
use std::hint::black_box;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::{FutureExt, StreamExt};
use resilient_ws::{Event, Payload};
use resilient_ws_core::{Command, Config, Session, SocketEvent, Timestamp, json_cursor};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use crate::Scale;
use crate::clients::{BenchResult, bare_config_like_resilient, bare_connect};
use crate::report::{Table, thousands};
use crate::servers::{FIRST_SEQ, payload};

/// The report bounds of resilient-ws's former pipeline (its socket task feeds the session
/// in batches of the same bounds now).
const REPORT_MESSAGES: usize = 32;
const REPORT_BYTES: usize = 64 * 1024;
/// The channel capacities of that pipeline (its driver's inbound channel, the events).
const INBOUND_CAPACITY: usize = 8;
const EVENT_BUFFER: usize = 256;

/// The text as an owned `String`, copied as resilient-ws's socket task copies it.
fn into_string(text: Utf8Bytes) -> String {
    text.as_str().to_owned()
}

/// A model of resilient-ws's receive pipeline without its session: a reader task batches
/// owned messages like the socket task; with `two_hops` a relay task hands each to the
/// application as an `Event` over a bounded channel, as the driver does; without, the
/// application takes the batches itself.
pub(crate) async fn model_receive(url: String, n: u64, two_hops: bool) -> BenchResult<Duration> {
    let mut ws = bare_connect(&url, Some(bare_config_like_resilient())).await?;
    let (batch_tx, mut batch_rx) = mpsc::channel::<Vec<Payload>>(INBOUND_CAPACITY);
    let reader = tokio::spawn(async move {
        while let Some(first) = ws.next().await {
            let mut batch = Vec::new();
            let mut bytes = 0;
            let mut item = Some(first);
            while let Some(next) = item.take() {
                match next {
                    Ok(Message::Text(text)) => {
                        let payload = Payload::from(into_string(text));
                        bytes += payload.len();
                        batch.push(payload);
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
                if batch.len() < REPORT_MESSAGES && bytes < REPORT_BYTES {
                    item = ws.next().now_or_never().flatten();
                }
            }
            if batch_tx.send(batch).await.is_err() {
                return;
            }
        }
    });
    let mut count = 0;
    let mut first = None;
    let mut seen = |event: Event| -> bool {
        black_box(&event);
        first.get_or_insert_with(Instant::now);
        count += 1;
        count == n
    };
    let result = if two_hops {
        let (event_tx, mut event_rx) = mpsc::channel::<Event>(EVENT_BUFFER);
        let relay = tokio::spawn(async move {
            while let Some(batch) = batch_rx.recv().await {
                for payload in batch {
                    let event = Event::Message {
                        payload,
                        cursor: None,
                    };
                    if event_tx.send(event).await.is_err() {
                        return;
                    }
                }
            }
        });
        let mut done = false;
        while let Some(event) = event_rx.recv().await {
            if seen(event) {
                done = true;
                break;
            }
        }
        relay.abort();
        done
    } else {
        let mut local = VecDeque::new();
        let mut done = false;
        'outer: while let Some(batch) = batch_rx.recv().await {
            local.extend(batch.into_iter().map(|payload| Event::Message {
                payload,
                cursor: None,
            }));
            while let Some(event) = local.pop_front() {
                if seen(event) {
                    done = true;
                    break 'outer;
                }
            }
        }
        done
    };
    reader.abort();
    match (result, first) {
        (true, Some(first)) => Ok(first.elapsed()),
        _ => Err(format!("stream ended after {count} of {n} messages").into()),
    }
}

/// A model of a pull-based client: the application's own task reads the socket and feeds
/// resilient-ws-core's `Session` in batches under a mutex, draining its events inline:
/// the session's work without any task hop.
pub(crate) async fn model_inline(url: String, n: u64) -> BenchResult<Duration> {
    let mut ws = bare_connect(&url, Some(bare_config_like_resilient())).await?;
    let (session, conn, origin) = open_session(false)?;
    let session = Mutex::new(session);
    let mut count = 0;
    let mut first = None;
    while let Some(next) = ws.next().await {
        let mut report = Vec::new();
        let mut bytes = 0;
        let mut item = Some(next);
        while let Some(next) = item.take() {
            if let Message::Text(text) = next? {
                let payload = Payload::from(into_string(text));
                bytes += payload.len();
                report.push(SocketEvent::Message(payload));
            }
            if report.len() < REPORT_MESSAGES && bytes < REPORT_BYTES {
                item = ws.next().now_or_never().flatten();
            }
        }
        let now = Timestamp::from_duration(origin.elapsed());
        let mut locked = session.lock().unwrap_or_else(PoisonError::into_inner);
        for event in report {
            locked.handle_socket(conn, event, now);
        }
        while let Some(command) = locked.poll_control() {
            black_box(command);
        }
        black_box(locked.poll_timeout());
        while let Some(event) = locked.poll_event() {
            if matches!(event, Event::Message { .. }) {
                black_box(&event);
                first.get_or_insert_with(Instant::now);
                count += 1;
                if count == n {
                    return Ok(first.map_or(Duration::ZERO, |first| first.elapsed()));
                }
            }
        }
    }
    Err(format!("connection ended after {count} of {n} messages").into())
}

/// A session that has opened its socket, with the socket's id and its clock's origin.
fn open_session(cursor: bool) -> BenchResult<(Session, resilient_ws::ConnId, Instant)> {
    let mut config = Config::new("ws://127.0.0.1:9/");
    if cursor {
        config.cursor = Some(json_cursor("seq"));
    }
    let mut session = Session::new(config, 7)?;
    let origin = Instant::now();
    let now = || Timestamp::from_duration(origin.elapsed());
    session.connect(now());
    let conn = loop {
        match session.poll_command() {
            Some(Command::Open(open)) => break open.conn,
            Some(_) => {}
            None => return Err("the session asked for no socket".into()),
        }
    };
    session.handle_socket(conn, SocketEvent::Opened, now());
    while session.poll_event().is_some() {}
    Ok((session, conn, origin))
}

/// The session alone: ns per 64 B message through `handle_socket` and `poll_event`, fed in
/// reports of 32 under a mutex and drained as the driver does, on one thread, no I/O.
fn session_ns_per_message(n: usize, cursor: bool) -> BenchResult<f64> {
    let (session, conn, origin) = open_session(cursor)?;
    let now = || Timestamp::from_duration(origin.elapsed());
    let texts: Vec<String> = (0..n as u64).map(|i| payload(FIRST_SEQ + i, 64)).collect();
    let session = Mutex::new(session);
    let mut pending = VecDeque::new();
    let mut delivered = 0usize;
    let mut texts = texts.into_iter();
    let start = Instant::now();
    loop {
        let report: Vec<SocketEvent> = texts
            .by_ref()
            .take(REPORT_MESSAGES)
            .map(|text| SocketEvent::Message(Payload::from(text)))
            .collect();
        if report.is_empty() {
            break;
        }
        let at = now();
        let mut locked = session.lock().unwrap_or_else(PoisonError::into_inner);
        for event in report {
            locked.handle_socket(conn, event, at);
        }
        drop(locked);
        let mut locked = session.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(command) = locked.poll_control() {
            black_box(command);
        }
        while let Some(event) = locked.poll_event() {
            pending.push_back(event);
        }
        black_box(locked.poll_timeout());
        drop(locked);
        while let Some(event) = pending.pop_front() {
            black_box(event);
            delivered += 1;
        }
    }
    let elapsed = start.elapsed();
    if delivered != n {
        return Err(format!("delivered {delivered} of {n}").into());
    }
    Ok(elapsed.as_nanos() as f64 / n as f64)
}

/// Table 1b: the session's share of the per-message cost.
pub(crate) fn core_cost(scale: &Scale) -> Table {
    let n = usize::try_from(scale.small_messages).unwrap_or(usize::MAX);
    let mut table = Table::new(
        "1b. The session alone (no I/O)",
        format!(
            "{} messages of 64 B fed to resilient-ws-core's `Session` in reports of 32 under a \
             mutex, then drained (commands, events, timeout) into a queue, on one thread: the \
             part of table 1's CPU ns/msg that is the core's. `size_of::<Event>()` = {} B.",
            thousands(n as f64),
            std::mem::size_of::<Event>()
        ),
        &["session", "ns/msg", "msg/s on one core"],
    );
    for (label, cursor) in [("no cursor", false), ("cursor_field(\"seq\")", true)] {
        match session_ns_per_message(n, cursor) {
            Ok(ns) => table.row(vec![label.into(), format!("{ns:.0}"), thousands(1e9 / ns)]),
            Err(error) => table.note(format!("{label}: {error}")),
        }
    }
    table
}
