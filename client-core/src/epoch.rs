//! Epochs: the server's word on whether the stream that follows continues the one the
//! client resumes from.
//!
//! A cursor means something only within the history that numbered it. A server that lost
//! its history (restarted without persisting it, say) numbers anew under a new epoch, and
//! one whose history no longer reaches back to the client's cursor cannot resume it
//! either. A server that speaks epochs says which at the start of every connection, in a
//! welcome the session reads instead of delivering; when the stream does not continue
//! the client's, the session reports an explicit
//! [`Event::Discontinuity`](crate::Event::Discontinuity) and stops treating lower cursors
//! as replays. `resilient-ws-server`'s hub sends such a welcome:
//! `{"type":"welcome","epoch":"…","resumed":true,"reason":"resumed",…}`.

use alloc::string::String;
use alloc::sync::Arc;

use crate::payload::Payload;

/// What a server says at the start of a connection about the stream that follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Welcome {
    /// The history the cursors that follow belong to.
    pub epoch: String,
    /// Whether the stream continues from the cursor the client sent.
    pub resumed: bool,
    /// Why, in the server's words (the hub: `fresh`, `resumed`, `epoch_changed`,
    /// `cursor_too_old`, `cursor_ahead`).
    pub reason: String,
}

/// Recognises a server's welcome among inbound messages: `Some` for the first message of
/// a connection that is one. See [`json_welcome`](crate::json_welcome) for the hub's.
pub type WelcomeReader = Arc<dyn Fn(&Payload) -> Option<Welcome> + Send + Sync>;
