//! Where the upstream is, how to authenticate to it, and how hard to lean on it
//! (timeouts, retries, the request budget).

use std::time::Duration;

use clap::Args;
use reqwest::Url;
use secrecy::SecretString;

use super::secret_file::{self, one_of};
use super::{CLOUDFLARE_BASE_URL, ConfigError};
use crate::access::CredentialMode;
use crate::budget::BudgetSettings;
use crate::credential::CredentialSecret;
use crate::domain::AccountId;
use crate::flags::{account_id, duration, http_url, secret};
use crate::upstream::{ApiSettings, RegistrarApi, RetryPolicy};

/// Where the upstream is and how to authenticate to it.
#[derive(Debug, Args)]
pub struct UpstreamConfig {
    /// API root. Unset and without credentials, the gateway runs its embedded simulator (sandbox mode).
    #[arg(long, env = "CLOUDFLARE_BASE_URL", value_parser = http_url)]
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
    /// A file holding the API token (a container secret; a trailing newline is dropped), instead of CLOUDFLARE_API_TOKEN.
    #[arg(long, env = "CLOUDFLARE_API_TOKEN_FILE", value_parser = secret_file::read)]
    pub api_token_file: Option<SecretString>,
    /// A file holding the account email, instead of CLOUDFLARE_EMAIL.
    #[arg(long, env = "CLOUDFLARE_EMAIL_FILE", value_parser = secret_file::read)]
    pub email_file: Option<SecretString>,
    /// A file holding the global API key, instead of CLOUDFLARE_API_KEY.
    #[arg(long, env = "CLOUDFLARE_API_KEY_FILE", value_parser = secret_file::read)]
    pub api_key_file: Option<SecretString>,
    /// Cloudflare's registrar API family: `registrar` (production) or `registrar-sandbox` (Cloudflare's test environment, identical shapes), to try the gateway against Cloudflare's sandbox before production.
    #[arg(long, env = "GATEWAY_REGISTRAR_API", value_enum, default_value_t = RegistrarApi::Registrar)]
    pub registrar_api: RegistrarApi,
    /// Allow the `startRegistration` mutation with real Cloudflare credentials (registering costs money). Always on with the embedded simulator; without it, the mutation answers REGISTRATION_DISABLED.
    #[arg(long, env = "GATEWAY_ENABLE_REGISTRATION")]
    pub enable_registration: bool,
    /// At start-up, check the API token with Cloudflare's token verification endpoint (GET /user/tokens/verify) and refuse to start unless it is active.
    #[arg(long, env = "GATEWAY_VERIFY_CREDENTIALS")]
    pub verify_credentials: bool,
    /// Account used when a query names none.
    #[arg(long, env = "CLOUDFLARE_ACCOUNT_ID", value_parser = account_id)]
    pub account_id: Option<AccountId>,
    /// Limit on connecting to the upstream.
    #[arg(id = "upstream_connect_timeout", long = "upstream-connect-timeout", value_name = "UPSTREAM_CONNECT_TIMEOUT", env = "GATEWAY_UPSTREAM_CONNECT_TIMEOUT", default_value = "5s", value_parser = duration)]
    pub connect_timeout: Duration,
    /// Limit on one upstream request, connection to last byte.
    #[arg(id = "upstream_timeout", long = "upstream-timeout", value_name = "UPSTREAM_TIMEOUT", env = "GATEWAY_UPSTREAM_TIMEOUT", default_value = "8s", value_parser = duration)]
    pub request_timeout: Duration,
    /// Upstream requests allowed per credential in any --upstream-budget-window (Cloudflare allows 1,200 per 5 minutes and locks the credential out for 5 minutes past it).
    #[arg(
        id = "upstream_budget",
        long = "upstream-budget",
        value_name = "UPSTREAM_BUDGET",
        env = "GATEWAY_UPSTREAM_BUDGET",
        default_value_t = 1200
    )]
    pub budget: u32,
    /// The window of --upstream-budget.
    #[arg(id = "upstream_budget_window", long = "upstream-budget-window", value_name = "UPSTREAM_BUDGET_WINDOW", env = "GATEWAY_UPSTREAM_BUDGET_WINDOW", default_value = "5m", value_parser = duration)]
    pub budget_window: Duration,
    /// Share of the budget that polls of blocked or paused workflows may use, so they never starve workflows that move.
    #[arg(
        id = "upstream_budget_background_share",
        long = "upstream-budget-background-share",
        value_name = "UPSTREAM_BUDGET_BACKGROUND_SHARE",
        env = "GATEWAY_UPSTREAM_BUDGET_BACKGROUND_SHARE",
        default_value_t = 0.25
    )]
    pub budget_background_share: f64,
    /// Share of --upstream-budget kept for everything else the user runs against Cloudflare (its limit is per user, across the dashboard, API tokens and keys); the gateway spends only the rest.
    #[arg(
        long,
        value_name = "BUDGET_RESERVE",
        env = "GATEWAY_BUDGET_RESERVE",
        default_value_t = 0.1
    )]
    pub budget_reserve: f64,
    /// Retries of a failed upstream call, as Cloudflare's SDKs retry (connect errors, timeouts, 408, 409, 429 with a short Retry-After, 5xx); 0 turns retries off.
    #[arg(
        id = "upstream_retries",
        long = "upstream-retries",
        value_name = "UPSTREAM_RETRIES",
        env = "GATEWAY_UPSTREAM_RETRIES",
        default_value_t = 2
    )]
    pub retries: u32,
    /// Backoff before the first retry; it doubles for each further one (with up to 25% jitter).
    #[arg(id = "upstream_retry_initial", long = "upstream-retry-initial", value_name = "UPSTREAM_RETRY_INITIAL", env = "GATEWAY_UPSTREAM_RETRY_INITIAL", default_value = "500ms", value_parser = duration)]
    pub retry_initial: Duration,
    /// Cap on one backoff, and the longest upstream Retry-After worth waiting for before answering UPSTREAM_RATE_LIMITED.
    #[arg(id = "upstream_retry_max", long = "upstream-retry-max", value_name = "UPSTREAM_RETRY_MAX", env = "GATEWAY_UPSTREAM_RETRY_MAX", default_value = "8s", value_parser = duration)]
    pub retry_max: Duration,
    /// How long a credential Cloudflare refused (401, 403) is refused again locally, per account, with Cloudflare's answer and without a request (callers retrying a revoked token in pass-through mode); 0s asks every time.
    #[arg(long, env = "GATEWAY_REFUSED_CREDENTIAL_TTL", default_value = "30s", value_parser = duration)]
    pub refused_credential_ttl: Duration,
}

/// The credential settings as given: each directly or through its file.
#[derive(Clone, Copy)]
pub struct GivenCredentials<'a> {
    /// CLOUDFLARE_API_TOKEN or CLOUDFLARE_API_TOKEN_FILE.
    pub token: Option<&'a SecretString>,
    /// CLOUDFLARE_EMAIL or CLOUDFLARE_EMAIL_FILE.
    pub email: Option<&'a SecretString>,
    /// CLOUDFLARE_API_KEY or CLOUDFLARE_API_KEY_FILE.
    pub key: Option<&'a SecretString>,
}

/// What the gateway talks to, decided from the credentials and base URL given.
#[derive(Debug)]
pub enum UpstreamTarget {
    /// A real (or standalone simulated) API at `base_url`.
    Remote {
        /// API root.
        base_url: Url,
        /// The gateway's own credential; absent only when callers bring theirs.
        credentials: Option<CredentialSecret>,
    },
    /// No credentials and no base URL: the embedded simulator.
    Sandbox,
}

impl UpstreamConfig {
    /// Decides between a remote API and the sandbox; a token wins over a global key.
    /// In `pass-through` mode a remote API needs no credentials of the gateway's own.
    pub fn target(&self, mode: CredentialMode) -> Result<UpstreamTarget, ConfigError> {
        let given = self.given_credentials()?;
        let credentials = match (given.token, given.email, given.key) {
            (Some(token), _, _) => Some(CredentialSecret::ApiToken(token.clone())),
            (None, Some(email), Some(key)) => Some(CredentialSecret::GlobalApiKey {
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

    /// The token, email and key, each from its variable or its file; both is an error.
    pub fn given_credentials(&self) -> Result<GivenCredentials<'_>, ConfigError> {
        Ok(GivenCredentials {
            token: one_of(
                self.api_token.as_ref(),
                "CLOUDFLARE_API_TOKEN",
                self.api_token_file.as_ref(),
                "CLOUDFLARE_API_TOKEN_FILE",
            )?,
            email: one_of(
                self.email.as_ref(),
                "CLOUDFLARE_EMAIL",
                self.email_file.as_ref(),
                "CLOUDFLARE_EMAIL_FILE",
            )?,
            key: one_of(
                self.api_key.as_ref(),
                "CLOUDFLARE_API_KEY",
                self.api_key_file.as_ref(),
                "CLOUDFLARE_API_KEY_FILE",
            )?,
        })
    }

    /// The variable the API token came from, to name it in messages.
    pub fn token_variable(&self) -> &'static str {
        match self.api_token_file {
            Some(_) => "CLOUDFLARE_API_TOKEN_FILE",
            None => "CLOUDFLARE_API_TOKEN",
        }
    }

    /// The per-credential upstream budget.
    pub fn budget_settings(&self) -> BudgetSettings {
        BudgetSettings {
            limit: self.budget,
            window: self.budget_window,
            background_share: self.budget_background_share,
            reserve: self.budget_reserve,
        }
    }

    /// API settings for `base_url`.
    pub fn api_settings(&self, base_url: Url) -> ApiSettings {
        ApiSettings {
            base_url,
            api: self.registrar_api,
            connect_timeout: self.connect_timeout,
            request_timeout: self.request_timeout,
            retry: RetryPolicy {
                retries: self.retries,
                initial: self.retry_initial,
                max: self.retry_max,
            },
            refused_credential_ttl: self.refused_credential_ttl,
        }
    }
}

fn incomplete(missing: &'static str, given: &'static str) -> ConfigError {
    ConfigError::IncompleteApiKey { missing, given }
}

fn cloudflare_base_url() -> Url {
    Url::parse(CLOUDFLARE_BASE_URL).expect("the official base URL is a valid URL")
}
