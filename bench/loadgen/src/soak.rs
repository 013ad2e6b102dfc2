//! Scenario 5, soak (optional): polling clients over registrations in every state
//! for a long time, the workflows restarted and moved on each sample so cache
//! entries keep changing, and the gateway's RSS sampled at each step to show it
//! does not grow.

use std::time::Duration;

use clap::Parser;
use serde_json::json;
use tokio::time::Instant;

use crate::clients::{GraphqlClient, load_http_client};
use crate::error::BenchError;
use crate::pollers::{self, PollPlan};
use crate::report::Report;
use crate::stack::{Setup, Stack};

/// Scripts cycled over the registrations: every state, some moving on their own.
const SCRIPTS: [&str; 8] = [
    "pending",
    "in-progress",
    "blocked",
    "action-required",
    "succeeded",
    "failed",
    "succeeds",
    "fails",
];
/// Clock advance per sample: moves the restarted scripts to their middle states.
const ADVANCE_SECONDS: f64 = 16.0;

/// Soak settings.
#[derive(Debug, Clone, Parser)]
pub(crate) struct SoakArgs {
    /// How long to run, e.g. 30m.
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Time between RSS samples (and workflow restarts).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub sample_every: Duration,
    /// Polling clients.
    #[arg(long, default_value_t = 100)]
    pub clients: usize,
    /// Registrations polled (and restarted each sample).
    #[arg(long, default_value_t = 80)]
    pub registrations: usize,
    /// Time between one client's polls.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub interval: Duration,
}

/// Runs the soak and reports RSS over time.
pub(crate) async fn run(setup: &Setup, args: &SoakArgs) -> Result<Report, BenchError> {
    let stack = setup.stack(&[]).await?;
    let domains: Vec<String> = (0..args.registrations)
        .map(|index| format!("soak-{index}.com"))
        .collect();
    restart_workflows(setup, &stack, &domains).await?;
    let graphql = GraphqlClient::new(load_http_client()?, &stack.gateway.url);
    let plan = PollPlan {
        clients: args.clients,
        interval: args.interval,
        duration: args.duration,
    };
    let polling = {
        let domains = domains.clone();
        tokio::spawn(
            async move { pollers::run(std::slice::from_ref(&graphql), &domains, plan).await },
        )
    };
    let started = Instant::now();
    let samples = (args.duration.as_secs_f64() / args.sample_every.as_secs_f64()).ceil() as u32;
    let mut rss = Vec::new();
    for sample in 1..=samples {
        tokio::time::sleep_until(started + args.sample_every * sample).await;
        rss.extend(
            stack
                .gateway
                .rss_kib()
                .map(|kib| (started.elapsed().as_secs_f64(), kib)),
        );
        restart_workflows(setup, &stack, &domains).await?;
    }
    let outcome = polling
        .await
        .map_err(|error| BenchError::Unexpected(format!("the polling task failed: {error}")))?;
    let mut report = Report::new("soak (mixed polling, workflows restarted each sample)");
    let kib = |index: Option<&(f64, u64)>| index.map(|(_, kib)| *kib);
    report
        .metric("seconds", args.duration.as_secs_f64())
        .metric("clients", args.clients as u64)
        .metric("registrations", args.registrations as u64)
        .metric("client requests", outcome.requests)
        .metric("client requests failed", outcome.failed)
        .metric("RSS samples", rss.len() as u64)
        .metric("RSS first KiB", kib(rss.first()))
        .metric("RSS last KiB", kib(rss.last()))
        .metric("RSS max KiB", rss.iter().map(|(_, kib)| *kib).max())
        .series("rss", json!(rss));
    if let Some(error) = outcome.first_error {
        report.metric("first client error", error);
    }
    Ok(report)
}

/// Restarts every registration's script and moves the clock so states differ.
async fn restart_workflows(
    setup: &Setup,
    stack: &Stack,
    domains: &[String],
) -> Result<(), BenchError> {
    for (domain, script) in domains.iter().zip(SCRIPTS.iter().cycle()) {
        stack
            .control
            .add_workflow(&setup.account, domain, script)
            .await?;
    }
    stack.control.advance_clock(ADVANCE_SECONDS).await
}
