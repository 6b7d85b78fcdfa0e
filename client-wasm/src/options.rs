//! The JavaScript options object, read field by field into the session's settings.

use std::time::Duration;

use js_sys::{Array, Function, Reflect};
use resilient_ws_core::{Config, HeartbeatConfig, Payload, Probe, ResumeMode, json_cursor};
use wasm_bindgen::{JsCast, JsError, JsValue};

/// What the browser driver needs beyond the session's settings.
pub(crate) struct BrowserSettings {
    pub(crate) protocols: Vec<String>,
    /// `async () => url`, asked before every attempt (a fresh token each time).
    pub(crate) url_provider: Option<Function>,
    pub(crate) seed: Option<u64>,
}

/// Reads `options` (an object, or undefined) into settings for `url`. A bad field is an
/// error that names it.
pub(crate) fn read(url: &str, options: &JsValue) -> Result<(Config, BrowserSettings), JsError> {
    let mut config = Config::new(url);
    // A browser cannot send Ping frames and servers differ in what they answer, so the
    // heartbeat is off unless asked for.
    config.heartbeat = None;
    let mut settings = BrowserSettings {
        protocols: Vec::new(),
        url_provider: None,
        seed: None,
    };
    if options.is_undefined() || options.is_null() {
        return Ok((config, settings));
    }
    if let Some(field) = string(options, "cursorField")? {
        config.cursor = Some(json_cursor(&field));
    }
    if let Some(param) = string(options, "resumeParam")? {
        config.resume = ResumeMode::QueryParam(param);
    }
    let max_failures = get(options, "maxFailures")?;
    if max_failures.is_null() {
        config.max_failures = None;
    } else if let Some(max) = number(options, "maxFailures")? {
        config.max_failures = Some(whole(max, "maxFailures")?);
    }
    if let Some(ms) = millis(options, "connectTimeoutMs")? {
        config.connect_timeout = ms;
    }
    if let Some(ms) = millis(options, "stabilityWindowMs")? {
        config.stability_window = ms;
    }
    if let Some(ms) = millis(options, "closeTimeoutMs")? {
        config.close_timeout = ms;
    }
    let backoff = get(options, "backoff")?;
    if !backoff.is_undefined() {
        if let Some(ms) = millis(&backoff, "initialMs")? {
            config.backoff.initial = ms;
        }
        if let Some(ms) = millis(&backoff, "maxMs")? {
            config.backoff.max = ms;
        }
        if let Some(multiplier) = number(&backoff, "multiplier")? {
            config.backoff.multiplier = multiplier;
        }
    }
    let heartbeat = get(options, "heartbeat")?;
    if !heartbeat.is_undefined() && !heartbeat.is_null() {
        let defaults = HeartbeatConfig::default();
        config.heartbeat = Some(HeartbeatConfig {
            interval: millis(&heartbeat, "intervalMs")?.unwrap_or(defaults.interval),
            timeout: millis(&heartbeat, "timeoutMs")?.unwrap_or(defaults.timeout),
            probe: string(&heartbeat, "message")?
                .map_or(Probe::IdleOnly, |text| Probe::Message(Payload::Text(text))),
        });
    }
    let queue = get(options, "queue")?;
    if !queue.is_undefined() {
        if let Some(max) = number(&queue, "maxMessages")? {
            config.queue.max_messages =
                usize::try_from(whole(max, "queue.maxMessages")?).unwrap_or(usize::MAX);
        }
        if let Some(max) = number(&queue, "maxBytes")? {
            config.queue.max_bytes =
                usize::try_from(whole(max, "queue.maxBytes")?).unwrap_or(usize::MAX);
        }
    }
    let protocols = get(options, "protocols")?;
    if let Some(list) = protocols.dyn_ref::<Array>() {
        for protocol in list.iter() {
            let protocol = protocol
                .as_string()
                .ok_or_else(|| JsError::new("options.protocols must hold strings"))?;
            settings.protocols.push(protocol);
        }
    } else if !protocols.is_undefined() {
        return Err(JsError::new(
            "options.protocols must be an array of strings",
        ));
    }
    let provider = get(options, "urlProvider")?;
    if let Some(provider) = provider.dyn_ref::<Function>() {
        settings.url_provider = Some(provider.clone());
    } else if !provider.is_undefined() {
        return Err(JsError::new(
            "options.urlProvider must be a function returning a URL",
        ));
    }
    if let Some(seed) = number(options, "seed")? {
        settings.seed = Some(u64::from(whole(seed, "seed")?));
    }
    config
        .validate()
        .map_err(|error| JsError::new(&error.to_string()))?;
    Ok((config, settings))
}

fn get(object: &JsValue, key: &str) -> Result<JsValue, JsError> {
    Reflect::get(object, &key.into())
        .map_err(|_| JsError::new(&format!("options.{key} cannot be read")))
}

fn string(object: &JsValue, key: &str) -> Result<Option<String>, JsError> {
    let value = get(object, key)?;
    if value.is_undefined() {
        return Ok(None);
    }
    value
        .as_string()
        .map(Some)
        .ok_or_else(|| JsError::new(&format!("{key} must be a string")))
}

fn number(object: &JsValue, key: &str) -> Result<Option<f64>, JsError> {
    let value = get(object, key)?;
    if value.is_undefined() {
        return Ok(None);
    }
    match value.as_f64() {
        Some(n) if n.is_finite() && n >= 0.0 => Ok(Some(n)),
        _ => Err(JsError::new(&format!(
            "{key} must be a non-negative number"
        ))),
    }
}

fn millis(object: &JsValue, key: &str) -> Result<Option<Duration>, JsError> {
    Ok(number(object, key)?.map(|ms| Duration::from_secs_f64(ms / 1000.0)))
}

fn whole(value: f64, key: &str) -> Result<u32, JsError> {
    if value.fract() != 0.0 || value > f64::from(u32::MAX) {
        return Err(JsError::new(&format!("{key} must be a whole number")));
    }
    // In range and integral, checked above.
    Ok(value as u32)
}
