//! The session and what the host needs carried out from it. Every input runs one step:
//! the session handles it, its commands go to the host at once, one timer is kept on its
//! next deadline, and its events go to the host after the session is released, so a
//! listener may call back into the client. It holds no policy.

use core::cell::RefCell;

use resilient_ws_core::{Command, ConnId, Payload, Session, SocketEvent, Timestamp};

use crate::host::Host;
use crate::report::report;
use crate::settings::duration_from_millis;
use crate::writes::Writes;

/// A session and its host, shared by every handle to one client.
pub(crate) struct Shared {
    pub(crate) driver: RefCell<Driver>,
    pub(crate) host: Host,
}

/// The session and the little the host cannot keep for it.
pub(crate) struct Driver {
    pub(crate) session: Session,
    /// The deadline the host's timer is set for. Kept lazily: a later deadline waits for
    /// this one to fire, so a deadline that moves with every message (the idle timeout)
    /// costs no timer call per message.
    armed: Option<Timestamp>,
    /// The current socket and the one before: inputs name sockets by number, and a late
    /// report from the previous one must still reach the session as stale.
    sockets: [Option<ConnId>; 2],
    /// The latest time fed to the session: an event's own time stamp may be a little older
    /// than a clock reading already used, and the session's time must not go back.
    latest: Timestamp,
    /// The messages handed to the current socket that have not yet left its buffer.
    writes: Writes,
}

impl Shared {
    pub(crate) fn new(session: Session, host: Host) -> Self {
        Self {
            driver: RefCell::new(Driver {
                session,
                armed: None,
                sockets: [None; 2],
                latest: Timestamp::ZERO,
                writes: Writes::default(),
            }),
            host,
        }
    }

    /// Runs an input, carries out the commands it produced, then reports its events.
    pub(crate) fn step<R>(&self, input: impl FnOnce(&mut Driver, Timestamp) -> R) -> R {
        self.step_at(self.host.now(), input)
    }

    /// [`Self::step`] at `now_ms` on the host's clock (an event's `timeStamp` plus the time
    /// slept), which saves reading the clock once per message.
    pub(crate) fn step_at<R>(
        &self,
        now_ms: f64,
        input: impl FnOnce(&mut Driver, Timestamp) -> R,
    ) -> R {
        let result = {
            let mut driver = self.driver.borrow_mut();
            let now = driver
                .latest
                .max(Timestamp::from_duration(duration_from_millis(
                    now_ms.max(0.0),
                )));
            driver.latest = now;
            let result = input(&mut driver, now);
            driver.carry_out_commands(&self.host);
            driver.arm_timer(&self.host, now);
            result
        };
        self.report_events();
        result
    }

    /// Events one at a time, with the session released in between.
    fn report_events(&self) {
        loop {
            let event = self.driver.borrow_mut().session.poll_event();
            match event {
                Some(event) => report(&self.host, event),
                None => return,
            }
        }
    }
}

impl Driver {
    /// The socket the host calls `conn`, when it is the current one or the one before.
    pub(crate) fn socket(&self, conn: f64) -> Option<ConnId> {
        self.sockets
            .iter()
            .flatten()
            .copied()
            .find(|id| id.get() as f64 == conn)
    }

    /// The host's timer fired.
    pub(crate) fn disarm(&mut self) {
        self.armed = None;
    }

    /// Tells the session which messages have left the socket's buffer since last asked,
    /// so they stop counting against the queue's bounds.
    /// It produces no command or event, so it may run outside a step (`stats`).
    pub(crate) fn confirm_writes(&mut self, host: &Host) {
        if let Some(conn) = self.writes.pending() {
            let (messages, bytes) = self.writes.left(host.buffered(conn.get() as f64));
            if messages > 0 {
                let written = SocketEvent::Written { messages, bytes };
                self.session.handle_socket(conn, written, self.latest);
            }
        }
    }

    /// Socket `conn` is gone with `buffered` bytes never sent: what never left goes back
    /// to the session, to go out again or come back unsent.
    pub(crate) fn socket_gone(&mut self, conn: ConnId, buffered: f64) {
        if let Some(unwritten) = self.writes.ended(conn, buffered) {
            self.session.return_unwritten(conn, unwritten);
        }
    }

    fn carry_out_commands(&mut self, host: &Host) {
        while let Some(command) = self.session.poll_command() {
            match command {
                Command::Open(open) => {
                    self.sockets = [Some(open.conn), self.sockets[0]];
                    self.writes.opened(open.conn);
                    host.open(open.conn.get() as f64, &open.url);
                }
                Command::Send { conn, payload, id } => {
                    match &payload {
                        Payload::Text(text) => host.send_text(conn.get() as f64, text),
                        Payload::Binary(bytes) => host.send_bytes(conn.get() as f64, bytes),
                    }
                    self.writes.handed(id, payload);
                }
                // Browsers cannot send Ping frames; the browser settings never ask for one.
                Command::Ping { .. } => {}
                Command::Close { conn, code, reason } => {
                    host.close(conn.get() as f64, code, &reason);
                }
                Command::Abort { conn } => {
                    host.abort(conn.get() as f64);
                    // The session gave up a socket that had not ended: the browser's
                    // `close()` still sends what the socket holds (the peer may well be
                    // alive), so all of it counts as written, as what a native socket had
                    // handed to the OS. Sent again, it could arrive twice. (A socket that
                    // ended by itself was settled with its own bufferedAmount already.)
                    self.socket_gone(conn, 0.0);
                }
            }
        }
    }

    fn arm_timer(&mut self, host: &Host, now: Timestamp) {
        // No timer of its own to watch bufferedAmount: every send and every read of the
        // stats asks first.
        let Some((deadline, _)) = self.session.poll_timeout() else {
            return; // an armed timer left over fires into a session with nothing due
        };
        if self.armed.is_some_and(|armed| armed <= deadline) {
            return;
        }
        // Rounded up: a timer that fires a fraction early would find nothing due.
        let wait = deadline.saturating_duration_since(now);
        // In u64 microseconds, not `as_micros` (u128): u128 division costs ~1 KB of wasm.
        let micros = wait.as_secs().saturating_mul(1_000_000) + u64::from(wait.subsec_micros());
        host.arm(micros.div_ceil(1000) as f64);
        self.armed = Some(deadline);
    }
}
