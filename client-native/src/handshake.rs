//! The opening handshake: TCP, TLS and the HTTP upgrade, done here rather than by
//! tungstenite's client so that nothing logs the request. tungstenite traces the whole
//! upgrade request through `log`, URL query and header values included, and those carry
//! tokens.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::SystemTime;

use resilient_ws_core::Disconnect;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::http::Uri;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use crate::burst::BurstReader;
use crate::retry_after::parse_retry_after;
use crate::written::CountWrites;

/// An open WebSocket, read in bursts while data streams in.
pub(crate) type Stream = WebSocketStream<BurstReader<CountWrites<Box<dyn Transport>>>>;

/// The connection under the WebSocket: TCP or TLS over TCP. Boxed, so that a plain
/// connection carries no room for TLS state it never uses (about 1 KB).
pub(crate) trait Transport: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> Transport for T {}

/// The largest handshake response accepted.
const MAX_RESPONSE_HEAD: usize = 16 * 1024;
/// Most response headers parsed.
const MAX_RESPONSE_HEADERS: usize = 64;

/// Where to connect, from a `ws://` or `wss://` URL.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Target {
    tls: bool,
    /// The host as written in the URL (IPv6 in brackets), for the Host header.
    host: String,
    port: u16,
    path_and_query: String,
}

impl Target {
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        let uri: Uri = url.parse().map_err(|error| format!("{error}"))?;
        let tls = match uri.scheme_str() {
            Some(scheme) if scheme.eq_ignore_ascii_case("wss") => true,
            Some(scheme) if scheme.eq_ignore_ascii_case("ws") => false,
            _ => return Err("the scheme must be ws or wss".into()),
        };
        let host = uri
            .host()
            .filter(|host| !host.is_empty())
            .ok_or("the URL has no host")?;
        let path_and_query = uri.path_and_query().map_or("/", |pq| pq.as_str());
        Ok(Self {
            tls,
            host: host.to_owned(),
            port: uri.port_u16().unwrap_or(if tls { 443 } else { 80 }),
            path_and_query: if path_and_query.is_empty() {
                "/".into()
            } else {
                path_and_query.into()
            },
        })
    }

    /// The host without IPv6 brackets, for DNS and TLS.
    fn bare_host(&self) -> &str {
        self.host.trim_start_matches('[').trim_end_matches(']')
    }

    fn host_header(&self) -> String {
        let default_port = if self.tls { 443 } else { 80 };
        if self.port == default_port {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// One attempt's handshake: where, with which headers (already validated as HTTP) and
/// subprotocols.
pub(crate) struct Handshake<'a> {
    pub(crate) target: Target,
    pub(crate) headers: Vec<(&'a str, &'a str)>,
    pub(crate) protocols: &'a [String],
    pub(crate) websocket: WebSocketConfig,
    pub(crate) tls: Arc<ClientConfig>,
    /// Counts the bytes the OS accepts once the WebSocket is open (see `written`).
    pub(crate) written: Arc<AtomicU64>,
}

impl Handshake<'_> {
    /// Connects and upgrades. The session's connect deadline bounds it from outside.
    pub(crate) async fn open(self) -> Result<Stream, Disconnect> {
        let tcp = TcpStream::connect((self.target.bare_host(), self.target.port))
            .await
            .map_err(|error| abnormal(format!("TCP connect failed: {error}")))?;
        // Small frames must not wait for Nagle.
        tcp.set_nodelay(true)
            .map_err(|error| abnormal(error.to_string()))?;
        let mut stream: Box<dyn Transport> = if self.target.tls {
            let name =
                ServerName::try_from(self.target.bare_host().to_owned()).map_err(|error| {
                    Disconnect::Tls {
                        detail: error.to_string(),
                    }
                })?;
            let tls = TlsConnector::from(Arc::clone(&self.tls))
                .connect(name, tcp)
                .await
                .map_err(tls_error)?;
            Box::new(tls)
        } else {
            Box::new(tcp)
        };
        let key = generate_key();
        stream
            .write_all(self.request(&key).as_bytes())
            .await
            .map_err(|error| abnormal(format!("sending the handshake failed: {error}")))?;
        let leftover = read_response(&mut stream, &key, self.protocols).await?;
        Ok(WebSocketStream::from_partially_read(
            BurstReader::new(CountWrites::new(stream, self.written)),
            leftover,
            Role::Client,
            Some(self.websocket),
        )
        .await)
    }

    fn request(&self, key: &str) -> String {
        let mut request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n",
            self.target.path_and_query,
            self.target.host_header(),
        );
        if !self.protocols.is_empty() {
            request.push_str(&format!(
                "Sec-WebSocket-Protocol: {}\r\n",
                self.protocols.join(", ")
            ));
        }
        for (name, value) in &self.headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        request
    }
}

/// Reads and checks the response head; returns the bytes read past it (the first frames).
async fn read_response<S: AsyncRead + Unpin>(
    stream: &mut S,
    key: &str,
    offered: &[String],
) -> Result<Vec<u8>, Disconnect> {
    let mut buffer = Vec::with_capacity(1024);
    loop {
        let read = stream
            .read_buf(&mut buffer)
            .await
            .map_err(|error| abnormal(format!("reading the handshake response failed: {error}")))?;
        if read == 0 {
            return Err(abnormal("connection closed during the handshake".into()));
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_RESPONSE_HEADERS];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&buffer) {
            Ok(httparse::Status::Complete(head_len)) => {
                check_response(&response, key, offered)?;
                return Ok(buffer.split_off(head_len));
            }
            Ok(httparse::Status::Partial) if buffer.len() <= MAX_RESPONSE_HEAD => {}
            Ok(httparse::Status::Partial) => {
                return Err(abnormal("handshake response head is too large".into()));
            }
            Err(error) => return Err(abnormal(format!("malformed handshake response: {error}"))),
        }
    }
}

fn check_response(
    response: &httparse::Response<'_, '_>,
    key: &str,
    offered: &[String],
) -> Result<(), Disconnect> {
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|header| header.name.eq_ignore_ascii_case(name))
            .and_then(|header| std::str::from_utf8(header.value).ok())
            .map(str::trim)
    };
    let status = response.code.unwrap_or(0);
    if status != 101 {
        return Err(Disconnect::Rejected {
            status,
            retry_after: header("retry-after")
                .and_then(|value| parse_retry_after(value, SystemTime::now())),
        });
    }
    let upgraded = header("upgrade").is_some_and(|value| value.eq_ignore_ascii_case("websocket"))
        && header("connection").is_some_and(|value| {
            value
                .split(',')
                .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
        });
    if !upgraded {
        return Err(protocol(
            "the server answered 101 without upgrading to WebSocket",
        ));
    }
    if header("sec-websocket-accept") != Some(derive_accept_key(key.as_bytes()).as_str()) {
        return Err(protocol(
            "the server's Sec-WebSocket-Accept does not match the key",
        ));
    }
    if let Some(chosen) = header("sec-websocket-protocol") {
        if !offered.iter().any(|protocol| protocol == chosen) {
            return Err(protocol(
                "the server chose a subprotocol that was not offered",
            ));
        }
    }
    Ok(())
}

fn abnormal(detail: String) -> Disconnect {
    Disconnect::Abnormal { detail }
}

fn protocol(detail: &str) -> Disconnect {
    Disconnect::Protocol {
        code: 1002,
        detail: detail.to_owned(),
    }
}

/// TLS failures come back as I/O errors wrapping rustls's; those are [`Disconnect::Tls`].
fn tls_error(error: std::io::Error) -> Disconnect {
    match error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => Disconnect::Tls {
            detail: tls.to_string(),
        },
        None => abnormal(format!("TLS handshake failed: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_from_urls() {
        let target = Target::parse("wss://Feed.example/ws?token=x").unwrap();
        assert_eq!(
            target,
            Target {
                tls: true,
                host: "Feed.example".into(),
                port: 443,
                path_and_query: "/ws?token=x".into()
            }
        );
        assert_eq!(target.host_header(), "Feed.example");
        let target = Target::parse("ws://[::1]:9001").unwrap();
        assert_eq!(
            (
                target.bare_host(),
                target.port,
                target.path_and_query.as_str()
            ),
            ("::1", 9001, "/")
        );
        assert_eq!(target.host_header(), "[::1]:9001");
        assert!(Target::parse("http://h/").is_err());
        assert!(Target::parse("ws:///nohost").is_err());
    }

    use std::time::Duration;

    #[tokio::test]
    async fn responses_are_checked() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let accept = derive_accept_key(key.as_bytes());
        let mut good = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        )
        .into_bytes();
        good.extend_from_slice(b"\x81\x02hi");
        let leftover = read_response(&mut good.as_slice(), key, &[]).await.unwrap();
        assert_eq!(leftover, b"\x81\x02hi");

        let refused =
            "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            read_response(&mut refused.as_bytes(), key, &[]).await,
            Err(Disconnect::Rejected {
                status: 503,
                retry_after: Some(Duration::from_secs(7))
            })
        );

        let wrong_key = "HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nConnection: upgrade\r\nSec-WebSocket-Accept: nope\r\n\r\n";
        assert!(matches!(
            read_response(&mut wrong_key.as_bytes(), key, &[]).await,
            Err(Disconnect::Protocol { code: 1002, .. })
        ));

        let cut = "HTTP/1.1 101 OK\r\nUpgr";
        assert!(matches!(
            read_response(&mut cut.as_bytes(), key, &[]).await,
            Err(Disconnect::Abnormal { .. })
        ));
    }
}
