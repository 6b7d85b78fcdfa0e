//! Who runs the driver: the background task, or the application's own task while it waits
//! for events. The driver has one owner at a time, taken with `try_lock` and never waited
//! for, so the session stays `&mut` and no party ever blocks on another.
//!
//! While the application keeps up, the messages it reads are read from the socket on its
//! own task, in its `poll_next`, like a bare WebSocket stream: no hand-off between cores.
//! The background task covers the rest: timers (which a slow application must never
//! pause), requests from the handles, writes, and reading whenever the application is
//! not waiting for events, so a dead or closed connection is noticed behind a busy
//! application too.
//!
//! Which task the socket wakes is decided when it wakes ([`ReaderWake`]): the application
//! while it waits in `poll_next`, the background task otherwise.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;
use tokio::runtime::Handle;

use crate::driver::{Driver, Runner};

/// The driver and the two wakers it registers: one for the background task (timers,
/// requests, writes) and one for the socket's reads.
pub(crate) struct Baton {
    driver: Mutex<Option<Driver>>,
    background: Arc<BackgroundWake>,
    reader: Arc<ReaderWake>,
    background_waker: Waker,
    reader_waker: Waker,
    /// The runtime the driver's timers and sockets belong to, entered for a run on the
    /// application's task (which may be on another runtime, or on none).
    runtime: Handle,
}

impl Baton {
    pub(crate) fn new(driver: Driver, runtime: Handle) -> Arc<Self> {
        let background = Arc::new(BackgroundWake::default());
        let reader = Arc::new(ReaderWake {
            application_state: AtomicU8::new(BUSY),
            application: AtomicWaker::new(),
            background: Arc::clone(&background),
        });
        Arc::new(Self {
            driver: Mutex::new(Some(driver)),
            background_waker: Waker::from(Arc::clone(&background)),
            reader_waker: Waker::from(Arc::clone(&reader)),
            background,
            reader,
            runtime,
        })
    }

    /// The background task's future: it runs the driver until the session is over.
    pub(crate) fn background(self: &Arc<Self>) -> Background {
        Background(Arc::clone(self))
    }

    /// For the application's `poll_next`, with nothing left to hand it: runs the driver on
    /// its task, unless the background task has it (which then delivers and wakes it).
    pub(crate) fn run_inline(&self) {
        if let Some(mut guard) = self.try_take() {
            if let Some(driver) = guard.as_mut() {
                let _runtime = self.runtime.enter();
                let done = self.run(driver, Runner::Application).is_ready();
                if done {
                    *guard = None;
                    self.background.wake_task();
                }
            }
        }
        // Woken while we held the driver: whatever woke it may have come after our run
        // looked, so it runs once more.
        if self.background.wanted.swap(false, Ordering::SeqCst) {
            self.background.wake_task();
        }
    }

    /// The application now waits in `poll_next`: the socket wakes it, with `waker`.
    pub(crate) fn application_waits(&self, waker: &Waker) {
        self.reader.application.register(waker);
        self.reader
            .application_state
            .store(WAITING, Ordering::SeqCst);
    }

    /// The application was woken, or got events: the background task reads meanwhile.
    pub(crate) fn application_busy(&self) {
        if self.reader.application_state.load(Ordering::Relaxed) == WAITING {
            self.reader.application_state.store(BUSY, Ordering::SeqCst);
        }
    }

    /// The application dropped its stream: from now on only the background task reads.
    pub(crate) fn application_gone(&self) {
        self.reader.application_state.store(GONE, Ordering::SeqCst);
        self.background.wake_task();
    }

    fn run(&self, driver: &mut Driver, runner: Runner) -> Poll<()> {
        let mut background = Context::from_waker(&self.background_waker);
        let mut reader = Context::from_waker(&self.reader_waker);
        driver.run(&mut background, &mut reader, runner)
    }

    fn try_take(&self) -> Option<MutexGuard<'_, Option<Driver>>> {
        match self.driver.try_lock() {
            Ok(guard) => Some(guard),
            // A run panicked: the driver is as that run left it, which is all we have.
            Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }
}

/// The spawned task: runs the driver whenever it is woken and the application does not
/// have it. Dropping it (the runtime shutting down) drops the driver and its socket, and
/// the application's stream ends.
pub(crate) struct Background(Arc<Baton>);

impl Future for Background {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let baton = &*self.0;
        baton.background.task.register(cx.waker());
        // Before trying, so that the application, holding the driver, sees it once done.
        baton.background.wanted.store(true, Ordering::SeqCst);
        let Some(mut guard) = baton.try_take() else {
            return Poll::Pending;
        };
        baton.background.wanted.store(false, Ordering::SeqCst);
        let Some(driver) = guard.as_mut() else {
            return Poll::Ready(());
        };
        if baton.run(driver, Runner::Background).is_pending() {
            if driver.take_read_any() {
                baton.reader.background_read();
            }
            return Poll::Pending;
        }
        *guard = None;
        Poll::Ready(())
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        // Waits for a run on the application's task to finish: runs are short.
        let mut guard = self
            .0
            .driver
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        guard.take();
    }
}

/// Wakes the background task.
#[derive(Default)]
struct BackgroundWake {
    task: AtomicWaker,
    /// The task was woken and found the driver taken.
    wanted: AtomicBool,
}

impl BackgroundWake {
    fn wake_task(&self) {
        self.task.wake();
    }
}

impl Wake for BackgroundWake {
    fn wake(self: Arc<Self>) {
        self.task.wake();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.task.wake();
    }
}

/// What the application does, for [`ReaderWake`]: anything but wait for events,
const BUSY: u8 = 0;
/// wait in `poll_next`,
const WAITING: u8 = 1;
/// or nothing: it dropped its stream.
const GONE: u8 = 2;

/// The socket's read waker: wakes the application while it waits for events, so it reads
/// the socket itself, and the background task otherwise, so a busy application never
/// hides what the socket says.
struct ReaderWake {
    /// [`BUSY`], [`WAITING`] or [`GONE`].
    application_state: AtomicU8,
    application: AtomicWaker,
    background: Arc<BackgroundWake>,
}

impl ReaderWake {
    /// The background task read what the socket had. If the application was meant to wait
    /// for it, it was woken and has not come: it may have stopped polling without dropping
    /// its stream (a `select!` branch that runs long). The background task reads from now
    /// on, until the application waits again.
    fn background_read(&self) {
        let _ = self.application_state.compare_exchange(
            WAITING,
            BUSY,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
    }
}

impl Wake for ReaderWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.application_state.load(Ordering::SeqCst) == WAITING {
            self.application.wake();
        } else {
            self.background.wake_task();
        }
    }
}
