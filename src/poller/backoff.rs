//! When to poll next: a growing interval per state class, reset on a state change,
//! with jitter so pollers started together do not stay aligned.

use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::upstream::WorkflowState;

/// Poll pacing, from the upstream's guidance: increasing backoff, and a longer
/// interval while waiting on a third party or the user.
#[derive(Clone, Debug)]
pub struct Pacing {
    /// First interval while the workflow moves (pending, in progress).
    pub initial: Duration,
    /// Longest interval while the workflow moves.
    pub max: Duration,
    /// Growth factor between polls without a change.
    pub multiplier: f64,
    /// First interval while blocked or waiting on the user.
    pub slow_initial: Duration,
    /// Longest interval while blocked or waiting on the user.
    pub slow_max: Duration,
    /// Share of each interval randomised either way (0.1 = ±10%).
    pub jitter: f64,
}

/// Whether a state calls for the fast or the slow schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Class {
    Moving,
    Waiting,
}

impl Class {
    fn of(state: &WorkflowState) -> Self {
        match state {
            WorkflowState::Blocked | WorkflowState::ActionRequired => Self::Waiting,
            _ => Self::Moving,
        }
    }
}

/// Where a schedule stands, so that another replica taking over a registration's
/// poller goes on from the same interval instead of starting over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BackoffPosition {
    class: Class,
    /// The interval before jitter.
    current: Duration,
}

/// The interval schedule of one poller.
#[derive(Debug)]
pub(super) struct Backoff {
    pacing: Pacing,
    class: Class,
    current: Duration,
}

impl Backoff {
    /// A schedule starting on the fast interval.
    pub(super) fn new(pacing: Pacing) -> Self {
        let current = pacing.initial;
        Self {
            pacing,
            class: Class::Moving,
            current,
        }
    }

    /// Where this schedule stands.
    pub(super) fn position(&self) -> BackoffPosition {
        BackoffPosition {
            class: self.class,
            current: self.current,
        }
    }

    /// Goes on from `position` (taken from another replica's poller).
    pub(super) fn resume(&mut self, position: BackoffPosition) {
        self.class = position.class;
        self.current = position.current;
    }

    /// The delay before the next poll after observing `state`; `changed` resets the growth.
    pub(super) fn after_observation(&mut self, state: &WorkflowState, changed: bool) -> Duration {
        let class = Class::of(state);
        if changed || class != self.class {
            self.class = class;
            self.current = self.initial();
        } else {
            self.grow();
        }
        self.jittered()
    }

    /// The delay after a failed poll: keep growing; never sooner than `at_least` (Retry-After).
    pub(super) fn after_failure(&mut self, at_least: Option<Duration>) -> Duration {
        self.grow();
        self.jittered().max(at_least.unwrap_or_default())
    }

    fn initial(&self) -> Duration {
        match self.class {
            Class::Moving => self.pacing.initial,
            Class::Waiting => self.pacing.slow_initial,
        }
    }

    fn grow(&mut self) {
        let cap = match self.class {
            Class::Moving => self.pacing.max,
            Class::Waiting => self.pacing.slow_max,
        };
        self.current = self
            .current
            .mul_f64(self.pacing.multiplier.max(1.0))
            .min(cap);
    }

    fn jittered(&self) -> Duration {
        let spread = self.pacing.jitter.clamp(0.0, 1.0);
        if spread == 0.0 {
            return self.current;
        }
        let factor = rand::rng().random_range(1.0 - spread..=1.0 + spread);
        self.current.mul_f64(factor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pacing() -> Pacing {
        Pacing {
            initial: Duration::from_secs(2),
            max: Duration::from_secs(10),
            multiplier: 1.5,
            slow_initial: Duration::from_secs(30),
            slow_max: Duration::from_secs(300),
            jitter: 0.0,
        }
    }

    #[test]
    fn intervals_grow_to_the_cap_and_reset_on_a_change() {
        let mut backoff = Backoff::new(pacing());
        let pending = WorkflowState::Pending;
        let delays: Vec<u64> = (0..6)
            .map(|i| backoff.after_observation(&pending, i == 0).as_millis() as u64)
            .collect();
        assert_eq!(delays, [2000, 3000, 4500, 6750, 10000, 10000]);
        let delay = backoff.after_observation(&WorkflowState::InProgress, true);
        assert_eq!(delay, Duration::from_secs(2));
    }

    #[test]
    fn blocked_uses_the_slow_schedule_and_retry_after_is_honoured() {
        let mut backoff = Backoff::new(pacing());
        assert_eq!(
            backoff.after_observation(&WorkflowState::Blocked, true),
            Duration::from_secs(30)
        );
        assert_eq!(
            backoff.after_observation(&WorkflowState::Blocked, false),
            Duration::from_secs(45)
        );
        let delay = backoff.after_failure(Some(Duration::from_secs(120)));
        assert_eq!(delay, Duration::from_secs(120));
    }

    #[test]
    fn a_schedule_resumed_from_a_position_goes_on_growing_from_it() {
        let mut first = Backoff::new(pacing());
        for changed in [true, false, false] {
            first.after_observation(&WorkflowState::Pending, changed);
        }
        let mut second = Backoff::new(pacing());
        second.resume(first.position());
        assert_eq!(
            second.after_observation(&WorkflowState::Pending, false),
            first.after_observation(&WorkflowState::Pending, false)
        );
    }

    #[test]
    fn jitter_stays_within_its_share() {
        let mut backoff = Backoff::new(Pacing {
            jitter: 0.1,
            ..pacing()
        });
        for _ in 0..100 {
            let delay = backoff.after_observation(&WorkflowState::Pending, true);
            assert!(delay >= Duration::from_millis(1800) && delay <= Duration::from_millis(2200));
        }
    }
}
