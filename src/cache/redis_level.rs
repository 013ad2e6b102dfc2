//! The cache's second level, in Redis, for replicas: snapshots keyed like the local
//! cache (credential fingerprint, account, domain) and kept as long as the local
//! cache keeps them, so a miss on one replica is a hit on the others; and a load
//! lock per key (`SET NX PX`), so N replicas missing one key at once make one
//! upstream call: the lock holder loads and stores, the others wait for the stored
//! snapshot (polling it, bounded by the lock, which expires if its holder dies).
//!
//! Every Redis failure here degrades to the local behaviour (the caller loads for
//! itself); the store's health decides when Redis is tried again.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Snapshot, StatusKey, TtlPolicy};
use crate::store::RedisStore;
use crate::upstream::WorkflowStatus;

/// How often a replica waiting for another's load looks for its result.
const WAIT_STEP: Duration = Duration::from_millis(10);

/// Releases a load lock only if this replica still holds it.
const UNLOCK: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// A snapshot as stored in Redis.
#[derive(Serialize, Deserialize)]
struct Stored {
    status: Option<WorkflowStatus>,
    fetched_at: DateTime<Utc>,
}

/// What a replica should do about a key the second level does not hold.
pub(super) enum Claim {
    /// This replica holds the load lock (with this token): load, then [`RedisLevel::store`].
    Load(u64),
    /// Another replica loaded it meanwhile.
    Loaded(Arc<Snapshot>),
    /// Redis cannot help: load without it.
    Alone,
}

/// The second level; cheap to clone.
#[derive(Clone)]
pub(super) struct RedisLevel {
    store: RedisStore,
    ttl: TtlPolicy,
    /// How long a load lock lives: the longest an upstream read can take.
    lock_ttl: Duration,
    unlock: Arc<redis::Script>,
}

impl RedisLevel {
    pub(super) fn new(store: RedisStore, ttl: TtlPolicy, lock_ttl: Duration) -> Self {
        Self {
            store,
            ttl,
            lock_ttl,
            unlock: Arc::new(redis::Script::new(UNLOCK)),
        }
    }

    fn snapshot_key(&self, key: &StatusKey) -> String {
        self.store.key(&format!(
            "status:{}:{}:{}",
            key.credential, key.account, key.domain
        ))
    }

    fn lock_key(&self, key: &StatusKey) -> String {
        self.store.key(&format!(
            "status-lock:{}:{}:{}",
            key.credential, key.account, key.domain
        ))
    }

    /// The stored snapshot, if any and fetched after `since`; `None` too when Redis
    /// is unreachable or holds something unreadable.
    pub(super) async fn get(
        &self,
        key: &StatusKey,
        since: Option<DateTime<Utc>>,
    ) -> Option<Arc<Snapshot>> {
        if !self.store.is_connected() {
            return None;
        }
        let redis_key = self.snapshot_key(key);
        let stored: Option<Vec<u8>> = self
            .store
            .run(|mut connection| async move {
                redis::cmd("GET")
                    .arg(redis_key)
                    .query_async(&mut connection)
                    .await
            })
            .await
            .ok()?;
        let stored: Stored = serde_json::from_slice(&stored?).ok()?;
        let snapshot = Snapshot {
            status: stored.status.map(Arc::new),
            fetched_at: stored.fetched_at,
        };
        since
            .is_none_or(|since| snapshot.fetched_at > since)
            .then(|| Arc::new(snapshot))
    }

    /// Stores `snapshot` for the rest of its freshness (its TTL less its age).
    pub(super) async fn store(&self, key: &StatusKey, snapshot: &Snapshot) {
        let ttl = super::ttl::remaining(&self.ttl, snapshot);
        if ttl.is_zero() || !self.store.is_connected() {
            return;
        }
        let stored = Stored {
            status: snapshot.status.as_deref().cloned(),
            fetched_at: snapshot.fetched_at,
        };
        let Ok(body) = serde_json::to_vec(&stored) else {
            return;
        };
        let redis_key = self.snapshot_key(key);
        let millis = ttl.as_millis().max(1) as u64;
        let _ = self
            .store
            .run(|mut connection| async move {
                redis::cmd("SET")
                    .arg(redis_key)
                    .arg(body)
                    .arg("PX")
                    .arg(millis)
                    .query_async::<()>(&mut connection)
                    .await
            })
            .await;
    }

    /// Takes the load lock, or waits for the holder's result; when the holder goes
    /// away without one (died, or its load failed), tries to take the lock again.
    pub(super) async fn claim(&self, key: &StatusKey, since: Option<DateTime<Utc>>) -> Claim {
        loop {
            if let Some(snapshot) = self.get(key, since).await {
                return Claim::Loaded(snapshot);
            }
            let token: u64 = rand::random();
            match self.try_lock(key, token).await {
                None => return Claim::Alone,
                Some(true) => {
                    // The previous holder may have stored its result and let go
                    // between the look above and this lock: look once more.
                    if let Some(snapshot) = self.get(key, since).await {
                        self.unlock(key, token).await;
                        return Claim::Loaded(snapshot);
                    }
                    return Claim::Load(token);
                }
                Some(false) => {}
            }
            loop {
                tokio::time::sleep(WAIT_STEP).await;
                if let Some(snapshot) = self.get(key, since).await {
                    return Claim::Loaded(snapshot);
                }
                match self.is_locked(key).await {
                    None => return Claim::Alone,
                    Some(true) => continue,
                    Some(false) => break,
                }
            }
        }
    }

    /// `Some(true)` when this replica now holds the lock; `None` when Redis cannot say.
    async fn try_lock(&self, key: &StatusKey, token: u64) -> Option<bool> {
        if !self.store.is_connected() {
            return None;
        }
        let lock = self.lock_key(key);
        let millis = self.lock_ttl.as_millis().max(1) as u64;
        let set: Option<String> = self
            .store
            .run(|mut connection| async move {
                redis::cmd("SET")
                    .arg(lock)
                    .arg(token)
                    .arg("NX")
                    .arg("PX")
                    .arg(millis)
                    .query_async(&mut connection)
                    .await
            })
            .await
            .ok()?;
        Some(set.is_some())
    }

    async fn is_locked(&self, key: &StatusKey) -> Option<bool> {
        if !self.store.is_connected() {
            return None;
        }
        let lock = self.lock_key(key);
        self.store
            .run(|mut connection| async move {
                redis::cmd("EXISTS")
                    .arg(lock)
                    .query_async(&mut connection)
                    .await
            })
            .await
            .ok()
    }

    /// Releases the lock taken with `token` (after storing the result, or on failure
    /// so that a waiter loads at once rather than at the lock's expiry).
    pub(super) async fn unlock(&self, key: &StatusKey, token: u64) {
        let lock = self.lock_key(key);
        let script = Arc::clone(&self.unlock);
        let _ = self
            .store
            .run(|mut connection| async move {
                script
                    .key(lock)
                    .arg(token)
                    .invoke_async::<()>(&mut connection)
                    .await
            })
            .await;
    }
}
