//! A WebSocket client for Rust services that must stay connected.
//!
//! `resilient-ws` reconnects with exponential backoff and full jitter, gives up after a
//! failure cap, never keeps two sockets alive, finds dead (half-open) connections with
//! pings, queues what you send while offline, and resumes a feed from the last cursor it
//! delivered, with nothing lost and nothing delivered twice. Every decision is made by the
//! sans-IO core, [`resilient_ws_core`]; this crate drives it with tokio and
//! tokio-tungstenite.
//!
//! # Quick start
//!
//! ```no_run
//! use futures_util::StreamExt;
//! use resilient_ws::{Client, Event};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let (client, mut events) = Client::builder("wss://feed.example/ws")
//!     .cursor_field("seq")      // each message carries {"seq": N, ...}
//!     .resume_query("cursor")   // reconnect with ?cursor=<last seq>
//!     .connect()?;
//!
//! client.send_text(r#"{"subscribe":"prices"}"#)?; // queued while offline
//! while let Some(event) = events.next().await {
//!     match event {
//!         Event::Message { payload, cursor } => println!("{cursor:?}: {payload:?}"),
//!         Event::StateChanged { state, reason } => eprintln!("{state}: {reason}"),
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Sessions log with `tracing` in a span per session and per socket (`conn`, `attempt`);
//! URLs are logged with query values removed and header values never.
// Unsafe code is denied, and allowed in one place: handing text that tungstenite checked
// as UTF-8 to the session without checking it again (see `text`).
#![deny(unsafe_code)]

mod baton;
mod builder;
mod burst;
mod channel;
mod client;
mod clock;
mod connection;
mod driver;
mod error;
mod events;
mod handshake;
mod mailbox;
mod request;
mod retry_after;
mod sink;
mod socket;
mod text;
mod tls;
mod writer;
mod written;

pub use builder::{
    ClientBuilder, DEFAULT_EVENT_BUFFER, DEFAULT_EVENT_BUFFER_BYTES, DEFAULT_IO_BUFFER,
    DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_MAX_WRITE_BUFFER,
};
pub use client::Client;
pub use error::{BuildError, SendJsonError};
pub use events::{Events, JsonEvent, JsonEvents};
pub use request::{AttemptInfo, ConnectRequest, ProviderError, ProviderFuture, RequestProvider};
pub use resilient_ws_core::{
    Binary, CloseError, ConnId, Cursor, Disconnect, Event, Failure, MsgId, Payload, Probe, Reason,
    RetryAction, SendError, State, Stats, Text, Unsent,
};
pub use sink::ClientSink;
pub use tls::TlsRoots;

/// The README's examples, compiled as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
