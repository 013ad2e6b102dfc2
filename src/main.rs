//! The `registrar-gateway` binary: parse settings, set up logging, run the gateway
//! (or the standalone simulator, or print the schema) until a shutdown signal.

use std::process::ExitCode;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use registrar_gateway::cli::{self, Cli, Command};
use registrar_gateway::config::LogFormat;
use registrar_gateway::startup::{Application, probe_health, shutdown_signal};
use registrar_gateway::{graphql, telemetry, watch};
use registrar_simulator::SimulatorConfig;

/// jemalloc rather than glibc's malloc: polling, fan-out and HTTP make many small,
/// short-lived allocations across worker threads, where glibc's allocator showed as
/// a fifth of the gateway's CPU in the fan-out profile (BENCHMARKS.md 3c).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::from_process();
    let result = match cli.command {
        Some(Command::Schema { federation }) => {
            print!(
                "{}",
                graphql::sdl(graphql::SchemaShape::federated_if(federation))
            );
            Ok(())
        }
        Some(Command::Simulate(args)) => {
            let deadline = Deadline::default();
            with_telemetry(cli.gateway.log_format, &deadline, simulate(args)).await
        }
        Some(Command::Healthcheck {
            listen,
            health_listen,
        }) => probe_health(health_listen.unwrap_or(listen))
            .await
            .map_err(Into::into),
        Some(Command::Watch(args)) => return watch::run(args).await,
        None => {
            let deadline = Deadline::default();
            let format = cli.gateway.log_format;
            with_telemetry(format, &deadline, serve(cli.gateway, Arc::clone(&deadline))).await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", cli::explain(&error.to_string()));
            ExitCode::FAILURE
        }
    }
}

/// When the process must have exited: set when the shutdown signal comes, to
/// `--shutdown-drain` + `--shutdown-timeout` later, as documented.
type Deadline = Arc<OnceLock<Instant>>;

/// Runs `work` with logs (and traces, when configured) set up, then flushes the
/// traces in what is left before `deadline` (when set).
async fn with_telemetry(
    format: LogFormat,
    deadline: &Deadline,
    work: impl Future<Output = Result<(), Box<dyn std::error::Error>>>,
) -> Result<(), Box<dyn std::error::Error>> {
    let telemetry = telemetry::init(format)?;
    let result = work.await;
    let left = deadline.get().map_or(Duration::MAX, |deadline| {
        deadline.saturating_duration_since(Instant::now())
    });
    tokio::task::block_in_place(|| telemetry.shutdown(left));
    result
}

async fn serve(
    config: registrar_gateway::config::GatewayConfig,
    deadline: Deadline,
) -> Result<(), Box<dyn std::error::Error>> {
    let app = Application::build(&config).await?;
    let stop = app.shutdown_token();
    let budget = config.http.shutdown_drain + config.http.shutdown_timeout;
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = deadline.set(Instant::now() + budget);
        stop.cancel();
    });
    app.run_until_stopped().await?;
    Ok(())
}

async fn simulate(args: SimulatorConfig) -> Result<(), Box<dyn std::error::Error>> {
    let listen = args.listen;
    registrar_simulator::run_standalone(args.into_settings()?, listen, shutdown_signal()).await?;
    Ok(())
}
