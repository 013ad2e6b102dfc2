//! Building and running the gateway: binds the listener (port 0 works, for tests),
//! starts the embedded simulator in sandbox mode, wires the services together and
//! serves until told to stop.
//!
//! One concept per file: [`Application`] here, the upstream wiring (remote or
//! sandbox) in `upstream`, the stop signals in `signal`, the container health
//! probe in `health`. Each config section turns itself into its runtime settings.

mod health;
mod signal;
mod upstream;

pub use health::{ProbeError, probe_health};
pub use signal::shutdown_signal;

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::access::AccessPolicy;
use crate::config::{ConfigError, GatewayConfig, MetricsExposition};
use crate::credential::{Credential, FingerprintKey};
use crate::fair_share::FairShare;
use crate::graphql::{GatewaySchema, RegistrationPolicy, Services, build_schema};
use crate::http::metrics::ScrapeAccess;
use crate::http::{
    AppState, ConnectionSettings, ExampleDomains, Explorer, ExplorerSettings, health_router,
    router, serve,
};
use crate::metrics::Metrics;
use crate::poller::Pollers;
use crate::store::{RedisStore, RedisStoreError};
use crate::upstream::{ApiBuildError, TokenRejected};
use registrar_simulator::SimulatorHandle;
use upstream::Upstream;

/// The account used in sandbox mode when none is configured (the spec's example id).
pub const SANDBOX_ACCOUNT_ID: &str = "023e105f4ecef8ad9ca31a8372d0c353";

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A setting is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The upstream API handle could not be built.
    #[error(transparent)]
    Api(#[from] ApiBuildError),
    /// `--redis-url` is set but Redis could not be used.
    #[error(transparent)]
    Store(#[from] RedisStoreError),
    /// `--verify-credentials`: the API token did not pass Cloudflare's check.
    #[error("{variable} did not pass the check --verify-credentials asked for: {reason}")]
    TokenRejected {
        /// The variable the token came from.
        variable: &'static str,
        /// What Cloudflare said.
        reason: TokenRejected,
    },
    /// A listener could not be bound.
    #[error("could not listen on {address}: {source}")]
    Bind {
        /// The address asked for.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// A gateway that is bound and ready to serve.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    connections: ConnectionSettings,
    /// `/metrics` on a listener of its own (`--metrics-listen`).
    metrics_listener: Option<(TcpListener, axum::Router)>,
    /// `/healthz` and `/readyz` on a listener of their own (`--health-listen`).
    health_listener: Option<TcpListener>,
    /// Each client's connections are capped on the main listener.
    shares: FairShare,
    shutdown: CancellationToken,
    pollers: Pollers,
    /// The GraphQL schema the routes serve.
    schema: GatewaySchema,
    simulator: Option<SimulatorHandle>,
    /// Whether the explorer is served at `/` (logged at start).
    explorer: bool,
}

impl Application {
    /// Binds the listener and builds every service from `config`.
    pub async fn build(config: &GatewayConfig) -> Result<Self, StartupError> {
        config.validate()?;
        let listener = bind(config.listen).await?;
        let exposition = config.metrics.exposition();
        let metrics = match exposition {
            MetricsExposition::Off => Metrics::disabled(),
            MetricsExposition::MainListener | MetricsExposition::Separate(_) => Metrics::new(),
        };
        let metrics_listener = match exposition {
            MetricsExposition::Separate(address) => {
                Some((bind(address).await?, metrics_router(&metrics, None)))
            }
            MetricsExposition::MainListener | MetricsExposition::Off => None,
        };
        let health_listener = match config.http.health_listen {
            Some(address) => Some(bind(address).await?),
            None => None,
        };
        let shutdown = CancellationToken::new();
        let store = connect_store(config, &metrics, &shutdown).await?;
        let upstream = Upstream::connect(config).await?;
        // Shared by the replicas, so one credential has one fingerprint (one cache
        // entry, one poller, one budget) everywhere.
        let fingerprint_key = match &store {
            Some(store) => store.fingerprint_key(),
            None => FingerprintKey::random(),
        };
        let server_credential = upstream
            .credentials
            .clone()
            .map(|credentials| Credential::new(credentials, &fingerprint_key));
        let access_keys = config.access.keys()?;
        let access = AccessPolicy::new(
            config.access.credential_mode,
            server_credential,
            access_keys,
            fingerprint_key,
        );
        let registrations =
            upstream.registrations(config, shutdown.clone(), &metrics, store.as_ref())?;
        let pollers = registrations.pollers().clone();
        // Registering costs money: on by default only against the embedded simulator.
        let registration = RegistrationPolicy {
            enabled: upstream.simulator.is_some() || config.upstream.enable_registration,
        };
        let shares = FairShare::new(
            config
                .fair_share
                .settings(config.upstream.budget_settings()),
        );
        let schema = build_schema(
            config.schema_shape(),
            Services {
                registrations,
                access: access.clone(),
                shares: shares.clone(),
                query_limits: config.limits.query_limits(),
                registration,
                metrics: metrics.clone(),
            },
            config.limits.operation_limits(),
        );
        let explorer = (!config.http.disable_explorer).then(|| {
            Explorer::new(&ExplorerSettings {
                domains: match upstream.simulator {
                    Some(_) => ExampleDomains::sandbox(),
                    None => ExampleDomains::example(),
                },
                introspection: !config.limits.disable_introspection,
                access_keys: !access_keys.is_empty(),
            })
        });
        let explorer_served = explorer.is_some();
        let websocket = config
            .subscriptions
            .websocket_settings(config.http.body_limit);
        // On the main listener with access keys on, `/metrics` wants a key too: it
        // names credentials' fingerprints and what is left of their budgets.
        let metrics_access = (!access_keys.is_empty()).then(|| ScrapeAccess {
            access: access.clone(),
            shares: shares.clone(),
        });
        let state = AppState::new(
            schema.clone(),
            explorer,
            shutdown.clone(),
            websocket,
            metrics.clone(),
        );
        let mut router = router(state, &config.http.settings(config.listen));
        if exposition == MetricsExposition::MainListener {
            router = router.merge(metrics_router(&metrics, metrics_access));
        }
        Ok(Self {
            listener,
            router,
            connections: config.http.connection_settings(),
            metrics_listener,
            health_listener,
            shares,
            shutdown,
            pollers,
            schema,
            simulator: upstream.simulator,
            explorer: explorer_served,
        })
    }

    /// The address the gateway listens on (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The address `/metrics` is served on apart from the gateway (`--metrics-listen`).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        let (listener, _) = self.metrics_listener.as_ref()?;
        Some(
            listener
                .local_addr()
                .expect("a bound listener has an address"),
        )
    }

    /// The address `/healthz` and `/readyz` are served on apart (`--health-listen`).
    pub fn health_addr(&self) -> Option<SocketAddr> {
        let listener = self.health_listener.as_ref()?;
        Some(
            listener
                .local_addr()
                .expect("a bound listener has an address"),
        )
    }

    /// The embedded simulator, in sandbox mode.
    pub fn simulator(&self) -> Option<&SimulatorHandle> {
        self.simulator.as_ref()
    }

    /// The shared pollers (their counters show the poll economy).
    pub fn pollers(&self) -> &Pollers {
        &self.pollers
    }

    /// The GraphQL schema the routes serve (the same services and caches), for
    /// running operations in-process.
    pub fn schema(&self) -> &GatewaySchema {
        &self.schema
    }

    /// Cancelling this token stops the gateway gracefully.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Serves until the shutdown token is cancelled, then runs the shutdown
    /// sequence (readiness 503 for the drain period, listener closed, open
    /// connections given the shutdown timeout).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let address = self.local_addr();
        match self.explorer {
            true => {
                let explorer = format!("http://{address}/");
                tracing::info!(%address, %explorer, "registrar-gateway listening");
            }
            false => tracing::info!(%address, "registrar-gateway listening"),
        }
        let shutdown = self.shutdown.clone();
        // The side listeners run the same shutdown sequence at the same time, and
        // are waited for: when this returns, every listener and connection is closed.
        let mut side_listeners = tokio::task::JoinSet::new();
        if let Some((listener, router)) = self.metrics_listener {
            let address = listener.local_addr()?;
            tracing::info!(metrics_address = %address, "serving /metrics");
            // The same connection hygiene as the main listener: a slow scraper cannot hold it open.
            let (connections, shutdown) = (self.connections, shutdown.clone());
            side_listeners.spawn(serve(listener, router, connections, None, shutdown));
        }
        if let Some(listener) = self.health_listener {
            let address = listener.local_addr()?;
            tracing::info!(health_address = %address, "serving /healthz and /readyz");
            let router = health_router(shutdown.clone());
            let (connections, shutdown) = (self.connections, shutdown.clone());
            side_listeners.spawn(serve(listener, router, connections, None, shutdown));
        }
        let clients = Some(self.shares);
        serve(
            self.listener,
            self.router,
            self.connections,
            clients,
            shutdown,
        )
        .await;
        side_listeners.join_all().await;
        if let Some(simulator) = self.simulator {
            simulator.shutdown().await;
        }
        Ok(())
    }
}

/// The Redis store, when `--redis-url` is set; its heartbeat stops with `shutdown`.
async fn connect_store(
    config: &GatewayConfig,
    metrics: &Metrics,
    shutdown: &CancellationToken,
) -> Result<Option<RedisStore>, StartupError> {
    let Some(settings) = config.store.settings() else {
        return Ok(None);
    };
    let store = RedisStore::connect(&settings, metrics.clone(), shutdown.clone()).await?;
    Ok(Some(store))
}

/// `GET /metrics` alone: merged into the main router, or served on its own listener;
/// for callers `access` admits with a key, when given. Scrapes skip the main router's
/// layers (request ids, spans, CORS): nothing to trace.
fn metrics_router(metrics: &Metrics, access: Option<ScrapeAccess>) -> axum::Router {
    crate::http::metrics::router(metrics.clone(), access)
}

async fn bind(address: SocketAddr) -> Result<TcpListener, StartupError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| StartupError::Bind { address, source })
}
