//! End-to-end test support for resilient-ws.
//!
//! Two servers that bind 127.0.0.1 on an ephemeral port and make failures happen on demand:
//! - [`FaultProxy`], a TCP proxy placed between a client and a real server that resets,
//!   blackholes, stalls, slices, cuts, slows or delays the bytes it forwards;
//! - [`ScriptServer`], a WebSocket server that follows a [`Script`]: one [`Behaviour`] per
//!   connection (an HTTP rejection or a list of [`Step`]s), and records what clients sent.
//!
//! [`Recorder`] keeps a client's events with their times for assertions.
//!
//! Both servers count connections exactly (accepted, live now, most live at once), so a suite can assert
//! that a client never holds two sockets, and both shut down without leaving tasks behind.
#![forbid(unsafe_code)]

mod accept_loop;
mod live_count;
pub mod matrix;
pub mod proxy;
mod recorder;
pub mod script_server;
pub mod wait;

pub use proxy::{Fault, FaultProxy};
pub use recorder::Recorder;
pub use script_server::{
    Behaviour, ClientMessage, RecordedRequest, Script, ScriptServer, ScriptServerError, Step,
};
