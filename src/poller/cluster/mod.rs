//! Pollers shared by replicas through Redis: one poller per registration across
//! all of them, and every change delivered to every replica's subscribers.
//!
//! Per registration (credential fingerprint, account, domain), Redis holds:
//! - a **lease** (`SET NX PX` with a random token, renewed by compare-and-extend,
//!   released by compare-and-delete): the replica holding it polls, the others follow;
//! - an **epoch**, incremented on every acquisition: the fencing token. Every write
//!   of the holder is a Lua script that first compares it, so a holder that lost
//!   its lease (paused, partitioned) cannot publish over its successor;
//! - a **stream** of the changes (Redis Streams), each with its per-registration
//!   sequence number, which the scripts keep increasing across holders; followers
//!   read it from their last entry id and republish into their local feed, so
//!   every transport and resume-by-sequence work unchanged on every replica;
//! - a **state** hash: the last sequence and the holder's checkpoint (backoff
//!   position, failures, blocked since, next check), so a replica that takes over
//!   polls when and as the previous holder would have;
//! - a **watched** marker, refreshed by followers with subscribers, so a holder
//!   with none of its own keeps polling for them.
//!
//! All keys of one registration share a hash tag, so the scripts also run on a
//! Redis Cluster. Commands go through the [`RedisStore`] (its connection, key
//! prefix and health); while it reports Redis unreachable they fail at once.
//! Redis errors never reach subscribers: the poll loop logs them, polls on its
//! own, and rejoins when the store is connected again (`replica.rs`).

mod lease;
mod record;
mod relay;
mod stream;

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{FromRedisValue, Script};
use tokio_util::sync::CancellationToken;

pub(crate) use lease::{Acquired, Lease};
pub(crate) use record::{Checkpoint, Record};

use crate::cache::StatusKey;
use crate::store::{RedisStore, RedisStoreError};
use relay::Relay;

/// How replicas share pollers.
#[derive(Clone, Debug)]
pub struct ClusterSettings {
    /// How long a lease lives unrenewed: the longest a registration goes unpolled
    /// after its holder dies. Renewed every third of it.
    pub lease_ttl: Duration,
    /// Changes kept per registration in its stream (and loaded by a new follower).
    pub history: usize,
    /// How long a registration's stream and state outlive its last write.
    pub retention: Duration,
}

/// Why a shared-poller operation failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClusterError {
    /// Another replica holds the lease now (our fencing token is stale).
    #[error("the lease was taken over by another replica")]
    Fenced,
    /// The store reports Redis unreachable (its heartbeat brings it back).
    #[error("redis is unreachable")]
    Disconnected,
    /// Redis could not be reached or refused the command.
    #[error(transparent)]
    Store(#[from] RedisStoreError),
    /// Something in Redis is not what this build writes.
    #[error("unreadable shared poller data: {0}")]
    Corrupt(String),
}

/// This replica's handle on the shared pollers; cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<ClusterState>,
}

struct ClusterState {
    store: RedisStore,
    settings: ClusterSettings,
    relay: Arc<Relay>,
}

/// The Redis keys of one registration.
struct Keys {
    lease: String,
    epoch: String,
    state: String,
    stream: String,
    watched: String,
}

impl Cluster {
    /// Shares pollers through `store`; the blocking stream reads get a connection
    /// of their own (a blocked command would hold up every other one on the
    /// store's). The reader stops on `shutdown`.
    pub fn new(
        store: RedisStore,
        settings: ClusterSettings,
        shutdown: CancellationToken,
    ) -> Result<Self, RedisStoreError> {
        let block = (settings.lease_ttl / 4).clamp(Duration::from_millis(20), relay::MAX_BLOCK);
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(store.timeout()))
            .set_response_timeout(Some(block + store.timeout()))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let reader = ConnectionManager::new_lazy_with_config(store.client().clone(), config)?;
        let relay = Relay::spawn(reader, block, shutdown);
        Ok(Self {
            inner: Arc::new(ClusterState {
                store,
                settings,
                relay,
            }),
        })
    }

    pub(crate) fn settings(&self) -> &ClusterSettings {
        &self.inner.settings
    }

    /// Whether the store reaches Redis (its heartbeat keeps this current).
    pub(crate) fn is_connected(&self) -> bool {
        self.inner.store.is_connected()
    }

    fn replica_id(&self) -> &str {
        self.inner.store.replica_id()
    }

    /// Runs `command` through the store; fails at once while Redis is unreachable.
    async fn query<T>(&self, command: redis::Cmd) -> Result<T, ClusterError>
    where
        T: FromRedisValue + Send + 'static,
    {
        if !self.is_connected() {
            return Err(ClusterError::Disconnected);
        }
        let store = &self.inner.store;
        Ok(store
            .run(move |mut connection| async move { command.query_async(&mut connection).await })
            .await?)
    }

    /// Runs the Lua `script` on `keys` and `args` through the store (by its SHA
    /// once Redis has it; each script is hashed once, in a `static`).
    async fn script<T>(
        &self,
        script: &'static Script,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<T, ClusterError>
    where
        T: FromRedisValue + Send + 'static,
    {
        if !self.is_connected() {
            return Err(ClusterError::Disconnected);
        }
        let store = &self.inner.store;
        Ok(store
            .run(move |mut connection| async move {
                let mut invocation = script.prepare_invoke();
                for key in &keys {
                    invocation.key(key);
                }
                for arg in &args {
                    invocation.arg(arg);
                }
                invocation.invoke_async(&mut connection).await
            })
            .await?)
    }

    fn keys(&self, key: &StatusKey) -> Keys {
        // Validated account ids and domains hold no braces: the tag is the registration.
        let tag = self.inner.store.key(&format!(
            "poller:{{{}:{}:{}}}",
            key.credential, key.account, key.domain
        ));
        Keys {
            lease: format!("{tag}:lease"),
            epoch: format!("{tag}:epoch"),
            state: format!("{tag}:state"),
            stream: format!("{tag}:events"),
            watched: format!("{tag}:watched"),
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}
