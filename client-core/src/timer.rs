//! The session's timers: one deadline slot per kind, the earliest of which is what
//! `poll_timeout` reports.

use crate::time::Timestamp;

/// Why the session wants to be woken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Timer {
    /// The handshake's deadline.
    Connect,
    /// The end of a backoff wait: the next attempt.
    Retry,
    /// The end of the stability window: the connection counts as healthy.
    Stable,
    /// The next heartbeat probe or liveness deadline.
    Heartbeat,
    /// The deadline for a graceful close to flush the queue and finish the close handshake.
    Close,
}

impl Timer {
    const ALL: [Self; 5] = [
        Self::Connect,
        Self::Retry,
        Self::Stable,
        Self::Heartbeat,
        Self::Close,
    ];

    const fn slot(self) -> usize {
        self as usize
    }
}

/// One optional deadline per [`Timer`].
#[derive(Clone, Debug, Default)]
pub(crate) struct TimerTable {
    deadlines: [Option<Timestamp>; Timer::ALL.len()],
}

impl TimerTable {
    pub(crate) fn set(&mut self, timer: Timer, deadline: Timestamp) {
        self.deadlines[timer.slot()] = Some(deadline);
    }

    pub(crate) fn stop(&mut self, timer: Timer) {
        self.deadlines[timer.slot()] = None;
    }

    pub(crate) fn stop_all(&mut self) {
        self.deadlines = Default::default();
    }

    pub(crate) fn get(&self, timer: Timer) -> Option<Timestamp> {
        self.deadlines[timer.slot()]
    }

    /// The earliest deadline; ties go to the timer listed first.
    pub(crate) fn next(&self) -> Option<(Timestamp, Timer)> {
        let mut earliest: Option<(Timestamp, Timer)> = None;
        for timer in Timer::ALL {
            if let Some(deadline) = self.get(timer) {
                if earliest.is_none_or(|(first, _)| deadline < first) {
                    earliest = Some((deadline, timer));
                }
            }
        }
        earliest
    }

    /// The earliest deadline at or before `now`, cleared so it fires once.
    pub(crate) fn pop_expired(&mut self, now: Timestamp) -> Option<Timer> {
        let (deadline, timer) = self.next()?;
        if deadline > now {
            return None;
        }
        self.stop(timer);
        Some(timer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::prelude::rust_2024::*;

    #[test]
    fn earliest_first_and_each_fires_once() {
        let mut timers = TimerTable::default();
        timers.set(Timer::Heartbeat, Timestamp::from_millis(30));
        timers.set(Timer::Connect, Timestamp::from_millis(10));
        timers.set(Timer::Retry, Timestamp::from_millis(50));
        assert_eq!(
            timers.next(),
            Some((Timestamp::from_millis(10), Timer::Connect))
        );
        let now = Timestamp::from_millis(30);
        assert_eq!(timers.pop_expired(now), Some(Timer::Connect));
        assert_eq!(timers.pop_expired(now), Some(Timer::Heartbeat));
        assert_eq!(timers.pop_expired(now), None);
        assert_eq!(
            timers.next(),
            Some((Timestamp::from_millis(50), Timer::Retry))
        );
        timers.stop_all();
        assert_eq!(timers.next(), None);
    }
}
