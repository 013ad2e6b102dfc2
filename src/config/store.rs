//! The Redis store's section (`--redis-url`): where replicas share their state,
//! and how patiently. Without a URL the gateway runs alone, in-process.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::ConfigError;
use crate::flags::duration;
use crate::store::{RedisStoreSettings, RedisUrl};

/// Redis, shared by the replicas of one deployment.
#[derive(Debug, Args)]
pub struct RedisStoreConfig {
    /// Redis shared by replicas: `redis://[user:password@]host[:port][/db]`, or `rediss://` for TLS. Unset: one replica, all state in-process. A secret (it may carry a password): prefer the environment.
    #[arg(long, env = "REDIS_URL", hide_env_values = true, value_parser = redis_url)]
    pub redis_url: Option<RedisUrl>,
    /// PEM file of the certificate authorities a `rediss://` URL trusts instead of the system's: for a Redis whose certificate a private CA signed. Needs a `rediss://` --redis-url.
    #[arg(long, env = "REDIS_CA_FILE")]
    pub redis_ca_file: Option<PathBuf>,
    /// Start of every Redis key the gateway writes, so deployments (or credentials' environments) can share one Redis without seeing each other's state.
    #[arg(
        long,
        env = "GATEWAY_REDIS_KEY_PREFIX",
        default_value = "registrar-gateway"
    )]
    pub redis_key_prefix: String,
    /// Bound on connecting to Redis and on each command; past it the replica runs on local state until Redis answers again.
    #[arg(long, env = "GATEWAY_REDIS_TIMEOUT", default_value = "500ms", value_parser = duration)]
    pub redis_timeout: Duration,
    /// How often a replica announces itself in Redis (it counts as gone after three missed beats) and probes Redis while it is unreachable.
    #[arg(long, env = "GATEWAY_REDIS_HEARTBEAT", default_value = "1s", value_parser = duration)]
    pub redis_heartbeat: Duration,
    /// How long start-up waits for Redis to answer before giving up (replicas must agree on the credential fingerprint key kept there).
    #[arg(long, env = "GATEWAY_REDIS_STARTUP_WAIT", default_value = "30s", value_parser = duration)]
    pub redis_startup_wait: Duration,
}

impl RedisStoreConfig {
    /// The Redis store's settings, when a URL is set.
    pub fn settings(&self) -> Option<RedisStoreSettings> {
        let url = self.redis_url.clone()?;
        Some(RedisStoreSettings {
            url,
            ca_file: self.redis_ca_file.clone(),
            key_prefix: self.redis_key_prefix.clone(),
            timeout: self.redis_timeout,
            heartbeat: self.redis_heartbeat,
            startup_wait: self.redis_startup_wait,
        })
    }

    /// Refuses a URL the Redis client cannot use (naming the setting, never showing
    /// the URL), an empty prefix and zero intervals.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.redis_url {
            url.check().map_err(|reason| {
                ConfigError::Unusable(format!(
                    "--redis-url / REDIS_URL is not a usable Redis URL: {reason}; expected redis://[user:password@]host[:port][/db] or rediss://"
                ))
            })?;
        }
        if self.redis_ca_file.is_some() && !self.redis_url.as_ref().is_some_and(RedisUrl::is_tls) {
            return Err(ConfigError::Unusable(
                "--redis-ca-file / REDIS_CA_FILE needs a rediss:// (TLS) --redis-url / REDIS_URL"
                    .into(),
            ));
        }
        if self.redis_key_prefix.is_empty() {
            return Err(ConfigError::Unusable(
                "--redis-key-prefix must not be empty".into(),
            ));
        }
        if self.redis_timeout.is_zero() || self.redis_heartbeat.is_zero() {
            return Err(ConfigError::Unusable(
                "--redis-timeout and --redis-heartbeat must be positive".into(),
            ));
        }
        Ok(())
    }
}

/// Takes the URL as given (checked in `validate`): clap would print a refused value
/// in its error, and this one may carry a password.
fn redis_url(value: &str) -> Result<RedisUrl, std::convert::Infallible> {
    Ok(RedisUrl::new(value))
}
