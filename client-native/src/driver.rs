//! The driver: the session and its socket, and the rounds of work that carry out what
//! the session decides. It has one owner at a time (see `baton`): the background task,
//! or the application's task while it waits for events.
//!
//! Each run works in rounds until a round changes nothing: it hands the session what the
//! application asked for, reads what the socket has (messages only while the
//! application's channel has room), fires the timer, carries out the session's commands
//! (open, abort, frames for the writer), writes, and hands the events to the application
//! in one batch. The session is `&mut`; the clock is read once per round. It holds no
//! policy: every decision is the session's.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use resilient_ws_core::{Command, Event, Reason, Session, SocketEvent, State, Timestamp, Unsent};
use tokio::time::Sleep;

use crate::channel::{EventChannel, Room};
use crate::clock::Clock;
use crate::connection::{Connection, Input};
use crate::mailbox::{Mailbox, Request};
use crate::socket::SocketSettings;
use crate::writer::Outbound;

/// Rounds in one poll before the driver yields to the runtime's other tasks.
const MAX_ROUNDS: usize = 32;

/// Messages read in one round at most, so the application gets them in bounded batches.
const MAX_READS_PER_ROUND: usize = 1024;

/// Room for events and requests kept while idle, at most: a burst's buffers go with it.
const KEEP_WHILE_IDLE: usize = 32;

/// Whose task a run is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Runner {
    /// The spawned task: woken by timers, requests, writes, and the socket while the
    /// application is busy.
    Background,
    /// The application's task, in its `poll_next`: it takes the events as soon as the run
    /// ends, so it needs no wake-up and no look past a full channel.
    Application,
}

pub(crate) struct Driver {
    session: Session,
    clock: Clock,
    mailbox: Arc<Mailbox>,
    events: Arc<EventChannel>,
    settings: Arc<SocketSettings>,
    connection: Option<Connection>,
    timer: Pin<Box<Sleep>>,
    /// The deadline the timer is armed for.
    armed_for: Option<Timestamp>,
    /// Requests taken from the mailbox, and events for the application: reused buffers.
    requests: VecDeque<Request>,
    outgoing: VecDeque<Event>,
    /// The last state reported to the handles.
    reported_state: State,
    /// The socket gave something since the last `take_read_any`.
    read_any: bool,
    close_requested_on_drop: bool,
    span: tracing::Span,
}

impl Driver {
    pub(crate) fn new(
        session: Session,
        clock: Clock,
        mailbox: Arc<Mailbox>,
        events: Arc<EventChannel>,
        settings: Arc<SocketSettings>,
        span: tracing::Span,
    ) -> Self {
        let reported_state = session.state().clone();
        Self {
            session,
            clock,
            mailbox,
            events,
            settings,
            connection: None,
            timer: Box::pin(tokio::time::sleep(std::time::Duration::ZERO)),
            armed_for: None,
            requests: VecDeque::new(),
            outgoing: VecDeque::new(),
            reported_state,
            read_any: false,
            close_requested_on_drop: false,
            span,
        }
    }

    /// Works in rounds until one changes nothing; `Ready` once the session is over and
    /// no handle is left. `cx` wakes the background task; `reader` is the socket's read
    /// waker, which wakes whichever task should read.
    pub(crate) fn run(
        &mut self,
        cx: &mut Context<'_>,
        reader: &mut Context<'_>,
        runner: Runner,
    ) -> Poll<()> {
        let _entered = (runner == Runner::Application).then(|| self.span.clone().entered());
        for _ in 0..MAX_ROUNDS {
            let busy = self.round(cx, reader, runner);
            if self.finished() {
                self.connection = None;
                self.events.finish();
                return Poll::Ready(());
            }
            if !busy {
                self.release_idle_buffers();
                return Poll::Pending;
            }
        }
        // Still busy: the background task goes on after the runtime's other tasks ran.
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// One round; whether it changed anything.
    fn round(&mut self, cx: &mut Context<'_>, reader: &mut Context<'_>, runner: Runner) -> bool {
        let now = self.clock.now();
        let mut busy = self.take_requests(cx, now);
        if self.mailbox.handles_left() == 0
            && !self.close_requested_on_drop
            && !self.session.state().is_terminal()
        {
            self.close_requested_on_drop = true;
            let _ = self.session.close(1000, "", now);
            busy = true;
        }
        // Read before the timer: what arrived counts before a deadline is judged.
        busy |= self.read(cx, reader, runner, now);
        if self.armed_for.is_some() && self.timer.as_mut().poll(cx).is_ready() {
            self.armed_for = None;
            self.session.handle_timeout(now);
            busy = true;
        }
        busy |= self.carry_out_commands();
        busy |= self.write(cx, now);
        self.publish(runner);
        self.arm_timer(now);
        busy
    }

    fn take_requests(&mut self, cx: &Context<'_>, now: Timestamp) -> bool {
        self.mailbox.take_requests(&mut self.requests, cx);
        if self.requests.is_empty() {
            return false;
        }
        while let Some(request) = self.requests.pop_front() {
            match request {
                Request::Send(id, payload) => {
                    if let Err(error) = self.session.send_as(id, payload, now) {
                        // Admitted just as the session stopped: handed back, never lost.
                        let payload = error.into_payload();
                        self.outgoing
                            .push_back(Event::Unsent(vec![Unsent { id, payload }]));
                    }
                }
                Request::Close { code, reason } => {
                    let _ = self.session.close(code, &reason, now);
                }
                Request::Connect => self.session.connect(now),
                Request::SetOnline(online) => self.session.set_online(online, now),
                Request::CheckLiveness => self.session.check_liveness(now),
            }
        }
        true
    }

    /// Reads what the socket has, up to a batch, and feeds it to the session. On the
    /// background task a full channel still lets control frames through and reports the
    /// message waiting behind them; the application takes its events right after.
    fn read(
        &mut self,
        cx: &mut Context<'_>,
        reader: &mut Context<'_>,
        runner: Runner,
        now: Timestamp,
    ) -> bool {
        let Some(connection) = self.connection.as_mut() else {
            return false;
        };
        let conn = connection.conn;
        // A close must finish even if the application stopped reading.
        let mut room = if *self.session.state() == State::Closing {
            Room::UNLIMITED
        } else {
            self.events.room(cx)
        };
        let mut busy = false;
        let mut ended = None;
        for _ in 0..MAX_READS_PER_ROUND {
            if room.is_empty() {
                if runner == Runner::Application {
                    break;
                }
            } else {
                match connection.poll_message(reader) {
                    Poll::Ready(Some(payload)) => {
                        busy = true;
                        room.take(payload.len());
                        self.session.handle_message(conn, payload, now);
                        continue;
                    }
                    Poll::Pending => break,
                    // Something else to report: `poll_input` says what.
                    Poll::Ready(None) => {}
                }
            }
            let session = &self.session;
            let input = connection.poll_input(cx, reader, !room.is_empty(), |url| {
                session.resume_url(conn, url)
            });
            let Poll::Ready(input) = input else { break };
            busy = true;
            let event = match input {
                Input::Message(payload) => {
                    room.take(payload.len());
                    self.session.handle_message(conn, payload, now);
                    continue;
                }
                Input::Opened => SocketEvent::Opened,
                Input::Pong => SocketEvent::Pong,
                Input::Backlog(waiting) => SocketEvent::Backlog(waiting),
                Input::Ended(disconnect) => {
                    ended = Some(disconnect);
                    break;
                }
            };
            self.session.handle_socket(conn, event, now);
        }
        self.read_any |= busy;
        if let Some(disconnect) = ended {
            if let Some(connection) = self.connection.take() {
                // Before the end, so a session that stops at it hands them back before
                // its final state change.
                self.session.return_unwritten(conn, connection.finish());
            }
            self.session
                .handle_socket(conn, SocketEvent::Ended(disconnect), now);
        }
        busy
    }

    /// Carries out what the session asked for: sockets to open and drop, frames for the
    /// writer. Queued messages leave only while the writer has room; the rest stay in the
    /// session's bounded queue, where `send` sees them.
    fn carry_out_commands(&mut self) -> bool {
        let mut busy = false;
        loop {
            let takes_queued = self
                .connection
                .as_mut()
                .is_some_and(|connection| connection.writer().has_room());
            let command = if takes_queued {
                self.session.poll_command()
            } else {
                self.session.poll_control()
            };
            let Some(command) = command else { break };
            busy = true;
            let (conn, frame) = match command {
                Command::Open(open) => {
                    debug_assert!(
                        self.connection.is_none(),
                        "the session aborts before it opens"
                    );
                    self.connection = Some(Connection::start(open, Arc::clone(&self.settings)));
                    continue;
                }
                Command::Abort { conn } => {
                    if let Some(connection) = self.connection.take_if(|c| c.conn == conn) {
                        // Dropping it closes the TCP stream now; what it never wrote goes
                        // back to the session before anything else can be handed out.
                        self.session.return_unwritten(conn, connection.finish());
                    }
                    continue;
                }
                Command::Send { conn, payload, id } => {
                    let frame = match id {
                        Some(id) => Outbound::Queued(id, payload),
                        None => Outbound::Control(payload),
                    };
                    (conn, frame)
                }
                Command::Ping { conn } => (conn, Outbound::Ping),
                Command::Close { conn, code, reason } => (conn, Outbound::Close { code, reason }),
            };
            match self.connection.as_mut().filter(|c| c.conn == conn) {
                Some(connection) => connection.writer().push(frame),
                // No socket for it: an application message goes back to the session;
                // anything else for a released socket is moot.
                None => {
                    if let Outbound::Queued(id, payload) = frame {
                        self.session
                            .return_unwritten(conn, vec![Unsent { id, payload }]);
                    }
                }
            }
        }
        busy
    }

    /// Writes the frames waiting, and tells the session which messages the OS accepted.
    fn write(&mut self, cx: &mut Context<'_>, now: Timestamp) -> bool {
        let Some(connection) = self.connection.as_mut() else {
            return false;
        };
        if connection.is_writing() {
            connection.poll_write(cx);
        }
        let written = connection.writer().confirm();
        if written.messages == 0 {
            return false;
        }
        let conn = connection.conn;
        self.session.handle_socket(
            conn,
            SocketEvent::Written {
                messages: written.messages,
                bytes: written.bytes,
            },
            now,
        );
        true
    }

    /// Hands the session's events to the application and its status to the handles.
    fn publish(&mut self, runner: Runner) {
        let mut state_changed = false;
        let known = self.outgoing.len();
        self.session.drain_events(&mut self.outgoing);
        for event in self.outgoing.range(known..) {
            if let Event::StateChanged { state, reason } = event {
                self.span.in_scope(|| log_state(state, reason));
                self.reported_state = state.clone();
                state_changed = true;
            }
        }
        // The status first: an application that sees an event sees the counters after it.
        self.mailbox.report(
            self.session.queue_usage(),
            self.session.stats(),
            self.session.last_cursor(),
            state_changed.then_some(&self.reported_state),
        );
        self.events
            .deliver(&mut self.outgoing, runner == Runner::Background);
    }

    /// Arms the timer for the session's next deadline. A later deadline keeps the armed
    /// timer: it fires early, the session finds nothing due, and it is armed again. That
    /// spares the timer wheel a reset for every message, which moves the heartbeat
    /// deadline each time.
    fn arm_timer(&mut self, now: Timestamp) {
        let deadline = self.session.poll_timeout().map(|(at, _)| at);
        match (deadline, self.armed_for) {
            (Some(at), Some(armed)) if armed <= at => {}
            (Some(at), _) => {
                self.armed_for = Some(at);
                self.timer.as_mut().reset(self.clock.instant(at.max(now)));
            }
            (None, _) => self.armed_for = None,
        }
    }

    /// Nothing to do until woken: an idle connection keeps no room for the last burst.
    fn release_idle_buffers(&mut self) {
        if self.outgoing.capacity() > KEEP_WHILE_IDLE {
            self.outgoing = VecDeque::new();
        }
        if self.requests.capacity() > KEEP_WHILE_IDLE {
            self.requests = VecDeque::new();
        }
    }

    /// Whether the socket gave anything since the last call.
    pub(crate) fn take_read_any(&mut self) -> bool {
        std::mem::take(&mut self.read_any)
    }

    fn finished(&self) -> bool {
        self.session.state().is_terminal() && self.mailbox.handles_left() == 0
    }
}

impl Drop for Driver {
    /// The stream ends once its events are read, also when the runtime drops the driver.
    fn drop(&mut self) {
        self.events.finish();
    }
}

fn log_state(state: &State, reason: &Reason) {
    match state {
        State::Failed(_) => tracing::warn!(%reason, "{state}"),
        State::Reconnecting { .. } => tracing::info!(%reason, "{state}"),
        _ => tracing::debug!(%reason, "{state}"),
    }
}
