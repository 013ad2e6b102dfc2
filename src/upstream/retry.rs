//! Retries for upstream calls, bounded the way Cloudflare's official SDKs bound
//! theirs: 408, 409, 429, 5xx and connection failures are retried a few times, with
//! exponential backoff from a small initial delay up to a cap and up to 25% jitter;
//! the server's `retry-after-ms` / `Retry-After` is honoured when it is reasonable.
//!
//! The SDKs call "reasonable" anything under 60 s and otherwise fall back to their
//! backoff. The gateway's bound is its own cap ([`RetryPolicy::max`], 8 s by
//! default), because a caller is waiting on every retry; and a 429 asking for more
//! than that, or for nothing, is answered at once (the credential is paused in the
//! budget anyway) instead of being retried into the platform's lockout.
//!
//! Only reads are retried: a registration POST is sent once (`client.rs`).
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
    /// or `None` when the call must not be retried: the retries are spent, the error
    /// is a definite answer (auth, a 4xx other than 408/409, an unreadable body), or
    /// a 429 asked for a wait longer than [`RetryPolicy::max`].
    pub fn delay(&self, retry: u32, error: &UpstreamError) -> Option<Duration> {
        if retry >= self.retries || !error.is_transient() {
            return None;
        }
        match (error.retry_after(), error) {
            (Some(wait), _) if wait <= self.max => Some(wait),
            // A 429 asking for a long wait, or for none (the platform then blocks the
            // credential for its whole window): answered at once, the upstream's
            // status and codes intact, rather than retried into the budget's pause.
            (_, UpstreamError::RateLimited { .. }) => None,
            _ => Some(self.backoff(retry)),
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
        let unavailable = UpstreamError::Unavailable {
            status: 502,
            retry_after: None,
        };
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
            retry_after: None,
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
    fn like_the_sdks_408_409_429_and_5xx_are_retried_and_other_4xx_are_not() {
        let rejected = |status| UpstreamError::Rejected {
            status,
            errors: vec![],
            retry_after: None,
        };
        for status in [408, 409] {
            assert!(SDK.delay(0, &rejected(status)).is_some(), "{status}");
        }
        for status in [400, 403, 404, 422] {
            assert_eq!(SDK.delay(0, &rejected(status)), None, "{status}");
        }
        let limited = UpstreamError::RateLimited {
            retry_after: Some(Duration::from_secs(1)),
            errors: vec![],
        };
        assert!(SDK.delay(0, &limited).is_some());
        // Without Retry-After the platform blocks for its whole window: not retried.
        let blocked = UpstreamError::RateLimited {
            retry_after: None,
            errors: vec![],
        };
        assert_eq!(SDK.delay(0, &blocked), None);
        for status in [500, 503, 524] {
            let unavailable = UpstreamError::Unavailable {
                status,
                retry_after: None,
            };
            assert!(SDK.delay(0, &unavailable).is_some(), "{status}");
        }
    }

    #[test]
    fn retry_after_is_honoured_on_every_retried_status_and_a_long_one_falls_back_to_backoff() {
        let unavailable = |seconds| UpstreamError::Unavailable {
            status: 503,
            retry_after: Some(Duration::from_secs(seconds)),
        };
        assert_eq!(SDK.delay(0, &unavailable(3)), Some(Duration::from_secs(3)));
        let fallback = SDK.delay(0, &unavailable(120)).unwrap();
        assert!(fallback <= Duration::from_millis(500), "{fallback:?}");
        let conflict = UpstreamError::Rejected {
            status: 409,
            errors: vec![],
            retry_after: Some(Duration::from_secs(1)),
        };
        assert_eq!(SDK.delay(1, &conflict), Some(Duration::from_secs(1)));
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
