//! The platform's per-credential rate limit (default 1200 requests per 300 s),
//! measured on real (tokio) time, with the `Ratelimit` / `Ratelimit-Policy`
//! header values. As documented, exceeding the limit blocks every call of that
//! credential for the next full window.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::Duration;

use axum::http::HeaderValue;
use tokio::time::Instant;

/// Credentials tracked at once; past it, expired windows are dropped first and
/// then new credentials share one overflow bucket (so memory stays bounded).
const MAX_TRACKED_CREDENTIALS: usize = 10_000;

/// `q` requests per `w`; `limit == 0` turns rate limiting off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RateLimitPolicy {
    /// Requests allowed per window; 0 means unlimited.
    pub limit: u32,
    /// The window.
    pub window: Duration,
}

/// What the limiter says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Go ahead; `Ratelimit` shows `remaining` and `reset_secs`.
    Allowed(Quota),
    /// 429 with `Retry-After: retry_after_secs`.
    Limited {
        /// Seconds until the block ends, rounded up.
        retry_after_secs: u64,
    },
}

/// The `r` and `t` of a `Ratelimit` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Quota {
    /// Requests left in the window.
    pub remaining: u32,
    /// Seconds until the window resets, rounded up.
    pub reset_secs: u64,
}

#[derive(Debug)]
struct Bucket {
    window_start: Instant,
    used: u32,
    blocked_until: Option<Instant>,
}

/// Per-credential fixed windows behind one briefly held mutex.
#[derive(Debug)]
pub(super) struct RateLimiter {
    policy: RateLimitPolicy,
    policy_header: HeaderValue,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// A limiter enforcing `policy`.
    pub(super) fn new(policy: RateLimitPolicy) -> Self {
        let header = format!(
            "\"default\";q={};w={}",
            policy.limit,
            policy.window.as_secs()
        );
        Self {
            policy,
            policy_header: HeaderValue::try_from(header)
                .unwrap_or(HeaderValue::from_static("\"default\"")),
            buckets: Mutex::default(),
        }
    }

    /// Whether limiting (and its headers) is on.
    pub(super) fn enabled(&self) -> bool {
        self.policy.limit > 0
    }

    /// The `Ratelimit-Policy` header value.
    pub(super) fn policy_header(&self) -> &HeaderValue {
        &self.policy_header
    }

    /// The quota shown on answers that never reached the limiter (auth or routing errors).
    pub(super) fn full_quota(&self) -> Quota {
        Quota {
            remaining: self.policy.limit,
            reset_secs: self.policy.window.as_secs(),
        }
    }

    /// Counts one request of `credential` at `now`.
    pub(super) fn check(&self, credential: &str, now: Instant) -> Verdict {
        if !self.enabled() {
            return Verdict::Allowed(self.full_quota());
        }
        let mut buckets = self.buckets.lock();
        if !buckets.contains_key(credential) && buckets.len() >= MAX_TRACKED_CREDENTIALS {
            let window = self.policy.window;
            buckets.retain(|_, bucket| !bucket.expired(now, window));
        }
        let key = if buckets.contains_key(credential) || buckets.len() < MAX_TRACKED_CREDENTIALS {
            credential
        } else {
            ""
        };
        if !buckets.contains_key(key) {
            buckets.insert(key.to_owned(), Bucket::new(now));
        }
        match buckets.get_mut(key) {
            Some(bucket) => bucket.count(now, self.policy),
            None => Verdict::Allowed(self.full_quota()),
        }
    }
}

impl Bucket {
    fn new(now: Instant) -> Self {
        Self {
            window_start: now,
            used: 0,
            blocked_until: None,
        }
    }

    fn expired(&self, now: Instant, window: Duration) -> bool {
        let block_over = self.blocked_until.is_none_or(|until| until <= now);
        block_over && self.window_start + window <= now
    }

    fn count(&mut self, now: Instant, policy: RateLimitPolicy) -> Verdict {
        if let Some(until) = self.blocked_until.filter(|until| *until > now) {
            return Verdict::Limited {
                retry_after_secs: ceil_secs(until - now),
            };
        }
        if self.expired(now, policy.window) {
            *self = Self::new(now);
        }
        self.used = self.used.saturating_add(1);
        if self.used > policy.limit {
            self.blocked_until = Some(now + policy.window);
            return Verdict::Limited {
                retry_after_secs: ceil_secs(policy.window),
            };
        }
        Verdict::Allowed(Quota {
            remaining: policy.limit - self.used,
            reset_secs: ceil_secs(
                (self.window_start + policy.window).saturating_duration_since(now),
            ),
        })
    }
}

/// Whole seconds, rounded up, as `Retry-After` wants.
pub(super) fn ceil_secs(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(limit: u32) -> RateLimiter {
        RateLimiter::new(RateLimitPolicy {
            limit,
            window: Duration::from_secs(300),
        })
    }

    #[test]
    fn exceeding_the_limit_blocks_for_a_full_window_from_then() {
        let limiter = limiter(2);
        let t0 = Instant::now();
        assert_eq!(
            limiter.check("t", t0),
            Verdict::Allowed(Quota {
                remaining: 1,
                reset_secs: 300
            })
        );
        let t1 = t0 + Duration::from_secs(100);
        assert_eq!(
            limiter.check("t", t1),
            Verdict::Allowed(Quota {
                remaining: 0,
                reset_secs: 200
            })
        );
        assert_eq!(
            limiter.check("t", t1),
            Verdict::Limited {
                retry_after_secs: 300
            }
        );
        // The original window would have reset at t0 + 300; the block lasts to t1 + 300.
        let t2 = t0 + Duration::from_millis(350_500);
        assert_eq!(
            limiter.check("t", t2),
            Verdict::Limited {
                retry_after_secs: 50
            }
        );
        assert_eq!(
            limiter.check("other", t2),
            Verdict::Allowed(Quota {
                remaining: 1,
                reset_secs: 300
            })
        );
        let t3 = t1 + Duration::from_secs(300);
        assert_eq!(
            limiter.check("t", t3),
            Verdict::Allowed(Quota {
                remaining: 1,
                reset_secs: 300
            })
        );
    }

    #[test]
    fn a_zero_limit_turns_limiting_off() {
        let limiter = limiter(0);
        let now = Instant::now();
        for _ in 0..10 {
            assert!(matches!(limiter.check("t", now), Verdict::Allowed(_)));
        }
    }
}
