//! The HTTP client for the two registrar calls the gateway makes:
//! `GET …/registrations/{domain}/registration-status` (every read and poll) and
//! `POST …/registrations` (`startRegistration`), under either API family
//! (`registrar`, or Cloudflare's own `registrar-sandbox`).
//!
//! Decoding and error classification follow the API reference as summed up in
//! `docs/upstream-api.md`, and are tested against its example bodies byte for byte
//! (`tests/api/upstream_decoding.rs`) and against the simulator, whose encoder is
//! written independently of this client's model.

use std::time::{Duration, Instant};

use clap::ValueEnum;
use reqwest::{StatusCode, Url, header::HeaderMap};
use tracing::Instrument;

use super::model::RegistrationRequest;
use super::refused::RecentRefusals;
use super::{ApiMessage, Envelope, RetryPolicy, UpstreamError, WorkflowStatus};
use crate::budget::{Budget, Priority};
use crate::credential::Credential;
use crate::domain::{AccountId, DomainName};
use crate::metrics::{Metrics, UpstreamOutcome};
use crate::telemetry;

/// How long a credential is paused after a 429 that says nothing of when to come
/// back: the platform's documented lockout.
const LOCKOUT: Duration = Duration::from_secs(300);

/// Which of Cloudflare's two registrar API families the gateway talks to: the
/// shapes are identical, only the path segment after the account differs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum RegistrarApi {
    /// `/accounts/{id}/registrar/…`: production; registrations cost money.
    #[default]
    Registrar,
    /// `/accounts/{id}/registrar-sandbox/…`: Cloudflare's test environment.
    RegistrarSandbox,
}

impl RegistrarApi {
    /// The path segment after `/accounts/{account_id}`.
    pub fn segment(self) -> &'static str {
        match self {
            Self::Registrar => "registrar",
            Self::RegistrarSandbox => "registrar-sandbox",
        }
    }
}

/// How to reach the upstream.
#[derive(Clone, Debug)]
pub struct ApiSettings {
    /// API root, e.g. `https://api.cloudflare.com/client/v4`.
    pub base_url: Url,
    /// The registrar API family under that root.
    pub api: RegistrarApi,
    /// Limit on establishing a connection.
    pub connect_timeout: Duration,
    /// Limit on a whole request, connection to last byte.
    pub request_timeout: Duration,
    /// When and how often a failed read is tried again.
    pub retry: RetryPolicy,
    /// How long a credential the upstream refused is refused locally (per account)
    /// without a request; zero asks every time.
    pub refused_credential_ttl: Duration,
}

/// Why the API handle could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ApiBuildError {
    /// The base URL cannot have paths appended (e.g. `mailto:`), or is not HTTP(S).
    #[error("the upstream base URL must be an http:// or https:// URL, got \"{0}\"")]
    BaseUrl(Url),
    /// reqwest could not set up TLS or its connection pool.
    #[error("could not build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// Talks to the upstream within the budget; cheap to clone (one shared connection pool).
#[derive(Clone)]
pub struct CloudflareApi {
    http: reqwest::Client,
    base_url: Url,
    api: RegistrarApi,
    retry: RetryPolicy,
    /// Bound on one attempt, kept to say how long a read can take in all.
    request_timeout: Duration,
    budget: Budget,
    metrics: Metrics,
    /// Credentials the upstream refused lately.
    refused: RecentRefusals,
}

impl CloudflareApi {
    /// Builds the handle with rustls, timeouts and no redirect following (a redirect from
    /// the API is unexpected and must not carry credentials elsewhere).
    /// Every attempt, retries included, takes a request from `budget` first.
    /// Each attempt's outcome and latency go to `metrics`.
    pub fn new(
        settings: &ApiSettings,
        budget: Budget,
        metrics: Metrics,
    ) -> Result<Self, ApiBuildError> {
        let base_url = settings.base_url.clone();
        if base_url.cannot_be_a_base() || !matches!(base_url.scheme(), "http" | "https") {
            return Err(ApiBuildError::BaseUrl(base_url));
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
            api: settings.api,
            retry: settings.retry.clone(),
            request_timeout: settings.request_timeout,
            budget,
            metrics,
            refused: RecentRefusals::new(settings.refused_credential_ttl),
        })
    }

    /// The longest a read can take, retries and their backoffs included: how long
    /// another replica waits for this one's load before doing it itself.
    pub fn longest_read(&self) -> Duration {
        let attempts = self.retry.retries.saturating_add(1);
        self.request_timeout
            .saturating_mul(attempts)
            .saturating_add(self.retry.max.saturating_mul(self.retry.retries))
    }

    /// Fetches a registration workflow's status: `Ok(None)` when the upstream has no
    /// workflow for the domain (code 10000 `No workflow found…`, at any 4xx). Transient
    /// failures are retried as the [`RetryPolicy`] says (the read is idempotent).
    pub async fn registration_status(
        &self,
        credential: &Credential,
        account: &AccountId,
        domain: &DomainName,
        priority: Priority,
    ) -> Result<Option<WorkflowStatus>, UpstreamError> {
        let url = self.registrations_url(account, &[domain.as_str(), "registration-status"]);
        // A poll's granted turn pays for its first attempt; retries are charged.
        let mut next = priority;
        let call = self.with_retries(credential, "GET", &self.retry, Option::is_some, || {
            let priority = std::mem::replace(&mut next, priority.retried());
            self.read_status(credential, priority, &url)
        });
        self.unless_refused(credential, account, call).await
    }

    /// One attempt of [`Self::registration_status`].
    async fn read_status(
        &self,
        credential: &Credential,
        priority: Priority,
        url: &Url,
    ) -> Result<Option<WorkflowStatus>, UpstreamError> {
        let answer = self
            .send(credential, priority, self.http.get(url.clone()))
            .await?;
        match answer.status {
            StatusCode::OK => decode_status(&answer.body).map(Some),
            status => {
                let error = classify_failure(status, &answer.body, answer.retry_after);
                match is_no_workflow(&error) {
                    true => Ok(None),
                    false => Err(error),
                }
            }
        }
    }

    /// Runs `call` unless the upstream refused `credential` for `account` lately;
    /// remembers a refusal it answers with.
    async fn unless_refused<T>(
        &self,
        credential: &Credential,
        account: &AccountId,
        call: impl Future<Output = Result<T, UpstreamError>>,
    ) -> Result<T, UpstreamError> {
        let fingerprint = credential.fingerprint();
        if let Some(refusal) = self.refused.recent(fingerprint, account).await {
            return Err(refusal);
        }
        let answer = call.await;
        if let Err(error) = &answer {
            self.refused.remember(fingerprint, account, error).await;
        }
        answer
    }

    /// Starts a registration: `POST …/registrations` with `Prefer: respond-async`, so
    /// the upstream answers 202 at once (or 201 when the workflow already finished)
    /// with the workflow's status. Sent exactly once, never retried: it spends the
    /// user's money, and a lost answer does not mean nothing happened. The caller
    /// reconciles an ambiguous failure ([`UpstreamError::leaves_create_unknown`]) by
    /// reading the domain's status.
    pub async fn create_registration(
        &self,
        credential: &Credential,
        account: &AccountId,
        request: &RegistrationRequest,
    ) -> Result<WorkflowStatus, UpstreamError> {
        let url = self.registrations_url(account, &[]);
        let call = self.with_retries(
            credential,
            "POST",
            &RetryPolicy::NONE,
            |_| true,
            || async {
                let builder = self
                    .http
                    .post(url.clone())
                    .header("prefer", "respond-async")
                    .json(request);
                let answer = self.send(credential, Priority::Foreground, builder).await?;
                match answer.status {
                    StatusCode::CREATED | StatusCode::ACCEPTED | StatusCode::OK => {
                        decode_status(&answer.body)
                    }
                    status => Err(classify_failure(status, &answer.body, answer.retry_after)),
                }
            },
        );
        self.unless_refused(credential, account, call).await
    }

    /// Runs `attempt` until it succeeds or `retry` says stop.
    /// Each attempt runs in its own `upstream.request` span (its trace context goes
    /// out as `traceparent`), and its outcome and latency go to the metrics; `found`
    /// tells an answer with a workflow from "no workflow".
    async fn with_retries<T, F, Fut>(
        &self,
        credential: &Credential,
        method: &'static str,
        retry_policy: &RetryPolicy,
        found: fn(&T) -> bool,
        mut attempt: F,
    ) -> Result<T, UpstreamError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, UpstreamError>>,
    {
        let mut retry = 0;
        loop {
            let span = tracing::info_span!(
                "upstream.request",
                otel.kind = "client",
                http.request.method = method,
                http.response.status_code = tracing::field::Empty,
                outcome = tracing::field::Empty,
            );
            let started = Instant::now();
            let answer = attempt().instrument(span.clone()).await;
            // Nothing was sent over budget: not an upstream request.
            if !matches!(answer, Err(UpstreamError::OverBudget { .. })) {
                let outcome = outcome(answer.as_ref().map(found));
                span.record("outcome", outcome.as_str());
                self.metrics.upstream_request(outcome, started.elapsed());
            }
            let error = match answer {
                Err(error) => error,
                answer => return answer,
            };
            let Some(wait) = retry_policy.delay(retry, &error) else {
                return Err(error);
            };
            retry += 1;
            tracing::debug!(
                retry,
                wait_ms = wait.as_millis() as u64,
                credential = %credential.fingerprint(),
                %error,
                "retrying an upstream call"
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// One request, if the budget has room: sent with the credential's headers,
    /// the upstream's pause (429, a spent `Ratelimit`) applied to the budget.
    async fn send(
        &self,
        credential: &Credential,
        priority: Priority,
        request: reqwest::RequestBuilder,
    ) -> Result<Received, UpstreamError> {
        let fingerprint = credential.fingerprint();
        self.budget
            .try_acquire(fingerprint, priority)
            .await
            .map_err(|exhausted| UpstreamError::OverBudget {
                retry_after: exhausted.retry_after,
            })?;
        let request = request.headers(telemetry::trace_context(&tracing::Span::current()));
        let response = credential
            .secret()
            .apply(request)
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
            .map_err(UpstreamError::from_transport)?
            .to_vec();
        Ok(Received {
            status,
            retry_after,
            body,
        })
    }

    /// `{base}/accounts/{account}/{registrar|registrar-sandbox}/registrations/{tail…}`,
    /// each segment percent-encoded by `Url` so no input can change the path.
    fn registrations_url(&self, account: &AccountId, tail: &[&str]) -> Url {
        let mut url = self.base_url.clone();
        url.path_segments_mut()
            .expect("checked in CloudflareApi::new: the base URL can be a base")
            .pop_if_empty()
            .extend([
                "accounts",
                account.as_str(),
                self.api.segment(),
                "registrations",
            ])
            .extend(tail);
        url
    }
}

/// What one request brought back.
struct Received {
    status: StatusCode,
    retry_after: Option<Duration>,
    body: Vec<u8>,
}

/// The upstream's "no workflow for this domain": code 10000 with its `No workflow
/// found` message. The spec declares only `4XX` for it, so the HTTP status does not
/// matter; the code alone does not either (10000 is also `Authentication error`).
fn is_no_workflow(error: &UpstreamError) -> bool {
    let errors = match error {
        UpstreamError::Rejected { errors, .. } | UpstreamError::Auth { errors, .. } => errors,
        _ => return false,
    };
    errors
        .iter()
        .any(|error| error.code == 10000 && error.message.starts_with("No workflow found"))
}

/// The metric outcome of one attempt: `Ok(found)`, or why it failed.
fn outcome(answer: Result<bool, &UpstreamError>) -> UpstreamOutcome {
    match answer {
        Ok(true) => UpstreamOutcome::Ok,
        Ok(false) => UpstreamOutcome::NotFound,
        Err(UpstreamError::Auth { .. }) => UpstreamOutcome::Auth,
        Err(UpstreamError::RateLimited { .. }) => UpstreamOutcome::RateLimited,
        // Nothing is sent over budget; the caller does not record it.
        Err(UpstreamError::Rejected { .. } | UpstreamError::OverBudget { .. }) => {
            UpstreamOutcome::Rejected
        }
        Err(
            UpstreamError::Unavailable { .. }
            | UpstreamError::Unreachable(_)
            | UpstreamError::Tls(_)
            | UpstreamError::OutcomeUnknown { .. },
        ) => UpstreamOutcome::Unavailable,
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
            "a success status without a successful result".to_owned(),
        )),
    }
}

/// Classifies a failed answer by HTTP status and envelope code. An unreadable body
/// (an HTML error page) still classifies by its status.
fn classify_failure(
    status: StatusCode,
    body: &[u8],
    retry_after: Option<Duration>,
) -> UpstreamError {
    let errors: Vec<ApiMessage> = serde_json::from_slice::<Envelope<serde::de::IgnoredAny>>(body)
        .map(|envelope| envelope.errors)
        .unwrap_or_default();
    let has_code = |codes: &[u32]| errors.iter().any(|error| codes.contains(&error.code));
    let code = status.as_u16();
    match code {
        401 | 403 => UpstreamError::Auth {
            status: code,
            errors,
        },
        400 if has_code(&[9106, 6003]) => UpstreamError::Auth {
            status: code,
            errors,
        },
        429 => UpstreamError::RateLimited {
            retry_after,
            errors,
        },
        400..=499 => UpstreamError::Rejected {
            status: code,
            errors,
            retry_after,
        },
        500..=599 => UpstreamError::Unavailable {
            status: code,
            retry_after,
        },
        _ => UpstreamError::InvalidResponse(format!("unexpected HTTP {status}")),
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
    if let Ok(seconds) = value.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds).ok();
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
        let classify = |status: u16, body: &[u8]| {
            classify_failure(StatusCode::from_u16(status).unwrap(), body, None)
        };
        let not_found = br#"{"errors":[{"code":10000,"message":"No workflow found for example.com"}],"messages":[],"result":null,"success":false}"#;
        for status in [400, 403, 404, 409, 422] {
            assert!(is_no_workflow(&classify(status, not_found)), "{status}");
        }
        let auth =
            br#"{"success":false,"errors":[{"code":10000,"message":"Authentication error"}]}"#;
        assert!(matches!(
            classify(403, auth),
            UpstreamError::Auth { status: 403, .. }
        ));
        assert!(!is_no_workflow(&classify(403, auth)));
        let missing = br#"{"success":false,"errors":[{"code":9106,"message":"Missing X-Auth-Key, X-Auth-Email or Authorization headers"}]}"#;
        assert!(matches!(
            classify(400, missing),
            UpstreamError::Auth { status: 400, .. }
        ));
        assert!(matches!(
            classify(502, b"<html>bad gateway</html>"),
            UpstreamError::Unavailable { status: 502, .. }
        ));
        let no_route = classify(404, b"<html>no route</html>");
        assert!(matches!(
            no_route,
            UpstreamError::Rejected { status: 404, .. }
        ));
        assert!(!is_no_workflow(&no_route));
    }

    #[test]
    fn an_error_source_without_a_pointer_keeps_the_envelope_errors() {
        let body = br#"{"success":false,"errors":[{"code":10000,"message":"No workflow found for example.com","source":{}}]}"#;
        assert!(is_no_workflow(&classify_failure(
            StatusCode::NOT_FOUND,
            body,
            None
        )));
    }

    #[test]
    fn retry_after_reads_fractional_seconds() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", "1.5".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(1500)));
    }
}
