//! A short memory of the credentials the upstream refused (401, 403, or its
//! missing- or malformed-auth codes), per account: within `--refused-credential-ttl`
//! the same credential is refused again locally, with the upstream's own answer,
//! and nothing is sent. In the pass-through modes a caller retrying a revoked or
//! mistyped token then costs no upstream request (and no lockout risk) however
//! often it retries. Keyed by fingerprint, never by the secret.

use std::time::Duration;

use super::UpstreamError;
use crate::credential::Fingerprint;
use crate::domain::AccountId;

/// Refusals remembered at once; the least recently used go first.
const MAX_REMEMBERED: u64 = 10_000;

/// Recently refused credentials; cheap to clone.
#[derive(Clone)]
pub(super) struct RecentRefusals {
    /// `None` when the TTL is zero (off).
    recent: Option<moka::future::Cache<(Fingerprint, AccountId), UpstreamError>>,
}

impl RecentRefusals {
    /// Remembers refusals for `ttl`; zero remembers none.
    pub(super) fn new(ttl: Duration) -> Self {
        let recent = (!ttl.is_zero()).then(|| {
            moka::future::Cache::builder()
                .max_capacity(MAX_REMEMBERED)
                .time_to_live(ttl)
                .build()
        });
        Self { recent }
    }

    /// The upstream's refusal of `credential` for `account`, if it is recent.
    pub(super) async fn recent(
        &self,
        credential: Fingerprint,
        account: &AccountId,
    ) -> Option<UpstreamError> {
        let recent = self.recent.as_ref()?;
        recent.get(&(credential, account.clone())).await
    }

    /// Remembers `error` when it is the upstream refusing the credential.
    pub(super) async fn remember(
        &self,
        credential: Fingerprint,
        account: &AccountId,
        error: &UpstreamError,
    ) {
        if let (Some(recent), UpstreamError::Auth { .. }) = (&self.recent, error) {
            recent
                .insert((credential, account.clone()), error.clone())
                .await;
        }
    }
}
