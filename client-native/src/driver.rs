//! The driver: a small loop that feeds the session time and socket events and carries out
//! its commands. It holds no policy; every decision is the session's.

use std::pin::Pin;
use std::sync::Arc;

use resilient_ws_core::{Command, ConnId, Event, SocketEvent, State, Timestamp};
use tokio::sync::mpsc;
use tokio::time::Sleep;

use crate::shared::Shared;
use crate::socket::{Outbound, Report, SocketSettings, SocketTask};
use crate::write_window::WriteWindow;

/// Socket reports waiting for the driver, at most. A full channel stops the reader.
const INBOUND_CAPACITY: usize = 8;

/// Events handed to the application in one batch at most.
pub(crate) const EVENT_BATCH: usize = 32;

/// Socket reports handled under one lock of the session.
const INBOUND_BATCH: usize = 4;

/// What woke the driver.
enum Woken {
    Inbound(ConnId, Vec<SocketEvent>),
    Timer,
    EventsClosed,
    Nothing,
}

pub(crate) struct Driver {
    shared: Arc<Shared>,
    settings: Arc<SocketSettings>,
    socket: Option<SocketTask>,
    inbound_tx: mpsc::Sender<Report>,
    inbound_rx: mpsc::Receiver<Report>,
    events: mpsc::Sender<Vec<Event>>,
    /// Events the application has not taken yet. While any wait, the driver reads no
    /// socket and fires no timer, so a slow consumer pushes back instead of piling up.
    pending: Vec<Event>,
    events_closed: bool,
    window: Arc<WriteWindow>,
    close_requested_on_drop: bool,
}

impl Driver {
    pub(crate) fn new(
        shared: Arc<Shared>,
        settings: Arc<SocketSettings>,
        events: mpsc::Sender<Vec<Event>>,
    ) -> Self {
        let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_CAPACITY);
        let window = Arc::new(WriteWindow::new(Arc::clone(&shared.wake)));
        Self {
            shared,
            settings,
            socket: None,
            inbound_tx,
            inbound_rx,
            events,
            pending: Vec::new(),
            events_closed: false,
            window,
            close_requested_on_drop: false,
        }
    }

    pub(crate) async fn run(mut self) {
        let mut timer: Pin<Box<Sleep>> = Box::pin(tokio::time::sleep(std::time::Duration::ZERO));
        let mut armed_for: Option<Timestamp> = None;
        loop {
            let (commands, deadline, state) = self.drain_session();
            let terminal = state.is_terminal();
            for command in commands {
                self.carry_out(command).await;
            }
            self.offer_events();
            if self.shared.handles_left() == 0 {
                if !terminal && !self.close_requested_on_drop {
                    self.close_requested_on_drop = true;
                    let _ = self
                        .shared
                        .command(|session, now| session.close(1000, "", now));
                    continue;
                }
                if terminal && (self.pending.is_empty() || self.events_closed) {
                    break;
                }
            }
            // A later deadline keeps the armed timer: it fires early, the session finds
            // nothing due, and the timer is armed again. That spares the timer wheel a reset
            // for every message, which moves the heartbeat deadline each time.
            match (deadline, armed_for) {
                (Some(at), Some(armed)) if armed <= at => {}
                (Some(at), _) => {
                    timer.as_mut().reset(self.shared.clock.instant(at));
                    armed_for = Some(at);
                }
                (None, _) => armed_for = None,
            }
            // While closing, the close handshake and its deadline go on even if the
            // application has stopped reading: a close must always finish.
            let waiting_on_app = !self.pending.is_empty() && state != State::Closing;
            let woken = tokio::select! {
                biased;
                Some((conn, events)) = self.inbound_rx.recv(), if !waiting_on_app => {
                    Woken::Inbound(conn, events)
                }
                permit = self.events.reserve(), if waiting_on_app => match permit {
                    Ok(permit) => {
                        permit.send(next_batch(&mut self.pending));
                        Woken::Nothing
                    }
                    Err(_) => Woken::EventsClosed,
                },
                () = self.shared.wake.notified() => Woken::Nothing,
                () = timer.as_mut(), if armed_for.is_some() && !waiting_on_app => Woken::Timer,
            };
            match woken {
                Woken::Inbound(conn, events) => self.handle_inbound(conn, events),
                Woken::Timer => {
                    let now = self.shared.clock.now();
                    self.shared.lock().handle_timeout(now);
                    armed_for = None;
                }
                Woken::EventsClosed => self.discard_events(),
                Woken::Nothing => {}
            }
        }
        if let Some(socket) = self.socket.take() {
            socket.abort().await;
        }
    }

    /// Feeds one report, and any more already waiting, under one lock.
    fn handle_inbound(&mut self, conn: ConnId, events: Vec<SocketEvent>) {
        let now = self.shared.clock.now();
        let mut session = self.shared.lock();
        for event in events {
            session.handle_socket(conn, event, now);
        }
        for _ in 1..INBOUND_BATCH {
            let Ok((conn, events)) = self.inbound_rx.try_recv() else {
                break;
            };
            for event in events {
                session.handle_socket(conn, event, now);
            }
        }
    }

    /// Takes the session's outputs: commands (queued messages only while the writer has
    /// room), events, the next deadline, and the state.
    fn drain_session(&mut self) -> (Vec<Command>, Option<Timestamp>, State) {
        let mut session = self.shared.lock();
        let mut room = if self.socket.is_some() {
            self.window.room()
        } else {
            0
        };
        let mut commands = Vec::new();
        loop {
            let command = if room > 0 {
                session.poll_command()
            } else {
                session.poll_control()
            };
            let Some(command) = command else { break };
            if matches!(command, Command::Send { id: Some(_), .. }) {
                room -= 1;
            }
            commands.push(command);
        }
        while let Some(event) = session.poll_event() {
            if let Event::StateChanged { state, reason } = &event {
                log_state(state, reason);
                self.shared.state.send_replace(state.clone());
            }
            if !self.events_closed {
                self.pending.push(event);
            }
        }
        let deadline = session.poll_timeout().map(|(at, _)| at);
        (commands, deadline, session.state().clone())
    }

    async fn carry_out(&mut self, command: Command) {
        match command {
            Command::Open(open) => {
                debug_assert!(self.socket.is_none(), "the session aborts before it opens");
                self.window.reset();
                self.socket = Some(SocketTask::spawn(
                    open,
                    Arc::clone(&self.settings),
                    self.inbound_tx.clone(),
                    Arc::clone(&self.window),
                ));
            }
            Command::Send { conn, payload, id } => {
                let frame = if id.is_some() {
                    self.window.acquire(1);
                    Outbound::Queued(payload)
                } else {
                    Outbound::Control(payload)
                };
                self.write(conn, frame);
            }
            Command::Ping { conn } => self.write(conn, Outbound::Ping),
            Command::Close { conn, code, reason } => {
                self.write(conn, Outbound::Close { code, reason })
            }
            Command::Abort { conn } => {
                if self
                    .socket
                    .as_ref()
                    .is_some_and(|socket| socket.conn == conn)
                {
                    if let Some(socket) = self.socket.take() {
                        socket.abort().await;
                    }
                }
            }
        }
    }

    fn write(&mut self, conn: ConnId, frame: Outbound) {
        if let Some(socket) = self.socket.as_ref().filter(|socket| socket.conn == conn) {
            // A socket whose task ended reports `Ended` itself; the frame is moot.
            let _ = socket.send(frame);
        }
    }

    /// Hands events to the application, in batches, while its channel has room.
    fn offer_events(&mut self) {
        while !self.pending.is_empty() {
            let closed = match self.events.try_reserve() {
                Ok(permit) => {
                    permit.send(next_batch(&mut self.pending));
                    continue;
                }
                Err(mpsc::error::TrySendError::Full(())) => false,
                Err(mpsc::error::TrySendError::Closed(())) => true,
            };
            if closed {
                self.discard_events();
            }
            return;
        }
    }

    /// The application dropped its event stream: stop keeping events for it.
    fn discard_events(&mut self) {
        self.events_closed = true;
        self.pending.clear();
    }
}

/// Takes the oldest events, at most [`EVENT_BATCH`]: one channel send and one wake-up of the
/// application for a whole burst.
fn next_batch(pending: &mut Vec<Event>) -> Vec<Event> {
    if pending.len() <= EVENT_BATCH {
        std::mem::take(pending)
    } else {
        pending.drain(..EVENT_BATCH).collect()
    }
}

fn log_state(state: &State, reason: &resilient_ws_core::Reason) {
    match state {
        State::Failed(_) => tracing::warn!(%reason, "{state}"),
        State::Reconnecting { .. } => tracing::info!(%reason, "{state}"),
        _ => tracing::debug!(%reason, "{state}"),
    }
}
