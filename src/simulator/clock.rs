//! The workflow clock: the virtual time workflows advance on.
//!
//! A real clock starts at the real UTC time and flows at real speed; a manual
//! clock only moves when advanced, so tests never sleep. Both can be advanced by
//! hand, and advancing wakes everything waiting on the clock (a `create` waiting
//! out its sync window) through a `watch` channel.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use tokio::sync::watch;

/// Virtual UTC time for workflows.
#[derive(Debug)]
pub struct WorkflowClock {
    /// Virtual time at `started`.
    origin: DateTime<Utc>,
    /// `Some` for a real clock: the instant `origin` was taken.
    started: Option<Instant>,
    /// Milliseconds advanced by hand; atomic so reading the clock takes no lock.
    advanced_ms: AtomicI64,
    /// Bumped on every advance, so waiters re-read the clock.
    ticks: watch::Sender<u64>,
}

impl WorkflowClock {
    /// A clock at the real time, flowing at real speed.
    pub fn real() -> Self {
        Self::new(Some(Instant::now()))
    }

    /// A clock at the real time (whole seconds) that only moves when advanced.
    pub fn manual() -> Self {
        Self::new(None)
    }

    fn new(started: Option<Instant>) -> Self {
        Self {
            origin: Utc::now().trunc_subsecs(0),
            started,
            advanced_ms: AtomicI64::new(0),
            ticks: watch::Sender::new(0),
        }
    }

    /// Whether the clock moves on its own.
    pub fn is_manual(&self) -> bool {
        self.started.is_none()
    }

    /// The current virtual time.
    pub fn now(&self) -> DateTime<Utc> {
        let flowed = self
            .started
            .map(|started| TimeDelta::from_std(started.elapsed()).unwrap_or(TimeDelta::MAX))
            .unwrap_or_default();
        let advanced = TimeDelta::milliseconds(self.advanced_ms.load(Ordering::Acquire));
        self.origin + flowed + advanced
    }

    /// Moves the clock forward and wakes waiters.
    pub fn advance(&self, by: Duration) {
        let millis = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.advanced_ms.fetch_add(millis, Ordering::AcqRel);
        self.ticks.send_modify(|tick| *tick = tick.wrapping_add(1));
    }

    /// A receiver that changes whenever the clock is advanced by hand.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.ticks.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_advanced() {
        let clock = WorkflowClock::manual();
        let start = clock.now();
        assert_eq!(clock.now(), start);
        clock.advance(Duration::from_secs(90));
        assert_eq!(clock.now() - start, TimeDelta::seconds(90));
    }

    #[test]
    fn advancing_notifies_subscribers() {
        let clock = WorkflowClock::manual();
        let ticks = clock.subscribe();
        assert!(!ticks.has_changed().unwrap());
        clock.advance(Duration::from_secs(1));
        assert!(ticks.has_changed().unwrap());
    }
}
