//! Starting the simulator for a test: on `127.0.0.1:0`, with a manual clock so
//! workflows move only when the test advances them.

use registrar_gateway::simulator::{self, SimulatorConfig, SimulatorHandle};
use tokio::net::TcpListener;

/// A fresh simulator with the demo scenarios and a manual clock.
pub async fn spawn_simulator() -> SimulatorHandle {
    spawn_simulator_with(|config| config).await
}

/// A fresh manual-clock simulator, further configured by `configure`.
pub async fn spawn_simulator_with(
    configure: impl FnOnce(SimulatorConfig) -> SimulatorConfig,
) -> SimulatorHandle {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let config = configure(SimulatorConfig::default().manual_clock());
    simulator::spawn(config, listener)
        .await
        .expect("the simulator starts")
}
