//! Command line and environment: one typed, documented struct per component,
//! parsed once at start-up, failing fast with a message that names the setting.

mod validate;

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use reqwest::Url;
use secrecy::SecretString;

use crate::access::CredentialMode;
use crate::budget::BudgetSettings;
use crate::cache::{CacheSettings, TtlPolicy};
use crate::domain::AccountId;
use crate::graphql::OperationLimits;
use crate::poller::{Pacing, PollerSettings};
use crate::upstream::{ClientSettings, Credentials, RetryPolicy};

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
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Where the upstream is and how to authenticate to it.
#[derive(Debug, Args)]
pub struct UpstreamConfig {
    /// API root. Unset and without credentials, the gateway runs its embedded simulator (sandbox mode).
    #[arg(long, env = "CLOUDFLARE_BASE_URL")]
    pub base_url: Option<Url>,
    /// API token with Registrar permissions (sent as `Authorization: Bearer`).
    #[arg(long, env = "CLOUDFLARE_API_TOKEN", hide_env_values = true, value_parser = secret)]
    pub api_token: Option<SecretString>,
    /// Account email for a global API key (with --api-key).
    #[arg(long, env = "CLOUDFLARE_EMAIL", hide_env_values = true, value_parser = secret)]
    pub email: Option<SecretString>,
    /// Global API key (with --email).
    #[arg(long, env = "CLOUDFLARE_API_KEY", hide_env_values = true, value_parser = secret)]
    pub api_key: Option<SecretString>,
    /// Account used when a query names none.
    #[arg(long, env = "CLOUDFLARE_ACCOUNT_ID", value_parser = account_id)]
    pub account_id: Option<AccountId>,
    /// Limit on connecting to the upstream.
    #[arg(long, env = "GATEWAY_UPSTREAM_CONNECT_TIMEOUT", default_value = "5s", value_parser = duration)]
    pub upstream_connect_timeout: Duration,
    /// Limit on one upstream request, connection to last byte.
    #[arg(long, env = "GATEWAY_UPSTREAM_TIMEOUT", default_value = "8s", value_parser = duration)]
    pub upstream_timeout: Duration,
    /// Upstream requests allowed per credential in any --upstream-budget-window (Cloudflare allows 1,200 per 5 minutes and locks the credential out for 5 minutes past it).
    #[arg(long, env = "GATEWAY_UPSTREAM_BUDGET", default_value_t = 1200)]
    pub upstream_budget: u32,
    /// The window of --upstream-budget.
    #[arg(long, env = "GATEWAY_UPSTREAM_BUDGET_WINDOW", default_value = "5m", value_parser = duration)]
    pub upstream_budget_window: Duration,
    /// Share of the budget that polls of blocked or paused workflows may use, so they never starve workflows that move.
    #[arg(
        long,
        env = "GATEWAY_UPSTREAM_BUDGET_BACKGROUND_SHARE",
        default_value_t = 0.25
    )]
    pub upstream_budget_background_share: f64,
    /// Retries of a failed status read (connect errors, timeouts, 5xx, 429 with a short Retry-After); 0 turns retries off.
    #[arg(long, env = "GATEWAY_UPSTREAM_RETRIES", default_value_t = 2)]
    pub upstream_retries: u32,
    /// Backoff before the first retry; it doubles for each further one (with up to 25% jitter).
    #[arg(long, env = "GATEWAY_UPSTREAM_RETRY_INITIAL", default_value = "500ms", value_parser = duration)]
    pub upstream_retry_initial: Duration,
    /// Cap on one backoff, and the longest upstream Retry-After worth waiting for before answering UPSTREAM_RATE_LIMITED.
    #[arg(long, env = "GATEWAY_UPSTREAM_RETRY_MAX", default_value = "8s", value_parser = duration)]
    pub upstream_retry_max: Duration,
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

/// How shared pollers pace themselves and how many subscribers the gateway serves.
#[derive(Debug, Args)]
pub struct SubscriptionConfig {
    /// First poll interval while a workflow moves (pending, in progress).
    #[arg(long, env = "GATEWAY_POLL_INITIAL", default_value = "2s", value_parser = duration)]
    pub poll_initial: Duration,
    /// Longest poll interval while a workflow moves.
    #[arg(long, env = "GATEWAY_POLL_MAX", default_value = "30s", value_parser = duration)]
    pub poll_max: Duration,
    /// Growth of the interval between polls that see no change.
    #[arg(long, env = "GATEWAY_POLL_MULTIPLIER", default_value_t = 1.5)]
    pub poll_multiplier: f64,
    /// First poll interval while blocked, or waiting on the user for keep-watching subscribers.
    #[arg(long, env = "GATEWAY_POLL_BLOCKED_INITIAL", default_value = "1m", value_parser = duration)]
    pub poll_blocked_initial: Duration,
    /// Longest poll interval while blocked or waiting on the user.
    #[arg(long, env = "GATEWAY_POLL_BLOCKED_MAX", default_value = "10m", value_parser = duration)]
    pub poll_blocked_max: Duration,
    /// Share of each interval randomised either way, so pollers do not align.
    #[arg(long, env = "GATEWAY_POLL_JITTER", default_value_t = 0.1)]
    pub poll_jitter: f64,
    /// How long a blocked workflow is watched before subscribers get WATCH_EXPIRED.
    #[arg(long, env = "GATEWAY_BLOCKED_MAX_WATCH", default_value = "1h", value_parser = duration)]
    pub blocked_max_watch: Duration,
    /// How long a poller outlives its last subscriber.
    #[arg(long, env = "GATEWAY_POLLER_GRACE", default_value = "5s", value_parser = duration)]
    pub poller_grace: Duration,
    /// Consecutive failed polls before subscribers are told the gateway gave up.
    #[arg(long, env = "GATEWAY_POLL_MAX_FAILURES", default_value_t = 8)]
    pub poll_max_failures: u32,
    /// Most subscriptions across all connections.
    #[arg(long, env = "GATEWAY_MAX_SUBSCRIPTIONS", default_value_t = 100_000)]
    pub max_subscriptions: usize,
    /// Most subscriptions on one websocket connection.
    #[arg(
        long,
        env = "GATEWAY_MAX_SUBSCRIPTIONS_PER_CONNECTION",
        default_value_t = 100
    )]
    pub max_subscriptions_per_connection: usize,
    /// How long a websocket may stay open without `connection_init`.
    #[arg(long, env = "GATEWAY_WS_INIT_TIMEOUT", default_value = "10s", value_parser = duration)]
    pub ws_init_timeout: Duration,
    /// Interval of server pings on idle websockets (keeps proxies from cutting them).
    #[arg(long, env = "GATEWAY_WS_KEEPALIVE", default_value = "15s", value_parser = duration)]
    pub ws_keepalive: Duration,
}

impl SubscriptionConfig {
    /// The pollers' settings.
    pub fn poller_settings(&self) -> PollerSettings {
        PollerSettings {
            pacing: Pacing {
                initial: self.poll_initial,
                max: self.poll_max,
                multiplier: self.poll_multiplier,
                slow_initial: self.poll_blocked_initial,
                slow_max: self.poll_blocked_max,
                jitter: self.poll_jitter,
            },
            blocked_max_watch: self.blocked_max_watch,
            grace: self.poller_grace,
            max_failures: self.poll_max_failures,
            max_watchers: self.max_subscriptions,
        }
    }
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

/// What the gateway talks to, decided from the credentials and base URL given.
#[derive(Debug)]
pub enum UpstreamTarget {
    /// A real (or standalone simulated) API at `base_url`.
    Remote {
        /// API root.
        base_url: Url,
        /// The gateway's own credential; absent only when callers bring theirs.
        credentials: Option<Credentials>,
    },
    /// No credentials and no base URL: the embedded simulator.
    Sandbox,
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

impl UpstreamConfig {
    /// Decides between a remote API and the sandbox; a token wins over a global key.
    /// In `pass-through` mode a remote API needs no credentials of the gateway's own.
    pub fn target(&self, mode: CredentialMode) -> Result<UpstreamTarget, ConfigError> {
        let credentials = match (&self.api_token, &self.email, &self.api_key) {
            (Some(token), _, _) => Some(Credentials::ApiToken(token.clone())),
            (None, Some(email), Some(key)) => Some(Credentials::GlobalApiKey {
                email: email.clone(),
                key: key.clone(),
            }),
            (None, Some(_), None) => {
                return Err(incomplete("CLOUDFLARE_API_KEY", "CLOUDFLARE_EMAIL"));
            }
            (None, None, Some(_)) => {
                return Err(incomplete("CLOUDFLARE_EMAIL", "CLOUDFLARE_API_KEY"));
            }
            (None, None, None) => None,
        };
        match (credentials, &self.base_url) {
            (Some(credentials), base_url) => Ok(UpstreamTarget::Remote {
                base_url: base_url.clone().unwrap_or_else(cloudflare_base_url),
                credentials: Some(credentials),
            }),
            (None, None) => Ok(UpstreamTarget::Sandbox),
            (None, Some(base_url)) if mode == CredentialMode::PassThrough => {
                Ok(UpstreamTarget::Remote {
                    base_url: base_url.clone(),
                    credentials: None,
                })
            }
            (None, Some(_)) => Err(ConfigError::MissingCredentials),
        }
    }

    /// The per-credential upstream budget.
    pub fn budget_settings(&self) -> BudgetSettings {
        BudgetSettings {
            limit: self.upstream_budget,
            window: self.upstream_budget_window,
            background_share: self.upstream_budget_background_share,
        }
    }

    /// Client settings for `base_url`.
    pub fn client_settings(&self, base_url: Url) -> ClientSettings {
        ClientSettings {
            base_url,
            connect_timeout: self.upstream_connect_timeout,
            request_timeout: self.upstream_timeout,
            retry: RetryPolicy {
                retries: self.upstream_retries,
                initial: self.upstream_retry_initial,
                max: self.upstream_retry_max,
            },
        }
    }
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

fn incomplete(missing: &'static str, given: &'static str) -> ConfigError {
    ConfigError::IncompleteApiKey { missing, given }
}

fn cloudflare_base_url() -> Url {
    Url::parse(CLOUDFLARE_BASE_URL).expect("the official base URL is a valid URL")
}

/// A credential or key. Only emptiness is refused here: clap quotes a refused value
/// in its message, so the format is checked in [`GatewayConfig::validate`], which never shows it.
fn secret(value: &str) -> Result<SecretString, String> {
    if value.is_empty() {
        return Err("must not be empty".to_owned());
    }
    Ok(SecretString::from(value))
}

fn account_id(value: &str) -> Result<AccountId, String> {
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
