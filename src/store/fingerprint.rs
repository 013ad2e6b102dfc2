//! The credential fingerprint key, shared: the first replica to start stores a
//! random key with `SET NX`, every replica reads the stored one. Equal credentials
//! then get equal fingerprints on every replica (so they share cache entries,
//! pollers and one budget), and distinct credentials still get distinct ones: the
//! key changes nothing about that, only which process picked it.

use std::sync::LazyLock;

use redis::Script;

use super::{RedisStore, RedisStoreError};

/// The key's name under the prefix.
pub(super) const KEY: &str = "fingerprint-key";

/// Stores `ARGV[1]` unless a key is there; answers the stored one.
static CREATE_OR_READ: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('GET', KEYS[1])
",
    )
});

/// The key stored in Redis, stored now when none is (`candidate`, this process's
/// own random key, which the heartbeat restores if Redis loses the stored one).
pub(super) async fn shared_key(
    store: &RedisStore,
    candidate: [u8; 32],
) -> Result<[u8; 32], RedisStoreError> {
    let key = store.key(KEY);
    let stored: Vec<u8> = store
        .run(|mut connection| async move {
            CREATE_OR_READ
                .key(key)
                .arg(candidate.as_slice())
                .invoke_async(&mut connection)
                .await
        })
        .await?;
    stored
        .try_into()
        .map_err(|_| RedisStoreError::Corrupt("fingerprint key (not 32 bytes)"))
}
