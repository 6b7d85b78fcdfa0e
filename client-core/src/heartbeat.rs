//! Heartbeats: noticing a connection that died without telling anyone (half-open).
//!
//! Any inbound frame proves the connection alive. After `interval` of silence the session
//! sends a probe; if nothing arrives within `timeout` of it, the connection is dead. So a
//! dead connection is always detected within `interval + timeout` of the last inbound frame.

use core::time::Duration;

use crate::payload::Payload;
use crate::time::Timestamp;

/// What the session sends to provoke traffic after a silence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// A WebSocket Ping frame; the server's Pong answers it (native drivers).
    PingFrame,
    /// An application message, for browsers, which cannot send Ping frames; the server
    /// must answer it with any message.
    Message(Payload),
    /// Send nothing: for servers that push their own heartbeats. The connection is dead
    /// after `interval + timeout` without inbound traffic.
    IdleOnly,
}

/// Heartbeat settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeartbeatConfig {
    /// Silence after which a probe goes out. Default 15 s.
    pub interval: Duration,
    /// How long to wait for any inbound frame after a probe. Default 10 s.
    pub timeout: Duration,
    /// What to send. Default a Ping frame.
    pub probe: Probe,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(15),
            timeout: Duration::from_secs(10),
            probe: Probe::PingFrame,
        }
    }
}

/// What the heartbeat wants when its deadline comes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HeartbeatDue {
    /// Send the probe.
    Probe,
    /// The connection is dead.
    Dead,
}

/// Tracks one connection's liveness.
#[derive(Clone, Debug)]
pub(crate) struct Liveness {
    last_inbound: Timestamp,
    probe_sent_at: Option<Timestamp>,
}

impl Liveness {
    /// A connection that just opened counts as just heard from.
    pub(crate) fn new(now: Timestamp) -> Self {
        Self {
            last_inbound: now,
            probe_sent_at: None,
        }
    }

    /// Something arrived at `now`; whether that moved the heartbeat's deadline (not for
    /// the second of a batch read at one time).
    pub(crate) fn on_inbound(&mut self, now: Timestamp) -> bool {
        let moved = self.last_inbound != now || self.probe_sent_at.is_some();
        self.last_inbound = now;
        self.probe_sent_at = None;
        moved
    }

    /// Records a probe. The first unanswered probe keeps counting: extra probes (from
    /// `check_liveness`) must not push the dead-connection deadline back.
    pub(crate) fn on_probe_sent(&mut self, now: Timestamp) {
        self.probe_sent_at.get_or_insert(now);
    }

    /// When the heartbeat next needs attention, and what for.
    pub(crate) fn deadline(&self, config: &HeartbeatConfig) -> (Timestamp, HeartbeatDue) {
        match (&config.probe, self.probe_sent_at) {
            (Probe::IdleOnly, _) => (
                self.last_inbound + config.interval + config.timeout,
                HeartbeatDue::Dead,
            ),
            (_, Some(sent)) => (sent + config.timeout, HeartbeatDue::Dead),
            (_, None) => (self.last_inbound + config.interval, HeartbeatDue::Probe),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::prelude::rust_2024::*;

    const fn ms(millis: u64) -> Timestamp {
        Timestamp::from_millis(millis)
    }

    fn config(probe: Probe) -> HeartbeatConfig {
        HeartbeatConfig {
            interval: Duration::from_millis(100),
            timeout: Duration::from_millis(50),
            probe,
        }
    }

    #[test]
    fn probe_then_dead_within_interval_plus_timeout() {
        let config = config(Probe::PingFrame);
        let mut liveness = Liveness::new(ms(0));
        assert_eq!(liveness.deadline(&config), (ms(100), HeartbeatDue::Probe));
        liveness.on_probe_sent(ms(100));
        assert_eq!(liveness.deadline(&config), (ms(150), HeartbeatDue::Dead));
    }

    #[test]
    fn inbound_traffic_postpones_the_probe() {
        let config = config(Probe::PingFrame);
        let mut liveness = Liveness::new(ms(0));
        liveness.on_probe_sent(ms(100));
        liveness.on_inbound(ms(120));
        assert_eq!(liveness.deadline(&config), (ms(220), HeartbeatDue::Probe));
    }

    #[test]
    fn extra_probes_do_not_postpone_the_deadline() {
        let config = config(Probe::PingFrame);
        let mut liveness = Liveness::new(ms(0));
        liveness.on_probe_sent(ms(100));
        liveness.on_probe_sent(ms(140));
        assert_eq!(liveness.deadline(&config), (ms(150), HeartbeatDue::Dead));
    }

    #[test]
    fn idle_only_never_probes() {
        let config = config(Probe::IdleOnly);
        let mut liveness = Liveness::new(ms(0));
        assert_eq!(liveness.deadline(&config), (ms(150), HeartbeatDue::Dead));
        liveness.on_inbound(ms(40));
        assert_eq!(liveness.deadline(&config), (ms(190), HeartbeatDue::Dead));
    }
}
