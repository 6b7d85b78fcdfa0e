//! Just enough HTTP/1.1 for one request per connection: read and parse a request head (bounded in
//! size and time), and write a small response.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest request head accepted; anything longer is answered with 431.
pub(crate) const MAX_REQUEST_HEAD_BYTES: usize = 8 * 1024;
const HEAD_END: &[u8] = b"\r\n\r\n";
/// After answering, how long to drain what the client still sends, so closing does not reset the
/// connection before it has read the response.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);
const DRAIN_LIMIT_BYTES: usize = 64 * 1024;

/// A parsed request head. Header names are kept as sent; look-ups ignore case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestHead {
    pub(crate) method: String,
    pub(crate) path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
}

impl RequestHead {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The raw (not percent-decoded) value of a query parameter; `Some("")` for `?flag`.
    pub(crate) fn query(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.as_str())
    }

    /// A query parameter parsed as `T`; `Ok(None)` when absent. The error names the parameter
    /// but never echoes its value (query values stay out of answers and logs).
    pub(crate) fn parse_query<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>, String> {
        self.query(key)
            .map(|value| {
                value
                    .parse()
                    .map_err(|_| format!("invalid value for '{key}'"))
            })
            .transpose()
    }
}

/// Why no request head could be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HeadError {
    #[error("request head larger than {MAX_REQUEST_HEAD_BYTES} bytes")]
    TooLarge,
    #[error("malformed request head: {0}")]
    Malformed(&'static str),
    #[error("request head not received in time")]
    TimedOut,
    #[error("connection closed before the request head ended")]
    Closed,
    #[error("reading the request head failed: {0}")]
    Io(#[from] io::Error),
}

impl HeadError {
    /// The status to answer with, if the client can still be answered.
    pub(crate) fn status(&self) -> Option<u16> {
        match self {
            Self::TooLarge => Some(431),
            Self::Malformed(_) => Some(400),
            Self::TimedOut => Some(408),
            Self::Closed | Self::Io(_) => None,
        }
    }
}

/// Reads until the end of the request head. Returns the parsed head and every byte read, which
/// may run past the head and must be replayed to whoever reads the stream next.
pub(crate) async fn read_request_head<S: AsyncRead + Unpin>(
    stream: &mut S,
    timeout: Duration,
) -> Result<(RequestHead, Vec<u8>), HeadError> {
    let mut bytes = Vec::with_capacity(1024);
    let head_len = tokio::time::timeout(timeout, read_until_head_end(stream, &mut bytes))
        .await
        .map_err(|_| HeadError::TimedOut)??;
    let head = parse_request_head(&bytes[..head_len])?;
    Ok((head, bytes))
}

/// Returns the length of the head including its terminating blank line.
async fn read_until_head_end<S: AsyncRead + Unpin>(
    stream: &mut S,
    bytes: &mut Vec<u8>,
) -> Result<usize, HeadError> {
    let mut chunk = [0_u8; 1024];
    loop {
        let searched_up_to = bytes.len().saturating_sub(HEAD_END.len() - 1);
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Err(HeadError::Closed);
        }
        bytes.extend_from_slice(&chunk[..read]);
        if let Some(end) = find(&bytes[searched_up_to..], HEAD_END) {
            let head_len = searched_up_to + end + HEAD_END.len();
            return if head_len > MAX_REQUEST_HEAD_BYTES {
                Err(HeadError::TooLarge)
            } else {
                Ok(head_len)
            };
        }
        if bytes.len() > MAX_REQUEST_HEAD_BYTES {
            return Err(HeadError::TooLarge);
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Parses `METHOD SP /target SP HTTP/1.x CRLF (name: value CRLF)* CRLF`.
pub(crate) fn parse_request_head(head: &[u8]) -> Result<RequestHead, HeadError> {
    let text = std::str::from_utf8(head).map_err(|_| HeadError::Malformed("not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::Malformed(
            "request line is not METHOD TARGET VERSION",
        ));
    };
    if method.is_empty() || !method.bytes().all(|byte| byte.is_ascii_uppercase()) {
        return Err(HeadError::Malformed("bad method"));
    }
    if !version.starts_with("HTTP/1.") {
        return Err(HeadError::Malformed("not HTTP/1.x"));
    }
    if !target.starts_with('/') {
        return Err(HeadError::Malformed("target is not an absolute path"));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key.to_owned(), value.to_owned())
        })
        .collect();
    let mut headers = Vec::new();
    for line in lines.take_while(|line| !line.is_empty()) {
        let (name, value) = line
            .split_once(':')
            .ok_or(HeadError::Malformed("header line without a colon"))?;
        if name.is_empty() || name.bytes().any(|byte| byte.is_ascii_whitespace()) {
            return Err(HeadError::Malformed("bad header name"));
        }
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    Ok(RequestHead {
        method: method.to_owned(),
        path: path.to_owned(),
        query,
        headers,
    })
}

/// A complete, small HTTP response; the connection is closed after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) body: Vec<u8>,
    /// An answer to `HEAD`: the headers (Content-Length included) without the body.
    pub(crate) head_only: bool,
}

impl Response {
    pub(crate) fn empty(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            head_only: false,
        }
    }

    /// A body of the given type (a served file).
    pub(crate) fn bytes(status: u16, content_type: &str, body: Vec<u8>) -> Self {
        Self {
            status,
            headers: vec![("Content-Type", content_type.to_owned())],
            body,
            head_only: false,
        }
    }

    /// A JSON answer any web page may read (the dashboard is served from elsewhere during development).
    pub(crate) fn json(status: u16, body: String) -> Self {
        Self {
            status,
            headers: vec![
                ("Content-Type", "application/json".into()),
                ("Access-Control-Allow-Origin", "*".into()),
                ("Cache-Control", "no-store".into()),
            ],
            body: body.into_bytes(),
            head_only: false,
        }
    }

    pub(crate) fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The same answer for a `HEAD` request.
    pub(crate) fn for_head(mut self) -> Self {
        self.head_only = true;
        self
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut text = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (name, value) in &self.headers {
            text.push_str(&format!("{name}: {value}\r\n"));
        }
        text.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.body.len()
        ));
        let mut bytes = text.into_bytes();
        if !self.head_only {
            bytes.extend_from_slice(&self.body);
        }
        bytes
    }
}

/// Writes the response, ends our side of the connection, then drains the client's side briefly.
pub(crate) async fn respond<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    response: &Response,
) -> io::Result<()> {
    stream.write_all(&response.to_bytes()).await?;
    stream.shutdown().await?;
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
        let mut chunk = [0_u8; 1024];
        let mut drained = 0;
        while drained < DRAIN_LIMIT_BYTES {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(read) => drained += read,
            }
        }
    })
    .await;
    Ok(())
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_request_line_query_and_headers() {
        let head = parse_request_head(
            b"GET /feed?cursor=12&x HTTP/1.1\r\nHost: a\r\nupgrade:  websocket \r\n\r\n",
        )
        .expect("valid head");
        assert_eq!(head.method, "GET");
        assert_eq!(head.path, "/feed");
        assert_eq!(head.query("cursor"), Some("12"));
        assert_eq!(head.query("x"), Some(""));
        assert_eq!(head.query("y"), None);
        assert_eq!(head.header("Upgrade"), Some("websocket"));
    }

    #[test]
    fn rejects_malformed_heads() {
        for bad in [
            &b"GARBAGE\r\n\r\n"[..],
            b"GET feed HTTP/1.1\r\n\r\n",
            b"GET / HTTP/2\r\n\r\n",
            b"GET / HTTP/1.1\r\nno colon here\r\n\r\n",
            b"get / HTTP/1.1\r\n\r\n",
        ] {
            assert!(
                matches!(parse_request_head(bad), Err(HeadError::Malformed(_))),
                "{bad:?}"
            );
        }
    }

    #[tokio::test]
    async fn keeps_bytes_read_past_the_head() {
        let mut input: &[u8] = b"GET / HTTP/1.1\r\n\r\nextra";
        let (head, bytes) = read_request_head(&mut input, Duration::from_secs(1))
            .await
            .expect("valid head");
        assert_eq!(head.path, "/");
        assert!(bytes.ends_with(b"\r\n\r\nextra"));
    }

    #[tokio::test]
    async fn oversized_head_is_rejected() {
        let long = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(9000));
        let mut input = long.as_bytes();
        let result = read_request_head(&mut input, Duration::from_secs(1)).await;
        assert!(matches!(result, Err(HeadError::TooLarge)));
    }
}
