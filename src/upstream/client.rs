//! The HTTP client for `GET .../registrations/{domain}/registration-status`.

use std::time::{Duration, Instant};

use reqwest::{StatusCode, Url, header::HeaderMap};
use tracing::Instrument;

use super::{Credential, Envelope, RetryPolicy, UpstreamError, WorkflowStatus};
use crate::budget::{Budget, Priority};
use crate::domain::{AccountId, DomainName};
use crate::metrics::{Metrics, UpstreamOutcome};
use crate::telemetry;

/// How long a credential is paused after a 429 that says nothing of when to come
/// back: the platform's documented lockout.
const LOCKOUT: Duration = Duration::from_secs(300);

/// How to reach the upstream.
#[derive(Clone, Debug)]
pub struct ClientSettings {
    /// API root, e.g. `https://api.cloudflare.com/client/v4`.
    pub base_url: Url,
    /// Limit on establishing a connection.
    pub connect_timeout: Duration,
    /// Limit on a whole request, connection to last byte.
    pub request_timeout: Duration,
    /// When and how often a failed read is tried again.
    pub retry: RetryPolicy,
}

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientBuildError {
    /// The base URL cannot have paths appended (e.g. `mailto:`), or is not HTTP(S).
    #[error("the upstream base URL must be an http:// or https:// URL, got \"{0}\"")]
    BaseUrl(Url),
    /// reqwest could not set up TLS or its connection pool.
    #[error("could not build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// Talks to the upstream within the budget; cheap to clone (one shared connection pool).
#[derive(Clone)]
pub struct UpstreamClient {
    http: reqwest::Client,
    base_url: Url,
    retry: RetryPolicy,
    budget: Budget,
    metrics: Metrics,
}

impl UpstreamClient {
    /// Builds a client with rustls, timeouts and no redirect following (a redirect from
    /// the API is unexpected and must not carry credentials elsewhere).
    /// Every attempt, retries included, takes a request from `budget` first.
    /// Each attempt's outcome and latency go to `metrics`.
    pub fn new(
        settings: &ClientSettings,
        budget: Budget,
        metrics: Metrics,
    ) -> Result<Self, ClientBuildError> {
        let base_url = settings.base_url.clone();
        if base_url.cannot_be_a_base() || !matches!(base_url.scheme(), "http" | "https") {
            return Err(ClientBuildError::BaseUrl(base_url));
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("registrar-gateway/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.request_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            http,
            base_url,
            retry: settings.retry.clone(),
            budget,
            metrics,
        })
    }

    /// Fetches a registration workflow's status: `Ok(None)` when the upstream has no
    /// workflow for the domain (404, code 10000). Transient failures are retried as
    /// the [`RetryPolicy`] says (the read is idempotent).
    pub async fn registration_status(
        &self,
        credential: &Credential,
        account: &AccountId,
        domain: &DomainName,
        priority: Priority,
    ) -> Result<Option<WorkflowStatus>, UpstreamError> {
        let mut retry = 0;
        loop {
            let error = match self
                .fetch_status(credential, account, domain, priority)
                .await
            {
                Err(error) => error,
                answer => return answer,
            };
            let Some(wait) = self.retry.delay(retry, &error) else {
                return Err(error);
            };
            retry += 1;
            tracing::debug!(
                retry,
                wait_ms = wait.as_millis() as u64,
                credential = %credential.fingerprint(),
                %error,
                "retrying an upstream read"
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// One attempt at [`UpstreamClient::registration_status`], if the budget has room.
    async fn fetch_status(
        &self,
        credential: &Credential,
        account: &AccountId,
        domain: &DomainName,
        priority: Priority,
    ) -> Result<Option<WorkflowStatus>, UpstreamError> {
        let fingerprint = credential.fingerprint();
        self.budget
            .try_acquire(fingerprint, priority)
            .map_err(|exhausted| UpstreamError::OverBudget {
                retry_after: exhausted.retry_after,
            })?;
        let url = self.status_url(account, domain);
        let span = tracing::info_span!(
            "upstream.request",
            otel.kind = "client",
            http.request.method = "GET",
            http.response.status_code = tracing::field::Empty,
            outcome = tracing::field::Empty,
        );
        let started = Instant::now();
        let answer = self.send(credential, url).instrument(span.clone()).await;
        let outcome = outcome(&answer);
        span.record("outcome", outcome.as_str());
        self.metrics.upstream_request(outcome, started.elapsed());
        answer
    }

    /// Sends one request (within the caller's span, whose trace context it carries
    /// as `traceparent`) and reads its answer.
    async fn send(
        &self,
        credential: &Credential,
        url: Url,
    ) -> Result<Option<WorkflowStatus>, UpstreamError> {
        let fingerprint = credential.fingerprint();
        let request = self
            .http
            .get(url)
            .headers(telemetry::trace_context(&tracing::Span::current()));
        let request = credential.credentials().apply(request);
        let response = request
            .send()
            .await
            .map_err(UpstreamError::from_transport)?;
        let status = response.status();
        tracing::Span::current().record("http.response.status_code", status.as_u16());
        let retry_after = retry_after(response.headers());
        if let Some(pause) = upstream_pause(status, retry_after, response.headers()) {
            self.budget.pause(fingerprint, pause);
        }
        let body = response
            .bytes()
            .await
            .map_err(UpstreamError::from_transport)?;
        if status == StatusCode::OK {
            return decode_status(&body).map(Some);
        }
        classify_failure(status, &body, retry_after).map(|()| None)
    }

    /// `{base}/accounts/{account}/registrar/registrations/{domain}/registration-status`,
    /// each segment percent-encoded by `Url` so no input can change the path.
    fn status_url(&self, account: &AccountId, domain: &DomainName) -> Url {
        let mut url = self.base_url.clone();
        url.path_segments_mut()
            .expect("checked in UpstreamClient::new: the base URL can be a base")
            .pop_if_empty()
            .extend(["accounts", account.as_str(), "registrar", "registrations"])
            .extend([domain.as_str(), "registration-status"]);
        url
    }
}

/// The metric outcome of one attempt.
fn outcome(answer: &Result<Option<WorkflowStatus>, UpstreamError>) -> UpstreamOutcome {
    match answer {
        Ok(Some(_)) => UpstreamOutcome::Ok,
        Ok(None) => UpstreamOutcome::NotFound,
        Err(UpstreamError::Auth { .. }) => UpstreamOutcome::Auth,
        Err(UpstreamError::RateLimited { .. }) => UpstreamOutcome::RateLimited,
        // Nothing is sent over budget; `send` never returns it.
        Err(UpstreamError::Rejected { .. } | UpstreamError::OverBudget { .. }) => {
            UpstreamOutcome::Rejected
        }
        Err(UpstreamError::Unavailable { .. } | UpstreamError::Unreachable(_)) => {
            UpstreamOutcome::Unavailable
        }
        Err(UpstreamError::Timeout) => UpstreamOutcome::Timeout,
        Err(UpstreamError::InvalidResponse(_)) => UpstreamOutcome::Invalid,
    }
}

fn decode_status(body: &[u8]) -> Result<WorkflowStatus, UpstreamError> {
    let envelope: Envelope<WorkflowStatus> = serde_json::from_slice(body)
        .map_err(|error| UpstreamError::InvalidResponse(error.to_string()))?;
    match envelope.result {
        Some(status) if envelope.success => Ok(status),
        _ => Err(UpstreamError::InvalidResponse(
            "HTTP 200 without a successful result".to_owned(),
        )),
    }
}

/// Maps a non-200 answer to `Ok(())` for "no workflow" or to the matching error.
fn classify_failure(
    status: StatusCode,
    body: &[u8],
    retry_after: Option<Duration>,
) -> Result<(), UpstreamError> {
    let errors = serde_json::from_slice::<Envelope<serde::de::IgnoredAny>>(body)
        .map(|envelope| envelope.errors)
        .unwrap_or_default();
    let has_code = |codes: &[u32]| errors.iter().any(|error| codes.contains(&error.code));
    let code = status.as_u16();
    match code {
        404 if has_code(&[10000]) => Ok(()),
        401 | 403 => Err(UpstreamError::Auth {
            status: code,
            errors,
        }),
        400 if has_code(&[9106, 6003]) => Err(UpstreamError::Auth {
            status: code,
            errors,
        }),
        429 => Err(UpstreamError::RateLimited {
            retry_after,
            errors,
        }),
        400..=499 => Err(UpstreamError::Rejected {
            status: code,
            errors,
        }),
        500..=599 => Err(UpstreamError::Unavailable { status: code }),
        _ => Err(UpstreamError::InvalidResponse(format!(
            "unexpected HTTP {status}"
        ))),
    }
}

/// How long the upstream asked this credential to stop: a 429's `Retry-After` (the
/// platform's lockout when absent), or the `Ratelimit` reset when nothing remains.
fn upstream_pause(
    status: StatusCode,
    retry_after: Option<Duration>,
    headers: &HeaderMap,
) -> Option<Duration> {
    if status == StatusCode::TOO_MANY_REQUESTS {
        return Some(
            retry_after
                .or_else(|| ratelimit_reset_if_spent(headers))
                .unwrap_or(LOCKOUT),
        );
    }
    ratelimit_reset_if_spent(headers)
}

/// The `t` of a `Ratelimit: "default";r=0;t=30` header whose `r` is 0.
fn ratelimit_reset_if_spent(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("ratelimit")?.to_str().ok()?;
    let param = |name: &str| {
        value.split(';').find_map(|part| {
            part.trim()
                .strip_prefix(name)?
                .strip_prefix('=')?
                .parse::<u64>()
                .ok()
        })
    };
    (param("r")? == 0).then(|| Duration::from_secs(param("t").unwrap_or(1)))
}

/// `retry-after-ms`, then `Retry-After` in seconds or as an HTTP date, as the official SDKs read them.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let header = |name: &str| headers.get(name)?.to_str().ok().map(str::trim);
    if let Some(millis) = header("retry-after-ms").and_then(|value| value.parse::<f64>().ok()) {
        return Duration::try_from_secs_f64(millis / 1000.0).ok();
    }
    let value = header("retry-after")?;
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .to_std()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_upstream_pauses_a_credential_on_429_and_on_a_spent_ratelimit() {
        let mut headers = HeaderMap::new();
        assert_eq!(
            upstream_pause(
                StatusCode::TOO_MANY_REQUESTS,
                Some(Duration::from_secs(7)),
                &headers
            ),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            upstream_pause(StatusCode::TOO_MANY_REQUESTS, None, &headers),
            Some(LOCKOUT)
        );
        headers.insert("ratelimit", r#""default";r=3;t=30"#.parse().unwrap());
        assert_eq!(upstream_pause(StatusCode::OK, None, &headers), None);
        headers.insert("ratelimit", r#""default";r=0;t=30"#.parse().unwrap());
        assert_eq!(
            upstream_pause(StatusCode::OK, None, &headers),
            Some(Duration::from_secs(30))
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_milliseconds() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", "300".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(300)));
        headers.insert("retry-after-ms", "1500".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(1500)));
    }

    #[test]
    fn failures_are_classified_by_status_and_envelope_code() {
        let not_found = br#"{"errors":[{"code":10000,"message":"No workflow found for example.com"}],"messages":[],"result":null,"success":false}"#;
        assert!(classify_failure(StatusCode::NOT_FOUND, not_found, None).is_ok());
        let missing = br#"{"success":false,"errors":[{"code":9106,"message":"Missing X-Auth-Key, X-Auth-Email or Authorization headers"}]}"#;
        assert!(matches!(
            classify_failure(StatusCode::BAD_REQUEST, missing, None),
            Err(UpstreamError::Auth { status: 400, .. })
        ));
        assert!(matches!(
            classify_failure(StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>", None),
            Err(UpstreamError::Unavailable { status: 502 })
        ));
        assert!(matches!(
            classify_failure(StatusCode::NOT_FOUND, b"<html>no route</html>", None),
            Err(UpstreamError::Rejected { status: 404, .. })
        ));
    }
}
