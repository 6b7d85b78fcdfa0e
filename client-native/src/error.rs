//! Errors of the native client.

use resilient_ws_core::{ConfigError, SendError};

/// A client that cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A session setting cannot work.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The URL cannot be turned into a handshake request.
    #[error("invalid URL: {0}")]
    Url(String),
    /// A header name or value is not valid HTTP.
    #[error("invalid header {name:?}")]
    Header {
        /// The header's name.
        name: String,
    },
    /// A subprotocol name is not an HTTP token.
    #[error("invalid subprotocol {protocol:?}: it must be an HTTP token")]
    Subprotocol {
        /// The offending name.
        protocol: String,
    },
    /// The TLS configuration failed (for example an unparsable root certificate).
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// `connect` was called outside a tokio runtime.
    #[error("connect() must be called inside a tokio runtime")]
    NoRuntime,
}

/// A JSON message that could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum SendJsonError {
    /// The value could not be encoded.
    #[error("could not encode the message as JSON: {0}")]
    Encode(#[from] serde_json::Error),
    /// The session did not accept the message.
    #[error(transparent)]
    Send(#[from] SendError),
}
