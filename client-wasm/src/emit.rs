//! Session events, handed to JavaScript as `emit(type, a, b)` calls; the wrapper in
//! `resilient-ws.js` turns them into DOM events.

use js_sys::{Function, Object, Reflect, Uint8Array};
use resilient_ws_core::{Event, Payload, State};
use wasm_bindgen::JsValue;

/// Calls the wrapper's `emit` function.
#[derive(Clone)]
pub(crate) struct Emitter {
    emit: Function,
    /// Interned once: every message would otherwise build the same JS string again.
    message: JsValue,
}

impl Emitter {
    pub(crate) fn new(emit: Function) -> Self {
        Self {
            emit,
            message: JsValue::from_str("message"),
        }
    }

    pub(crate) fn emit(&self, event: Event) {
        match event {
            Event::Message { payload, cursor } => {
                let data = payload_to_js(payload);
                let cursor = cursor.map_or(JsValue::NULL, |c| JsValue::from_f64(c.0 as f64));
                self.call(&self.message, &data, &cursor);
            }
            Event::StateChanged { state, reason } => {
                let detail = object(&[
                    ("state", state.name().into()),
                    ("reason", reason.to_string().into()),
                ]);
                if let State::Reconnecting {
                    attempt,
                    delay,
                    retry_at,
                } = &state
                {
                    let _ = Reflect::set(&detail, &"attempt".into(), &(*attempt).into());
                    let delay_ms = if retry_at.is_some() {
                        delay.as_millis() as f64
                    } else {
                        f64::NAN
                    };
                    let _ = Reflect::set(&detail, &"delayMs".into(), &delay_ms.into());
                }
                self.call(&"statechange".into(), &detail, &JsValue::UNDEFINED);
                self.emit_lifecycle(&state, &detail);
            }
            Event::CursorGap { last, received } => {
                let detail = object(&[
                    ("last", (last.0 as f64).into()),
                    ("received", (received.0 as f64).into()),
                ]);
                self.call(&"gap".into(), &detail, &JsValue::UNDEFINED);
            }
            Event::Unsent(unsent) => {
                let messages: js_sys::Array = unsent
                    .into_iter()
                    .map(|m| payload_to_js(m.payload))
                    .collect();
                let detail = object(&[("messages", messages.into())]);
                self.call(&"unsent".into(), &detail, &JsValue::UNDEFINED);
            }
        }
    }

    /// The browser-WebSocket-like events that go with some states.
    fn emit_lifecycle(&self, state: &State, detail: &JsValue) {
        let kind = match state {
            State::Open => "open",
            State::Reconnecting {
                retry_at: Some(_), ..
            } => "reconnecting",
            State::Closed => "close",
            State::Failed(_) => {
                self.call(&"error".into(), detail, &JsValue::UNDEFINED);
                "giveup"
            }
            _ => return,
        };
        self.call(&kind.into(), detail, &JsValue::UNDEFINED);
    }

    fn call(&self, kind: &JsValue, a: &JsValue, b: &JsValue) {
        // A listener that throws must not stop the client.
        let _ = self.emit.call3(&JsValue::UNDEFINED, kind, a, b);
    }
}

fn payload_to_js(payload: Payload) -> JsValue {
    match payload {
        Payload::Text(text) => JsValue::from_str(&text),
        Payload::Binary(bytes) => Uint8Array::from(bytes.as_slice()).buffer().into(),
    }
}

fn object(fields: &[(&str, JsValue)]) -> JsValue {
    let object = Object::new();
    for (key, value) in fields {
        let _ = Reflect::set(&object, &(*key).into(), value);
    }
    object.into()
}
