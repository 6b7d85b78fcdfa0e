//! The browser driver: feeds the session time and socket events, carries out its commands,
//! and hands its events to JavaScript. Event-driven: every input runs one step, and one
//! timer is armed for the session's next deadline. It holds no policy.

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use gloo_timers::callback::Timeout;
use js_sys::{Function, Promise};
use resilient_ws_core::{
    Command, ConnId, Event, OpenRequest, ResumeMode, Session, SocketEvent, State, Timestamp,
};
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;

use crate::clock::Clock;
use crate::emit::Emitter;
use crate::options::BrowserSettings;
use crate::socket::Socket;

pub(crate) struct Driver {
    pub(crate) session: Session,
    clock: Clock,
    socket: Option<Socket>,
    timer: Option<(Timestamp, Timeout)>,
    protocols: Vec<String>,
    url_provider: Option<Function>,
    resume: ResumeMode,
    emitter: Emitter,
    /// `close()` promises waiting for the session to stop.
    close_waiters: Vec<Function>,
    this: Weak<RefCell<Driver>>,
}

impl Driver {
    pub(crate) fn new(
        session: Session,
        clock: Clock,
        settings: BrowserSettings,
        emit: Function,
    ) -> Rc<RefCell<Self>> {
        let resume = session.config().resume.clone();
        Rc::new_cyclic(|this| {
            RefCell::new(Self {
                session,
                clock,
                socket: None,
                timer: None,
                protocols: settings.protocols,
                url_provider: settings.url_provider,
                resume,
                emitter: Emitter::new(emit),
                close_waiters: Vec::new(),
                this: Weak::clone(this),
            })
        })
    }

    /// Runs an application command or a driver input, then carries out what the session
    /// produced. Events go to JavaScript after the driver is released, so a listener may
    /// call back into the client.
    pub(crate) fn step<R>(
        driver: &Rc<RefCell<Self>>,
        input: impl FnOnce(&mut Session, Timestamp) -> R,
    ) -> R {
        let result = {
            let mut this = driver.borrow_mut();
            let now = this.clock.now();
            input(&mut this.session, now)
        };
        Self::after_input(driver);
        result
    }

    /// The part of every step that does not depend on the input: kept out of the generic
    /// `step` so it exists once in the binary, not once per call site.
    fn after_input(driver: &Rc<RefCell<Self>>) {
        let (events, emitter, waiters) = {
            let mut this = driver.borrow_mut();
            this.carry_out_commands();
            let events: Vec<Event> = std::iter::from_fn(|| this.session.poll_event()).collect();
            this.arm_timer();
            let waiters = if this.session.state().is_terminal() {
                std::mem::take(&mut this.close_waiters)
            } else {
                Vec::new()
            };
            (events, this.emitter.clone(), waiters)
        };
        for event in events {
            emitter.emit(event);
        }
        for resolve in waiters {
            let _ = resolve.call0(&JsValue::UNDEFINED);
        }
    }

    pub(crate) fn handle_socket(driver: &Rc<RefCell<Self>>, conn: ConnId, event: SocketEvent) {
        Self::step(driver, |session, now| {
            session.handle_socket(conn, event, now)
        });
    }

    /// Registers `resolve` to be called once the session has stopped.
    pub(crate) fn on_stopped(&mut self, resolve: Function) {
        if self.session.state().is_terminal() {
            let _ = resolve.call0(&JsValue::UNDEFINED);
        } else {
            self.close_waiters.push(resolve);
        }
    }

    pub(crate) fn state(&self) -> &State {
        self.session.state()
    }

    fn carry_out_commands(&mut self) {
        while let Some(command) = self.session.poll_command() {
            match command {
                Command::Open(open) => self.open(open),
                Command::Send { conn, payload, .. } => {
                    if let Some(socket) = self.socket_for(conn) {
                        socket.send(payload);
                    }
                }
                // Browsers cannot send Ping frames; the browser config never asks for one.
                Command::Ping { .. } => {}
                Command::Close { conn, code, reason } => {
                    if let Some(socket) = self.socket_for(conn) {
                        socket.close(code, &reason);
                    }
                }
                Command::Abort { conn } => {
                    if self
                        .socket
                        .as_ref()
                        .is_some_and(|socket| socket.conn == conn)
                    {
                        self.socket = None; // dropping closes it
                    }
                }
            }
        }
    }

    fn socket_for(&self, conn: ConnId) -> Option<&Socket> {
        self.socket.as_ref().filter(|socket| socket.conn == conn)
    }

    fn open(&mut self, open: OpenRequest) {
        let Some(provider) = self.url_provider.clone() else {
            self.open_socket(open.conn, &open.url);
            return;
        };
        // Ask the page for a fresh URL first; the attempt's deadline still runs.
        let driver = Weak::clone(&self.this);
        let resume = self.resume.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let provided = provide_url(&provider).await;
            let Some(driver) = driver.upgrade() else {
                return;
            };
            match provided {
                Ok(url) => {
                    let url = resume.apply_to_url(&url, open.cursor);
                    let current = driver.borrow().session.current_conn() == Some(open.conn);
                    if current {
                        driver.borrow_mut().open_socket(open.conn, &url);
                    }
                }
                Err(detail) => {
                    let ended =
                        SocketEvent::Ended(resilient_ws_core::Disconnect::Abnormal { detail });
                    Self::handle_socket(&driver, open.conn, ended);
                }
            }
        });
    }

    fn open_socket(&mut self, conn: ConnId, url: &str) {
        match Socket::open(conn, url, &self.protocols, Weak::clone(&self.this)) {
            Ok(socket) => self.socket = Some(socket),
            Err(error) => {
                // The constructor threw (a malformed URL): report it from a fresh task, so
                // the session is not re-entered from inside its own step.
                let detail = error
                    .as_string()
                    .unwrap_or_else(|| "the browser refused to open the socket".into());
                let driver = Weak::clone(&self.this);
                wasm_bindgen_futures::spawn_local(async move {
                    if let Some(driver) = driver.upgrade() {
                        let ended =
                            SocketEvent::Ended(resilient_ws_core::Disconnect::Abnormal { detail });
                        Self::handle_socket(&driver, conn, ended);
                    }
                });
            }
        }
    }

    /// Keeps one browser timer on the session's next deadline.
    fn arm_timer(&mut self) {
        let Some((deadline, _)) = self.session.poll_timeout() else {
            self.timer = None;
            return;
        };
        if self
            .timer
            .as_ref()
            .is_some_and(|(armed, _)| *armed == deadline)
        {
            return;
        }
        // Rounded up: a timer that fires a fraction early would find nothing due.
        let wait = deadline.saturating_duration_since(self.clock.now());
        let millis = u32::try_from(wait.as_micros().div_ceil(1000)).unwrap_or(u32::MAX);
        let driver = Weak::clone(&self.this);
        let timeout = Timeout::new(millis, move || {
            if let Some(driver) = driver.upgrade() {
                // Forget the fired timer so the next step arms a fresh one. (wasm-bindgen
                // defers freeing a closure that is running, so dropping it here is safe.)
                driver.borrow_mut().timer = None;
                Self::step(&driver, |session, now| session.handle_timeout(now));
            }
        });
        self.timer = Some((deadline, timeout));
    }
}

/// Calls the page's `urlProvider` and awaits its answer.
async fn provide_url(provider: &Function) -> Result<String, String> {
    let returned = provider
        .call0(&JsValue::UNDEFINED)
        .map_err(|_| "urlProvider threw".to_owned())?;
    let value = JsFuture::from(Promise::resolve(&returned))
        .await
        .map_err(|_| "urlProvider rejected".to_owned())?;
    value
        .as_string()
        .ok_or_else(|| "urlProvider must resolve to a URL string".to_owned())
}
