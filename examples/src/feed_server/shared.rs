//! State shared by the supervisor, every connection task and the handle, and the server-wide
//! actions (used by both the in-process handle and the HTTP control endpoints).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use resilient_ws_server::{FileHistory, Hub, HubConfig, StartPoint};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;

use super::config::FeedConfig;
use super::error::FeedServerError;
use super::feed::{ConnectionCommand, Faults, Production, Refusal, validate_close_code};
use super::received::ReceivedLog;
use super::stats::{FeedStats, StatsCounters};
use super::supervisor::{AdoptedTask, SupervisorCommand};

/// Commands are rare; a connection that lags this far behind just misses some.
const CONNECTION_COMMAND_BACKLOG: usize = 64;

#[derive(Debug)]
pub(crate) struct ServerShared {
    pub(crate) config: FeedConfig,
    /// What the producer publishes.
    pub(crate) production: Production,
    /// When the server started (client messages are timed from here).
    started: Instant,
    /// The feed's hub; replaced (a new epoch) when a restart forgets the history.
    hub: Mutex<Hub>,
    pub(crate) stats: Arc<StatsCounters>,
    pub(crate) received: ReceivedLog,
    faults: Mutex<Faults>,
    connection_commands: broadcast::Sender<ConnectionCommand>,
    supervisor: mpsc::UnboundedSender<SupervisorCommand>,
}

impl ServerShared {
    /// Opens the hub (restoring `history_file` when there is one) and, at rate 0, publishes
    /// the whole feed into it.
    pub(crate) fn new(
        config: FeedConfig,
        supervisor: mpsc::UnboundedSender<SupervisorCommand>,
    ) -> Result<Self, FeedServerError> {
        let (connection_commands, _) = broadcast::channel(CONNECTION_COMMAND_BACKLOG);
        let production = Production {
            rate: config.rate,
            total: config.total,
            payload_bytes: config.payload_bytes,
        };
        let hub = open_hub(&config)?;
        production.fill(&hub)?;
        Ok(Self {
            production,
            started: Instant::now(),
            hub: Mutex::new(hub),
            stats: Arc::new(StatsCounters::default()),
            received: ReceivedLog::new(config.received_log_capacity),
            faults: Mutex::new(config.faults),
            connection_commands,
            supervisor,
            config,
        })
    }

    /// The feed's current hub.
    pub(crate) fn hub(&self) -> Hub {
        self.hub
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Drops the history (and the history file) and starts a new hub: a new epoch, cursors from
    /// 1 again, filled at once at rate 0. Called while the server is down, with the producer
    /// stopped, so nothing publishes into the old hub meanwhile.
    pub(crate) fn forget_history(&self) -> Result<Hub, FeedServerError> {
        let mut current = self.hub.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(path) = &self.config.history_file {
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(error) => return Err(resilient_ws_server::HistoryError::from(error).into()),
            }
        }
        let hub = open_hub(&self.config)?;
        self.production.fill(&hub)?;
        *current = hub.clone();
        Ok(hub)
    }

    /// Milliseconds since the server started.
    pub(crate) fn millis_since_start(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub(crate) fn stats(&self) -> FeedStats {
        self.stats.snapshot(self.hub().head())
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

    /// Asks the supervisor to restart (forgetting the history if `forget`); `done` fires once
    /// the listener and all connections are gone.
    pub(crate) fn request_restart(
        &self,
        down: Duration,
        forget: bool,
        done: Option<oneshot::Sender<()>>,
    ) -> Result<(), FeedServerError> {
        self.supervisor
            .send(SupervisorCommand::Restart { down, forget, done })
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

/// The hub as the configuration asks for it: a replay buffer of `history` messages (no byte or
/// age bound: the message size is fixed, so the count bounds memory), the welcome, where fresh
/// clients start, the hub's liveness defaults, and the history file if any.
fn open_hub(config: &FeedConfig) -> Result<Hub, FeedServerError> {
    let hub_config = HubConfig {
        history_max_messages: config.history,
        history_max_bytes: usize::MAX,
        history_max_age: Duration::MAX,
        ping_interval: config.ping_interval,
        ping_timeout: config.ping_timeout,
        welcome: config.welcome,
        start: if config.start_live {
            StartPoint::Live
        } else {
            StartPoint::Oldest
        },
        ..HubConfig::default()
    };
    Ok(match &config.history_file {
        Some(path) => Hub::with_history(hub_config, FileHistory::open(path)?)?,
        None => Hub::new(hub_config),
    })
}
