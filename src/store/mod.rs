//! The store replicas share (Redis, with `--redis-url`): one concept, so that every
//! component that coordinates across replicas (budget, cache, pollers, events) goes
//! through one connection, one key prefix and one view of whether Redis is reachable.
//!
//! Without `--redis-url` there is no [`RedisStore`] and every component works
//! in-process as before. With it, a replica that loses Redis does not fail: the
//! store turns [`RedisStore::is_connected`] false (a warning and the
//! `redis_connected` gauge), components fall back to their local behaviour, and the
//! replica heartbeat ([`replicas`]) brings it back when Redis answers again.
//!
//! - [`url`]: the URL, a secret (it may carry a password);
//! - [`tls`]: which certificate authorities `rediss://` trusts;
//! - [`health`]: connected or local, with a log line and a metric on each change;
//! - [`replicas`]: the heartbeat that counts live replicas (for the local budget share);
//! - [`fingerprint`]: the credential fingerprint key every replica shares.

mod fingerprint;
mod health;
mod replicas;
mod tls;
mod url;

pub use url::RedisUrl;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio_util::sync::CancellationToken;

use crate::credential::FingerprintKey;
use crate::metrics::Metrics;
use health::Health;

/// How to reach the Redis store and how patiently.
#[derive(Clone, Debug)]
pub struct RedisStoreSettings {
    /// `redis://` or `rediss://` (TLS), with credentials and database in the URL.
    pub url: RedisUrl,
    /// PEM file of the CAs `rediss://` trusts instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// Start of every key this gateway writes, so deployments can share one Redis.
    pub key_prefix: String,
    /// Bound on connecting and on each command; past it the replica goes local.
    pub timeout: Duration,
    /// How often a replica announces itself; it counts as gone after three missed beats.
    pub heartbeat: Duration,
    /// How long start-up waits for Redis (the shared fingerprint key needs it).
    pub startup_wait: Duration,
}

/// Why the Redis store could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RedisStoreError {
    /// The URL does not parse as a Redis URL (the URL itself is never shown).
    #[error("--redis-url / REDIS_URL is not a usable Redis URL: {0}")]
    BadUrl(String),
    /// `--redis-ca-file` cannot be read or holds no certificate.
    #[error("--redis-ca-file / REDIS_CA_FILE {path} is unusable: {reason}")]
    CaFile {
        /// The file named.
        path: String,
        /// Why.
        reason: String,
    },
    /// Redis refused the user or password of the URL (which is not shown).
    #[error(
        "redis refused the user or password in --redis-url / REDIS_URL ({0}); check the URL's credentials"
    )]
    Auth(String),
    /// Redis answered with an error, or did not answer.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Redis did not answer within `--redis-timeout`.
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    /// The Redis store holds a value this gateway cannot use.
    #[error("redis holds an unusable {0}")]
    Corrupt(&'static str),
}

/// A handle to the Redis store; cheap to clone.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<StoreState>,
}

struct StoreState {
    /// Kept to open dedicated connections (pub/sub) beside the multiplexed one.
    client: redis::Client,
    /// One multiplexed connection that reconnects by itself after Redis comes back.
    connection: ConnectionManager,
    prefix: String,
    settings: RedisStoreSettings,
    health: Health,
    /// This process's name in the replica registry.
    replica_id: String,
    /// Replicas alive at the last successful heartbeat (at least 1: this one).
    replicas: AtomicU32,
    /// The fingerprint key every replica shares (read from Redis at start-up).
    fingerprint_key: [u8; 32],
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.inner.settings.url)
            .field("prefix", &self.inner.prefix)
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl RedisStore {
    /// Connects, registers this replica and starts its heartbeat (stopped by
    /// `shutdown`). Waits up to `startup_wait` for Redis to answer.
    pub async fn connect(
        settings: &RedisStoreSettings,
        metrics: Metrics,
        shutdown: CancellationToken,
    ) -> Result<Self, RedisStoreError> {
        let client = tls::client(&settings.url, settings.ca_file.as_deref())?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.timeout))
            .set_response_timeout(Some(settings.timeout))
            .set_number_of_retries(2)
            .set_max_delay(settings.heartbeat);
        let connection = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
        let mut store = Self {
            inner: Arc::new(StoreState {
                client,
                connection,
                prefix: settings.key_prefix.clone(),
                settings: settings.clone(),
                health: Health::new(metrics),
                replica_id: format!("{:016x}", rand::random::<u64>()),
                replicas: AtomicU32::new(1),
                fingerprint_key: rand::random(),
            }),
        };
        store.wait_until_reachable().await?;
        let candidate = store.inner.fingerprint_key;
        let shared_key = fingerprint::shared_key(&store, candidate).await?;
        Arc::get_mut(&mut store.inner)
            .expect("not shared before the heartbeat starts")
            .fingerprint_key = shared_key;
        tracing::info!(redis = %settings.url.redacted(), prefix = %settings.key_prefix, replica = %store.inner.replica_id, "sharing state with other replicas through redis");
        tokio::spawn(replicas::heartbeat(store.clone(), shutdown));
        Ok(store)
    }

    /// Pings until Redis answers or `startup_wait` has passed.
    async fn wait_until_reachable(&self) -> Result<(), RedisStoreError> {
        let deadline = tokio::time::Instant::now() + self.inner.settings.startup_wait;
        loop {
            let ping = self
                .run(|mut connection| async move {
                    redis::cmd("PING").query_async::<()>(&mut connection).await
                })
                .await;
            match ping {
                Ok(()) => return Ok(()),
                // Waiting cannot fix a wrong password: say so now.
                Err(RedisStoreError::Redis(error)) if refused_credentials(&error) => {
                    let code = error
                        .code()
                        .map_or_else(|| format!("{:?}", error.kind()), str::to_owned);
                    return Err(RedisStoreError::Auth(code));
                }
                Err(error) if tokio::time::Instant::now() >= deadline => return Err(error),
                Err(error) => {
                    tracing::warn!(%error, "waiting for redis");
                    tokio::time::sleep(self.inner.settings.heartbeat).await;
                }
            }
        }
    }

    /// The credential fingerprint key every replica uses, created by the first.
    pub fn fingerprint_key(&self) -> FingerprintKey {
        FingerprintKey::from_bytes(self.inner.fingerprint_key)
    }

    /// `{prefix}:{suffix}`: every key this gateway uses goes through here.
    pub fn key(&self, suffix: &str) -> String {
        format!("{}:{suffix}", self.inner.prefix)
    }

    /// Whether Redis answered the last command. False means local mode: components
    /// skip Redis until the heartbeat reaches it again.
    pub fn is_connected(&self) -> bool {
        self.inner.health.is_connected()
    }

    /// Replicas alive at the last heartbeat that reached Redis (at least 1).
    pub fn replica_count(&self) -> u32 {
        self.inner.replicas.load(Ordering::Relaxed).max(1)
    }

    /// This process's id in the replica registry (random per process).
    pub fn replica_id(&self) -> &str {
        &self.inner.replica_id
    }

    /// The configured bound on one command.
    pub fn timeout(&self) -> Duration {
        self.inner.settings.timeout
    }

    /// A client for dedicated connections (e.g. `get_async_pubsub`); commands on the
    /// shared connection go through [`RedisStore::run`] instead, which tracks health.
    pub fn client(&self) -> &redis::Client {
        &self.inner.client
    }

    /// Runs `op` on the shared connection within `--redis-timeout`, recording the
    /// outcome in the store's health (a connection failure turns the replica local,
    /// a success after one brings it back).
    pub async fn run<T, F, Fut>(&self, op: F) -> Result<T, RedisStoreError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let timeout = self.inner.settings.timeout;
        let outcome = match tokio::time::timeout(timeout, op(self.inner.connection.clone())).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(RedisStoreError::Redis(error)),
            Err(_) => Err(RedisStoreError::Timeout(timeout)),
        };
        match &outcome {
            Ok(_) => self.inner.health.succeeded(),
            Err(error) => self.inner.health.failed(error),
        }
        outcome
    }
}

/// Whether Redis refused the URL's user or password (`WRONGPASS`, or `NOAUTH` when
/// the URL has none and Redis wants one).
fn refused_credentials(error: &redis::RedisError) -> bool {
    error.kind() == redis::ErrorKind::AuthenticationFailed
        || matches!(error.code(), Some("WRONGPASS" | "NOAUTH"))
}
