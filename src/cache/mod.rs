//! The status cache: moka caches in front of the Cloudflare API.
//!
//! Concurrent reads of one missing or expired key make exactly one upstream call
//! (moka coalesces `try_get_with` per key), and the call runs in its own task so a
//! caller that disconnects does not restart it for the others. Entries stay fresh
//! as long as their state can stay unchanged: short while a workflow moves, long
//! once it is terminal. Keys include the credential's fingerprint, so data never
//! crosses from one credential to another.
//!
//! moka has no stale-if-error, so three caches share the key:
//! - `fresh`: what is served without asking upstream (expires by [`TtlPolicy`]);
//! - `last_good`: the same snapshots kept `stale_if_error` longer, served flagged
//!   stale when a refresh fails because the upstream is unavailable;
//! - `failures`: a failed load, remembered briefly so that callers arriving just
//!   after it share the failure instead of each calling a struggling upstream.
//!
//! With the Redis store (`--redis-url`), a second level in Redis ([`redis_level`]) sits
//! behind `fresh`: a load first looks there, and takes a load lock so that one
//! replica calls upstream for all of them.
//!
//! A query's lookup carries a *charge* (the client's fair share, see
//! [`StatusCache::get_or_fetch`]) that only the load which calls the upstream pays,
//! just before the call: a lookup answered from the cache, from a shared failure or
//! from Redis, or one that joins another's load in flight, pays nothing.

mod redis_level;
mod ttl;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use tracing::Instrument;

use redis_level::{Claim, RedisLevel};
use ttl::Extended;
pub use ttl::TtlPolicy;

use crate::budget::Priority;
use crate::credential::{Credential, Fingerprint};
use crate::domain::{AccountId, DomainName};
use crate::metrics::{Lookup, Metrics};
use crate::store::RedisStore;
use crate::sync::LockUnpoisoned;
use crate::upstream::{CloudflareApi, RegistrationRequest, UpstreamError, WorkflowStatus};

/// Status reads after a registration POST whose answer was lost, while no workflow shows.
const RECONCILE_READS: u32 = 3;
/// The pause before the second of those reads (doubling after).
const RECONCILE_PAUSE: Duration = Duration::from_millis(500);

/// What the cache is keyed by: one registration as seen through one credential.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StatusKey {
    /// Whose view this is.
    pub credential: Fingerprint,
    /// The account that owns the workflow.
    pub account: AccountId,
    /// The normalised domain.
    pub domain: DomainName,
}

/// One upstream answer and when it was fetched.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// `None` when the upstream has no workflow for the domain.
    pub status: Option<Arc<WorkflowStatus>>,
    /// When the gateway received this answer.
    pub fetched_at: DateTime<Utc>,
}

impl Snapshot {
    /// Stamps an upstream answer with the current time.
    pub fn fetched_now(status: Option<WorkflowStatus>) -> Self {
        Self {
            status: status.map(Arc::new),
            fetched_at: Utc::now(),
        }
    }
}

/// A snapshot as served: fresh, or stale because refreshing it failed.
#[derive(Clone, Debug)]
pub struct Served {
    /// The answer.
    pub snapshot: Arc<Snapshot>,
    /// True when the snapshot is past its freshness and the upstream could not be
    /// asked for a newer one.
    pub stale: bool,
}

/// Why a lookup has no snapshot to serve.
#[derive(Debug)]
pub enum LookupError {
    /// The upstream call failed, and no stale snapshot may stand in.
    Upstream(Arc<UpstreamError>),
    /// This lookup was to call the upstream and its charge refused: nothing was
    /// sent; the charge may admit one after `retry_after`.
    Refused {
        /// When the charge may admit a lookup.
        retry_after: Duration,
    },
}

impl LookupError {
    /// The error as an upstream error, for a caller whose own charge was free (a
    /// poll, a start's read): it is refused only if a charge is, so never; were it,
    /// it would be what it is, a budget refusal before any call.
    pub fn into_upstream(self) -> Arc<UpstreamError> {
        match self {
            Self::Upstream(error) => error,
            Self::Refused { retry_after } => Arc::new(UpstreamError::OverBudget { retry_after }),
        }
    }
}

/// Why a load gave no snapshot (shared by every lookup that joined it).
#[derive(Debug)]
enum LoadError {
    /// The upstream call failed, or a recent failure was shared.
    Upstream(Arc<UpstreamError>),
    /// The charge of the lookup whose load this is refused: nothing was sent.
    Declined {
        /// When that charge may admit a lookup.
        retry_after: Duration,
    },
}

/// A lookup's charge, held until the load that calls the upstream takes and pays
/// it; `Err` is the refusal's retry-after. Empty once taken, or for a poll.
type Charge = Arc<Mutex<Option<BoxFuture<'static, Result<(), Duration>>>>>;

/// Settings for [`StatusCache`].
#[derive(Clone, Debug)]
pub struct CacheSettings {
    /// Most entries held; least recently used go first.
    pub capacity: u64,
    /// How long each kind of answer stays fresh.
    pub ttl: TtlPolicy,
    /// How long past its freshness a snapshot may still be served when the upstream fails.
    pub stale_if_error: Duration,
    /// How long a failed load is shared with later callers; zero turns this off.
    pub error_ttl: Duration,
}

/// The cache; cheap to clone (handles to shared caches).
#[derive(Clone)]
pub struct StatusCache {
    fresh: moka::future::Cache<StatusKey, Arc<Snapshot>>,
    last_good: moka::future::Cache<StatusKey, Arc<Snapshot>>,
    /// `None` when failures are not shared (`error_ttl` zero).
    failures: Option<moka::future::Cache<StatusKey, UpstreamError>>,
    upstream: CloudflareApi,
    /// Counts each caller's lookup as a hit, miss, collapsed or stale.
    metrics: Metrics,
    /// The second level shared by replicas (`--redis-url`).
    redis: Option<RedisLevel>,
}

impl StatusCache {
    /// An empty cache loading through `upstream`, counting lookups in `metrics`, with
    /// a second level in `store` (shared by the replicas) when given.
    pub fn new(
        settings: &CacheSettings,
        upstream: CloudflareApi,
        metrics: Metrics,
        store: Option<RedisStore>,
    ) -> Self {
        let fresh = moka::future::Cache::builder()
            .max_capacity(settings.capacity)
            .expire_after(settings.ttl.clone())
            .build();
        let last_good = moka::future::Cache::builder()
            .max_capacity(settings.capacity)
            .expire_after(Extended {
                policy: settings.ttl.clone(),
                extra: settings.stale_if_error,
            })
            .build();
        let failures = (!settings.error_ttl.is_zero()).then(|| {
            moka::future::Cache::builder()
                .max_capacity(settings.capacity)
                .time_to_live(settings.error_ttl)
                .build()
        });
        let redis = store
            .map(|store| RedisLevel::new(store, settings.ttl.clone(), upstream.longest_read()));
        Self {
            fresh,
            last_good,
            failures,
            upstream,
            metrics,
            redis,
        }
    }

    /// The snapshot for `key`: fresh when cached, else fetched (once, however many
    /// ask). When that fetch fails because the upstream is unavailable (not for auth
    /// or other refusals), the last good snapshot within the stale-if-error bound is
    /// served flagged stale instead of the error.
    ///
    /// `charge` is paid only when this lookup's own load calls the upstream, just
    /// before the call; when it answers `Err(retry_after)`, nothing is sent and the
    /// lookup gets [`LookupError::Refused`]. Lookups that joined a load so refused
    /// are not refused: they load again, paying their own charge only if their load
    /// is the one that runs. Each lookup answered is counted once in the metrics
    /// (a refused one is not), and every lookup is traced as a `cache.lookup` span.
    pub async fn get_or_fetch(
        &self,
        credential: &Credential,
        key: StatusKey,
        charge: impl Future<Output = Result<(), Duration>> + Send + 'static,
    ) -> Result<Served, LookupError> {
        debug_assert_eq!(credential.fingerprint(), key.credential);
        let charge: Charge = Arc::new(Mutex::new(Some(Box::pin(charge))));
        let span = tracing::info_span!("cache.lookup", result = tracing::field::Empty);
        let (lookup, served) = self
            .lookup(credential, key, charge)
            .instrument(span.clone())
            .await;
        let Some(lookup) = lookup else {
            span.record("result", "refused");
            return served;
        };
        span.record("result", lookup.as_str());
        self.metrics.cache_lookup(lookup);
        if let Ok(served) = &served {
            self.metrics.served(served.snapshot.fetched_at);
        }
        served
    }

    /// [`StatusCache::get_or_fetch`], saying how the lookup was answered: a hit when
    /// fresh, a miss when this lookup's load ran, collapsed when it joined another's;
    /// `None` when its charge refused.
    async fn lookup(
        &self,
        credential: &Credential,
        key: StatusKey,
        charge: Charge,
    ) -> (Option<Lookup>, Result<Served, LookupError>) {
        if let Some(snapshot) = self.fresh.get(&key).await {
            let served = Served {
                snapshot,
                stale: false,
            };
            return (Some(Lookup::Hit), Ok(served));
        }
        let ran = Arc::new(AtomicBool::new(false));
        let from_redis = Arc::new(AtomicBool::new(false));
        let load = || {
            let load = self.load(
                credential,
                &key,
                Reader::Query,
                None,
                Arc::clone(&from_redis),
                Arc::clone(&charge),
            );
            let ran = Arc::clone(&ran);
            async move {
                ran.store(true, Ordering::Relaxed);
                load.await
            }
        };
        // The charge is gone from its slot once this lookup's own load took it.
        let charged = || charge.lock_unpoisoned().is_none();
        let fetched = self.load_once_charged(&key, load, charged).await;
        let lookup = match (
            ran.load(Ordering::Relaxed),
            from_redis.load(Ordering::Relaxed),
        ) {
            (true, true) => Lookup::Shared,
            (true, false) => Lookup::Miss,
            (false, _) => Lookup::Collapsed,
        };
        let error = match fetched {
            Ok(snapshot) => {
                let served = Served {
                    snapshot,
                    stale: false,
                };
                return (Some(lookup), Ok(served));
            }
            Err(error) => error,
        };
        match error {
            LookupError::Refused { .. } => (None, Err(error)),
            LookupError::Upstream(error) => match self.stale_after(&key, error).await {
                Ok(served) => (Some(Lookup::Stale), Ok(served)),
                Err(error) => (Some(lookup), Err(LookupError::Upstream(error))),
            },
        }
    }

    /// `fresh.try_get_with` of a `load`, again as long as it joined a load that
    /// another lookup's charge refused: that refusal is this caller's only when its
    /// own charge was taken (`charged`), i.e. its own load ran.
    async fn load_once_charged<L>(
        &self,
        key: &StatusKey,
        load: impl Fn() -> L,
        charged: impl Fn() -> bool,
    ) -> Result<Arc<Snapshot>, LookupError>
    where
        L: Future<Output = Result<Arc<Snapshot>, LoadError>> + Send + 'static,
    {
        // Each round either runs this caller's load or waits for another caller's
        // to end, so the rounds are bounded by the lookups of `key` in flight.
        loop {
            let error = match self.fresh.try_get_with(key.clone(), load()).await {
                Ok(snapshot) => return Ok(snapshot),
                Err(error) => error,
            };
            match *error {
                LoadError::Upstream(ref error) => {
                    return Err(LookupError::Upstream(Arc::clone(error)));
                }
                LoadError::Declined { retry_after } if charged() => {
                    return Err(LookupError::Refused { retry_after });
                }
                LoadError::Declined { .. } => {}
            }
        }
    }

    /// The last good snapshot for `key`, flagged stale, when `error` allows serving one.
    async fn stale_after(
        &self,
        key: &StatusKey,
        error: Arc<UpstreamError>,
    ) -> Result<Served, Arc<UpstreamError>> {
        if !serves_stale(&error) {
            return Err(error);
        }
        match self.last_good.get(key).await {
            Some(snapshot) => {
                tracing::warn!(
                    credential = %key.credential,
                    domain = %key.domain,
                    fetched_at = %snapshot.fetched_at,
                    %error,
                    "serving a stale status: the upstream failed"
                );
                Ok(Served {
                    snapshot,
                    stale: true,
                })
            }
            None => Err(error),
        }
    }

    /// The load moka runs for a missing or expired key: a recent failure is shared
    /// with queries, otherwise the Redis level (when there is one) or the upstream
    /// is asked for a snapshot newer than `since`, and the outcome remembered;
    /// `from_redis` is set when the Redis level answered (no upstream call).
    /// A call to the upstream is made only once `charge` (when there is one) is paid.
    fn load(
        &self,
        credential: &Credential,
        key: &StatusKey,
        reader: Reader,
        since: Option<DateTime<Utc>>,
        from_redis: Arc<AtomicBool>,
        charge: Charge,
    ) -> impl Future<Output = Result<Arc<Snapshot>, LoadError>> + use<> {
        let this = self.clone();
        let credential = credential.clone();
        let key = key.clone();
        async move {
            if reader == Reader::Query
                && let Some(failures) = &this.failures
                && let Some(error) = failures.get(&key).await
            {
                return Err(LoadError::Upstream(Arc::new(error)));
            }
            // Spawned so the load (and remembering its outcome) survives the caller
            // that started it; moka would otherwise restart it for the remaining waiters.
            let fetch = async move {
                let Some(redis) = &this.redis else {
                    return this.fetch(&credential, key, reader, &charge).await;
                };
                match redis.claim(&key, since).await {
                    Claim::Loaded(snapshot) => {
                        from_redis.store(true, Ordering::Relaxed);
                        this.last_good.insert(key, Arc::clone(&snapshot)).await;
                        Ok(snapshot)
                    }
                    Claim::Alone => this.fetch(&credential, key, reader, &charge).await,
                    Claim::Load(token) => {
                        let fetched = this.fetch(&credential, key.clone(), reader, &charge).await;
                        if let Ok(snapshot) = &fetched {
                            redis.store(&key, snapshot).await;
                        }
                        redis.unlock(&key, token).await;
                        fetched
                    }
                }
            };
            // The span goes with it, so the upstream call is traced under this lookup.
            match tokio::spawn(fetch.in_current_span()).await {
                Ok(result) => result,
                Err(join_error) => Err(LoadError::Upstream(Arc::new(UpstreamError::Unreachable(
                    format!("the upstream call was aborted: {join_error}"),
                )))),
            }
        }
    }

    /// One upstream read for `key`, once `charge` is paid; a success is kept as the
    /// last good snapshot, a failure of the upstream (not a budget refusal) is
    /// remembered for queries.
    async fn fetch(
        &self,
        credential: &Credential,
        key: StatusKey,
        reader: Reader,
        charge: &Charge,
    ) -> Result<Arc<Snapshot>, LoadError> {
        let unpaid = charge.lock_unpoisoned().take();
        if let Some(unpaid) = unpaid {
            unpaid
                .await
                .map_err(|retry_after| LoadError::Declined { retry_after })?;
        }
        let answer = self
            .upstream
            .registration_status(credential, &key.account, &key.domain, reader.priority())
            .await;
        match answer {
            Ok(status) => {
                let snapshot = Arc::new(Snapshot::fetched_now(status));
                self.last_good.insert(key, Arc::clone(&snapshot)).await;
                Ok(snapshot)
            }
            Err(error) => {
                // A budget refusal is ours, not a struggling upstream's: not shared.
                let upstream_failed = !matches!(error, UpstreamError::OverBudget { .. });
                if let Some(failures) = self.failures.as_ref().filter(|_| upstream_failed) {
                    failures.insert(key, error.clone()).await;
                }
                Err(LoadError::Upstream(Arc::new(error)))
            }
        }
    }

    /// For a poller: a fresh snapshot fetched after `since` (by anyone: a query's
    /// fetch saves the poller a call), else a fetch shared with concurrent readers.
    /// Failures are returned, not answered with stale data, and a poll does not start
    /// from a failure remembered for queries (its own backoff paces it); a poll that
    /// joins a query's load already in flight shares that load's outcome, whatever it
    /// is, except a refusal of that query's charge: then the poll loads again.
    pub async fn fetch_newer_than(
        &self,
        credential: &Credential,
        key: StatusKey,
        since: Option<DateTime<Utc>>,
        priority: Priority,
    ) -> Result<Arc<Snapshot>, Arc<UpstreamError>> {
        if let Some(cached) = self.fresh.get(&key).await {
            if since.is_none_or(|since| cached.fetched_at > since) {
                return Ok(cached);
            }
            self.fresh.invalidate(&key).await;
        }
        let load = || {
            let free = Charge::default();
            self.load(
                credential,
                &key,
                Reader::Poll(priority),
                since,
                Arc::default(),
                free,
            )
        };
        self.load_once_charged(&key, load, || false)
            .await
            .map_err(LookupError::into_upstream)
    }

    /// Starts a registration upstream (one POST, never repeated) and caches the
    /// workflow status it answers with, as if just read: the caller's subscription
    /// and queries start from it without another upstream call.
    ///
    /// When the POST's answer is lost or ambiguous (a timeout, a broken connection,
    /// a 5xx, a 409), the domain's status says what happened: it is read (with the
    /// reads' retries, and again while no workflow is visible yet) and a workflow
    /// found there is the answer. When none is found,
    /// [`UpstreamError::OutcomeUnknown`] is, and nothing is cached for the domain,
    /// so the next read asks the upstream.
    ///
    /// The call runs in its own task, so a caller that disconnects mid-request
    /// cannot leave the cache unseeded or the outcome unreconciled.
    pub async fn create(
        &self,
        credential: &Credential,
        key: &StatusKey,
        request: RegistrationRequest,
    ) -> Result<Arc<Snapshot>, UpstreamError> {
        let this = self.clone();
        let credential = credential.clone();
        let key = key.clone();
        let create = async move {
            let posted = this
                .upstream
                .create_registration(&credential, &key.account, &request)
                .await;
            let status = match posted {
                Ok(status) => status,
                Err(error) if error.leaves_create_unknown() => {
                    tracing::warn!(
                        domain = %key.domain,
                        account = %key.account,
                        credential = %key.credential,
                        %error,
                        "the answer to a registration request was lost; reading the domain's status instead of posting again"
                    );
                    match this.reconcile(&credential, &key).await {
                        Some(status) => status,
                        None => {
                            this.fresh.invalidate(&key).await;
                            this.last_good.invalidate(&key).await;
                            return Err(UpstreamError::OutcomeUnknown {
                                cause: Box::new(error),
                            });
                        }
                    }
                }
                Err(error) => return Err(error),
            };
            let snapshot = Arc::new(Snapshot::fetched_now(Some(status)));
            if let Some(redis) = &this.redis {
                redis.store(&key, &snapshot).await;
            }
            this.fresh.insert(key.clone(), Arc::clone(&snapshot)).await;
            this.last_good
                .insert(key.clone(), Arc::clone(&snapshot))
                .await;
            if let Some(failures) = &this.failures {
                failures.invalidate(&key).await;
            }
            Ok(snapshot)
        };
        match tokio::spawn(create).await {
            Ok(result) => result,
            Err(join_error) => Err(UpstreamError::Unreachable(format!(
                "the upstream call was aborted: {join_error}"
            ))),
        }
    }

    /// The workflow a registration POST with a lost answer left, if the upstream
    /// shows one: up to [`RECONCILE_READS`] status reads, [`RECONCILE_PAUSE`] apart
    /// (and doubling) while it shows none, since a workflow may become visible a
    /// moment after the POST. `None` when none shows or the reads fail.
    async fn reconcile(&self, credential: &Credential, key: &StatusKey) -> Option<WorkflowStatus> {
        let mut pause = RECONCILE_PAUSE;
        for read in 1..=RECONCILE_READS {
            let found = self
                .upstream
                .registration_status(credential, &key.account, &key.domain, Priority::Foreground)
                .await;
            match found {
                Ok(Some(status)) => return Some(status),
                Ok(None) if read < RECONCILE_READS => tokio::time::sleep(pause).await,
                Ok(None) => return None,
                Err(error) => {
                    tracing::warn!(domain = %key.domain, %error, "could not read the status of a registration whose answer was lost");
                    return None;
                }
            }
            pause *= 2;
        }
        None
    }

    /// The cached snapshot for `key`, if fresh, without calling upstream.
    pub async fn peek(&self, key: &StatusKey) -> Option<Arc<Snapshot>> {
        self.fresh.get(key).await
    }
}

/// Who a load is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reader {
    /// A query: shares a recent failure, and goes first in the budget.
    Query,
    /// A poller, at its priority: asks every time; its own backoff paces it.
    Poll(Priority),
}

impl Reader {
    fn priority(self) -> Priority {
        match self {
            Self::Query => Priority::Foreground,
            Self::Poll(priority) => priority,
        }
    }
}

/// Whether a failed refresh may be answered with a stale snapshot: yes when the
/// upstream is unavailable, slow, unreadable or rate limited; no when it refused
/// the credential or the request, since the old answer may no longer be theirs to see.
fn serves_stale(error: &UpstreamError) -> bool {
    match error {
        UpstreamError::Unavailable { .. }
        | UpstreamError::Timeout
        | UpstreamError::Unreachable(_)
        | UpstreamError::InvalidResponse(_)
        | UpstreamError::RateLimited { .. }
        | UpstreamError::OverBudget { .. } => true,
        // A TLS failure is a configuration or trust problem, not an outage to ride out.
        UpstreamError::Auth { .. }
        | UpstreamError::Rejected { .. }
        | UpstreamError::Tls(_)
        | UpstreamError::OutcomeUnknown { .. } => false,
    }
}
