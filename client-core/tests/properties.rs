//! Property tests of the session's invariants (DESIGN.md, "Invariants").
//!
//! A harness plays driver and application at once: it feeds a [`Session`] random
//! sequences of operations (connect, send, close, network changes, liveness checks, clock
//! advances, and socket events for the current socket and for stale ones) on a fake clock,
//! drains every command and event after each operation, and checks the invariants against
//! a small model of what the session must be doing:
//!
//! 1. at most one live `ConnId`; every `Abort` names it and comes before the next `Open`;
//! 2. stale input changes nothing but `stale_inputs`, and produces no output;
//! 3. no `Open` after `close()` or a failure until the next `connect()` (nor while offline);
//! 4. every backoff delay is within `[0, cap]` and `retry_at == now + delay`;
//! 5. attempt numbers stay within `1..=max_failures`;
//! 6. delivered cursors strictly increase, replays are dropped, `last_cursor` follows them;
//! 7. the outbound queue stays within its bounds (and matches the model's queue);
//! 8. `poll_timeout` is never earlier than the latest time given;
//! 9. queued messages leave in order, and every accepted message is either sent or handed
//!    back exactly once (checked by closing the session at the end); refused sends hand the
//!    payload back;
//! 10. commands only name the live socket;
//! 11. `Close` only after `close()`, and nothing is sent on a socket after its `Close`.
//!
//! Along the way it also checks the deadlines (connect, close, retry budget, stability
//! window resetting the failure count), the retry decision for each disconnect, the
//! counters in `stats()`, and that both outputs run dry.
//!
//! Two more properties: the same seed and operations give the same trace (determinism),
//! and a closed or failed session emits no commands until `connect()`.
//!
//! `heartbeat_detects_dead_connections_in_time` and its minimal reproduction
//! `check_liveness_postpones_dead_connection_detection` FAIL on purpose: they pin a core
//! bug (`check_liveness` while a probe is unanswered restarts the probe timeout, so a
//! dead connection can stay "open" forever). They pass once the core keeps the time of
//! the first unanswered probe.
//!
//! Every failure message starts with the session's seed, the step and the fake time, and
//! ends with the tail of the trace; proptest prints the shrunk operation sequence.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestCaseError;
use resilient_ws_core::{
    BackoffConfig, CloseError, Command, Config, ConnId, Cursor, CursorExtractor, Disconnect, Event,
    Failure, HeartbeatConfig, MsgId, Payload, Probe, QueueBounds, ResumeMode, RetryAction,
    RetryPolicy, SendError, Session, SocketEvent, State, Timer, Timestamp, with_query_param,
};

// ---------------------------------------------------------------------------------------
// Inputs: configurations and operations
// ---------------------------------------------------------------------------------------

const URLS: [&str; 2] = [
    "ws://feed.test/ws",
    "wss://feed.test/ws?token=t&cursor=0#frag",
];

/// The probe a heartbeat uses.
#[derive(Clone, Copy, Debug)]
enum ProbeSpec {
    Ping,
    Message,
    IdleOnly,
}

/// A configuration, kept as plain numbers so a failing case prints readably.
#[derive(Clone, Debug)]
struct Spec {
    url: usize,
    backoff_initial_ms: u64,
    backoff_max_ms: u64,
    multiplier: f64,
    max_failures: Option<u32>,
    max_retry_duration_ms: Option<u64>,
    stability_ms: u64,
    connect_timeout_ms: u64,
    /// Interval, timeout, probe.
    heartbeat: Option<(u64, u64, ProbeSpec)>,
    max_retry_after_ms: u64,
    max_messages: usize,
    max_bytes: usize,
    start_cursor: Option<u64>,
    contiguous: bool,
    close_timeout_ms: u64,
}

impl Spec {
    fn probe(&self) -> Option<Probe> {
        self.heartbeat.map(|(_, _, probe)| match probe {
            ProbeSpec::Ping => Probe::PingFrame,
            ProbeSpec::Message => Probe::Message(Payload::Text("ping".into())),
            ProbeSpec::IdleOnly => Probe::IdleOnly,
        })
    }

    fn config(&self) -> Config {
        let mut config = Config::new(URLS[self.url]);
        config.backoff = BackoffConfig {
            initial: Duration::from_millis(self.backoff_initial_ms),
            max: Duration::from_millis(self.backoff_max_ms),
            multiplier: self.multiplier,
        };
        config.max_failures = self.max_failures;
        config.max_retry_duration = self.max_retry_duration_ms.map(Duration::from_millis);
        config.stability_window = Duration::from_millis(self.stability_ms);
        config.connect_timeout = Duration::from_millis(self.connect_timeout_ms);
        config.heartbeat =
            self.heartbeat
                .zip(self.probe())
                .map(|((interval, timeout, _), probe)| HeartbeatConfig {
                    interval: Duration::from_millis(interval),
                    timeout: Duration::from_millis(timeout),
                    probe,
                });
        config.retry = RetryPolicy {
            max_retry_after: Duration::from_millis(self.max_retry_after_ms),
            predicate: None,
        };
        config.queue = QueueBounds {
            max_messages: self.max_messages,
            max_bytes: self.max_bytes,
        };
        config.cursor = Some(seq_cursor());
        config.resume = ResumeMode::QueryParam("cursor".into());
        config.start_cursor = self.start_cursor.map(Cursor);
        config.contiguous_cursors = self.contiguous;
        config.close_timeout = Duration::from_millis(self.close_timeout_ms);
        config
    }

    /// The longest delay a retry may wait: the backoff cap or the Retry-After cap.
    fn delay_cap(&self) -> Duration {
        Duration::from_millis(self.backoff_max_ms.max(self.max_retry_after_ms))
    }
}

/// A hand-written extractor for `{"seq":N}`, so the tests run without the `json` feature.
fn seq_cursor() -> CursorExtractor {
    Arc::new(|payload: &Payload| {
        let text = match payload {
            Payload::Text(text) => text.as_str(),
            Payload::Binary(bytes) => std::str::from_utf8(bytes).ok()?,
        };
        let number = text.strip_prefix("{\"seq\":")?.strip_suffix('}')?;
        number.parse().ok().map(Cursor)
    })
}

/// An inbound message, relative to the fake server's feed position.
#[derive(Clone, Debug)]
enum Msg {
    /// The next cursor.
    Next,
    /// A cursor this far behind the feed position (a replay, or overlap after resume).
    Repeat(u64),
    /// A cursor this far ahead (a skip).
    Jump(u64),
    /// An absolute cursor.
    At(u64),
    /// A message without a cursor.
    NoCursor,
    /// JSON whose cursor is not a number.
    Garbage,
    /// The next cursor, as a binary message.
    BinaryNext,
}

/// Something that happens on a socket.
#[derive(Clone, Debug)]
enum Input {
    Opened,
    Message(Msg),
    Pong,
    Ended(Disconnect),
}

#[derive(Clone, Debug)]
enum Op {
    Connect,
    Send {
        len: usize,
        binary: bool,
    },
    Close {
        code: u16,
        reason_len: usize,
    },
    SetOnline(bool),
    CheckLiveness,
    /// Move the clock forward, then `handle_timeout`.
    Advance {
        ms: u64,
    },
    /// Jump to the session's next deadline, then `handle_timeout`.
    AdvanceToDeadline,
    /// Input for the current socket (stale input for the last one when there is none).
    Current(Input),
    /// Input for a socket that is not the current one: an earlier one, or an id the
    /// session may never have issued.
    Stale {
        pick: u8,
        minted: bool,
        input: Input,
    },
}

/// An operation, and how far from the latest time the time passed with it is. Negative:
/// a late reading (time that goes backwards must be treated as the latest time seen).
/// Positive: the input arrives after a deadline passed but before the driver reported
/// the timeout. Clock advances always pass the exact time.
#[derive(Clone, Debug)]
struct Step {
    op: Op,
    shift_ms: i64,
}

fn spec_strategy() -> impl Strategy<Value = Spec> {
    let timing = (
        0..URLS.len(),
        10u64..=500,
        0u64..=4_500,
        select(vec![1.0, 1.5, 2.0, 3.0]),
        prop::option::weighted(0.8, 1u32..=8),
        prop::option::weighted(0.3, 500u64..=30_000),
        50u64..=5_000,
        100u64..=5_000,
    );
    let heartbeat = prop::option::weighted(
        0.75,
        (
            100u64..=5_000,
            100u64..=3_000,
            select(vec![
                ProbeSpec::Ping,
                ProbeSpec::Message,
                ProbeSpec::IdleOnly,
            ]),
        ),
    );
    let rest = (
        heartbeat,
        0u64..=10_000,
        1usize..=8,
        16usize..=256,
        prop::option::weighted(0.2, 0u64..=10),
        any::<bool>(),
        100u64..=5_000,
    );
    (timing, rest).prop_map(
        |(
            (url, initial, extra, multiplier, max_failures, budget, stability, connect_timeout),
            (heartbeat, max_retry_after, max_messages, max_bytes, start, contiguous, close),
        )| Spec {
            url,
            backoff_initial_ms: initial,
            backoff_max_ms: initial + extra,
            multiplier,
            max_failures,
            max_retry_duration_ms: budget,
            stability_ms: stability,
            connect_timeout_ms: connect_timeout,
            heartbeat,
            max_retry_after_ms: max_retry_after,
            max_messages,
            max_bytes,
            start_cursor: start,
            contiguous,
            close_timeout_ms: close,
        },
    )
}

fn disconnect_strategy() -> impl Strategy<Value = Disconnect> {
    let closed = (
        // Mostly retryable codes; 1008 and 4401 are fatal.
        prop_oneof![
            4 => select(vec![1000u16, 1001, 1005, 1006, 1011, 1012, 1013, 4000]),
            1 => select(vec![1008u16, 4401]),
        ],
        select(vec!["", "bye", "unauthorized, do not retry"]),
    )
        .prop_map(|(code, reason)| Disconnect::Closed {
            code,
            reason: reason.into(),
        });
    let rejected = (
        // Mostly retryable statuses; 401 and 404 are fatal.
        prop_oneof![
            3 => select(vec![408u16, 429, 500, 503]),
            1 => select(vec![401u16, 404]),
        ],
        prop::option::of(prop_oneof![0u64..=2_000, 2_000u64..=120_000]),
    )
        .prop_map(|(status, retry_after)| Disconnect::Rejected {
            status,
            retry_after: retry_after.map(Duration::from_millis),
        });
    prop_oneof![
        4 => closed,
        3 => Just(Disconnect::Abnormal { detail: "connection reset".into() }),
        3 => rejected,
        2 => Just(Disconnect::ConnectTimeout),
        1 => Just(Disconnect::HeartbeatTimeout),
        // Fatal.
        1 => Just(Disconnect::Tls { detail: "bad certificate".into() }),
    ]
}

fn input_strategy() -> impl Strategy<Value = Input> {
    let msg = prop_oneof![
        6 => Just(Msg::Next),
        2 => (0u64..=3).prop_map(Msg::Repeat),
        1 => (1u64..=4).prop_map(Msg::Jump),
        1 => (0u64..=40).prop_map(Msg::At),
        1 => Just(Msg::NoCursor),
        1 => Just(Msg::Garbage),
        1 => Just(Msg::BinaryNext),
    ];
    prop_oneof![
        5 => Just(Input::Opened),
        7 => msg.prop_map(Input::Message),
        2 => Just(Input::Pong),
        3 => disconnect_strategy().prop_map(Input::Ended),
    ]
}

/// The operations; `liveness` weighs `check_liveness` (1 in the general mix).
fn op_strategy(liveness: u32) -> impl Strategy<Value = Op> {
    let send = (
        prop_oneof![8 => 0usize..=12, 2 => 13usize..=300],
        prop::bool::weighted(0.3),
    )
        .prop_map(|(len, binary)| Op::Send { len, binary });
    let close = (
        prop_oneof![
            8 => select(vec![1000u16, 3000, 4000, 4401, 4999]),
            1 => select(vec![999u16, 1001, 1006, 1011, 2999, 5000]),
        ],
        prop_oneof![9 => 0usize..=10, 1 => 123usize..=124],
    )
        .prop_map(|(code, reason_len)| Op::Close { code, reason_len });
    let advance = prop_oneof![
        6 => 0u64..=100,
        3 => 100u64..=2_000,
        1 => 2_000u64..=60_000,
    ]
    .prop_map(|ms| Op::Advance { ms });
    prop_oneof![
        3 => Just(Op::Connect),
        6 => send,
        2 => close,
        2 => any::<bool>().prop_map(Op::SetOnline),
        liveness => Just(Op::CheckLiveness),
        6 => advance,
        4 => Just(Op::AdvanceToDeadline),
        14 => input_strategy().prop_map(Op::Current),
        4 => (any::<u8>(), any::<bool>(), input_strategy())
            .prop_map(|(pick, minted, input)| Op::Stale { pick, minted, input }),
    ]
}

fn step_strategy(liveness: u32) -> impl Strategy<Value = Step> {
    (
        op_strategy(liveness),
        prop_oneof![16 => Just(0i64), 2 => -5_000i64..=-1, 1 => 1i64..=3_000],
    )
        .prop_map(|(op, shift_ms)| Step { op, shift_ms })
}

/// Up to 60 operations, usually starting with `connect`.
fn steps_strategy(liveness: u32) -> impl Strategy<Value = Vec<Step>> {
    (
        prop::bool::weighted(0.8),
        prop::collection::vec(step_strategy(liveness), 0..=60),
    )
        .prop_map(|(connect_first, mut steps)| {
            if connect_first {
                steps.insert(
                    0,
                    Step {
                        op: Op::Connect,
                        shift_ms: 0,
                    },
                );
            }
            steps
        })
}

/// Connection ids 1..=64, minted by a throwaway session (`ConnId` has no constructor).
/// Ids the session under test has not issued yet are "made-up" stale ids.
fn minted_ids() -> &'static [ConnId] {
    static MINTED: OnceLock<Vec<ConnId>> = OnceLock::new();
    MINTED.get_or_init(|| {
        let mut session = Session::new(Config::new("ws://mint.test"), 0).expect("valid config");
        let mut ids = Vec::new();
        for _ in 0..64 {
            session.connect(Timestamp::ZERO);
            while let Some(command) = session.poll_command() {
                if let Command::Open(request) = command {
                    ids.push(request.conn);
                }
            }
            session
                .close(1000, "", Timestamp::ZERO)
                .expect("valid close");
            while session.poll_command().is_some() {}
            while session.poll_event().is_some() {}
        }
        assert_eq!(ids.len(), 64);
        ids
    })
}

// ---------------------------------------------------------------------------------------
// The harness
// ---------------------------------------------------------------------------------------

/// What the current operation must produce, as predicted by the model.
#[derive(Default)]
struct Expect {
    /// A delivered message (payload, cursor).
    message: Option<(Payload, Option<Cursor>)>,
    /// A reported gap (last, received).
    gap: Option<(Cursor, Cursor)>,
}

struct Harness {
    spec: Spec,
    seed: u64,
    session: Session,
    url: String,
    probe: Option<Probe>,
    /// The latest time given to the session (the session's clamped clock).
    now: Timestamp,
    online: bool,
    step: usize,
    // Sockets.
    live: Option<ConnId>,
    /// The live socket reported `Opened` while handshaking.
    live_open: bool,
    opened: Vec<ConnId>,
    aborted: BTreeSet<ConnId>,
    /// Sockets that got a `Close` command.
    close_sent: BTreeSet<ConnId>,
    /// The last open request, for the attempt number.
    last_open_attempt: Option<u32>,
    // Lifecycle.
    /// No `Open` allowed until an effective `connect()`.
    stopped: bool,
    /// Code and reason of the `close()` that put the session in `Closing`.
    close_args: Option<(u16, String)>,
    // Outbound.
    payload_counter: u64,
    accepted: BTreeMap<MsgId, Payload>,
    /// Accepted, neither sent nor handed back: the model of the queue.
    outstanding: BTreeMap<MsgId, usize>,
    /// How each accepted message left: "sent" or "unsent".
    settled: BTreeMap<MsgId, &'static str>,
    last_sent_id: Option<MsgId>,
    // Inbound.
    server_seq: u64,
    last_delivered: Option<Cursor>,
    // Model counters.
    attempts: u64,
    opens: u64,
    stale_inputs: u64,
    replays: u64,
    delivered: u64,
    messages_sent: u64,
    // Timing model.
    /// When the live socket was asked for.
    open_requested_at: Timestamp,
    /// When the live socket opened.
    opened_at: Timestamp,
    /// The last proof of life on the live, open socket.
    last_inbound: Timestamp,
    /// When the first probe since the last inbound frame went out.
    probe_outstanding_since: Option<Timestamp>,
    /// The last time given to `handle_timeout`.
    timeouts_handled_at: Timestamp,
    /// When the session entered `Closing`.
    closing_since: Timestamp,
    /// When the current run of failed attempts began (the failure count left zero).
    failing_since: Option<Timestamp>,
    /// Whether to check the heartbeat's detection bound (see `check_heartbeat_bound`).
    check_heartbeat_bound: bool,
    trace: Vec<String>,
}

/// Fails the test case with the seed, step and time in the message.
macro_rules! ensure {
    ($h:expr, $cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($h.failure(format!($($fmt)+)));
        }
    };
}

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

fn is_stopped_state(state: &State) -> bool {
    matches!(state, State::Closing | State::Closed | State::Failed(_))
}

impl Harness {
    fn new(spec: &Spec, seed: u64) -> Self {
        let session = Session::new(spec.config(), seed).expect("generated configs are valid");
        Self {
            spec: spec.clone(),
            seed,
            session,
            url: URLS[spec.url].to_owned(),
            probe: spec.probe(),
            now: Timestamp::ZERO,
            online: true,
            step: 0,
            live: None,
            live_open: false,
            opened: Vec::new(),
            aborted: BTreeSet::new(),
            close_sent: BTreeSet::new(),
            last_open_attempt: None,
            stopped: true,
            close_args: None,
            payload_counter: 0,
            accepted: BTreeMap::new(),
            outstanding: BTreeMap::new(),
            settled: BTreeMap::new(),
            last_sent_id: None,
            server_seq: spec.start_cursor.unwrap_or(0),
            last_delivered: spec.start_cursor.map(Cursor),
            attempts: 0,
            opens: 0,
            stale_inputs: 0,
            replays: 0,
            delivered: 0,
            messages_sent: 0,
            open_requested_at: Timestamp::ZERO,
            opened_at: Timestamp::ZERO,
            last_inbound: Timestamp::ZERO,
            closing_since: Timestamp::ZERO,
            timeouts_handled_at: Timestamp::ZERO,
            probe_outstanding_since: None,
            check_heartbeat_bound: false,
            failing_since: None,
            trace: Vec::new(),
        }
    }

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

    fn note(&mut self, line: impl Into<String>) {
        self.trace.push(line.into());
    }

    /// The time passed with an operation: `shift_ms` from the latest time. A time ahead
    /// becomes the latest time.
    fn shifted(&mut self, shift_ms: i64) -> Timestamp {
        let shift = ms(shift_ms.unsigned_abs());
        if shift_ms >= 0 {
            self.now = self.now + shift;
            self.now
        } else {
            Timestamp::from_duration(self.now.since_origin().saturating_sub(shift))
        }
    }

    fn payload(&mut self, len: usize, binary: bool) -> Payload {
        self.payload_counter += 1;
        let seed = format!("p{}-", self.payload_counter);
        let bytes: Vec<u8> = seed.bytes().cycle().take(len).collect();
        if binary {
            Payload::Binary(bytes)
        } else {
            Payload::Text(String::from_utf8(bytes).expect("ascii"))
        }
    }

    fn message_payload(&mut self, msg: &Msg) -> Payload {
        let seq = |n: u64| Payload::Text(format!("{{\"seq\":{n}}}"));
        match msg {
            Msg::Next => {
                self.server_seq += 1;
                seq(self.server_seq)
            }
            Msg::Repeat(back) => seq(self.server_seq.saturating_sub(*back)),
            Msg::Jump(ahead) => {
                self.server_seq += ahead;
                seq(self.server_seq)
            }
            Msg::At(n) => seq(*n),
            Msg::NoCursor => Payload::Text("tick".into()),
            Msg::Garbage => Payload::Text("{\"seq\":\"x\"}".into()),
            Msg::BinaryNext => {
                self.server_seq += 1;
                Payload::Binary(format!("{{\"seq\":{}}}", self.server_seq).into_bytes())
            }
        }
    }

    fn socket_event(&mut self, input: &Input) -> SocketEvent {
        match input {
            Input::Opened => SocketEvent::Opened,
            Input::Message(msg) => SocketEvent::Message(self.message_payload(msg)),
            Input::Pong => SocketEvent::Pong,
            Input::Ended(disconnect) => SocketEvent::Ended(disconnect.clone()),
        }
    }

    /// Drains both outputs; they must run dry (one operation yields a handful of each).
    fn drain(&mut self) -> Result<(Vec<Command>, Vec<Event>), TestCaseError> {
        const MAX: usize = 1_000;
        let mut commands = Vec::new();
        while let Some(command) = self.session.poll_command() {
            commands.push(command);
            ensure!(
                self,
                commands.len() < MAX,
                "poll_command never runs dry: {:?}",
                &commands[..5]
            );
        }
        let mut events = Vec::new();
        while let Some(event) = self.session.poll_event() {
            events.push(event);
            ensure!(
                self,
                events.len() < MAX,
                "poll_event never runs dry: {:?}",
                &events[..5]
            );
        }
        Ok((commands, events))
    }

    fn run(&mut self, steps: &[Step]) -> Result<(), TestCaseError> {
        for step in steps {
            self.apply(step)?;
        }
        self.finish()
    }

    /// Closes the session and checks that every socket was aborted and every accepted
    /// message was sent or handed back exactly once.
    fn finish(&mut self) -> Result<(), TestCaseError> {
        self.apply(&Step {
            op: Op::Close {
                code: 1000,
                reason_len: 3,
            },
            shift_ms: 0,
        })?;
        if *self.session.state() == State::Closing {
            // Either the close handshake completes or the close deadline passes.
            let op = if self.seed % 2 == 0 {
                Op::Advance {
                    ms: self.spec.close_timeout_ms,
                }
            } else {
                Op::Current(Input::Ended(Disconnect::Closed {
                    code: 1000,
                    reason: String::new(),
                }))
            };
            self.apply(&Step { op, shift_ms: 0 })?;
        }
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

    fn apply(&mut self, step: &Step) -> Result<(), TestCaseError> {
        self.step += 1;
        self.note(format!(
            "#{} {:?} shift {}ms",
            self.step, step.op, step.shift_ms
        ));
        let now_before = self.now;
        let t = match step.op {
            Op::Advance { .. } | Op::AdvanceToDeadline => self.now,
            _ => self.shifted(step.shift_ms),
        };
        let state_before = self.session.state().clone();
        let stats_before = self.session.stats();
        let cursor_before = self.session.last_cursor();
        let timeout_before = self.session.poll_timeout();
        let stale_before = self.stale_inputs;
        let mut expect = Expect::default();
        let mut effective_connect = false;
        let mut ended: Option<Disconnect> = None;
        let mut unchanged = false;
        let online_before = self.online;

        match &step.op {
            Op::Connect => {
                effective_connect =
                    matches!(state_before, State::Idle | State::Closed | State::Failed(_));
                if effective_connect {
                    self.stopped = false;
                    self.close_args = None;
                }
                self.session.connect(t);
            }
            Op::Send { len, binary } => {
                let payload = self.payload(*len, *binary);
                self.send(payload, t, &state_before, &stats_before)?;
            }
            Op::Close { code, reason_len } => {
                let reason = "r".repeat(*reason_len);
                let result = self.session.close(*code, &reason, t);
                self.note(format!("  close -> {result:?}"));
                if !(*code == 1000 || (3000..=4999).contains(code)) {
                    ensure!(
                        self,
                        result == Err(CloseError::Code(*code)),
                        "close({code}) gave {result:?}"
                    );
                    // A refused close does not look at the time.
                    self.now = now_before;
                    unchanged = true;
                } else if *reason_len > 123 {
                    ensure!(
                        self,
                        result == Err(CloseError::ReasonTooLong(*reason_len)),
                        "close with a {reason_len}-byte reason gave {result:?}"
                    );
                    self.now = now_before;
                    unchanged = true;
                } else {
                    ensure!(self, result.is_ok(), "close({code}) gave {result:?}");
                    if !is_stopped_state(&state_before) {
                        self.close_args = Some((*code, reason));
                        self.closing_since = self.now;
                    }
                }
            }
            Op::SetOnline(online) => {
                self.online = *online;
                self.session.set_online(*online, t);
            }
            Op::CheckLiveness => self.session.check_liveness(t),
            Op::Advance { ms } => {
                self.now = self.now + Duration::from_millis(*ms);
                self.timeouts_handled_at = self.now;
                self.session.handle_timeout(self.now);
            }
            Op::AdvanceToDeadline => {
                match self.session.poll_timeout() {
                    Some((deadline, _)) => self.now = self.now.max(deadline),
                    None => self.now = self.now + Duration::from_secs(1),
                }
                self.timeouts_handled_at = self.now;
                self.session.handle_timeout(self.now);
            }
            Op::Current(input) => match (self.live, self.opened.last().copied()) {
                (Some(conn), _) => {
                    ended = self.feed_current(conn, input, t, &mut expect);
                }
                (None, Some(old)) => self.feed_stale(old, input, t),
                (None, None) => {
                    // Nothing to feed: the session saw no time either.
                    self.now = now_before;
                    unchanged = true;
                }
            },
            Op::Stale {
                pick,
                minted,
                input,
            } => {
                let history: Vec<ConnId> = self
                    .opened
                    .iter()
                    .copied()
                    .filter(|conn| Some(*conn) != self.live)
                    .collect();
                let target = if *minted || history.is_empty() {
                    let ids = minted_ids();
                    ids[usize::from(*pick) % ids.len()]
                } else {
                    history[usize::from(*pick) % history.len()]
                };
                if Some(target) == self.live {
                    ended = self.feed_current(target, input, t, &mut expect);
                } else {
                    self.feed_stale(target, input, t);
                }
            }
        }

        let (commands, events) = self.drain()?;
        for command in &commands {
            self.note(format!("  cmd {command:?}"));
        }
        for event in &events {
            self.note(format!("  evt {event:?}"));
        }
        let state = self.session.state().clone();
        self.note(format!(
            "  -> {state:?}, timeout {:?}, cursor {:?}",
            self.session.poll_timeout(),
            self.session.last_cursor()
        ));

        let stale = self.stale_inputs != stale_before;
        if stale || unchanged {
            // Invariant 2 (and refused closes): nothing changes, nothing comes out.
            // Only the clock may move (time in state, and deadlines clamped to now).
            let mut expected_stats = stats_before.clone();
            expected_stats.stale_inputs = self.stale_inputs;
            expected_stats.time_in_state += self.now - now_before;
            let timeout_before =
                timeout_before.map(|(deadline, timer)| (deadline.max(self.now), timer));
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
        }

        // "Closed and Failed emit no further commands without connect()."
        if state_before.is_terminal() && !effective_connect {
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
        }

        let failures = self.session.stats().consecutive_failures;
        self.failing_since = match (failures, self.failing_since) {
            (0, _) => None,
            (_, since) => Some(since.unwrap_or(self.now)),
        };
        self.check_commands(&commands)?;
        self.check_events(&events, &mut expect)?;
        self.check_after(&state)?;
        if let Some(disconnect) = ended {
            self.check_ended(&state_before, &state, &disconnect)?;
        }
        // connect() and coming back online make an attempt at once.
        let came_online = matches!(step.op, Op::SetOnline(true))
            && !online_before
            && matches!(state_before, State::Reconnecting { .. });
        if (effective_connect || came_online) && self.online {
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
                vec![stats_before.consecutive_failures + 1]
            };
            ensure!(
                self,
                opens == expected,
                "{:?} from {state_before:?} opened attempts {opens:?}, expected {expected:?}",
                step.op
            );
        }
        if is_stopped_state(&state) {
            self.stopped = true;
        }
        Ok(())
    }

    fn send(
        &mut self,
        payload: Payload,
        t: Timestamp,
        state_before: &State,
        stats_before: &resilient_ws_core::Stats,
    ) -> Result<(), TestCaseError> {
        let len = payload.len();
        let result = self.session.send(payload.clone(), t);
        self.note(format!(
            "  send({len}B) -> {:?}",
            result.as_ref().map_err(|_| "err")
        ));
        let max_bytes = self.spec.max_bytes;
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
                self.accepted.insert(id, payload);
                self.outstanding.insert(id, len);
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
                    back == payload,
                    "send error handed back {back:?}, not {payload:?}"
                );
            }
        }
        Ok(())
    }

    /// Feeds input for the live socket and predicts what it must produce. Returns the
    /// disconnect when the input ends the socket.
    fn feed_current(
        &mut self,
        conn: ConnId,
        input: &Input,
        t: Timestamp,
        expect: &mut Expect,
    ) -> Option<Disconnect> {
        let event = self.socket_event(input);
        match &event {
            SocketEvent::Opened if !self.live_open => {
                self.live_open = true;
                self.opens += 1;
                self.opened_at = self.now;
                self.last_inbound = self.now;
                self.probe_outstanding_since = None;
            }
            SocketEvent::Pong if self.live_open => {
                self.last_inbound = self.now;
                self.probe_outstanding_since = None;
            }
            SocketEvent::Message(payload) if self.live_open => {
                self.last_inbound = self.now;
                self.probe_outstanding_since = None;
                let cursor = seq_cursor()(payload);
                match (cursor, self.last_delivered) {
                    (Some(cursor), Some(last)) if cursor <= last => self.replays += 1,
                    _ => {
                        if let (Some(cursor), Some(last)) = (cursor, self.last_delivered) {
                            if self.spec.contiguous && cursor.0 > last.0 + 1 {
                                expect.gap = Some((last, cursor));
                            }
                        }
                        expect.message = Some((payload.clone(), cursor));
                        self.delivered += 1;
                    }
                }
            }
            _ => {}
        }
        let ended = match &event {
            SocketEvent::Ended(disconnect) => Some(disconnect.clone()),
            _ => None,
        };
        self.note(format!("  feed {conn} (current) {event:?}"));
        self.session.handle_socket(conn, event, t);
        ended
    }

    fn feed_stale(&mut self, conn: ConnId, input: &Input, t: Timestamp) {
        let event = self.socket_event(input);
        self.note(format!("  feed {conn} (stale) {event:?}"));
        self.stale_inputs += 1;
        self.session.handle_socket(conn, event, t);
    }

    /// Invariants 1, 3, 5, 9, 10 and 11, command by command.
    fn check_commands(&mut self, commands: &[Command]) -> Result<(), TestCaseError> {
        for command in commands {
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
                            && self
                                .spec
                                .max_failures
                                .is_none_or(|max| request.attempt <= max),
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
                    self.live = Some(request.conn);
                    self.live_open = false;
                    self.probe_outstanding_since = None;
                    self.opened.push(request.conn);
                    self.last_open_attempt = Some(request.attempt);
                    self.open_requested_at = self.now;
                    self.attempts += 1;
                }
                Command::Abort { conn } => {
                    ensure!(
                        self,
                        self.live == Some(*conn),
                        "Abort {conn} but live is {:?}",
                        self.live
                    );
                    ensure!(self, self.aborted.insert(*conn), "second Abort for {conn}");
                    self.live = None;
                    self.live_open = false;
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
                            self.last_sent_id = Some(*id);
                            ensure!(
                                self,
                                self.outstanding.remove(id).is_some(),
                                "{id} sent but not queued (never accepted, or already left)"
                            );
                            ensure!(
                                self,
                                self.accepted.get(id) == Some(payload),
                                "{id} sent with a different payload"
                            );
                            self.settled.insert(*id, "sent");
                            self.messages_sent += 1;
                        }
                        None => {
                            self.probe_outstanding_since.get_or_insert(self.now);
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
                    self.probe_outstanding_since.get_or_insert(self.now);
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
                        self.close_sent.insert(*conn),
                        "second Close on {conn}"
                    );
                }
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
        let within_cap =
            |attempt: u32| attempt >= 1 && self.spec.max_failures.is_none_or(|max| attempt <= max);
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

    /// Invariants 4-6, 9: events.
    fn check_events(&mut self, events: &[Event], expect: &mut Expect) -> Result<(), TestCaseError> {
        for event in events {
            match event {
                Event::StateChanged { state, .. } => {
                    self.check_state_shape(state, true)?;
                    self.check_budget(state)?;
                }
                Event::Message { payload, cursor } => {
                    let expected = expect.message.take();
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
                        self.last_delivered = Some(*cursor);
                    }
                }
                Event::CursorGap { last, received } => {
                    let expected = expect.gap.take();
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
                            self.outstanding.remove(&message.id).is_some(),
                            "{} handed back but not queued (never accepted, sent, or handed back before)",
                            message.id
                        );
                        ensure!(
                            self,
                            self.accepted.get(&message.id) == Some(&message.payload),
                            "{} handed back with a different payload",
                            message.id
                        );
                        self.settled.insert(message.id, "unsent");
                    }
                }
            }
        }
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
    fn check_after(&self, state: &State) -> Result<(), TestCaseError> {
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
        if let Some(max) = self.spec.max_failures {
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
    fn check_heartbeat_bound(
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
    fn check_ended(
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
                ensure!(
                    self,
                    *delay == wait,
                    "Retry-After {wait:?} but delay {delay:?}"
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

// ---------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2_000,
        max_shrink_iters: 20_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Invariants 1-11 after every operation of a random sequence, and the accounting of
    /// every accepted message once the session is closed.
    #[test]
    fn invariants_hold_for_random_sequences(
        spec in spec_strategy(),
        seed in any::<u64>(),
        steps in steps_strategy(1),
    ) {
        Harness::new(&spec, seed).run(&steps)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// The same configuration, seed and operations give the same commands, events,
    /// states and deadlines.
    #[test]
    fn same_seed_same_trace(
        spec in spec_strategy(),
        seed in any::<u64>(),
        steps in steps_strategy(1),
    ) {
        let mut first = Harness::new(&spec, seed);
        let first_result = first.run(&steps);
        let mut second = Harness::new(&spec, seed);
        let second_result = second.run(&steps);
        prop_assert!(
            first.trace == second.trace,
            "seed {seed}: traces differ\n{:#?}\n---\n{:#?}",
            first.trace,
            second.trace
        );
        first_result?;
        second_result?;
    }

    /// Once closed or failed, nothing the driver or application does (short of
    /// `connect()`) makes the session emit a command or change state.
    #[test]
    fn terminal_states_stay_quiet_until_connect(
        spec in spec_strategy(),
        seed in any::<u64>(),
        fail in any::<bool>(),
        steps in prop::collection::vec(
            step_strategy(1).prop_filter("no connect", |step| !matches!(step.op, Op::Connect)),
            0..=60,
        ),
    ) {
        let mut harness = Harness::new(&spec, seed);
        let prefix = if fail {
            vec![
                Op::Connect,
                Op::Current(Input::Ended(Disconnect::Rejected { status: 401, retry_after: None })),
            ]
        } else {
            vec![
                Op::Connect,
                Op::Current(Input::Opened),
                Op::Close { code: 1000, reason_len: 0 },
                Op::Current(end_close()),
            ]
        };
        for op in prefix {
            harness.apply(&Step { op, shift_ms: 0 })?;
        }
        let terminal = harness.session.state().clone();
        prop_assert!(terminal.is_terminal(), "seed {seed}: {terminal:?}");
        for step in &steps {
            harness.apply(step)?;
            prop_assert_eq!(harness.session.state(), &terminal, "seed {}", seed);
            prop_assert_eq!(harness.session.current_conn(), None, "seed {}", seed);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// With a heartbeat, a dead connection is declared dead within `interval + timeout`
    /// of the last inbound frame (heartbeat.rs), however often `check_liveness` is called.
    ///
    /// FAILS on the current core: `check_liveness` while a probe is unanswered restarts
    /// the probe timeout (see `check_liveness_postpones_dead_connection_detection`).
    #[test]
    fn heartbeat_detects_dead_connections_in_time(
        spec in spec_strategy().prop_filter("needs a heartbeat", |spec| spec.heartbeat.is_some()),
        seed in any::<u64>(),
        steps in steps_strategy(6),
    ) {
        let mut harness = Harness::new(&spec, seed);
        harness.check_heartbeat_bound = true;
        harness.run(&steps)?;
    }
}

/// Core bug, minimal reproduction: every `check_liveness` while a probe is unanswered
/// restarts the probe timeout, so a driver that calls it often (say on every
/// visibility change) keeps a dead connection "open" forever, against heartbeat.rs's
/// "a dead connection is always detected within `interval + timeout` of the last inbound
/// frame".
#[test]
fn check_liveness_postpones_dead_connection_detection() {
    let mut config = Config::new("ws://feed.test/ws");
    config.heartbeat = Some(HeartbeatConfig {
        interval: ms(100),
        timeout: ms(100),
        probe: Probe::PingFrame,
    });
    let mut session = Session::new(config, 1).expect("valid config");
    let at = Timestamp::from_millis;
    session.connect(at(0));
    let Some(Command::Open(open)) = session.poll_command() else {
        panic!("seed 1: no Open");
    };
    session.handle_socket(open.conn, SocketEvent::Opened, at(0));
    // The last inbound frame is the open at t=0: dead by t=200 at the latest. The peer
    // never answers; the application checks liveness every 90 ms.
    let mut aborted_at = None;
    for t in (0..=1_000).step_by(10) {
        session.handle_timeout(at(t));
        if t % 90 == 0 {
            session.check_liveness(at(t));
        }
        while let Some(command) = session.poll_command() {
            if matches!(command, Command::Abort { .. }) {
                aborted_at.get_or_insert(t);
            }
        }
        while session.poll_event().is_some() {}
    }
    assert!(
        aborted_at.is_some_and(|t| t <= 200),
        "seed 1: no inbound frame since t=0 with a 100+100 ms heartbeat, but the \
         connection was not declared dead by t=200 (aborted at {aborted_at:?} ms, state at \
         t=1000: {:?})",
        session.state()
    );
}

fn end_close() -> Input {
    Input::Ended(Disconnect::Closed {
        code: 1000,
        reason: String::new(),
    })
}

/// A handshaking socket with queued messages is kept by `close()` to flush them: no new
/// `Open`, and the messages leave before the `Close`.
#[test]
fn close_while_handshaking_flushes_on_the_same_socket() {
    let spec = Spec {
        url: 0,
        backoff_initial_ms: 100,
        backoff_max_ms: 1_000,
        multiplier: 2.0,
        max_failures: Some(3),
        max_retry_duration_ms: None,
        stability_ms: 1_000,
        connect_timeout_ms: 1_000,
        heartbeat: Some((500, 500, ProbeSpec::Ping)),
        max_retry_after_ms: 1_000,
        max_messages: 4,
        max_bytes: 64,
        start_cursor: None,
        contiguous: false,
        close_timeout_ms: 1_000,
    };
    let mut harness = Harness::new(&spec, 7);
    let steps = [
        Op::Connect,
        Op::Send {
            len: 3,
            binary: false,
        },
        Op::Close {
            code: 1000,
            reason_len: 2,
        },
        Op::Current(Input::Opened),
        Op::Current(end_close()),
    ]
    .map(|op| Step { op, shift_ms: 0 });
    harness.run(&steps).expect("invariants hold");
    assert_eq!(harness.opened.len(), 1);
    assert_eq!(harness.messages_sent, 1);
    assert_eq!(*harness.session.state(), State::Closed);
}
