//! The reference feed server: a WebSocket at `/feed` that streams a deterministic numbered sequence,
//! resumable with `?cursor=N`, plus fault injection and plain-HTTP control endpoints on the same port.
//!
//! Message `n` (n = 1, 2, 3 ...) is the JSON text
//! `{"seq":n,"ts_ms":<ms since server start at which n became available>,"data":"<padding>"}`.
//! The feed is a pure function of `n`, so any range can be replayed without storing it; the head
//! advances in real time at [`FeedConfig::rate`] messages per second.
//!
//! Start it in-process with [`FeedServer::start`], or run the `feed-server` binary.
//!
//! HTTP control endpoints (plain `GET`, JSON answers, `Access-Control-Allow-Origin: *`):
//!
//! | path | effect |
//! |---|---|
//! | `/control/stats` | the [`FeedStats`] counters |
//! | `/control/faults?drop_every=N&silent_after=N&close_after=N&close_code=C&replay_overlap=K` | reads, or changes the given, [`Faults`] (`off` clears one) |
//! | `/control/clear` | clears all faults |
//! | `/control/drop` | drops every current connection abruptly (no close frame) |
//! | `/control/silence` | makes every current connection go silent |
//! | `/control/close?code=1012` | closes every current connection with that code |
//! | `/control/refuse?status=503&count=3&retry_after=5` | refuses the next `count` handshakes (all without `count`; `status=off` stops) |
//! | `/control/restart?down_ms=2000` | closes listener and connections, listens again on the same port later |
//!
//! Any other `GET` is looked up in [`FeedConfig::static_dirs`] (files served with their content
//! type and `Cache-Control: no-store`; the dashboard page and the browser package), else 404.
//!
//! Built on axum: hyper serves each TCP connection (one request per connection) with an axum
//! router (`router.rs`: `/feed` through axum's `WebSocketUpgrade`, `control.rs`, and
//! tower-http's `ServeDir` in `static_dirs.rs`). What a `/feed` connection is sent lives in
//! `feed/`, behind two calls: accept a handshake, then serve the upgraded socket. A supervisor
//! task owns the listener and every connection, so a restart can close them all.

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
