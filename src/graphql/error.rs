//! The GraphQL boundary's error enum. Every error carries a stable `extensions.code`
//! and, for upstream failures, the upstream's own codes and messages, never a credential.

use std::sync::Arc;

use async_graphql::{ErrorExtensions, ServerError, Value};

use crate::access::AccessError;
use crate::cache::LookupError;
use crate::fair_share::{ShareRefusal, TOO_MANY_CLIENT_CONNECTIONS, TOO_MANY_CLIENT_WEBSOCKETS};
use crate::upstream::{ApiMessage, UpstreamError};

/// What a resolver can fail with.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GraphqlError {
    /// The client's arguments are invalid; nothing was sent upstream.
    #[error("{0}")]
    BadUserInput(String),
    /// The upstream call failed.
    #[error("{0}")]
    Upstream(Arc<UpstreamError>),
    /// `startRegistration` is not enabled on this gateway.
    #[error(
        "registration is disabled on this gateway: it costs money, so a gateway with real Cloudflare credentials starts registrations only with --enable-registration"
    )]
    RegistrationDisabled,
    /// Starting a registration failed: a create refusal carries the upstream's own
    /// messages and a code by reason (see [`create_refusal_code`]).
    #[error("{}", registration_message(.0))]
    Registration(Arc<UpstreamError>),
    /// A subscription limit (per connection or gateway-wide) is reached.
    #[error("{0}")]
    TooManySubscriptions(String),
    /// The upstream has no workflow to watch.
    #[error("{0}")]
    WorkflowNotFound(String),
    /// A blocked workflow outlasted the gateway's watch limit.
    #[error("{0}")]
    WatchExpired(String),
    /// A bug in the gateway (e.g. the schema was built without a service).
    #[error("internal error: {0}")]
    Internal(String),
    /// The caller is not admitted, or has no credential the mode accepts.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// `__schema` or `__type` while introspection is disabled.
    #[error("introspection is disabled on this gateway (--disable-introspection)")]
    IntrospectionDisabled,
    /// Past `--max-depth` (or the document's bracket nesting limit).
    #[error("operation too deep: {0}")]
    TooDeep(String),
    /// Past `--max-complexity`.
    #[error("operation too complex: {0}")]
    TooComplex(String),
    /// Past `--max-root-fields`.
    #[error("too many root fields: {0}")]
    TooManyRootFields(String),
    /// Past `--max-lookups`.
    #[error("too many lookups: {0}")]
    TooManyLookups(String),
    /// Past one of the client's fair shares; nothing was sent upstream.
    #[error(transparent)]
    Share(#[from] ShareRefusal),
}

impl GraphqlError {
    /// This error about a whole request: its code in its extensions, and no
    /// location in the document.
    pub(super) fn server_error(self) -> ServerError {
        let mut error = self.extend().into_server_error(Default::default());
        error.locations.clear();
        error
    }

    /// The stable `extensions.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadUserInput(_) => "BAD_USER_INPUT",
            Self::Internal(_) => "INTERNAL_SERVER_ERROR",
            Self::TooManySubscriptions(_) => "TOO_MANY_SUBSCRIPTIONS",
            Self::WorkflowNotFound(_) => "WORKFLOW_NOT_FOUND",
            Self::WatchExpired(_) => "WATCH_EXPIRED",
            Self::Access(error) => error.code(),
            Self::IntrospectionDisabled => "INTROSPECTION_DISABLED",
            Self::TooDeep(_) => "OPERATION_TOO_DEEP",
            Self::TooComplex(_) => "OPERATION_TOO_COMPLEX",
            Self::TooManyRootFields(_) => "TOO_MANY_ROOT_FIELDS",
            Self::TooManyLookups(_) => "TOO_MANY_LOOKUPS",
            Self::Share(ShareRefusal::Lookups { .. }) => CLIENT_RATE_LIMITED,
            Self::Share(ShareRefusal::NewCredentials { .. }) => TOO_MANY_CREDENTIALS,
            Self::Share(ShareRefusal::Subscriptions(_)) => "TOO_MANY_SUBSCRIPTIONS",
            // ShareRefusal by the HTTP layer, before any GraphQL; named here for completeness.
            Self::Share(ShareRefusal::Connections(_)) => TOO_MANY_CLIENT_CONNECTIONS,
            Self::Share(ShareRefusal::Websockets(_)) => TOO_MANY_CLIENT_WEBSOCKETS,
            Self::RegistrationDisabled => "REGISTRATION_DISABLED",
            Self::Registration(error) => match error.as_ref() {
                UpstreamError::Rejected { errors, .. } if !errors.is_empty() => {
                    create_refusal_code(errors)
                }
                _ => Self::Upstream(Arc::clone(error)).code(),
            },
            Self::Upstream(error) => match error.as_ref() {
                UpstreamError::Auth { .. } => "UPSTREAM_AUTH",
                UpstreamError::RateLimited { .. } | UpstreamError::OverBudget { .. } => {
                    "UPSTREAM_RATE_LIMITED"
                }
                UpstreamError::Rejected { .. } => "UPSTREAM_REJECTED",
                UpstreamError::Unavailable { .. } | UpstreamError::Unreachable(_) => {
                    "UPSTREAM_UNAVAILABLE"
                }
                UpstreamError::Tls(_) => "UPSTREAM_TLS",
                UpstreamError::OutcomeUnknown { .. } => "REGISTRATION_OUTCOME_UNKNOWN",
                UpstreamError::Timeout => "UPSTREAM_TIMEOUT",
                UpstreamError::InvalidResponse(_) => "UPSTREAM_INVALID_RESPONSE",
            },
        }
    }
}

/// The code of a lookup refused because the client's share of the budget is spent.
pub const CLIENT_RATE_LIMITED: &str = "CLIENT_RATE_LIMITED";
/// The code of a lookup refused because the client presented too many new credentials.
pub const TOO_MANY_CREDENTIALS: &str = "TOO_MANY_CREDENTIALS";

impl GraphqlError {
    /// Whole seconds until a refused client may come back: its fair share has
    /// room again, or its wrong access keys' window has passed.
    fn retry_after_seconds(&self) -> Option<u64> {
        match self {
            Self::Share(refused) => refused
                .retry_after()
                .map(|wait| wait.as_secs_f64().ceil().max(1.0) as u64),
            Self::Access(refused) => refused.retry_after_seconds(),
            _ => None,
        }
    }
}

impl From<Arc<UpstreamError>> for GraphqlError {
    fn from(error: Arc<UpstreamError>) -> Self {
        Self::Upstream(error)
    }
}

impl From<LookupError> for GraphqlError {
    fn from(error: LookupError) -> Self {
        match error {
            LookupError::Upstream(error) => Self::Upstream(error),
            LookupError::Refused { retry_after } => {
                Self::Share(ShareRefusal::Lookups { retry_after })
            }
        }
    }
}

impl ErrorExtensions for GraphqlError {
    fn extend(&self) -> async_graphql::Error {
        async_graphql::Error::new(self.to_string()).extend_with(|_, extensions| {
            extensions.set("code", self.code());
            if let Some(retry_after) = self.retry_after_seconds() {
                extensions.set("retryAfterSeconds", retry_after);
            }
            let (Self::Upstream(upstream) | Self::Registration(upstream)) = self else {
                return;
            };
            match upstream.as_ref() {
                UpstreamError::Auth { status, .. }
                | UpstreamError::Rejected { status, .. }
                | UpstreamError::Unavailable { status, .. } => {
                    extensions.set("upstreamStatus", *status)
                }
                UpstreamError::RateLimited { retry_after, .. } => {
                    extensions.set("upstreamStatus", 429);
                    if let Some(retry_after) = retry_after {
                        extensions
                            .set("retryAfterSeconds", retry_after.as_secs_f64().ceil() as u64);
                    }
                }
                UpstreamError::OverBudget { retry_after } => {
                    extensions.set("retryAfterSeconds", retry_after.as_secs_f64().ceil() as u64);
                }
                _ => {}
            }
            let upstream_errors: Vec<Value> = upstream
                .upstream_errors()
                .iter()
                .map(|error| {
                    let mut item = async_graphql::indexmap::IndexMap::new();
                    item.insert(async_graphql::Name::new("code"), Value::from(error.code));
                    item.insert(
                        async_graphql::Name::new("message"),
                        Value::from(error.message.clone()),
                    );
                    let pointer = error
                        .source
                        .as_ref()
                        .and_then(|source| source.pointer.clone());
                    if let Some(pointer) = pointer {
                        item.insert(async_graphql::Name::new("pointer"), Value::from(pointer));
                    }
                    Value::Object(item)
                })
                .collect();
            if !upstream_errors.is_empty() {
                extensions.set("upstreamErrors", upstream_errors);
            }
        })
    }
}

/// The stable code for an upstream refusal to create a registration. The upstream
/// uses envelope code 10000 for all of them, so the reason is read from its
/// messages (`docs/upstream-api.md` §6), then from `source.pointer`.
pub(super) fn create_refusal_code(errors: &[ApiMessage]) -> &'static str {
    const BY_MESSAGE: [(&str, &str); 5] = [
        ("Domain limit reached", "DOMAIN_LIMIT_REACHED"),
        ("No registrant contact provided", "CONTACT_REQUIRED"),
        (
            "Registration is not supported for this extension",
            "EXTENSION_NOT_SUPPORTED",
        ),
        ("not available", "DOMAIN_UNAVAILABLE"),
        ("Premium", "PREMIUM_NOT_SUPPORTED"),
    ];
    let found = errors.iter().find_map(|error| {
        BY_MESSAGE
            .iter()
            .find(|(text, _)| error.message.contains(text))
            .map(|(_, code)| *code)
    });
    let invalid = || {
        errors.iter().any(|error| {
            error.source.as_ref().is_some_and(|s| s.pointer.is_some())
                || error.message == "Invalid domain name"
        })
    };
    match found {
        Some(code) => code,
        None if invalid() => "REGISTRATION_INVALID",
        None => "REGISTRATION_REJECTED",
    }
}

/// A registration failure's message: the upstream's own words when it refused.
fn registration_message(error: &UpstreamError) -> String {
    let messages: Vec<&str> = error
        .upstream_errors()
        .iter()
        .map(|error| error.message.as_str())
        .collect();
    match (error, messages.is_empty()) {
        (UpstreamError::Rejected { .. }, false) => messages.join("; "),
        _ => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::model::ErrorSource;

    fn refused(message: &str, pointer: Option<&str>) -> Vec<ApiMessage> {
        let mut error = ApiMessage::new(10000, message);
        error.source = pointer.map(|pointer| ErrorSource {
            pointer: Some(pointer.to_owned()),
        });
        vec![error]
    }

    #[test]
    fn create_refusals_get_a_code_by_reason_then_by_pointer() {
        let cases = [
            (
                "Domain limit reached: you cannot register more than 100 domains.",
                Some("/domain_name"),
                "DOMAIN_LIMIT_REACHED",
            ),
            (
                "No registrant contact provided and no default address book entry found for this account.",
                None,
                "CONTACT_REQUIRED",
            ),
            (
                "Registration is not supported for this extension",
                None,
                "EXTENSION_NOT_SUPPORTED",
            ),
            (
                "Must be a boolean",
                Some("/auto_renew"),
                "REGISTRATION_INVALID",
            ),
            ("Invalid domain name", None, "REGISTRATION_INVALID"),
            ("Something new", None, "REGISTRATION_REJECTED"),
        ];
        for (message, pointer, code) in cases {
            assert_eq!(
                create_refusal_code(&refused(message, pointer)),
                code,
                "{message}"
            );
        }
    }
}
