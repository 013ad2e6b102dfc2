//! Building and running the gateway: binds the listener (port 0 works, for tests),
//! starts the embedded simulator in sandbox mode, wires the services together and
//! serves until told to stop.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::access::AccessPolicy;
use crate::budget::Budget;
use crate::cache::StatusCache;
use crate::config::{ConfigError, GatewayConfig, UpstreamTarget};
use crate::domain::AccountId;
use crate::graphql::{QueryLimits, RegistrationPolicy, build_schema};
use crate::http::{AppState, HttpSettings, WsSettings, example_query, router};
use crate::poller::Pollers;
use crate::registrations::Registrations;
use crate::simulator::{self, SimulatorConfig, SimulatorHandle};
use crate::upstream::{
    ClientBuildError, ClientSettings, Credential, Credentials, FingerprintKey, UpstreamClient,
};

/// The account used in sandbox mode when none is configured (the spec's example id).
pub const SANDBOX_ACCOUNT_ID: &str = "023e105f4ecef8ad9ca31a8372d0c353";
/// The token the gateway presents to its embedded simulator.
const SANDBOX_TOKEN: &str = "sandbox-token";
/// The demo domain GraphiQL opens on in sandbox mode.
const SANDBOX_EXAMPLE_DOMAIN: &str = "demo-action-required.com";
/// The domain GraphiQL opens on against the real API (the spec's example).
const EXAMPLE_DOMAIN: &str = "example.com";

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// A setting is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The upstream client could not be built.
    #[error(transparent)]
    Client(#[from] ClientBuildError),
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
    shutdown: CancellationToken,
    pollers: Pollers,
    simulator: Option<SimulatorHandle>,
}

impl Application {
    /// Binds the listener and builds every service from `config`.
    pub async fn build(config: &GatewayConfig) -> Result<Self, StartupError> {
        config.validate()?;
        let listener = bind(config.listen).await?;
        let upstream = Upstream::connect(config).await?;
        let shutdown = CancellationToken::new();
        let fingerprint_key = FingerprintKey::random();
        let server_credential = upstream
            .credentials
            .clone()
            .map(|credentials| Credential::new(credentials, &fingerprint_key));
        let access = AccessPolicy::new(
            config.access.credential_mode,
            server_credential,
            &config.access.access_keys,
            fingerprint_key,
        );
        let registrations = upstream.registrations(config, shutdown.clone())?;
        let pollers = registrations.pollers().clone();
        let query_limits = QueryLimits {
            max_domains: config.http.max_domains,
        };
        let limits = config.limits.operation_limits();
        // Registering costs money: on by default only against the embedded simulator.
        let registration = RegistrationPolicy {
            enabled: upstream.simulator.is_some() || config.upstream.enable_registration,
        };
        let schema = build_schema(
            registrations,
            access.clone(),
            query_limits,
            registration,
            limits,
        );
        let example_domain = match upstream.simulator {
            Some(_) => SANDBOX_EXAMPLE_DOMAIN,
            None => EXAMPLE_DOMAIN,
        };
        let default_query = example_query(example_domain);
        let websocket = websocket_settings(config);
        let state = AppState::new(schema, access, &default_query, shutdown.clone(), websocket);
        let http = HttpSettings {
            request_timeout: config.http.request_timeout,
            body_limit: config.http.body_limit,
            cors_origins: config.http.cors_origins.clone(),
        };
        Ok(Self {
            listener,
            router: router(state, &http),
            shutdown,
            pollers,
            simulator: upstream.simulator,
        })
    }

    /// The address the gateway listens on (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The embedded simulator, in sandbox mode.
    pub fn simulator(&self) -> Option<&SimulatorHandle> {
        self.simulator.as_ref()
    }

    /// The shared pollers (their counters show the poll economy).
    pub fn pollers(&self) -> &Pollers {
        &self.pollers
    }

    /// Cancelling this token stops the gateway gracefully.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Serves until the shutdown token is cancelled, then drains in-flight requests.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        tracing::info!(address = %self.local_addr(), "registrar-gateway listening; GraphiQL at http://{}/", self.local_addr());
        let shutdown = self.shutdown.clone();
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await?;
        if let Some(simulator) = self.simulator {
            simulator.shutdown().await;
        }
        Ok(())
    }
}

/// Where upstream calls go and with which credentials.
struct Upstream {
    client: ClientSettings,
    /// The gateway's own credential; `None` when callers must bring theirs (pass-through).
    credentials: Option<Credentials>,
    default_account: Option<AccountId>,
    simulator: Option<SimulatorHandle>,
}

impl Upstream {
    /// The configured API, or the embedded simulator when no credentials are set.
    async fn connect(config: &GatewayConfig) -> Result<Self, StartupError> {
        let configured_account = config.upstream.account_id.clone();
        let mode = config.access.credential_mode;
        match config.upstream.target(mode)? {
            UpstreamTarget::Remote {
                base_url,
                credentials,
            } => {
                tracing::info!(
                    base_url = %base_url,
                    registrar_api = config.upstream.registrar_api.segment(),
                    credential_mode = ?mode,
                    registration_enabled = config.upstream.enable_registration,
                    "talking to the configured upstream"
                );
                Ok(Self {
                    client: config.upstream.client_settings(base_url),
                    credentials,
                    default_account: configured_account,
                    simulator: None,
                })
            }
            UpstreamTarget::Sandbox => {
                let simulator = start_sandbox_simulator().await?;
                let base_url = simulator
                    .base_url()
                    .parse()
                    .expect("the simulator's base URL is a valid URL");
                let sandbox_account =
                    AccountId::parse(SANDBOX_ACCOUNT_ID).expect("a valid account id");
                Ok(Self {
                    client: config.upstream.client_settings(base_url),
                    credentials: Some(Credentials::ApiToken(SANDBOX_TOKEN.into())),
                    default_account: Some(configured_account.unwrap_or(sandbox_account)),
                    simulator: Some(simulator),
                })
            }
        }
    }

    /// The read and watch path: client, cache, pollers.
    fn registrations(
        &self,
        config: &GatewayConfig,
        shutdown: CancellationToken,
    ) -> Result<Registrations, StartupError> {
        let budget = Budget::new(config.upstream.budget_settings());
        let client = UpstreamClient::new(&self.client, budget)?;
        let cache = StatusCache::new(&config.cache.settings(), client);
        let pollers = Pollers::new(
            config.subscriptions.poller_settings(),
            cache.clone(),
            shutdown,
        );
        Ok(Registrations::new(
            cache,
            pollers,
            self.default_account.clone(),
        ))
    }
}

fn websocket_settings(config: &GatewayConfig) -> WsSettings {
    let subscriptions = &config.subscriptions;
    WsSettings {
        init_timeout: subscriptions.ws_init_timeout,
        keepalive: subscriptions.ws_keepalive,
        max_subscriptions_per_connection: subscriptions.max_subscriptions_per_connection,
        max_message_size: config.http.body_limit,
    }
}

async fn bind(address: SocketAddr) -> Result<TcpListener, StartupError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| StartupError::Bind { address, source })
}

async fn start_sandbox_simulator() -> Result<SimulatorHandle, StartupError> {
    let address = SocketAddr::from(([127, 0, 0, 1], 0));
    let listener = bind(address).await?;
    let simulator = simulator::spawn(SimulatorConfig::default(), listener)
        .await
        .map_err(|source| StartupError::Bind { address, source })?;
    tracing::warn!(
        simulator = %simulator.base_url(),
        account_id = SANDBOX_ACCOUNT_ID,
        "SANDBOX MODE: no Cloudflare credentials are set, so the gateway talks to its embedded simulator; \
         set CLOUDFLARE_API_TOKEN (or CLOUDFLARE_EMAIL and CLOUDFLARE_API_KEY) to use the real API"
    );
    Ok(simulator)
}

/// Resolves when the process is asked to stop: Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received, draining");
}

/// Why a health probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// No answer.
    #[error("no answer from {url}: {source}")]
    Unreachable {
        /// What was probed.
        url: String,
        /// Why.
        source: reqwest::Error,
    },
    /// An answer other than 2xx.
    #[error("{url} answered HTTP {status}")]
    Unhealthy {
        /// What was probed.
        url: String,
        /// The status received.
        status: reqwest::StatusCode,
    },
}

/// Probes `/healthz` of a gateway listening on `address` (wildcard addresses are
/// probed on loopback): the container health check, without shipping curl.
pub async fn probe_health(mut address: SocketAddr) -> Result<(), ProbeError> {
    if address.ip().is_unspecified() {
        let loopback: std::net::IpAddr = match address {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        };
        address.set_ip(loopback);
    }
    let url = format!("http://{address}/healthz");
    let client = reqwest::Client::new();
    let request = client.get(&url).timeout(std::time::Duration::from_secs(2));
    let response = request
        .send()
        .await
        .map_err(|source| ProbeError::Unreachable {
            url: url.clone(),
            source,
        })?;
    match response.status() {
        status if status.is_success() => Ok(()),
        status => Err(ProbeError::Unhealthy { url, status }),
    }
}
