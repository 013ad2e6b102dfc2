//! One error enum for everything that can go wrong talking to the upstream.
//! It keeps the upstream's own `errors[].code`/`message` and never holds a credential.

use std::time::Duration;

use super::ApiMessage;

/// Why an upstream call did not produce a workflow status (or a definite "no workflow").
/// Serialisable so that the replica polling a registration can tell subscribers on
/// the other replicas why it gave up.
#[derive(Debug, Clone, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum UpstreamError {
    /// 401/403, or a 400 about missing or malformed auth headers (9106, 6003).
    #[error("the upstream refused the credentials (HTTP {status})")]
    Auth {
        /// HTTP status from the upstream.
        status: u16,
        /// The upstream's envelope errors.
        errors: Vec<ApiMessage>,
    },
    /// 429: the credential's request budget is spent.
    #[error("the upstream rate limit for this credential is exhausted")]
    RateLimited {
        /// From `Retry-After`, when sent.
        retry_after: Option<Duration>,
        /// The upstream's envelope errors (code 971).
        errors: Vec<ApiMessage>,
    },
    /// Any other 4xx: the upstream understood and refused the request. 408 and 409
    /// are retried first, as the official SDKs do.
    #[error("the upstream rejected the request (HTTP {status})")]
    Rejected {
        /// HTTP status from the upstream.
        status: u16,
        /// The upstream's envelope errors.
        errors: Vec<ApiMessage>,
        /// From `retry-after-ms` / `Retry-After`, when sent.
        retry_after: Option<Duration>,
    },
    /// The gateway's own budget for this credential has no room: nothing was sent,
    /// so Cloudflare's lockout is never risked.
    #[error("the gateway's upstream request budget for this credential is spent; retry in {}s", retry_after.as_secs_f64().ceil())]
    OverBudget {
        /// When the budget will admit a request.
        retry_after: Duration,
    },
    /// A 5xx answer.
    #[error("the upstream is unavailable (HTTP {status})")]
    Unavailable {
        /// HTTP status from the upstream.
        status: u16,
        /// From `retry-after-ms` / `Retry-After`, when sent.
        retry_after: Option<Duration>,
    },
    /// No complete answer within the configured request timeout.
    #[error("the upstream did not answer in time")]
    Timeout,
    /// The connection could not be made or broke before an answer.
    /// The detail (connect error, reset, ...) is for logs: clients get the summary.
    #[error("the upstream could not be reached")]
    Unreachable(String),
    /// The TLS connection to the upstream could not be set up: its certificate was
    /// refused (unknown issuer, expired, another name) or the handshake failed (not
    /// TLS at all, no common protocol). Not retried: another attempt meets the same
    /// certificate. The detail names the TLS error, never a credential.
    #[error(
        "could not set up TLS with the upstream (a certificate or TLS problem, not an outage): {0}"
    )]
    Tls(String),
    /// A registration POST whose answer was lost or ambiguous (`cause`), and no
    /// workflow for the domain was visible afterwards: it may or may not have
    /// started. The POST is never sent again blindly.
    #[error(
        "the answer to the registration request was lost ({cause}) and no workflow for the domain is visible yet, so it may or may not have started; the gateway keeps watching the domain: query registrationStatus or subscribe before deciding to try again"
    )]
    OutcomeUnknown {
        /// What happened to the POST's answer.
        cause: Box<UpstreamError>,
    },
    /// An answer that is not the documented envelope.
    #[error("the upstream answered with an unreadable body: {0}")]
    InvalidResponse(String),
}

impl UpstreamError {
    /// The upstream's envelope errors, when it sent any.
    pub fn upstream_errors(&self) -> &[ApiMessage] {
        match self {
            Self::Auth { errors, .. }
            | Self::RateLimited { errors, .. }
            | Self::Rejected { errors, .. } => errors,
            _ => &[],
        }
    }

    /// Whether another attempt may succeed: the SDKs retry 408, 409, 429 and 5xx,
    /// and connection failures and timeouts. The gateway's own budget refusal is not
    /// retried (it would only be refused again).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Rejected { status, .. } => matches!(status, 408 | 409),
            Self::RateLimited { .. }
            | Self::Unavailable { .. }
            | Self::Timeout
            | Self::Unreachable(_) => true,
            Self::Auth { .. }
            | Self::OverBudget { .. }
            | Self::InvalidResponse(_)
            | Self::Tls(_)
            | Self::OutcomeUnknown { .. } => false,
        }
    }

    /// The upstream's own word on when to try again, if it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. }
            | Self::Rejected { retry_after, .. }
            | Self::Unavailable { retry_after, .. } => *retry_after,
            Self::OverBudget { retry_after } => Some(*retry_after),
            _ => None,
        }
    }

    /// Whether a registration POST that ended in this error may have started a
    /// workflow all the same: its answer timed out, the connection broke, the
    /// upstream answered 5xx (possibly after acting) or 409 (one is already
    /// running), or the answer was unreadable. The domain's status then says.
    pub fn leaves_create_unknown(&self) -> bool {
        match self {
            Self::Timeout
            | Self::Unreachable(_)
            | Self::Unavailable { .. }
            | Self::InvalidResponse(_) => true,
            Self::Rejected { status, .. } => *status == 409,
            _ => false,
        }
    }

    /// Classifies a transport-level failure from reqwest. The URL is dropped from the
    /// message: it is ours, and says nothing the caller needs. No side effects: the
    /// failure is logged once, where it is handled.
    pub(crate) fn from_transport(error: reqwest::Error) -> Self {
        if error.is_timeout() {
            Self::Timeout
        } else if error.is_decode() {
            Self::InvalidResponse(error.without_url().to_string())
        } else if let Some(tls) = tls_cause(&error) {
            Self::Tls(tls)
        } else {
            Self::Unreachable(error_chain(&error.without_url()))
        }
    }
}

/// The TLS failure somewhere in `error`'s causes: a rustls error (a refused
/// certificate, a peer that answered something other than TLS), or the TLS
/// handshake cut short (tokio-rustls's `tls handshake eof`: a server that closed
/// on the hello, as a plain-HTTP server does). hyper carries these inside an
/// `io::Error` (sometimes two), whose `source()` skips the error it wraps, so an
/// `io::Error` is descended into through `get_ref`.
fn tls_cause(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause = Some(error);
    while let Some(current) = cause {
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        if current.to_string().starts_with("tls handshake") {
            return Some(current.to_string());
        }
        cause = match current.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => current.source(),
        };
    }
    None
}

/// `error: cause: cause`, since reqwest's top-level message alone is vague.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
