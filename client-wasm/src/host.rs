//! The JavaScript side of the driver: the object that owns the browser's `WebSocket` and
//! timer (`BrowserHost` in `js/host.js`). The session's commands and events leave
//! WebAssembly as calls on it.

use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    /// What the session needs from the page: sockets, a timer, and somewhere to send
    /// events. Implemented by `BrowserHost` in `js/host.js`.
    pub type Host;

    /// Opens socket `conn` to `url` (the resume parameter already applied); asks the
    /// page's `urlProvider` first when there is one.
    #[wasm_bindgen(method)]
    pub(crate) fn open(this: &Host, conn: f64, url: &str);

    /// Sends a text message on socket `conn`.
    #[wasm_bindgen(method, js_name = sendText)]
    pub(crate) fn send_text(this: &Host, conn: f64, text: &str);

    /// Sends a binary message on socket `conn`.
    #[wasm_bindgen(method, js_name = sendBytes)]
    pub(crate) fn send_bytes(this: &Host, conn: f64, bytes: &[u8]);

    /// Starts the close handshake on socket `conn`.
    #[wasm_bindgen(method)]
    pub(crate) fn close(this: &Host, conn: f64, code: u16, reason: &str);

    /// Drops socket `conn` at once; nothing it reports afterwards reaches the session.
    #[wasm_bindgen(method)]
    pub(crate) fn abort(this: &Host, conn: f64);

    /// The `bufferedAmount` of socket `conn`: bytes handed to it and not yet sent (NaN
    /// when there is no such socket).
    #[wasm_bindgen(method)]
    pub(crate) fn buffered(this: &Host, conn: f64) -> f64;

    /// Calls `RawClient::signal(5)` (the timer fired) after `delay_ms` milliseconds.
    #[wasm_bindgen(method)]
    pub(crate) fn arm(this: &Host, delay_ms: f64);

    /// The socket's last message is delivered, with its cursor's high and low 32 bits
    /// (NaN for none; see `report::cursor_halves`).
    #[wasm_bindgen(method)]
    pub(crate) fn message(this: &Host, high: f64, low: f64);

    /// The state changed. `fields` and `detail` are laid out as `report::StateFields`
    /// says; the host turns them into the event and its reason text.
    #[wasm_bindgen(method)]
    pub(crate) fn state(this: &Host, fields: &[f64], detail: &str);

    /// Cursors skipped from `last` to `received`, each as its high and low 32 bits.
    #[wasm_bindgen(method)]
    pub(crate) fn gap(this: &Host, last_high: f64, last_low: f64, high: f64, low: f64);

    /// The server's stream does not continue the one resumed from: the epochs (`previous`
    /// empty when unknown), the server's reason, and the last cursor delivered before, as
    /// its high and low 32 bits.
    #[wasm_bindgen(method)]
    pub(crate) fn discontinuity(
        this: &Host,
        previous: &str,
        epoch: &str,
        reason: &str,
        high: f64,
        low: f64,
    );

    /// One text message the session gives back unsent; `unsentDone` ends the list.
    #[wasm_bindgen(method, js_name = unsentText)]
    pub(crate) fn unsent_text(this: &Host, text: &str);

    /// One binary message the session gives back unsent.
    #[wasm_bindgen(method, js_name = unsentBytes)]
    pub(crate) fn unsent_bytes(this: &Host, bytes: &[u8]);

    /// The end of a list of unsent messages.
    #[wasm_bindgen(method, js_name = unsentDone)]
    pub(crate) fn unsent_done(this: &Host);

    /// The page's monotonic clock in milliseconds, plus the time the machine slept (which
    /// the browser's monotonic clock leaves out).
    #[wasm_bindgen(method)]
    pub(crate) fn now(this: &Host) -> f64;
}
