//! API answers: the v4 envelope for successes and every error the simulator
//! gives, with the platform's codes, messages, statuses and body shapes.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::auth::AuthFailure;
use super::rate_limit::Quota;
use crate::names::DomainName;
use crate::wire::{ApiMessage, Envelope};

/// An error answer under `/client/v4`.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum ApiError {
    /// Auth headers missing, malformed or refused.
    Auth(AuthFailure),
    /// 429 / 971 with `Retry-After`.
    RateLimited {
        /// Seconds until the credential may call again.
        retry_after_secs: u64,
    },
    /// 400 / 7003 + 7000 for an unknown route or a malformed account id.
    Route {
        /// The path after `/client/v4`.
        path: String,
    },
    /// 400 / 10000 "Invalid domain name".
    InvalidDomain,
    /// 404 / 10000 "No workflow found for <domain>".
    WorkflowNotFound(DomainName),
    /// 404 / 10000 "Domain not found".
    DomainNotFound,
    /// 400 / 10000 create refusals: body validation (with `source.pointer`),
    /// missing contacts, unsupported extensions.
    Validation(Vec<ApiMessage>),
    /// 409 / 10000: a registration for the domain is already in progress (the
    /// create fault; the reference documents no 409 body, so the words are ours).
    Conflict(DomainName),
    /// 503: the simulator's own storage bound was reached.
    Capacity(String),
    /// 401 / 1000 "Invalid API Token": `GET /user/tokens/verify` with a token the
    /// simulator refuses.
    InvalidToken,
}

/// `{success:false, errors}` only: the platform's auth errors omit `messages` and `result`.
#[derive(Serialize)]
struct BareFailure {
    success: bool,
    errors: Vec<ApiMessage>,
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Auth(AuthFailure::Refused | AuthFailure::Forbidden) => StatusCode::FORBIDDEN,
            Self::InvalidToken => StatusCode::UNAUTHORIZED,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::WorkflowNotFound(_) | Self::DomainNotFound => StatusCode::NOT_FOUND,
            Self::Capacity(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Conflict(_) => StatusCode::CONFLICT,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn errors(&self) -> Vec<ApiMessage> {
        let header_error = |code, message: &str| {
            let mut error = ApiMessage::new(6003, "Invalid request headers");
            error.error_chain.push(ApiMessage::new(code, message));
            vec![error]
        };
        match self {
            Self::Auth(AuthFailure::Missing) => vec![ApiMessage::new(
                9106,
                "Missing X-Auth-Key, X-Auth-Email or Authorization headers",
            )],
            Self::Auth(AuthFailure::MalformedAuthorization) => {
                header_error(6111, "Invalid format for Authorization header")
            }
            Self::Auth(AuthFailure::MalformedKey) => {
                header_error(6103, "Invalid format for X-Auth-Key header")
            }
            Self::Auth(AuthFailure::MalformedEmail) => {
                header_error(6102, "Invalid format for X-Auth-Email header")
            }
            Self::Auth(AuthFailure::Refused) => {
                vec![ApiMessage::new(10000, "Authentication error")]
            }
            Self::Auth(AuthFailure::Forbidden) => vec![ApiMessage::new(
                9109,
                "Unauthorized to access requested resource",
            )],
            Self::RateLimited { .. } => vec![ApiMessage::new(
                971,
                "Please wait and consider throttling your request speed",
            )],
            Self::Route { path } => vec![
                ApiMessage::new(
                    7003,
                    format!(
                        "Could not route to {path}, perhaps your object identifier is invalid?"
                    ),
                ),
                ApiMessage::new(7000, "No route for that URI"),
            ],
            Self::InvalidDomain => vec![ApiMessage::new(10000, "Invalid domain name")],
            Self::WorkflowNotFound(domain) => vec![ApiMessage::new(
                10000,
                format!("No workflow found for {domain}"),
            )],
            Self::DomainNotFound => vec![ApiMessage::new(10000, "Domain not found")],
            Self::Validation(errors) => errors.clone(),
            Self::Capacity(reason) => vec![ApiMessage::new(10000, reason.clone())],
            Self::InvalidToken => vec![ApiMessage::new(1000, "Invalid API Token")],
            Self::Conflict(domain) => vec![ApiMessage::new(
                10000,
                format!("A registration for {domain} is already in progress"),
            )],
        }
    }

    /// Whether the platform's body for this error is `{success, errors}` alone.
    fn is_bare(&self) -> bool {
        matches!(
            self,
            Self::Auth(AuthFailure::Missing | AuthFailure::Refused)
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let errors = self.errors();
        let body = if self.is_bare() {
            serde_json::to_vec(&BareFailure {
                success: false,
                errors,
            })
        } else {
            serde_json::to_vec(&Envelope::<()> {
                success: false,
                errors,
                messages: Vec::new(),
                result: None,
            })
        };
        let mut response = json_response(self.status(), body);
        if let Self::RateLimited { retry_after_secs } = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, retry_after_secs.into());
            let quota = Quota {
                remaining: 0,
                reset_secs: retry_after_secs,
            };
            response.extensions_mut().insert(quota);
        }
        response
    }
}

/// A `success: true` envelope around `result`.
pub(super) fn success<T: Serialize>(status: StatusCode, result: T) -> Response {
    let envelope = Envelope {
        success: true,
        errors: Vec::new(),
        messages: Vec::new(),
        result: Some(result),
    };
    json_response(status, serde_json::to_vec(&envelope))
}

fn json_response(status: StatusCode, body: serde_json::Result<Vec<u8>>) -> Response {
    match body {
        Ok(body) => {
            let content_type = [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )];
            (status, content_type, Body::from(body)).into_response()
        }
        Err(err) => {
            tracing::error!(error = %err, "could not encode a simulator answer");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Attaches the credential's quota; the edge turns it into the `Ratelimit` header.
pub(super) fn with_quota(mut response: Response, quota: Quota) -> Response {
    response.extensions_mut().insert(quota);
    response
}
