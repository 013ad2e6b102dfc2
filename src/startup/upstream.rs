//! Where upstream calls go: the configured Cloudflare API, or the embedded
//! simulator in sandbox mode; and the read and watch path built on top of it.

use std::net::SocketAddr;

use tokio_util::sync::CancellationToken;

use super::{SANDBOX_ACCOUNT_ID, StartupError, bind};
use crate::budget::Budget;
use crate::cache::StatusCache;
use crate::config::{GatewayConfig, UpstreamTarget};
use crate::credential::CredentialSecret;
use crate::domain::AccountId;
use crate::metrics::Metrics;
use crate::poller::{Cluster, Pollers};
use crate::registrations::RegistrationService;
use crate::store::RedisStore;
use crate::upstream::{ApiSettings, CloudflareApi, verify_token};
use registrar_simulator::{self as simulator, SimulatorHandle, SimulatorSettings};

/// The token the gateway presents to its embedded simulator.
const SANDBOX_TOKEN: &str = "sandbox-token";

/// Where upstream calls go and with which credentials.
pub(super) struct Upstream {
    pub(super) api: ApiSettings,
    /// The gateway's own credential; `None` when callers must bring theirs (pass-through).
    pub(super) credentials: Option<CredentialSecret>,
    pub(super) default_account: Option<AccountId>,
    pub(super) simulator: Option<SimulatorHandle>,
}

impl Upstream {
    /// The configured API, or the embedded simulator when no credentials are set.
    pub(super) async fn connect(config: &GatewayConfig) -> Result<Self, StartupError> {
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
                if configured_account.is_none() {
                    tracing::warn!(
                        "CLOUDFLARE_ACCOUNT_ID is not set: every query must name its accountId, \
                         or it is refused; set CLOUDFLARE_ACCOUNT_ID (--account-id) to give queries a default account"
                    );
                }
                if config.upstream.verify_credentials {
                    verify(config, &base_url, credentials.as_ref()).await?;
                }
                Ok(Self {
                    api: config.upstream.api_settings(base_url),
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
                let credentials = CredentialSecret::ApiToken(SANDBOX_TOKEN.into());
                if config.upstream.verify_credentials {
                    verify(config, &base_url, Some(&credentials)).await?;
                }
                Ok(Self {
                    api: config.upstream.api_settings(base_url),
                    credentials: Some(credentials),
                    default_account: Some(configured_account.unwrap_or(sandbox_account)),
                    simulator: Some(simulator),
                })
            }
        }
    }

    /// The read and watch path: the Cloudflare API, cache, pollers.
    /// Every layer reports to `metrics`; with `store` (`--redis-url`), the budget,
    /// the cache and the pollers are shared with the other replicas.
    pub(super) fn registrations(
        &self,
        config: &GatewayConfig,
        shutdown: CancellationToken,
        metrics: &Metrics,
        store: Option<&RedisStore>,
    ) -> Result<RegistrationService, StartupError> {
        let budget = Budget::new(
            config.upstream.budget_settings(),
            metrics.clone(),
            store.cloned(),
        );
        let api = CloudflareApi::new(&self.api, budget.clone(), metrics.clone())?;
        let cache = StatusCache::new(
            &config.cache.settings(self.simulator.is_some()),
            api,
            metrics.clone(),
            store.cloned(),
        );
        // One poller per registration across the replicas, its changes streamed to all.
        let cluster = store
            .map(|store| {
                let settings = config.subscriptions.cluster_settings();
                Cluster::new(store.clone(), settings, shutdown.clone())
            })
            .transpose()?;
        let pollers = Pollers::new(
            config.subscriptions.poller_settings(),
            cache.clone(),
            budget,
            shutdown,
            metrics.clone(),
            cluster,
        );
        Ok(RegistrationService::new(
            cache,
            pollers,
            self.default_account.clone(),
        ))
    }
}

/// `--verify-credentials`: checks the gateway's API token with the upstream's token
/// verification endpoint; other credentials cannot be checked that way, so they
/// are let through with a warning.
async fn verify(
    config: &GatewayConfig,
    base_url: &reqwest::Url,
    credentials: Option<&CredentialSecret>,
) -> Result<(), StartupError> {
    let variable = config.upstream.token_variable();
    match credentials {
        Some(token @ CredentialSecret::ApiToken(_)) => {
            verify_token(base_url, token, config.upstream.request_timeout)
                .await
                .map_err(|reason| StartupError::TokenRejected { variable, reason })?;
            tracing::info!(variable, "the API token passed Cloudflare's token check");
        }
        Some(CredentialSecret::GlobalApiKey { .. }) => tracing::warn!(
            "--verify-credentials checks API tokens only; a global API key (CLOUDFLARE_API_KEY) is not checked"
        ),
        None => tracing::warn!(
            "--verify-credentials has no token to check: in pass-through mode each caller brings their own"
        ),
    }
    Ok(())
}

async fn start_sandbox_simulator() -> Result<SimulatorHandle, StartupError> {
    let address = SocketAddr::from(([127, 0, 0, 1], 0));
    let listener = bind(address).await?;
    // A newcomer finds the demos moving whenever they look (docs/simulator.md).
    let settings = SimulatorSettings::default().restart_demos_after(simulator::DEMO_RESTART_AFTER);
    let simulator = simulator::spawn(settings, listener)
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
