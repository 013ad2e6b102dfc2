//! `loadgen`: the benchmark harness. Starts the simulator and the
//! gateway as separate processes on loopback (or uses running ones), runs
//! bounded scenarios, prints a table per scenario and writes `--json-out`.
//!
//! Layout: [`stack`] and [`processes`] start what is measured; [`clients`],
//! [`load`] and [`pollers`] make the traffic; one module per scenario
//! ([`collapse`], [`query`] with its [`floor`], [`fanout`], [`simulator`],
//! [`soak`], [`budget`]); [`progress`] says what runs meanwhile; [`report`]
//! prints and saves the figures, and ends with a pass/fail line per target.

mod budget;
mod clients;
mod collapse;
mod error;
mod fanout;
mod floor;
mod latency;
mod load;
mod pollers;
mod processes;
mod progress;
mod query;
mod report;
mod simulator;
mod soak;
mod stack;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use error::BenchError;
use progress::reported;
use report::Report;
use stack::{External, Setup};

/// Load scenarios for registrar-gateway (see BENCHMARKS.md).
#[derive(Debug, Parser)]
#[command(name = "loadgen", version)]
struct Cli {
    #[command(subcommand)]
    command: Scenario,
    /// Also write every figure to this JSON file.
    #[arg(long, global = true)]
    json_out: Option<PathBuf>,
    /// Directory holding `registrar-gateway` (default: this executable's).
    #[arg(long, global = true)]
    bin_dir: Option<PathBuf>,
    /// A running gateway (`http://127.0.0.1:PORT`) instead of starting one; needs --simulator-url.
    #[arg(long, global = true, requires = "simulator_url")]
    gateway_url: Option<String>,
    /// The running simulator behind --gateway-url (started with --manual-clock --rate-limit 0).
    #[arg(long, global = true, requires = "gateway_url")]
    simulator_url: Option<String>,
    /// The running gateway's pid, for RSS figures.
    #[arg(long, global = true)]
    gateway_pid: Option<u32>,
    /// The gateway's default account (`--account-id`).
    #[arg(long, global = true, default_value = stack::DEFAULT_ACCOUNT)]
    account_id: String,
    /// Gateways to start; above 1 they share a `redis-server` started for them
    /// (`--redis-url`) and `collapse` and `fanout` spread their clients round-robin
    /// over them (the other scenarios load the first).
    #[arg(
        long,
        global = true,
        default_value_t = 1,
        value_parser = clap::value_parser!(u16).range(1..=16),
        conflicts_with = "gateway_url"
    )]
    replicas: u16,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// 1. Upstream calls per registration under many polling clients.
    Collapse(collapse::CollapseArgs),
    /// 2. Cached query throughput and latency against the bare floor server.
    Query(query::QueryArgs),
    /// 3. Websocket subscribers: upstream polls, change-to-event latency, RSS.
    Fanout(fanout::FanoutArgs),
    /// 4. The simulator's own status GET throughput.
    Simulator(simulator::SimulatorArgs),
    /// 5. Mixed load for a long time, RSS sampled periodically.
    Soak(soak::SoakArgs),
    /// 6. Many watched registrations under the upstream's real rate limit (time scaled).
    Budget(budget::BudgetArgs),
    /// Scenarios 1-4 with their defaults, and the soak when --soak is given.
    All {
        /// Also soak for this long, e.g. 30m.
        #[arg(long, value_parser = humantime::parse_duration)]
        soak: Option<Duration>,
    },
    /// Every scenario for a second or two with small numbers (CI: the harness cannot rot).
    Smoke,
    /// Serve the floor schema (used by `query`).
    Floor {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8090")]
        listen: SocketAddr,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Scenario::Floor { listen } = cli.command {
        return exit_code(floor::serve(listen).await);
    }
    let setup = match setup(&cli) {
        Ok(setup) => setup,
        Err(error) => return exit_code(Err(error)),
    };
    let (reports, failed) = run(&setup, &cli.command).await;
    for report in &reports {
        print!("{}", report.table());
    }
    print!("{}", report::targets(&reports));
    if let Some(path) = &cli.json_out {
        let command = std::env::args().collect::<Vec<_>>().join(" ");
        if let Err(error) = report::write_json(path, &command, &reports) {
            return exit_code(Err(error));
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn exit_code(result: Result<(), BenchError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn setup(cli: &Cli) -> Result<Setup, BenchError> {
    let external = cli
        .gateway_url
        .as_ref()
        .zip(cli.simulator_url.as_ref())
        .map(|(gateway, simulator)| External {
            gateway_url: gateway.clone(),
            simulator_url: simulator.clone(),
            gateway_pid: cli.gateway_pid,
        });
    Ok(Setup {
        bin_dir: processes::bin_dir(cli.bin_dir.as_deref())?,
        external,
        account: cli.account_id.clone(),
        replicas: usize::from(cli.replicas),
    })
}

/// Runs the chosen scenarios; returns their reports and whether any failed.
async fn run(setup: &Setup, scenario: &Scenario) -> (Vec<Report>, bool) {
    let plan = match scenario {
        Scenario::All { soak } => Plan::defaults(*soak),
        Scenario::Smoke => Plan::smoke(),
        single => Plan::single(single),
    };
    plan.run(setup).await
}

/// The scenarios to run, with their settings.
#[derive(Default)]
struct Plan {
    collapse: Option<collapse::CollapseArgs>,
    query: Option<query::QueryArgs>,
    fanout: Option<fanout::FanoutArgs>,
    simulator: Option<simulator::SimulatorArgs>,
    soak: Option<soak::SoakArgs>,
    budget: Option<budget::BudgetArgs>,
}

impl Plan {
    fn single(scenario: &Scenario) -> Self {
        let mut plan = Self::default();
        match scenario {
            Scenario::Collapse(args) => plan.collapse = Some(args.clone()),
            Scenario::Query(args) => plan.query = Some(args.clone()),
            Scenario::Fanout(args) => plan.fanout = Some(args.clone()),
            Scenario::Simulator(args) => plan.simulator = Some(args.clone()),
            Scenario::Soak(args) => plan.soak = Some(args.clone()),
            Scenario::Budget(args) => plan.budget = Some(args.clone()),
            Scenario::All { .. } | Scenario::Smoke | Scenario::Floor { .. } => {}
        }
        plan
    }

    fn defaults(soak: Option<Duration>) -> Self {
        Self {
            collapse: Some(collapse::CollapseArgs::parse_from(["collapse"])),
            query: Some(query::QueryArgs::parse_from(["query"])),
            fanout: Some(fanout::FanoutArgs::parse_from(["fanout"])),
            simulator: Some(simulator::SimulatorArgs::parse_from(["simulator"])),
            soak: soak.map(|duration| {
                let mut args = soak::SoakArgs::parse_from(["soak"]);
                args.duration = duration;
                args
            }),
            budget: None,
        }
    }

    fn smoke() -> Self {
        Self {
            collapse: Some(collapse::CollapseArgs::parse_from([
                "collapse",
                "--clients",
                "20",
                "--registrations",
                "6",
                "--interval",
                "100ms",
                "--duration",
                "1s",
                "--ttl-active",
                "500ms",
            ])),
            query: Some(query::QueryArgs::parse_from([
                "query",
                "--concurrency",
                "4",
                "--duration",
                "1s",
            ])),
            fanout: Some(fanout::FanoutArgs::parse_from([
                "fanout",
                "--subscribers",
                "40",
                "--registrations",
                "4",
                "--per-connection",
                "10",
                "--poll-window",
                "500ms",
            ])),
            simulator: Some(simulator::SimulatorArgs::parse_from([
                "simulator",
                "--concurrency",
                "4",
                "--duration",
                "1s",
            ])),
            soak: Some(soak::SoakArgs::parse_from([
                "soak",
                "--duration",
                "2s",
                "--sample-every",
                "1s",
                "--clients",
                "5",
                "--registrations",
                "6",
            ])),
            budget: Some(budget::BudgetArgs::parse_from([
                "budget",
                "--registrations",
                "20",
                "--connections",
                "4",
                "--floor",
                "1s",
                "--duration",
                "5s",
            ])),
        }
    }

    async fn run(self, setup: &Setup) -> (Vec<Report>, bool) {
        let mut reports = Vec::new();
        let mut failed = false;
        let mut record = |name: &str, result: Result<Vec<Report>, BenchError>| match result {
            Ok(done) => reports.extend(done),
            Err(error) => {
                failed = true;
                eprintln!("{name}: {error}");
                reports.push(Report::not_measured(name, &error));
            }
        };
        if let Some(args) = self.collapse {
            let result = reported("collapse", collapse::run(setup, &args)).await;
            record("collapse", result);
        }
        if let Some(args) = self.query {
            let result = reported("query throughput", query::run(setup, &args)).await;
            record("query throughput", result.map(|report| vec![report]));
        }
        if let Some(args) = self.fanout {
            let result = reported("fan-out", fanout::run(setup, &args)).await;
            record("fan-out", result);
        }
        if let Some(args) = self.simulator {
            let result = reported("simulator", simulator::run(setup, &args)).await;
            record("simulator", result.map(|report| vec![report]));
        }
        if let Some(args) = self.soak {
            let result = reported("soak", soak::run(setup, &args)).await;
            record("soak", result.map(|report| vec![report]));
        }
        if let Some(args) = self.budget {
            let result = reported("budget", budget::run(setup, &args)).await;
            record("budget", result.map(|report| vec![report]));
        }
        (reports, failed)
    }
}
