//! The `registrar-gateway` binary: parse settings, set up logging, run the gateway
//! (or the standalone simulator, or print the schema) until a shutdown signal.

use std::process::ExitCode;

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
            with_telemetry(cli.gateway.log_format, simulate(args)).await
        }
        Some(Command::Healthcheck {
            listen,
            health_listen,
        }) => probe_health(health_listen.unwrap_or(listen))
            .await
            .map_err(Into::into),
        Some(Command::Watch(args)) => return watch::run(args).await,
        None => with_telemetry(cli.gateway.log_format, serve(cli.gateway)).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", cli::explain(&error.to_string()));
            ExitCode::FAILURE
        }
    }
}

/// Runs `work` with logs (and traces, when configured) set up, then flushes the traces.
async fn with_telemetry(
    format: LogFormat,
    work: impl Future<Output = Result<(), Box<dyn std::error::Error>>>,
) -> Result<(), Box<dyn std::error::Error>> {
    let telemetry = telemetry::init(format)?;
    let result = work.await;
    tokio::task::block_in_place(|| telemetry.shutdown());
    result
}

async fn serve(
    config: registrar_gateway::config::GatewayConfig,
) -> Result<(), Box<dyn std::error::Error>> {
    let app = Application::build(&config).await?;
    let stop = app.shutdown_token();
    tokio::spawn(async move {
        shutdown_signal().await;
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
