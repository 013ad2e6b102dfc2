//! Where Prometheus metrics are served: on the main listener, on one of their own,
//! or nowhere.

use std::net::SocketAddr;

use clap::Args;

/// Where Prometheus metrics are served, if at all.
#[derive(Debug, Args)]
pub struct MetricsConfig {
    /// Serve `GET /metrics` on this address (e.g. an internal-only one) instead of on the main listener.
    #[arg(
        id = "metrics_listen",
        long = "metrics-listen",
        value_name = "METRICS_LISTEN",
        env = "GATEWAY_METRICS_LISTEN"
    )]
    pub listen: Option<SocketAddr>,
    /// Record no metrics and serve no `/metrics`.
    #[arg(
        id = "disable_metrics",
        long = "disable-metrics",
        env = "GATEWAY_DISABLE_METRICS",
        conflicts_with = "metrics_listen"
    )]
    pub disabled: bool,
}

impl MetricsConfig {
    /// Where `/metrics` is served.
    pub fn exposition(&self) -> MetricsExposition {
        match (self.disabled, self.listen) {
            (true, _) => MetricsExposition::Off,
            (false, Some(address)) => MetricsExposition::Separate(address),
            (false, None) => MetricsExposition::MainListener,
        }
    }
}

/// Where `/metrics` is served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricsExposition {
    /// On the gateway's own listener.
    MainListener,
    /// On a listener of its own.
    Separate(SocketAddr),
    /// Nowhere; nothing is recorded.
    Off,
}
