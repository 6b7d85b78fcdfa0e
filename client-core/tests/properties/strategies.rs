//! The inputs and their generators: the configurations ([`Spec`]) and the operations
//! ([`Op`], [`Step`]) the harness plays, and the proptest strategies that draw them.
//!
//! Everything here is plain data, so a failing case prints readably and shrinks well; the
//! harness (`model.rs`) turns it into calls on a `Session`.

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use proptest::sample::select;
use resilient_ws_core::{
    BackoffConfig, Config, Cursor, CursorExtractor, Disconnect, HeartbeatConfig,
    MIN_DELAY_AFTER_FAILURE, Payload, Probe, QueueBounds, ResumeMode, RetryPolicy,
};

pub(crate) const URLS: [&str; 2] = [
    "ws://feed.test/ws",
    "wss://feed.test/ws?token=t&cursor=0#frag",
];

/// The probe a heartbeat uses.
#[derive(Clone, Copy, Debug)]
pub(crate) enum ProbeSpec {
    Ping,
    Message,
    IdleOnly,
}

/// A configuration, kept as plain numbers so a failing case prints readably.
#[derive(Clone, Debug)]
pub(crate) struct Spec {
    pub(crate) url: usize,
    pub(crate) backoff_initial_ms: u64,
    pub(crate) backoff_max_ms: u64,
    pub(crate) multiplier: f64,
    pub(crate) max_failures: Option<u32>,
    pub(crate) max_retry_duration_ms: Option<u64>,
    pub(crate) stability_ms: u64,
    pub(crate) connect_timeout_ms: u64,
    /// Interval, timeout, probe.
    pub(crate) heartbeat: Option<(u64, u64, ProbeSpec)>,
    pub(crate) max_retry_after_ms: u64,
    pub(crate) max_messages: usize,
    pub(crate) max_bytes: usize,
    pub(crate) start_cursor: Option<u64>,
    pub(crate) contiguous: bool,
    pub(crate) close_timeout_ms: u64,
}

impl Spec {
    pub(crate) fn probe(&self) -> Option<Probe> {
        self.heartbeat.map(|(_, _, probe)| match probe {
            ProbeSpec::Ping => Probe::PingFrame,
            ProbeSpec::Message => Probe::Message(Payload::Text("ping".into())),
            ProbeSpec::IdleOnly => Probe::IdleOnly,
        })
    }

    pub(crate) fn config(&self) -> Config {
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

    /// The longest delay a retry may wait.
    pub(crate) fn delay_cap(&self) -> Duration {
        let floor = Duration::from_millis(self.backoff_initial_ms).min(MIN_DELAY_AFTER_FAILURE);
        // A Retry-After (at most `max_retry_after`, at least the floor) gets up to a
        // backoff window of jitter on top; a backoff delay stays within the window.
        Duration::from_millis(self.max_retry_after_ms).max(floor)
            + Duration::from_millis(self.backoff_max_ms)
    }
}

/// A hand-written extractor for `{"seq":N}`, so the tests run without the `json` feature.
pub(crate) fn seq_cursor() -> CursorExtractor {
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
pub(crate) enum Msg {
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
pub(crate) enum Input {
    Opened,
    Message(Msg),
    Pong,
    Ended(Disconnect),
}

#[derive(Clone, Debug)]
pub(crate) enum Op {
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
pub(crate) struct Step {
    pub(crate) op: Op,
    pub(crate) shift_ms: i64,
}

pub(crate) fn spec_strategy() -> impl Strategy<Value = Spec> {
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

pub(crate) fn disconnect_strategy() -> impl Strategy<Value = Disconnect> {
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

pub(crate) fn input_strategy() -> impl Strategy<Value = Input> {
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
pub(crate) fn op_strategy(liveness: u32) -> impl Strategy<Value = Op> {
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

pub(crate) fn step_strategy(liveness: u32) -> impl Strategy<Value = Step> {
    (
        op_strategy(liveness),
        prop_oneof![16 => Just(0i64), 2 => -5_000i64..=-1, 1 => 1i64..=3_000],
    )
        .prop_map(|(op, shift_ms)| Step { op, shift_ms })
}

/// Up to 60 operations, usually starting with `connect`.
pub(crate) fn steps_strategy(liveness: u32) -> impl Strategy<Value = Vec<Step>> {
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
