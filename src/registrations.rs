//! The one way the gateway reads a registration's status: it picks the credential
//! and keys the cache, so the GraphQL layer and (later) pollers share one path.

use std::sync::Arc;

use crate::cache::{Snapshot, StatusCache, StatusKey};
use crate::domain::{AccountId, DomainName};
use crate::upstream::{Credential, UpstreamError};

/// Reads registration statuses through the cache with the gateway's credential.
#[derive(Clone)]
pub struct Registrations {
    cache: StatusCache,
    credential: Credential,
    default_account: Option<AccountId>,
}

impl Registrations {
    /// Reads through `cache` as `credential`; `default_account` serves requests that name none.
    pub fn new(
        cache: StatusCache,
        credential: Credential,
        default_account: Option<AccountId>,
    ) -> Self {
        Self {
            cache,
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
        let key = StatusKey {
            credential: self.credential.fingerprint(),
            account,
            domain,
        };
        self.cache.get_or_fetch(&self.credential, key).await
    }
}
