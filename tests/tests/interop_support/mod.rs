//! Shared by the interop suites (`tests/tests/interop_*.rs`): finding the servers that
//! `scripts/test-interop.sh` installed, running them as child processes (killed on drop),
//! reading their `/stats`, and checking delivered feeds.
//!
//! Every server here was written by someone else (FastAPI + uvicorn, Python `websockets`,
//! Node `ws`) or is the reference feed-server binary; the suites only drive them. Traffic
//! goes to 127.0.0.1, or to the addresses of a network namespace the suite made itself.
#![allow(dead_code)] // each suite uses a part

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use resilient_ws::{Client, ClientBuilder, Disconnect, Event, Reason, State};
use resilient_ws_tests::Recorder;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::time::{Instant, sleep, timeout};

/// How long a server may take to print that it listens (Python imports are slow on a busy
/// machine).
pub(crate) const SERVER_START_LIMIT: Duration = Duration::from_secs(20);
/// How long a killed server may take to exit.
const KILL_LIMIT: Duration = Duration::from_secs(5);
/// Bound of one `/stats` request.
const HTTP_LIMIT: Duration = Duration::from_secs(3);
/// How often polls look again.
const POLL: Duration = Duration::from_millis(20);

/// The value of the environment variable `var` that `scripts/test-interop.sh` exports;
/// panics with what to run when it is missing, so the suites never pass without their
/// servers.
pub(crate) fn env_path(var: &str) -> PathBuf {
    match std::env::var_os(var) {
        Some(value) if !value.is_empty() => PathBuf::from(value),
        _ => panic!(
            "{var} is not set: the interop suites drive third-party servers (FastAPI + uvicorn, \
             Python websockets, Node ws) that scripts/test-interop.sh installs; run \
             ./scripts/test-interop.sh (it installs them, exports INTEROP_* and runs these tests)"
        ),
    }
}

/// `tests/interop/NAME`: the server programs.
pub(crate) fn interop_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("interop")
        .join(name)
}

/// The venv's Python, with the server programs' folder as the working directory.
pub(crate) fn python() -> Command {
    let mut command = Command::new(env_path("INTEROP_PYTHON"));
    command
        .current_dir(interop_file(""))
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    command
}

/// Node, with `INTEROP_NODE_MODULES` (where `ws` is) passed on.
pub(crate) fn node() -> Command {
    let modules = env_path("INTEROP_NODE_MODULES");
    let mut command = Command::new(env_path("INTEROP_NODE"));
    command
        .current_dir(interop_file(""))
        .env("INTEROP_NODE_MODULES", modules);
    command
}

/// The first `127.0.0.1:PORT` (or `HOST:PORT`) after `marker` in `line`.
pub(crate) fn addr_after(line: &str, marker: &str) -> Option<SocketAddr> {
    let rest = &line[line.find(marker)? + marker.len()..];
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == ':'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Starts `command` running `script` with `args`: a server that prints
/// `listening on HOST:PORT` (`websockets_server.py`, `ws_server.mjs`).
pub(crate) async fn start_listening_server(
    name: &str,
    mut command: Command,
    script: &str,
    args: &[&str],
) -> ServerProcess {
    command.arg(script).args(args);
    ServerProcess::start(name, command, |line| addr_after(line, "listening on ")).await
}

/// A client of `server`'s `/feed`: the cursor in `seq`, resumed with `?cursor=N`, backoff
/// from 50 ms up to 500 ms.
pub(crate) fn feed_client_builder(server: &ServerProcess) -> ClientBuilder {
    Client::builder(server.ws_url("/feed"))
        .cursor_field("seq")
        .resume_query("cursor")
        .backoff(Duration::from_millis(50), Duration::from_millis(500))
}

/// A server child process: its output lines are kept (for waits and failure messages), it
/// is killed when dropped.
pub(crate) struct ServerProcess {
    name: String,
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    /// Where it listens.
    pub(crate) addr: SocketAddr,
}

impl ServerProcess {
    /// Starts `command` and waits until `ready` finds the listening address in one of its
    /// stdout or stderr lines.
    pub(crate) async fn start(
        name: &str,
        mut command: Command,
        ready: impl Fn(&str) -> Option<SocketAddr>,
    ) -> Self {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .unwrap_or_else(|error| panic!("{name}: cannot start {command:?}: {error}"));
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        collect_lines(child.stdout.take(), "", &lines);
        collect_lines(child.stderr.take(), "stderr: ", &lines);
        let mut server = Self {
            name: name.to_owned(),
            child,
            lines,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let deadline = Instant::now() + SERVER_START_LIMIT;
        loop {
            if let Some(addr) = server.lines().iter().find_map(|line| ready(line)) {
                server.addr = addr;
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                sleep(Duration::from_millis(100)).await; // let the last lines arrive
                panic!(
                    "{name} exited ({status}) before listening:\n{}",
                    server.output()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not listen within {SERVER_START_LIMIT:?}:\n{}",
                server.output()
            );
            sleep(POLL).await;
        }
    }

    /// The lines it printed so far (stderr lines start with `stderr: `).
    pub(crate) fn lines(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The last lines it printed, for failure messages.
    pub(crate) fn output(&self) -> String {
        let lines = self.lines();
        let start = lines.len().saturating_sub(60);
        format!(
            "--- {} output ---\n{}",
            self.name,
            lines[start..].join("\n")
        )
    }

    /// `ws://ADDR{path}`.
    pub(crate) fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    /// `GET {path}` as JSON.
    pub(crate) async fn get(&self, path: &str) -> Json {
        match http_get(self.addr, path).await {
            Ok(body) => Json(body),
            Err(error) => panic!("GET {path} from {}: {error}\n{}", self.name, self.output()),
        }
    }

    /// Polls `GET {path}` until `done` holds; panics with the last answer after `limit`.
    pub(crate) async fn wait_json(
        &self,
        path: &str,
        what: &str,
        limit: Duration,
        done: impl Fn(&Json) -> bool,
    ) -> Json {
        let deadline = Instant::now() + limit;
        loop {
            let last = http_get(self.addr, path).await.map(Json);
            if let Ok(json) = &last {
                if done(json) {
                    return json.clone();
                }
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {limit:?} waiting for {what}; last {path}: {last:?}\n{}",
                self.output()
            );
            sleep(POLL).await;
        }
    }

    /// Waits until it printed a line containing `needle`.
    pub(crate) async fn wait_line(&self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(line) = self.lines().into_iter().find(|l| l.contains(needle)) {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "{} printed no line with {needle:?} within {limit:?}\n{}",
                self.name,
                self.output()
            );
            sleep(POLL).await;
        }
    }

    /// Kills it with SIGKILL (a crash: no close frames, the kernel closes its sockets) and
    /// waits for it to exit.
    pub(crate) async fn kill(&mut self) {
        let _ = self.child.start_kill();
        let _ = timeout(KILL_LIMIT, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{} did not exit after SIGKILL", self.name));
    }
}

fn collect_lines(
    stream: Option<impl AsyncRead + Unpin + Send + 'static>,
    prefix: &'static str,
    lines: &Arc<Mutex<Vec<String>>>,
) {
    let Some(stream) = stream else { return };
    let sink = Arc::clone(lines);
    // Ends at end of stream: when the process exits or is killed.
    tokio::spawn(async move {
        let mut reader = BufReader::new(stream).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            sink.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(format!("{prefix}{line}"));
        }
    });
}

/// `GET path` over HTTP/1.1 with `Connection: close`; the body of a 200 answer.
pub(crate) async fn http_get(addr: SocketAddr, path: &str) -> Result<String, String> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut answer = Vec::new();
        stream
            .read_to_end(&mut answer)
            .await
            .map_err(|e| e.to_string())?;
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let (head, body) = answer
            .split_once("\r\n\r\n")
            .ok_or_else(|| format!("no HTTP head in {answer:?}"))?;
        if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
            return Err(format!("not 200: {head}"));
        }
        Ok(body.to_owned())
    };
    timeout(HTTP_LIMIT, exchange)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {HTTP_LIMIT:?}")))
}

/// A JSON answer, read by key with a small scanner (flat objects of numbers and lists).
#[derive(Clone, Debug)]
pub(crate) struct Json(pub String);

impl Json {
    /// The raw text after `"key":` up to the end of the value.
    fn raw(&self, key: &str) -> Option<&str> {
        let pattern = format!("\"{key}\"");
        let at = self.0.find(&pattern)? + pattern.len();
        let rest = self.0[at..].trim_start().strip_prefix(':')?.trim_start();
        let end = if rest.starts_with('[') {
            let mut depth = 0usize;
            rest.char_indices()
                .find(|&(_, c)| {
                    match c {
                        '[' | '{' => depth += 1,
                        ']' | '}' => depth -= 1,
                        _ => {}
                    }
                    depth == 0
                })
                .map(|(i, _)| i + 1)?
        } else {
            rest.find([',', '}']).unwrap_or(rest.len())
        };
        Some(rest[..end].trim())
    }

    /// The number at `key`; panics when there is none.
    pub(crate) fn u64(&self, key: &str) -> u64 {
        self.raw(key)
            .and_then(|raw| raw.parse().ok())
            .unwrap_or_else(|| panic!("no number {key:?} in {}", self.0))
    }

    /// The list at `key`, its items as text (`null` for JSON nulls); panics when there is
    /// none.
    pub(crate) fn list(&self, key: &str) -> Vec<String> {
        let raw = self
            .raw(key)
            .and_then(|raw| raw.strip_prefix('['))
            .and_then(|raw| raw.strip_suffix(']'))
            .unwrap_or_else(|| panic!("no list {key:?} in {}", self.0));
        let mut items = Vec::new();
        let mut depth = 0usize;
        let mut item = String::new();
        for c in raw.chars() {
            match c {
                '[' | '{' => depth += 1,
                ']' | '}' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(item.trim().to_owned());
                    item.clear();
                    continue;
                }
                _ => {}
            }
            item.push(c);
        }
        if !item.trim().is_empty() {
            items.push(item.trim().to_owned());
        }
        items
    }
}

/// A folder under the system's temp dir, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    /// A fresh folder named after `name`, this process and a counter.
    pub(crate) fn new(name: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "rws-interop-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create a temp dir");
        Self(path)
    }

    /// `dir/name`.
    pub(crate) fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Asserts that `cursors` are exactly `first, first + 1, ...`: nothing lost, nothing twice,
/// in order.
pub(crate) fn assert_contiguous(cursors: &[u64], first: u64, what: &str) {
    for (i, &cursor) in cursors.iter().enumerate() {
        let expected = first + i as u64;
        assert_eq!(
            cursor,
            expected,
            "{what}: delivery broke at index {i}: expected cursor {expected}, got {cursor} \
             (around: {:?})",
            &cursors[i.saturating_sub(3)..(i + 4).min(cursors.len())]
        );
    }
}

/// The delivered cursors, leaving out messages without one (a server's snapshot).
pub(crate) fn cursors(recorder: &Recorder) -> Vec<u64> {
    recorder
        .delivered()
        .into_iter()
        .filter(|&cursor| cursor != 0)
        .collect()
}

/// The disconnects that ended open or connecting sockets, in order.
pub(crate) fn disconnects(recorder: &Recorder) -> Vec<Disconnect> {
    recorder
        .states()
        .into_iter()
        .filter_map(|(_, _, reason)| match reason {
            Reason::Disconnected(disconnect) => Some(disconnect),
            _ => None,
        })
        .collect()
}

/// For each connection attempt after the first: the last cursor delivered before it began
/// (what the client should have asked to resume from).
pub(crate) fn cursors_before_each_attempt(recorder: &Recorder) -> Vec<Option<u64>> {
    let mut last = None;
    let mut attempts = Vec::new();
    for (_, event) in recorder.events() {
        match event {
            Event::Message {
                cursor: Some(cursor),
                ..
            } => last = Some(cursor.0),
            Event::StateChanged {
                state: State::Connecting { .. },
                ..
            } => attempts.push(last),
            _ => {}
        }
    }
    attempts
}

/// Asserts that the server's `/stats` lists, for each connection, the cursor the client
/// held before that attempt (`"null"` for none); returns that list.
pub(crate) fn assert_each_resumed_from_its_last_cursor(
    stats: &Json,
    recorder: &Recorder,
) -> Vec<String> {
    let asked: Vec<String> = cursors_before_each_attempt(recorder)
        .into_iter()
        .map(|c| c.map_or("null".to_owned(), |c| c.to_string()))
        .collect();
    assert_eq!(
        stats.list("cursors"),
        asked,
        "each resumed from its last cursor"
    );
    asked
}

/// `states` in plain words, for failure messages.
pub(crate) fn describe_states(recorder: &Recorder) -> Vec<String> {
    recorder
        .states()
        .iter()
        .map(|(_, state, reason)| format!("{state} ({reason})"))
        .collect()
}

/// A run of `rwscat` (from `INTEROP_RWSCAT`): stdout and stderr lines kept apart, killed
/// when dropped.
pub(crate) struct Rwscat {
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    stdin: Option<tokio::process::ChildStdin>,
}

impl Rwscat {
    /// Starts `rwscat ARGS` with a piped stdin.
    pub(crate) fn start(args: &[&str]) -> Self {
        let mut child = Command::new(env_path("INTEROP_RWSCAT"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start rwscat: {error}"));
        let stdout = Arc::default();
        let stderr = Arc::default();
        collect_lines(child.stdout.take(), "", &stdout);
        collect_lines(child.stderr.take(), "", &stderr);
        let stdin = child.stdin.take();
        Self {
            child,
            stdout,
            stderr,
            stdin,
        }
    }

    /// Writes `line` and a newline to its stdin.
    pub(crate) async fn send_line(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .expect("write to rwscat's stdin");
        stdin.flush().await.expect("flush rwscat's stdin");
    }

    /// Its stdout lines so far.
    pub(crate) fn stdout(&self) -> Vec<String> {
        self.stdout
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Its stderr lines so far.
    pub(crate) fn stderr(&self) -> Vec<String> {
        self.stderr
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits until it printed `n` stdout lines.
    pub(crate) async fn wait_stdout(&self, n: usize, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.stdout().len() < n {
            assert!(
                Instant::now() < deadline,
                "rwscat printed {} of {n} lines within {limit:?}; stderr:\n{}",
                self.stdout().len(),
                self.stderr().join("\n")
            );
            sleep(POLL).await;
        }
    }

    /// Waits for it to exit; its exit code (panics after `limit`, killing it).
    pub(crate) async fn wait_exit(&mut self, limit: Duration) -> i32 {
        match timeout(limit, self.child.wait()).await {
            Ok(Ok(status)) => {
                sleep(Duration::from_millis(50)).await; // let the last lines arrive
                status.code().unwrap_or(-1)
            }
            Ok(Err(error)) => panic!("waiting for rwscat: {error}"),
            Err(_) => {
                let _ = self.child.start_kill();
                panic!(
                    "rwscat did not exit within {limit:?}; {} stdout lines; stderr:\n{}",
                    self.stdout().len(),
                    self.stderr().join("\n")
                );
            }
        }
    }
}
