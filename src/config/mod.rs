//! Command line and environment: one typed, documented struct per component,
//! parsed once at start-up, failing fast with a message that names the setting.

mod access;
mod cache;
mod environment;
mod fair_share;
mod http;
mod limits;
mod metrics;
mod secret_file;
mod store;
mod subscriptions;
mod upstream;
mod validate;

pub use access::AccessConfig;
pub use cache::CacheConfig;
pub use environment::empty_means_unset;
pub use fair_share::FairShareConfig;
pub use http::HttpConfig;
pub use limits::LimitsConfig;
pub use metrics::{MetricsConfig, MetricsExposition};
pub use secret_file::SecretLines;
pub use store::RedisStoreConfig;
pub use subscriptions::SubscriptionConfig;
pub use upstream::{GivenCredentials, UpstreamConfig, UpstreamTarget};

use std::net::SocketAddr;

use clap::{Args, CommandFactory, FromArgMatches, Parser};

/// Defined beside the logging it configures, so that telemetry imports nothing of config.
pub use crate::telemetry::LogFormat;

use crate::graphql::SchemaShape;

/// The official API root.
pub const CLOUDFLARE_BASE_URL: &str = "https://api.cloudflare.com/client/v4";

/// Everything the gateway needs to run.
#[derive(Debug, Args)]
pub struct GatewayConfig {
    /// Address the gateway listens on.
    #[arg(long, env = "GATEWAY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Log lines as text or JSON (the level is set by RUST_LOG, default info).
    #[arg(long, env = "GATEWAY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Serve the schema as an Apollo Federation v2 subgraph (`_service`, `_entities`, `Domain @key(fields: "name")` with `registrationStatus`) for a federated gateway to compose.
    #[arg(long, env = "GATEWAY_FEDERATION")]
    pub federation: bool,
    /// The Cloudflare API: where, with which credentials, how patiently.
    #[command(flatten, next_help_heading = "Upstream (Cloudflare API)")]
    pub upstream: UpstreamConfig,
    /// How long statuses are served from the cache.
    #[command(flatten, next_help_heading = "Cache")]
    pub cache: CacheConfig,
    /// The HTTP server: its limits, CORS and the explorer.
    #[command(flatten, next_help_heading = "HTTP server")]
    pub http: HttpConfig,
    /// Subscriptions, websockets and the shared pollers.
    #[command(flatten, next_help_heading = "Subscriptions and polling")]
    pub subscriptions: SubscriptionConfig,
    /// Whose Cloudflare credential a request uses, and the gateway access keys.
    #[command(flatten, next_help_heading = "Access")]
    pub access: AccessConfig,
    /// What one client may take of the budget, subscriptions and credentials.
    #[command(flatten, next_help_heading = "Fair shares")]
    pub fair_share: FairShareConfig,
    /// Operation limits, checked before anything runs.
    #[command(flatten, next_help_heading = "Operation limits")]
    pub limits: LimitsConfig,
    /// The Prometheus metrics endpoint.
    #[command(flatten, next_help_heading = "Metrics")]
    pub metrics: MetricsConfig,
    /// Redis shared by replicas (scaling out).
    #[command(flatten, next_help_heading = "Scaling out (Redis)")]
    pub store: RedisStoreConfig,
}

/// A setting that makes the configuration unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Only one half of a global API key was given.
    #[error(
        "{missing} is required with {given} (a global API key needs both); or set CLOUDFLARE_API_TOKEN instead"
    )]
    IncompleteApiKey {
        /// The setting that is missing.
        missing: &'static str,
        /// The setting that was given.
        given: &'static str,
    },
    /// A base URL without credentials.
    #[error(
        "CLOUDFLARE_BASE_URL is set but no credentials are: set CLOUDFLARE_API_TOKEN (or CLOUDFLARE_EMAIL and CLOUDFLARE_API_KEY), set GATEWAY_CREDENTIAL_MODE=pass-through, or unset CLOUDFLARE_BASE_URL to use the embedded simulator"
    )]
    MissingCredentials,
    /// Settings that parse but cannot work (together).
    #[error("{0}")]
    Unusable(String),
}

impl GatewayConfig {
    /// The schema the gateway serves.
    pub fn schema_shape(&self) -> SchemaShape {
        SchemaShape::federated_if(self.federation)
    }

    /// Parses settings the way the binary does (flags, then environment, an empty
    /// variable counting as unset), for tests and embedding.
    pub fn from_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            gateway: GatewayConfig,
        }
        let mut command = empty_means_unset(Only::command());
        let mut matches = command.try_get_matches_from_mut(args)?;
        Only::from_arg_matches_mut(&mut matches)
            .map(|only| only.gateway)
            .map_err(|error| error.format(&mut command))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::CredentialMode;

    #[test]
    fn defaults_parse_and_half_a_global_key_is_refused() {
        let config = GatewayConfig::from_args(["gw", "--email", "me@example.com"]).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        let error = config
            .upstream
            .target(CredentialMode::Server)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("CLOUDFLARE_API_KEY is required with CLOUDFLARE_EMAIL"),
            "{error}"
        );
    }

    #[test]
    fn a_bad_duration_names_the_expected_form() {
        let error = GatewayConfig::from_args(["gw", "--cache-ttl-active", "soon"])
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("--cache-ttl-active") && error.contains("expected e.g. 500ms"),
            "{error}"
        );
    }
}
