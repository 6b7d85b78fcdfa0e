//! Where a hub persists its history, so a restart keeps its epoch.

use crate::error::HistoryError;
use crate::payload::Record;

/// What a previous run persisted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Restored {
    /// The epoch those cursors belong to.
    pub epoch: String,
    /// The latest cursor published (at least the last record's; records may all have been
    /// trimmed).
    pub head: u64,
    /// The persisted records, oldest first, cursors consecutive and ending at `head`. They
    /// may include records already trimmed (the hub applies its bounds again).
    pub records: Vec<Record>,
}

/// Persistence of a hub's history. The hub keeps its replay buffer in memory either way;
/// a store makes the epoch, the head and the buffered records survive a restart, so clients
/// resume exactly once across it.
///
/// The hub calls it under its lock, in this order: [`load`](Self::load) once at start, then
/// [`begin`](Self::begin) if nothing was loaded, then [`append`](Self::append) for every
/// message before it is delivered and [`trim`](Self::trim) as the buffer drops messages.
pub trait HistoryStore: Send + 'static {
    /// What a previous run persisted, or `None` when nothing was (the hub then starts a
    /// new epoch).
    fn load(&mut self) -> Result<Option<Restored>, HistoryError>;

    /// Discards whatever is persisted and starts an empty history of `epoch` (head 0).
    fn begin(&mut self, epoch: &str) -> Result<(), HistoryError>;

    /// Persists a published message. An error refuses the publish: the message is not
    /// delivered and its cursor is not used.
    fn append(&mut self, record: &Record) -> Result<(), HistoryError>;

    /// Messages before `first_kept` will never be replayed again; the store may drop them
    /// (it must still remember the head).
    fn trim(&mut self, first_kept: u64) -> Result<(), HistoryError>;
}

/// No persistence: the history lives only in the hub's replay buffer, so every start is a
/// new epoch. The default store.
#[derive(Clone, Copy, Debug, Default)]
pub struct MemoryHistory;

impl HistoryStore for MemoryHistory {
    fn load(&mut self) -> Result<Option<Restored>, HistoryError> {
        Ok(None)
    }

    fn begin(&mut self, _epoch: &str) -> Result<(), HistoryError> {
        Ok(())
    }

    fn append(&mut self, _record: &Record) -> Result<(), HistoryError> {
        Ok(())
    }

    fn trim(&mut self, _first_kept: u64) -> Result<(), HistoryError> {
        Ok(())
    }
}
