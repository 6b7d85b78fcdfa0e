//! The hub: cursors under an epoch, the replay buffer, and fan-out to subscribers.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use serde::Serialize;
use tokio::sync::watch;

use crate::buffer::{Bounds, ReplayBuffer};
use crate::config::HubConfig;
use crate::epoch::new_epoch;
use crate::error::{HistoryError, HubError};
use crate::history::{HistoryStore, MemoryHistory};
use crate::outbox::{Closed, Outbox};
use crate::payload::{Payload, Record};
use crate::resume::{Held, ResumeReason, ResumeRequest, Welcome, decide};
use crate::stats::HubStats;

/// One feed: assigns cursors under an epoch, keeps the replay buffer and fans messages out
/// to every subscriber. Cheap to clone (all clones are the same hub).
///
/// Publishing never waits for a subscriber: each has a bounded queue, and one that
/// overflows is evicted (see [`HubConfig::queue_max_messages`]).
#[derive(Clone)]
pub struct Hub {
    shared: Arc<Shared>,
}

struct Shared {
    config: HubConfig,
    state: Mutex<State>,
    /// Open WebSocket connections, so shutdown can wait for their close frames.
    connections: watch::Sender<usize>,
    next_connection: AtomicU64,
    replayed: AtomicU64,
    evicted_dead: AtomicU64,
    pings_sent: AtomicU64,
}

struct State {
    epoch: String,
    head: u64,
    buffer: ReplayBuffer,
    store: Box<dyn HistoryStore>,
    subscribers: HashMap<u64, Arc<Outbox>>,
    next_subscriber: u64,
    shut_down: bool,
    published: u64,
    resumed: u64,
    fresh: u64,
    discontinuities: u64,
    evicted_slow: u64,
}

impl State {
    /// Applies the age bound and tells the store what is no longer needed.
    fn trim(&mut self, now: SystemTime) {
        let before = self.buffer.first_cursor();
        self.buffer.trim(now);
        self.forget_before(before);
    }

    fn forget_before(&mut self, before: Option<u64>) {
        let first_kept = self.buffer.first_cursor().unwrap_or(self.head + 1);
        if before != Some(first_kept) {
            // Compaction only saves space; a failure must not stop the feed.
            if let Err(error) = self.store.trim(first_kept) {
                tracing::warn!(%error, "history trim failed");
            }
        }
    }
}

impl Hub {
    /// A hub without persisted history (every start is a new epoch).
    pub fn new(config: HubConfig) -> Self {
        Self::with_history(config, MemoryHistory).expect("MemoryHistory never fails")
    }

    /// A hub that persists its history in `store` and restores it: when the store holds a
    /// history, the hub continues its epoch and head, so clients resume across a restart.
    pub fn with_history(
        config: HubConfig,
        mut store: impl HistoryStore,
    ) -> Result<Self, HistoryError> {
        let now = SystemTime::now();
        let mut buffer = ReplayBuffer::new(Bounds {
            max_messages: config.history_max_messages,
            max_bytes: config.history_max_bytes,
            max_age: config.history_max_age,
        });
        let (epoch, head) = match store.load()? {
            Some(restored) => {
                for record in restored.records {
                    buffer.push(record, now);
                }
                (restored.epoch, restored.head)
            }
            None => {
                let epoch = new_epoch();
                store.begin(&epoch)?;
                (epoch, 0)
            }
        };
        store.trim(buffer.first_cursor().unwrap_or(head + 1))?;
        tracing::info!(%epoch, head, buffered = buffer.len(), "hub started");
        let state = State {
            epoch,
            head,
            buffer,
            store: Box::new(store),
            subscribers: HashMap::new(),
            next_subscriber: 0,
            shut_down: false,
            published: 0,
            resumed: 0,
            fresh: 0,
            discontinuities: 0,
            evicted_slow: 0,
        };
        Ok(Self {
            shared: Arc::new(Shared {
                config,
                state: Mutex::new(state),
                connections: watch::Sender::new(0),
                next_connection: AtomicU64::new(1),
                replayed: AtomicU64::new(0),
                evicted_dead: AtomicU64::new(0),
                pings_sent: AtomicU64::new(0),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic in a `publish_with` closure poisons the lock before anything changed.
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The hub's bounds and policies.
    pub fn config(&self) -> &HubConfig {
        &self.shared.config
    }

    /// The current epoch.
    pub fn epoch(&self) -> String {
        self.lock().epoch.clone()
    }

    /// The latest cursor published (0: none yet in this epoch).
    pub fn head(&self) -> u64 {
        self.lock().head
    }

    /// Publishes the payload `make` builds for the next cursor, and returns that cursor.
    ///
    /// `make` runs under the hub's lock (that is what keeps cursors in publish order), so
    /// keep it to formatting. The message is persisted by the history store, buffered, and
    /// queued for every subscriber without waiting for any of them.
    ///
    /// ```
    /// # let hub = resilient_ws_server::Hub::new(Default::default());
    /// let cursor = hub.publish_with(|seq| format!(r#"{{"seq":{seq},"price":42}}"#))?;
    /// assert_eq!(cursor, 1);
    /// # Ok::<(), resilient_ws_server::HubError>(())
    /// ```
    pub fn publish_with<P: Into<Payload>>(
        &self,
        make: impl FnOnce(u64) -> P,
    ) -> Result<u64, HubError> {
        let mut state = self.lock();
        if state.shut_down {
            return Err(HubError::ShutDown);
        }
        let cursor = state.head + 1;
        let now = SystemTime::now();
        let record = Record {
            cursor,
            published_at: now,
            payload: make(cursor).into(),
        };
        state.store.append(&record)?;
        state.head = cursor;
        state.published += 1;
        let before = state.buffer.first_cursor();
        state.buffer.push(record.clone(), now);
        state.forget_before(before);
        let mut evicted = 0;
        state.subscribers.retain(|_, outbox| {
            let fed = outbox.push(&record);
            evicted += u64::from(!fed);
            fed
        });
        state.evicted_slow += evicted;
        Ok(cursor)
    }

    /// Publishes `data` in the default envelope, `{"seq":<cursor>,"data":<data as JSON>}`
    /// (a text message), and returns the cursor. Clients extract the cursor with
    /// `cursor_field("seq")`.
    ///
    /// ```
    /// # let hub = resilient_ws_server::Hub::new(Default::default());
    /// hub.publish(&serde_json::json!({"price": 42}))?; // {"seq":1,"data":{"price":42}}
    /// # Ok::<(), resilient_ws_server::HubError>(())
    /// ```
    pub fn publish<T: Serialize + ?Sized>(&self, data: &T) -> Result<u64, HubError> {
        // Serialized before taking the lock; only the envelope is formatted under it.
        let data = serde_json::to_string(data)?;
        self.publish_with(|seq| format!(r#"{{"seq":{seq},"data":{data}}}"#))
    }

    /// Subscribes to the feed as `request` asks: decides the [`Welcome`], snapshots the
    /// replay and registers for live messages in one step under the hub's lock, so replay
    /// and live meet with no gap and no duplicate.
    ///
    /// The axum [`handler`](crate::axum::handler) calls it for every connection; call it
    /// yourself to serve the feed over another transport.
    pub fn subscribe(&self, request: &ResumeRequest) -> Result<Subscription, HubError> {
        let config = &self.shared.config;
        let mut state = self.lock();
        if state.shut_down {
            return Err(HubError::ShutDown);
        }
        state.trim(SystemTime::now());
        let held = Held {
            epoch: &state.epoch,
            head: state.head,
            first: state.buffer.first_cursor().unwrap_or(state.head + 1),
        };
        let welcome = decide(request, held, config.start, config.on_discontinuity);
        let replay = state.buffer.since(welcome.from);
        let outbox = Arc::new(Outbox::new(
            config.queue_max_messages,
            config.queue_max_bytes,
        ));
        let id = state.next_subscriber;
        state.next_subscriber += 1;
        state.subscribers.insert(id, Arc::clone(&outbox));
        match welcome.reason {
            ResumeReason::Resumed => state.resumed += 1,
            ResumeReason::Fresh => state.fresh += 1,
            _ => state.discontinuities += 1,
        }
        drop(state);
        Ok(Subscription {
            hub: self.clone(),
            id,
            welcome,
            replay,
            outbox,
        })
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    pub fn is_shut_down(&self) -> bool {
        self.lock().shut_down
    }

    /// Shuts the hub down: refuses new connections (503) and publishes, closes every
    /// connection with [1012](crate::CLOSE_SHUTDOWN) so clients resume elsewhere or later,
    /// and resolves once every connection has closed (each within
    /// [`HubConfig::close_timeout`]).
    pub async fn shutdown(&self) {
        let outboxes: Vec<_> = {
            let mut state = self.lock();
            state.shut_down = true;
            state
                .subscribers
                .drain()
                .map(|(_, outbox)| outbox)
                .collect()
        };
        tracing::info!(subscribers = outboxes.len(), "hub shutting down");
        for outbox in outboxes {
            outbox.close(Closed::ShutDown);
        }
        let mut connections = self.shared.connections.subscribe();
        // The sender lives in `self`, so this only ends at zero.
        let _ = connections.wait_for(|open| *open == 0).await;
    }

    /// A snapshot of the hub's counters and gauges.
    pub fn stats(&self) -> HubStats {
        let shared = &self.shared;
        let state = self.lock();
        let (queued_messages, queued_bytes) = state
            .subscribers
            .values()
            .map(|outbox| outbox.usage())
            .fold((0, 0), |(m, b), (dm, db)| (m + dm, b + db));
        HubStats {
            epoch: state.epoch.clone(),
            head: state.head,
            subscribers: state.subscribers.len(),
            connections: *shared.connections.borrow(),
            published: state.published,
            buffered_messages: state.buffer.len(),
            buffered_bytes: state.buffer.bytes(),
            queued_messages,
            queued_bytes,
            replayed: shared.replayed.load(Ordering::Relaxed),
            resumed: state.resumed,
            fresh: state.fresh,
            discontinuities: state.discontinuities,
            evicted_slow: state.evicted_slow,
            evicted_dead: shared.evicted_dead.load(Ordering::Relaxed),
            pings_sent: shared.pings_sent.load(Ordering::Relaxed),
        }
    }

    /// Counts an open connection until the guard drops.
    pub(crate) fn open_connection(&self) -> ConnectionGuard {
        self.shared.connections.send_modify(|open| *open += 1);
        ConnectionGuard {
            hub: self.clone(),
            id: self.shared.next_connection.fetch_add(1, Ordering::Relaxed),
        }
    }

    pub(crate) fn count_ping(&self) {
        self.shared.pings_sent.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_dead(&self) {
        self.shared.evicted_dead.fetch_add(1, Ordering::Relaxed);
    }
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("Hub")
            .field("epoch", &state.epoch)
            .field("head", &state.head)
            .field("subscribers", &state.subscribers.len())
            .finish_non_exhaustive()
    }
}

/// An open connection, counted by the hub until dropped.
#[derive(Debug)]
pub(crate) struct ConnectionGuard {
    hub: Hub,
    pub(crate) id: u64,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.hub.shared.connections.send_modify(|open| *open -= 1);
    }
}

/// One subscriber's view of the feed: the welcome, then the replay, then live messages,
/// in cursor order with no gap and no duplicate. Dropping it unsubscribes.
#[derive(Debug)]
pub struct Subscription {
    hub: Hub,
    id: u64,
    welcome: Welcome,
    replay: VecDeque<Record>,
    outbox: Arc<Outbox>,
}

impl Subscription {
    /// Where this subscription starts, and why.
    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    /// The next message (replayed first, then live), or why the hub stopped feeding this
    /// subscription. Cancel-safe.
    pub async fn next(&mut self) -> Result<Record, Closed> {
        if let Some(why) = self.outbox.status() {
            return Err(why);
        }
        if let Some(record) = self.replay.pop_front() {
            self.hub.shared.replayed.fetch_add(1, Ordering::Relaxed);
            return Ok(record);
        }
        self.outbox.next().await
    }

    /// Resolves when the hub stops feeding this subscription. Cancel-safe.
    pub async fn closed(&self) -> Closed {
        self.outbox.closed().await
    }

    /// The queue, for a connection that watches for closing while it writes.
    pub(crate) fn outbox(&self) -> Arc<Outbox> {
        Arc::clone(&self.outbox)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.lock().subscribers.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn hub(config: HubConfig) -> Hub {
        Hub::new(config)
    }

    fn resume(cursor: u64, epoch: &str) -> ResumeRequest {
        ResumeRequest {
            cursor: Some(cursor),
            epoch: Some(epoch.to_owned()),
        }
    }

    async fn take(sub: &mut Subscription, n: usize) -> Vec<u64> {
        let mut cursors = Vec::new();
        for _ in 0..n {
            let next = tokio::time::timeout(Duration::from_secs(5), sub.next()).await;
            cursors.push(next.expect("a message within 5 s").expect("fed").cursor);
        }
        cursors
    }

    #[tokio::test]
    async fn replay_then_live_in_order() {
        let hub = hub(HubConfig::default());
        for _ in 0..5 {
            hub.publish(&"x").expect("publishes");
        }
        let mut sub = hub.subscribe(&resume(2, &hub.epoch())).expect("subscribes");
        assert_eq!(sub.welcome().reason, ResumeReason::Resumed);
        assert_eq!((sub.welcome().from, sub.welcome().head), (3, 5));
        hub.publish(&"y").expect("publishes");
        assert_eq!(take(&mut sub, 4).await, [3, 4, 5, 6]);
        let stats = hub.stats();
        assert_eq!(
            (stats.replayed, stats.resumed, stats.subscribers),
            (3, 1, 1)
        );
        drop(sub);
        assert_eq!(hub.stats().subscribers, 0, "dropping unsubscribes");
    }

    #[tokio::test]
    async fn default_envelope_carries_the_cursor() {
        let hub = hub(HubConfig::default());
        let mut sub = hub
            .subscribe(&ResumeRequest::default())
            .expect("subscribes");
        hub.publish(&serde_json::json!({"a": [1, 2]}))
            .expect("publishes");
        let record = sub.next().await.expect("fed");
        assert_eq!(
            record.payload,
            Payload::from(r#"{"seq":1,"data":{"a":[1,2]}}"#)
        );
    }

    #[tokio::test]
    async fn publishing_never_waits_for_a_full_queue() {
        let config = HubConfig {
            queue_max_messages: 3,
            ..HubConfig::default()
        };
        let hub = hub(config);
        let stalled = hub
            .subscribe(&ResumeRequest::default())
            .expect("subscribes");
        let mut reader = hub
            .subscribe(&ResumeRequest::default())
            .expect("subscribes");
        for round in 0..10 {
            hub.publish(&round).expect("publishes");
            assert_eq!(take(&mut reader, 1).await, [round + 1]);
        }
        assert_eq!(stalled.closed().await, Closed::SlowConsumer);
        let stats = hub.stats();
        assert_eq!((stats.evicted_slow, stats.subscribers), (1, 1));
        assert_eq!(stats.queued_messages, 0, "the evicted queue is freed");
    }

    #[tokio::test]
    async fn live_start_and_discontinuity_skip_the_buffer() {
        use crate::config::StartPoint;
        let config = HubConfig {
            start: StartPoint::Live,
            on_discontinuity: StartPoint::Live,
            ..HubConfig::default()
        };
        let hub = hub(config);
        hub.publish(&1).expect("publishes");
        let mut fresh = hub
            .subscribe(&ResumeRequest::default())
            .expect("subscribes");
        let mut other = hub.subscribe(&resume(1, "other")).expect("subscribes");
        assert_eq!(other.welcome().reason, ResumeReason::EpochChanged);
        assert_eq!((fresh.welcome().from, other.welcome().from), (2, 2));
        hub.publish(&2).expect("publishes");
        assert_eq!(take(&mut fresh, 1).await, [2]);
        assert_eq!(take(&mut other, 1).await, [2]);
    }

    #[tokio::test]
    async fn shutdown_refuses_and_closes() {
        let hub = hub(HubConfig::default());
        let mut sub = hub
            .subscribe(&ResumeRequest::default())
            .expect("subscribes");
        tokio::time::timeout(Duration::from_secs(5), hub.shutdown())
            .await
            .expect("no connection to wait for");
        assert_eq!(sub.next().await, Err(Closed::ShutDown));
        assert!(matches!(hub.publish(&1), Err(HubError::ShutDown)));
        assert!(matches!(
            hub.subscribe(&ResumeRequest::default()),
            Err(HubError::ShutDown)
        ));
    }
}
