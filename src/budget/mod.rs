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
//! Cloudflare's limit is per user, across the dashboard, API tokens and keys: the
//! gateway keeps a reserve of it (`--budget-reserve`, 10 % by default) for
//! everything else the user runs, and spends only the allowance after it.
//!
//! When the budget is short, requests wait their turn in one line per credential
//! ([`turns`]): queries first, briefly, then polls in a fair rotation.
//!
//! With the Redis store (`--redis-url`) the same GCRA lives in Redis
//! ([`redis_budget`]), so replicas share one budget and one pause per credential; while
//! Redis is unreachable each replica spends a conservative local allowance ([`outage`]).
//! The in-process limiter below serves the single-replica gateway.

mod outage;
mod redis_budget;
mod turns;

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
pub use turns::QUERY_WAIT;
use turns::{InLine, Lines, Place};

/// Credentials tracked before idle ones are forgotten (bounds memory in pass-through mode).
const MAX_TRACKED_CREDENTIALS: usize = 10_000;

/// The longest pause the upstream can impose: Cloudflare locks a credential out
/// for 5 minutes; an hour bounds any `Retry-After`, however large.
pub const MAX_PAUSE: Duration = Duration::from_secs(3600);

/// The budget's size.
#[derive(Clone, Copy, Debug)]
pub struct BudgetSettings {
    /// Requests the upstream allows per credential in any window.
    pub limit: u32,
    /// The window.
    pub window: Duration,
    /// Share of the allowance that background polls (blocked, waiting on the user) may use.
    pub background_share: f64,
    /// Share of `limit` kept for everything else the user runs against the upstream
    /// (0 <= reserve < 1): the gateway spends only the rest.
    pub reserve: f64,
}

impl BudgetSettings {
    /// What the gateway may spend per window: the limit less the reserve.
    pub fn allowance(&self) -> u32 {
        let kept = 1.0 - self.reserve.clamp(0.0, 1.0);
        ((f64::from(self.limit) * kept).floor() as u32).max(1)
    }
}

/// Whose request it is, for fairness when the budget is short.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    /// Queries, and pollers of workflows that move.
    Foreground,
    /// Pollers of blocked workflows, or of paused ones kept watched.
    Background,
    /// A poll whose turn ([`Budget::turn`]) already took its request from the
    /// budget: admitted at once. Its retries are charged ([`Priority::retried`]).
    Granted,
}

impl Priority {
    /// The priority of a retry of a request sent at this one: a granted turn pays
    /// for one request only.
    pub fn retried(self) -> Self {
        match self {
            Self::Granted => Self::Foreground,
            other => other,
        }
    }
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
    /// The window the quota's allowance is admitted in (reported with the budget left).
    window: Duration,
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
    /// Requests waiting for room, one line per credential.
    lines: Mutex<Lines>,
}

impl Budget {
    /// A budget of `settings.limit` requests per `settings.window` per credential,
    /// kept in `store` (one budget for every replica) when given.
    pub fn new(settings: BudgetSettings, metrics: Metrics, store: Option<RedisStore>) -> Self {
        let allowance = settings.allowance();
        let background_limit =
            (f64::from(allowance) * settings.background_share.clamp(0.0, 1.0)) as u32;
        let all = quota(allowance, settings.window);
        let params = (
            gcra(allowance, settings.window),
            gcra(background_limit, settings.window),
        );
        let inner = BudgetState {
            all: RateLimiter::keyed(all).with_middleware::<StateInformationMiddleware>(),
            quota: all,
            window: settings.window,
            background: DefaultKeyedRateLimiter::keyed(quota(background_limit, settings.window)),
            paused: Mutex::default(),
            clock: DefaultClock::default(),
            metrics,
            redis: store.map(|store| RedisBudget::new(store, params.0, params.1)),
            outage: Mutex::default(),
            lines: Mutex::default(),
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Takes one request from `credential`'s budget for a query (or a retry, or a
    /// start): at once when there is room and nobody waits, else after the queries
    /// ahead of it, waiting at most [`QUERY_WAIT`]; or says when to try again.
    pub async fn try_acquire(
        &self,
        credential: Fingerprint,
        priority: Priority,
    ) -> Result<(), Exhausted> {
        if priority == Priority::Granted {
            return Ok(());
        }
        let admitted = match self.paused_for(credential) {
            Some(retry_after) => Err(Exhausted { retry_after }),
            None => self.in_turn(credential, priority, None).await,
        };
        if admitted.is_err() {
            self.inner.metrics.budget_refusal();
        }
        admitted
    }

    /// Takes one request from `credential`'s budget for a poll of a registration
    /// last polled at `last_polled` (or whose poller started then): at once when
    /// there is room and nobody waits, else when its turn in the rotation comes
    /// (the least recently polled first, after the queries). Never refused; a
    /// caller that stops waiting leaves the line.
    pub async fn turn(
        &self,
        credential: Fingerprint,
        priority: Priority,
        last_polled: tokio::time::Instant,
    ) {
        // Unbounded waits are only refused when the dispatcher is gone (never while the
        // budget lives); the poll then goes and the upstream's answer decides.
        let _ = self.in_turn(credential, priority, Some(last_polled)).await;
    }

    /// How long a poll joining `credential`'s line now can expect to wait: one
    /// request period per poll ahead of it.
    pub fn turn_wait(&self, credential: Fingerprint) -> Duration {
        let polls = self.inner.lines.lock_unpoisoned().polls_waiting(credential);
        let polls = u32::try_from(polls).unwrap_or(u32::MAX);
        self.inner.quota.replenish_interval().saturating_mul(polls)
    }

    /// Admits at once when nobody waits and there is room, else waits in line
    /// (a query at most [`QUERY_WAIT`], a poll until its turn).
    async fn in_turn(
        &self,
        credential: Fingerprint,
        priority: Priority,
        poll_since: Option<tokio::time::Instant>,
    ) -> Result<(), Exhausted> {
        let waiting = self.inner.lines.lock_unpoisoned().is_waiting(credential);
        if !waiting {
            match self.admit_now(credential, priority).await {
                Ok(()) => return Ok(()),
                // A query the budget cannot serve within its bounded wait (a pause after
                // an upstream 429, a long refill) is refused now, with the real time to
                // come back rather than the length of a wait that could not help.
                Err(refused) if poll_since.is_none() && refused.retry_after > QUERY_WAIT => {
                    return Err(refused);
                }
                Err(_) => {}
            }
        }
        let joined = self
            .inner
            .lines
            .lock_unpoisoned()
            .join(credential, priority, poll_since);
        let (place, granted) = match joined {
            InLine::Wait(place, granted) => (place, granted),
            InLine::WaitAndDispatch(place, granted) => {
                tokio::spawn(self.clone().dispatch(credential));
                (place, granted)
            }
        };
        let _leave = LeaveOnDrop {
            budget: self,
            credential,
            place,
        };
        let granted = match poll_since {
            Some(_) => granted.await.is_ok(),
            None => matches!(tokio::time::timeout(QUERY_WAIT, granted).await, Ok(Ok(()))),
        };
        match granted {
            true => Ok(()),
            false => Err(Exhausted {
                retry_after: QUERY_WAIT,
            }),
        }
    }

    /// Serves `credential`'s line: each request that frees up goes to the first in
    /// line (or, when the background class has no room for it, to the next one
    /// that is not a background poll); stops when the line is empty.
    async fn dispatch(self, credential: Fingerprint) {
        loop {
            let next = self.inner.lines.lock_unpoisoned().next(credential);
            if next.is_empty() {
                return;
            }
            let mut wait = MAX_PAUSE;
            let mut granted = false;
            for (place, priority) in next {
                match self.admit_now(credential, priority).await {
                    Ok(()) => {
                        let waiter = self.inner.lines.lock_unpoisoned().leave(credential, place);
                        // A waiter that left meanwhile leaves its request unused.
                        if let Some(waiter) = waiter {
                            let _ = waiter.granted.send(());
                        }
                        granted = true;
                        break;
                    }
                    Err(exhausted) => wait = wait.min(exhausted.retry_after),
                }
            }
            if !granted {
                tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
            }
        }
    }

    /// One admission from the budget (in Redis, or this process), reported.
    async fn admit_now(
        &self,
        credential: Fingerprint,
        priority: Priority,
    ) -> Result<(), Exhausted> {
        let admitted = match &self.inner.redis {
            None => self.admit(credential, priority),
            Some(redis) => self.admit_in_redis(redis, credential, priority).await,
        };
        let remaining = admitted?;
        self.report(credential, remaining, Instant::now());
        Ok(())
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
            window: self.inner.window,
        };
        self.inner
            .metrics
            .budget_level(|| credential.short(), level);
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

    /// Leaves `credential`'s line.
    fn leave(&self, credential: Fingerprint, place: Place) {
        self.inner.lines.lock_unpoisoned().leave(credential, place);
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

/// Takes a request's place out of its line when its waiter goes (granted, timed
/// out, or dropped by a caller that stopped waiting).
struct LeaveOnDrop<'a> {
    budget: &'a Budget,
    credential: Fingerprint,
    place: Place,
}

impl Drop for LeaveOnDrop<'_> {
    fn drop(&mut self) {
        self.budget.leave(self.credential, self.place);
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

    /// One admission from the in-process limiters, without waiting in line.
    fn acquire(
        budget: &Budget,
        credential: Fingerprint,
        priority: Priority,
    ) -> Result<(), Exhausted> {
        budget.admit(credential, priority).map(drop)
    }

    fn budget(limit: u32, window: Duration) -> Budget {
        Budget::new(
            BudgetSettings {
                limit,
                window,
                background_share: 0.25,
                reserve: 0.0,
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

    #[test]
    fn the_reserve_is_kept_for_everything_else_the_user_runs() {
        let settings = BudgetSettings {
            limit: 1200,
            window: Duration::from_secs(300),
            background_share: 0.25,
            reserve: 0.1,
        };
        assert_eq!(settings.allowance(), 1080);
        let budget = Budget::new(settings, Metrics::disabled(), None);
        let a = credential("a");
        let burst = (0..500)
            .filter(|_| acquire(&budget, a, Priority::Foreground).is_ok())
            .count();
        assert_eq!(burst, 108, "a tenth of the allowance, not of the limit");
    }

    #[tokio::test]
    async fn when_the_budget_is_short_queries_go_first_then_the_least_recently_polled() {
        // A request every 20 ms after a burst of 11.
        let budget = budget(110, Duration::from_secs(2));
        let a = credential("a");
        while acquire(&budget, a, Priority::Foreground).is_ok() {}
        let (granted, mut order) = tokio::sync::mpsc::unbounded_channel();
        let start = tokio::time::Instant::now();
        // Polls last polled 1 s, 3 s and 2 s ago, then a query: all wait in line.
        for (name, ago) in [("poll 1s", 1), ("poll 3s", 3), ("poll 2s", 2)] {
            let (budget, granted) = (budget.clone(), granted.clone());
            let last_polled = start - Duration::from_secs(ago);
            tokio::spawn(async move {
                budget.turn(a, Priority::Foreground, last_polled).await;
                let _ = granted.send(name);
            });
        }
        let query = {
            let (budget, granted) = (budget.clone(), granted.clone());
            tokio::spawn(async move {
                let admitted = budget.try_acquire(a, Priority::Foreground).await;
                let _ = granted.send("query");
                admitted
            })
        };
        drop(granted);
        let mut seen = Vec::new();
        while let Some(name) = order.recv().await {
            seen.push(name);
        }
        assert_eq!(seen, ["query", "poll 3s", "poll 2s", "poll 1s"]);
        assert_eq!(query.await.unwrap(), Ok(()));
        assert_eq!(budget.turn_wait(a), Duration::ZERO, "the line is empty");
    }

    #[tokio::test]
    async fn a_query_waits_in_line_at_most_its_bound_then_is_refused() {
        // One request per 100 s after a burst of 1: the line does not move.
        let budget = budget(2, Duration::from_secs(100));
        let a = credential("a");
        while acquire(&budget, a, Priority::Foreground).is_ok() {}
        // A poll waits in line, so the query joins it behind nobody but cannot be served.
        let poll = {
            let budget = budget.clone();
            tokio::spawn(async move {
                budget
                    .turn(a, Priority::Foreground, tokio::time::Instant::now())
                    .await
            })
        };
        while !budget.inner.lines.lock_unpoisoned().is_waiting(a) {
            tokio::task::yield_now().await;
        }
        let started = std::time::Instant::now();
        let refused = budget.try_acquire(a, Priority::Foreground).await;
        assert_eq!(
            refused,
            Err(Exhausted {
                retry_after: QUERY_WAIT
            })
        );
        assert!(started.elapsed() >= QUERY_WAIT);
        poll.abort();
        let _ = poll.await;
        assert!(
            !budget.inner.lines.lock_unpoisoned().is_waiting(a),
            "both left the line"
        );
    }

    #[tokio::test]
    async fn a_query_the_budget_cannot_serve_within_its_bound_is_refused_at_once_with_the_real_wait()
     {
        // One request per 100 s after a burst of 1, and nobody in line.
        let budget = budget(2, Duration::from_secs(100));
        let a = credential("a");
        while acquire(&budget, a, Priority::Foreground).is_ok() {}
        let refused = budget
            .try_acquire(a, Priority::Foreground)
            .await
            .expect_err("no room for 100 s");
        assert!(refused.retry_after > QUERY_WAIT, "{refused:?}");
        assert!(
            !budget.inner.lines.lock_unpoisoned().is_waiting(a),
            "it never joined the line"
        );
    }
}
