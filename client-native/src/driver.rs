//! The driver: opens and releases sockets as the session commands, fires its timers, and
//! closes the session once every handle is gone. It holds no policy; every decision is
//! the session's. Messages do not pass through it: the socket task feeds the session and
//! the application's queue itself (see `shared`).

use std::pin::Pin;
use std::sync::Arc;

use resilient_ws_core::{Command, Timestamp};
use tokio::time::Sleep;

use crate::shared::Shared;
use crate::socket::{SocketSettings, SocketTask};
use crate::writer::WriterSlot;

/// What the driver found under the lock.
struct Step {
    /// The timer's new deadline, when it must be armed earlier than it is.
    rearm: Option<Timestamp>,
    /// Whether a timer is armed at all.
    armed: bool,
    terminal: bool,
}

pub(crate) struct Driver {
    shared: Arc<Shared>,
    settings: Arc<SocketSettings>,
    socket: Option<SocketTask>,
    lifecycle: Vec<Command>,
    close_requested_on_drop: bool,
}

impl Driver {
    pub(crate) fn new(shared: Arc<Shared>, settings: Arc<SocketSettings>) -> Self {
        Self {
            shared,
            settings,
            socket: None,
            lifecycle: Vec::new(),
            close_requested_on_drop: false,
        }
    }

    pub(crate) async fn run(mut self) {
        let mut timer: Pin<Box<Sleep>> = Box::pin(tokio::time::sleep(std::time::Duration::ZERO));
        loop {
            let step = self.step();
            for command in std::mem::take(&mut self.lifecycle) {
                self.carry_out(command).await;
            }
            if self.shared.handles_left() == 0 {
                if !step.terminal && !self.close_requested_on_drop {
                    self.close_requested_on_drop = true;
                    let _ = self
                        .shared
                        .with(|session, now| session.close(1000, "", now));
                    continue;
                }
                if step.terminal {
                    break;
                }
            }
            if let Some(at) = step.rearm {
                timer.as_mut().reset(self.shared.clock.instant(at));
            }
            tokio::select! {
                biased;
                () = self.shared.wake.notified() => {}
                // Timers never wait for the application: a slow consumer holds back the
                // socket's reads (see `socket`), never the deadlines, retries or heartbeat.
                () = timer.as_mut(), if step.armed => {
                    self.shared.with(|session, now| session.handle_timeout(now));
                    self.shared.lock().armed_for = None;
                }
            }
        }
        if let Some(socket) = self.socket.take() {
            socket.abort().await;
        }
    }

    /// Drains the session, takes the lifecycle commands, and decides on the timer. A
    /// later deadline keeps the armed timer: it fires early, the session finds nothing
    /// due, and the timer is armed again. That spares the timer wheel a reset for every
    /// message, which moves the heartbeat deadline each time.
    fn step(&mut self) -> Step {
        let mut inner = self.shared.lock();
        // The driver is awake: it needs no wake-up for what this pump finds.
        let wakeups = self.shared.pump(&mut inner);
        self.lifecycle.extend(inner.lifecycle.drain(..));
        let deadline = inner.session.poll_timeout().map(|(at, _)| at);
        let rearm = match (deadline, inner.armed_for) {
            (Some(at), Some(armed)) if armed <= at => None,
            (at, _) => {
                inner.armed_for = at;
                at
            }
        };
        let step = Step {
            rearm,
            armed: inner.armed_for.is_some(),
            terminal: inner.session.state().is_terminal(),
        };
        drop(inner);
        wakeups.wake_others(&self.shared);
        step
    }

    async fn carry_out(&mut self, command: Command) {
        match command {
            Command::Open(open) => {
                debug_assert!(self.socket.is_none(), "the session aborts before it opens");
                let conn = open.conn;
                let written = {
                    let mut inner = self.shared.lock();
                    if inner.session.current_conn() != Some(conn) {
                        return; // released before it was opened: its Abort follows
                    }
                    let slot = WriterSlot::new(conn);
                    let written = slot.written_counter();
                    inner.writer = Some(slot);
                    written
                };
                self.socket = Some(SocketTask::spawn(
                    open,
                    Arc::clone(&self.settings),
                    Arc::clone(&self.shared),
                    written,
                ));
            }
            Command::Abort { conn } => {
                // The pump took the socket's writer slot and its unwritten messages.
                if let Some(socket) = self.socket.take_if(|socket| socket.conn == conn) {
                    socket.abort().await;
                }
            }
            // Frames go from the session to the socket's writer directly.
            Command::Send { .. } | Command::Ping { .. } | Command::Close { .. } => {}
        }
    }
}

impl Drop for Driver {
    /// The stream ends once its events are read, also when the runtime drops the driver.
    fn drop(&mut self) {
        let waker = self.shared.lock().events.finish();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}
