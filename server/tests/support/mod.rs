//! Shared by the suites: a hub served by axum on 127.0.0.1, and a real tokio-tungstenite
//! client that reads welcomes and `{"seq":N,..}` messages, every wait bounded.
#![allow(dead_code, unreachable_pub)] // each suite uses a part

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use resilient_ws_server::{Hub, HubStats};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The bound of one read, connect or wait in the suites.
pub const LIMIT: Duration = Duration::from_secs(10);

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A hub served at `/feed` on 127.0.0.1; the server task is aborted on drop.
pub struct Server {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Server {
    pub async fn start(hub: &Hub) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let addr = listener.local_addr().expect("has an address");
        let app = hub.router("/feed");
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("serves");
        });
        Self { addr, task }
    }

    /// `ws://ADDR/feed` with `query` (without the `?`; empty for none).
    pub fn url(&self, query: &str) -> String {
        if query.is_empty() {
            format!("ws://{}/feed", self.addr)
        } else {
            format!("ws://{}/feed?{query}", self.addr)
        }
    }

    pub async fn connect(&self, query: &str) -> Ws {
        let (ws, _) = within(tokio_tungstenite::connect_async(self.url(query)))
            .await
            .expect("connects");
        ws
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `future`, or a panic after [`LIMIT`].
pub async fn within<F: Future>(future: F) -> F::Output {
    timeout(LIMIT, future)
        .await
        .expect("finished within the limit")
}

/// The next frame that is not a ping or pong.
pub async fn next_frame(ws: &mut Ws) -> Message {
    loop {
        let message = within(ws.next())
            .await
            .expect("the connection is open")
            .expect("reads a frame");
        if !matches!(message, Message::Ping(_) | Message::Pong(_)) {
            return message;
        }
    }
}

/// The next text frame as JSON; panics on anything else.
pub async fn next_json(ws: &mut Ws) -> Value {
    match next_frame(ws).await {
        Message::Text(text) => serde_json::from_str(&text).expect("a JSON frame"),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

/// The welcome frame's fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Welcome {
    pub epoch: String,
    pub resumed: bool,
    pub reason: String,
    pub from: u64,
    pub head: u64,
}

pub async fn welcome(ws: &mut Ws) -> Welcome {
    let frame = next_json(ws).await;
    assert_eq!(
        frame["type"], "welcome",
        "the first frame is the welcome: {frame}"
    );
    Welcome {
        epoch: frame["epoch"].as_str().expect("epoch").to_owned(),
        resumed: frame["resumed"].as_bool().expect("resumed"),
        reason: frame["reason"].as_str().expect("reason").to_owned(),
        from: frame["from"].as_u64().expect("from"),
        head: frame["head"].as_u64().expect("head"),
    }
}

/// The `seq` of the next message.
pub async fn next_seq(ws: &mut Ws) -> u64 {
    let frame = next_json(ws).await;
    frame["seq"]
        .as_u64()
        .unwrap_or_else(|| panic!("a feed message: {frame}"))
}

/// Reads `count` messages and checks they are `from`, `from + 1`, ...
pub async fn expect_seqs(ws: &mut Ws, from: u64, count: u64) {
    for expected in from..from + count {
        assert_eq!(next_seq(ws).await, expected, "no gap, no duplicate");
    }
}

/// The close frame that ends the connection, skipping data before it.
pub async fn close_frame(ws: &mut Ws) -> Option<CloseFrame> {
    loop {
        if let Message::Close(frame) = next_frame(ws).await {
            return frame;
        }
    }
}

/// Polls `stats` until `done` holds (every 10 ms, at most [`LIMIT`]).
pub async fn wait_for_stats(hub: &Hub, done: impl Fn(&HubStats) -> bool) -> HubStats {
    let deadline = Instant::now() + LIMIT;
    loop {
        let stats = hub.stats();
        if done(&stats) {
            return stats;
        }
        assert!(Instant::now() < deadline, "stats never matched: {stats:?}");
        sleep(Duration::from_millis(10)).await;
    }
}

/// A fresh file path in the temp directory, removed on drop.
pub struct TempPath(pub PathBuf);

impl TempPath {
    pub fn new(tag: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("rws-hub-{tag}-{}-{n}", std::process::id());
        let path = std::env::temp_dir().join(name);
        let _ = std::fs::remove_file(&path);
        Self(path)
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
