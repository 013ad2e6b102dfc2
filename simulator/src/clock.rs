//! The workflow clock: the virtual time workflows advance on.
//!
//! A real clock starts at the real UTC time and flows at real speed; a manual
//! clock only moves when advanced, so tests never sleep. Both can be advanced by
//! hand, and advancing wakes everything waiting on the clock (a `create` waiting
//! out its sync window) through a `watch` channel.
//!
//! Advances are bounded, so the clock always reads a time every workflow can do
//! arithmetic on and every client can parse: at most [`MAX_ADVANCE`] at once, and
//! never past [`LATEST`].

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use tokio::sync::watch;

/// The most one advance may move the clock.
pub(super) const MAX_ADVANCE: Duration = Duration::from_secs(10 * 365 * 86_400);

/// The latest time the clock may read: the last second RFC 3339 timestamps (four-
/// digit years) can write, far inside chrono's range, so adding a workflow's
/// durations to it never overflows.
pub(super) const LATEST: DateTime<Utc> = DateTime::from_timestamp_secs(253_402_300_799)
    .expect("9999-12-31T23:59:59Z is within chrono's range");

/// An advance the clock refuses; it stays where it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    /// One advance of more than [`MAX_ADVANCE`].
    #[error("one advance may move the clock at most {} seconds (10 years), not {} seconds", MAX_ADVANCE.as_secs(), .0.as_secs())]
    TooFar(Duration),
    /// An advance that would move the clock past [`LATEST`].
    #[error("advancing {} seconds would move the clock past {LATEST:?}, the latest time it can read", .0.as_secs())]
    PastLatest(Duration),
}

/// Virtual UTC time for workflows.
#[derive(Debug)]
pub(super) struct WorkflowClock {
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
    pub(super) fn real() -> Self {
        Self::new(Some(Instant::now()))
    }

    /// A clock at the real time (whole seconds) that only moves when advanced.
    pub(super) fn manual() -> Self {
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
    pub(super) fn is_manual(&self) -> bool {
        self.started.is_none()
    }

    /// The current virtual time; never past [`LATEST`].
    pub(super) fn now(&self) -> DateTime<Utc> {
        let advanced = TimeDelta::milliseconds(self.advanced_ms.load(Ordering::Acquire));
        self.origin
            .checked_add_signed(self.flowed())
            .and_then(|time| time.checked_add_signed(advanced))
            .map_or(LATEST, |time| time.min(LATEST))
    }

    /// Real time a real clock has flowed since it started; zero for a manual clock.
    fn flowed(&self) -> TimeDelta {
        self.started
            .map(|started| TimeDelta::from_std(started.elapsed()).unwrap_or(TimeDelta::MAX))
            .unwrap_or_default()
    }

    /// Moves the clock forward and wakes waiters; refuses (leaving the clock where
    /// it was) more than [`MAX_ADVANCE`] at once, or past [`LATEST`].
    pub(super) fn advance(&self, by: Duration) -> Result<(), ClockError> {
        if by > MAX_ADVANCE {
            return Err(ClockError::TooFar(by));
        }
        // At most ten years in milliseconds: fits an i64.
        let millis = by.as_millis() as i64;
        let room = LATEST
            .signed_duration_since(self.origin)
            .checked_sub(&self.flowed())
            .map_or(0, |room| room.num_milliseconds());
        self.advanced_ms
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |advanced| {
                advanced.checked_add(millis).filter(|total| *total <= room)
            })
            .map_err(|_| ClockError::PastLatest(by))?;
        self.wake();
        Ok(())
    }

    /// Wakes everything waiting on the clock, so it re-reads the clock and the
    /// state that depends on it.
    pub(super) fn wake(&self) {
        self.ticks.send_modify(|tick| *tick = tick.wrapping_add(1));
    }

    /// A receiver that changes whenever the clock is advanced by hand.
    pub(super) fn subscribe(&self) -> watch::Receiver<u64> {
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
        clock.advance(Duration::from_secs(90)).unwrap();
        assert_eq!(clock.now() - start, TimeDelta::seconds(90));
    }

    #[test]
    fn advances_stop_at_the_latest_time_and_leave_the_clock_where_it_was() {
        let clock = WorkflowClock::manual();
        let over = MAX_ADVANCE + Duration::from_secs(1);
        assert_eq!(clock.advance(over), Err(ClockError::TooFar(over)));
        while clock.advance(MAX_ADVANCE).is_ok() {}
        let stuck = clock.now();
        assert!(stuck <= LATEST && LATEST - stuck < TimeDelta::days(3650));
        assert_eq!(
            clock.advance(MAX_ADVANCE),
            Err(ClockError::PastLatest(MAX_ADVANCE))
        );
        assert_eq!(clock.now(), stuck);
        let rest = (LATEST - stuck).to_std().unwrap();
        clock.advance(rest).unwrap();
        assert_eq!(clock.now(), LATEST);
    }

    #[test]
    fn advancing_notifies_subscribers() {
        let clock = WorkflowClock::manual();
        let ticks = clock.subscribe();
        assert!(!ticks.has_changed().unwrap());
        clock.advance(Duration::from_secs(1)).unwrap();
        assert!(ticks.has_changed().unwrap());
    }
}
