//! Injected faults: latency, edge 5xx answers, reset connections, hangs,
//! truncated bodies and "upstream down" periods, and on creates, answers lost
//! after the create acted (a late answer, a 502, a 409). All off by default.
//!
//! Shares are deterministic, not random: with share `s`, request `n` (counted
//! from the last `set_faults`) is hit when `floor(n*s)` steps past
//! `floor((n-1)*s)`, so 0.25 hits exactly every 4th request. When several kinds
//! hit one request, the first of down, reset, hang, 5xx, malformed wins.
//! The "down" period runs on the workflow clock, so a manual clock makes it
//! end exactly when a test advances past it.

use parking_lot::RwLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

/// Fault settings, as set through the handle or `PUT /__sim/faults` (JSON in milliseconds).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Added before every API answer.
    #[serde(rename = "latency_ms", with = "millis")]
    pub latency: Duration,
    /// Share (0.0-1.0) of requests answered 502 with an HTML body, as Cloudflare's edge does.
    pub error_share: f64,
    /// Share of requests whose connection is reset with no answer.
    pub reset_share: f64,
    /// Share of requests left unanswered for `hang_for` (or until shutdown).
    pub hang_share: f64,
    /// Share of requests answered 200 with truncated JSON.
    pub malformed_share: f64,
    /// How long a hung request hangs; 60 s when zero.
    #[serde(rename = "hang_ms", with = "millis")]
    pub hang_for: Duration,
    /// Answer every API request 503 (HTML) for this long (workflow-clock time), starting now.
    #[serde(rename = "down_for_ms", with = "millis")]
    pub down_for: Duration,
    /// Creates act (start or find the workflow), then wait this long before
    /// answering: past a client's timeout, the answer is lost but the workflow runs.
    #[serde(rename = "create_delay_ms", with = "millis")]
    pub create_delay: Duration,
    /// Share of creates answered 502 (HTML) after acting.
    pub create_bad_gateway_share: f64,
    /// Share of creates answered 409 (a registration is already in progress) after acting.
    pub create_conflict_share: f64,
}

/// What to do to one create after it acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CreateFault {
    /// Answer 502 with an HTML body.
    BadGateway,
    /// Answer 409: a registration is already in progress.
    Conflict,
}

/// What to do to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FaultAction {
    /// 503 with an HTML body: the upstream is down.
    Down,
    /// Close the TCP connection with a reset.
    Reset,
    /// Answer nothing for this long (or until shutdown).
    Hang(Duration),
    /// 502 with an HTML body.
    ServerError,
    /// 200, JSON content type, truncated JSON.
    Malformed,
}

/// Refused fault settings.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultsError {
    /// A share outside 0.0-1.0.
    #[error("{name} must be between 0.0 and 1.0, got {value}")]
    Share {
        /// The field.
        name: &'static str,
        /// The value given.
        value: f64,
    },
    /// A duration past its bound.
    #[error("{name} must be at most {max_ms} ms")]
    TooLong {
        /// The field.
        name: &'static str,
        /// The bound.
        max_ms: u128,
    },
}

const DEFAULT_HANG: Duration = Duration::from_secs(60);
const PARTS: u64 = 1_000_000;

impl Faults {
    /// Checks shares and duration bounds.
    pub fn validate(&self) -> Result<(), FaultsError> {
        let shares = [
            ("error_share", self.error_share),
            ("reset_share", self.reset_share),
            ("hang_share", self.hang_share),
            ("malformed_share", self.malformed_share),
            ("create_bad_gateway_share", self.create_bad_gateway_share),
            ("create_conflict_share", self.create_conflict_share),
        ];
        if let Some((name, value)) = shares.into_iter().find(|(_, v)| !(0.0..=1.0).contains(v)) {
            return Err(FaultsError::Share { name, value });
        }
        let bounds = [
            ("latency_ms", self.latency, Duration::from_secs(60)),
            ("hang_ms", self.hang_for, Duration::from_secs(3600)),
            ("down_for_ms", self.down_for, Duration::from_secs(86_400)),
            (
                "create_delay_ms",
                self.create_delay,
                Duration::from_secs(600),
            ),
        ];
        match bounds.into_iter().find(|(_, value, max)| value > max) {
            Some((name, _, max)) => Err(FaultsError::TooLong {
                name,
                max_ms: max.as_millis(),
            }),
            None => Ok(()),
        }
    }
}

/// The live fault settings and the request counter shares are spread over.
#[derive(Debug, Default)]
pub(super) struct FaultInjector {
    /// Fast path: false while no fault is set, so requests skip the lock.
    active: AtomicBool,
    settings: RwLock<(Faults, Option<DateTime<Utc>>)>,
    requests: AtomicU64,
    /// Creates counted from the last `set`, for the create shares.
    creates: AtomicU64,
}

impl FaultInjector {
    /// Replaces the settings (validated) and restarts the request count.
    pub(super) fn set(&self, faults: Faults, now: DateTime<Utc>) -> Result<(), FaultsError> {
        faults.validate()?;
        let down_for = TimeDelta::from_std(faults.down_for).unwrap_or(TimeDelta::MAX);
        let down_until = (!faults.down_for.is_zero()).then(|| now + down_for);
        self.active
            .store(faults != Faults::default(), Ordering::Release);
        *self.settings.write() = (faults, down_until);
        self.requests.store(0, Ordering::Release);
        self.creates.store(0, Ordering::Release);
        Ok(())
    }

    /// Decides the delay and fault for the next create, once it has acted.
    pub(super) fn next_create(&self) -> (Duration, Option<CreateFault>) {
        if !self.active.load(Ordering::Acquire) {
            return (Duration::ZERO, None);
        }
        let n = self.creates.fetch_add(1, Ordering::AcqRel) + 1;
        let settings = self.settings.read();
        let faults = &settings.0;
        let fault = [
            (faults.create_bad_gateway_share, CreateFault::BadGateway),
            (faults.create_conflict_share, CreateFault::Conflict),
        ]
        .into_iter()
        .find(|(share, _)| hits(*share, n))
        .map(|(_, fault)| fault);
        (faults.create_delay, fault)
    }

    /// The settings as last set.
    pub(super) fn get(&self) -> Faults {
        self.settings.read().0.clone()
    }

    /// Decides the latency and fault for the next request.
    pub(super) fn next(&self, now: DateTime<Utc>) -> (Duration, Option<FaultAction>) {
        if !self.active.load(Ordering::Acquire) {
            return (Duration::ZERO, None);
        }
        let n = self.requests.fetch_add(1, Ordering::AcqRel) + 1;
        let settings = self.settings.read();
        let (faults, down_until) = &*settings;
        let hang_for = if faults.hang_for.is_zero() {
            DEFAULT_HANG
        } else {
            faults.hang_for
        };
        let action = if down_until.is_some_and(|until| now < until) {
            Some(FaultAction::Down)
        } else {
            [
                (faults.reset_share, FaultAction::Reset),
                (faults.hang_share, FaultAction::Hang(hang_for)),
                (faults.error_share, FaultAction::ServerError),
                (faults.malformed_share, FaultAction::Malformed),
            ]
            .into_iter()
            .find(|(share, _)| hits(*share, n))
            .map(|(_, action)| action)
        };
        (faults.latency, action)
    }
}

/// Whether request `n` (1-based) is one of the `share` that is hit.
fn hits(share: f64, n: u64) -> bool {
    let parts = (share * PARTS as f64).round() as u64;
    n.saturating_mul(parts) / PARTS > (n - 1).saturating_mul(parts) / PARTS
}

/// `Duration` as whole milliseconds in JSON.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        duration: &Duration,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quarter_share_hits_exactly_every_fourth_request() {
        let hit: Vec<u64> = (1..=12).filter(|n| hits(0.25, *n)).collect();
        assert_eq!(hit, vec![4, 8, 12]);
        assert!((1..=100).all(|n| !hits(0.0, n)));
        assert!((1..=100).all(|n| hits(1.0, n)));
        assert_eq!((1..=1000).filter(|n| hits(0.3, *n)).count(), 300);
    }

    #[test]
    fn shares_outside_zero_to_one_are_refused() {
        let faults = Faults {
            hang_share: 1.5,
            ..Faults::default()
        };
        assert_eq!(
            faults.validate().unwrap_err().to_string(),
            "hang_share must be between 0.0 and 1.0, got 1.5"
        );
    }

    #[test]
    fn down_lasts_for_its_period_then_requests_pass() {
        let injector = FaultInjector::default();
        let t0 = Utc::now();
        let down = Faults {
            down_for: Duration::from_secs(5),
            ..Faults::default()
        };
        injector.set(down, t0).unwrap();
        assert_eq!(injector.next(t0).1, Some(FaultAction::Down));
        assert_eq!(injector.next(t0 + TimeDelta::seconds(5)).1, None);
    }
}
