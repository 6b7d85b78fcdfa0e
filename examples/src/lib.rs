//! Examples for resilient-ws.
//!
//! - [`feed_server`]: the reference feed server (numbered live feed, resumable by cursor, with
//!   fault injection) used by the demo, the dashboard and the end-to-end tests.
#![forbid(unsafe_code)]

pub mod feed_server;
