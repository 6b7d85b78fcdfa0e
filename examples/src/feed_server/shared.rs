//! State shared by the supervisor, every connection task and the handle, and the server-wide
//! actions (used by both the in-process handle and the HTTP control endpoints).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot};

use super::config::FeedConfig;
use super::error::FeedServerError;
use super::feed::{ConnectionCommand, Faults, Feed, Refusal, validate_close_code};
use super::received::ReceivedLog;
use super::stats::{FeedStats, StatsCounters};
use super::supervisor::{AdoptedTask, SupervisorCommand};

/// Commands are rare; a connection that lags this far behind just misses some.
const CONNECTION_COMMAND_BACKLOG: usize = 64;

#[derive(Debug)]
pub(crate) struct ServerShared {
    pub(crate) config: FeedConfig,
    pub(crate) feed: Feed,
    pub(crate) stats: Arc<StatsCounters>,
    pub(crate) received: ReceivedLog,
    faults: Mutex<Faults>,
    connection_commands: broadcast::Sender<ConnectionCommand>,
    supervisor: mpsc::UnboundedSender<SupervisorCommand>,
}

impl ServerShared {
    pub(crate) fn new(
        config: FeedConfig,
        supervisor: mpsc::UnboundedSender<SupervisorCommand>,
    ) -> Self {
        let (connection_commands, _) = broadcast::channel(CONNECTION_COMMAND_BACKLOG);
        Self {
            feed: Feed::new(config.rate, config.total, config.payload_bytes),
            stats: Arc::new(StatsCounters::default()),
            received: ReceivedLog::new(config.received_log_capacity),
            faults: Mutex::new(config.faults),
            connection_commands,
            supervisor,
            config,
        }
    }

    pub(crate) fn stats(&self) -> FeedStats {
        self.stats.snapshot(self.feed.reported_head())
    }

    pub(crate) fn faults(&self) -> Faults {
        *self.lock_faults()
    }

    pub(crate) fn set_faults(&self, faults: Faults) -> Result<(), FeedServerError> {
        faults.validate()?;
        *self.lock_faults() = faults;
        Ok(())
    }

    /// Applies `change` to the current faults atomically; keeps the old ones if the result is invalid.
    pub(crate) fn update_faults(
        &self,
        change: impl FnOnce(&mut Faults),
    ) -> Result<Faults, FeedServerError> {
        let mut current = self.lock_faults();
        let mut updated = *current;
        change(&mut updated);
        updated.validate()?;
        *current = updated;
        Ok(updated)
    }

    pub(crate) fn take_refusal(&self) -> Option<Refusal> {
        self.lock_faults().take_refusal()
    }

    /// Subscribes a connection to server-wide commands. Done before its handshake, so a command
    /// sent just after the client saw the handshake complete still reaches it.
    pub(crate) fn subscribe_commands(&self) -> broadcast::Receiver<ConnectionCommand> {
        self.connection_commands.subscribe()
    }

    /// Sends a command to every current connection; returns how many it reached.
    pub(crate) fn command_all(&self, command: ConnectionCommand) -> usize {
        self.connection_commands.send(command).unwrap_or(0)
    }

    pub(crate) fn close_all(&self, code: u16) -> Result<usize, FeedServerError> {
        validate_close_code(code)?;
        Ok(self.command_all(ConnectionCommand::Close(code)))
    }

    /// Asks the supervisor to restart; `done` fires once the listener and all connections are gone.
    pub(crate) fn request_restart(
        &self,
        down: Duration,
        done: Option<oneshot::Sender<()>>,
    ) -> Result<(), FeedServerError> {
        self.supervisor
            .send(SupervisorCommand::Restart { down, done })
            .map_err(|_| FeedServerError::Stopped)
    }

    /// Hands an upgraded connection's task to the supervisor, which runs it with the others (a
    /// restart or shutdown ends it). `generation` is the supervisor's generation when the
    /// connection was accepted: a task from before a restart is dropped, closing its socket.
    pub(crate) fn adopt(&self, generation: u64, task: AdoptedTask) {
        // A stopped supervisor drops the task with the command, which is what stopping means.
        let _ = self
            .supervisor
            .send(SupervisorCommand::Adopt { generation, task });
    }

    pub(crate) fn request_shutdown(
        &self,
        done: oneshot::Sender<()>,
    ) -> Result<(), FeedServerError> {
        self.supervisor
            .send(SupervisorCommand::Shutdown { done })
            .map_err(|_| FeedServerError::Stopped)
    }

    fn lock_faults(&self) -> std::sync::MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
