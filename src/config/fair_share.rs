//! The fair-share section: what one client may take of what every client shares
//! (the credential's upstream budget, subscriptions, new credentials), and which
//! proxies may say who the client is.

use clap::Args;
use ipnet::IpNet;

use crate::budget::BudgetSettings;
use crate::fair_share::{ForwardedHeader, ShareSettings, TrustedProxies};
use crate::flags::network;

/// What one client may take of what every client shares.
#[derive(Debug, Args)]
pub struct FairShareConfig {
    /// Proxies (addresses or CIDRs, comma-separated) whose forwarding header (`--forwarded-header`) names the client (the rightmost hop that is not one of them); without this, the TCP peer is the client and forwarding headers are ignored.
    #[arg(long, env = "GATEWAY_TRUSTED_PROXIES", value_delimiter = ',', value_parser = network)]
    pub trusted_proxies: Vec<IpNet>,
    /// The one header the trusted proxies write the client's address in: `x-forwarded-for` (nginx, AWS ALB, Traefik, Cloudflare) or `forwarded` (RFC 7239). The other header is ignored, so a client cannot name itself by sending it.
    #[arg(
        long,
        env = "GATEWAY_FORWARDED_HEADER",
        value_enum,
        default_value = "x-forwarded-for"
    )]
    pub forwarded_header: ForwardedHeader,
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
    /// Most connections (websockets included) one client address may hold open; one more is answered 429 TOO_MANY_CLIENT_CONNECTIONS and closed, before `--max-connections` is reached. Connections from `--trusted-proxies` are not counted per client.
    #[arg(long, env = "GATEWAY_MAX_CONNECTIONS_PER_CLIENT", default_value_t = 64)]
    pub max_connections_per_client: usize,
    /// Most websockets one client address (through trusted proxies: the forwarded one) may hold open; one more upgrade is answered 429 TOO_MANY_CLIENT_WEBSOCKETS.
    #[arg(long, env = "GATEWAY_MAX_WEBSOCKETS_PER_CLIENT", default_value_t = 32)]
    pub max_websockets_per_client: usize,
}

impl FairShareConfig {
    /// The shares, as fractions of `budget` where they are.
    pub fn settings(&self, budget: BudgetSettings) -> ShareSettings {
        ShareSettings {
            budget,
            lookup_share: self.client_budget_share,
            max_subscriptions: self.max_subscriptions_per_client,
            max_connections: self.max_connections_per_client,
            max_websockets: self.max_websockets_per_client,
            max_new_credentials_per_minute: self.max_new_credentials_per_client,
            trusted_proxies: TrustedProxies::new(
                self.trusted_proxies.clone(),
                self.forwarded_header,
            ),
        }
    }
}
