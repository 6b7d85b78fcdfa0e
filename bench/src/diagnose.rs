//! Where resilient-ws's receive time goes: its sans-IO session alone, without any I/O.

use std::collections::VecDeque;
use std::hint::black_box;
use std::time::Instant;

use resilient_ws::{Event, Payload};
use resilient_ws_core::{Command, Config, Session, SocketEvent, Timestamp, json_cursor};

use crate::Scale;
use crate::clients::BenchResult;
use crate::report::{Table, thousands};
use crate::servers::{FIRST_SEQ, payload};

/// Messages per round: the bound of resilient-ws's driver's reads per round.
const ROUND_MESSAGES: usize = 256;

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
/// rounds of up to 256 and drained as the driver does (commands, events, timeout), on one
/// thread, no I/O. The payloads are built beforehand, as the driver gets them from the socket.
fn session_ns_per_message(n: usize, cursor: bool) -> BenchResult<f64> {
    let (mut session, conn, origin) = open_session(cursor)?;
    let now = || Timestamp::from_duration(origin.elapsed());
    let payloads: Vec<Payload> = (0..n as u64)
        .map(|i| Payload::from(payload(FIRST_SEQ + i, 64)))
        .collect();
    let mut pending = VecDeque::new();
    let mut delivered = 0usize;
    let mut payloads = payloads.into_iter();
    let start = Instant::now();
    loop {
        let at = now();
        let mut fed = 0;
        for payload in payloads.by_ref().take(ROUND_MESSAGES) {
            session.handle_socket(conn, SocketEvent::Message(payload), at);
            fed += 1;
        }
        if fed == 0 {
            break;
        }
        while let Some(command) = session.poll_control() {
            black_box(command);
        }
        while let Some(event) = session.poll_event() {
            pending.push_back(event);
        }
        black_box(session.poll_timeout());
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
            "{} messages of 64 B fed to resilient-ws-core's `Session` in rounds of 256, then \
             drained (commands, events, timeout) into a queue, on one thread, as the driver \
             does: the part of table 1's CPU ns/msg that is the core's. \
             `size_of::<Event>()` = {} B.",
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
