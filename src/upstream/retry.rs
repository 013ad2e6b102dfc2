//! Retries for idempotent upstream reads, bounded the way Cloudflare's official SDKs
//! bound theirs: a few retries, exponential backoff from a small initial delay up to
//! a cap, up to 25% jitter, and the server's `Retry-After` honoured.
//!
//! A small policy struct rather than a crate: the rules are five lines, and the
//! crates' jitter and `Retry-After` handling would need overriding to match the SDKs.

use std::time::Duration;

use super::UpstreamError;

/// How often and how patiently a failed idempotent read is tried again.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Retries after the first attempt (the SDKs default to 2).
    pub retries: u32,
    /// Backoff before the first retry; doubles on each further retry.
    pub initial: Duration,
    /// Cap on a backoff, and on a `Retry-After` worth waiting for.
    pub max: Duration,
}

impl RetryPolicy {
    /// No retries at all.
    pub const NONE: Self = Self {
        retries: 0,
        initial: Duration::ZERO,
        max: Duration::ZERO,
    };

    /// How long to wait before retry number `retry` (0 for the first) after `error`,
    /// or `None` when the read must not be retried: the retries are spent, the error
    /// is a definite answer (auth, other 4xx, an unreadable body), or the upstream
    /// asked for a wait longer than [`RetryPolicy::max`].
    pub fn delay(&self, retry: u32, error: &UpstreamError) -> Option<Duration> {
        if retry >= self.retries {
            return None;
        }
        match error {
            UpstreamError::RateLimited {
                retry_after: Some(wait),
                ..
            } => (*wait <= self.max).then_some(*wait),
            UpstreamError::RateLimited {
                retry_after: None, ..
            }
            | UpstreamError::Unavailable { .. }
            | UpstreamError::Timeout
            | UpstreamError::Unreachable(_) => Some(self.backoff(retry)),
            UpstreamError::Auth { .. }
            | UpstreamError::Rejected { .. }
            | UpstreamError::InvalidResponse(_)
            | UpstreamError::OverBudget { .. } => None,
        }
    }

    /// `initial * 2^retry`, capped at `max`, minus up to 25% jitter.
    fn backoff(&self, retry: u32) -> Duration {
        let doubled = self
            .initial
            .saturating_mul(2_u32.saturating_pow(retry))
            .min(self.max);
        doubled.mul_f64(1.0 - rand::random::<f64>() * 0.25)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SDK: RetryPolicy = RetryPolicy {
        retries: 2,
        initial: Duration::from_millis(500),
        max: Duration::from_secs(8),
    };

    #[test]
    fn backoff_doubles_with_at_most_a_quarter_of_jitter_and_stops_at_the_cap() {
        let policy = RetryPolicy { retries: 10, ..SDK };
        let unavailable = UpstreamError::Unavailable { status: 502 };
        for (retry, full) in [(0, 500), (1, 1000), (2, 2000), (5, 8000), (9, 8000)] {
            let delay = policy.delay(retry, &unavailable).unwrap();
            let full = Duration::from_millis(full);
            assert!(
                delay <= full && delay >= full.mul_f64(0.75),
                "{retry}: {delay:?}"
            );
        }
    }

    #[test]
    fn only_transient_failures_are_retried_and_only_as_often_as_configured() {
        assert!(SDK.delay(0, &UpstreamError::Timeout).is_some());
        assert!(
            SDK.delay(1, &UpstreamError::Unreachable("reset".into()))
                .is_some()
        );
        assert_eq!(SDK.delay(2, &UpstreamError::Timeout), None);
        let auth = UpstreamError::Auth {
            status: 403,
            errors: vec![],
        };
        let rejected = UpstreamError::Rejected {
            status: 400,
            errors: vec![],
        };
        assert_eq!(SDK.delay(0, &auth), None);
        assert_eq!(SDK.delay(0, &rejected), None);
        assert_eq!(
            SDK.delay(0, &UpstreamError::InvalidResponse("eof".into())),
            None
        );
        assert_eq!(RetryPolicy::NONE.delay(0, &UpstreamError::Timeout), None);
    }

    #[test]
    fn a_short_retry_after_is_waited_out_and_a_long_one_is_not() {
        let limited = |seconds| UpstreamError::RateLimited {
            retry_after: Some(Duration::from_secs(seconds)),
            errors: vec![],
        };
        assert_eq!(SDK.delay(0, &limited(3)), Some(Duration::from_secs(3)));
        assert_eq!(SDK.delay(0, &limited(300)), None);
    }
}
