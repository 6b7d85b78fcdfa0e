//! An optional tap on the client-to-server direction: which WebSocket messages each client
//! actually put on the wire, and how many bytes it has written that the proxy has not read yet.
//!
//! A message the proxy read had left the client's process: it was written to the client's OS
//! socket. A message the server never recorded is then either one of those (lost with a
//! connection that broke after the client wrote it, which WebSocket allows) or one the proxy
//! never saw: still in the client's OS buffers when the connection broke (measured here from
//! the kernel's TCP table), or never written to the socket at all (the client's own loss).
//!
//! Off unless the proxy was started with
//! [`FaultProxy::start_tapped`](super::FaultProxy::start_tapped).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Mutex, PoisonError};

use super::audit::table_address;

/// The kernel's table of IPv4 TCP sockets.
const TCP_TABLE: &str = "/proc/net/tcp";
/// The end of an HTTP request head.
const HEAD_END: &[u8] = b"\r\n\r\n";
/// Largest frame payload the tap parses; a larger one stops the tap on that connection.
const MAX_FRAME: u64 = 64 * 1024 * 1024;

/// A WebSocket message a client wrote, as the proxy read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TappedMessage {
    /// A text message.
    Text(String),
    /// A binary message.
    Binary(Vec<u8>),
}

/// What the tap knows about one connection.
#[derive(Debug)]
struct TappedConnection {
    client: SocketAddr,
    parser: FrameParser,
    messages: Vec<TappedMessage>,
    /// The most unread bytes measured, by a query or at the connection's end.
    most_unread: u64,
}

/// The tap of one proxy: per accept index, the client's messages read so far.
#[derive(Debug)]
pub(crate) struct UpstreamTap {
    proxy: SocketAddr,
    connections: Mutex<BTreeMap<u64, TappedConnection>>,
}

impl UpstreamTap {
    pub(crate) fn new(proxy: SocketAddr) -> Self {
        Self {
            proxy,
            connections: Mutex::default(),
        }
    }

    /// Starts tapping connection `index` from `client`.
    pub(crate) fn on_accept(&self, index: u64, client: SocketAddr) {
        self.lock().insert(
            index,
            TappedConnection {
                client,
                parser: FrameParser::default(),
                messages: Vec::new(),
                most_unread: 0,
            },
        );
    }

    /// Bytes the proxy read from the client on connection `index`.
    pub(crate) fn on_read(&self, index: u64, bytes: &[u8]) {
        let mut connections = self.lock();
        if let Some(connection) = connections.get_mut(&index) {
            let TappedConnection {
                parser, messages, ..
            } = connection;
            parser.push(bytes, messages);
        }
    }

    /// Every connection's messages, by accept index.
    pub(crate) fn messages(&self) -> Vec<(u64, Vec<TappedMessage>)> {
        self.lock()
            .iter()
            .map(|(index, connection)| (*index, connection.messages.clone()))
            .collect()
    }

    /// For every tapped connection whose client socket is still in the kernel's table: bytes
    /// the client has written that the proxy has not read (the client socket's send queue
    /// plus the proxy socket's receive queue). `None` where the table cannot be read.
    pub(crate) fn unread_bytes(&self) -> Option<Vec<(u64, u64)>> {
        let clients: Vec<(u64, SocketAddr)> = self
            .lock()
            .iter()
            .map(|(index, connection)| (*index, connection.client))
            .collect();
        let unread = self.measure(&clients)?;
        self.note(&unread);
        Some(unread)
    }

    /// Measures connection `index` as it ends, before the proxy closes its sockets: what
    /// the client wrote and the proxy never read is lost with them.
    pub(crate) fn on_end(&self, index: u64) {
        let client = self.lock().get(&index).map(|connection| connection.client);
        if let Some(unread) = client.and_then(|client| self.measure(&[(index, client)])) {
            self.note(&unread);
        }
    }

    /// The most unread bytes measured per connection, by [`unread_bytes`](Self::unread_bytes)
    /// or at its end.
    pub(crate) fn most_unread(&self) -> Vec<(u64, u64)> {
        self.lock()
            .iter()
            .map(|(index, connection)| (*index, connection.most_unread))
            .collect()
    }

    fn measure(&self, clients: &[(u64, SocketAddr)]) -> Option<Vec<(u64, u64)>> {
        let table = std::fs::read_to_string(TCP_TABLE).ok()?;
        let proxy = table_address(self.proxy)?;
        let mut unread = Vec::new();
        for (index, client) in clients {
            let Some(client) = table_address(*client) else {
                continue;
            };
            let sent = queues(&table, &client, &proxy).map(|(tx, _)| tx);
            let received = queues(&table, &proxy, &client).map(|(_, rx)| rx);
            if sent.is_some() || received.is_some() {
                unread.push((*index, sent.unwrap_or(0) + received.unwrap_or(0)));
            }
        }
        Some(unread)
    }

    fn note(&self, unread: &[(u64, u64)]) {
        let mut connections = self.lock();
        for (index, bytes) in unread {
            if let Some(connection) = connections.get_mut(index) {
                connection.most_unread = connection.most_unread.max(*bytes);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, TappedConnection>> {
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// The send and receive queues (bytes) of the socket from `local` to `remote`, as the table
/// prints them (`tx_queue:rx_queue`, hex).
fn queues(table: &str, local: &str, remote: &str) -> Option<(u64, u64)> {
    table.lines().skip(1).find_map(|line| {
        let mut fields = line.split_whitespace().skip(1);
        let (entry_local, entry_remote, _state, entry_queues) = (
            fields.next()?,
            fields.next()?,
            fields.next()?,
            fields.next()?,
        );
        if entry_local != local || entry_remote != remote {
            return None;
        }
        let (tx, rx) = entry_queues.split_once(':')?;
        Some((
            u64::from_str_radix(tx, 16).ok()?,
            u64::from_str_radix(rx, 16).ok()?,
        ))
    })
}

/// Parses the client's side of a WebSocket connection: the HTTP request head, then masked
/// frames. Control frames are skipped; fragmented messages are joined.
#[derive(Debug, Default)]
struct FrameParser {
    buffer: Vec<u8>,
    past_head: bool,
    /// A fragmented message being joined: whether it is text, and its bytes so far.
    partial: Option<(bool, Vec<u8>)>,
    /// Set on anything it cannot follow: it stops parsing that connection.
    lost: bool,
}

impl FrameParser {
    fn push(&mut self, bytes: &[u8], messages: &mut Vec<TappedMessage>) {
        if self.lost {
            return;
        }
        self.buffer.extend_from_slice(bytes);
        if !self.past_head {
            let Some(end) = self
                .buffer
                .windows(HEAD_END.len())
                .position(|window| window == HEAD_END)
            else {
                return;
            };
            self.buffer.drain(..end + HEAD_END.len());
            self.past_head = true;
        }
        let mut start = 0;
        while let Some(frame) = parse_frame(&self.buffer[start..]) {
            let Ok(frame) = frame else {
                self.lost = true;
                self.buffer = Vec::new();
                return;
            };
            start += frame.len;
            self.take(frame, messages);
        }
        self.buffer.drain(..start);
    }

    fn take(&mut self, frame: Frame, messages: &mut Vec<TappedMessage>) {
        let (is_text, mut payload) = match frame.opcode {
            0 => match self.partial.take() {
                Some((is_text, mut joined)) => {
                    joined.extend_from_slice(&frame.payload);
                    (is_text, joined)
                }
                None => return,
            },
            1 => (true, frame.payload),
            2 => (false, frame.payload),
            _ => return, // close, ping, pong
        };
        if !frame.fin {
            self.partial = Some((is_text, std::mem::take(&mut payload)));
            return;
        }
        messages.push(if is_text {
            TappedMessage::Text(String::from_utf8_lossy(&payload).into_owned())
        } else {
            TappedMessage::Binary(payload)
        });
    }
}

/// One frame, unmasked.
#[derive(Debug)]
struct Frame {
    fin: bool,
    opcode: u8,
    payload: Vec<u8>,
    /// Bytes it took on the wire.
    len: usize,
}

/// The frame at the start of `bytes`: `None` while incomplete, an error when it cannot be
/// a frame the tap follows.
fn parse_frame(bytes: &[u8]) -> Option<Result<Frame, ()>> {
    let [first, second, rest @ ..] = bytes else {
        return None;
    };
    let masked = second & 0x80 != 0;
    let (length, rest) = match second & 0x7F {
        126 => {
            let [high, low, rest @ ..] = rest else {
                return None;
            };
            (u64::from(u16::from_be_bytes([*high, *low])), rest)
        }
        127 => {
            let (length, rest) = rest.split_first_chunk::<8>()?;
            (u64::from_be_bytes(*length), rest)
        }
        short => (u64::from(short), rest),
    };
    if length > MAX_FRAME {
        return Some(Err(()));
    }
    let length = usize::try_from(length).ok()?;
    let (mask, rest) = if masked {
        let (mask, rest) = rest.split_first_chunk::<4>()?;
        (Some(*mask), rest)
    } else {
        (None, rest)
    };
    if rest.len() < length {
        return None;
    }
    let mut payload = rest[..length].to_vec();
    if let Some(mask) = mask {
        for (byte, key) in payload.iter_mut().zip(mask.iter().cycle()) {
            *byte ^= key;
        }
    }
    Some(Ok(Frame {
        fin: first & 0x80 != 0,
        opcode: first & 0x0F,
        payload,
        len: bytes.len() - rest.len() + length,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame.
    fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [1, 2, 3, 4];
        let mut bytes = vec![(u8::from(fin) << 7) | opcode];
        match payload.len() {
            len @ 0..=125 => bytes.push(0x80 | len as u8),
            len @ 126..=65535 => {
                bytes.push(0x80 | 126);
                bytes.extend_from_slice(&(len as u16).to_be_bytes());
            }
            len => {
                bytes.push(0x80 | 127);
                bytes.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        bytes.extend_from_slice(&mask);
        bytes.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, k)| b ^ k));
        bytes
    }

    #[test]
    fn reads_messages_after_the_head_in_any_split() {
        let mut wire = b"GET /feed HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
        wire.extend(frame(true, 1, b"one"));
        wire.extend(frame(true, 9, b"ping"));
        wire.extend(frame(false, 1, b"tw"));
        wire.extend(frame(true, 0, b"o"));
        wire.extend(frame(true, 2, &[7; 300]));
        wire.extend(frame(true, 8, &[3, 232]));
        for step in [1, 2, 3, 7, wire.len()] {
            let mut parser = FrameParser::default();
            let mut messages = Vec::new();
            for piece in wire.chunks(step) {
                parser.push(piece, &mut messages);
            }
            assert_eq!(
                messages,
                vec![
                    TappedMessage::Text("one".into()),
                    TappedMessage::Text("two".into()),
                    TappedMessage::Binary(vec![7; 300]),
                ],
                "split every {step} bytes"
            );
        }
    }

    #[test]
    fn reads_a_queue_pair_from_the_table() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue\n\
            0: 0100007F:9871 0100007F:C030 01 00000010:00000200\n";
        assert_eq!(
            queues(table, "0100007F:9871", "0100007F:C030"),
            Some((0x10, 0x200))
        );
        assert_eq!(queues(table, "0100007F:C030", "0100007F:9871"), None);
    }
}
