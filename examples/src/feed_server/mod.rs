//! The reference feed server: a producer publishes a numbered feed into a
//! [`resilient_ws_server::Hub`], and every WebSocket at `/feed` is a subscription to it,
//! resumable with `?cursor=N&epoch=E`, plus fault injection and plain-HTTP control endpoints on
//! the same port.
//!
//! Message `n` (n = 1, 2, 3 ..., the hub's cursor) is the JSON text
//! `{"seq":n,"ts_ms":<n * 1000 / rate>,"data":"<padding>"}`, published at
//! [`FeedConfig::rate`] messages per second (rate 0: all of [`FeedConfig::total`] before the
//! server listens). Each connection first gets the hub's welcome frame
//! (`{"type":"welcome","epoch":..,"resumed":..,"reason":..,"from":..,"head":..}`, see
//! `resilient-ws-server`; off with [`FeedConfig::welcome`]), then the messages from `from` on:
//! the replay buffer ([`FeedConfig::history`] messages), then live. With
//! [`FeedConfig::history_file`] the epoch and the buffer survive a process restart.
//!
//! Start it in-process with [`FeedServer::start`], or run the `feed-server` binary.
//!
//! HTTP control endpoints (plain `GET`, JSON answers, `Access-Control-Allow-Origin: *`):
//!
//! | path | effect |
//! |---|---|
//! | `/control/stats` | the [`FeedStats`] counters and the hub's `epoch` |
//! | `/control/faults?drop_every=N&silent_after=N&close_after=N&close_code=C&replay_overlap=K` | reads, or changes the given, [`Faults`] (`off` clears one) |
//! | `/control/clear` | clears all faults |
//! | `/control/drop` | drops every current connection abruptly (no close frame) |
//! | `/control/silence` | makes every current connection go silent |
//! | `/control/close?code=1012` | closes every current connection with that code |
//! | `/control/refuse?status=503&count=3&retry_after=5` | refuses the next `count` handshakes (all without `count`; `status=off` stops) |
//! | `/control/restart?down_ms=2000` | closes listener and connections, listens again on the same port later (the history is kept) |
//! | `/control/restart?down_ms=2000&forget=1` | the same, and the history is dropped: a new epoch from message 1, so resuming clients get an explicit discontinuity |
//!
//! Any other `GET` is looked up in [`FeedConfig::static_dirs`] (files served with their content
//! type and `Cache-Control: no-store`; the dashboard page and the browser package), else 404.
//!
//! Built on axum: hyper serves each TCP connection (one request per connection) with an axum
//! router (`router.rs`: `/feed` through axum's `WebSocketUpgrade`, `control.rs`, and
//! tower-http's `ServeDir` in `static_dirs.rs`). What a `/feed` connection is sent lives in
//! `feed/`, behind two calls: accept a handshake (a hub subscription), then serve the upgraded
//! socket with the connection's own send loop, which can inject faults (the hub's axum handler
//! cannot) and pings like the hub. A supervisor task owns the listener, every connection and the
//! producer, so a restart can close them all.

mod cli;
mod config;
mod connection;
mod control;
mod error;
mod feed;
mod handle;
mod live;
mod muzzle;
mod received;
mod router;
mod shared;
mod static_dirs;
mod stats;
mod supervisor;

pub use cli::{CliCommand, USAGE, UsageError, parse_args};
pub use config::FeedConfig;
pub use error::FeedServerError;
pub use feed::{CloseAfter, Faults, FeedMessage, Refusal};
pub use handle::{FeedServer, FeedServerHandle};
pub use received::{ClientMessage, ClientPayload};
pub use stats::FeedStats;
