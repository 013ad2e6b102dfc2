//! The one way the gateway reads and watches a registration's status: it keys the
//! cache and the pollers by the caller's credential, so queries and subscriptions
//! share one path and data never crosses from one credential to another.

use std::sync::Arc;

use crate::cache::{Served, StatusCache, StatusKey};
use crate::domain::{AccountId, DomainName};
use crate::poller::{Pollers, Watch, WatchRefused};
use crate::upstream::{Credential, UpstreamError};

/// Reads registration statuses through the cache and watches them through pollers.
#[derive(Clone)]
pub struct Registrations {
    cache: StatusCache,
    pollers: Pollers,
    default_account: Option<AccountId>,
}

impl Registrations {
    /// Reads through `cache` and watches through `pollers`; `default_account`
    /// serves requests that name none.
    pub fn new(cache: StatusCache, pollers: Pollers, default_account: Option<AccountId>) -> Self {
        Self {
            cache,
            pollers,
            default_account,
        }
    }

    /// The account used when a request names none (`CLOUDFLARE_ACCOUNT_ID`).
    pub fn default_account(&self) -> Option<&AccountId> {
        self.default_account.as_ref()
    }

    /// The status of `domain` in `account` as seen through `credential`: cached when
    /// fresh, else fetched once for all callers, else stale when the upstream fails.
    pub async fn status(
        &self,
        credential: &Credential,
        account: AccountId,
        domain: DomainName,
    ) -> Result<Served, Arc<UpstreamError>> {
        let key = Self::key(credential, account, domain);
        self.cache.get_or_fetch(credential, key).await
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
    ) -> Result<Watch, WatchRefused> {
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
