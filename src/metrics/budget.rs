//! `registrar_gateway_budget_remaining{credential}`: requests each credential may
//! send to the upstream right now, computed at scrape time from the budget's last
//! decision, so an idle credential is seen refilling without any request.
//!
//! The label is a short keyed fingerprint, never the secret; and at most
//! [`MAX_CREDENTIALS`] series exist (pass-through mode can see many credentials):
//! past that, the credential updated longest ago is dropped.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;

/// Most credentials with a series.
pub(super) const MAX_CREDENTIALS: usize = 100;

/// A credential's budget as of one moment: `remaining` requests, one more every
/// `refill` after `since`, up to `capacity` (the budget's burst).
#[derive(Clone, Copy, Debug)]
pub struct Level {
    /// Requests that could be sent at `since`.
    pub remaining: u32,
    /// Most requests that can be sent at once.
    pub capacity: u32,
    /// Time to regain one request.
    pub refill: Duration,
    /// When `remaining` held (in the future while the upstream has paused the credential).
    pub since: Instant,
}

impl Level {
    fn at(&self, now: Instant) -> u32 {
        let elapsed = now.saturating_duration_since(self.since);
        let regained = elapsed.as_nanos() / self.refill.as_nanos().max(1);
        let regained = u32::try_from(regained).unwrap_or(u32::MAX);
        self.remaining.saturating_add(regained).min(self.capacity)
    }
}

/// The last level of each tracked credential.
#[derive(Debug, Default)]
pub(super) struct Remaining {
    /// A std mutex: held for one map update or one scrape, never across an await.
    levels: Mutex<HashMap<String, Level>>,
}

impl Remaining {
    pub(super) fn record(&self, credential: String, level: Level) {
        let mut levels = self.levels.lock().unwrap_or_else(PoisonError::into_inner);
        if levels.len() >= MAX_CREDENTIALS && !levels.contains_key(&credential) {
            let oldest = levels
                .iter()
                .min_by_key(|(_, level)| level.since)
                .map(|(credential, _)| credential.clone());
            if let Some(oldest) = oldest {
                levels.remove(&oldest);
            }
        }
        levels.insert(credential, level);
    }
}

impl Collector for Remaining {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let now = Instant::now();
        let levels: Vec<(String, u32)> = {
            let levels = self.levels.lock().unwrap_or_else(PoisonError::into_inner);
            levels
                .iter()
                .map(|(credential, level)| (credential.clone(), level.at(now)))
                .collect()
        };
        let mut metric = encoder.encode_descriptor(
            "budget_remaining",
            "Upstream requests each credential (short keyed fingerprint) may send right now: the budget's burst left, refilling at limit/window; 0 while the upstream has paused it",
            None,
            MetricType::Gauge,
        )?;
        for (credential, remaining) in levels {
            let labels = [("credential", credential.as_str())];
            ConstGauge::new(i64::from(remaining)).encode(metric.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_level_refills_one_request_per_period_up_to_its_capacity() {
        let since = Instant::now();
        let level = Level {
            remaining: 2,
            capacity: 10,
            refill: Duration::from_secs(1),
            since,
        };
        assert_eq!(level.at(since), 2);
        assert_eq!(level.at(since + Duration::from_millis(3500)), 5);
        assert_eq!(level.at(since + Duration::from_secs(60)), 10);
        assert_eq!(level.at(since - Duration::from_secs(5)), 2, "paused");
    }

    #[test]
    fn the_series_are_bounded_and_the_stalest_credential_goes_first() {
        let remaining = Remaining::default();
        let start = Instant::now();
        for n in 0..=MAX_CREDENTIALS {
            let level = Level {
                remaining: 1,
                capacity: 1,
                refill: Duration::from_secs(1),
                since: start + Duration::from_millis(n as u64),
            };
            remaining.record(format!("c{n}"), level);
        }
        let levels = remaining.levels.lock().unwrap();
        assert_eq!(levels.len(), MAX_CREDENTIALS);
        assert!(!levels.contains_key("c0") && levels.contains_key("c1"));
    }
}
