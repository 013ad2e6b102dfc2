//! `GET /user/tokens/verify`, Cloudflare's "Verify Token" ("Test whether a token
//! works"; `docs/upstream-api.md`): a bearer token the simulator accepts is answered
//! 200 with `result: {id, status: "active"}`; one it refuses, 401 / 1000 "Invalid
//! API Token". It is an API-token route: an email plus key pair is no token (9106).
//! The route counts against the credential's rate limit like any other.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokio::time::Instant;

use super::SimulatorState;
use super::auth::{self, AuthFailure, PresentedCredential};
use super::rate_limit::Verdict;
use super::reply::{self, ApiError};

/// The route's path under the API root.
pub(super) const VERIFY_PATH: &str = "/client/v4/user/tokens/verify";

/// `result` of a verified token.
#[derive(Debug, Serialize)]
struct TokenStatus {
    /// The token's identifier tag (32 hex digits; here derived from the token).
    id: String,
    /// `active`: the simulator's tokens neither expire nor get disabled.
    status: &'static str,
}

/// Answers whether the bearer token works.
pub(super) async fn verify(
    State(shared): State<Arc<SimulatorState>>,
    headers: HeaderMap,
) -> Response {
    let token = match auth::credential(&headers) {
        Ok(PresentedCredential::Token(token)) => token,
        Ok(PresentedCredential::ApiKey { .. }) => {
            return ApiError::Auth(AuthFailure::Missing).into_response();
        }
        Err(failure) => return ApiError::Auth(failure).into_response(),
    };
    if shared
        .refused
        .admit(&PresentedCredential::Token(token))
        .is_err()
    {
        return ApiError::InvalidToken.into_response();
    }
    match shared.limiter.check(token, Instant::now()) {
        Verdict::Allowed(quota) => {
            let status = TokenStatus {
                id: blake3::hash(token.as_bytes()).to_hex()[..32].to_owned(),
                status: "active",
            };
            reply::with_quota(reply::success(StatusCode::OK, status), quota)
        }
        Verdict::Limited { retry_after_secs } => {
            ApiError::RateLimited { retry_after_secs }.into_response()
        }
    }
}
