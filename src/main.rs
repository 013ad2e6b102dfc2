//! The `registrar-gateway` command line. For now: `simulate`, the standalone
//! Cloudflare Registrar API simulator (the gateway subcommand is merged separately).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use registrar_gateway::simulator::{self, SimulateArgs};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the Cloudflare Registrar API simulator.
    Simulate(SimulateArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let Command::Simulate(args) = Cli::parse().command;
    let result = match args.clone().into_config() {
        Ok(config) => simulator::run_standalone(config, args.listen).await,
        Err(err) => Err(err),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "simulator failed");
            ExitCode::FAILURE
        }
    }
}
