//! The binary's command line: the gateway (no subcommand) or one of its
//! subcommands. Apart from [`crate::config`] so that the gateway's settings do not
//! import the simulator's (whose flags `simulate` takes).

use std::net::SocketAddr;

use clap::{Parser, Subcommand};

use crate::config::GatewayConfig;
use crate::simulator::SimulatorConfig;

/// `registrar-gateway`: GraphQL over Cloudflare Registrar's registration workflows.
#[derive(Debug, Parser)]
#[command(
    name = "registrar-gateway",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// What to run; the gateway when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Gateway settings (when no subcommand is given).
    #[command(flatten)]
    pub gateway: GatewayConfig,
}

/// The binary's subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the simulator of the Cloudflare Registrar API on its own.
    Simulate(SimulatorConfig),
    /// Print the GraphQL schema (SDL) and exit.
    Schema {
        /// Print the Apollo Federation v2 subgraph SDL (what `--federation` serves as `_service { sdl }`).
        #[arg(long)]
        federation: bool,
    },
    /// Probe a running gateway's /healthz (for container health checks); exits 0 when healthy.
    Healthcheck {
        /// The gateway's address; 0.0.0.0 and :: are probed on loopback.
        #[arg(long, env = "GATEWAY_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// The gateway's health listener (`--health-listen`): probed instead of `--listen` when set.
        #[arg(long, env = "GATEWAY_HEALTH_LISTEN")]
        health_listen: Option<SocketAddr>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
