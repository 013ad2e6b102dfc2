//! The lease that makes one replica a registration's poller: taken with `SET NX
//! PX` and a random token (which also increments the fencing epoch), renewed by a
//! compare-and-extend, given up by a compare-and-delete that tells followers.

use std::time::Duration;

use redis::Script;

use super::{Cluster, SharedError, millis, record};
use crate::cache::StatusKey;

/// How long an epoch outlives its last acquisition: far longer than any holder
/// could stay unaware that it lost its lease.
const EPOCH_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// Takes the lease if free and returns `{1, epoch}`, else `{0, its remaining ms}`.
const ACQUIRE: &str = r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local epoch = redis.call('INCR', KEYS[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  return {1, epoch}
end
return {0, redis.call('PTTL', KEYS[1])}
";

/// Extends the lease if it is still ours.
const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

/// Deletes the lease if it is still ours, and says so in the stream.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'kind', ARGV[3], 'epoch', ARGV[4])
  return 1
end
return 0
";

/// A lease this replica holds.
#[derive(Clone, Debug)]
pub(crate) struct Lease {
    token: String,
    /// The fencing token: the epoch this acquisition made.
    pub(super) fence: u64,
}

/// What asking for a lease gave.
pub(crate) enum Acquired {
    /// This replica polls now.
    Held(Lease),
    /// Another replica holds it, for at most this long unless it renews.
    Taken {
        /// When to ask again.
        expires_in: Duration,
    },
}

impl Cluster {
    /// Takes the lease on `key` if no replica holds it.
    pub(crate) async fn acquire(&self, key: &StatusKey) -> Result<Acquired, SharedError> {
        let keys = self.keys(key);
        let token = format!("{:032x}", rand::random::<u128>());
        let (taken, value): (i64, i64) = Script::new(ACQUIRE)
            .key(&keys.lease)
            .key(&keys.epoch)
            .arg(&token)
            .arg(millis(self.settings().lease_ttl))
            .arg(millis(EPOCH_RETENTION))
            .invoke_async(&mut self.connection())
            .await?;
        Ok(match taken {
            1 => Acquired::Held(Lease {
                token,
                fence: u64::try_from(value).unwrap_or_default(),
            }),
            // -1 (no expiry) or -2 (gone meanwhile): ask again soon.
            _ => Acquired::Taken {
                expires_in: Duration::from_millis(u64::try_from(value).unwrap_or(1)),
            },
        })
    }

    /// Extends `lease`; false when another replica holds it now.
    pub(crate) async fn renew(&self, key: &StatusKey, lease: &Lease) -> Result<bool, SharedError> {
        let keys = self.keys(key);
        let renewed: i64 = Script::new(RENEW)
            .key(&keys.lease)
            .arg(&lease.token)
            .arg(millis(self.settings().lease_ttl))
            .invoke_async(&mut self.connection())
            .await?;
        Ok(renewed == 1)
    }

    /// Renews `lease` every third of its lifetime; resolves when it is lost. While
    /// Redis cannot be reached it keeps trying: the holder polls on meanwhile.
    pub(crate) async fn keep_renewed(&self, key: &StatusKey, lease: &Lease) {
        let every = self.settings().lease_ttl / 3;
        loop {
            tokio::time::sleep(every).await;
            match self.renew(key, lease).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(error) => {
                    tracing::warn!(domain = %key.domain, %error, "could not renew the poller lease; polling on");
                }
            }
        }
    }

    /// Gives `lease` up and tells the followers, so one may take it at once.
    pub(crate) async fn release(&self, key: &StatusKey, lease: &Lease) -> Result<(), SharedError> {
        let keys = self.keys(key);
        let _: i64 = Script::new(RELEASE)
            .key(&keys.lease)
            .key(&keys.stream)
            .arg(&lease.token)
            .arg(self.settings().history.max(1))
            .arg(record::RELEASED)
            .arg(lease.fence)
            .invoke_async(&mut self.connection())
            .await?;
        Ok(())
    }

    /// Says that subscribers on this replica follow `key` (for the next lease lifetime).
    pub(crate) async fn mark_watched(&self, key: &StatusKey) -> Result<(), SharedError> {
        let keys = self.keys(key);
        let ttl = millis(self.settings().lease_ttl);
        redis::cmd("SET")
            .arg(&keys.watched)
            .arg(1)
            .arg("PX")
            .arg(ttl)
            .exec_async(&mut self.connection())
            .await?;
        Ok(())
    }

    /// Whether subscribers on another replica follow `key`.
    pub(crate) async fn watched_elsewhere(&self, key: &StatusKey) -> Result<bool, SharedError> {
        let keys = self.keys(key);
        let exists: bool = redis::cmd("EXISTS")
            .arg(&keys.watched)
            .query_async(&mut self.connection())
            .await?;
        Ok(exists)
    }
}
