//! The session: one logical connection carried over as many sockets as it takes.

use alloc::borrow::ToOwned;
use alloc::collections::VecDeque;
use alloc::string::String;

use crate::command::{Command, OpenRequest};
use crate::config::Config;
use crate::epoch::Welcome;
use crate::error::{CloseError, ConfigError, SendError};
use crate::event::{Event, Failure, Reason, State};
use crate::heartbeat::{HeartbeatDue, Liveness, Probe};
use crate::ids::{ConnId, IdSequence, MsgId};
use crate::input::SocketEvent;
use crate::payload::Payload;
use crate::queue::{OutboundQueue, QueueUsage, Unsent};
use crate::resume::{Admission, Cursor, ReplayFilter, ResumeMode, with_query_param};
use crate::retry::{Disconnect, RetryAction};
use crate::rng::SeededRng;
use crate::stats::Stats;
use crate::time::{MonotonicClock, Timestamp};
use crate::timer::{Timer, TimerTable};

/// A resilient WebSocket session, without I/O.
///
/// The session is a value that is fed inputs and drained of outputs; it never reads a
/// clock, draws OS randomness or touches a socket. Its methods fall into groups:
///
/// - **Commands from the application**: [`connect`](Self::connect),
///   [`send`](Self::send), [`close`](Self::close), [`set_online`](Self::set_online),
///   [`check_liveness`](Self::check_liveness).
/// - **Inputs from the driver**: [`handle_socket`](Self::handle_socket) with the
///   [`ConnId`] the event came from, and [`handle_timeout`](Self::handle_timeout).
/// - **Outputs**: [`poll_command`](Self::poll_command) (for the driver),
///   [`poll_event`](Self::poll_event) (for the application) and
///   [`poll_timeout`](Self::poll_timeout) (when to call `handle_timeout` next).
/// - **Getters**: [`state`](Self::state), [`last_cursor`](Self::last_cursor),
///   [`stats`](Self::stats).
///
/// After every call of the first two groups, drain `poll_command` and `poll_event` until
/// they return `None`, then sleep until `poll_timeout` or the next input. Every call takes
/// the current time; time that goes backwards is treated as the latest time seen.
#[derive(Debug)]
pub struct Session {
    config: Config,
    rng: SeededRng,
    clock: MonotonicClock,
    state: State,
    state_since: Timestamp,
    socket: Option<Socket>,
    conn_ids: IdSequence,
    msg_ids: IdSequence,
    /// The server's epoch, from its last welcome.
    epoch: Option<String>,
    /// Failed attempts since the last healthy connection: the backoff's exponent. Only
    /// the stability window resets it, so a flapping server always backs the client off.
    failures: u32,
    /// Failed attempts since the last progress (a healthy connection, or a connection
    /// that delivered a new message): what the failure cap counts. Replays are not
    /// progress.
    fruitless: u32,
    /// When the current run of failures began.
    failing_since: Option<Timestamp>,
    online: bool,
    close_request: Option<CloseRequest>,
    queue: OutboundQueue,
    replay: ReplayFilter,
    timers: TimerTable,
    commands: VecDeque<Command>,
    events: VecDeque<Event>,
    /// The counted fields of the stats; the derived ones are filled in by `stats()`.
    counters: Stats,
    opened_before: bool,
}

/// The one socket the session may have.
#[derive(Debug)]
struct Socket {
    id: ConnId,
    phase: SocketPhase,
}

#[derive(Debug)]
enum SocketPhase {
    Handshaking,
    Open {
        /// Stayed open for the stability window.
        healthy: bool,
        /// Delivered a new message (not a replay).
        progressed: bool,
        /// The driver holds inbound data the application has not taken yet.
        backlog: bool,
        liveness: Liveness,
        close_sent: bool,
        /// The first message arrived (it may be the server's welcome).
        greeted: bool,
    },
}

#[derive(Clone, Debug)]
struct CloseRequest {
    code: u16,
    reason: String,
}

impl Session {
    /// A session in the [`State::Idle`] state. `seed` drives the backoff jitter: give each
    /// client its own (for example from the OS) so a crowd of clients spreads out, or a
    /// fixed one to replay a run exactly.
    pub fn new(config: Config, seed: u64) -> Result<Self, ConfigError> {
        config.validate()?;
        let replay = ReplayFilter::new(config.start_cursor, config.contiguous_cursors);
        let queue = OutboundQueue::new(config.queue);
        Ok(Self {
            config,
            rng: SeededRng::new(seed),
            clock: MonotonicClock::default(),
            state: State::Idle,
            state_since: Timestamp::ZERO,
            socket: None,
            conn_ids: IdSequence::default(),
            msg_ids: IdSequence::default(),
            epoch: None,
            failures: 0,
            fruitless: 0,
            failing_since: None,
            online: true,
            close_request: None,
            queue,
            replay,
            timers: TimerTable::default(),
            commands: VecDeque::new(),
            events: VecDeque::new(),
            counters: Stats::default(),
            opened_before: false,
        })
    }

    // ---- Getters ----

    /// The current state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The cursor of the last delivered message (or the configured start cursor).
    pub fn last_cursor(&self) -> Option<Cursor> {
        self.replay.last_delivered()
    }

    /// The counters, with time in state measured up to the latest time seen.
    pub fn stats(&self) -> Stats {
        Stats {
            queued: self.queue.len(),
            queued_bytes: self.queue.bytes(),
            consecutive_failures: self.failures,
            time_in_state: self.clock.now() - self.state_since,
            ..self.counters.clone()
        }
    }

    /// The settings.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The socket the session currently owns, if any.
    pub fn current_conn(&self) -> Option<ConnId> {
        self.socket.as_ref().map(|socket| socket.id)
    }

    /// `url`, from a driver's per-attempt request provider for socket `conn`, with the
    /// resume query parameter applied exactly as to the configured URL in its
    /// [`Command::Open`]; `None` once `conn` is not the current socket.
    pub fn resume_url(&self, conn: ConnId, url: &str) -> Option<String> {
        (self.current_conn() == Some(conn))
            .then(|| self.url_with_resume(url, self.replay.last_delivered()))
    }

    // ---- Commands from the application ----

    /// Starts the session: from idle, closed or failed, makes the first attempt at once.
    /// Does nothing while the session is already running or closing.
    pub fn connect(&mut self, now: Timestamp) {
        let now = self.clock.advance(now);
        if !matches!(self.state, State::Idle | State::Closed | State::Failed(_)) {
            return;
        }
        self.failures = 0;
        self.fruitless = 0;
        self.failing_since = None;
        self.start_attempt(now, Reason::ConnectCalled);
    }

    /// Queues a message; it leaves on the next open socket, in the order sent. Accepted
    /// while idle, connecting, open or reconnecting; a full queue or a stopped session
    /// hands the message back in the error.
    pub fn send(&mut self, payload: Payload, now: Timestamp) -> Result<MsgId, SendError> {
        let id = MsgId(self.msg_ids.peek());
        self.send_as(id, payload, now)?;
        Ok(id)
    }

    /// Like [`send`](Self::send), for a driver that numbers messages itself: one that
    /// admits them on another thread (with [`QueueBounds::admit`](crate::QueueBounds::admit) against
    /// [`queue_usage`](Self::queue_usage)) and hands them over in order. Ids must increase
    /// in the order sent; [`send`](Self::send) goes on after the highest.
    pub fn send_as(
        &mut self,
        id: MsgId,
        payload: Payload,
        now: Timestamp,
    ) -> Result<(), SendError> {
        self.clock.advance(now);
        if matches!(
            self.state,
            State::Closing | State::Closed | State::Failed(_)
        ) {
            return Err(SendError::NotRunning { payload });
        }
        self.queue.push(id, payload)?;
        self.msg_ids.skip_past(id.0);
        Ok(())
    }

    /// What counts against the outbound queue's bounds now.
    pub fn queue_usage(&self) -> QueueUsage {
        self.queue.usage()
    }

    /// Closes the session gracefully: on an open (or handshaking) socket the queue is
    /// flushed and the close handshake done, within the close timeout; otherwise it closes
    /// at once. Messages that could not be sent come back in [`Event::Unsent`].
    pub fn close(&mut self, code: u16, reason: &str, now: Timestamp) -> Result<(), CloseError> {
        crate::error::check_close(code, reason)?;
        let now = self.clock.advance(now);
        if matches!(
            self.state,
            State::Closing | State::Closed | State::Failed(_)
        ) {
            return Ok(());
        }
        let flushable = match &self.socket {
            Some(Socket {
                phase: SocketPhase::Open { .. },
                ..
            }) => true,
            Some(Socket {
                phase: SocketPhase::Handshaking,
                ..
            }) => !self.queue.is_empty(),
            None => false,
        };
        if !flushable {
            self.finish_close(now, Reason::CloseCalled);
            return Ok(());
        }
        self.close_request = Some(CloseRequest {
            code,
            reason: reason.to_owned(),
        });
        self.timers.stop(Timer::Heartbeat);
        self.timers.stop(Timer::Stable);
        self.timers
            .set(Timer::Close, now + self.config.close_timeout);
        self.set_state(now, State::Closing, Reason::CloseCalled);
        Ok(())
    }

    /// Tells the session whether the network is up. Going offline ends the current socket
    /// at once and waits; coming back online makes the next attempt at once, without
    /// waiting out the backoff.
    pub fn set_online(&mut self, online: bool, now: Timestamp) {
        let now = self.clock.advance(now);
        if self.online == online {
            return;
        }
        self.online = online;
        if online {
            if matches!(self.state, State::Reconnecting { .. }) {
                self.timers.stop(Timer::Retry);
                self.start_attempt(now, Reason::CameOnline);
            }
            return;
        }
        if self.close_request.is_some() {
            self.finish_close(now, Reason::WentOffline);
            return;
        }
        if matches!(
            self.state,
            State::Connecting { .. } | State::Open | State::Reconnecting { .. }
        ) {
            self.release_socket();
            self.timers.stop(Timer::Retry);
            self.wait_for_network(now, Reason::WentOffline);
        }
    }

    /// Probes an open connection now instead of waiting for the heartbeat interval (for
    /// example when a hidden browser tab becomes visible). Does nothing without a
    /// heartbeat probe configured.
    pub fn check_liveness(&mut self, now: Timestamp) {
        let now = self.clock.advance(now);
        let probes = self
            .config
            .heartbeat
            .as_ref()
            .is_some_and(|heartbeat| heartbeat.probe != Probe::IdleOnly);
        if probes && self.close_request.is_none() {
            self.send_probe(now);
        }
    }

    // ---- Inputs from the driver ----

    /// Feeds in something that happened on socket `conn`. Input from any socket but the
    /// current one is ignored and counted in [`Stats::stale_inputs`].
    pub fn handle_socket(&mut self, conn: ConnId, event: SocketEvent, now: Timestamp) {
        let Some(now) = self.current_input_time(conn, now) else {
            return;
        };
        match event {
            SocketEvent::Opened => self.on_opened(now),
            SocketEvent::Message(payload) => self.on_message(now, payload),
            SocketEvent::Welcome(welcome) => {
                if self.on_inbound(now) {
                    self.greet(welcome);
                }
            }
            SocketEvent::Pong => {
                self.on_inbound(now);
            }
            SocketEvent::Written { messages, bytes } => {
                self.counters.messages_sent += self.queue.confirm(messages, bytes) as u64;
            }
            SocketEvent::Backlog(waiting) => self.on_backlog(now, waiting),
            SocketEvent::Ended(disconnect) => self.on_ended(now, disconnect),
        }
    }

    /// A message from socket `conn`: the same as [`handle_socket`](Self::handle_socket)
    /// with [`SocketEvent::Message`], for a driver's per-message loop.
    #[inline]
    pub fn handle_message(&mut self, conn: ConnId, payload: Payload, now: Timestamp) {
        if let Some(now) = self.current_input_time(conn, now) {
            self.on_message(now, payload);
        }
    }

    /// The time of an input from socket `conn`, if it is the current socket; input from
    /// any other is counted stale.
    #[inline]
    fn current_input_time(&mut self, conn: ConnId, now: Timestamp) -> Option<Timestamp> {
        let now = self.clock.advance(now);
        if self.current_conn() != Some(conn) {
            self.counters.stale_inputs += 1;
            return None;
        }
        Some(now)
    }

    /// For drivers with [`Config::confirm_writes`]: socket `conn` is gone (it ended, or
    /// the session released it) and `unwritten` are the application messages handed to
    /// it that never reached the OS socket, oldest first. They go back to the front of
    /// the queue, ahead of everything sent since, and leave on the next connection; once
    /// the session has stopped they come back in [`Event::Unsent`]. Every other message
    /// handed to the socket counts as written.
    ///
    /// A driver that knows them when the socket reports its end may call this just
    /// before [`SocketEvent::Ended`]: a session that stops at that end then hands them
    /// back before its final state change. Called after (as on an `Abort` the session
    /// issued itself), the `Unsent` event follows the final state.
    pub fn return_unwritten(&mut self, conn: ConnId, unwritten: alloc::vec::Vec<Unsent>) {
        let _ = conn; // Only one socket is ever in flight: its Abort came before any Open.
        self.counters.messages_sent += self.queue.requeue(unwritten) as u64;
        // A close that ends its socket finishes at once (`finish_close`): stopped is terminal.
        if self.state.is_terminal() {
            self.hand_back_unsent();
        }
    }

    /// Fires every timer that is due at `now`.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        let now = self.clock.advance(now);
        while let Some(timer) = self.timers.pop_expired(now) {
            match timer {
                Timer::Connect => self.on_ended(now, Disconnect::ConnectTimeout),
                Timer::Retry => self.start_attempt(now, Reason::RetryDue),
                Timer::Stable => self.mark_healthy(),
                Timer::Heartbeat => self.on_heartbeat_due(now),
                Timer::Close => self.finish_close(now, Reason::CloseTimedOut),
            }
        }
    }

    // ---- Outputs ----

    /// The next thing the driver must do. Queued application messages leave only while a
    /// socket is open, so the queue's bounds hold until the driver takes them.
    pub fn poll_command(&mut self) -> Option<Command> {
        self.next_command(true)
    }

    /// Like [`poll_command`](Self::poll_command), but leaves queued application messages
    /// in the queue: for a driver whose socket cannot take more writes right now. Control
    /// commands (open, ping, abort) must never wait behind a slow writer.
    pub fn poll_control(&mut self) -> Option<Command> {
        self.next_command(false)
    }

    /// The next thing the application should know.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Moves every event [`poll_event`](Self::poll_event) would return, in order, to the
    /// back of `into`: for a driver that hands events over in batches. When `into` is
    /// empty the two buffers are swapped, so a batch of messages is not moved one by one.
    pub fn drain_events(&mut self, into: &mut VecDeque<Event>) {
        if into.is_empty() {
            core::mem::swap(&mut self.events, into);
        } else {
            into.extend(self.events.drain(..));
        }
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next, and why; never earlier
    /// than the latest time seen, so a driver loop cannot spin on a deadline in the past.
    pub fn poll_timeout(&self) -> Option<(Timestamp, Timer)> {
        self.timers
            .next()
            .map(|(deadline, timer)| (deadline.max(self.clock.now()), timer))
    }

    // ---- Transitions ----

    fn next_command(&mut self, take_queued: bool) -> Option<Command> {
        if let Some(command) = self.commands.pop_front() {
            return Some(command);
        }
        let socket = self.socket.as_mut()?;
        let SocketPhase::Open { close_sent, .. } = &mut socket.phase else {
            return None;
        };
        if *close_sent {
            return None;
        }
        if !self.queue.is_empty() {
            if !take_queued {
                return None;
            }
            let message = if self.config.confirm_writes {
                self.queue.pop_in_flight()?
            } else {
                self.counters.messages_sent += 1;
                self.queue.pop()?
            };
            return Some(Command::Send {
                conn: socket.id,
                payload: message.payload,
                id: Some(message.id),
            });
        }
        // The close goes out only once everything queued before it has.
        let request = self.close_request.as_ref()?;
        *close_sent = true;
        Some(Command::Close {
            conn: socket.id,
            code: request.code,
            reason: request.reason.clone(),
        })
    }

    fn set_state(&mut self, now: Timestamp, state: State, reason: Reason) {
        self.state = state.clone();
        self.state_since = now;
        self.events.push_back(Event::StateChanged { state, reason });
    }

    fn start_attempt(&mut self, now: Timestamp, reason: Reason) {
        if !self.online {
            self.wait_for_network(now, Reason::WentOffline);
            return;
        }
        let attempt = self.failures + 1;
        let conn = ConnId(self.conn_ids.next());
        let cursor = self.replay.last_delivered();
        let resume = &self.config.resume;
        self.commands.push_back(Command::Open(OpenRequest {
            conn,
            attempt,
            url: self.url_with_resume(&self.config.url, cursor),
            resume_header: resume.header(cursor),
            cursor,
        }));
        self.socket = Some(Socket {
            id: conn,
            phase: SocketPhase::Handshaking,
        });
        self.counters.attempts += 1;
        self.timers
            .set(Timer::Connect, now + self.config.connect_timeout);
        self.set_state(now, State::Connecting { attempt }, reason);
    }

    fn wait_for_network(&mut self, now: Timestamp, reason: Reason) {
        let state = State::Reconnecting {
            attempt: self.failures + 1,
            retry_at: None,
            delay: core::time::Duration::ZERO,
        };
        self.set_state(now, state, reason);
    }

    fn on_opened(&mut self, now: Timestamp) {
        let Some(socket) = self.socket.as_mut() else {
            return;
        };
        if !matches!(socket.phase, SocketPhase::Handshaking) {
            return;
        }
        socket.phase = SocketPhase::Open {
            healthy: false,
            progressed: false,
            backlog: false,
            liveness: Liveness::new(now),
            close_sent: false,
            greeted: false,
        };
        let conn = socket.id;
        self.timers.stop(Timer::Connect);
        if self.opened_before {
            self.counters.reconnects += 1;
        }
        self.opened_before = true;
        if self.close_request.is_some() {
            // Opened only to flush the queue; poll_command sends the close after it.
            return;
        }
        self.timers
            .set(Timer::Stable, now + self.config.stability_window);
        self.arm_heartbeat();
        if let Some(first) = self
            .config
            .resume
            .first_message(self.replay.last_delivered())
        {
            self.commands.push_back(Command::Send {
                conn,
                payload: first,
                id: None,
            });
        }
        self.set_state(now, State::Open, Reason::HandshakeComplete);
    }

    /// A message on the open socket. One look at the socket covers what every message
    /// touches (liveness, the welcome, progress): this runs once per message.
    fn on_message(&mut self, now: Timestamp, payload: Payload) {
        let Some(Socket {
            phase:
                SocketPhase::Open {
                    liveness,
                    greeted,
                    progressed,
                    ..
                },
            ..
        }) = self.socket.as_mut()
        else {
            return;
        };
        let deadline_moved = liveness.on_inbound(now);
        let first = !core::mem::replace(greeted, true);
        let first_progress = !*progressed;
        if deadline_moved {
            self.arm_heartbeat();
        }
        if first && self.take_welcome(&payload) {
            return;
        }
        let cursor = self
            .config
            .cursor
            .as_ref()
            .and_then(|extract| extract(&payload));
        match self.replay.admit(cursor) {
            Admission::Replay => {
                self.counters.replays_dropped += 1;
                return;
            }
            Admission::DeliverAfterGap { last } => {
                if let Some(received) = cursor {
                    self.events.push_back(Event::CursorGap { last, received });
                }
            }
            Admission::Deliver => {}
        }
        if first_progress {
            self.mark_progress();
        }
        self.counters.messages_delivered += 1;
        self.events.push_back(Event::Message { payload, cursor });
    }

    /// The first message of a connection, if it is the server's welcome: it is read, not
    /// delivered. A stream that does not continue the one resumed from is reported, and
    /// its cursors are new again.
    fn take_welcome(&mut self, payload: &Payload) -> bool {
        let Some(welcome) = self.config.welcome.as_ref().and_then(|read| read(payload)) else {
            return false;
        };
        self.greet(welcome);
        true
    }

    /// The server's welcome: its epoch, and whether the stream continues the resumed one.
    fn greet(&mut self, welcome: Welcome) {
        if let Some(Socket {
            phase: SocketPhase::Open { greeted, .. },
            ..
        }) = self.socket.as_mut()
        {
            *greeted = true;
        }
        let resumed_from = self.replay.last_delivered();
        let changed = self
            .epoch
            .as_ref()
            .is_some_and(|known| *known != welcome.epoch);
        if resumed_from.is_some() && (changed || !welcome.resumed) {
            self.replay.restart();
            self.events.push_back(Event::Discontinuity {
                previous_epoch: self.epoch.take(),
                epoch: welcome.epoch.clone(),
                reason: welcome.reason,
                last_cursor: resumed_from,
            });
        }
        self.epoch = Some(welcome.epoch);
    }

    /// `url` with the resume query parameter, and the epoch beside it when known.
    fn url_with_resume(&self, url: &str, cursor: Option<Cursor>) -> String {
        let url = self.config.resume.apply_to_url(url, cursor);
        match (
            &self.config.resume,
            cursor,
            &self.config.epoch_query,
            &self.epoch,
        ) {
            (ResumeMode::QueryParam(_), Some(_), Some(name), Some(epoch)) => {
                with_query_param(&url, name, epoch)
            }
            _ => url,
        }
    }

    fn on_backlog(&mut self, now: Timestamp, waiting: bool) {
        if let Some(Socket {
            phase: SocketPhase::Open { backlog, .. },
            ..
        }) = self.socket.as_mut()
        {
            *backlog = waiting;
        }
        // Data that arrived, or was handed over just now, proves the connection alive
        // until now.
        self.on_inbound(now);
    }

    /// Records proof of life; false when the socket is not open yet.
    fn on_inbound(&mut self, now: Timestamp) -> bool {
        let Some(Socket {
            phase: SocketPhase::Open { liveness, .. },
            ..
        }) = self.socket.as_mut()
        else {
            return false;
        };
        if liveness.on_inbound(now) {
            self.arm_heartbeat();
        }
        true
    }

    /// The stability window passed: the failure run is over.
    fn mark_healthy(&mut self) {
        if let Some(Socket {
            phase: SocketPhase::Open { healthy, .. },
            ..
        }) = self.socket.as_mut()
        {
            *healthy = true;
            self.failures = 0;
            self.fruitless = 0;
            self.failing_since = None;
        }
    }

    /// The connection's first new message arrived: the failure cap and the retry budget
    /// start over, but the backoff keeps growing until the connection proves stable.
    fn mark_progress(&mut self) {
        if let Some(Socket {
            phase: SocketPhase::Open { progressed, .. },
            ..
        }) = self.socket.as_mut()
        {
            *progressed = true;
            self.fruitless = 0;
            self.failing_since = None;
        }
    }

    fn arm_heartbeat(&mut self) {
        let deadline = match (&self.config.heartbeat, &self.socket, &self.close_request) {
            (
                Some(heartbeat),
                Some(Socket {
                    phase: SocketPhase::Open { liveness, .. },
                    ..
                }),
                None,
            ) => Some(liveness.deadline(heartbeat).0),
            _ => None,
        };
        match deadline {
            Some(deadline) => self.timers.set(Timer::Heartbeat, deadline),
            None => self.timers.stop(Timer::Heartbeat),
        }
    }

    fn on_heartbeat_due(&mut self, now: Timestamp) {
        let due = match (&self.config.heartbeat, &self.socket) {
            (
                Some(heartbeat),
                Some(Socket {
                    phase:
                        SocketPhase::Open {
                            liveness, backlog, ..
                        },
                    ..
                }),
            ) => (!*backlog).then(|| liveness.deadline(heartbeat).1),
            _ => return,
        };
        let Some(due) = due else {
            // Data waits for the application: the connection was heard from, and cannot
            // be judged until the application takes it.
            self.on_inbound(now);
            return;
        };
        match due {
            HeartbeatDue::Probe => self.send_probe(now),
            HeartbeatDue::Dead => {
                self.counters.heartbeat_timeouts += 1;
                self.on_ended(now, Disconnect::HeartbeatTimeout);
            }
        }
    }

    fn send_probe(&mut self, now: Timestamp) {
        let Some(heartbeat) = &self.config.heartbeat else {
            return;
        };
        let Some(Socket {
            id,
            phase: SocketPhase::Open { liveness, .. },
        }) = self.socket.as_mut()
        else {
            return;
        };
        let conn = *id;
        match &heartbeat.probe {
            Probe::PingFrame => self.commands.push_back(Command::Ping { conn }),
            Probe::Message(payload) => self.commands.push_back(Command::Send {
                conn,
                payload: payload.clone(),
                id: None,
            }),
            Probe::IdleOnly => return,
        }
        liveness.on_probe_sent(now);
        self.arm_heartbeat();
    }

    /// The current socket ended or failed: release it, then close, fail or retry.
    fn on_ended(&mut self, now: Timestamp, disconnect: Disconnect) {
        let (was_healthy, progressed) = match &self.socket {
            Some(Socket {
                phase:
                    SocketPhase::Open {
                        healthy,
                        progressed,
                        ..
                    },
                ..
            }) => (*healthy, *progressed),
            _ => (false, false),
        };
        let close_sent = matches!(
            self.socket,
            Some(Socket {
                phase: SocketPhase::Open {
                    close_sent: true,
                    ..
                },
                ..
            })
        );
        self.release_socket();
        if self.close_request.is_some() {
            let reason = if close_sent {
                Reason::CloseComplete
            } else {
                Reason::Disconnected(disconnect)
            };
            self.finish_close(now, reason);
            return;
        }
        if !was_healthy {
            self.failures += 1;
            if !progressed {
                self.fruitless += 1;
            }
            self.failing_since.get_or_insert(now);
        }
        self.schedule_retry(now, disconnect);
    }

    fn schedule_retry(&mut self, now: Timestamp, disconnect: Disconnect) {
        let delay = match self.config.retry.decide(&disconnect) {
            RetryAction::GiveUp => return self.fail(now, Failure::Fatal(disconnect)),
            RetryAction::Reconnect => self.config.backoff.delay(self.failures, &mut self.rng),
            RetryAction::ReconnectSlowly => self
                .config
                .backoff
                .delay(self.failures.max(1), &mut self.rng),
            RetryAction::ReconnectAfter(wait) => {
                self.config
                    .backoff
                    .delay_after(wait, self.failures, &mut self.rng)
            }
        };
        if self
            .config
            .max_failures
            .is_some_and(|max| self.fruitless >= max)
        {
            let failure = Failure::TooManyFailures {
                attempts: self.fruitless,
                last: disconnect,
            };
            return self.fail(now, failure);
        }
        if let (Some(budget), Some(since)) = (self.config.max_retry_duration, self.failing_since) {
            if (now + delay) - since > budget {
                let failure = Failure::RetryBudgetExhausted {
                    elapsed: now - since,
                    last: disconnect,
                };
                return self.fail(now, failure);
            }
        }
        let reason = Reason::Disconnected(disconnect);
        if !self.online {
            return self.wait_for_network(now, reason);
        }
        let retry_at = now + delay;
        self.timers.set(Timer::Retry, retry_at);
        let state = State::Reconnecting {
            attempt: self.failures + 1,
            retry_at: Some(retry_at),
            delay,
        };
        self.set_state(now, state, reason);
    }

    fn fail(&mut self, now: Timestamp, failure: Failure) {
        self.release_socket();
        self.timers.stop_all();
        self.close_request = None;
        self.hand_back_unsent();
        let reason = Reason::Disconnected(failure.last_error().clone());
        self.set_state(now, State::Failed(failure), reason);
    }

    fn finish_close(&mut self, now: Timestamp, reason: Reason) {
        self.release_socket();
        self.timers.stop_all();
        self.close_request = None;
        self.hand_back_unsent();
        self.set_state(now, State::Closed, reason);
    }

    /// Gives up the current socket: the driver is told to drop it, and any later input
    /// from it is stale.
    fn release_socket(&mut self) {
        if let Some(socket) = self.socket.take() {
            self.commands.push_back(Command::Abort { conn: socket.id });
        }
        self.timers.stop(Timer::Connect);
        self.timers.stop(Timer::Stable);
        self.timers.stop(Timer::Heartbeat);
    }

    fn hand_back_unsent(&mut self) {
        if self.queue.has_in_flight() {
            // The driver returns what the socket never wrote (`return_unwritten`); those
            // are older, so everything comes back then, in order.
            return;
        }
        let unsent = self.queue.take_all();
        if !unsent.is_empty() {
            self.events.push_back(Event::Unsent(unsent));
        }
    }
}
