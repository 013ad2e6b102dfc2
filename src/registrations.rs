//! The one way the gateway reads a registration's status: it keys the cache by the
//! credential a caller uses, so the GraphQL layer and pollers share one path.

use std::sync::Arc;

use crate::cache::{Served, StatusCache, StatusKey};
use crate::domain::{AccountId, DomainName};
use crate::upstream::{Credential, UpstreamError};

/// Reads registration statuses through the cache.
#[derive(Clone)]
pub struct Registrations {
    cache: StatusCache,
    default_account: Option<AccountId>,
}

impl Registrations {
    /// Reads through `cache`; `default_account` serves requests that name none.
    pub fn new(cache: StatusCache, default_account: Option<AccountId>) -> Self {
        Self {
            cache,
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
        let key = StatusKey {
            credential: credential.fingerprint(),
            account,
            domain,
        };
        self.cache.get_or_fetch(credential, key).await
    }
}
