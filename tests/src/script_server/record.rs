//! What the script server remembers: every upgrade request, and what each client sent.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::Request;

/// An upgrade request as the server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// Path and query, e.g. `/feed?after=41`.
    pub path: String,
    /// Headers in arrival order, names lowercase.
    pub headers: Vec<(String, String)>,
}

impl RecordedRequest {
    fn from_request(request: &Request) -> Self {
        let uri = request.uri();
        let path = uri
            .path_and_query()
            .map_or_else(|| uri.path().to_owned(), |path| path.as_str().to_owned());
        let headers = request
            .headers()
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_owned(), value)
            })
            .collect();
        Self { path, headers }
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The first value of query parameter `name`, as sent (not percent-decoded).
    pub fn query_param(&self, name: &str) -> Option<&str> {
        let (_, query) = self.path.split_once('?')?;
        query
            .split('&')
            .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value)
    }
}

/// A message a client sent, as the server read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
    /// A ping (the server answers it).
    Ping(Vec<u8>),
    /// A pong.
    Pong(Vec<u8>),
    /// A close frame; `code` is `None` when the frame had no body.
    Close {
        /// Close code.
        code: Option<u16>,
        /// Close reason.
        reason: String,
    },
}

impl ClientMessage {
    /// The recorded form of `message`; raw frames are never produced by reading, so `None`.
    fn from_message(message: &Message) -> Option<Self> {
        Some(match message {
            Message::Text(text) => Self::Text(text.as_str().to_owned()),
            Message::Binary(bytes) => Self::Binary(bytes.to_vec()),
            Message::Ping(bytes) => Self::Ping(bytes.to_vec()),
            Message::Pong(bytes) => Self::Pong(bytes.to_vec()),
            Message::Close(frame) => Self::Close {
                code: frame.as_ref().map(|frame| frame.code.into()),
                reason: frame
                    .as_ref()
                    .map(|frame| frame.reason.as_str().to_owned())
                    .unwrap_or_default(),
            },
            Message::Frame(_) => return None,
        })
    }
}

/// The server's memory, shared by its connection tasks.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    requests: Mutex<Vec<RecordedRequest>>,
    received: Mutex<Vec<Vec<ClientMessage>>>,
}

impl Recorder {
    /// Remembers an upgrade request.
    pub(crate) fn request(&self, request: &Request) {
        lock(&self.requests).push(RecordedRequest::from_request(request));
    }

    /// Opens the message log of a newly accepted connection.
    pub(crate) fn open_inbox(self: &Arc<Self>) -> Inbox {
        let mut received = lock(&self.received);
        received.push(Vec::new());
        Inbox {
            recorder: Arc::clone(self),
            index: received.len() - 1,
        }
    }

    /// Every upgrade request so far.
    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.requests).clone()
    }

    /// Client messages so far, one list per accepted connection.
    pub(crate) fn received(&self) -> Vec<Vec<ClientMessage>> {
        lock(&self.received).clone()
    }
}

/// The message log of one accepted connection.
#[derive(Debug)]
pub(crate) struct Inbox {
    recorder: Arc<Recorder>,
    index: usize,
}

impl Inbox {
    /// Remembers a message the client sent.
    pub(crate) fn record(&self, message: &Message) {
        if let Some(message) = ClientMessage::from_message(message) {
            lock(&self.recorder.received)[self.index].push(message);
        }
    }
}

/// A panicking test thread must not hide what was recorded before it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_headers_and_query_parameters() {
        let request = RecordedRequest {
            path: "/feed?after=41&flag&token=a%20b".to_owned(),
            headers: vec![("x-client".to_owned(), "rws".to_owned())],
        };
        assert_eq!(request.header("X-Client"), Some("rws"));
        assert_eq!(request.header("missing"), None);
        assert_eq!(request.query_param("after"), Some("41"));
        assert_eq!(request.query_param("flag"), Some(""));
        assert_eq!(request.query_param("token"), Some("a%20b"));
        assert_eq!(request.query_param("nope"), None);
    }
}
