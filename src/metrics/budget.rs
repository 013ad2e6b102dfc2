//! Two gauges of what each credential's budget has left, named for what they hold:
//! `registrar_gateway_budget_burst_remaining{credential}`, the requests it may send
//! at once right now (at most the burst, a tenth of the allowance), and
//! `registrar_gateway_budget_window_remaining{credential}`, the requests it may send
//! over the next window (the burst left plus what refills meanwhile: the whole
//! allowance, 1,080 of Cloudflare's 1,200 by default, when it is rested). Both are
//! computed at scrape time from the budget's last decision, so an idle credential is
//! seen refilling without any request.
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
/// `refill` after `since`, up to `capacity` (the budget's burst), in a budget
/// that admits at most its allowance in any `window`.
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
    /// The budget's window (`--upstream-budget-window`).
    pub window: Duration,
}

impl Level {
    /// The burst left at `now`: what may be sent at once.
    fn at(&self, now: Instant) -> u32 {
        let regained = self.regained(now.saturating_duration_since(self.since));
        self.remaining.saturating_add(regained).min(self.capacity)
    }

    /// What may be sent from `now` to one window later: the burst left, and what
    /// refills in the window (after the pause, while the upstream has paused it).
    fn within_window(&self, now: Instant) -> u32 {
        let refilling = (now + self.window).saturating_duration_since(self.since.max(now));
        self.at(now).saturating_add(self.regained(refilling))
    }

    fn regained(&self, over: Duration) -> u32 {
        let regained = over.as_nanos() / self.refill.as_nanos().max(1);
        u32::try_from(regained).unwrap_or(u32::MAX)
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

/// One credential's series at a scrape.
struct Left {
    credential: String,
    burst: u32,
    window: u32,
}

impl Collector for Remaining {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let now = Instant::now();
        let levels: Vec<Left> = {
            let levels = self.levels.lock().unwrap_or_else(PoisonError::into_inner);
            levels
                .iter()
                .map(|(credential, level)| Left {
                    credential: credential.clone(),
                    burst: level.at(now),
                    window: level.within_window(now),
                })
                .collect()
        };
        gauge(
            &mut encoder,
            "budget_burst_remaining",
            "Upstream requests each credential (short keyed fingerprint) may send at once right now: the burst left (at most a tenth of the allowance), refilling evenly; 0 while the upstream has paused it",
            &levels,
            |left| left.burst,
        )?;
        gauge(
            &mut encoder,
            "budget_window_remaining",
            "Upstream requests each credential (short keyed fingerprint) may send over the next budget window: the burst left plus what refills in the window; the whole allowance when rested",
            &levels,
            |left| left.window,
        )
    }
}

/// One gauge family, a series per credential.
fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    levels: &[Left],
    value: impl Fn(&Left) -> u32,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for left in levels {
        let labels = [("credential", left.credential.as_str())];
        ConstGauge::new(i64::from(value(left))).encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
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
            window: Duration::from_secs(90),
        };
        assert_eq!(level.at(since), 2);
        assert_eq!(level.at(since + Duration::from_millis(3500)), 5);
        assert_eq!(level.at(since + Duration::from_secs(60)), 10);
        assert_eq!(level.at(since - Duration::from_secs(5)), 2, "paused");
    }

    #[test]
    fn the_window_left_is_the_burst_left_and_what_refills_in_a_window() {
        // An allowance of 100 per 90 s: a burst of 10, then one a second.
        let since = Instant::now();
        let level = Level {
            remaining: 2,
            capacity: 10,
            refill: Duration::from_secs(1),
            since,
            window: Duration::from_secs(90),
        };
        assert_eq!(level.within_window(since), 92);
        assert_eq!(
            level.within_window(since + Duration::from_secs(60)),
            100,
            "rested"
        );
        let paused_for_30s = since + Duration::from_secs(30);
        let paused = Level {
            since: paused_for_30s,
            remaining: 0,
            ..level
        };
        assert_eq!(
            paused.within_window(since),
            60,
            "nothing refills during the pause"
        );
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
                window: Duration::from_secs(1),
            };
            remaining.record(format!("c{n}"), level);
        }
        let levels = remaining.levels.lock().unwrap();
        assert_eq!(levels.len(), MAX_CREDENTIALS);
        assert!(!levels.contains_key("c0") && levels.contains_key("c1"));
    }
}
