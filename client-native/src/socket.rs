//! Opening a socket, and what its end means: the handshake request built from the
//! settings, the provider and the resume parameter; and tungstenite's errors and close
//! frames turned into the session's [`Disconnect`].

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use resilient_ws_core::{Disconnect, OpenRequest};
use rustls::ClientConfig;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;

use crate::handshake::{Handshake, Stream, Target};
use crate::request::{AttemptInfo, ConnectRequest, ProviderFuture, RequestProvider};

/// What every socket of a client shares.
pub(crate) struct SocketSettings {
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) protocols: Vec<String>,
    pub(crate) provider: Option<RequestProvider>,
    pub(crate) websocket: WebSocketConfig,
    pub(crate) tls: Arc<ClientConfig>,
}

/// The attempt's request from the provider, if the client has one.
pub(crate) fn provide(open: &OpenRequest, settings: &SocketSettings) -> Option<ProviderFuture> {
    let provider = settings.provider.as_ref()?;
    Some(provider(AttemptInfo {
        conn: open.conn,
        attempt: open.attempt,
        cursor: open.cursor,
    }))
}

/// Performs the handshake for `request` (the configured URL with the resume parameter, or
/// the provider's with it added): the configured and provided headers, the resume header,
/// and the subprotocols.
pub(crate) async fn connect(
    request: ConnectRequest,
    resume_header: Option<(String, String)>,
    settings: Arc<SocketSettings>,
    written: Arc<AtomicU64>,
) -> Result<Stream, Disconnect> {
    let target = Target::parse(&request.url).map_err(|error| Disconnect::Abnormal {
        detail: format!("invalid request URL: {error}"),
    })?;
    let mut headers = Vec::new();
    for (name, value) in settings
        .headers
        .iter()
        .chain(&request.headers)
        .chain(&resume_header)
    {
        // Parsing as HTTP rejects line breaks, so no header can smuggle another.
        if HeaderName::from_bytes(name.as_bytes()).is_err() || HeaderValue::from_str(value).is_err()
        {
            return Err(Disconnect::Abnormal {
                detail: format!("invalid request header {name:?}"),
            });
        }
        headers.push((name.as_str(), value.as_str()));
    }
    Handshake {
        target,
        headers,
        protocols: &settings.protocols,
        websocket: settings.websocket,
        tls: Arc::clone(&settings.tls),
        written,
    }
    .open()
    .await
}

/// A write failed and the reader could not say why in time.
pub(crate) fn write_error(error: tungstenite::Error) -> Disconnect {
    use tungstenite::Error;
    use tungstenite::error::ProtocolError;
    match error {
        Error::Protocol(ProtocolError::SendAfterClosing) | Error::AlreadyClosed => {
            Disconnect::Abnormal {
                detail: "the connection closed while sending".into(),
            }
        }
        other => stream_error(other),
    }
}

pub(crate) fn closed_by_server(frame: Option<CloseFrame>) -> Disconnect {
    match frame {
        Some(frame) => Disconnect::Closed {
            code: frame.code.into(),
            reason: frame.reason.to_string(),
        },
        None => Disconnect::Closed {
            code: 1005,
            reason: String::new(),
        },
    }
}

/// An error on an open connection.
pub(crate) fn stream_error(error: tungstenite::Error) -> Disconnect {
    use tungstenite::Error;
    use tungstenite::error::ProtocolError;
    match error {
        Error::Capacity(error) => Disconnect::Protocol {
            code: 1009,
            detail: error.to_string(),
        },
        // A reset is the network's doing, not the server breaking the protocol.
        Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => Disconnect::Abnormal {
            detail: "connection reset without a close frame".into(),
        },
        Error::Protocol(error) => Disconnect::Protocol {
            code: 1002,
            detail: error.to_string(),
        },
        Error::Utf8(detail) => Disconnect::Protocol {
            code: 1007,
            detail: format!("invalid UTF-8 in a text message: {detail}"),
        },
        other => Disconnect::Abnormal {
            detail: other.to_string(),
        },
    }
}
