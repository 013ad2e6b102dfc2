//! The one way the gateway reads a registration's status: it picks the credential
//! and keys the cache, so the GraphQL layer and (later) pollers share one path.

use std::sync::Arc;

use crate::cache::{Snapshot, StatusCache, StatusKey};
use crate::domain::{AccountId, DomainName};
use crate::poller::{Pollers, Watch, WatchRefused};
use crate::upstream::{Credential, UpstreamError};

/// Reads and watches registration statuses with the gateway's credential.
#[derive(Clone)]
pub struct Registrations {
    cache: StatusCache,
    pollers: Pollers,
    credential: Credential,
    default_account: Option<AccountId>,
}

impl Registrations {
    /// Reads through `cache` and watches through `pollers` as `credential`;
    /// `default_account` serves requests that name none.
    pub fn new(
        cache: StatusCache,
        pollers: Pollers,
        credential: Credential,
        default_account: Option<AccountId>,
    ) -> Self {
        Self {
            cache,
            pollers,
            credential,
            default_account,
        }
    }

    /// The account used when a request names none (`CLOUDFLARE_ACCOUNT_ID`).
    pub fn default_account(&self) -> Option<&AccountId> {
        self.default_account.as_ref()
    }

    /// The status of `domain` in `account`: cached when fresh, else fetched once for all callers.
    pub async fn status(
        &self,
        account: AccountId,
        domain: DomainName,
    ) -> Result<Arc<Snapshot>, Arc<UpstreamError>> {
        self.cache
            .get_or_fetch(&self.credential, self.key(account, domain))
            .await
    }

    /// Watches `domain` in `account` through its one shared poller.
    pub async fn watch(
        &self,
        account: AccountId,
        domain: DomainName,
        keep_watching_action_required: bool,
    ) -> Result<Watch, WatchRefused> {
        let key = self.key(account, domain);
        self.pollers
            .watch(&self.credential, key, keep_watching_action_required)
            .await
    }

    /// The poll economy's counters.
    pub fn pollers(&self) -> &Pollers {
        &self.pollers
    }

    fn key(&self, account: AccountId, domain: DomainName) -> StatusKey {
        StatusKey {
            credential: self.credential.fingerprint(),
            account,
            domain,
        }
    }
}
