//! Scenario 1, collapse: K clients each poll the same M registrations every R ms
//! for T seconds; the gateway should make about one upstream call per registration
//! per cache TTL however many clients ask. Run twice: every registration moving
//! (pending / in progress), then a mix of all states. With `--replicas N` the
//! clients are spread round-robin over N gateways sharing a Redis, and the ideal
//! stays the same: one upstream call per registration per TTL across replicas.

use std::time::Duration;

use clap::Parser;

use crate::clients::{GraphqlClient, load_http_client};
use crate::error::BenchError;
use crate::pollers::{self, PollPlan};
use crate::report::Report;
use crate::stack::{Setup, Stack};

/// How far the manual clock is moved before polling: far enough for the demo
/// scripts to reach `blocked` and `action_required`, where they then stay.
const SETTLE_SECONDS: f64 = 16.0;

/// Collapse scenario settings.
#[derive(Debug, Clone, Parser)]
pub(crate) struct CollapseArgs {
    /// Concurrent polling clients (K).
    #[arg(long, default_value_t = 1000)]
    pub clients: usize,
    /// Registrations each client polls (M).
    #[arg(long, default_value_t = 10)]
    pub registrations: usize,
    /// Time between one client's polls (R), e.g. 1s.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub interval: Duration,
    /// How long clients poll (T).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// The gateway's TTL for moving states (`--cache-ttl-active`).
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub ttl_active: Duration,
    /// The gateway's TTL for blocked / action-required (`--cache-ttl-waiting`).
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration)]
    pub ttl_waiting: Duration,
    /// The gateway's TTL for succeeded / failed (`--cache-ttl-terminal`).
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    pub ttl_terminal: Duration,
}

/// Which states the registrations are in.
#[derive(Clone, Copy, Debug)]
enum Variant {
    Moving,
    Mixed,
}

/// A simulator scenario and how long the gateway caches the state it settles in.
struct Script {
    scenario: &'static str,
    ttl: Duration,
}

impl CollapseArgs {
    fn gateway_flags(&self) -> Vec<String> {
        let ttl = |duration: Duration| humantime::format_duration(duration).to_string();
        vec![
            "--cache-ttl-active".to_owned(),
            ttl(self.ttl_active),
            "--cache-ttl-waiting".to_owned(),
            ttl(self.ttl_waiting),
            "--cache-ttl-terminal".to_owned(),
            ttl(self.ttl_terminal),
        ]
    }

    fn scripts(&self, variant: Variant) -> Vec<Script> {
        let script = |scenario, ttl| Script { scenario, ttl };
        match variant {
            Variant::Moving => vec![
                script("pending", self.ttl_active),
                script("in-progress", self.ttl_active),
            ],
            Variant::Mixed => vec![
                script("pending", self.ttl_active),
                script("in-progress", self.ttl_active),
                script("blocked", self.ttl_waiting),
                script("action-required", self.ttl_waiting),
                script("succeeded", self.ttl_terminal),
                script("failed", self.ttl_terminal),
            ],
        }
    }
}

/// Runs both variants against one fresh stack.
pub(crate) async fn run(setup: &Setup, args: &CollapseArgs) -> Result<Vec<Report>, BenchError> {
    let stack = setup.stack(&args.gateway_flags()).await?;
    let mut reports = Vec::new();
    for variant in [Variant::Moving, Variant::Mixed] {
        reports.push(run_variant(setup, &stack, args, variant).await?);
    }
    Ok(reports)
}

async fn run_variant(
    setup: &Setup,
    stack: &Stack,
    args: &CollapseArgs,
    variant: Variant,
) -> Result<Report, BenchError> {
    let label = format!("{variant:?}").to_lowercase();
    let (domains, ideal) = prepare(setup, stack, args, variant, &label).await?;
    let http = load_http_client()?;
    let gateways: Vec<GraphqlClient> = stack
        .gateways()
        .map(|gateway| GraphqlClient::new(http.clone(), &gateway.url))
        .collect();
    let plan = PollPlan {
        clients: args.clients,
        interval: args.interval,
        duration: args.duration,
    };
    let outcome = pollers::run(&gateways, &domains, plan).await;
    let stats = stack.control.stats().await?;
    let upstream = stats.requests_for(&setup.account, domains.iter().map(String::as_str));
    let mut report = Report::new(format!("collapse ({label} states)"));
    report
        .metric("gateway replicas", gateways.len() as u64)
        .metric("clients (K)", args.clients as u64)
        .metric("registrations (M)", args.registrations as u64)
        .metric("poll interval ms (R)", args.interval.as_millis() as u64)
        .metric("seconds (T)", args.duration.as_secs_f64())
        .metric("client requests", outcome.requests)
        .metric("client requests failed", outcome.failed)
        .metric(
            "registration lookups",
            outcome.requests * args.registrations as u64,
        )
        .metric("upstream requests", upstream)
        .metric("upstream requests, all", stats.requests_total)
        .metric("ideal upstream requests", ideal)
        .against(
            "ratio upstream / ideal",
            upstream as f64 / ideal.max(1) as f64,
            "<= 1.02",
        );
    if let Some(error) = outcome.first_error {
        report.metric("first client error", error);
    }
    Ok(report)
}

/// Creates the registrations, settles their states and zeroes the counters;
/// returns the domains and the ideal upstream count, sum of ceil(T / TTL).
async fn prepare(
    setup: &Setup,
    stack: &Stack,
    args: &CollapseArgs,
    variant: Variant,
    label: &str,
) -> Result<(Vec<String>, u64), BenchError> {
    let scripts = args.scripts(variant);
    let mut domains = Vec::with_capacity(args.registrations);
    let mut ideal = 0;
    for index in 0..args.registrations {
        let script = &scripts[index % scripts.len()];
        let domain = format!("collapse-{label}-{index}.com");
        stack
            .control
            .add_workflow(&setup.account, &domain, script.scenario)
            .await?;
        ideal += (args.duration.as_secs_f64() / script.ttl.as_secs_f64()).ceil() as u64;
        domains.push(domain);
    }
    stack.control.advance_clock(SETTLE_SECONDS).await?;
    stack.control.reset_stats().await?;
    Ok((domains, ideal))
}
