//! Thin HTTP clients for the processes under test: the simulator's control API
//! (`/__sim/...`) and GraphQL over HTTP (`POST /graphql`).

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Bytes;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::BenchError;

/// The media type the gateway answers GraphQL with.
const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

/// `GET /__sim/stats`, the fields the scenarios read.
#[derive(Debug, Deserialize)]
pub(crate) struct SimStats {
    /// Every `/client/v4` request.
    pub requests_total: u64,
    /// Requests per account, then per domain.
    pub registrations: BTreeMap<String, BTreeMap<String, u64>>,
    /// 429 answers.
    #[serde(default)]
    pub rate_limited: u64,
    /// The longest time between two requests about one registration, in ms, per
    /// account, then per domain (absent from simulators before it was counted).
    #[serde(default)]
    pub longest_gaps_ms: BTreeMap<String, BTreeMap<String, u64>>,
}

impl SimStats {
    /// Requests counted for `domains` of `account`.
    pub(crate) fn requests_for<'a>(
        &self,
        account: &str,
        domains: impl IntoIterator<Item = &'a str>,
    ) -> u64 {
        let Some(counts) = self.registrations.get(account) else {
            return 0;
        };
        domains
            .into_iter()
            .map(|domain| counts.get(domain).copied().unwrap_or(0))
            .sum()
    }
}

/// The simulator's control API.
#[derive(Clone, Debug)]
pub(crate) struct SimulatorControl {
    http: reqwest::Client,
    base: String,
}

impl SimulatorControl {
    /// Controls the simulator at `url` (`http://HOST:PORT`).
    pub(crate) fn new(url: &str) -> Result<Self, BenchError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self {
            http,
            base: format!("{url}/__sim"),
        })
    }

    /// The request counters.
    pub(crate) async fn stats(&self) -> Result<SimStats, BenchError> {
        let response = self.http.get(format!("{}/stats", self.base)).send().await?;
        Ok(response.error_for_status()?.json().await?)
    }

    /// Sets every counter to zero.
    pub(crate) async fn reset_stats(&self) -> Result<(), BenchError> {
        let url = format!("{}/stats/reset", self.base);
        self.http.post(url).send().await?.error_for_status()?;
        Ok(())
    }

    /// Moves the (manual) workflow clock forward.
    pub(crate) async fn advance_clock(&self, seconds: f64) -> Result<(), BenchError> {
        let url = format!("{}/clock/advance", self.base);
        let body = json!({ "seconds": seconds });
        self.http
            .post(url)
            .json(&body)
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// `GET /__sim/clock`: `now` (the workflow clock) and `manual`.
    pub(crate) async fn clock(&self) -> Result<Value, BenchError> {
        let response = self.http.get(format!("{}/clock", self.base)).send().await?;
        Ok(response.error_for_status()?.json().await?)
    }

    /// Whether the workflow clock only moves when advanced.
    pub(crate) async fn clock_is_manual(&self) -> Result<bool, BenchError> {
        let clock = self.clock().await?;
        Ok(clock["manual"].as_bool().unwrap_or(false))
    }

    /// Starts `scenario` for (account, domain), replacing any workflow there.
    pub(crate) async fn add_workflow(
        &self,
        account: &str,
        domain: &str,
        scenario: &str,
    ) -> Result<(), BenchError> {
        let url = format!("{}/workflows", self.base);
        let body = json!({ "account_id": account, "domain_name": domain, "scenario": scenario });
        let response = self.http.post(url).json(&body).send().await?;
        if !response.status().is_success() {
            let text = response.text().await.unwrap_or_default();
            return Err(BenchError::Unexpected(format!(
                "adding workflow {domain}: {text}"
            )));
        }
        Ok(())
    }
}

/// GraphQL over HTTP with a prepared request body, so load loops do not re-serialise.
#[derive(Clone, Debug)]
pub(crate) struct GraphqlClient {
    http: reqwest::Client,
    url: String,
}

impl GraphqlClient {
    /// Posts to `{base}/graphql` through `http` (share one client to share its pool).
    pub(crate) fn new(http: reqwest::Client, base: &str) -> Self {
        Self {
            http,
            url: format!("{base}/graphql"),
        }
    }

    /// The JSON body for `query` with `variables`.
    pub(crate) fn body(query: &str, variables: Value) -> Bytes {
        json!({ "query": query, "variables": variables })
            .to_string()
            .into()
    }

    /// Posts `body`; an answer that is not 2xx or carries `errors` is an error.
    pub(crate) async fn post(&self, body: Bytes) -> Result<Bytes, String> {
        let response = self
            .http
            .post(&self.url)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, GRAPHQL_RESPONSE)
            .body(body)
            .send()
            .await
            .map_err(|error| error.to_string())?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|error| error.to_string())?;
        if !status.is_success() || has_errors(&bytes) {
            return Err(format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&bytes)
            ));
        }
        Ok(bytes)
    }

    /// Posts `body` and parses the answer's `data`.
    pub(crate) async fn data(&self, body: Bytes) -> Result<Value, BenchError> {
        let bytes = self.post(body).await.map_err(BenchError::Unexpected)?;
        let mut answer: Value = serde_json::from_slice(&bytes)
            .map_err(|error| BenchError::Unexpected(error.to_string()))?;
        Ok(answer["data"].take())
    }
}

/// A cheap check for a top-level `errors` entry, without parsing the body.
fn has_errors(body: &[u8]) -> bool {
    body.windows(9).any(|window| window == b"\"errors\"")
}

/// A client for many concurrent requests to one loopback host.
pub(crate) fn load_http_client() -> Result<reqwest::Client, BenchError> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(usize::MAX)
        .build()?)
}
