//! Session events, handed to the host as calls with numbers and strings: the host builds
//! the DOM events and the reason texts, so this side formats nothing.

use alloc::vec::Vec;

use resilient_ws_core::{Cursor, Disconnect, Event, Failure, Payload, Reason, State, Stats};

use crate::host::Host;

/// Slot numbers of the `fields` array of [`Host::state`]; `js/host.js` reads the same
/// layout (`state`, in this order).
pub(crate) mod field {
    /// The state: 0 idle, 1 connecting, 2 open, 3 reconnecting, 4 closing, 5 closed, 6 failed.
    pub(crate) const STATE: usize = 0;
    /// The attempt number while connecting or reconnecting.
    pub(crate) const ATTEMPT: usize = 1;
    /// The backoff delay while reconnecting; NaN while waiting for the network.
    pub(crate) const DELAY_MS: usize = 2;
    /// Why: 0 connect called, 1 handshake complete, 2 disconnected, 3 retry due, 4 went
    /// offline, 5 came online, 6 close called, 7 close complete, 8 close timed out.
    pub(crate) const REASON: usize = 3;
    /// For a disconnect: 1 closed by the server, 2 connection lost, 3 protocol error,
    /// 4 TLS, 5 handshake refused, 6 connect timeout, 7 heartbeat timeout.
    pub(crate) const DISCONNECT: usize = 4;
    /// The disconnect's close code or HTTP status.
    pub(crate) const CODE: usize = 5;
    /// For a failed session: 1 rejected, 2 too many failures, 3 retry budget spent.
    pub(crate) const FAILURE: usize = 6;
    /// For a failed session: the failed attempts, or the milliseconds spent retrying.
    pub(crate) const FAILURE_COUNT: usize = 7;
    /// How many slots there are.
    pub(crate) const LEN: usize = 8;
}

/// The state's number in [`field::STATE`].
pub(crate) fn state_code(state: &State) -> u8 {
    match state {
        State::Idle => 0,
        State::Connecting { .. } => 1,
        State::Open => 2,
        State::Reconnecting { .. } => 3,
        State::Closing => 4,
        State::Closed => 5,
        State::Failed(_) => 6,
    }
}

/// A cursor as its high and low 32 bits (NaN twice for none): an f64 holds whole numbers
/// exactly only up to 2^53. `cursorText` in host.js joins them into a decimal string.
pub(crate) fn cursor_halves(cursor: Option<Cursor>) -> [f64; 2] {
    cursor.map_or([f64::NAN; 2], |Cursor(value)| {
        [(value >> 32) as f64, f64::from(value as u32)]
    })
}

/// `RawClient::stats`: the counters in the order host.js names them (`STATS`), then the
/// state's number (`STATE_SLOT`) and the cursor's halves (`CURSOR_SLOT`).
#[inline(always)]
pub(crate) fn stats_values(stats: &Stats, state: &State, cursor: Option<Cursor>) -> Vec<f64> {
    let [cursor_high, cursor_low] = cursor_halves(cursor);
    [
        stats.attempts as f64,
        stats.reconnects as f64,
        stats.stale_inputs as f64,
        stats.replays_dropped as f64,
        stats.messages_delivered as f64,
        stats.messages_sent as f64,
        stats.heartbeat_timeouts as f64,
        stats.queued as f64,
        stats.queued_bytes as f64,
        f64::from(stats.consecutive_failures),
        f64::from(state_code(state)),
        cursor_high,
        cursor_low,
    ]
    .into()
}

/// Hands one event to the host.
pub(crate) fn report(host: &Host, event: Event) {
    match event {
        // The host still holds the message it fed in: only the cursor goes back.
        Event::Message { cursor, .. } => {
            let [high, low] = cursor_halves(cursor);
            host.message(high, low);
        }
        Event::StateChanged { state, reason } => report_state(host, &state, &reason),
        Event::CursorGap { last, received } => {
            let [last_high, last_low] = cursor_halves(Some(last));
            let [high, low] = cursor_halves(Some(received));
            host.gap(last_high, last_low, high, low);
        }
        Event::Discontinuity {
            previous_epoch,
            epoch,
            reason,
            last_cursor,
        } => {
            let [high, low] = cursor_halves(last_cursor);
            let previous = previous_epoch.as_deref().unwrap_or_default();
            host.discontinuity(previous, &epoch, &reason, high, low);
        }
        Event::Unsent(unsent) => {
            for message in unsent {
                match message.payload {
                    Payload::Text(text) => host.unsent_text(&text),
                    Payload::Binary(bytes) => host.unsent_bytes(&bytes),
                }
            }
            host.unsent_done();
        }
    }
}

fn report_state(host: &Host, state: &State, reason: &Reason) {
    let (fields, detail) = state_fields(state, reason);
    host.state(&fields, detail);
}

/// A state change as [`Host::state`] takes it: the slots of [`field`] and the detail text.
#[inline(always)]
pub(crate) fn state_fields<'a>(
    state: &'a State,
    reason: &'a Reason,
) -> ([f64; field::LEN], &'a str) {
    let mut fields = [0.0; field::LEN];
    fields[field::STATE] = f64::from(state_code(state));
    match state {
        State::Connecting { attempt } => fields[field::ATTEMPT] = f64::from(*attempt),
        State::Reconnecting {
            attempt,
            retry_at,
            delay,
        } => {
            fields[field::ATTEMPT] = f64::from(*attempt);
            fields[field::DELAY_MS] = match retry_at {
                Some(_) => millis(*delay),
                None => f64::NAN,
            };
        }
        State::Failed(failure) => {
            let (kind, count) = match failure {
                Failure::Fatal(_) => (1.0, 0.0),
                Failure::TooManyFailures { attempts, .. } => (2.0, f64::from(*attempts)),
                Failure::RetryBudgetExhausted { elapsed, .. } => (3.0, millis(*elapsed)),
            };
            fields[field::FAILURE] = kind;
            fields[field::FAILURE_COUNT] = count;
        }
        _ => {}
    }
    fields[field::REASON] = match reason {
        Reason::ConnectCalled => 0.0,
        Reason::HandshakeComplete => 1.0,
        Reason::Disconnected(_) => 2.0,
        Reason::RetryDue => 3.0,
        Reason::WentOffline => 4.0,
        Reason::CameOnline => 5.0,
        Reason::CloseCalled => 6.0,
        Reason::CloseComplete => 7.0,
        Reason::CloseTimedOut => 8.0,
    };
    // A failed session names its last error even when the reason does not carry it.
    let disconnect = match (reason, state) {
        (Reason::Disconnected(disconnect), _) => Some(disconnect),
        (_, State::Failed(failure)) => Some(failure.last_error()),
        _ => None,
    };
    let mut detail = "";
    if let Some(disconnect) = disconnect {
        let (kind, code, text) = describe(disconnect);
        fields[field::DISCONNECT] = kind;
        fields[field::CODE] = f64::from(code);
        detail = text;
    }
    (fields, detail)
}

/// A disconnect's kind, code and text for [`field::DISCONNECT`] and [`field::CODE`].
pub(crate) fn describe(disconnect: &Disconnect) -> (f64, u16, &str) {
    match disconnect {
        Disconnect::Closed { code, reason } => (1.0, *code, reason),
        Disconnect::Abnormal { detail } => (2.0, 0, detail),
        Disconnect::Protocol { code, detail } => (3.0, *code, detail),
        Disconnect::Tls { detail } => (4.0, 0, detail),
        Disconnect::Rejected { status, .. } => (5.0, *status, ""),
        Disconnect::ConnectTimeout => (6.0, 0, ""),
        Disconnect::HeartbeatTimeout => (7.0, 0, ""),
    }
}

/// Whole milliseconds as a JS number, without the `u128` of `as_millis`, whose conversion
/// to a float links a helper of its own.
fn millis(duration: core::time::Duration) -> f64 {
    duration.as_secs() as f64 * 1000.0 + f64::from(duration.subsec_millis())
}
