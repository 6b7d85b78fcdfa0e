//! What each connection attempt asks the server for, rebuilt on every attempt.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use resilient_ws_core::{ConnId, Cursor, redact_url};

/// The URL and headers of one attempt's handshake. Its `Debug` hides query and header
/// values, so printing it cannot leak a token.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectRequest {
    /// The `ws://` or `wss://` URL.
    pub url: String,
    /// Extra request headers (for example `Authorization`). Their values are never logged.
    pub headers: Vec<(String, String)>,
}

impl ConnectRequest {
    /// A request for `url` with no extra headers.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            headers: Vec::new(),
        }
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

impl fmt::Debug for ConnectRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("ConnectRequest")
            .field("url", &redact_url(&self.url))
            .field("headers", &header_names)
            .finish()
    }
}

/// What a [`RequestProvider`] is told about the attempt it builds a request for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttemptInfo {
    /// The socket the attempt will open.
    pub conn: ConnId,
    /// The attempt number within the current run of failures, from 1.
    pub attempt: u32,
    /// The cursor the attempt resumes from. The resume query parameter or header is added
    /// to the provided request afterwards; the provider need not add it.
    pub cursor: Option<Cursor>,
}

/// Why a provider could not build a request; the attempt fails and is retried with backoff.
pub type ProviderError = Box<dyn std::error::Error + Send + Sync>;

/// The future a provider returns.
pub type ProviderFuture =
    Pin<Box<dyn Future<Output = Result<ConnectRequest, ProviderError>> + Send>>;

/// Builds each attempt's request, so a fresh token is fetched on every reconnect.
pub type RequestProvider = Arc<dyn Fn(AttemptInfo) -> ProviderFuture + Send + Sync>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_tokens() {
        let request = ConnectRequest::new("wss://h/feed?token=secret")
            .header("Authorization", "Bearer secret");
        let shown = format!("{request:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("Authorization"), "{shown}");
    }
}
