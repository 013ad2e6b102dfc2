//! The status cache's section: capacity and freshness by workflow state.

use std::time::Duration;

use clap::Args;

use crate::cache::{CacheSettings, TtlPolicy};
use crate::flags::duration;

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
    /// Freshness of succeeded and failed statuses (they never change) [default: 1h; 2s in sandbox mode, whose demos start over]
    #[arg(long = "cache-ttl-terminal", env = "GATEWAY_CACHE_TTL_TERMINAL", value_parser = duration)]
    pub ttl_terminal: Option<Duration>,
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

/// `--cache-ttl-terminal` against a real upstream: a completed workflow never changes.
const TTL_TERMINAL: Duration = Duration::from_secs(3600);

/// `--cache-ttl-terminal` in sandbox mode: the embedded simulator starts an ended
/// moving demo over once nobody has read it for
/// [`registrar_simulator::DEMO_RESTART_AFTER`], so an ended status is held no longer
/// than that, and whoever looks again a few seconds later sees the demo move.
const SANDBOX_TTL_TERMINAL: Duration = registrar_simulator::DEMO_RESTART_AFTER;

impl CacheConfig {
    /// The cache's settings; `sandbox` when the upstream is the embedded simulator.
    pub fn settings(&self, sandbox: bool) -> CacheSettings {
        let default_terminal = match sandbox {
            true => SANDBOX_TTL_TERMINAL,
            false => TTL_TERMINAL,
        };
        CacheSettings {
            capacity: self.capacity,
            ttl: TtlPolicy {
                active: self.ttl_active,
                waiting: self.ttl_waiting,
                terminal: self.ttl_terminal.unwrap_or(default_terminal),
                not_found: self.ttl_not_found,
            },
            stale_if_error: self.stale_if_error,
            error_ttl: self.ttl_error,
        }
    }
}
