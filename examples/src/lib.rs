//! Examples for resilient-ws.
//!
//! - [`feed_server`]: the reference feed server (numbered live feed, resumable by cursor, with
//!   fault injection) used by the demo, the dashboard and the end-to-end tests.
//! - [`demo`]: the native client kept exactly-once through a schedule of faults, with a
//!   verified summary (the `demo` binary).
//! - `rwscat` (binary): a resilient websocat.
#![forbid(unsafe_code)]

pub mod demo;
pub mod feed_server;
