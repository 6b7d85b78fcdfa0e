//! A deterministic simulation of a client session against a fake feed server.
//!
//! Time is fake and jumps straight to the next thing that can happen: the session's next
//! deadline or the next packet the fake network delivers. Every run is bounded in steps
//! and simulated time, and every failure message carries the seed that reproduces it.

#![allow(dead_code, unreachable_pub)] // each scenario file uses a different part

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use resilient_ws_core::{
    Command, Config, ConnId, Cursor, Disconnect, Event, OpenRequest, Payload, ResumeMode, Session,
    SocketEvent, State, Timestamp,
};

/// How the fake server treats one connection attempt.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// Nothing listens: the attempt fails with a connection error.
    Refuse,
    /// The TCP connection is accepted but the handshake never answers.
    Stall,
    /// The handshake is answered with an HTTP status.
    Reject {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// The handshake succeeds and the feed flows.
    Serve(Serve),
}

/// A served connection: the feed from the client's cursor, then `after`.
#[derive(Clone, Debug)]
pub struct Serve {
    /// How many feed messages to send before `after`; `None` for the whole feed.
    pub messages: Option<u64>,
    /// What happens once they are sent.
    pub after: After,
    /// Start this many messages before the client's cursor (the client must deduplicate).
    pub replay_overlap: u64,
    /// How long to stay open after the messages before `after` (past the stability
    /// window, the connection counts as healthy).
    pub linger: Duration,
}

/// What a served connection does after its messages.
#[derive(Clone, Copy, Debug)]
pub enum After {
    /// Stays open and answers pings.
    KeepOpen,
    /// Breaks without a close frame.
    Drop,
    /// Closes with this code.
    Close(u16),
    /// Goes silent: nothing in either direction, no close (a half-open connection).
    Blackhole,
}

impl Behaviour {
    /// The whole feed, then stay open.
    pub fn serve_all() -> Self {
        Self::Serve(Serve {
            messages: None,
            after: After::KeepOpen,
            replay_overlap: 0,
            linger: Duration::ZERO,
        })
    }

    /// `messages` feed messages, then `after`.
    pub fn serve(messages: u64, after: After) -> Self {
        Self::Serve(Serve {
            messages: Some(messages),
            after,
            replay_overlap: 0,
            linger: Duration::ZERO,
        })
    }

    /// As `serve`, replaying `overlap` messages before the client's cursor.
    pub fn serve_with_overlap(messages: Option<u64>, after: After, overlap: u64) -> Self {
        Self::Serve(Serve {
            messages,
            after,
            replay_overlap: overlap,
            linger: Duration::ZERO,
        })
    }

    /// This behaviour, staying open `linger` after its messages before `after`.
    pub fn lingering(self, linger: Duration) -> Self {
        match self {
            Self::Serve(serve) => Self::Serve(Serve { linger, ..serve }),
            other => other,
        }
    }
}

/// Something the fake network will do at a set time.
#[derive(Clone, Debug)]
enum Delivery {
    /// Report an event on a socket to the session.
    Input(ConnId, SocketEvent),
    /// The server side of a connection goes silent.
    Silence(ConnId),
}

#[derive(Clone, Debug)]
struct Scheduled {
    at: Timestamp,
    order: u64,
    delivery: Delivery,
}

/// The server's view of one connection.
#[derive(Clone, Debug)]
pub struct ServerConn {
    pub id: ConnId,
    pub request: OpenRequest,
    pub open: bool,
    pub silent: bool,
}

/// The session, the fake server and the fake network between them.
pub struct Sim {
    pub seed: u64,
    pub session: Session,
    pub now: Timestamp,
    /// One-way latency of the fake network.
    pub latency: Duration,
    /// Time between feed messages on a connection.
    pub message_interval: Duration,
    /// The feed holds messages 1..=feed_len.
    pub feed_len: u64,
    script: Vec<Behaviour>,
    attempts_served: usize,
    scheduled: Vec<Scheduled>,
    order: u64,
    pub conns: Vec<ServerConn>,
    /// Socket the session considers live (opened and not yet aborted).
    live: Option<ConnId>,
    pub events: Vec<(Timestamp, Event)>,
    pub commands: Vec<(Timestamp, Command)>,
    /// What the server received, in order, with the connection it came on.
    pub received: Vec<(ConnId, Payload)>,
    steps: u64,
}

/// The upper bound on simulation steps in one `run_*` call.
const MAX_STEPS: u64 = 200_000;

/// A cursor extractor for the fake feed's messages, `{"seq":N,...}`.
pub fn seq_cursor(payload: &Payload) -> Option<Cursor> {
    let text = payload.as_text()?;
    let rest = text.strip_prefix("{\"seq\":")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().map(Cursor)
}

/// Where the server resumes: it knows the client's cursor only from what the request
/// carries (the `cursor` query parameter or a resume header).
fn resume_point(request: &OpenRequest) -> u64 {
    let from_query = request
        .url
        .split_once("cursor=")
        .and_then(|(_, rest)| rest.split('&').next())
        .and_then(|value| value.parse().ok());
    let from_header = request
        .resume_header
        .as_ref()
        .and_then(|(_, value)| value.parse().ok());
    from_query.or(from_header).unwrap_or(0)
}

/// The feed's message `n`.
pub fn feed_message(n: u64) -> Payload {
    Payload::from(format!("{{\"seq\":{n},\"data\":\"m{n}\"}}"))
}

/// A config for the fake server with short, test-friendly timings.
pub fn test_config() -> Config {
    let mut config = Config::new("ws://feed.test/feed");
    config.cursor = Some(Arc::new(seq_cursor));
    config.resume = ResumeMode::QueryParam("cursor".into());
    config.backoff.initial = Duration::from_millis(100);
    config.backoff.max = Duration::from_secs(5);
    config.connect_timeout = Duration::from_secs(2);
    config.stability_window = Duration::from_secs(1);
    if let Some(heartbeat) = config.heartbeat.as_mut() {
        heartbeat.interval = Duration::from_secs(1);
        heartbeat.timeout = Duration::from_millis(500);
    }
    config
}

impl Sim {
    /// A simulation of `config` against a server that treats attempt `i` as `script[i]`
    /// (the last entry repeats).
    pub fn new(config: Config, seed: u64, script: Vec<Behaviour>) -> Self {
        assert!(!script.is_empty(), "a script needs at least one behaviour");
        Self {
            seed,
            session: Session::new(config, seed).expect("valid config"),
            now: Timestamp::ZERO,
            latency: Duration::from_millis(5),
            message_interval: Duration::from_millis(10),
            feed_len: 50,
            script,
            attempts_served: 0,
            scheduled: Vec::new(),
            order: 0,
            conns: Vec::new(),
            live: None,
            events: Vec::new(),
            commands: Vec::new(),
            received: Vec::new(),
            steps: 0,
        }
    }

    /// Replaces the script for attempts from now on.
    pub fn set_script(&mut self, script: Vec<Behaviour>) {
        assert!(!script.is_empty());
        self.script = script;
        self.attempts_served = 0;
    }

    pub fn connect(&mut self) {
        self.session.connect(self.now);
        self.drain();
    }

    pub fn send(
        &mut self,
        text: &str,
    ) -> Result<resilient_ws_core::MsgId, resilient_ws_core::SendError> {
        let result = self.session.send(text.into(), self.now);
        self.drain();
        result
    }

    pub fn close(&mut self) {
        self.session
            .close(1000, "bye", self.now)
            .expect("valid close");
        self.drain();
    }

    pub fn set_online(&mut self, online: bool) {
        self.session.set_online(online, self.now);
        self.drain();
    }

    /// Feeds an input as if it came late from socket `conn`.
    pub fn inject(&mut self, conn: ConnId, event: SocketEvent) {
        self.session.handle_socket(conn, event, self.now);
        self.drain();
    }

    /// Runs until `done` holds, failing after `limit` of simulated time.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Sim) -> bool) {
        let deadline = self.now + limit;
        while !done(self) {
            let Some(next) = self.next_wakeup() else {
                panic!("{}: nothing left to happen at {}", self.context(), self.now);
            };
            if next > deadline {
                panic!("{}: condition not met within {limit:?}", self.context());
            }
            self.step_to(next);
        }
    }

    /// Runs for `span` of simulated time.
    pub fn run_for(&mut self, span: Duration) {
        let end = self.now + span;
        while let Some(next) = self.next_wakeup().filter(|next| *next <= end) {
            self.step_to(next);
        }
        self.now = end;
    }

    fn next_wakeup(&self) -> Option<Timestamp> {
        let timer = self.session.poll_timeout().map(|(at, _)| at);
        let delivery = self.scheduled.iter().map(|s| s.at).min();
        timer.into_iter().chain(delivery).min()
    }

    fn step_to(&mut self, at: Timestamp) {
        self.steps += 1;
        assert!(
            self.steps < MAX_STEPS,
            "{}: step bound reached",
            self.context()
        );
        assert!(at >= self.now, "{}: time went backwards", self.context());
        self.now = at;
        while let Some(index) = self.next_due() {
            let item = self.scheduled.remove(index);
            match item.delivery {
                Delivery::Input(conn, event) => self.session.handle_socket(conn, event, at),
                Delivery::Silence(conn) => {
                    if let Some(server_conn) = self.conn_mut(conn) {
                        server_conn.silent = true;
                    }
                }
            }
            self.drain();
        }
        if self
            .session
            .poll_timeout()
            .is_some_and(|(deadline, _)| deadline <= at)
        {
            self.session.handle_timeout(at);
            self.drain();
        }
    }

    fn next_due(&self) -> Option<usize> {
        self.scheduled
            .iter()
            .enumerate()
            .filter(|(_, s)| s.at <= self.now)
            .min_by_key(|(_, s)| (s.at, s.order))
            .map(|(index, _)| index)
    }

    fn schedule(&mut self, at: Timestamp, delivery: Delivery) {
        self.order += 1;
        self.scheduled.push(Scheduled {
            at,
            order: self.order,
            delivery,
        });
    }

    fn conn_mut(&mut self, id: ConnId) -> Option<&mut ServerConn> {
        self.conns.iter_mut().find(|conn| conn.id == id)
    }

    /// Carries out the session's commands and records its events.
    fn drain(&mut self) {
        while let Some(command) = self.session.poll_command() {
            self.commands.push((self.now, command.clone()));
            self.carry_out(command);
        }
        while let Some(event) = self.session.poll_event() {
            self.events.push((self.now, event));
        }
    }

    fn carry_out(&mut self, command: Command) {
        let at = self.now + self.latency;
        match command {
            Command::Open(request) => {
                assert!(
                    self.live.is_none(),
                    "{}: Open {} while {:?} is live",
                    self.context(),
                    request.conn,
                    self.live
                );
                self.live = Some(request.conn);
                self.open(request, at);
            }
            Command::Send { conn, payload, .. } => {
                self.assert_live(conn);
                if self.server_hears(conn) {
                    self.received.push((conn, payload));
                }
            }
            Command::Ping { conn } => {
                self.assert_live(conn);
                if self.server_hears(conn) {
                    self.schedule(at, Delivery::Input(conn, SocketEvent::Pong));
                }
            }
            Command::Close { conn, code, reason } => {
                self.assert_live(conn);
                if self.server_hears(conn) {
                    let echo = Disconnect::Closed { code, reason };
                    self.schedule(at, Delivery::Input(conn, SocketEvent::Ended(echo)));
                }
            }
            Command::Abort { conn } => {
                self.assert_live(conn);
                self.live = None;
                if let Some(server_conn) = self.conn_mut(conn) {
                    server_conn.open = false;
                }
            }
        }
    }

    fn assert_live(&self, conn: ConnId) {
        assert_eq!(
            self.live,
            Some(conn),
            "{}: command for a dead socket",
            self.context()
        );
    }

    fn server_hears(&self, conn: ConnId) -> bool {
        self.conns
            .iter()
            .any(|c| c.id == conn && c.open && !c.silent)
    }

    fn open(&mut self, request: OpenRequest, at: Timestamp) {
        let behaviour = self.script[self.attempts_served.min(self.script.len() - 1)].clone();
        self.attempts_served += 1;
        let conn = request.conn;
        let start_after = resume_point(&request);
        self.conns.push(ServerConn {
            id: conn,
            request,
            open: matches!(behaviour, Behaviour::Serve(_) | Behaviour::Stall),
            silent: false,
        });
        match behaviour {
            Behaviour::Refuse => {
                let refused = Disconnect::Abnormal {
                    detail: "connection refused".into(),
                };
                self.schedule(at, Delivery::Input(conn, SocketEvent::Ended(refused)));
            }
            Behaviour::Stall => {}
            Behaviour::Reject {
                status,
                retry_after,
            } => {
                let rejected = Disconnect::Rejected {
                    status,
                    retry_after,
                };
                self.schedule(at, Delivery::Input(conn, SocketEvent::Ended(rejected)));
            }
            Behaviour::Serve(serve) => self.serve(conn, start_after, &serve, at),
        }
    }

    fn serve(&mut self, conn: ConnId, start_after: u64, serve: &Serve, opened_at: Timestamp) {
        self.schedule(opened_at, Delivery::Input(conn, SocketEvent::Opened));
        let first = (start_after + 1)
            .saturating_sub(serve.replay_overlap)
            .max(1);
        let last = match serve.messages {
            Some(count) => (first + count).saturating_sub(1).min(self.feed_len),
            None => self.feed_len,
        };
        let mut at = opened_at;
        for n in first..=last {
            at = at + self.message_interval;
            self.schedule(
                at,
                Delivery::Input(conn, SocketEvent::Message(feed_message(n))),
            );
        }
        let at = at + self.message_interval + serve.linger;
        match serve.after {
            After::KeepOpen => {}
            After::Drop => {
                let reset = Disconnect::Abnormal {
                    detail: "connection reset".into(),
                };
                self.schedule(at, Delivery::Input(conn, SocketEvent::Ended(reset)));
            }
            After::Close(code) => {
                let closed = Disconnect::Closed {
                    code,
                    reason: String::new(),
                };
                self.schedule(at, Delivery::Input(conn, SocketEvent::Ended(closed)));
            }
            After::Blackhole => self.schedule(at, Delivery::Silence(conn)),
        }
    }

    // ---- What happened ----

    /// Cursors of the delivered messages, in delivery order.
    pub fn delivered(&self) -> Vec<u64> {
        self.events
            .iter()
            .filter_map(|(_, event)| match event {
                Event::Message { cursor, .. } => {
                    Some(cursor.expect("feed messages have cursors").0)
                }
                _ => None,
            })
            .collect()
    }

    /// Asserts that the feed 1..=n arrived exactly once, in order.
    pub fn assert_exactly_once(&self, n: u64) {
        let expected: Vec<u64> = (1..=n).collect();
        assert_eq!(self.delivered(), expected, "{}", self.context());
    }

    /// The states the session went through, with the time of each change.
    pub fn states(&self) -> Vec<(Timestamp, State)> {
        self.events
            .iter()
            .filter_map(|(at, event)| match event {
                Event::StateChanged { state, .. } => Some((*at, state.clone())),
                _ => None,
            })
            .collect()
    }

    /// The Open requests, in order.
    pub fn opens(&self) -> Vec<(Timestamp, OpenRequest)> {
        self.commands
            .iter()
            .filter_map(|(at, command)| match command {
                Command::Open(request) => Some((*at, request.clone())),
                _ => None,
            })
            .collect()
    }

    pub fn is_open(&self) -> bool {
        self.session.state() == &State::Open
    }

    pub fn server_received_texts(&self) -> Vec<String> {
        self.received
            .iter()
            .filter_map(|(_, payload)| payload.as_text().map(str::to_owned))
            .collect()
    }

    /// The seed and the recent history, for failure messages.
    pub fn context(&self) -> String {
        let mut out = format!("seed {} at {}; recent states:", self.seed, self.now);
        for (at, state) in self.states().iter().rev().take(6).rev() {
            let _ = write!(out, " [{at} {}]", state.name());
        }
        out
    }
}
