//! The reference model: a harness that plays driver and application at once and keeps
//! its own account of what the session must be doing.
//!
//! [`Harness::apply`] turns one [`Step`] into calls on the [`Session`] (with the fake
//! clock), drains every command and event, has `assertions.rs` check them and the
//! session's getters against the model, then moves the model on: which socket is live
//! and open, which were aborted or sent a `Close`, the queue of accepted messages and
//! how each one left, the feed position and the last delivered cursor, the counters
//! `stats()` must report, and the deadlines (connect, stability, heartbeat, close,
//! retry budget). The checks only read the model (`&self`); only this file changes it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;
use std::time::Duration;

use proptest::test_runner::TestCaseError;
use resilient_ws_core::{
    Command, Config, ConnId, Cursor, Disconnect, Event, MsgId, Payload, Probe, Session,
    SocketEvent, State, Stats, Timer, Timestamp,
};

use crate::strategies::{Input, Msg, Op, Spec, Step, URLS, seq_cursor};

/// Connection ids 1..=64, minted by a throwaway session (`ConnId` has no constructor).
/// Ids the session under test has not issued yet are "made-up" stale ids.
pub(crate) fn minted_ids() -> &'static [ConnId] {
    static MINTED: OnceLock<Vec<ConnId>> = OnceLock::new();
    MINTED.get_or_init(|| {
        let mut session = Session::new(Config::new("ws://mint.test"), 0).expect("valid config");
        let mut ids = Vec::new();
        for _ in 0..64 {
            session.connect(Timestamp::ZERO);
            while let Some(command) = session.poll_command() {
                if let Command::Open(request) = command {
                    ids.push(request.conn);
                }
            }
            session
                .close(1000, "", Timestamp::ZERO)
                .expect("valid close");
            while session.poll_command().is_some() {}
            while session.poll_event().is_some() {}
        }
        assert_eq!(ids.len(), 64);
        ids
    })
}

/// What the current operation must produce, as predicted by the model.
#[derive(Default)]
pub(crate) struct Expect {
    /// A delivered message (payload, cursor).
    pub(crate) message: Option<(Payload, Option<Cursor>)>,
    /// A reported gap (last, received).
    pub(crate) gap: Option<(Cursor, Cursor)>,
}

/// The session as it was before an operation, for the checks that compare.
pub(crate) struct Before {
    /// The latest time given to the session.
    pub(crate) now: Timestamp,
    pub(crate) state: State,
    pub(crate) stats: Stats,
    pub(crate) cursor: Option<Cursor>,
    pub(crate) timeout: Option<(Timestamp, Timer)>,
    /// Whether the harness had the session online.
    pub(crate) online: bool,
}

/// The driver, the application and the model of the session.
pub(crate) struct Harness {
    pub(crate) spec: Spec,
    pub(crate) seed: u64,
    pub(crate) session: Session,
    pub(crate) url: String,
    pub(crate) probe: Option<Probe>,
    /// The latest time given to the session (the session's clamped clock).
    pub(crate) now: Timestamp,
    pub(crate) online: bool,
    pub(crate) step: usize,
    // Sockets.
    pub(crate) live: Option<ConnId>,
    /// The live socket reported `Opened` while handshaking.
    pub(crate) live_open: bool,
    pub(crate) opened: Vec<ConnId>,
    pub(crate) aborted: BTreeSet<ConnId>,
    /// Sockets that got a `Close` command.
    pub(crate) close_sent: BTreeSet<ConnId>,
    /// The last open request, for the attempt number.
    pub(crate) last_open_attempt: Option<u32>,
    // Lifecycle.
    /// No `Open` allowed until an effective `connect()`.
    pub(crate) stopped: bool,
    /// Code and reason of the `close()` that put the session in `Closing`.
    pub(crate) close_args: Option<(u16, String)>,
    // Outbound.
    pub(crate) payload_counter: u64,
    pub(crate) accepted: BTreeMap<MsgId, Payload>,
    /// Accepted, neither sent nor handed back: the model of the queue.
    pub(crate) outstanding: BTreeMap<MsgId, usize>,
    /// How each accepted message left: "sent" or "unsent".
    pub(crate) settled: BTreeMap<MsgId, &'static str>,
    pub(crate) last_sent_id: Option<MsgId>,
    // Inbound.
    pub(crate) server_seq: u64,
    pub(crate) last_delivered: Option<Cursor>,
    /// A new message was delivered at some point: from then on attempt numbers may pass
    /// the cap, which counts only failed connections that brought nothing new.
    pub(crate) progressed: bool,
    // Model counters.
    pub(crate) attempts: u64,
    pub(crate) opens: u64,
    pub(crate) stale_inputs: u64,
    pub(crate) replays: u64,
    pub(crate) delivered: u64,
    pub(crate) messages_sent: u64,
    // Timing model.
    /// When the live socket was asked for.
    pub(crate) open_requested_at: Timestamp,
    /// When the live socket opened.
    pub(crate) opened_at: Timestamp,
    /// The last proof of life on the live, open socket.
    pub(crate) last_inbound: Timestamp,
    /// When the first probe since the last inbound frame went out.
    pub(crate) probe_outstanding_since: Option<Timestamp>,
    /// The last time given to `handle_timeout`.
    pub(crate) timeouts_handled_at: Timestamp,
    /// When the session entered `Closing`.
    pub(crate) closing_since: Timestamp,
    /// When the current run of failed attempts began (the failure count left zero).
    pub(crate) failing_since: Option<Timestamp>,
    /// Whether to check the heartbeat's detection bound (see `check_heartbeat_bound`).
    pub(crate) check_heartbeat_bound: bool,
    pub(crate) trace: Vec<String>,
}

pub(crate) fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

pub(crate) fn is_stopped_state(state: &State) -> bool {
    matches!(state, State::Closing | State::Closed | State::Failed(_))
}

impl Harness {
    /// A harness for a new session with `spec` and `seed`; nothing has happened yet.
    pub(crate) fn new(spec: &Spec, seed: u64) -> Self {
        let session = Session::new(spec.config(), seed).expect("generated configs are valid");
        Self {
            spec: spec.clone(),
            seed,
            session,
            url: URLS[spec.url].to_owned(),
            probe: spec.probe(),
            now: Timestamp::ZERO,
            online: true,
            step: 0,
            live: None,
            live_open: false,
            opened: Vec::new(),
            aborted: BTreeSet::new(),
            close_sent: BTreeSet::new(),
            last_open_attempt: None,
            stopped: true,
            close_args: None,
            payload_counter: 0,
            accepted: BTreeMap::new(),
            outstanding: BTreeMap::new(),
            settled: BTreeMap::new(),
            last_sent_id: None,
            server_seq: spec.start_cursor.unwrap_or(0),
            last_delivered: spec.start_cursor.map(Cursor),
            progressed: false,
            attempts: 0,
            opens: 0,
            stale_inputs: 0,
            replays: 0,
            delivered: 0,
            messages_sent: 0,
            open_requested_at: Timestamp::ZERO,
            opened_at: Timestamp::ZERO,
            last_inbound: Timestamp::ZERO,
            closing_since: Timestamp::ZERO,
            timeouts_handled_at: Timestamp::ZERO,
            probe_outstanding_since: None,
            check_heartbeat_bound: false,
            failing_since: None,
            trace: Vec::new(),
        }
    }

    fn note(&mut self, line: impl Into<String>) {
        self.trace.push(line.into());
    }

    /// The time passed with an operation: `shift_ms` from the latest time. A time ahead
    /// becomes the latest time.
    fn shifted(&mut self, shift_ms: i64) -> Timestamp {
        let shift = ms(shift_ms.unsigned_abs());
        if shift_ms >= 0 {
            self.now = self.now + shift;
            self.now
        } else {
            Timestamp::from_duration(self.now.since_origin().saturating_sub(shift))
        }
    }

    fn payload(&mut self, len: usize, binary: bool) -> Payload {
        self.payload_counter += 1;
        let seed = format!("p{}-", self.payload_counter);
        let bytes: Vec<u8> = seed.bytes().cycle().take(len).collect();
        if binary {
            Payload::from(bytes)
        } else {
            Payload::from(String::from_utf8(bytes).expect("ascii"))
        }
    }

    fn message_payload(&mut self, msg: &Msg) -> Payload {
        let seq = |n: u64| Payload::from(format!("{{\"seq\":{n}}}"));
        match msg {
            Msg::Next => {
                self.server_seq += 1;
                seq(self.server_seq)
            }
            Msg::Repeat(back) => seq(self.server_seq.saturating_sub(*back)),
            Msg::Jump(ahead) => {
                self.server_seq += ahead;
                seq(self.server_seq)
            }
            Msg::At(n) => seq(*n),
            Msg::NoCursor => Payload::Text("tick".into()),
            Msg::Garbage => Payload::Text("{\"seq\":\"x\"}".into()),
            Msg::BinaryNext => {
                self.server_seq += 1;
                Payload::from(format!("{{\"seq\":{}}}", self.server_seq).into_bytes())
            }
        }
    }

    fn socket_event(&mut self, input: &Input) -> SocketEvent {
        match input {
            Input::Opened => SocketEvent::Opened,
            Input::Message(msg) => SocketEvent::Message(self.message_payload(msg)),
            Input::Pong => SocketEvent::Pong,
            Input::Ended(disconnect) => SocketEvent::Ended(disconnect.clone()),
        }
    }

    /// Drains both outputs; they must run dry (one operation yields a handful of each).
    fn drain(&mut self) -> Result<(Vec<Command>, Vec<Event>), TestCaseError> {
        let mut commands = Vec::new();
        while let Some(command) = self.session.poll_command() {
            commands.push(command);
            self.check_runs_dry("poll_command", &commands)?;
        }
        let mut events = Vec::new();
        while let Some(event) = self.session.poll_event() {
            events.push(event);
            self.check_runs_dry("poll_event", &events)?;
        }
        Ok((commands, events))
    }

    /// Plays the operations, then closes the session and checks that nothing was lost.
    pub(crate) fn run(&mut self, steps: &[Step]) -> Result<(), TestCaseError> {
        for step in steps {
            self.apply(step)?;
        }
        self.finish()
    }

    /// Closes the session and checks that every socket was aborted and every accepted
    /// message was sent or handed back exactly once.
    fn finish(&mut self) -> Result<(), TestCaseError> {
        self.apply(&Step {
            op: Op::Close {
                code: 1000,
                reason_len: 3,
            },
            shift_ms: 0,
        })?;
        if *self.session.state() == State::Closing {
            // Either the close handshake completes or the close deadline passes.
            let op = if self.seed % 2 == 0 {
                Op::Advance {
                    ms: self.spec.close_timeout_ms,
                }
            } else {
                Op::Current(Input::Ended(Disconnect::Closed {
                    code: 1000,
                    reason: String::new(),
                }))
            };
            self.apply(&Step { op, shift_ms: 0 })?;
        }
        self.check_all_settled()
    }

    /// Plays one operation: calls the session, drains both outputs, checks them and the
    /// session against the model (`assertions.rs`), and moves the model on.
    pub(crate) fn apply(&mut self, step: &Step) -> Result<(), TestCaseError> {
        self.step += 1;
        self.note(format!(
            "#{} {:?} shift {}ms",
            self.step, step.op, step.shift_ms
        ));
        let now_before = self.now;
        let delivered_before = self.delivered;
        let t = match step.op {
            Op::Advance { .. } | Op::AdvanceToDeadline => self.now,
            _ => self.shifted(step.shift_ms),
        };
        let before = Before {
            now: now_before,
            state: self.session.state().clone(),
            stats: self.session.stats(),
            cursor: self.session.last_cursor(),
            timeout: self.session.poll_timeout(),
            online: self.online,
        };
        let stale_before = self.stale_inputs;
        let mut expect = Expect::default();
        let mut effective_connect = false;
        let mut ended: Option<Disconnect> = None;
        let mut unchanged = false;

        match &step.op {
            Op::Connect => {
                effective_connect =
                    matches!(before.state, State::Idle | State::Closed | State::Failed(_));
                if effective_connect {
                    self.stopped = false;
                    self.close_args = None;
                }
                self.session.connect(t);
            }
            Op::Send { len, binary } => {
                let payload = self.payload(*len, *binary);
                self.send(payload, t, &before)?;
            }
            Op::Close { code, reason_len } => {
                let reason = "r".repeat(*reason_len);
                let result = self.session.close(*code, &reason, t);
                self.note(format!("  close -> {result:?}"));
                self.check_close_result(*code, *reason_len, &result)?;
                if result.is_err() {
                    // A refused close does not look at the time.
                    self.now = before.now;
                    unchanged = true;
                } else if !is_stopped_state(&before.state) {
                    self.close_args = Some((*code, reason));
                    self.closing_since = self.now;
                }
            }
            Op::SetOnline(online) => {
                self.online = *online;
                self.session.set_online(*online, t);
            }
            Op::CheckLiveness => self.session.check_liveness(t),
            Op::Advance { ms } => {
                self.now = self.now + Duration::from_millis(*ms);
                self.timeouts_handled_at = self.now;
                self.session.handle_timeout(self.now);
            }
            Op::AdvanceToDeadline => {
                match self.session.poll_timeout() {
                    Some((deadline, _)) => self.now = self.now.max(deadline),
                    None => self.now = self.now + Duration::from_secs(1),
                }
                self.timeouts_handled_at = self.now;
                self.session.handle_timeout(self.now);
            }
            Op::Current(input) => match (self.live, self.opened.last().copied()) {
                (Some(conn), _) => {
                    ended = self.feed_current(conn, input, t, &mut expect);
                }
                (None, Some(old)) => self.feed_stale(old, input, t),
                (None, None) => {
                    // Nothing to feed: the session saw no time either.
                    self.now = before.now;
                    unchanged = true;
                }
            },
            Op::Stale {
                pick,
                minted,
                input,
            } => {
                let history: Vec<ConnId> = self
                    .opened
                    .iter()
                    .copied()
                    .filter(|conn| Some(*conn) != self.live)
                    .collect();
                let target = if *minted || history.is_empty() {
                    let ids = minted_ids();
                    ids[usize::from(*pick) % ids.len()]
                } else {
                    history[usize::from(*pick) % history.len()]
                };
                if Some(target) == self.live {
                    ended = self.feed_current(target, input, t, &mut expect);
                } else {
                    self.feed_stale(target, input, t);
                }
            }
        }

        let (commands, events) = self.drain()?;
        for command in &commands {
            self.note(format!("  cmd {command:?}"));
        }
        for event in &events {
            self.note(format!("  evt {event:?}"));
        }
        let state = self.session.state().clone();
        self.note(format!(
            "  -> {state:?}, timeout {:?}, cursor {:?}",
            self.session.poll_timeout(),
            self.session.last_cursor()
        ));

        if self.stale_inputs != stale_before || unchanged {
            // Invariant 2 (and refused closes): nothing changes, nothing comes out.
            self.check_nothing_changed(&before, &commands, &events, &state)?;
        }
        if before.state.is_terminal() && !effective_connect {
            self.check_terminal_stays_quiet(&before.state, &commands, &state)?;
        }

        // A run of failures starts with a failure, and ends with a healthy connection or
        // a new message (progress restarts the retry budget, not the backoff).
        let failures = self.session.stats().consecutive_failures;
        let failed_now = failures > before.stats.consecutive_failures;
        self.failing_since = match (failures, self.failing_since) {
            (0, _) => None,
            _ if self.delivered > delivered_before => None,
            (_, Some(since)) => Some(since),
            (_, None) => failed_now.then_some(self.now),
        };
        for command in &commands {
            self.check_command(command)?;
            self.record_command(command);
        }
        for event in &events {
            self.check_event(event, &expect)?;
            self.record_event(event, &mut expect);
        }
        self.check_expectations_met(&expect)?;
        self.check_after(&state)?;
        if let Some(disconnect) = ended {
            self.check_ended(&before.state, &state, &disconnect)?;
        }
        // connect() and coming back online make an attempt at once.
        let came_online = matches!(step.op, Op::SetOnline(true))
            && !before.online
            && matches!(before.state, State::Reconnecting { .. });
        if (effective_connect || came_online) && self.online {
            self.check_attempt_at_once(&step.op, &before, effective_connect, &commands)?;
        }
        if is_stopped_state(&state) {
            self.stopped = true;
        }
        Ok(())
    }

    /// `send`, and the model's queue when the session accepts the message.
    fn send(
        &mut self,
        payload: Payload,
        t: Timestamp,
        before: &Before,
    ) -> Result<(), TestCaseError> {
        let len = payload.len();
        let result = self.session.send(payload.clone(), t);
        self.note(format!(
            "  send({len}B) -> {:?}",
            result.as_ref().map_err(|_| "err")
        ));
        if let Some(id) = self.check_send(result, &payload, before)? {
            self.accepted.insert(id, payload);
            self.outstanding.insert(id, len);
        }
        Ok(())
    }

    /// Feeds input for the live socket and predicts what it must produce. Returns the
    /// disconnect when the input ends the socket.
    fn feed_current(
        &mut self,
        conn: ConnId,
        input: &Input,
        t: Timestamp,
        expect: &mut Expect,
    ) -> Option<Disconnect> {
        let event = self.socket_event(input);
        match &event {
            SocketEvent::Opened if !self.live_open => {
                self.live_open = true;
                self.opens += 1;
                self.opened_at = self.now;
                self.last_inbound = self.now;
                self.probe_outstanding_since = None;
            }
            SocketEvent::Pong if self.live_open => {
                self.last_inbound = self.now;
                self.probe_outstanding_since = None;
            }
            SocketEvent::Message(payload) if self.live_open => {
                self.last_inbound = self.now;
                self.probe_outstanding_since = None;
                let cursor = seq_cursor()(payload);
                match (cursor, self.last_delivered) {
                    (Some(cursor), Some(last)) if cursor <= last => self.replays += 1,
                    _ => {
                        if let (Some(cursor), Some(last)) = (cursor, self.last_delivered) {
                            if self.spec.contiguous && cursor.0 > last.0 + 1 {
                                expect.gap = Some((last, cursor));
                            }
                        }
                        expect.message = Some((payload.clone(), cursor));
                        self.delivered += 1;
                        self.progressed = true;
                    }
                }
            }
            _ => {}
        }
        let ended = match &event {
            SocketEvent::Ended(disconnect) => Some(disconnect.clone()),
            _ => None,
        };
        self.note(format!("  feed {conn} (current) {event:?}"));
        self.session.handle_socket(conn, event, t);
        ended
    }

    fn feed_stale(&mut self, conn: ConnId, input: &Input, t: Timestamp) {
        let event = self.socket_event(input);
        self.note(format!("  feed {conn} (stale) {event:?}"));
        self.stale_inputs += 1;
        self.session.handle_socket(conn, event, t);
    }

    /// Moves the model on by one command (checked by `check_command` first).
    fn record_command(&mut self, command: &Command) {
        match command {
            Command::Open(request) => {
                self.live = Some(request.conn);
                self.live_open = false;
                self.probe_outstanding_since = None;
                self.opened.push(request.conn);
                self.last_open_attempt = Some(request.attempt);
                self.open_requested_at = self.now;
                self.attempts += 1;
            }
            Command::Abort { conn } => {
                self.aborted.insert(*conn);
                self.live = None;
                self.live_open = false;
            }
            Command::Send { id: Some(id), .. } => {
                self.last_sent_id = Some(*id);
                self.outstanding.remove(id);
                self.settled.insert(*id, "sent");
                self.messages_sent += 1;
            }
            Command::Send { id: None, .. } | Command::Ping { .. } => {
                self.probe_outstanding_since.get_or_insert(self.now);
            }
            Command::Close { conn, .. } => {
                self.close_sent.insert(*conn);
            }
        }
    }

    /// Moves the model on by one event (checked by `check_event` first): a delivered
    /// message or reported gap is no longer expected, and handed-back messages leave the
    /// queue.
    fn record_event(&mut self, event: &Event, expect: &mut Expect) {
        match event {
            Event::Message { cursor, .. } => {
                expect.message = None;
                if let Some(cursor) = cursor {
                    self.last_delivered = Some(*cursor);
                }
            }
            Event::CursorGap { .. } => expect.gap = None,
            Event::Unsent(unsent) => {
                for message in unsent {
                    self.outstanding.remove(&message.id);
                    self.settled.insert(message.id, "unsent");
                }
            }
            Event::StateChanged { .. } | Event::Discontinuity { .. } => {}
        }
    }
}
