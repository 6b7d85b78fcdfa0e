//! The servers the suites measure against.
//!
//! One accept loop serves every route; the route is the request path:
//! - `/blast?n=N&size=S`: writes N pre-built text frames of S bytes as fast as the socket
//!   takes them (raw writes of a pre-encoded chunk, only the sequence digits patched), so
//!   the server is not what limits receive throughput;
//! - `/sink?n=N&size=S`: counts raw bytes until N client frames of S bytes have arrived,
//!   then sends the text message `done`;
//! - `/echo`: sends every message back (tokio-tungstenite, default settings);
//! - `/idle[?hello=1]`: holds the connection, answering pings (and sending one message
//!   first with `hello=1`);
//! - `/feed?every_us=U[&cursor=C]`: sends `{"seq":C+1}`, `{"seq":C+2}`, ... every U µs.
//!
//! Payloads are `{"seq":1000000001,"data":"aaa…"}`: ten-digit sequence numbers, so every
//! frame of a size has the same length and a pre-built chunk only needs its digits patched.
//!
//! The suites run the server in a child process (this binary with `--serve`, see
//! [`ServerProcess`]) so that the client process's CPU and memory are its own; the recovery
//! suite runs it in-process to restart it at a precise instant.

use std::io::{self, BufRead, BufReader, Write as _};
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinSet;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

/// The first sequence number: ten digits, so that every payload of a size has one length.
pub(crate) const FIRST_SEQ: u64 = 1_000_000_001;
/// Where the digits start in a payload: after `{"seq":`.
const SEQ_OFFSET: usize = 7;
const SEQ_DIGITS: usize = 10;
/// Bytes of pre-built frames written per `write_all`.
const CHUNK_BYTES: usize = 256 * 1024;
/// Listen backlog: a reconnect storm must not overflow the accept queue.
const BACKLOG: u32 = 4_096;

/// A payload of exactly `size` bytes (at least 28) carrying `seq`.
pub(crate) fn payload(seq: u64, size: usize) -> String {
    let head = format!("{{\"seq\":{seq:010},\"data\":\"");
    let pad = size.saturating_sub(head.len() + 2);
    format!("{head}{}\"}}", "a".repeat(pad))
}

/// Bytes a client (masked) frame with `payload` bytes occupies on the wire.
pub(crate) fn client_frame_len(payload: usize) -> u64 {
    let header = match payload {
        0..=125 => 2,
        126..=65_535 => 4,
        _ => 10,
    };
    (header + 4 + payload) as u64
}

/// Appends an unmasked final text frame carrying `payload`.
fn server_frame(payload: &[u8], out: &mut Vec<u8>) {
    out.push(0x81);
    match payload.len() {
        len @ 0..=125 => out.push(len as u8),
        len @ 126..=65_535 => {
            out.push(126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            out.push(127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
}

fn write_seq(digits: &mut [u8], mut seq: u64) {
    for digit in digits.iter_mut().rev() {
        *digit = b'0' + (seq % 10) as u8;
        seq /= 10;
    }
}

/// Accept times (µs since the Unix epoch: comparable across processes).
#[derive(Debug, Default)]
pub(crate) struct AcceptLog {
    times: Mutex<Vec<u64>>,
}

impl AcceptLog {
    fn record(&self) {
        let now = unix_micros(SystemTime::now());
        self.times
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(now);
    }

    fn snapshot(&self) -> Vec<u64> {
        self.times
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

pub(crate) fn unix_micros(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| {
        u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
    })
}

/// Listens on 127.0.0.1:`port` (0: any) with a deep backlog and `SO_REUSEADDR`, so a
/// restarted server gets its port back at once.
pub(crate) fn bind(port: u16) -> io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))?;
    socket.listen(BACKLOG)
}

/// Accepts and serves until dropped or aborted; aborting it drops every connection.
pub(crate) async fn serve(listener: TcpListener, log: Option<Arc<AcceptLog>>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    if let Some(log) = &log {
                        log.record();
                    }
                    connections.spawn(handle(stream));
                }
                // Out of descriptors, most likely: let connections end before trying again.
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn handle(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let Ok((target, leftover)) = upgrade(&mut stream).await else {
        return;
    };
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let param = |name: &str| -> Option<u64> {
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == name)
            .and_then(|(_, value)| value.parse().ok())
    };
    let size = param("size").map_or(64, |size| usize::try_from(size).unwrap_or(64));
    let _ = match path {
        "/blast" => blast(stream, param("n").unwrap_or(0), size).await,
        "/sink" => sink(stream, &leftover, param("n").unwrap_or(0), size).await,
        "/echo" => echo(stream, leftover).await,
        "/feed" => {
            let every = Duration::from_micros(param("every_us").unwrap_or(10_000).max(1));
            feed(stream, leftover, param("cursor").unwrap_or(0), every).await
        }
        _ => idle(stream, leftover, param("hello") == Some(1)).await,
    };
}

/// Reads the upgrade request and accepts it: returns the request target and any bytes
/// that came after the request head.
async fn upgrade(stream: &mut TcpStream) -> io::Result<(String, Vec<u8>)> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    let end = loop {
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&chunk[..read]);
        if let Some(at) = head.windows(4).position(|window| window == b"\r\n\r\n") {
            break at + 4;
        }
        if head.len() > 16 * 1024 {
            return Err(io::ErrorKind::InvalidData.into());
        }
    };
    let leftover = head.split_off(end);
    let text = String::from_utf8_lossy(&head);
    let mut lines = text.split("\r\n");
    let target = lines
        .next()
        .and_then(|request| request.split(' ').nth(1))
        .unwrap_or("/")
        .to_owned();
    let key = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("sec-websocket-key"))
        .map(|(_, value)| value.trim().to_owned())
        .ok_or(io::ErrorKind::InvalidData)?;
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        derive_accept_key(key.as_bytes())
    );
    stream.write_all(response.as_bytes()).await?;
    Ok((target, leftover))
}

async fn blast(mut stream: TcpStream, n: u64, size: usize) -> io::Result<()> {
    let body = payload(FIRST_SEQ, size);
    let mut frame = Vec::with_capacity(size + 10);
    server_frame(body.as_bytes(), &mut frame);
    let frame_len = frame.len();
    let digits_at = frame_len - body.len() + SEQ_OFFSET;
    let per_chunk = (CHUNK_BYTES / frame_len).max(1);
    let mut chunk = frame.repeat(per_chunk);
    let mut sent = 0u64;
    while sent < n {
        let count = usize::try_from(n - sent).map_or(per_chunk, |left| left.min(per_chunk));
        for index in 0..count {
            let at = index * frame_len + digits_at;
            write_seq(
                &mut chunk[at..at + SEQ_DIGITS],
                FIRST_SEQ + sent + index as u64,
            );
        }
        stream.write_all(&chunk[..count * frame_len]).await?;
        sent += count as u64;
    }
    // Whatever the client sends next (its close frame) or its EOF ends the connection.
    let mut rest = [0u8; 256];
    let _ = stream.read(&mut rest).await;
    Ok(())
}

async fn sink(mut stream: TcpStream, leftover: &[u8], n: u64, size: usize) -> io::Result<()> {
    let expected = n * client_frame_len(size);
    let mut received = leftover.len() as u64;
    let mut buffer = vec![0u8; 64 * 1024];
    while received < expected {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            return Ok(());
        }
        received += read as u64;
    }
    let mut done = Vec::new();
    server_frame(b"done", &mut done);
    stream.write_all(&done).await?;
    let _ = stream.read(&mut buffer).await;
    Ok(())
}

async fn websocket(
    stream: TcpStream,
    leftover: Vec<u8>,
    small: bool,
) -> WebSocketStream<TcpStream> {
    let config = small.then(|| {
        WebSocketConfig::default()
            .read_buffer_size(4 * 1024)
            .write_buffer_size(4 * 1024)
    });
    WebSocketStream::from_partially_read(stream, leftover, Role::Server, config).await
}

async fn echo(stream: TcpStream, leftover: Vec<u8>) -> io::Result<()> {
    let mut ws = websocket(stream, leftover, false).await;
    while let Some(Ok(message)) = ws.next().await {
        if (message.is_text() || message.is_binary()) && ws.send(message).await.is_err() {
            break;
        }
    }
    Ok(())
}

async fn idle(stream: TcpStream, leftover: Vec<u8>, hello: bool) -> io::Result<()> {
    let mut ws = websocket(stream, leftover, true).await;
    if hello && ws.send(Message::text(r#"{"seq":1}"#)).await.is_err() {
        return Ok(());
    }
    // Reading answers pings and close frames.
    while let Some(Ok(_)) = ws.next().await {}
    Ok(())
}

async fn feed(
    stream: TcpStream,
    leftover: Vec<u8>,
    cursor: u64,
    every: Duration,
) -> io::Result<()> {
    let mut ws = websocket(stream, leftover, true).await;
    // The first message leaves at once: an interval's first tick would wait for the timer
    // wheel's next millisecond.
    let mut seq = cursor + 1;
    if ws
        .send(Message::text(format!("{{\"seq\":{seq}}}")))
        .await
        .is_err()
    {
        return Ok(());
    }
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                seq += 1;
                if ws.send(Message::text(format!("{{\"seq\":{seq}}}"))).await.is_err() {
                    return Ok(());
                }
            }
            next = ws.next() => match next {
                Some(Ok(_)) => {}
                _ => return Ok(()),
            },
        }
    }
}

/// The server started in-process: restart it by stopping it and starting it again on its
/// port.
pub(crate) struct LocalServer {
    pub(crate) port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl LocalServer {
    pub(crate) fn start(port: u16) -> io::Result<Self> {
        let listener = bind(port)?;
        let port = listener.local_addr()?.port();
        Ok(Self {
            port,
            task: tokio::spawn(serve(listener, None)),
        })
    }

    /// Closes the listener and every connection, and waits until they are gone.
    pub(crate) async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// The server in a child process: this binary run with `--serve`.
pub(crate) struct ServerProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    pub(crate) port: u16,
}

impl ServerProcess {
    /// Starts a server on `port` (0: any); with `record`, it logs the time of every accept.
    pub(crate) fn spawn(port: u16, record: bool) -> io::Result<Self> {
        let mut command = Command::new(std::env::current_exe()?);
        command.args(["--serve", "--port", &port.to_string()]);
        if record {
            command.arg("--record-accepts");
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or(io::ErrorKind::BrokenPipe)?;
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        stdout.read_line(&mut line)?;
        let port = line
            .strip_prefix("LISTEN ")
            .and_then(|port| port.trim().parse().ok())
            .ok_or_else(|| io::Error::other(format!("server did not start: {line:?}")))?;
        Ok(Self {
            child,
            stdin,
            stdout,
            port,
        })
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}{path}", self.port)
    }

    /// The times of every accept so far, µs since the Unix epoch.
    pub(crate) fn accept_times(&mut self) -> io::Result<Vec<u64>> {
        let stdin = self.stdin.as_mut().ok_or(io::ErrorKind::BrokenPipe)?;
        stdin.write_all(b"dump\n")?;
        stdin.flush()?;
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        let times = line
            .strip_prefix("ACCEPTS")
            .ok_or_else(|| io::Error::other(format!("unexpected answer {line:?}")))?;
        Ok(times
            .split_whitespace()
            .filter_map(|time| time.parse().ok())
            .collect())
    }

    /// Kills the server (SIGKILL: the kernel closes its sockets at once, as in a crash)
    /// and waits until it is gone.
    pub(crate) fn kill(mut self) {
        self.end();
    }

    fn end(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.stdin = None;
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.end();
    }
}

/// The child process's `main`: `--serve [--port P] [--record-accepts]`. It prints
/// `LISTEN <port>`, answers `dump` on stdin with `ACCEPTS <µs> <µs> ...`, and exits when its
/// stdin closes (so it never outlives the benchmark).
pub(crate) fn serve_main(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let port = args
        .iter()
        .position(|arg| arg == "--port")
        .and_then(|at| args.get(at + 1))
        .map_or(Ok(0), |port| port.parse::<u16>())?;
    let record = args.iter().any(|arg| arg == "--record-accepts");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = bind(port)?;
        let port = listener.local_addr()?.port();
        let log = record.then(|| Arc::new(AcceptLog::default()));
        let stdin_log = log.clone();
        std::thread::spawn(move || answer_stdin(stdin_log.as_deref()));
        {
            let mut stdout = io::stdout().lock();
            writeln!(stdout, "LISTEN {port}")?;
            stdout.flush()?;
        }
        serve(listener, log).await;
        Ok(())
    })
}

fn answer_stdin(log: Option<&AcceptLog>) {
    let stdin = io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        if line.trim() == "dump" {
            let times = log.map(AcceptLog::snapshot).unwrap_or_default();
            let mut out = String::from("ACCEPTS");
            for time in times {
                out.push(' ');
                out.push_str(&time.to_string());
            }
            let mut stdout = io::stdout().lock();
            let _ = writeln!(stdout, "{out}");
            let _ = stdout.flush();
        }
    }
    std::process::exit(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_have_the_asked_size_and_fixed_width_digits() {
        let text = payload(FIRST_SEQ + 41, 64);
        assert_eq!(text.len(), 64);
        assert!(text.starts_with(r#"{"seq":1000000042,"data":"aaa"#));
        let mut digits = *b"0000000000";
        write_seq(&mut digits, 1_234_567_890);
        assert_eq!(&digits, b"1234567890");
        assert_eq!(client_frame_len(64), 70);
        assert_eq!(client_frame_len(16_384), 16_392);
    }
}
