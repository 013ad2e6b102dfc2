//! Scenario 2, query throughput: cached `registrationStatus` requests per second
//! and latency at fixed concurrency, against the floor measured in the same run
//! (a bare async-graphql + axum server answering a constant of the same shape,
//! see [`crate::floor`]) with the same document.

use std::time::Duration;

use clap::Parser;
use serde_json::{Value, json};

use crate::clients::{GraphqlClient, load_http_client};
use crate::error::BenchError;
use crate::load::{self, LoadOutcome};
use crate::processes::{self, Launch, Service};
use crate::report::Report;
use crate::stack::Setup;

/// The document both servers answer: every scalar field of `RegistrationStatus`
/// an in-progress workflow has, plus the nested objects.
const STATUS_QUERY: &str = "query($domain: String!) { registrationStatus(domain: $domain) { \
    domainName state rawState completed createdAt updatedAt links { self resource } context \
    error { code message } actionRequired { action confirmationSentTo } fetchedAt ageSeconds } }";

/// Query throughput settings.
#[derive(Debug, Clone, Parser)]
pub(crate) struct QueryArgs {
    /// Requests in flight at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// How long each server is loaded.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// The registration queried (a demo domain, in progress for a day).
    #[arg(long, default_value = "demo-in-progress.com")]
    pub domain: String,
}

/// Measures the gateway, then the floor, with the same document and load.
pub(crate) async fn run(setup: &Setup, args: &QueryArgs) -> Result<Report, BenchError> {
    let stack = setup
        .stack(&["--cache-ttl-active".to_owned(), "1h".to_owned()])
        .await?;
    let floor = start_floor(setup).await?;
    let http = load_http_client()?;
    let gateway = GraphqlClient::new(http.clone(), &stack.gateway.url);
    let floor_client = GraphqlClient::new(http, &floor.url);
    let body = GraphqlClient::body(STATUS_QUERY, json!({ "domain": args.domain }));
    let ours = status_of(&gateway, body.clone()).await?;
    let theirs = status_of(&floor_client, body.clone()).await?;
    if field_names(&ours) != field_names(&theirs) {
        return Err(BenchError::Unexpected(format!(
            "the floor's answer differs in shape: {theirs} vs {ours}"
        )));
    }
    let gateway_load = measure(&gateway, &body, args).await;
    let floor_load = measure(&floor_client, &body, args).await;
    Ok(report(args, &gateway_load, &floor_load))
}

/// Starts `loadgen floor` on a free port.
async fn start_floor(setup: &Setup) -> Result<Service, BenchError> {
    processes::start(Launch {
        name: "floor server",
        program: &setup.bin_dir.join("loadgen"),
        args: vec!["floor".to_owned()],
        ready_path: "/healthz",
    })
    .await
}

/// The `registrationStatus` object, which must not be null (this also warms the cache).
async fn status_of(client: &GraphqlClient, body: axum::body::Bytes) -> Result<Value, BenchError> {
    let mut data = client.data(body).await?;
    match data["registrationStatus"].take() {
        Value::Object(status) => Ok(Value::Object(status)),
        other => Err(BenchError::Unexpected(format!(
            "registrationStatus is {other}"
        ))),
    }
}

fn field_names(status: &Value) -> Vec<&String> {
    status
        .as_object()
        .map(|object| object.keys().collect())
        .unwrap_or_default()
}

async fn measure(
    client: &GraphqlClient,
    body: &axum::body::Bytes,
    args: &QueryArgs,
) -> LoadOutcome {
    let (client, body) = (client.clone(), body.clone());
    load::closed_loop(args.concurrency, args.duration, move || {
        let (client, body) = (client.clone(), body.clone());
        async move { client.post(body).await.map(drop) }
    })
    .await
}

fn report(args: &QueryArgs, ours: &LoadOutcome, floor: &LoadOutcome) -> Report {
    let mut report = Report::new("query throughput (cached registrationStatus)");
    let percentile = |outcome: &LoadOutcome, pick: fn(&crate::latency::Percentiles) -> f64| {
        outcome.latency.as_ref().map(pick)
    };
    report
        .metric("concurrency", args.concurrency as u64)
        .metric("seconds per server", args.duration.as_secs_f64())
        .metric("gateway requests/s", ours.per_second())
        .metric("gateway p50 ms", percentile(ours, |p| p.p50_ms))
        .metric("gateway p99 ms", percentile(ours, |p| p.p99_ms))
        .metric("gateway failed", ours.failed)
        .metric("floor requests/s", floor.per_second())
        .metric("floor p50 ms", percentile(floor, |p| p.p50_ms))
        .metric("floor p99 ms", percentile(floor, |p| p.p99_ms))
        .metric("floor failed", floor.failed)
        .against(
            "ours / floor (requests/s)",
            ours.per_second() / floor.per_second().max(f64::EPSILON),
            ">= 1.25",
        )
        .series("gateway", ours.to_json())
        .series("floor", floor.to_json());
    if let Some(error) = ours.first_error.as_ref().or(floor.first_error.as_ref()) {
        report.metric("first error", error.clone());
    }
    report
}
