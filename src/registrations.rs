//! The one way the gateway reads, watches and starts a registration: it keys the
//! cache and the pollers by the caller's credential, so queries, subscriptions and
//! `startRegistration` share one path and data never crosses from one credential
//! to another.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::budget::Priority;
use crate::cache::{LookupError, Served, Snapshot, StatusCache, StatusKey};
use crate::credential::Credential;
use crate::domain::{AccountId, DomainName};
use crate::poller::{Pollers, WatchRefused, Watcher};
use crate::upstream::{RegistrationRequest, UpstreamError, WorkflowState};

/// A bound on how long a start's answer is kept for identical starts (it is
/// invalidated as soon as its callers have it; this only bounds a leftover).
const START_SHARED_FOR: Duration = Duration::from_secs(1);

/// How long the gateway keeps watching a domain whose registration POST lost its
/// answer with no workflow visible, for the workflow it may have started.
pub const AWAIT_WORKFLOW_FOR: Duration = Duration::from_secs(600);

/// Whether the registration's last workflow ended `failed`.
fn ended_failed(snapshot: &Snapshot) -> bool {
    snapshot
        .status
        .as_ref()
        .is_some_and(|status| status.completed && status.state == WorkflowState::Failed)
}

/// Reads registration statuses through the cache, watches them through pollers,
/// and starts registrations.
#[derive(Clone)]
pub struct RegistrationService {
    cache: StatusCache,
    pollers: Pollers,
    default_account: Option<AccountId>,
    /// Starts in flight, one per registration: concurrent identical
    /// `startRegistration`s share one (moka coalesces loads of one key).
    /// Keyed with the `retry_failed` flag: a retry does not join a plain start.
    starts: moka::future::Cache<(StatusKey, bool), Arc<Snapshot>>,
}

/// What a status read found: the snapshot, and when the gateway will next ask.
pub struct Reading {
    /// The snapshot served.
    pub served: Served,
    /// When the registration's poller will next ask the upstream, if one runs.
    pub next_check_at: Option<DateTime<Utc>>,
}

/// What `startRegistration` got: the workflow's status, and when the gateway
/// will next ask about it.
pub struct StartedRegistration {
    /// The workflow: the one just created, or the one that already existed.
    pub snapshot: Arc<Snapshot>,
    /// When the registration's poller will next ask the upstream.
    pub next_check_at: Option<DateTime<Utc>>,
}

impl RegistrationService {
    /// Reads through `cache` and watches through `pollers`; `default_account`
    /// serves requests that name none.
    pub fn new(cache: StatusCache, pollers: Pollers, default_account: Option<AccountId>) -> Self {
        let starts = moka::future::Cache::builder()
            .max_capacity(100_000)
            .time_to_live(START_SHARED_FOR)
            .build();
        Self {
            cache,
            pollers,
            default_account,
            starts,
        }
    }

    /// The account used when a request names none (`CLOUDFLARE_ACCOUNT_ID`).
    pub fn default_account(&self) -> Option<&AccountId> {
        self.default_account.as_ref()
    }

    /// The status of `domain` in `account` as seen through `credential`: cached when
    /// fresh, else fetched once for all callers, else stale when the upstream fails.
    /// `charge` (the caller's fair share) is paid only if this read is the one that
    /// calls the upstream, before the call (see [`StatusCache::get_or_fetch`]).
    pub async fn status(
        &self,
        credential: &Credential,
        account: AccountId,
        domain: DomainName,
        charge: impl Future<Output = Result<(), Duration>> + Send + 'static,
    ) -> Result<Reading, LookupError> {
        let key = Self::key(credential, account, domain);
        let served = self
            .cache
            .get_or_fetch(credential, key.clone(), charge)
            .await?;
        Ok(Reading {
            served,
            next_check_at: self.pollers.next_check(&key),
        })
    }

    /// Whether `domain`'s status as seen through `credential` is fresh in the cache:
    /// reading it now would cost no upstream call.
    pub async fn is_fresh(
        &self,
        credential: &Credential,
        account: &AccountId,
        domain: &DomainName,
    ) -> bool {
        let key = Self::key(credential, account.clone(), domain.clone());
        self.cache.peek(&key).await.is_some()
    }

    /// Starts registering `request.domain_name` in `account`, once: the domain is the
    /// idempotency key. A workflow that already exists (cached, or found by a status
    /// read first) is returned and nothing is posted, unless it `failed` and the
    /// caller asks to `retry_failed` (after the user reviewed why): a fresh status
    /// read confirms the failure, then one POST starts a new workflow. Concurrent
    /// identical starts share one status read and at most one POST.
    ///
    /// The POST is never repeated: when its answer is lost, the domain's status
    /// decides the answer ([`StatusCache::create`]); when that shows no workflow
    /// either, the error is [`UpstreamError::OutcomeUnknown`] and the domain stays
    /// watched for [`AWAIT_WORKFLOW_FOR`]. The answer seeds the cache, and a poller
    /// is started for the subscription the client opens next.
    pub async fn start(
        &self,
        credential: &Credential,
        account: AccountId,
        domain: DomainName,
        request: RegistrationRequest,
        retry_failed: bool,
    ) -> Result<StartedRegistration, Arc<UpstreamError>> {
        let key = Self::key(credential, account, domain);
        let this = self.clone();
        let init_credential = credential.clone();
        let init_key = key.clone();
        let init = async move {
            // The caller paid for the whole start (a start always may call the upstream).
            let free = std::future::ready(Ok(()));
            let mut existing = this
                .cache
                .get_or_fetch(&init_credential, init_key.clone(), free)
                .await
                .map_err(|error| Arc::unwrap_or_clone(error.into_upstream()))?
                .snapshot;
            if retry_failed && ended_failed(&existing) {
                // The failure may be old news: someone may have retried already.
                existing = this
                    .cache
                    .fetch_newer_than(
                        &init_credential,
                        init_key.clone(),
                        Some(Utc::now()),
                        Priority::Foreground,
                    )
                    .await
                    .map_err(Arc::unwrap_or_clone)?;
            }
            let post = existing.status.is_none() || (retry_failed && ended_failed(&existing));
            if !post {
                return Ok(existing);
            }
            let created = this
                .cache
                .create(&init_credential, &init_key, request)
                .await;
            if let Err(UpstreamError::OutcomeUnknown { .. }) = &created {
                this.pollers
                    .await_workflow(&init_credential, init_key.clone(), AWAIT_WORKFLOW_FOR);
            }
            let created = created?;
            tracing::info!(
                domain = %init_key.domain,
                account = %init_key.account,
                credential = %init_key.credential,
                state = created.status.as_ref().map(|status| status.state.as_str()),
                retry_failed,
                "registration started upstream"
            );
            Ok(created)
        };
        let shared_by = (key.clone(), retry_failed);
        let snapshot = self.starts.try_get_with(shared_by.clone(), init).await;
        // Starts that joined this one have their answer; later ones read the
        // registration's current status (seeded in the cache) instead of this one.
        self.starts.invalidate(&shared_by).await;
        let snapshot = snapshot?;
        let completed = snapshot
            .status
            .as_ref()
            .is_none_or(|status| status.completed);
        if !completed {
            self.pollers.prime(credential, key.clone());
        }
        Ok(StartedRegistration {
            snapshot,
            next_check_at: self.pollers.next_check(&key),
        })
    }

    /// Watches `domain` in `account` as `credential` through its one shared poller,
    /// from the changes after `after_sequence` when given.
    pub async fn watch(
        &self,
        credential: &Credential,
        account: AccountId,
        domain: DomainName,
        keep_watching_action_required: bool,
        after_sequence: Option<u64>,
    ) -> Result<Watcher, WatchRefused> {
        let key = Self::key(credential, account, domain);
        self.pollers
            .watch(
                credential,
                key,
                keep_watching_action_required,
                after_sequence,
            )
            .await
    }

    /// The poll economy's counters.
    pub fn pollers(&self) -> &Pollers {
        &self.pollers
    }

    fn key(credential: &Credential, account: AccountId, domain: DomainName) -> StatusKey {
        StatusKey {
            credential: credential.fingerprint(),
            account,
            domain,
        }
    }
}
