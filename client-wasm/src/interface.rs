//! The tables `js/host.js` shares with this crate, checked against the Rust side: the
//! settings slots, the state fields, the state, reason, disconnect and failure numbers,
//! the stats order, the signals and the send outcomes. host.js keeps its own copies
//! (reading them from WebAssembly would cost the package bytes), so these tests read
//! host.js as text and fail naming the entry that drifted. They run on the host target,
//! in `cargo test --workspace`.

use std::time::Duration;

use resilient_ws_core::{Config, Cursor, Disconnect, Failure, Reason, State, Stats, Timestamp};

use crate::client::{SendOutcome, signal};
use crate::report::{describe, field, state_code, state_fields, stats_values};
use crate::settings::{self, Texts, slot};

const HOST_JS: &str = include_str!("../js/host.js");

// ---- Reading host.js ----

/// The text of host.js after `marker`.
fn after(marker: &str) -> &'static str {
    let at = HOST_JS
        .find(marker)
        .unwrap_or_else(|| panic!("host.js no longer contains `{marker}`"));
    &HOST_JS[at + marker.len()..]
}

/// The text of host.js between `start` and the next `end`.
fn between(start: &str, end: &str) -> &'static str {
    let rest = after(start);
    let to = rest
        .find(end)
        .unwrap_or_else(|| panic!("host.js: no `{end}` after `{start}`"));
    &rest[..to]
}

/// The whole number at the start of `text` (after spaces).
fn leading_number(text: &str, what: &str) -> usize {
    let text = text.trim_start();
    let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap_or_else(|_| {
        panic!(
            "host.js: {what} is not a number: `{}`",
            &text[..20.min(text.len())]
        )
    })
}

/// `const NAME = N;` in host.js.
fn constant(name: &str) -> usize {
    leading_number(after(&format!("const {name} = ")), name)
}

/// The items of a JS array literal of strings and nulls, in order (`None` for null).
fn string_items(list: &str) -> Vec<Option<String>> {
    list.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| match item {
            "null" => None,
            quoted => Some(quoted.trim_matches('\'').to_string()),
        })
        .collect()
}

/// The literal pieces of the JS string starting at `text` (quoted with ' or `), in
/// order: what stays when every `${...}` is taken out.
fn literals(text: &str) -> Vec<String> {
    let mut chars = text.trim_start().chars();
    let quote = chars.next().expect("a string literal");
    assert!(
        quote == '`' || quote == '\'',
        "host.js: not a string: `{text}`"
    );
    let mut pieces = vec![String::new()];
    while let Some(c) = chars.next() {
        match c {
            c if c == quote => return pieces,
            '$' if quote == '`' && chars.as_str().starts_with('{') => {
                // Skip the expression, nested templates and all, to its closing brace.
                let mut depth = 0;
                for c in chars.by_ref() {
                    depth += match c {
                        '{' => 1,
                        '}' => -1,
                        _ => 0,
                    };
                    if depth == 0 {
                        break;
                    }
                }
                pieces.push(String::new());
            }
            c => pieces.last_mut().expect("one piece at least").push(c),
        }
    }
    panic!("host.js: unterminated string `{text}`")
}

/// Whether `text` holds every piece of `pieces`, in order.
fn holds_in_order(text: &str, pieces: &[String]) -> bool {
    let mut rest = text;
    pieces.iter().all(|piece| match rest.find(piece.as_str()) {
        Some(at) => {
            rest = &rest[at + piece.len()..];
            true
        }
        None => false,
    })
}

// ---- Settings slots ----

/// An entry of host.js `NUMBERS`: its slot and option path.
fn numbers_table() -> Vec<(usize, &'static str)> {
    between("const NUMBERS = [", "\n];")
        .split('[')
        .skip(1)
        .map(|entry| {
            let (number, rest) = entry.split_once(',').expect("[slot, 'path', ...]");
            let path = rest.split('\'').nth(1).expect("a quoted option path");
            (leading_number(number, "a NUMBERS slot"), path)
        })
        .collect()
}

fn config_from(numbers: &[f64]) -> (u64, Config) {
    let texts = Texts {
        url: "ws://example/".into(),
        cursor_field: None,
        resume_param: None,
        heartbeat_message: None,
    };
    settings::read(numbers, texts)
}

/// The option at `path` (host.js's name for it) as the session was configured.
fn option(config: &Config, path: &str) -> f64 {
    let millis = |duration: Duration| duration.as_secs_f64() * 1000.0;
    let heartbeat = config.heartbeat.as_ref().expect("the heartbeat is on");
    match path {
        "maxFailures" => config.max_failures.map_or(f64::INFINITY, f64::from),
        "connectTimeoutMs" => millis(config.connect_timeout),
        "stabilityWindowMs" => millis(config.stability_window),
        "closeTimeoutMs" => millis(config.close_timeout),
        "backoff.initialMs" => millis(config.backoff.initial),
        "backoff.maxMs" => millis(config.backoff.max),
        "backoff.multiplier" => config.backoff.multiplier,
        "heartbeat.intervalMs" => millis(heartbeat.interval),
        "heartbeat.timeoutMs" => millis(heartbeat.timeout),
        "queue.maxMessages" => config.queue.max_messages as f64,
        "queue.maxBytes" => config.queue.max_bytes as f64,
        other => panic!("host.js NUMBERS has option `{other}`, which settings.rs does not read"),
    }
}

#[test]
fn each_numeric_option_lands_in_the_setting_it_names() {
    let len = leading_number(after("new Float64Array("), "the settings array's length");
    let table = numbers_table();
    assert_eq!(table.len(), 11, "host.js NUMBERS: {table:?}");
    let defaults = config_from(&vec![f64::NAN; len]).1;
    for &(at, path) in &table {
        assert!(
            at < len,
            "host.js NUMBERS puts `{path}` in slot {at}, past the array ({len})"
        );
        let mut numbers = vec![f64::NAN; len];
        numbers[at] = 7.0;
        let config = config_from(&numbers).1;
        assert_eq!(
            option(&config, path),
            7.0,
            "host.js writes `{path}` to slot {at}, which settings.rs does not read as `{path}`"
        );
        for &(_, other) in table.iter().filter(|(_, other)| *other != path) {
            assert_eq!(
                option(&config, other),
                option(&defaults, other),
                "slot {at} (host.js `{path}`) also changed `{other}`"
            );
        }
    }
    let slot_of = |path: &str| {
        table
            .iter()
            .find(|(_, name)| *name == path)
            .unwrap_or_else(|| panic!("host.js NUMBERS has no `{path}`"))
            .0
    };
    assert_eq!(constant("QUEUE_BYTES_SLOT"), slot_of("queue.maxBytes"));
    // readOptions reads the backoff as `[, , initial, max, multiplier] = numbers.subarray(A, B)`.
    let from = leading_number(after("numbers.subarray("), "subarray's start");
    let backoff = ["backoff.initialMs", "backoff.maxMs", "backoff.multiplier"];
    for (i, path) in backoff.into_iter().enumerate() {
        assert_eq!(
            from + 2 + i,
            slot_of(path),
            "readOptions reads `{path}` from slot {}",
            from + 2 + i
        );
    }
}

#[test]
fn the_flags_and_the_seed_land_in_their_slots() {
    let len = leading_number(after("new Float64Array("), "the settings array's length");
    let mut numbers = vec![f64::NAN; len];
    numbers[constant("HEARTBEAT_SLOT")] = 0.0;
    numbers[constant("CONTIGUOUS_SLOT")] = 1.0;
    // `numbers.set([high, low])`: the seed's halves go first.
    assert!(after("numbers.set(").contains("[Math.floor(seed / 2 ** 32), seed % 2 ** 32]"));
    (numbers[0], numbers[1]) = (3.0, 4.0);
    let (seed, config) = config_from(&numbers);
    assert_eq!((slot::SEED_HIGH, slot::SEED_LOW), (0, 1));
    assert_eq!(seed, 3 << 32 | 4, "the seed's halves");
    assert!(
        config.heartbeat.is_none(),
        "host.js HEARTBEAT_SLOT does not turn the heartbeat off"
    );
    assert!(
        config.contiguous_cursors,
        "host.js CONTIGUOUS_SLOT does not set contiguous cursors"
    );
    assert_eq!(len, slot::CONTIGUOUS + 1, "the settings array's length");
}

// ---- State fields and the numbers in them ----

fn every_state() -> Vec<State> {
    vec![
        State::Idle,
        State::Connecting { attempt: 1 },
        State::Open,
        State::Reconnecting {
            attempt: 2,
            retry_at: Some(Timestamp::ZERO),
            delay: Duration::from_millis(180),
        },
        State::Closing,
        State::Closed,
        State::Failed(Failure::Fatal(Disconnect::ConnectTimeout)),
    ]
}

fn every_disconnect() -> Vec<Disconnect> {
    vec![
        Disconnect::Closed {
            code: 4000,
            reason: "bye".into(),
        },
        Disconnect::Abnormal {
            detail: "reset".into(),
        },
        Disconnect::Protocol {
            code: 1002,
            detail: "bad frame".into(),
        },
        Disconnect::Tls {
            detail: "no".into(),
        },
        Disconnect::Rejected {
            status: 503,
            retry_after: None,
        },
        Disconnect::ConnectTimeout,
        Disconnect::HeartbeatTimeout,
    ]
}

#[test]
fn state_fields_are_read_in_the_order_they_are_written() {
    let names = between("const [stateCode, ", "] = fields;");
    let names: Vec<&str> = core::iter::once("stateCode")
        .chain(names.split(',').map(str::trim))
        .collect();
    assert_eq!(names.len(), field::LEN, "host.js state() reads {names:?}");
    for (at, name) in names.iter().enumerate() {
        let slot = match *name {
            "stateCode" => field::STATE,
            "attempt" => field::ATTEMPT,
            "delayMs" => field::DELAY_MS,
            "reasonCode" => field::REASON,
            "kind" => field::DISCONNECT,
            "code" => field::CODE,
            "failure" => field::FAILURE,
            "count" => field::FAILURE_COUNT,
            other => panic!("host.js state() reads a field `{other}` report.rs does not write"),
        };
        assert_eq!(
            at, slot,
            "host.js state() reads `{name}` from field {at}; report.rs writes it to {slot}"
        );
    }
}

#[test]
fn state_numbers_name_the_same_states() {
    let names = string_items(between("export const STATES = [", "];"));
    let states = every_state();
    assert_eq!(names.len(), states.len(), "host.js STATES: {names:?}");
    for state in &states {
        let code = usize::from(state_code(state));
        assert_eq!(
            names[code].as_deref(),
            Some(state.name()),
            "report.rs numbers `{}` {code}; host.js STATES[{code}] says otherwise",
            state.name()
        );
    }
}

#[test]
fn reason_numbers_word_the_same_reasons() {
    let texts = string_items(between("const REASONS = [", "];"));
    let reasons = [
        Reason::ConnectCalled,
        Reason::HandshakeComplete,
        Reason::Disconnected(Disconnect::ConnectTimeout),
        Reason::RetryDue,
        Reason::WentOffline,
        Reason::CameOnline,
        Reason::CloseCalled,
        Reason::CloseComplete,
        Reason::CloseTimedOut,
    ];
    assert_eq!(texts.len(), reasons.len(), "host.js REASONS: {texts:?}");
    for reason in &reasons {
        let code = state_fields(&State::Open, reason).0[field::REASON] as usize;
        // A disconnect is worded by disconnectText: REASONS holds null in its place.
        let expected = match reason {
            Reason::Disconnected(_) => None,
            _ => Some(reason.to_string()),
        };
        assert_eq!(
            texts[code], expected,
            "report.rs numbers the reason `{reason}` {code}"
        );
    }
}

#[test]
fn disconnect_kinds_word_the_same_disconnects() {
    let function = between("function disconnectText(", "default:");
    let cases = function.split("case ").skip(1).count();
    assert_eq!(cases, every_disconnect().len(), "disconnectText's cases");
    for disconnect in every_disconnect() {
        let (kind, code, detail) = describe(&disconnect);
        let case = format!("case {kind}: return ");
        let template = literals(function.split(&case).nth(1).unwrap_or_else(|| {
            panic!("host.js disconnectText has no `{case}` (report.rs's kind for `{disconnect}`)")
        }));
        let text = disconnect.to_string();
        assert!(
            holds_in_order(&text, &template),
            "report.rs numbers `{text}` {kind}; host.js words kind {kind} as {template:?}"
        );
        if code != 0 {
            assert!(text.contains(&code.to_string()), "`{text}` and code {code}");
        }
        assert!(text.contains(detail), "`{text}` and detail `{detail}`");
    }
}

#[test]
fn failure_numbers_word_the_same_failures() {
    let last = Disconnect::ConnectTimeout;
    let failures = [
        Failure::Fatal(last.clone()),
        Failure::TooManyFailures {
            attempts: 3,
            last: last.clone(),
        },
        Failure::RetryBudgetExhausted {
            elapsed: Duration::from_millis(1500),
            last: last.clone(),
        },
    ];
    let reason = Reason::CloseCalled;
    for failure in failures {
        let state = State::Failed(failure.clone());
        let (fields, _) = state_fields(&state, &reason);
        let kind = fields[field::FAILURE];
        // `failure === N ? `...`` for each kind but the last, which is the default.
        let template = match after("event.error = ")
            .split(&format!("failure === {kind} ? "))
            .nth(1)
        {
            Some(template) => template,
            None => after("`gave up after retrying for ${count} ms: ${last}` : "),
        };
        let rendered = literals(template)
            .join("\u{0}")
            .replacen(
                '\u{0}',
                &fields[field::FAILURE_COUNT].to_string(),
                usize::from(kind != 1.0),
            )
            .replacen('\u{0}', &last.to_string(), 1);
        assert_eq!(
            rendered,
            failure.to_string(),
            "report.rs numbers this failure {kind}"
        );
    }
}

// ---- Stats, signals, send outcomes ----

/// A counter of `stats` by the name host.js `STATS` gives it.
fn counter(stats: &Stats, name: &str) -> f64 {
    match name {
        "attempts" => stats.attempts as f64,
        "reconnects" => stats.reconnects as f64,
        "staleInputs" => stats.stale_inputs as f64,
        "replaysDropped" => stats.replays_dropped as f64,
        "messagesDelivered" => stats.messages_delivered as f64,
        "messagesSent" => stats.messages_sent as f64,
        "heartbeatTimeouts" => stats.heartbeat_timeouts as f64,
        "queued" => stats.queued as f64,
        "queuedBytes" => stats.queued_bytes as f64,
        "consecutiveFailures" => f64::from(stats.consecutive_failures),
        other => panic!("host.js STATS names `{other}`, which Stats has no counter for"),
    }
}

#[test]
fn stats_are_named_in_the_order_they_are_laid_out() {
    let names = string_items(between("const STATS = [", "];"));
    // Every counter a different number, so a swap shows.
    let stats = Stats {
        attempts: 1,
        reconnects: 2,
        stale_inputs: 3,
        replays_dropped: 4,
        messages_delivered: 5,
        messages_sent: 6,
        heartbeat_timeouts: 7,
        queued: 8,
        queued_bytes: 9,
        consecutive_failures: 10,
        time_in_state: Duration::ZERO,
    };
    let state = State::Closing;
    let values = stats_values(&stats, &state, Some(Cursor(5 << 32 | 6)));
    assert_eq!(names.len(), 10, "host.js STATS: {names:?}");
    for (at, name) in names.iter().enumerate() {
        let name = name.as_deref().expect("a name");
        assert_eq!(
            values[at],
            counter(&stats, name),
            "RawClient::stats()[{at}] is not `{name}`"
        );
    }
    let state_at = constant("STATE_SLOT");
    let cursor_at = constant("CURSOR_SLOT");
    assert_eq!(
        state_at,
        names.len(),
        "host.js STATE_SLOT follows the counters"
    );
    assert_eq!(
        values[state_at],
        f64::from(state_code(&state)),
        "STATE_SLOT"
    );
    assert_eq!(
        values[cursor_at..],
        [5.0, 6.0],
        "CURSOR_SLOT: the cursor's high, then low half"
    );
}

#[test]
fn signals_have_the_same_numbers() {
    let entries: Vec<(&str, usize)> = between("export const SIGNAL = {", "};")
        .split(',')
        .map(|entry| {
            let (name, number) = entry.split_once(':').expect("name: number");
            (name.trim(), leading_number(number, "a SIGNAL number"))
        })
        .collect();
    assert_eq!(entries.len(), 6, "host.js SIGNAL: {entries:?}");
    for (name, number) in entries {
        let rust = match name {
            "start" => signal::START,
            "reconnect" => signal::RECONNECT,
            "online" => signal::ONLINE,
            "offline" => signal::OFFLINE,
            "checkLiveness" => signal::CHECK_LIVENESS,
            "timeout" => signal::TIMEOUT,
            other => panic!("host.js SIGNAL has `{other}`, which RawClient::signal does not take"),
        };
        assert_eq!(
            number,
            usize::from(rust),
            "host.js SIGNAL.{name} is {number}; client.rs says {rust}"
        );
    }
}

#[test]
fn send_outcomes_are_worded_by_their_numbers() {
    for (outcome, words) in [
        (SendOutcome::QueueFull, "the queue is full"),
        (SendOutcome::TooLarge, "the message is over"),
    ] {
        let number = outcome as u8;
        let marker = format!("outcome === {number} ? `{words}");
        assert!(
            HOST_JS.contains(&marker),
            "host.js sendError does not word outcome {number} as `{words}`"
        );
    }
    assert_eq!(
        SendOutcome::Queued as u8,
        0,
        "resilient-ws.js treats 0 as queued"
    );
}

/// host.js checks `backoff.maxMs` against `backoff.initialMs` itself, to name the option,
/// and so needs the core's defaults for whichever of the two the page left out.
#[test]
fn backoff_defaults_host_js_checks_with_are_the_cores() {
    let defaults = resilient_ws_core::BackoffConfig::default();
    let initial = leading_number(after("(initial || "), "the default initialMs");
    let max: String = after("Number.isNaN(max) ? ")
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '_')
        .filter(char::is_ascii_digit)
        .collect();
    assert_eq!(
        Duration::from_millis(initial as u64),
        defaults.initial,
        "host.js's default backoff.initialMs"
    );
    assert_eq!(
        max.parse::<u64>().ok().map(Duration::from_millis),
        Some(defaults.max),
        "host.js's default backoff.maxMs"
    );
}
