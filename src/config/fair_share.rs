//! The fair-share section: what one client may take of what every client shares
//! (the credential's upstream budget, subscriptions, new credentials), and which
//! proxies may say who the client is.

use clap::Args;
use ipnet::IpNet;

use crate::budget::BudgetSettings;
use crate::fair_share::{ShareSettings, TrustedProxies};
use crate::flags::network;

/// What one client may take of what every client shares.
#[derive(Debug, Args)]
pub struct FairShareConfig {
    /// Proxies (addresses or CIDRs, comma-separated) whose `Forwarded` / `X-Forwarded-For` headers name the client (the rightmost hop that is not one of them); without this, the TCP peer is the client and those headers are ignored.
    #[arg(long, env = "GATEWAY_TRUSTED_PROXIES", value_delimiter = ',', value_parser = network)]
    pub trusted_proxies: Vec<IpNet>,
    /// Share of a credential's upstream budget one client (its access key when keys are on, else its address) may spend on lookups the cache cannot answer; past it, CLIENT_RATE_LIMITED (HTTP 429 with Retry-After).
    #[arg(long, env = "GATEWAY_CLIENT_BUDGET_SHARE", default_value_t = 0.25)]
    pub client_budget_share: f64,
    /// Most subscriptions one client may hold open, over every transport (TOO_MANY_SUBSCRIPTIONS past it).
    #[arg(
        long,
        env = "GATEWAY_MAX_SUBSCRIPTIONS_PER_CLIENT",
        default_value_t = 1000
    )]
    pub max_subscriptions_per_client: usize,
    /// In the pass-through modes, most Cloudflare credentials new to a client it may present per minute; past it, TOO_MANY_CREDENTIALS (HTTP 429) and no upstream call.
    #[arg(
        long,
        env = "GATEWAY_MAX_NEW_CREDENTIALS_PER_CLIENT",
        default_value_t = 10
    )]
    pub max_new_credentials_per_client: u32,
}

impl FairShareConfig {
    /// The shares, as fractions of `budget` where they are.
    pub fn settings(&self, budget: BudgetSettings) -> ShareSettings {
        ShareSettings {
            budget,
            lookup_share: self.client_budget_share,
            max_subscriptions: self.max_subscriptions_per_client,
            max_new_credentials_per_minute: self.max_new_credentials_per_client,
            trusted_proxies: TrustedProxies::new(self.trusted_proxies.clone()),
        }
    }
}
