//! The sans-IO core of resilient-ws: a WebSocket session that stays connected.
//!
//! A [`Session`] is one logical connection carried over as many sockets as it takes. It
//! reconnects with exponential backoff and full jitter, gives up after a failure cap,
//! never keeps two sockets alive, finds dead connections with a heartbeat, queues what the
//! application sends while offline, and resumes a feed from the last delivered cursor with
//! nothing lost and nothing delivered twice.
//!
//! It does no I/O: it never reads a clock, draws OS randomness or touches a socket. A
//! driver (`resilient-ws` for tokio, `resilient-ws-wasm` for browsers) feeds it time and
//! socket events and carries out its commands. That makes every behaviour testable with a
//! fake clock, and the same policy runs everywhere.
//!
//! # Quick start: driving a session by hand
//!
//! ```
//! use resilient_ws_core::{Command, Config, Event, Session, SocketEvent, State, Timestamp};
//!
//! let mut session = Session::new(Config::new("wss://feed.example/ws"), 42)?;
//! let t0 = Timestamp::ZERO;
//! session.connect(t0);
//!
//! // The driver opens the socket the session asks for...
//! let Some(Command::Open(open)) = session.poll_command() else { unreachable!() };
//! assert_eq!(open.url, "wss://feed.example/ws");
//!
//! // ...and reports what happened on it, tagged with its id.
//! session.handle_socket(open.conn, SocketEvent::Opened, t0);
//! assert_eq!(session.state(), &State::Open);
//!
//! // Sends leave through the open socket, in order.
//! session.send("hello".into(), t0)?;
//! assert!(matches!(session.poll_command(), Some(Command::Send { .. })));
//!
//! // The application drains events: state changes, messages, anything handed back.
//! while let Some(event) = session.poll_event() {
//!     if let Event::StateChanged { state, reason } = event {
//!         println!("{} because {reason:?}", state.name());
//!     }
//! }
//!
//! // The driver sleeps until each deadline and reports it: after 15 s without inbound
//! // traffic the heartbeat asks for a Ping.
//! let mut command = None;
//! while command.is_none() {
//!     let (deadline, _timer) = session.poll_timeout().expect("a heartbeat is armed");
//!     session.handle_timeout(deadline);
//!     command = session.poll_command();
//! }
//! assert!(matches!(command, Some(Command::Ping { .. })));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![no_std]
// Unsafe code is denied, and allowed in one place: reading a `Text` that was checked as
// UTF-8 when it was made (see `payload`).
#![deny(unsafe_code)]

// No `std`: the browser build links no std panic or formatting machinery it does not use.
extern crate alloc;
#[cfg(test)]
extern crate std;

mod backoff;
mod command;
mod config;
mod epoch;
mod error;
mod event;
mod heartbeat;
mod ids;
mod input;
#[cfg(feature = "json")]
mod json_cursor;
mod payload;
mod queue;
mod redact;
mod resume;
mod retry;
mod rng;
mod session;
mod stats;
mod time;
mod timer;

pub use backoff::{BackoffConfig, MIN_DELAY_AFTER_FAILURE};
pub use command::{Command, OpenRequest};
pub use config::Config;
pub use epoch::{Welcome, WelcomeReader};
pub use error::{CloseError, ConfigError, SendError, check_close};
pub use event::{Event, Failure, Reason, State};
pub use heartbeat::{HeartbeatConfig, Probe};
pub use ids::{ConnId, MsgId};
pub use input::SocketEvent;
#[cfg(feature = "json")]
pub use json_cursor::{json_cursor, json_welcome};
pub use payload::{Binary, Payload, Text};
pub use queue::{QueueBounds, QueueUsage, Unsent};
pub use redact::redact_url;
pub use resume::{Cursor, CursorExtractor, ResumeMessage, ResumeMode, with_query_param};
pub use retry::{Disconnect, RetryAction, RetryPolicy, RetryPredicate, default_action};
pub use session::Session;
pub use stats::Stats;
pub use time::Timestamp;
pub use timer::Timer;
