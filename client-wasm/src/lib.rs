//! The browser front-end of resilient-ws, shipped as the npm package `resilient-ws`.
//!
//! The same sans-IO core as the native client, driven by browser events: gloo-net
//! WebSockets, one browser timer for the session's next deadline, `performance.now()` for
//! time and `crypto.getRandomValues` for the jitter seed. [`RawClient`] is the class the
//! package's `ResilientWebSocket` (an `EventTarget` shaped like the browser's WebSocket)
//! wraps.
//!
//! Browsers cannot send Ping frames, so the heartbeat is an application message
//! (`heartbeat.message`) or, without one, an idle timeout on inbound traffic; it is off
//! unless configured. Browsers also hide the HTTP status of a refused handshake (every
//! refusal looks like close 1006), so refusals are retried with backoff up to the failure
//! cap; close codes the server sends after the upgrade (4401, 1008...) still decide as usual.
#![forbid(unsafe_code)]

mod client;
mod clock;
mod driver;
mod emit;
mod options;
mod socket;

pub use client::RawClient;
