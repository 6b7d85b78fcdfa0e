//! The class the host constructs and drives: `RawClient`, behind `ResilientWebSocket`.
//! Few exports, plain numbers and strings: every export costs glue on both sides of the
//! boundary, and the package has a size budget.

use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;

use resilient_ws_core::{
    CloseError, Disconnect, Payload, SendError, Session, SocketEvent, State, Welcome,
};
use wasm_bindgen::prelude::*;

use crate::driver::Shared;
use crate::host::Host;
use crate::report::stats_values;
use crate::settings::{self, Texts};

/// A session driven in the browser. `js/host.js` feeds it the socket's events and carries
/// out what it asks; `ResilientWebSocket` wraps both.
#[wasm_bindgen]
pub struct RawClient {
    shared: Rc<Shared>,
}

/// The inputs that carry nothing: `RawClient::signal`'s argument (`SIGNAL` in host.js).
pub(crate) mod signal {
    /// The first attempt, unless `close` came first.
    pub(crate) const START: u8 = 0;
    /// Start again after a close or a failure.
    pub(crate) const RECONNECT: u8 = 1;
    /// The browser is online: reconnect now, or check the open connection.
    pub(crate) const ONLINE: u8 = 2;
    /// The browser is offline: end the socket now.
    pub(crate) const OFFLINE: u8 = 3;
    /// A hidden tab became visible: check the connection now.
    pub(crate) const CHECK_LIVENESS: u8 = 4;
    /// The host's timer fired.
    pub(crate) const TIMEOUT: u8 = 5;
}

/// What `send*` returns: 0 queued; otherwise why not. The host words the error, with the
/// queue's figures from `stats`.
#[repr(u8)]
pub(crate) enum SendOutcome {
    Queued = 0,
    QueueFull = 1,
    TooLarge = 2,
    NotRunning = 3,
}

#[wasm_bindgen]
impl RawClient {
    /// A session for `url`. `numbers` holds the settings in the slots of `settings::slot`
    /// (NaN for a default); the strings are the cursor field, the resume parameter and the
    /// heartbeat message, when set. Nothing happens until `signal(0)`.
    #[wasm_bindgen(constructor)]
    pub fn new(
        url: String,
        numbers: &[f64],
        cursor_field: Option<String>,
        resume_param: Option<String>,
        heartbeat_message: Option<String>,
        host: Host,
    ) -> Result<RawClient, JsError> {
        let texts = Texts {
            url,
            cursor_field,
            resume_param,
            heartbeat_message,
        };
        let (seed, config) = settings::read(numbers, texts);
        // host.js names the bad field before it gets here.
        let session = Session::new(config, seed)
            .map_err(|_| JsError::new("resilient-ws: invalid options"))?;
        Ok(Self {
            shared: Rc::new(Shared::new(session, host)),
        })
    }

    /// Another handle to the same client, for a host while Rust keeps this one (the
    /// browser tests). Not in the package: there the page hands the host its own handle.
    #[cfg(feature = "std")]
    pub fn handle(&self) -> RawClient {
        Self {
            shared: Rc::clone(&self.shared),
        }
    }

    /// An input that carries nothing: 0 start, 1 reconnect, 2 online, 3 offline, 4 check
    /// liveness, 5 the timer fired.
    pub fn signal(&self, input: u8) {
        self.shared.step(|driver, now| {
            let session = &mut driver.session;
            match input {
                signal::START if *session.state() == State::Idle => session.connect(now),
                signal::RECONNECT => session.connect(now),
                signal::ONLINE | signal::CHECK_LIVENESS => {
                    if input == signal::ONLINE {
                        session.set_online(true, now);
                    }
                    // A hidden tab's timers are throttled and a sleeping machine's stop: a
                    // deadline that passed meanwhile (a silent connection) fires now, and a
                    // configured ping goes out now.
                    session.handle_timeout(now);
                    session.check_liveness(now);
                }
                signal::OFFLINE => session.set_online(false, now),
                signal::TIMEOUT => {
                    driver.disarm();
                    driver.session.handle_timeout(now);
                }
                _ => {}
            }
        });
    }

    /// Queues a text message; 0, or why it was refused (see `SendOutcome`).
    #[wasm_bindgen(js_name = sendText)]
    pub fn send_text(&self, text: String) -> u8 {
        self.send(Payload::from(text))
    }

    /// Queues a binary message; answers like `sendText`.
    #[wasm_bindgen(js_name = sendBytes)]
    pub fn send_bytes(&self, bytes: Vec<u8>) -> u8 {
        self.send(Payload::from(bytes))
    }

    /// Flushes the queue, then closes: 0, or 1 for a code other than 1000 or 3000-4999,
    /// 2 for a reason over 123 bytes.
    pub fn close(&self, code: u16, reason: &str) -> u8 {
        let closed = self.shared.step(|driver, now| {
            let session = &mut driver.session;
            // Closed before the first attempt began, with messages queued: make that
            // attempt now so the close can flush them, as it promises.
            if *session.state() == State::Idle && session.stats().queued > 0 {
                session.connect(now);
            }
            session.close(code, reason, now)
        });
        match closed {
            Ok(()) => 0,
            Err(CloseError::Code(_)) => 1,
            Err(CloseError::ReasonTooLong(_)) => 2,
        }
    }

    /// Socket `conn` opened.
    pub fn opened(&self, conn: f64) {
        self.input(conn, SocketEvent::Opened);
    }

    /// Socket `conn` delivered a text message at `at` (the event's `timeStamp`).
    pub fn text(&self, conn: f64, text: String, at: f64) {
        self.input_at(conn, SocketEvent::Message(Payload::from(text)), at);
    }

    /// Socket `conn`'s first message at `at` was the server's welcome (see
    /// `resilient_ws_core::Welcome`), read by the host.
    pub fn welcome(&self, conn: f64, epoch: String, resumed: bool, reason: String, at: f64) {
        let welcome = Welcome {
            epoch,
            resumed,
            reason,
        };
        self.input_at(conn, SocketEvent::Welcome(welcome), at);
    }

    /// Socket `conn` delivered a binary message at `at` (the event's `timeStamp`).
    pub fn binary(&self, conn: f64, bytes: Vec<u8>, at: f64) {
        self.input_at(conn, SocketEvent::Message(Payload::from(bytes)), at);
    }

    /// Socket `conn` ended with `code`, and `buffered` bytes never sent (its final
    /// `bufferedAmount`; NaN for none). 1006 means no close frame came: the connection
    /// broke, or never opened (`reason` then says why, when the host knows). 0 means the
    /// browser failed the open connection for a protocol violation, which it does not
    /// name (invalid UTF-8 natively ends in 1007, a malformed frame in 1002).
    pub fn ended(&self, conn: f64, code: u16, reason: String, buffered: f64) {
        let disconnect = match code {
            // Fatal, as natively; 1002 because the browser hides which violation it was.
            0 => Disconnect::Protocol {
                code: 1002,
                detail: reason,
            },
            1006 if reason.is_empty() => Disconnect::Abnormal {
                detail: "the connection closed without a close frame".into(),
            },
            1006 => Disconnect::Abnormal { detail: reason },
            _ => Disconnect::Closed { code, reason },
        };
        self.shared.step(|driver, now| {
            if let Some(conn) = driver.socket(conn) {
                // What never left goes back before the end (no command is carried out in
                // between): a session that stops at this end (the failure cap, a fatal
                // code, a finished close) then hands it back in its `Unsent`, ahead of
                // the state that stops it. Returned after, it came after that state, when
                // the host has already let go of the page's listeners: lost.
                driver.socket_gone(conn, buffered);
                driver
                    .session
                    .handle_socket(conn, SocketEvent::Ended(disconnect), now);
            }
        });
    }

    /// `url` (from the page's `urlProvider`) with the resume parameter of socket `conn`'s
    /// attempt; undefined when the session no longer waits for that socket.
    #[wasm_bindgen(js_name = resumeUrl)]
    pub fn resume_url(&self, conn: f64, url: &str) -> Option<String> {
        let driver = self.shared.driver.borrow();
        let session = &driver.session;
        // The session applies its own resume parameter: no copy of that rule here.
        let current = session
            .current_conn()
            .filter(|id| id.get() as f64 == conn)?;
        session.resume_url(current, url)
    }

    /// The session's counters in the order host.js names them (`STATS`), then the state
    /// (`report::field::STATE`'s numbers) and the last delivered cursor's high and low 32
    /// bits (NaN for none).
    #[wasm_bindgen]
    pub fn stats(&self) -> Vec<f64> {
        let mut driver = self.shared.driver.borrow_mut();
        // Current whenever read: what left the socket's buffer since counts as sent.
        driver.confirm_writes(&self.shared.host);
        let session = &driver.session;
        stats_values(&session.stats(), session.state(), session.last_cursor())
    }

    fn send(&self, payload: Payload) -> u8 {
        let sent = self.shared.step(|driver, now| {
            // What left the socket's buffer since last asked no longer counts.
            driver.confirm_writes(&self.shared.host);
            driver.session.send(payload, now)
        });
        (match sent {
            Ok(_) => SendOutcome::Queued,
            Err(SendError::QueueFull { .. }) => SendOutcome::QueueFull,
            Err(SendError::TooLarge { .. }) => SendOutcome::TooLarge,
            Err(SendError::NotRunning { .. }) => SendOutcome::NotRunning,
        }) as u8
    }

    fn input(&self, conn: f64, event: SocketEvent) {
        self.input_at(conn, event, self.shared.host.now());
    }

    fn input_at(&self, conn: f64, event: SocketEvent, at: f64) {
        self.shared.step_at(at, |driver, now| {
            if let Some(conn) = driver.socket(conn) {
                driver.session.handle_socket(conn, event, now);
            }
        });
    }
}
