//! The browser driver in headless Chromium, against the reference feed server.
//!
//! Run with `scripts/test-wasm.sh`: it starts `feed-server` on 127.0.0.1 and builds these
//! tests with `FEED_URL=ws://127.0.0.1:PORT/feed`. Tests that need the server fail with a
//! message saying so when `FEED_URL` is missing; they never pass without it. Every wait is
//! bounded, so a hung driver fails a test instead of the whole run timing out.
#![cfg(target_arch = "wasm32")]

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Date, Error, Function, JSON, Promise, Reflect};
use resilient_ws_wasm::RawClient;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

/// A port nothing listens on (discard): attempts there fail, which some tests want.
const NOWHERE: &str = "ws://127.0.0.1:9/";

// ---- The feed server ----

/// The feed server's WebSocket URL, baked in at build time by scripts/test-wasm.sh.
fn feed_url() -> &'static str {
    match option_env!("FEED_URL") {
        Some(url) if !url.is_empty() => url,
        _ => panic!(
            "FEED_URL is not set: this test needs the feed server. Run scripts/test-wasm.sh, \
             which starts it and builds the tests with FEED_URL=ws://127.0.0.1:PORT/feed"
        ),
    }
}

/// `http://HOST:PORT/control/ACTION` of the feed server.
fn control_url(action: &str) -> String {
    let url = feed_url();
    let rest = url.strip_prefix("ws://").unwrap_or_else(|| {
        panic!("FEED_URL must be a ws:// URL, got {url}");
    });
    let host = rest.split('/').next().unwrap_or(rest);
    format!("http://{host}/control/{action}")
}

/// GETs a control endpoint and returns its JSON answer.
async fn control(action: &str) -> JsValue {
    let url = control_url(action);
    let fetch: Function = global("fetch").unchecked_into();
    let pending: Promise = fetch
        .call1(&JsValue::UNDEFINED, &url.as_str().into())
        .unwrap_or_else(|error| panic!("fetch({url}) threw: {error:?}"))
        .unchecked_into();
    let response = within(5_000, pending, &format!("GET {url}"))
        .await
        .unwrap_or_else(|error| panic!("GET {url} failed: {}", message(&error)));
    let ok = get(&response, "ok").as_bool() == Some(true);
    assert!(ok, "GET {url} answered {:?}", get(&response, "status"));
    let json: Function = get(&response, "json").unchecked_into();
    let body: Promise = json
        .call0(&response)
        .expect("response.json() does not throw")
        .unchecked_into();
    within(5_000, body, &format!("the body of {url}"))
        .await
        .unwrap_or_else(|error| panic!("GET {url}: bad body: {}", message(&error)))
}

/// A counter from the server's `/control/stats`.
async fn server_stat(name: &str) -> f64 {
    let stats = control("stats").await;
    get(&stats, name)
        .as_f64()
        .unwrap_or_else(|| panic!("/control/stats has no number '{name}'"))
}

// ---- Time ----

fn now_ms() -> f64 {
    Date::now()
}

/// Resolves after `ms` milliseconds (a browser timer).
async fn sleep(ms: u32) {
    let promise = Promise::new(&mut |resolve, _reject| {
        let set_timeout: Function = global("setTimeout").unchecked_into();
        set_timeout
            .call2(&JsValue::UNDEFINED, &resolve, &ms.into())
            .expect("setTimeout does not throw");
    });
    JsFuture::from(promise)
        .await
        .expect("a timer promise does not reject");
}

/// Awaits `promise`, or fails with an Error after `ms` milliseconds.
async fn within(ms: u32, promise: Promise, what: &str) -> Result<JsValue, JsValue> {
    let expiry = Error::new(&format!("timed out after {ms} ms waiting for {what}"));
    let timer = Promise::new(&mut |_resolve, reject| {
        let set_timeout: Function = global("setTimeout").unchecked_into();
        let args = Array::of3(&reject, &ms.into(), &expiry);
        Reflect::apply(&set_timeout, &JsValue::UNDEFINED, &args)
            .expect("setTimeout does not throw");
    });
    JsFuture::from(Promise::race(&Array::of2(&promise, &timer))).await
}

// ---- JS helpers ----

fn global(name: &str) -> JsValue {
    Reflect::get(&js_sys::global(), &name.into())
        .unwrap_or_else(|_| panic!("globalThis.{name} is readable"))
}

fn get(object: &JsValue, key: &str) -> JsValue {
    Reflect::get(object, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

/// The `message` of an Error (or the value itself, for anything else).
fn message(error: &JsValue) -> String {
    get(error, "message")
        .as_string()
        .unwrap_or_else(|| format!("{error:?}"))
}

/// Lower case without spaces, dots or underscores: "max failures" matches "maxFailures".
fn squash(text: &str) -> String {
    text.chars()
        .filter(|c| !matches!(c, ' ' | '.' | '_' | '-'))
        .flat_map(char::to_lowercase)
        .collect()
}

// ---- The client under test ----

/// What the client handed to its `emit` callback.
#[derive(Debug, Clone, PartialEq)]
enum Emitted {
    Message {
        data: String,
        /// The decimal string the package hands listeners.
        cursor: Option<String>,
    },
    /// A `statechange`, with the new state's name.
    State(String),
    /// Any other event type (`open`, `close`, `gap`, `unsent`...).
    Other(String),
}

/// The browser half of the driver, as the package ships it.
#[wasm_bindgen(module = "/js/host.js")]
extern "C" {
    /// What `readOptions` returns.
    type Settings;
    #[wasm_bindgen(js_name = readOptions, catch)]
    fn read_options(url: &str, options: &JsValue) -> Result<Settings, JsValue>;
    #[wasm_bindgen(method, getter)]
    fn numbers(this: &Settings) -> Vec<f64>;
    #[wasm_bindgen(method, getter, js_name = cursorField)]
    fn cursor_field(this: &Settings) -> Option<String>;
    #[wasm_bindgen(method, getter, js_name = resumeParam)]
    fn resume_param(this: &Settings) -> Option<String>;
    #[wasm_bindgen(method, getter, js_name = heartbeatMessage)]
    fn heartbeat_message(this: &Settings) -> Option<String>;

    #[wasm_bindgen(js_name = sendError)]
    fn send_error(outcome: u8, stats: &JsValue, settings: &Settings) -> JsValue;
    #[wasm_bindgen(js_name = statsObject)]
    fn stats_object(values: &[f64]) -> JsValue;
    #[wasm_bindgen(js_name = cursorText)]
    fn cursor_text(high: f64, low: f64) -> Option<String>;

    type BrowserHost;
    #[wasm_bindgen(constructor)]
    fn new(settings: &Settings) -> BrowserHost;
    #[wasm_bindgen(method)]
    fn attach(this: &BrowserHost, raw: RawClient, emit: &Function);
}

/// The tables host.js shares with RawClient, read from host.js itself (its copies are
/// checked against the Rust side by the crate's `interface` tests).
#[wasm_bindgen(module = "/js/host.js")]
extern "C" {
    /// State numbers to names.
    #[wasm_bindgen(thread_local_v2, js_name = STATES)]
    static STATES: Array;
    /// Where `RawClient::stats()` puts the state's number.
    #[wasm_bindgen(thread_local_v2, js_name = STATE_SLOT)]
    static STATE_SLOT: JsValue;
    /// Where `RawClient::stats()` puts the cursor's high half; its low half follows.
    #[wasm_bindgen(thread_local_v2, js_name = CURSOR_SLOT)]
    static CURSOR_SLOT: JsValue;
    /// `RawClient::signal`'s inputs by name.
    #[wasm_bindgen(thread_local_v2, js_name = SIGNAL)]
    static SIGNAL: JsValue;
}

/// A number host.js exports.
fn host_number(value: &'static wasm_bindgen::JsThreadLocal<JsValue>, what: &str) -> f64 {
    value
        .with(JsValue::as_f64)
        .unwrap_or_else(|| panic!("host.js {what} is not a number"))
}

/// `SIGNAL[name]` of host.js.
fn signal(name: &str) -> u8 {
    SIGNAL
        .with(|signals| get(signals, name).as_f64())
        .unwrap_or_else(|| panic!("host.js SIGNAL has no `{name}`")) as u8
}

/// A `RawClient` driven by the package's `BrowserHost`, with the events it emitted
/// recorded. The only place that knows how the two are put together.
struct Client {
    raw: RawClient,
    settings: Settings,
    log: Rc<RefCell<Vec<Emitted>>>,
    _emit: Closure<dyn FnMut(JsValue, JsValue, JsValue)>,
}

impl Client {
    /// `options` is JSON, or "" for none.
    fn new(url: &str, options: &str) -> Result<Self, JsValue> {
        let options = if options.is_empty() {
            JsValue::UNDEFINED
        } else {
            JSON::parse(options).expect("test options are valid JSON")
        };
        let log = Rc::new(RefCell::new(Vec::new()));
        let sink = Rc::clone(&log);
        let emit = Closure::<dyn FnMut(JsValue, JsValue, JsValue)>::new(
            move |kind: JsValue, a: JsValue, b: JsValue| {
                let kind = kind.as_string().unwrap_or_default();
                let entry = match kind.as_str() {
                    "message" => Emitted::Message {
                        data: get(&a, "data").as_string().unwrap_or_default(),
                        cursor: b.as_string(),
                    },
                    "statechange" => {
                        Emitted::State(get(&a, "state").as_string().unwrap_or_default())
                    }
                    _ => Emitted::Other(kind),
                };
                sink.borrow_mut().push(entry);
            },
        );
        let function: Function = emit.as_ref().unchecked_ref::<Function>().clone();
        let settings = read_options(url, &options)?;
        let host = BrowserHost::new(&settings);
        let raw = RawClient::new(
            url.into(),
            &settings.numbers(),
            settings.cursor_field(),
            settings.resume_param(),
            settings.heartbeat_message(),
            host.clone().unchecked_into(),
        )
        .map_err(JsValue::from)?;
        host.attach(raw.handle(), &function);
        Ok(Self {
            raw,
            settings,
            log,
            _emit: emit,
        })
    }

    fn connect(url: &str, options: &str) -> Self {
        Self::new(url, options)
            .unwrap_or_else(|error| panic!("valid options {options} threw: {}", message(&error)))
    }

    fn state(&self) -> String {
        let code = self.raw.stats()[host_number(&STATE_SLOT, "STATE_SLOT") as usize];
        STATES
            .with(|states| states.get(code as u32).as_string())
            .unwrap_or_else(|| panic!("host.js STATES has no state {code}"))
    }

    /// WebSocket's readyState, as `ResilientWebSocket` derives it.
    fn ready_state(&self) -> u8 {
        match self.state().as_str() {
            "open" => 1,
            "closing" => 2,
            "closed" | "failed" => 3,
            _ => 0,
        }
    }

    fn last_cursor(&self) -> Option<u64> {
        let stats = self.raw.stats();
        let at = host_number(&CURSOR_SLOT, "CURSOR_SLOT") as usize;
        cursor_text(stats[at], stats[at + 1]).map(|text| parse_cursor(&text))
    }

    fn set_online(&self, online: bool) {
        self.raw
            .signal(signal(if online { "online" } else { "offline" }));
    }

    /// A counter by the name the package gives it (host.js `statsObject`).
    fn stat(&self, name: &str) -> f64 {
        get(&stats_object(&self.raw.stats()), name)
            .as_f64()
            .unwrap_or_else(|| panic!("stats has no number '{name}'"))
    }

    fn events(&self) -> Vec<Emitted> {
        self.log.borrow().clone()
    }

    fn event_count(&self) -> usize {
        self.log.borrow().len()
    }

    /// Cursors of the delivered messages, in order (a message without one fails the test).
    fn cursors(&self) -> Vec<u64> {
        self.log
            .borrow()
            .iter()
            .filter_map(|event| match event {
                Emitted::Message { cursor, data } => {
                    Some(parse_cursor(cursor.as_deref().unwrap_or_else(|| {
                        panic!("message without a cursor: {data}")
                    })))
                }
                _ => None,
            })
            .collect()
    }

    fn count(&self, wanted: &Emitted) -> usize {
        self.log
            .borrow()
            .iter()
            .filter(|event| *event == wanted)
            .count()
    }

    /// Events emitted from index `from` on, without the messages.
    fn lifecycle_since(&self, from: usize) -> Vec<Emitted> {
        self.log.borrow()[from..]
            .iter()
            .filter(|event| !matches!(event, Emitted::Message { .. }))
            .cloned()
            .collect()
    }

    /// What a failure message shows: state, counters and the last non-message events.
    fn describe(&self) -> String {
        let lifecycle = self.lifecycle_since(0);
        let tail = &lifecycle[lifecycle.len().saturating_sub(12)..];
        format!(
            "state {}, readyState {}, {} messages (last cursor {:?}), stats {:?}, events {:?}",
            self.state(),
            self.ready_state(),
            self.cursors().len(),
            self.last_cursor(),
            self.raw.stats(),
            tail,
        )
    }

    /// Polls `ready` every 20 ms for at most `timeout_ms`.
    async fn wait_for(&self, what: &str, timeout_ms: f64, ready: impl Fn(&Self) -> bool) {
        let start = now_ms();
        while !ready(self) {
            if now_ms() - start > timeout_ms {
                panic!(
                    "timed out after {timeout_ms} ms waiting for {what}: {}",
                    self.describe()
                );
            }
            sleep(20).await;
        }
    }

    async fn wait_open(&self) {
        self.wait_for("the client to open", 5_000.0, |c| c.state() == "open")
            .await;
        assert_eq!(self.ready_state(), 1, "open means readyState 1");
    }

    async fn wait_messages(&self, at_least: usize) {
        self.wait_for(&format!("{at_least} messages"), 5_000.0, |c| {
            c.cursors().len() >= at_least
        })
        .await;
    }

    async fn close(&self) {
        assert_eq!(
            self.raw.close(1000, "test done"),
            0,
            "close(1000) is allowed"
        );
        self.wait_for("close() to finish", 3_000.0, |c| c.ready_state() == 3)
            .await;
    }
}

/// A cursor as the package hands it out: a decimal string.
fn parse_cursor(text: &str) -> u64 {
    text.parse()
        .unwrap_or_else(|_| panic!("a cursor must be a decimal string, got {text:?}"))
}

/// Every cursor is the previous plus one: nothing lost, nothing delivered twice.
fn assert_contiguous(client: &Client) {
    let cursors = client.cursors();
    for pair in cursors.windows(2) {
        assert_eq!(
            pair[1],
            pair[0] + 1,
            "cursors must go up by one (no loss, no duplicate): {pair:?} in {cursors:?}"
        );
    }
}

// ---- Tests without the server ----

#[wasm_bindgen_test]
fn bad_options_throw_an_error_that_names_the_field() {
    let cases = [
        (NOWHERE, r#"{"backoff":{"initialMs":-1}}"#, "initialMs"),
        (
            NOWHERE,
            r#"{"backoff":{"initialMs":1000,"maxMs":10}}"#,
            "backoff",
        ),
        (NOWHERE, r#"{"protocols":"chat"}"#, "protocols"),
        (NOWHERE, r#"{"protocols":[1]}"#, "protocols"),
        (NOWHERE, r#"{"maxFailures":0}"#, "maxFailures"),
        (NOWHERE, r#"{"maxFailures":1.5}"#, "maxFailures"),
        (NOWHERE, r#"{"cursorField":5}"#, "cursorField"),
        (NOWHERE, r#"{"queue":{"maxMessages":-3}}"#, "maxMessages"),
        (NOWHERE, r#"{"urlProvider":"https://x"}"#, "urlProvider"),
        (NOWHERE, r#"{"heartbeat":true}"#, "heartbeat"),
        (NOWHERE, r#"{"heartbeat":{"intervalMs":0}}"#, "intervalMs"),
        (NOWHERE, r#"{"contiguousCursors":1}"#, "contiguousCursors"),
        ("http://127.0.0.1:9/", "", "ws://"),
    ];
    for (url, options, field) in cases {
        let error = match Client::new(url, options) {
            Ok(client) => panic!(
                "new RawClient({url}, {options}) must throw; state {}",
                client.state()
            ),
            Err(error) => error,
        };
        assert!(
            error.is_instance_of::<Error>(),
            "{options}: thrown value must be an Error, got {error:?}"
        );
        let text = message(&error);
        assert!(
            squash(&text).contains(&squash(field)),
            "{url} {options}: the message must name '{field}', got '{text}'"
        );
    }
}

#[wasm_bindgen_test]
async fn a_full_queue_throws_an_error_that_names_it() {
    let client = Client::connect(
        NOWHERE,
        r#"{"queue":{"maxMessages":2},"backoff":{"initialMs":2000,"maxMs":2000}}"#,
    );
    // Nothing listens there: every attempt fails, and what is sent waits in the queue.
    client
        .wait_for("the first attempt", 3_000.0, |c| c.stat("attempts") >= 1.0)
        .await;
    for text in ["one", "two"] {
        assert_eq!(client.raw.send_text(text.into()), 0, "'{text}' is queued");
    }
    let refused = client.raw.send_text("three".into());
    assert_eq!(
        refused, 1,
        "a third send into a queue of 2 is refused as full"
    );
    // The Error the package throws for it (ResilientWebSocket.send throws this).
    let error = send_error(
        refused,
        &stats_object(&client.raw.stats()),
        &client.settings,
    );
    assert!(
        error.is_instance_of::<Error>(),
        "thrown value must be an Error, got {error:?}"
    );
    let text = message(&error);
    let squashed = squash(&text);
    assert!(
        squashed.contains("queue") && squashed.contains("full"),
        "the message must say the queue is full, got '{text}'"
    );
    assert_eq!(client.stat("queued"), 2.0, "{}", client.describe());
    client.close().await;
    assert_eq!(client.state(), "closed");
    assert_eq!(
        client.count(&Emitted::Other("unsent".into())),
        1,
        "closing hands the queued messages back: {}",
        client.describe()
    );
}

#[wasm_bindgen_test]
async fn close_before_the_first_attempt_stays_closed() {
    let client = Client::connect(NOWHERE, "");
    client.close().await;
    assert_eq!(client.state(), "closed", "{}", client.describe());
    // The deferred first attempt must not start the closed session again.
    sleep(100).await;
    assert_eq!(client.state(), "closed", "{}", client.describe());
    assert_eq!(client.stat("attempts"), 0.0, "{}", client.describe());
}

// ---- Tests against the feed server ----

#[wasm_bindgen_test]
async fn receives_the_feed_with_increasing_cursors() {
    let client = Client::connect(feed_url(), r#"{"cursorField":"seq"}"#);
    client.wait_open().await;
    client.wait_messages(20).await;
    let cursors = client.cursors();
    assert!(
        cursors.windows(2).all(|pair| pair[0] < pair[1]),
        "cursors must increase: {cursors:?}"
    );
    for event in client.events() {
        if let Emitted::Message { data, cursor } = event {
            let seq = format!("\"seq\":{},", cursor.as_deref().unwrap_or("none"));
            assert!(
                data.contains(&seq),
                "cursor {cursor:?} must come from {data}"
            );
        }
    }
    let last = *cursors.last().expect("messages arrived");
    assert!(
        client.last_cursor().is_some_and(|c| c >= last),
        "lastCursor {:?} must be at least {last}",
        client.last_cursor()
    );
    client.close().await;
}

#[wasm_bindgen_test]
async fn a_dropped_connection_resumes_exactly_once() {
    let client = Client::connect(
        feed_url(),
        r#"{"cursorField":"seq","resumeParam":"cursor","contiguousCursors":true,"backoff":{"initialMs":50,"maxMs":250}}"#,
    );
    client.wait_open().await;
    client.wait_messages(10).await;
    let dropped = control("drop").await;
    assert!(
        get(&dropped, "connections").as_f64().unwrap_or(0.0) >= 1.0,
        "the server dropped no connection: {:?}",
        JSON::stringify(&dropped)
    );
    let open = Emitted::Other("open".into());
    client
        .wait_for("the client to reopen after the drop", 5_000.0, |c| {
            c.count(&open) >= 2 && c.state() == "open"
        })
        .await;
    let before = client.cursors().len();
    client.wait_messages(before + 10).await;
    assert_contiguous(&client);
    assert!(client.stat("reconnects") >= 1.0, "{}", client.describe());
    assert_eq!(
        client.count(&Emitted::Other("gap".into())),
        0,
        "resume must not report a gap: {}",
        client.describe()
    );
    client.close().await;
}

#[wasm_bindgen_test]
async fn close_resolves_and_the_state_becomes_closed() {
    let client = Client::connect(feed_url(), r#"{"cursorField":"seq"}"#);
    client.wait_open().await;
    client.close().await;
    assert_eq!(client.state(), "closed", "{}", client.describe());
    assert_eq!(client.ready_state(), 3);
    assert_eq!(client.count(&Emitted::Other("close".into())), 1);
    // Closed stays closed: no new attempt, no event.
    let attempts = client.stat("attempts");
    let events = client.event_count();
    sleep(300).await;
    assert_eq!(client.state(), "closed");
    assert_eq!(client.stat("attempts"), attempts, "{}", client.describe());
    assert_eq!(client.event_count(), events, "{}", client.describe());
}

#[wasm_bindgen_test]
async fn a_late_close_from_an_abandoned_socket_does_not_touch_the_new_session() {
    let client = Client::connect(
        feed_url(),
        r#"{"cursorField":"seq","resumeParam":"cursor","backoff":{"initialMs":50,"maxMs":250}}"#,
    );
    client.wait_open().await;
    client.wait_messages(5).await;
    // Abandon the socket and start another at once, a few times: each abandoned socket's
    // close event arrives while its successor is connecting or open.
    for pause in [0, 5, 30] {
        client.set_online(false);
        client.set_online(true);
        let state = client.state();
        assert!(
            state == "connecting" || state == "open",
            "back online means a new attempt at once, got {state}"
        );
        sleep(pause).await;
    }
    client.wait_open().await;
    let settled = client.event_count();
    let opens = client.count(&Emitted::Other("open".into()));
    // The late close events land now; none may move the new session.
    sleep(1_000).await;
    assert_eq!(client.state(), "open", "{}", client.describe());
    assert_eq!(
        client.lifecycle_since(settled),
        Vec::new(),
        "no state change after the new socket opened: {}",
        client.describe()
    );
    assert_eq!(client.count(&Emitted::Other("open".into())), opens);
    let before = client.cursors().len();
    client.wait_messages(before + 5).await;
    assert_contiguous(&client);
    client.close().await;
}

#[wasm_bindgen_test]
async fn offline_means_ready_state_0_and_no_socket() {
    let client = Client::connect(
        feed_url(),
        r#"{"cursorField":"seq","resumeParam":"cursor"}"#,
    );
    client.wait_open().await;
    // Let the server count this connection before reading its numbers.
    client.wait_messages(1).await;
    let live_while_open = server_stat("live_connections").await;
    assert!(live_while_open >= 1.0, "the server sees no live connection");

    client.set_online(false);
    assert_eq!(client.ready_state(), 0, "{}", client.describe());
    assert_eq!(client.state(), "reconnecting", "{}", client.describe());
    let start = now_ms();
    while server_stat("live_connections").await >= live_while_open {
        assert!(
            now_ms() - start < 3_000.0,
            "going offline must close the socket: the server still counts it; {}",
            client.describe()
        );
        sleep(50).await;
    }
    let accepted = server_stat("connections_accepted").await;
    let events = client.event_count();
    sleep(700).await;
    assert_eq!(
        server_stat("connections_accepted").await,
        accepted,
        "no socket may be opened while offline"
    );
    assert_eq!(client.ready_state(), 0);
    assert_eq!(client.event_count(), events, "{}", client.describe());

    client.set_online(true);
    client.wait_open().await;
    client.close().await;
}
