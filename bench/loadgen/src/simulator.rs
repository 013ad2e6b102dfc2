//! Scenario 4, simulator: status GETs per second straight to the simulator with
//! no latency or faults injected, to show it is never the bottleneck of the others.

use std::time::Duration;

use clap::Parser;
use reqwest::header::AUTHORIZATION;

use crate::clients::load_http_client;
use crate::error::BenchError;
use crate::load;
use crate::report::Report;
use crate::stack::Setup;

/// Simulator scenario settings.
#[derive(Debug, Clone, Parser)]
pub(crate) struct SimulatorArgs {
    /// Requests in flight at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// How long the simulator is loaded.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
}

/// Loads `GET .../registration-status` of a demo domain.
pub(crate) async fn run(setup: &Setup, args: &SimulatorArgs) -> Result<Report, BenchError> {
    let simulator = setup.simulator().await?;
    let url = format!(
        "{}/client/v4/accounts/{}/registrar/registrations/demo-in-progress.com/registration-status",
        simulator.url, setup.account
    );
    let http = load_http_client()?;
    let outcome = load::closed_loop(args.concurrency, args.duration, move || {
        let request = http
            .get(&url)
            .header(AUTHORIZATION, "Bearer bench-token")
            .send();
        async move {
            let response = request.await.map_err(|error| error.to_string())?;
            let status = response.status();
            response.bytes().await.map_err(|error| error.to_string())?;
            status
                .is_success()
                .then_some(())
                .ok_or_else(|| format!("HTTP {status}"))
        }
    })
    .await;
    let mut report = Report::new("simulator (status GETs, no latency injected)");
    report
        .metric("concurrency", args.concurrency as u64)
        .metric("seconds", outcome.elapsed.as_secs_f64())
        .metric("requests/s", outcome.per_second())
        .metric("p50 ms", outcome.latency.map(|p| p.p50_ms))
        .metric("p99 ms", outcome.latency.map(|p| p.p99_ms))
        .metric("failed", outcome.failed)
        .series("load", outcome.to_json());
    if let Some(error) = outcome.first_error {
        report.metric("first error", error);
    }
    Ok(report)
}
