//! The server half of resume for [resilient-ws](https://crates.io/crates/resilient-ws): a
//! resumable WebSocket feed hub for axum.
//!
//! A [`Hub`] is one feed. [`Hub::publish`] assigns each message the next cursor (1, 2, 3,
//! ...) under an *epoch*, a name that changes whenever history is lost. The hub keeps a
//! bounded replay buffer, so a client that reconnects with `?cursor=N&epoch=E` gets N+1,
//! N+2, ... exactly once and then the live feed with no gap and no duplicate, and is told
//! explicitly when that is impossible. It pings clients and evicts dead ones, bounds every
//! client's queue (a client that falls behind is closed with 1013 and resumes), and closes
//! everyone with 1012 on [`Hub::shutdown`]. With [`FileHistory`] the epoch and buffer
//! survive a restart.
//!
//! # Quick start
//!
//! ```no_run
//! use std::time::Duration;
//! use resilient_ws_server::{Hub, HubConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let hub = Hub::new(HubConfig::default());
//! let app = axum::Router::new().merge(hub.router("/feed"));
//!
//! let publisher = hub.clone();
//! tokio::spawn(async move {
//!     for price in 0u64.. {
//!         // Sent as {"seq":N,"data":{"price":..}}; clients use cursor_field("seq").
//!         if publisher.publish(&serde_json::json!({ "price": price })).is_err() {
//!             break; // shut down
//!         }
//!         tokio::time::sleep(Duration::from_millis(100)).await;
//!     }
//! });
//!
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app)
//!     .with_graceful_shutdown(async move {
//!         let _ = tokio::signal::ctrl_c().await;
//!         hub.shutdown().await; // every client gets 1012 and resumes elsewhere
//!     })
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! The matching client (`resilient-ws`) reads the cursor from each message and sends it
//! back on reconnect: `.cursor_field("seq").resume_query("cursor")`. To persist history
//! across restarts, build the hub with
//! `Hub::with_history(config, FileHistory::open("feed.history")?)?`.
//!
//! # Protocol
//!
//! **Connect** with an HTTP GET upgrade to the mounted path, with two optional query
//! parameters:
//!
//! - `cursor=N`: the last cursor the client has (a decimal `u64`; anything else is refused
//!   with 400 Bad Request before the upgrade; an empty value counts as absent);
//! - `epoch=E`: the epoch that cursor belongs to (from an earlier welcome).
//!
//! A hub that is shut down answers 503.
//!
//! **Welcome.** With [`HubConfig::welcome`] on (the default) the first frame of every
//! connection is a text frame holding exactly these keys in this order:
//!
//! ```json
//! {"type":"welcome","epoch":"19a2b3c4d5e-0123456789abcdef","resumed":true,"reason":"resumed","from":42,"head":57}
//! ```
//!
//! - `epoch`: the hub's current epoch; store it with your cursor.
//! - `from`: the first cursor that follows; every later cursor follows in order, none
//!   skipped and none repeated, until the connection closes.
//! - `head`: the latest cursor published when the connection subscribed (0: none yet).
//! - `resumed` / `reason`, decided in this order:
//!   1. no `cursor`: `false` / `"fresh"`, and `from` is [`HubConfig::start`];
//!   2. `epoch` given and not the current one: `false` / `"epoch_changed"`;
//!   3. `cursor` > `head`: `false` / `"cursor_ahead"`;
//!   4. N+1 still buffered, or N == `head` (with no `epoch`, the cursor is taken to be of
//!      the current epoch): `true` / `"resumed"`, and `from` is N+1;
//!   5. otherwise (N+1 has left the buffer): `false` / `"cursor_too_old"`.
//!
//!   When `resumed` is `false` after a cursor was given (2, 3, 5), `from` is
//!   [`HubConfig::on_discontinuity`]: the oldest buffered message (default) or the next
//!   one published. The hub never skips silently: what was missed is said by the reason.
//!
//! **Messages** are the published payloads, text or binary, unchanged. [`Hub::publish`]
//! wraps data as `{"seq":N,"data":<json>}`; [`Hub::publish_with`] lets the publisher put
//! the cursor wherever its format wants it. The hub ignores data the client sends (it
//! only counts as a sign of life).
//!
//! **Without the welcome** ([`HubConfig::welcome`] off) a connection whose cursor cannot be
//! resumed (cases 2, 3, 5) is closed at once with [`CLOSE_RESUME_IMPOSSIBLE`] (4001) and
//! the reason `"resume impossible: <reason>"`; the client should drop its cursor and epoch
//! and reconnect fresh. Other connections get the messages from `from` directly.
//!
//! **Liveness.** The hub sends a Ping every [`HubConfig::ping_interval`]; a client from
//! which no frame at all (a Pong counts) arrives within [`HubConfig::ping_timeout`] after
//! the ping is due is dropped without a close frame (`evicted_dead`). Clients that only
//! listen stay connected: their WebSocket library answers pings. A client that stops
//! reading its socket cannot answer either, and is dropped too.
//!
//! **Close codes** (clients decide from the code, never from the reason):
//!
//! | code | reason | when | client should |
//! |------|--------|------|---------------|
//! | 1012 ([`CLOSE_SHUTDOWN`]) | `server shutting down` | [`Hub::shutdown`] | resume (cursor + epoch) |
//! | 1013 ([`CLOSE_SLOW_CONSUMER`]) | `slow consumer` | its queue overflowed | resume (cursor + epoch) |
//! | 4001 ([`CLOSE_RESUME_IMPOSSIBLE`]) | `resume impossible: <reason>` | welcome off, cursor not resumable | reconnect fresh |
//!
//! **Slow clients.** Each client has a queue bounded by [`HubConfig::queue_max_messages`]
//! and [`HubConfig::queue_max_bytes`] between the hub and its socket. Publishing never
//! waits: when a message does not fit, the queue is dropped and the client is closed with
//! 1013 (the close frame is written after what the socket already holds, within
//! [`HubConfig::close_timeout`], then the TCP connection is dropped), and it resumes from
//! its cursor.
//!
//! # Logging
//!
//! Each connection logs with `tracing` in a span `hub_connection` with a `conn` number.
//! Query values (cursors, epochs sent by clients) are never logged.
#![forbid(unsafe_code)]

pub mod axum;
mod buffer;
mod codes;
mod config;
mod connection;
mod epoch;
mod error;
mod file_history;
mod history;
mod hub;
mod outbox;
mod payload;
mod resume;
mod stats;

pub use codes::{CLOSE_RESUME_IMPOSSIBLE, CLOSE_SHUTDOWN, CLOSE_SLOW_CONSUMER};
pub use config::{HubConfig, StartPoint};
pub use error::{HistoryError, HubError, ResumeQueryError};
pub use file_history::FileHistory;
pub use history::{HistoryStore, MemoryHistory, Restored};
pub use hub::{Hub, Subscription};
pub use outbox::Closed;
pub use payload::{Payload, Record};
pub use resume::{ResumeReason, ResumeRequest, Welcome};
pub use stats::HubStats;
