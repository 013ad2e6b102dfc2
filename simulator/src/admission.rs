//! Admission of an API request, in the order the platform plausibly checks: the
//! account id in the path (routing), the credential (auth), then the rate limit.
//! Every route (`api`, `create`, `list`) goes through it first.

use axum::http::{HeaderMap, Uri};
use tokio::time::Instant;

use super::SimulatorState;
use super::auth;
use super::edge::API_PREFIX;
use super::names::AccountId;
use super::rate_limit::{Quota, Verdict};
use super::reply::ApiError;
use super::store::StoreError;

/// A request that passed routing, auth and the rate limit.
pub(super) struct Admitted {
    /// The account in the path.
    pub account: AccountId,
    /// The credential's remaining quota.
    pub quota: Quota,
    /// The credential's tag, when the simulator tags answers ([`super::SimulatorSettings::tag_credentials`]).
    pub credential_tag: Option<String>,
}

/// Routing (account id), then auth, then the rate limit.
pub(super) fn admit(
    shared: &SimulatorState,
    uri: &Uri,
    account: &str,
    headers: &HeaderMap,
) -> Result<Admitted, ApiError> {
    let account = AccountId::parse(account).map_err(|_| route_error(uri))?;
    let credential = auth::credential(headers).map_err(ApiError::Auth)?;
    shared.refused.admit(&credential).map_err(ApiError::Auth)?;
    if shared.is_forbidden(&account) {
        return Err(ApiError::Auth(auth::AuthFailure::Forbidden));
    }
    match shared.limiter.check(credential.key(), Instant::now()) {
        Verdict::Allowed(quota) => Ok(Admitted {
            account,
            quota,
            credential_tag: shared
                .tag_credentials
                .then(|| auth::credential_tag(credential.key())),
        }),
        Verdict::Limited { retry_after_secs } => {
            tracing::debug!(retry_after_secs, "rate limited");
            Err(ApiError::RateLimited { retry_after_secs })
        }
    }
}

/// The path after `/client/v4`, as the platform echoes it in 7003.
pub(super) fn route_error(uri: &Uri) -> ApiError {
    let path = uri.path();
    ApiError::Route {
        path: path.strip_prefix(API_PREFIX).unwrap_or(path).to_owned(),
    }
}

/// A store error as an API answer (the simulator's own bound, not a platform error).
pub(super) fn capacity(err: StoreError) -> ApiError {
    ApiError::Capacity(err.to_string())
}
