//! The lease that makes one replica a registration's poller: taken with `SET NX
//! PX` and a random token (which also increments the fencing epoch), renewed by a
//! compare-and-extend, given up by a compare-and-delete that tells followers.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;

use super::{Cluster, ClusterError, millis, record};
use crate::cache::StatusKey;

/// How long an epoch outlives its last acquisition: far longer than any holder
/// could stay unaware that it lost its lease.
const EPOCH_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// Takes the lease if free and returns `{1, epoch}`, else `{0, its remaining ms}`.
static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local epoch = redis.call('INCR', KEYS[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  return {1, epoch}
end
return {0, redis.call('PTTL', KEYS[1])}
",
    )
});

/// Extends the lease if it is still ours.
static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
",
    )
});

/// Deletes the lease if it is still ours, and says so in the stream.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'kind', ARGV[3], 'epoch', ARGV[4])
  return 1
end
return 0
",
    )
});

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
    pub(crate) async fn acquire(&self, key: &StatusKey) -> Result<Acquired, ClusterError> {
        let keys = self.keys(key);
        // The holder's replica id (as in the replica registry), then a random part.
        let token = format!("{}:{:032x}", self.replica_id(), rand::random::<u128>());
        let args = vec![
            token.clone(),
            millis(self.settings().lease_ttl).to_string(),
            millis(EPOCH_RETENTION).to_string(),
        ];
        let (taken, value): (i64, i64) = self
            .script(&ACQUIRE, vec![keys.lease, keys.epoch], args)
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
    pub(crate) async fn renew(&self, key: &StatusKey, lease: &Lease) -> Result<bool, ClusterError> {
        let keys = self.keys(key);
        let args = vec![
            lease.token.clone(),
            millis(self.settings().lease_ttl).to_string(),
        ];
        let renewed: i64 = self.script(&RENEW, vec![keys.lease], args).await?;
        Ok(renewed == 1)
    }

    /// Renews `lease` every third of its lifetime; resolves when it is lost. While
    /// Redis cannot be reached it keeps trying: the holder polls on meanwhile.
    pub(crate) async fn keep_renewed(&self, key: &StatusKey, lease: &Lease) {
        let every = self.settings().lease_ttl / 3;
        let mut next = every;
        loop {
            tokio::time::sleep(next).await;
            next = match self.renew(key, lease).await {
                Ok(true) => every,
                Ok(false) => return,
                Err(error) => {
                    // Soon again: the lease runs out while Redis does not answer.
                    tracing::debug!(domain = %key.domain, %error, "could not renew the poller lease; polling on");
                    every / 4
                }
            };
        }
    }

    /// Gives `lease` up and tells the followers, so one may take it at once.
    pub(crate) async fn release(&self, key: &StatusKey, lease: &Lease) -> Result<(), ClusterError> {
        let keys = self.keys(key);
        let args = vec![
            lease.token.clone(),
            self.settings().history.max(1).to_string(),
            record::RELEASED.to_owned(),
            lease.fence.to_string(),
        ];
        let _: i64 = self
            .script(&RELEASE, vec![keys.lease, keys.stream], args)
            .await?;
        Ok(())
    }

    /// Says that subscribers on this replica follow `key` (for the next lease lifetime).
    pub(crate) async fn mark_watched(&self, key: &StatusKey) -> Result<(), ClusterError> {
        let mut command = redis::cmd("SET");
        command
            .arg(self.keys(key).watched)
            .arg(1)
            .arg("PX")
            .arg(millis(self.settings().lease_ttl));
        self.query::<()>(command).await
    }

    /// Whether subscribers on another replica follow `key`.
    pub(crate) async fn watched_elsewhere(&self, key: &StatusKey) -> Result<bool, ClusterError> {
        let mut command = redis::cmd("EXISTS");
        command.arg(self.keys(key).watched);
        self.query(command).await
    }
}
