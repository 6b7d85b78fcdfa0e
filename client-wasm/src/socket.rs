//! One browser socket: gloo-net's WebSocket for the events, the raw handle kept beside it
//! for the close handshake.
//!
//! The driver owns the socket and drops it on `Abort`, which closes it at once; the
//! reader task then finds it gone and ends. gloo-net fires a synthetic close event when a
//! socket is dropped; it reaches nobody, and a late report would carry a stale id anyway.

use std::cell::RefCell;
use std::rc::{Rc, Weak};
use std::task::Poll;

use futures_util::{SinkExt, StreamExt};
use gloo_net::websocket::futures::WebSocket;
use gloo_net::websocket::{Message, WebSocketError};
use js_sys::Array;
use resilient_ws_core::{ConnId, Disconnect, Payload, SocketEvent};
use wasm_bindgen::JsValue;

use crate::driver::Driver;

/// `readyState` of an open WebSocket.
const OPEN: u16 = 1;

/// A socket the session asked for.
pub(crate) struct Socket {
    pub(crate) conn: ConnId,
    raw: web_sys::WebSocket,
    /// Shared with the reader task; emptied (and so closed) on abort.
    stream: Rc<RefCell<Option<WebSocket>>>,
}

impl Socket {
    /// Opens a socket and starts reading it; reports go to `driver`.
    pub(crate) fn open(
        conn: ConnId,
        url: &str,
        protocols: &[String],
        driver: Weak<RefCell<Driver>>,
    ) -> Result<Self, JsValue> {
        let raw = if protocols.is_empty() {
            web_sys::WebSocket::new(url)?
        } else {
            let list: Array = protocols.iter().map(|p| JsValue::from_str(p)).collect();
            web_sys::WebSocket::new_with_str_sequence(url, &list)?
        };
        let stream = WebSocket::try_from(raw.clone())
            .map_err(|error| JsValue::from_str(&error.to_string()))?;
        let stream = Rc::new(RefCell::new(Some(stream)));
        wasm_bindgen_futures::spawn_local(read(conn, Rc::clone(&stream), raw.clone(), driver));
        Ok(Self { conn, raw, stream })
    }

    /// Sends a message; a socket that cannot take it reports its own end.
    pub(crate) fn send(&self, payload: Payload) {
        let _ = match payload {
            Payload::Text(text) => self.raw.send_with_str(&text),
            Payload::Binary(bytes) => self.raw.send_with_u8_array(&bytes),
        };
    }

    /// Starts the close handshake; the close event is reported when it completes.
    pub(crate) fn close(&self, code: u16, reason: &str) {
        let _ = self.raw.close_with_code_and_reason(code, reason);
    }
}

impl Drop for Socket {
    /// Releasing the socket closes it now: never two live sockets.
    fn drop(&mut self) {
        self.stream.borrow_mut().take();
    }
}

/// Waits for the socket to open, then reports each message until it ends.
async fn read(
    conn: ConnId,
    stream: Rc<RefCell<Option<WebSocket>>>,
    raw: web_sys::WebSocket,
    driver: Weak<RefCell<Driver>>,
) {
    let report = |event: SocketEvent| {
        if let Some(driver) = driver.upgrade() {
            Driver::handle_socket(&driver, conn, event);
        }
    };
    // gloo-net's sink is ready once the socket left CONNECTING: opened, or failed.
    let settled = futures_util::future::poll_fn(|cx| match stream.borrow_mut().as_mut() {
        Some(socket) => socket.poll_ready_unpin(cx).map(|_| true),
        None => Poll::Ready(false),
    })
    .await;
    if !settled {
        return; // aborted while connecting
    }
    if raw.ready_state() == OPEN {
        report(SocketEvent::Opened);
    }
    loop {
        let item = futures_util::future::poll_fn(|cx| match stream.borrow_mut().as_mut() {
            Some(socket) => socket.poll_next_unpin(cx),
            None => Poll::Ready(None),
        })
        .await;
        let event = match item {
            Some(Ok(Message::Text(text))) => SocketEvent::Message(Payload::Text(text)),
            Some(Ok(Message::Bytes(bytes))) => SocketEvent::Message(Payload::Binary(bytes)),
            // An error event always precedes the close event, which carries the code.
            Some(Err(WebSocketError::ConnectionError | WebSocketError::MessageSendError(_))) => {
                continue;
            }
            Some(Err(WebSocketError::ConnectionClose(close))) => {
                // 1006 is the browser's word for "no close frame came": the connection broke.
                let ended = if close.code == 1006 {
                    Disconnect::Abnormal {
                        detail: "the connection closed without a close frame".into(),
                    }
                } else {
                    Disconnect::Closed {
                        code: close.code,
                        reason: close.reason,
                    }
                };
                report(SocketEvent::Ended(ended));
                return;
            }
            Some(Err(other)) => {
                report(SocketEvent::Ended(Disconnect::Abnormal {
                    detail: other.to_string(),
                }));
                return;
            }
            None => return, // released by the driver
        };
        report(event);
    }
}
