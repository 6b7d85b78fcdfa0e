//! The class JavaScript constructs: the low-level handle behind `ResilientWebSocket`.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Object, Promise, Reflect};
use resilient_ws_core::{Payload, SendError, Session, State};
use wasm_bindgen::prelude::*;

use crate::clock::{Clock, random_seed};
use crate::driver::Driver;
use crate::options;

/// A session driven in the browser. Wrapped by `ResilientWebSocket` (resilient-ws.js),
/// which turns its `emit(type, a, b)` calls into DOM events.
#[wasm_bindgen]
pub struct RawClient {
    driver: Rc<RefCell<Driver>>,
}

#[wasm_bindgen]
impl RawClient {
    /// Starts a session for `url` with `options` (see the TypeScript definitions); the
    /// first attempt begins on the next microtask, after listeners are attached.
    #[wasm_bindgen(constructor)]
    pub fn new(url: &str, options: &JsValue, emit: Function) -> Result<RawClient, JsError> {
        let (config, settings) = options::read(url, options)?;
        let seed = match settings.seed {
            Some(seed) => seed,
            None => {
                random_seed().map_err(|_| JsError::new("crypto.getRandomValues is unavailable"))?
            }
        };
        let clock = Clock::new().map_err(|_| JsError::new("performance.now is unavailable"))?;
        let session =
            Session::new(config, seed).map_err(|error| JsError::new(&error.to_string()))?;
        let driver = Driver::new(session, clock, settings, emit);
        let start = Rc::clone(&driver);
        wasm_bindgen_futures::spawn_local(async move {
            // A close() before this microtask ran wins: the page asked for no connection.
            Driver::step(&start, |session, now| {
                if *session.state() == State::Idle {
                    session.connect(now);
                }
            });
        });
        Ok(Self { driver })
    }

    /// Queues a text message; throws an Error naming the bound when the queue is full.
    #[wasm_bindgen(js_name = sendText)]
    pub fn send_text(&self, text: String) -> Result<(), JsError> {
        self.send(Payload::Text(text))
    }

    /// Queues a binary message; throws like `sendText`.
    #[wasm_bindgen(js_name = sendBytes)]
    pub fn send_bytes(&self, bytes: Vec<u8>) -> Result<(), JsError> {
        self.send(Payload::Binary(bytes))
    }

    /// Flushes the queue and closes; resolves once the session has stopped.
    pub fn close(&self, code: u16, reason: &str) -> Result<Promise, JsError> {
        Driver::step(&self.driver, |session, now| {
            // Closed before the first attempt began, with messages queued: make that attempt
            // now so the close can flush them, as it promises.
            if *session.state() == State::Idle && session.stats().queued > 0 {
                session.connect(now);
            }
            session.close(code, reason, now)
        })
        .map_err(|error| JsError::new(&error.to_string()))?;
        let driver = Rc::clone(&self.driver);
        Ok(Promise::new(&mut |resolve, _reject| {
            driver.borrow_mut().on_stopped(resolve)
        }))
    }

    /// Starts again after a close or a failure.
    pub fn reconnect(&self) {
        Driver::step(&self.driver, |session, now| session.connect(now));
    }

    /// The browser went offline (end the socket now) or online (reconnect now).
    #[wasm_bindgen(js_name = setOnline)]
    pub fn set_online(&self, online: bool) {
        Driver::step(&self.driver, |session, now| session.set_online(online, now));
    }

    /// Probes the connection now (a hidden tab became visible).
    #[wasm_bindgen(js_name = checkLiveness)]
    pub fn check_liveness(&self) {
        Driver::step(&self.driver, |session, now| session.check_liveness(now));
    }

    /// `connecting`, `open`, `reconnecting`, `closing`, `closed`, `failed` (or `idle`
    /// before the first attempt).
    #[wasm_bindgen(getter)]
    pub fn state(&self) -> String {
        self.driver.borrow().state().name().to_owned()
    }

    /// WebSocket's readyState: 0 connecting (also while reconnecting), 1 open, 2 closing,
    /// 3 closed or failed.
    #[wasm_bindgen(getter, js_name = readyState)]
    pub fn ready_state(&self) -> u8 {
        match self.driver.borrow().state() {
            State::Idle | State::Connecting { .. } | State::Reconnecting { .. } => 0,
            State::Open => 1,
            State::Closing => 2,
            State::Closed | State::Failed(_) => 3,
        }
    }

    /// The cursor of the last delivered message, or null.
    #[wasm_bindgen(getter, js_name = lastCursor)]
    pub fn last_cursor(&self) -> Option<f64> {
        self.driver
            .borrow()
            .session
            .last_cursor()
            .map(|cursor| cursor.0 as f64)
    }

    /// The session's counters.
    #[wasm_bindgen(getter)]
    pub fn stats(&self) -> JsValue {
        let stats = self.driver.borrow().session.stats();
        let object = Object::new();
        for (key, value) in [
            ("attempts", stats.attempts as f64),
            ("reconnects", stats.reconnects as f64),
            ("staleInputs", stats.stale_inputs as f64),
            ("replaysDropped", stats.replays_dropped as f64),
            ("messagesDelivered", stats.messages_delivered as f64),
            ("messagesSent", stats.messages_sent as f64),
            ("heartbeatTimeouts", stats.heartbeat_timeouts as f64),
            ("queued", stats.queued as f64),
            ("queuedBytes", stats.queued_bytes as f64),
            ("consecutiveFailures", f64::from(stats.consecutive_failures)),
        ] {
            let _ = Reflect::set(&object, &key.into(), &value.into());
        }
        object.into()
    }

    fn send(&self, payload: Payload) -> Result<(), JsError> {
        Driver::step(&self.driver, |session, now| session.send(payload, now))
            .map(|_| ())
            .map_err(|error: SendError| JsError::new(&error.to_string()))
    }
}
