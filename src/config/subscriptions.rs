//! How shared pollers pace themselves and how many subscribers (and websockets) the
//! gateway serves.

use std::time::Duration;

use clap::Args;

use crate::flags::duration;
use crate::http::WsSettings;
use crate::poller::{ClusterSettings, Pacing, PollerSettings};

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
    /// Longest poll interval while blocked or waiting on the user (Cloudflare's
    /// guidance for blocked workflows: every 30 to 60 minutes).
    #[arg(long, env = "GATEWAY_POLL_BLOCKED_MAX", default_value = "45m", value_parser = duration)]
    pub poll_blocked_max: Duration,
    /// Share of each interval randomised either way, so pollers do not align.
    #[arg(long, env = "GATEWAY_POLL_JITTER", default_value_t = 0.1)]
    pub poll_jitter: f64,
    /// How long a blocked workflow is watched, from when this gateway saw it become
    /// blocked, before subscribers get WATCH_EXPIRED (Cloudflare: a registry block
    /// "may take up to 24 hours").
    #[arg(long, env = "GATEWAY_BLOCKED_MAX_WATCH", default_value = "48h", value_parser = duration)]
    pub blocked_max_watch: Duration,
    /// How long a poller outlives its last subscriber.
    #[arg(long, env = "GATEWAY_POLLER_GRACE", default_value = "5s", value_parser = duration)]
    pub poller_grace: Duration,
    /// Consecutive failed polls before subscribers are told the gateway gave up.
    #[arg(long, env = "GATEWAY_POLL_MAX_FAILURES", default_value_t = 8)]
    pub poll_max_failures: u32,
    /// Most subscriptions across all connections.
    #[arg(
        id = "max_subscriptions",
        long = "max-subscriptions",
        value_name = "MAX_SUBSCRIPTIONS",
        env = "GATEWAY_MAX_SUBSCRIPTIONS",
        default_value_t = 100_000
    )]
    pub max_total: usize,
    /// Most subscriptions on one websocket connection.
    #[arg(
        id = "max_subscriptions_per_connection",
        long = "max-subscriptions-per-connection",
        value_name = "MAX_SUBSCRIPTIONS_PER_CONNECTION",
        env = "GATEWAY_MAX_SUBSCRIPTIONS_PER_CONNECTION",
        default_value_t = 100
    )]
    pub max_per_connection: usize,
    /// How long a websocket may stay open without `connection_init`.
    #[arg(long, env = "GATEWAY_WS_INIT_TIMEOUT", default_value = "10s", value_parser = duration)]
    pub ws_init_timeout: Duration,
    /// Changes kept per watched registration, replayed to subscribers that resume
    /// (`afterSequence`, SSE `Last-Event-ID`).
    #[arg(
        id = "subscription_history",
        long = "subscription-history",
        value_name = "SUBSCRIPTION_HISTORY",
        env = "GATEWAY_SUBSCRIPTION_HISTORY",
        default_value_t = 32
    )]
    pub history: usize,
    /// How long a registration's history is kept after its poller stops (a grace
    /// period after the last subscriber left).
    #[arg(id = "subscription_history_retention", long = "subscription-history-retention", value_name = "SUBSCRIPTION_HISTORY_RETENTION", env = "GATEWAY_SUBSCRIPTION_HISTORY_RETENTION", default_value = "10m", value_parser = duration)]
    pub history_retention: Duration,
    /// With `--redis-url`: how long a replica's lease on a registration's poller
    /// lives unrenewed, so the longest a registration goes unpolled when the replica
    /// polling it dies before another takes over. Renewed every third of it.
    #[arg(long, env = "GATEWAY_POLLER_LEASE_TTL", default_value = "10s", value_parser = duration)]
    pub poller_lease_ttl: Duration,
    /// Interval of server pings on idle websockets and of keep-alives on SSE and
    /// multipart streams (keeps proxies from cutting them).
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
            max_watchers: self.max_total,
            history: self.history,
            history_retention: self.history_retention,
        }
    }

    /// How replicas share pollers through Redis.
    pub fn cluster_settings(&self) -> ClusterSettings {
        ClusterSettings {
            lease_ttl: self.poller_lease_ttl,
            history: self.history,
            retention: self.history_retention,
        }
    }

    /// The websocket transport's settings; a message may be as large as an HTTP body.
    pub fn websocket_settings(&self, max_message_size: usize) -> WsSettings {
        WsSettings {
            init_timeout: self.ws_init_timeout,
            keepalive: self.ws_keepalive,
            max_subscriptions_per_connection: self.max_per_connection,
            max_message_size,
        }
    }
}
