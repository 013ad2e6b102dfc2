//! The `registrar-gateway` binary: parse settings, set up logging, run the gateway
//! (or the standalone simulator, or print the schema) until a shutdown signal.

use std::process::ExitCode;

use clap::Parser;
use registrar_gateway::cli::{Cli, Command};
use registrar_gateway::simulator::SimulateArgs;
use registrar_gateway::startup::{Application, probe_health, shutdown_signal};
use registrar_gateway::{graphql, simulator, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Schema) => {
            print!("{}", graphql::sdl());
            Ok(())
        }
        Some(Command::Simulate(args)) => {
            telemetry::init(cli.gateway.log_format);
            simulate(args).await
        }
        Some(Command::Healthcheck { listen }) => probe_health(listen).await.map_err(Into::into),
        None => {
            telemetry::init(cli.gateway.log_format);
            serve(cli.gateway).await
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
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

async fn simulate(args: SimulateArgs) -> Result<(), Box<dyn std::error::Error>> {
    let listen = args.listen;
    simulator::run_standalone(args.into_config()?, listen, shutdown_signal()).await?;
    Ok(())
}
