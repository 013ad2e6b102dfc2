//! Command line and environment: one typed, documented struct per component,
//! parsed once at start-up, failing fast with a message that names the setting.

mod subscriptions;
mod upstream;
mod validate;

pub use subscriptions::SubscriptionConfig;
pub use upstream::{UpstreamConfig, UpstreamTarget};

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use secrecy::SecretString;

use crate::access::CredentialMode;
use crate::cache::{CacheSettings, TtlPolicy};
use crate::domain::AccountId;
use crate::graphql::OperationLimits;
pub use crate::telemetry::LogFormat;

/// The official API root.
pub const CLOUDFLARE_BASE_URL: &str = "https://api.cloudflare.com/client/v4";

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
    Simulate(crate::simulator::SimulateArgs),
    /// Print the GraphQL schema (SDL) and exit.
    Schema,
    /// Probe a running gateway's /healthz (for container health checks); exits 0 when healthy.
    Healthcheck {
        /// The gateway's address; 0.0.0.0 and :: are probed on loopback.
        #[arg(long, env = "GATEWAY_LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
    },
}

/// Everything the gateway needs to run.
#[derive(Debug, Args)]
pub struct GatewayConfig {
    /// Address the gateway listens on.
    #[arg(long, env = "GATEWAY_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Log lines as text or JSON (the level is set by RUST_LOG, default info).
    #[arg(long, env = "GATEWAY_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(flatten, next_help_heading = "Upstream (Cloudflare API)")]
    pub upstream: UpstreamConfig,
    #[command(flatten, next_help_heading = "Cache")]
    pub cache: CacheConfig,
    #[command(flatten, next_help_heading = "HTTP server")]
    pub http: HttpConfig,
    #[command(flatten, next_help_heading = "Subscriptions and polling")]
    pub subscriptions: SubscriptionConfig,
    #[command(flatten, next_help_heading = "Access")]
    pub access: AccessConfig,
    #[command(flatten, next_help_heading = "Operation limits")]
    pub limits: LimitsConfig,
    #[command(flatten, next_help_heading = "Metrics")]
    pub metrics: MetricsConfig,
}

/// Where Prometheus metrics are served, if at all.
#[derive(Debug, Args)]
pub struct MetricsConfig {
    /// Serve `GET /metrics` on this address (e.g. an internal-only one) instead of on the main listener.
    #[arg(long, env = "GATEWAY_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Record no metrics and serve no `/metrics`.
    #[arg(
        long,
        env = "GATEWAY_DISABLE_METRICS",
        conflicts_with = "metrics_listen"
    )]
    pub disable_metrics: bool,
}

impl MetricsConfig {
    /// Where `/metrics` is served.
    pub fn exposition(&self) -> MetricsExposition {
        match (self.disable_metrics, self.metrics_listen) {
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

/// Cache size and freshness by workflow state.
#[derive(Debug, Args)]
pub struct CacheConfig {
    /// Most registrations held in the cache.
    #[arg(
        long = "cache-capacity",
        env = "GATEWAY_CACHE_CAPACITY",
        default_value_t = 100_000
    )]
    pub capacity: u64,
    /// Freshness of pending and in-progress statuses.
    #[arg(long = "cache-ttl-active", env = "GATEWAY_CACHE_TTL_ACTIVE", default_value = "2s", value_parser = duration)]
    pub ttl_active: Duration,
    /// Freshness of blocked and action-required statuses.
    #[arg(long = "cache-ttl-waiting", env = "GATEWAY_CACHE_TTL_WAITING", default_value = "15s", value_parser = duration)]
    pub ttl_waiting: Duration,
    /// Freshness of succeeded and failed statuses (they never change).
    #[arg(long = "cache-ttl-terminal", env = "GATEWAY_CACHE_TTL_TERMINAL", default_value = "1h", value_parser = duration)]
    pub ttl_terminal: Duration,
    /// Freshness of "no workflow for this domain".
    #[arg(long = "cache-ttl-not-found", env = "GATEWAY_CACHE_TTL_NOT_FOUND", default_value = "5s", value_parser = duration)]
    pub ttl_not_found: Duration,
    /// How long a failed upstream read is shared with later readers of the same status, so a failing upstream is not hammered; 0s turns this off.
    #[arg(long = "cache-ttl-error", env = "GATEWAY_CACHE_TTL_ERROR", default_value = "1s", value_parser = duration)]
    pub ttl_error: Duration,
    /// How long past its freshness a cached status is still served (flagged `stale`) when the upstream is unavailable, slow or rate limited.
    #[arg(long, env = "GATEWAY_STALE_IF_ERROR", default_value = "5m", value_parser = duration)]
    pub stale_if_error: Duration,
}

/// The HTTP server's limits and cross-origin policy.
#[derive(Debug, Args)]
pub struct HttpConfig {
    /// Limit on handling one HTTP request (answers 408 past it).
    #[arg(long, env = "GATEWAY_REQUEST_TIMEOUT", default_value = "30s", value_parser = duration)]
    pub request_timeout: Duration,
    /// Largest request body accepted, in bytes (answers 413 past it).
    #[arg(long, env = "GATEWAY_BODY_LIMIT", default_value_t = 64 * 1024)]
    pub body_limit: usize,
    /// Origins allowed to call the API from a browser (comma-separated; `*` for any).
    #[arg(long, env = "GATEWAY_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// Most domains in one registrationStatuses query.
    #[arg(long, env = "GATEWAY_MAX_DOMAINS", default_value_t = 100)]
    pub max_domains: usize,
}

/// Who may call the gateway and whose Cloudflare credential it uses.
#[derive(Debug, Args)]
pub struct AccessConfig {
    /// Whose Cloudflare credential upstream calls use: `server` (the gateway's own), `pass-through` (the caller's `Authorization: Bearer` or `X-Auth-Email` + `X-Auth-Key`; refused without one) or `pass-through-or-server` (the caller's when sent, else the gateway's).
    #[arg(long, env = "GATEWAY_CREDENTIAL_MODE", value_enum, default_value_t = CredentialMode::Server)]
    pub credential_mode: CredentialMode,
    /// A key callers must present in `X-Gateway-Key` (or, in server mode, as `Authorization: Bearer`); repeatable, comma-separated in the env var; none means no key is required.
    #[arg(
        long = "access-key",
        env = "GATEWAY_ACCESS_KEYS",
        value_delimiter = ',',
        hide_env_values = true,
        value_parser = secret
    )]
    pub access_keys: Vec<SecretString>,
}

/// Bounds on what one GraphQL operation may ask for.
#[derive(Debug, Args)]
pub struct LimitsConfig {
    /// Deepest nesting of fields and fragment spreads in an operation (answers OPERATION_TOO_DEEP past it).
    #[arg(long, env = "GATEWAY_MAX_DEPTH", default_value_t = 12)]
    pub max_depth: usize,
    /// Most fields in an operation, fragments expanded (answers OPERATION_TOO_COMPLEX past it).
    #[arg(long, env = "GATEWAY_MAX_COMPLEXITY", default_value_t = 1000)]
    pub max_complexity: u64,
    /// Most root fields in an operation, each alias counting (answers TOO_MANY_ROOT_FIELDS past it).
    #[arg(long, env = "GATEWAY_MAX_ROOT_FIELDS", default_value_t = 20)]
    pub max_root_fields: u64,
    /// Most registration statuses one operation may look up: one per registrationStatus, one per domain of registrationStatuses (answers TOO_MANY_LOOKUPS past it).
    #[arg(long, env = "GATEWAY_MAX_LOOKUPS", default_value_t = 100)]
    pub max_lookups: u64,
    /// Refuse `__schema` and `__type` queries (answers INTROSPECTION_DISABLED).
    #[arg(long, env = "GATEWAY_DISABLE_INTROSPECTION")]
    pub disable_introspection: bool,
}

impl LimitsConfig {
    /// The limits the schema enforces.
    pub fn operation_limits(&self) -> OperationLimits {
        OperationLimits {
            max_depth: self.max_depth,
            max_complexity: self.max_complexity,
            max_root_fields: self.max_root_fields,
            max_lookups: self.max_lookups,
            introspection: !self.disable_introspection,
        }
    }
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

impl CacheConfig {
    /// The cache's settings.
    pub fn settings(&self) -> CacheSettings {
        CacheSettings {
            capacity: self.capacity,
            ttl: TtlPolicy {
                active: self.ttl_active,
                waiting: self.ttl_waiting,
                terminal: self.ttl_terminal,
                not_found: self.ttl_not_found,
            },
            stale_if_error: self.stale_if_error,
            error_ttl: self.ttl_error,
        }
    }
}

/// A credential or key. Only emptiness is refused here: clap quotes a refused value
/// in its message, so the format is checked in [`GatewayConfig::validate`], which never shows it.
pub(super) fn secret(value: &str) -> Result<SecretString, String> {
    if value.is_empty() {
        return Err("must not be empty".to_owned());
    }
    Ok(SecretString::from(value))
}

pub(super) fn account_id(value: &str) -> Result<AccountId, String> {
    AccountId::parse(value).map_err(|error| error.to_string())
}

/// Parses `500ms`, `2s`, `5m`, `1h`.
pub fn duration(value: &str) -> Result<Duration, String> {
    humantime::parse_duration(value)
        .map_err(|error| format!("{error} (expected e.g. 500ms, 2s, 5m)"))
}

impl GatewayConfig {
    /// Parses settings the way the binary does (flags, then environment), for tests and embedding.
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
        Only::try_parse_from(args).map(|only| only.gateway)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

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
