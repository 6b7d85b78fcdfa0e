//! The invariant checks: what the session's outputs and getters must look like, given
//! the model (`model.rs`). Every check reads the harness (`&self`) and changes nothing;
//! `Harness::apply` calls them in a fixed order and records what passed into the model.
//!
//! A failed check returns a [`TestCaseError`] whose message starts with the session's
//! seed, the step and the fake time, and ends with the tail of the trace.

use std::fmt::Debug;

use proptest::test_runner::TestCaseError;
use resilient_ws_core::{
    CloseError, Command, ConnId, Disconnect, Event, Failure, MsgId, Payload, Probe, RetryAction,
    SendError, State, Timer, Timestamp, with_query_param,
};

use crate::model::{Before, Expect, Harness, is_stopped_state, ms};
use crate::strategies::{Op, ProbeSpec};

/// Fails the test case with the seed, step and time in the message.
macro_rules! ensure {
    ($h:expr, $cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($h.failure(format!($($fmt)+)));
        }
    };
}

impl Harness {
    /// The failure of the current test case: `what`, then the seed, step, time, state,
    /// configuration and the last 40 lines of the trace.
    fn failure(&self, what: String) -> TestCaseError {
        let tail = self.trace.len().saturating_sub(40);
        TestCaseError::fail(format!(
            "seed {} step {} (now {}): {what}\n  state {:?}\n  spec {:?}\n  trace (last 40):\n    {}",
            self.seed,
            self.step,
            self.now,
            self.session.state(),
            self.spec,
            self.trace[tail..].join("\n    "),
        ))
    }

    /// Outputs run dry: one operation yields a handful of commands or events, never
    /// `MAX`.
    pub(crate) fn check_runs_dry<T: Debug>(
        &self,
        what: &str,
        outputs: &[T],
    ) -> Result<(), TestCaseError> {
        const MAX: usize = 1_000;
        ensure!(
            self,
            outputs.len() < MAX,
            "{what} never runs dry: {:?}",
            &outputs[..5]
        );
        Ok(())
    }

    /// After the final `close()`: the session is closed, every socket was aborted and
    /// every accepted message was sent or handed back exactly once (invariant 9).
    pub(crate) fn check_all_settled(&self) -> Result<(), TestCaseError> {
        let state = self.session.state().clone();
        ensure!(
            self,
            state.is_terminal(),
            "not closed after close(): {state:?}"
        );
        ensure!(
            self,
            self.live.is_none(),
            "socket {:?} still live after close",
            self.live
        );
        let unaborted: Vec<_> = self
            .opened
            .iter()
            .filter(|conn| !self.aborted.contains(conn))
            .collect();
        ensure!(
            self,
            unaborted.is_empty(),
            "sockets never aborted: {unaborted:?}"
        );
        ensure!(
            self,
            self.outstanding.is_empty(),
            "messages neither sent nor handed back: {:?}",
            self.outstanding.keys().collect::<Vec<_>>()
        );
        for id in self.accepted.keys() {
            ensure!(self, self.settled.contains_key(id), "{id} lost");
        }
        Ok(())
    }

    /// `close()` refuses a code outside 1000 and 3000-4999, and a reason over 123 bytes.
    pub(crate) fn check_close_result(
        &self,
        code: u16,
        reason_len: usize,
        result: &Result<(), CloseError>,
    ) -> Result<(), TestCaseError> {
        if !(code == 1000 || (3000..=4999).contains(&code)) {
            ensure!(
                self,
                *result == Err(CloseError::Code(code)),
                "close({code}) gave {result:?}"
            );
        } else if reason_len > 123 {
            ensure!(
                self,
                *result == Err(CloseError::ReasonTooLong(reason_len)),
                "close with a {reason_len}-byte reason gave {result:?}"
            );
        } else {
            ensure!(self, result.is_ok(), "close({code}) gave {result:?}");
        }
        Ok(())
    }

    /// Invariant 7 and 9 at the door: `send` accepts a message only while running and
    /// within the bounds, with a fresh, increasing id, and refuses it with the right
    /// error otherwise, handing the payload back. Returns the id of an accepted message.
    pub(crate) fn check_send(
        &self,
        result: Result<MsgId, SendError>,
        payload: &Payload,
        before: &Before,
    ) -> Result<Option<MsgId>, TestCaseError> {
        let len = payload.len();
        let max_bytes = self.spec.max_bytes;
        let (state_before, stats_before) = (&before.state, &before.stats);
        match result {
            Ok(id) => {
                ensure!(
                    self,
                    !is_stopped_state(state_before),
                    "send accepted in {state_before:?}"
                );
                ensure!(
                    self,
                    len <= max_bytes
                        && stats_before.queued < self.spec.max_messages
                        && stats_before.queued_bytes + len <= max_bytes,
                    "send of {len} B accepted over the bounds (had {} msgs, {} B)",
                    stats_before.queued,
                    stats_before.queued_bytes
                );
                let newest = self.accepted.keys().next_back().copied();
                ensure!(
                    self,
                    newest.is_none_or(|newest| id > newest),
                    "send returned {id} after {newest:?}"
                );
                Ok(Some(id))
            }
            Err(error) => {
                let expected = if is_stopped_state(state_before) {
                    "NotRunning"
                } else if len > max_bytes {
                    "TooLarge"
                } else {
                    "QueueFull"
                };
                let kind = match &error {
                    SendError::NotRunning { .. } => "NotRunning",
                    SendError::TooLarge { max_bytes: m, .. } => {
                        ensure!(self, *m == max_bytes, "TooLarge reports {m}");
                        "TooLarge"
                    }
                    SendError::QueueFull {
                        queued,
                        queued_bytes,
                        ..
                    } => {
                        ensure!(
                            self,
                            *queued == stats_before.queued
                                && *queued_bytes == stats_before.queued_bytes,
                            "QueueFull reports {queued}/{queued_bytes}, stats said {stats_before:?}"
                        );
                        ensure!(
                            self,
                            *queued >= self.spec.max_messages || *queued_bytes + len > max_bytes,
                            "QueueFull although {len} B fit ({queued} msgs, {queued_bytes} B)"
                        );
                        "QueueFull"
                    }
                };
                ensure!(
                    self,
                    kind == expected,
                    "send refused with {kind}, expected {expected}"
                );
                let back = error.into_payload();
                ensure!(
                    self,
                    back == *payload,
                    "send error handed back {back:?}, not {payload:?}"
                );
                Ok(None)
            }
        }
    }

    /// Invariant 2 (and refused closes): nothing changes, nothing comes out. Only the
    /// clock may move (time in state, and deadlines clamped to now).
    pub(crate) fn check_nothing_changed(
        &self,
        before: &Before,
        commands: &[Command],
        events: &[Event],
        state: &State,
    ) -> Result<(), TestCaseError> {
        let state_before = &before.state;
        let cursor_before = before.cursor;
        let stats_before = &before.stats;
        let mut expected_stats = stats_before.clone();
        expected_stats.stale_inputs = self.stale_inputs;
        expected_stats.time_in_state += self.now - before.now;
        let timeout_before = before
            .timeout
            .map(|(deadline, timer)| (deadline.max(self.now), timer));
        ensure!(
            self,
            commands.is_empty(),
            "stale input produced commands {commands:?}"
        );
        ensure!(
            self,
            events.is_empty(),
            "stale input produced events {events:?}"
        );
        ensure!(
            self,
            state == state_before,
            "stale input changed state from {state_before:?}"
        );
        ensure!(
            self,
            self.session.last_cursor() == cursor_before,
            "stale input changed the cursor from {cursor_before:?}"
        );
        let stats = self.session.stats();
        ensure!(
            self,
            stats == expected_stats,
            "stale input changed stats: {stats_before:?} -> {stats:?}"
        );
        ensure!(
            self,
            self.session.poll_timeout() == timeout_before,
            "stale input changed the timeout from {timeout_before:?}"
        );
        Ok(())
    }

    /// Invariant 3: "Closed and Failed emit no further commands without connect()."
    pub(crate) fn check_terminal_stays_quiet(
        &self,
        state_before: &State,
        commands: &[Command],
        state: &State,
    ) -> Result<(), TestCaseError> {
        ensure!(
            self,
            commands.is_empty(),
            "{state_before:?} emitted {commands:?}"
        );
        ensure!(
            self,
            state == state_before,
            "{state_before:?} moved to {state:?} without connect()"
        );
        Ok(())
    }

    /// `connect()` and coming back online make an attempt at once: one `Open`, attempt 1
    /// after `connect()`, the next attempt of the run after coming online.
    pub(crate) fn check_attempt_at_once(
        &self,
        op: &Op,
        before: &Before,
        effective_connect: bool,
        commands: &[Command],
    ) -> Result<(), TestCaseError> {
        let opens: Vec<_> = commands
            .iter()
            .filter_map(|command| match command {
                Command::Open(request) => Some(request.attempt),
                _ => None,
            })
            .collect();
        let expected = if effective_connect {
            vec![1]
        } else {
            vec![before.stats.consecutive_failures + 1]
        };
        ensure!(
            self,
            opens == expected,
            "{op:?} from {:?} opened attempts {opens:?}, expected {expected:?}",
            before.state
        );
        Ok(())
    }

    /// Invariants 1, 3, 5, 9, 10 and 11 on one command, before the model records it.
    pub(crate) fn check_command(&self, command: &Command) -> Result<(), TestCaseError> {
        match command {
            Command::Open(request) => {
                ensure!(
                    self,
                    !self.stopped,
                    "Open after close() or failure, without connect()"
                );
                ensure!(self, self.online, "Open while offline");
                ensure!(
                    self,
                    self.live.is_none(),
                    "Open {} while {:?} is live (no Abort first)",
                    request.conn,
                    self.live
                );
                ensure!(
                    self,
                    !self.opened.contains(&request.conn),
                    "Open reuses {}",
                    request.conn
                );
                ensure!(
                    self,
                    request.attempt >= 1
                        && (self.progressed
                            || self
                                .spec
                                .max_failures
                                .is_none_or(|max| request.attempt <= max)),
                    "Open with attempt {} (max {:?})",
                    request.attempt,
                    self.spec.max_failures
                );
                ensure!(
                    self,
                    request.cursor == self.last_delivered,
                    "Open resumes from {:?}, last delivered {:?}",
                    request.cursor,
                    self.last_delivered
                );
                let url = match request.cursor {
                    Some(cursor) => with_query_param(&self.url, "cursor", &cursor.to_string()),
                    None => self.url.clone(),
                };
                ensure!(
                    self,
                    request.url == url,
                    "Open url {} instead of {url}",
                    request.url
                );
                ensure!(
                    self,
                    request.resume_header.is_none(),
                    "resume header with a query mode"
                );
            }
            Command::Abort { conn } => {
                ensure!(
                    self,
                    self.live == Some(*conn),
                    "Abort {conn} but live is {:?}",
                    self.live
                );
                ensure!(
                    self,
                    !self.aborted.contains(conn),
                    "second Abort for {conn}"
                );
            }
            Command::Send { conn, payload, id } => {
                self.check_on_live(*conn, "Send")?;
                ensure!(
                    self,
                    !self.close_sent.contains(conn),
                    "Send on {conn} after its Close"
                );
                match id {
                    Some(id) => {
                        ensure!(
                            self,
                            self.last_sent_id.is_none_or(|last| *id > last),
                            "{id} sent after {:?}: out of order or twice",
                            self.last_sent_id
                        );
                        ensure!(
                            self,
                            self.outstanding.contains_key(id),
                            "{id} sent but not queued (never accepted, or already left)"
                        );
                        ensure!(
                            self,
                            self.accepted.get(id) == Some(payload),
                            "{id} sent with a different payload"
                        );
                    }
                    None => {
                        let expected = match &self.probe {
                            Some(Probe::Message(probe)) => Some(probe),
                            _ => None,
                        };
                        ensure!(
                            self,
                            expected == Some(payload),
                            "session-made Send {payload:?} without a message probe"
                        );
                    }
                }
            }
            Command::Ping { conn } => {
                self.check_on_live(*conn, "Ping")?;
                ensure!(
                    self,
                    !self.close_sent.contains(conn),
                    "Ping on {conn} after its Close"
                );
                ensure!(
                    self,
                    self.probe == Some(Probe::PingFrame),
                    "Ping with probe {:?}",
                    self.probe
                );
            }
            Command::Close { conn, code, reason } => {
                self.check_on_live(*conn, "Close")?;
                let args = (*code, reason.clone());
                ensure!(
                    self,
                    self.close_args.as_ref() == Some(&args),
                    "Close {args:?} but close() was called with {:?}",
                    self.close_args
                );
                ensure!(
                    self,
                    !self.close_sent.contains(conn),
                    "second Close on {conn}"
                );
            }
        }
        Ok(())
    }

    /// Invariant 10: commands name the live socket, which must be open.
    fn check_on_live(&self, conn: ConnId, what: &str) -> Result<(), TestCaseError> {
        ensure!(
            self,
            self.live == Some(conn),
            "{what} on {conn}, live is {:?}",
            self.live
        );
        ensure!(self, self.live_open, "{what} on {conn} before it opened");
        Ok(())
    }

    /// Invariants 4 and 5 on a state; `entered_now` when the state was entered at the
    /// current time (a `StateChanged` of this operation), so `retry_at == now + delay`.
    fn check_state_shape(&self, state: &State, entered_now: bool) -> Result<(), TestCaseError> {
        let within_cap = |attempt: u32| {
            attempt >= 1
                && (self.progressed || self.spec.max_failures.is_none_or(|max| attempt <= max))
        };
        match state {
            State::Connecting { attempt } => {
                ensure!(
                    self,
                    within_cap(*attempt),
                    "{state:?} beyond the cap {:?}",
                    self.spec.max_failures
                );
            }
            State::Reconnecting {
                attempt,
                retry_at,
                delay,
            } => {
                ensure!(
                    self,
                    within_cap(*attempt),
                    "{state:?} beyond the cap {:?}",
                    self.spec.max_failures
                );
                match retry_at {
                    Some(at) => {
                        ensure!(
                            self,
                            *delay <= self.spec.delay_cap(),
                            "{state:?}: delay above the cap {:?}",
                            self.spec.delay_cap()
                        );
                        ensure!(
                            self,
                            !entered_now || *at == self.now + *delay,
                            "{state:?}: retry_at is not now + delay"
                        );
                    }
                    None => {
                        ensure!(
                            self,
                            delay.is_zero(),
                            "{state:?}: a delay without a retry time"
                        );
                        ensure!(
                            self,
                            !self.online,
                            "{state:?}: waiting for the network while online"
                        );
                    }
                }
            }
            State::Failed(failure) => match failure {
                Failure::Fatal(disconnect) => {
                    let action = self.session.config().retry.decide(disconnect);
                    ensure!(
                        self,
                        action == RetryAction::GiveUp,
                        "{state:?} although the policy says {action:?}"
                    );
                }
                Failure::TooManyFailures { attempts, .. } => {
                    ensure!(
                        self,
                        Some(*attempts) == self.spec.max_failures,
                        "{state:?} with max_failures {:?}",
                        self.spec.max_failures
                    );
                }
                Failure::RetryBudgetExhausted { .. } => {
                    ensure!(
                        self,
                        self.spec.max_retry_duration_ms.is_some(),
                        "{state:?} without a budget"
                    );
                }
            },
            State::Idle | State::Open | State::Closing | State::Closed => {}
        }
        Ok(())
    }

    /// Invariants 4-6 and 9 on one event, before the model records it: states keep their
    /// shape, messages are the ones the model expects (in cursor order, gaps reported
    /// first), and handed-back messages were queued.
    pub(crate) fn check_event(&self, event: &Event, expect: &Expect) -> Result<(), TestCaseError> {
        match event {
            Event::StateChanged { state, .. } => {
                self.check_state_shape(state, true)?;
                self.check_budget(state)?;
            }
            Event::Message { payload, cursor } => {
                let expected = &expect.message;
                ensure!(
                    self,
                    expected.as_ref() == Some(&(payload.clone(), *cursor)),
                    "delivered {payload:?} ({cursor:?}), expected {expected:?}"
                );
                ensure!(
                    self,
                    expect.gap.is_none(),
                    "gap not reported before the message"
                );
                if let Some(cursor) = cursor {
                    ensure!(
                        self,
                        self.last_delivered.is_none_or(|last| *cursor > last),
                        "cursor {cursor} delivered after {:?}",
                        self.last_delivered
                    );
                }
            }
            Event::Discontinuity { .. } => {
                // The model's sessions read no welcome, so none can report one.
                ensure!(self, false, "a discontinuity without a welcome: {event:?}");
            }
            Event::CursorGap { last, received } => {
                let expected = expect.gap;
                ensure!(
                    self,
                    expected == Some((*last, *received)),
                    "gap {last}->{received}, expected {expected:?}"
                );
            }
            Event::Unsent(unsent) => {
                ensure!(self, !unsent.is_empty(), "empty Unsent");
                ensure!(
                    self,
                    unsent.windows(2).all(|pair| pair[0].id < pair[1].id),
                    "Unsent not oldest first"
                );
                for message in unsent {
                    ensure!(
                        self,
                        self.outstanding.contains_key(&message.id),
                        "{} handed back but not queued (never accepted, sent, or handed back before)",
                        message.id
                    );
                    ensure!(
                        self,
                        self.accepted.get(&message.id) == Some(&message.payload),
                        "{} handed back with a different payload",
                        message.id
                    );
                }
            }
        }
        Ok(())
    }

    /// Every message and gap the model expected from the operation came out.
    pub(crate) fn check_expectations_met(&self, expect: &Expect) -> Result<(), TestCaseError> {
        ensure!(
            self,
            expect.message.is_none(),
            "message {:?} not delivered",
            expect.message
        );
        ensure!(
            self,
            expect.gap.is_none(),
            "gap {:?} not reported",
            expect.gap
        );
        Ok(())
    }

    /// `max_retry_duration`: a retry is never scheduled past the budget of the current
    /// run of failures, and a session that gives up says how long the run lasted.
    fn check_budget(&self, state: &State) -> Result<(), TestCaseError> {
        let (Some(budget), Some(since)) = (self.spec.max_retry_duration_ms, self.failing_since)
        else {
            return Ok(());
        };
        match state {
            State::Reconnecting {
                retry_at: Some(at), ..
            } => {
                ensure!(
                    self,
                    *at - since <= ms(budget),
                    "retry at {at}, failing since {since}: beyond the {budget} ms budget"
                );
            }
            State::Failed(Failure::RetryBudgetExhausted { elapsed, .. }) => {
                ensure!(
                    self,
                    *elapsed == self.now - since,
                    "budget exhausted after {elapsed:?}, failing since {since}"
                );
            }
            _ => {}
        }
        Ok(())
    }

    /// Invariants 1, 5-8 and the model, after the outputs were drained.
    pub(crate) fn check_after(&self, state: &State) -> Result<(), TestCaseError> {
        self.check_state_shape(state, false)?;
        let current = self.session.current_conn();
        ensure!(
            self,
            current == self.live,
            "session owns {current:?}, commands said {:?}",
            self.live
        );
        ensure!(
            self,
            self.session.last_cursor() == self.last_delivered,
            "last_cursor {:?}, last delivered {:?}",
            self.session.last_cursor(),
            self.last_delivered
        );

        let stats = self.session.stats();
        ensure!(
            self,
            stats.queued <= self.spec.max_messages && stats.queued_bytes <= self.spec.max_bytes,
            "queue {} msgs / {} B over bounds {} / {}",
            stats.queued,
            stats.queued_bytes,
            self.spec.max_messages,
            self.spec.max_bytes
        );
        let model_bytes: usize = self.outstanding.values().sum();
        ensure!(
            self,
            (stats.queued, stats.queued_bytes) == (self.outstanding.len(), model_bytes),
            "queue {}/{} B, model {}/{model_bytes} B",
            stats.queued,
            stats.queued_bytes,
            self.outstanding.len()
        );
        let model = (
            self.attempts,
            self.opens.saturating_sub(1),
            self.stale_inputs,
            self.replays,
            self.delivered,
            self.messages_sent,
        );
        let counted = (
            stats.attempts,
            stats.reconnects,
            stats.stale_inputs,
            stats.replays_dropped,
            stats.messages_delivered,
            stats.messages_sent,
        );
        ensure!(
            self,
            counted == model,
            "counters (attempts, reconnects, stale, replays, delivered, sent) {counted:?}, model {model:?}"
        );
        if let Some(max) = self.spec.max_failures.filter(|_| !self.progressed) {
            ensure!(
                self,
                stats.consecutive_failures <= max,
                "{} failures, cap {max}",
                stats.consecutive_failures
            );
        }

        if let Some((deadline, timer)) = self.session.poll_timeout() {
            ensure!(
                self,
                deadline >= self.now,
                "poll_timeout {deadline} ({timer:?}) before now"
            );
        }

        // The state agrees with the socket the commands describe.
        let timeout = self.session.poll_timeout();
        match state {
            State::Idle | State::Closed | State::Failed(_) => {
                ensure!(
                    self,
                    self.live.is_none(),
                    "{state:?} with live {:?}",
                    self.live
                );
                ensure!(
                    self,
                    stats.queued == 0 || *state == State::Idle,
                    "{state:?} keeps a queue"
                );
                if state.is_terminal() {
                    ensure!(self, timeout.is_none(), "{state:?} with timer {timeout:?}");
                }
            }
            State::Connecting { attempt } => {
                ensure!(
                    self,
                    self.live.is_some() && !self.live_open,
                    "{state:?}, live {:?} open {}",
                    self.live,
                    self.live_open
                );
                ensure!(
                    self,
                    self.last_open_attempt == Some(*attempt),
                    "{state:?} but the Open said {:?}",
                    self.last_open_attempt
                );
                // Deadlines that passed without a handle_timeout are reported as now.
                let limit =
                    (self.open_requested_at + ms(self.spec.connect_timeout_ms)).max(self.now);
                ensure!(
                    self,
                    timeout.is_some_and(|(deadline, _)| deadline <= limit),
                    "{state:?}: poll_timeout {timeout:?}, connect deadline {limit}"
                );
            }
            State::Open => {
                ensure!(
                    self,
                    self.live.is_some() && self.live_open,
                    "Open, live {:?} open {}",
                    self.live,
                    self.live_open
                );
                ensure!(
                    self,
                    stats.queued == 0,
                    "Open with {} messages left in the queue",
                    stats.queued
                );
                // The stability window (or a delivered message) resets the failure count.
                if self.timeouts_handled_at >= self.opened_at + ms(self.spec.stability_ms) {
                    ensure!(
                        self,
                        stats.consecutive_failures == 0,
                        "open since {} (stable after {} ms) but {} failures counted",
                        self.opened_at,
                        self.spec.stability_ms,
                        stats.consecutive_failures
                    );
                }
                if self.check_heartbeat_bound {
                    self.check_heartbeat_bound(timeout)?;
                }
            }
            State::Reconnecting { retry_at, .. } => {
                ensure!(
                    self,
                    self.live.is_none(),
                    "{state:?} with live {:?}",
                    self.live
                );
                if let Some(at) = retry_at {
                    ensure!(
                        self,
                        timeout.is_some_and(|(deadline, _)| deadline <= (*at).max(self.now)),
                        "{state:?} but poll_timeout is {timeout:?}"
                    );
                }
            }
            State::Closing => {
                ensure!(self, self.live.is_some(), "Closing without a socket");
                let limit = (self.closing_since + ms(self.spec.close_timeout_ms)).max(self.now);
                ensure!(
                    self,
                    timeout.is_some_and(|(deadline, _)| deadline <= limit),
                    "Closing since {}: poll_timeout {timeout:?}, close deadline {limit}",
                    self.closing_since
                );
            }
        }
        if !self.online {
            ensure!(
                self,
                !matches!(state, State::Connecting { .. } | State::Open),
                "{state:?} while offline"
            );
        }
        Ok(())
    }

    /// Dead-connection detection (heartbeat.rs: "a dead connection is always detected
    /// within `interval + timeout` of the last inbound frame"). The probe is due
    /// `interval` after the last inbound frame; when the driver wakes the session later
    /// than that, the bound moves with the first probe actually sent. Probes sent while
    /// one is unanswered (`check_liveness`) must not postpone the verdict.
    pub(crate) fn check_heartbeat_bound(
        &self,
        timeout: Option<(Timestamp, Timer)>,
    ) -> Result<(), TestCaseError> {
        let Some((interval, probe_timeout, probe)) = self.spec.heartbeat else {
            return Ok(());
        };
        let probe_due = self.last_inbound + ms(interval);
        let (limit, why) = match (probe, self.probe_outstanding_since) {
            (ProbeSpec::IdleOnly, _) => (probe_due + ms(probe_timeout), "idle deadline"),
            (_, Some(first_probe)) => (
                probe_due.max(first_probe) + ms(probe_timeout),
                "interval + timeout",
            ),
            (_, None) => (probe_due, "probe due"),
        };
        let limit = limit.max(self.now);
        ensure!(
            self,
            timeout.is_some_and(|(deadline, _)| deadline <= limit),
            "heartbeat {interval}+{probe_timeout} ms, last inbound {}, first unanswered \
             probe {:?}: poll_timeout is {timeout:?}, past the {why} {limit}: a dead \
             connection goes unnoticed",
            self.last_inbound,
            self.probe_outstanding_since
        );
        Ok(())
    }

    /// What the current socket ending must lead to.
    pub(crate) fn check_ended(
        &self,
        before: &State,
        after: &State,
        disconnect: &Disconnect,
    ) -> Result<(), TestCaseError> {
        ensure!(
            self,
            self.live.is_none(),
            "socket still live after it ended"
        );
        if *before == State::Closing {
            ensure!(
                self,
                *after == State::Closed,
                "ended while closing, now {after:?}"
            );
            return Ok(());
        }
        let action = self.session.config().retry.decide(disconnect);
        match (action, after) {
            (RetryAction::GiveUp, _) => {
                ensure!(
                    self,
                    *after == State::Failed(Failure::Fatal(disconnect.clone())),
                    "fatal {disconnect:?} led to {after:?}"
                );
            }
            (
                _,
                State::Failed(
                    Failure::TooManyFailures { .. } | Failure::RetryBudgetExhausted { .. },
                ),
            ) => {}
            (_, State::Reconnecting { retry_at: None, .. }) => {
                ensure!(self, !self.online, "{after:?} while online");
            }
            (RetryAction::ReconnectAfter(wait), State::Reconnecting { delay, .. }) => {
                // The server's wait (at least the floor), plus up to a backoff window of
                // jitter so a crowd told the same Retry-After does not return together.
                let backoff = &self.session.config().backoff;
                let least = wait.max(backoff.floor());
                let failures = self.session.stats().consecutive_failures;
                let most = least + backoff.window(failures.max(1));
                ensure!(
                    self,
                    least <= *delay && *delay <= most,
                    "Retry-After {wait:?} but delay {delay:?}, not within [{least:?}, {most:?}]"
                );
            }
            (
                RetryAction::Reconnect | RetryAction::ReconnectSlowly,
                State::Reconnecting { delay, .. },
            ) => {
                let failures = self.session.stats().consecutive_failures;
                let window = self.session.config().backoff.window(failures.max(1));
                ensure!(
                    self,
                    *delay <= window,
                    "delay {delay:?} above the window {window:?}"
                );
            }
            // A zero delay retries at once, within the same call.
            (_, State::Connecting { .. }) => {}
            _ => {
                return Err(self.failure(format!("{disconnect:?} ({action:?}) led to {after:?}")));
            }
        }
        Ok(())
    }
}
