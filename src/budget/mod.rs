//! The upstream request budget: per credential, never more requests than Cloudflare
//! allows (1,200 per 5 minutes by default, whose overrun locks the credential out of
//! the whole API for 5 minutes), shared by queries and pollers.
//!
//! A GCRA limiter per credential fingerprint (governor) admits at most `limit`
//! requests in *any* window of `window`: a burst of a tenth of the limit, the rest
//! spread evenly. Pollers of blocked or paused workflows draw on the background class,
//! which may use only a share of the budget, so a thousand blocked registrations cannot
//! starve the ones that move. When the upstream itself says stop (429 `Retry-After`,
//! or `Ratelimit` with nothing remaining), the credential is paused for every caller.
//!
//! With the Redis store (`--redis-url`) the same GCRA lives in Redis
//! ([`redis_budget`]), so replicas share one budget and one pause per credential; while
//! Redis is unreachable each replica spends a conservative local allowance ([`outage`]).
//! The in-process limiter below serves the single-replica gateway.

mod outage;
mod redis_budget;

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::credential::Fingerprint;
use crate::metrics::{BudgetLevel, Metrics};
use crate::store::RedisStore;
use crate::sync::LockUnpoisoned;
use outage::OutageAllowance;
use redis_budget::RedisBudget;

/// Credentials tracked before idle ones are forgotten (bounds memory in pass-through mode).
const MAX_TRACKED_CREDENTIALS: usize = 10_000;

/// The longest pause the upstream can impose: Cloudflare locks a credential out
/// for 5 minutes; an hour bounds any `Retry-After`, however large.
pub const MAX_PAUSE: Duration = Duration::from_secs(3600);

/// The budget's size.
#[derive(Clone, Copy, Debug)]
pub struct BudgetSettings {
    /// Requests allowed per credential in any window.
    pub limit: u32,
    /// The window.
    pub window: Duration,
    /// Share of the limit that background polls (blocked, waiting on the user) may use.
    pub background_share: f64,
}

/// Whose request it is, for fairness when the budget is short.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    /// Queries, and pollers of workflows that move.
    Foreground,
    /// Pollers of blocked workflows, or of paused ones kept watched.
    Background,
}

/// The budget has no room now; `retry_after` is when it will.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("no room in the upstream budget for {retry_after:?}")]
pub struct Exhausted {
    /// Time until a request would be admitted.
    pub retry_after: Duration,
}

/// The budget of every credential; cheap to clone.
#[derive(Clone)]
pub struct Budget {
    inner: Arc<BudgetState>,
}

/// A GCRA quota as the shared and local-share limiters take it: one request per
/// `period`, up to `burst` at once (governor's [`Quota`], in plain numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct GcraParams {
    period: Duration,
    burst: u32,
}

/// A keyed limiter that reports the burst capacity left after each admission.
type ReportingLimiter = RateLimiter<
    Fingerprint,
    DefaultKeyedStateStore<Fingerprint>,
    DefaultClock,
    StateInformationMiddleware,
>;

struct BudgetState {
    all: ReportingLimiter,
    /// The `all` quota: what a full budget holds and how fast it refills.
    quota: Quota,
    background: DefaultKeyedRateLimiter<Fingerprint>,
    /// Credentials the upstream told to stop, until when.
    paused: Mutex<HashMap<Fingerprint, Instant>>,
    clock: DefaultClock,
    /// Where each credential's budget left and every refusal are reported.
    metrics: Metrics,
    /// The budget in Redis, shared by the replicas (`--redis-url`).
    redis: Option<RedisBudget>,
    /// While Redis is unreachable: this replica's allowance, cut for the replica count
    /// last seen; dropped when Redis answers, so the next outage starts empty again.
    outage: Mutex<Option<OutageAllowance>>,
}

impl Budget {
    /// A budget of `settings.limit` requests per `settings.window` per credential,
    /// kept in `store` (one budget for every replica) when given.
    pub fn new(settings: BudgetSettings, metrics: Metrics, store: Option<RedisStore>) -> Self {
        let background_limit =
            (f64::from(settings.limit) * settings.background_share.clamp(0.0, 1.0)) as u32;
        let all = quota(settings.limit, settings.window);
        let params = (
            gcra(settings.limit, settings.window),
            gcra(background_limit, settings.window),
        );
        let inner = BudgetState {
            all: RateLimiter::keyed(all).with_middleware::<StateInformationMiddleware>(),
            quota: all,
            background: DefaultKeyedRateLimiter::keyed(quota(background_limit, settings.window)),
            paused: Mutex::default(),
            clock: DefaultClock::default(),
            metrics,
            redis: store.map(|store| RedisBudget::new(store, params.0, params.1)),
            outage: Mutex::default(),
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Takes one request from `credential`'s budget, or says when there will be room.
    pub async fn try_acquire(
        &self,
        credential: Fingerprint,
        priority: Priority,
    ) -> Result<(), Exhausted> {
        let admitted = match &self.inner.redis {
            None => self.admit(credential, priority),
            Some(redis) => self.admit_in_redis(redis, credential, priority).await,
        };
        match admitted {
            Ok(remaining) => self.report(credential, remaining, Instant::now()),
            Err(_) => self.inner.metrics.budget_refusal(),
        }
        admitted.map(drop)
    }

    /// Admits one request; says how many more could go at once now.
    fn admit(&self, credential: Fingerprint, priority: Priority) -> Result<u32, Exhausted> {
        if let Some(retry_after) = self.paused_for(credential) {
            return Err(Exhausted { retry_after });
        }
        if priority == Priority::Background {
            self.check(&self.inner.background, credential)?;
        }
        let snapshot = self
            .inner
            .all
            .check_key(&credential)
            .map_err(|not_until| Exhausted {
                retry_after: not_until.wait_time_from(self.inner.clock.now()),
            })?;
        self.forget_idle_credentials();
        Ok(snapshot.remaining_burst_capacity())
    }

    /// Admits one request from the budget in Redis, or from this replica's outage
    /// allowance while Redis cannot be reached.
    async fn admit_in_redis(
        &self,
        redis: &RedisBudget,
        credential: Fingerprint,
        priority: Priority,
    ) -> Result<u32, Exhausted> {
        if let Some(retry_after) = self.paused_for(credential) {
            return Err(Exhausted { retry_after });
        }
        if redis.store.is_connected() {
            match redis.try_acquire(credential, priority).await {
                Ok(admitted) => {
                    self.inner.outage.lock_unpoisoned().take();
                    return admitted;
                }
                Err(error) => {
                    tracing::debug!(%error, "the shared budget is unreachable: using the local share");
                }
            }
        }
        let wait = self.book_in_outage_allowance(redis, credential, priority)?;
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        Ok(0)
    }

    /// Books a slot in this replica's outage allowance (cut anew when the replica count
    /// changed): how long to wait for it.
    fn book_in_outage_allowance(
        &self,
        redis: &RedisBudget,
        credential: Fingerprint,
        priority: Priority,
    ) -> Result<Duration, Exhausted> {
        let replicas = redis.store.replica_count();
        let mut outage = self.inner.outage.lock_unpoisoned();
        let allowance = match outage.take() {
            Some(current) if current.replicas == replicas => outage.insert(current),
            _ => outage.insert(OutageAllowance::new(replicas, redis.all, redis.background)),
        };
        allowance.try_acquire(credential, priority, Instant::now())
    }

    /// Reports `credential`'s budget: `remaining` at `since`, refilling at the quota's pace.
    fn report(&self, credential: Fingerprint, remaining: u32, since: Instant) {
        let level = BudgetLevel {
            remaining,
            capacity: self.inner.quota.burst_size().get(),
            refill: self.inner.quota.replenish_interval(),
            since,
        };
        self.inner
            .metrics
            .budget_remaining(|| credential.short(), level);
    }

    /// Stops every request of `credential` for `duration`, at most [`MAX_PAUSE`]:
    /// the upstream asked for it. (A `Retry-After` of 2^64-1 seconds overflowed
    /// `Instant` and panicked the request's task.)
    pub fn pause(&self, credential: Fingerprint, duration: Duration) {
        let duration = duration.min(MAX_PAUSE);
        let until = Instant::now() + duration;
        let mut paused = self.inner.paused.lock_unpoisoned();
        let entry = paused.entry(credential).or_insert(until);
        *entry = (*entry).max(until);
        self.report(credential, 0, *entry);
        drop(paused);
        if self.inner.redis.is_some() {
            // Every replica stops too; the local pause above holds meanwhile.
            let budget = self.clone();
            tokio::spawn(async move {
                if let Some(redis) = &budget.inner.redis
                    && let Err(error) = redis.pause(credential, duration).await
                {
                    tracing::warn!(%error, "could not share an upstream pause with the other replicas");
                }
            });
        }
        tracing::warn!(%credential, pause_ms = duration.as_millis() as u64, "the upstream asked this credential to slow down");
    }

    fn paused_for(&self, credential: Fingerprint) -> Option<Duration> {
        let mut paused = self.inner.paused.lock_unpoisoned();
        let now = Instant::now();
        match paused.get(&credential) {
            Some(until) if *until > now => Some(*until - now),
            Some(_) => {
                paused.remove(&credential);
                None
            }
            None => None,
        }
    }

    fn check(
        &self,
        limiter: &DefaultKeyedRateLimiter<Fingerprint>,
        credential: Fingerprint,
    ) -> Result<(), Exhausted> {
        limiter
            .check_key(&credential)
            .map_err(|not_until| Exhausted {
                retry_after: not_until.wait_time_from(self.inner.clock.now()),
            })
    }

    fn forget_idle_credentials(&self) {
        if self.inner.all.len() > MAX_TRACKED_CREDENTIALS {
            self.inner.all.retain_recent();
            self.inner.background.retain_recent();
        }
    }
}

/// A GCRA quota admitting at most `limit` requests in any window of `window`: in
/// any interval of length `window` it admits `burst + window / period` requests.
/// Fair shares size each client's share of a credential's budget with it too.
pub(crate) fn quota(limit: u32, window: Duration) -> Quota {
    let limit = limit.max(2);
    let burst = (limit / 10).max(1);
    let period = window / (limit - burst);
    let burst = NonZeroU32::new(burst).expect("at least 1");
    Quota::with_period(period.max(Duration::from_nanos(1)))
        .expect("a positive period")
        .allow_burst(burst)
}

/// [`quota`] in plain numbers, for the limiters that are not governor's.
fn gcra(limit: u32, window: Duration) -> GcraParams {
    let limit = limit.max(2);
    let burst = (limit / 10).max(1);
    GcraParams {
        period: (window / (limit - burst)).max(Duration::from_nanos(1)),
        burst,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::{Credential, CredentialSecret, FingerprintKey};

    fn credential(token: &str) -> Fingerprint {
        Credential::new(
            CredentialSecret::ApiToken(token.into()),
            &FingerprintKey::random(),
        )
        .fingerprint()
    }

    /// The in-process budget never waits: its future is ready at once.
    fn acquire(
        budget: &Budget,
        credential: Fingerprint,
        priority: Priority,
    ) -> Result<(), Exhausted> {
        futures::executor::block_on(budget.try_acquire(credential, priority))
    }

    fn budget(limit: u32, window: Duration) -> Budget {
        Budget::new(
            BudgetSettings {
                limit,
                window,
                background_share: 0.25,
            },
            Metrics::disabled(),
            None,
        )
    }

    #[test]
    fn a_burst_is_a_tenth_of_the_limit_and_credentials_do_not_share() {
        let budget = budget(100, Duration::from_secs(3600));
        let (a, b) = (credential("a"), credential("b"));
        let admitted = (0..50)
            .filter(|_| acquire(&budget, a, Priority::Foreground).is_ok())
            .count();
        assert_eq!(admitted, 10);
        assert!(acquire(&budget, b, Priority::Foreground).is_ok());
        let refused = acquire(&budget, a, Priority::Foreground).unwrap_err();
        assert!(refused.retry_after > Duration::from_secs(30), "{refused:?}");
    }

    #[test]
    fn a_pause_of_u64_max_seconds_is_capped_not_a_panic() {
        let budget = budget(100, Duration::from_secs(3600));
        let a = credential("a");
        budget.pause(a, Duration::from_secs(u64::MAX));
        let paused = budget.paused_for(a).expect("the credential is paused");
        assert!(paused <= MAX_PAUSE && paused > MAX_PAUSE - Duration::from_secs(60));
    }

    #[test]
    fn background_requests_get_only_their_share() {
        let budget = budget(100, Duration::from_secs(3600));
        let a = credential("a");
        let background = (0..50)
            .filter(|_| acquire(&budget, a, Priority::Background).is_ok())
            .count();
        assert_eq!(background, 2, "a tenth of the 25-request share");
        let foreground = (0..50)
            .filter(|_| acquire(&budget, a, Priority::Foreground).is_ok())
            .count();
        assert_eq!(
            foreground, 8,
            "the rest of the burst is still there for foreground work"
        );
    }

    #[test]
    fn an_upstream_pause_stops_every_caller_of_that_credential() {
        let budget = budget(1000, Duration::from_secs(1));
        let (a, b) = (credential("a"), credential("b"));
        budget.pause(a, Duration::from_secs(60));
        let refused = acquire(&budget, a, Priority::Foreground).unwrap_err();
        assert!(refused.retry_after > Duration::from_secs(59));
        assert!(acquire(&budget, b, Priority::Foreground).is_ok());
    }
}
