//! The GraphQL boundary's error enum. Every error carries a stable `extensions.code`
//! and, for upstream failures, the upstream's own codes and messages, never a credential.

use std::sync::Arc;

use async_graphql::{ErrorExtensions, Value};

use crate::access::AccessError;
use crate::upstream::UpstreamError;

/// What a resolver can fail with.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GraphqlError {
    /// The client's arguments are invalid; nothing was sent upstream.
    #[error("{0}")]
    BadUserInput(String),
    /// The upstream call failed.
    #[error("{0}")]
    Upstream(Arc<UpstreamError>),
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
}

impl GraphqlError {
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
            Self::Upstream(error) => match error.as_ref() {
                UpstreamError::Auth { .. } => "UPSTREAM_AUTH",
                UpstreamError::RateLimited { .. } | UpstreamError::OverBudget { .. } => {
                    "UPSTREAM_RATE_LIMITED"
                }
                UpstreamError::Rejected { .. } => "UPSTREAM_REJECTED",
                UpstreamError::Unavailable { .. } | UpstreamError::Unreachable(_) => {
                    "UPSTREAM_UNAVAILABLE"
                }
                UpstreamError::Timeout => "UPSTREAM_TIMEOUT",
                UpstreamError::InvalidResponse(_) => "UPSTREAM_INVALID_RESPONSE",
            },
        }
    }
}

impl From<Arc<UpstreamError>> for GraphqlError {
    fn from(error: Arc<UpstreamError>) -> Self {
        Self::Upstream(error)
    }
}

impl ErrorExtensions for GraphqlError {
    fn extend(&self) -> async_graphql::Error {
        async_graphql::Error::new(self.to_string()).extend_with(|_, extensions| {
            extensions.set("code", self.code());
            let Self::Upstream(upstream) = self else {
                return;
            };
            match upstream.as_ref() {
                UpstreamError::Auth { status, .. }
                | UpstreamError::Rejected { status, .. }
                | UpstreamError::Unavailable { status } => {
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
                    Value::Object(item)
                })
                .collect();
            if !upstream_errors.is_empty() {
                extensions.set("upstreamErrors", upstream_errors);
            }
        })
    }
}
