//! The status cache: one moka cache in front of the upstream client.
//!
//! Concurrent reads of one missing or expired key make exactly one upstream call
//! (moka coalesces `try_get_with` per key), and the call runs in its own task so a
//! caller that disconnects does not restart it for the others. Entries live as long
//! as their state can stay unchanged: short while a workflow moves, long once it is
//! terminal. Failed loads are never stored. Keys include the credential's
//! fingerprint, so data never crosses from one credential to another.

mod ttl;

use std::sync::Arc;

use chrono::{DateTime, Utc};

pub use ttl::TtlPolicy;

use crate::domain::{AccountId, DomainName};
use crate::upstream::{Credential, Fingerprint, UpstreamClient, UpstreamError, WorkflowStatus};

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

/// Settings for [`StatusCache`].
#[derive(Clone, Debug)]
pub struct CacheSettings {
    /// Most entries held; least recently used go first.
    pub capacity: u64,
    /// How long each kind of answer stays fresh.
    pub ttl: TtlPolicy,
}

/// The cache; cheap to clone (handles to one shared store).
#[derive(Clone)]
pub struct StatusCache {
    entries: moka::future::Cache<StatusKey, Arc<Snapshot>>,
    upstream: UpstreamClient,
}

impl StatusCache {
    /// An empty cache loading through `upstream`.
    pub fn new(settings: &CacheSettings, upstream: UpstreamClient) -> Self {
        let entries = moka::future::Cache::builder()
            .max_capacity(settings.capacity)
            .expire_after(settings.ttl.clone())
            .build();
        Self { entries, upstream }
    }

    /// The fresh snapshot for `key`, fetching it (once, however many ask) when absent or expired.
    pub async fn get_or_fetch(
        &self,
        credential: &Credential,
        key: StatusKey,
    ) -> Result<Arc<Snapshot>, Arc<UpstreamError>> {
        debug_assert_eq!(credential.fingerprint(), key.credential);
        let upstream = self.upstream.clone();
        let credential = credential.clone();
        let load_key = key.clone();
        self.entries
            .try_get_with(key, async move {
                let fetch = async move {
                    upstream
                        .registration_status(&credential, &load_key.account, &load_key.domain)
                        .await
                };
                // Spawned so the load survives the caller that started it (moka would
                // otherwise restart it for the remaining waiters).
                match tokio::spawn(fetch).await {
                    Ok(result) => result.map(|status| Arc::new(Snapshot::fetched_now(status))),
                    Err(join_error) => Err(UpstreamError::Unreachable(format!(
                        "the upstream call was aborted: {join_error}"
                    ))),
                }
            })
            .await
    }

    /// A cached snapshot fetched after `since` (by anyone: a query's fetch saves
    /// the poller a call), else a fresh fetch shared with concurrent readers.
    pub async fn fetch_newer_than(
        &self,
        credential: &Credential,
        key: StatusKey,
        since: Option<DateTime<Utc>>,
    ) -> Result<Arc<Snapshot>, Arc<UpstreamError>> {
        if let Some(cached) = self.entries.get(&key).await {
            if since.is_none_or(|since| cached.fetched_at > since) {
                return Ok(cached);
            }
            self.entries.invalidate(&key).await;
        }
        self.get_or_fetch(credential, key).await
    }

    /// The cached snapshot for `key`, if fresh, without calling upstream.
    pub async fn peek(&self, key: &StatusKey) -> Option<Arc<Snapshot>> {
        self.entries.get(key).await
    }
}
