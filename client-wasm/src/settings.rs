//! The session's settings, as `js/host.js` hands them over: numbers in fixed slots (NaN
//! where the page left the default) and the few strings beside them. The JavaScript side
//! checks every field and names a bad one (wording errors there keeps the text out of the
//! module); the session checks the result again when it starts.

use core::time::Duration;

use alloc::string::String;
use resilient_ws_core::{Config, HeartbeatConfig, Payload, Probe, ResumeMode, json_cursor};

/// Slot numbers of the settings array; `js/host.js` writes the same layout (`NUMBERS` and
/// the `*_SLOT` constants).
pub(crate) mod slot {
    /// High 32 bits of the jitter seed.
    pub(crate) const SEED_HIGH: usize = 0;
    /// Low 32 bits of the jitter seed.
    pub(crate) const SEED_LOW: usize = 1;
    /// `maxFailures`; +Infinity retries forever.
    pub(crate) const MAX_FAILURES: usize = 2;
    /// `connectTimeoutMs`.
    pub(crate) const CONNECT_TIMEOUT: usize = 3;
    /// `stabilityWindowMs`.
    pub(crate) const STABILITY_WINDOW: usize = 4;
    /// `closeTimeoutMs`.
    pub(crate) const CLOSE_TIMEOUT: usize = 5;
    /// `backoff.initialMs`.
    pub(crate) const BACKOFF_INITIAL: usize = 6;
    /// `backoff.maxMs`.
    pub(crate) const BACKOFF_MAX: usize = 7;
    /// `backoff.multiplier`.
    pub(crate) const BACKOFF_MULTIPLIER: usize = 8;
    /// 0 when the page turned the heartbeat off (`heartbeat: false`); on otherwise.
    pub(crate) const HEARTBEAT: usize = 9;
    /// `heartbeat.intervalMs`.
    pub(crate) const HEARTBEAT_INTERVAL: usize = 10;
    /// `heartbeat.timeoutMs`.
    pub(crate) const HEARTBEAT_TIMEOUT: usize = 11;
    /// `queue.maxMessages`.
    pub(crate) const QUEUE_MESSAGES: usize = 12;
    /// `queue.maxBytes`.
    pub(crate) const QUEUE_BYTES: usize = 13;
    /// 1 for `contiguousCursors: true`.
    pub(crate) const CONTIGUOUS: usize = 14;
}

/// The strings among the settings.
pub(crate) struct Texts {
    pub(crate) url: String,
    pub(crate) cursor_field: Option<String>,
    pub(crate) resume_param: Option<String>,
    pub(crate) heartbeat_message: Option<String>,
}

/// The jitter seed and the session's settings.
pub(crate) fn read(numbers: &[f64], texts: Texts) -> (u64, Config) {
    let value = |slot: usize| numbers.get(slot).copied().filter(|value| !value.is_nan());
    let millis = |slot: usize| value(slot).map(duration_from_millis);
    let count = |slot: usize| value(slot).map(saturating_usize);

    let seed = (value(slot::SEED_HIGH).map_or(0, saturating_u32) as u64) << 32
        | value(slot::SEED_LOW).map_or(0, saturating_u32) as u64;
    let mut config = Config::new(texts.url);
    // A message counts as written once it leaves the socket's `bufferedAmount` (the
    // driver's `Writes`): until then it counts against the queue's bounds, and when the
    // socket breaks it goes out again or comes back unsent.
    config.confirm_writes = true;
    if let Some(field) = texts.cursor_field {
        config.cursor = Some(json_cursor(&field));
    }
    if let Some(param) = texts.resume_param {
        config.resume = ResumeMode::QueryParam(param);
    }
    if let Some(max) = value(slot::MAX_FAILURES) {
        config.max_failures = max.is_finite().then(|| saturating_u32(max));
    }
    if let Some(ms) = millis(slot::CONNECT_TIMEOUT) {
        config.connect_timeout = ms;
    }
    if let Some(ms) = millis(slot::STABILITY_WINDOW) {
        config.stability_window = ms;
    }
    if let Some(ms) = millis(slot::CLOSE_TIMEOUT) {
        config.close_timeout = ms;
    }
    if let Some(ms) = millis(slot::BACKOFF_INITIAL) {
        config.backoff.initial = ms;
    }
    if let Some(ms) = millis(slot::BACKOFF_MAX) {
        config.backoff.max = ms;
    }
    if let Some(multiplier) = value(slot::BACKOFF_MULTIPLIER) {
        config.backoff.multiplier = multiplier;
    }
    // On unless turned off, as natively: without it a silent peer is never noticed. A
    // browser cannot send Ping frames, so without a message it only watches for silence.
    config.heartbeat = (value(slot::HEARTBEAT) != Some(0.0)).then(|| {
        let defaults = HeartbeatConfig::default();
        HeartbeatConfig {
            interval: millis(slot::HEARTBEAT_INTERVAL).unwrap_or(defaults.interval),
            timeout: millis(slot::HEARTBEAT_TIMEOUT).unwrap_or(defaults.timeout),
            probe: texts
                .heartbeat_message
                .map_or(Probe::IdleOnly, |text| Probe::Message(Payload::from(text))),
        }
    });
    config.contiguous_cursors = value(slot::CONTIGUOUS) == Some(1.0);
    if let Some(max) = count(slot::QUEUE_MESSAGES) {
        config.queue.max_messages = max;
    }
    if let Some(max) = count(slot::QUEUE_BYTES) {
        config.queue.max_bytes = max;
    }
    (seed, config)
}

/// Milliseconds as the page gives them (checked non-negative there); saturating.
pub(crate) fn duration_from_millis(millis: f64) -> Duration {
    // `as` saturates (and maps NaN to 0): no panic path, unlike `from_secs_f64`.
    Duration::from_micros((millis * 1000.0) as u64)
}

fn saturating_u32(value: f64) -> u32 {
    value as u32
}

fn saturating_usize(value: f64) -> usize {
    value as usize
}
