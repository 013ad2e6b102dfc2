//! A registration's shared history: the lease holder appends changes, ends and
//! checkpoints with fenced Lua scripts; any replica reads the latest ones back.
//!
//! Sequence numbers are assigned in the script: one past both the holder's own
//! latest and the registration's stored one, so they stay contiguous while one
//! Redis serves, and never go backwards for anyone after an outage (a replica
//! that polled alone meanwhile raises the stored sequence before following).

use std::sync::LazyLock;

use redis::Script;
use redis::streams::StreamRangeReply;

use super::record::{self, Checkpoint, Record};
use super::{Cluster, ClusterError, Lease, millis};
use crate::cache::StatusKey;
use crate::poller::feed::{PollerEnd, StatusEvent};

/// Appends a change under the fence; returns its sequence, or -1 when fenced.
static PUBLISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local stored = tonumber(redis.call('HGET', KEYS[2], 'seq') or '0')
local seq = math.max(tonumber(ARGV[2]), stored + 1)
redis.call('HSET', KEYS[2], 'seq', seq)
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', 'kind', 'event', 'seq', seq, 'epoch', ARGV[1], 'data', ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('PEXPIRE', KEYS[3], ARGV[5])
return seq
",
    )
});

/// Appends an end under the fence; -1 when fenced.
static END: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'kind', 'end', 'epoch', ARGV[1], 'data', ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 1
",
    )
});

/// Stores the holder's checkpoint under the fence; -1 when fenced.
static CHECKPOINT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
redis.call('HSET', KEYS[2], 'checkpoint', ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
",
    )
});

/// Raises the stored sequence to at least ARGV[1].
static RAISE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local stored = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
if stored < tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'seq', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
",
    )
});

/// What a replica reads to follow or take over a registration.
pub(crate) struct ClusterHistory {
    /// The latest changes, oldest first (ends and releases are left out: they
    /// concern the pollers that wrote them).
    pub(crate) events: Vec<StatusEvent>,
    /// The id of the newest stream entry, to follow from ("0" for an empty stream).
    pub(crate) last_id: String,
    /// The last holder's checkpoint, if one was written.
    pub(crate) checkpoint: Option<Checkpoint>,
}

impl Cluster {
    /// Appends `event` (numbered at least `event.sequence`) as `lease`'s holder;
    /// returns the sequence it was given.
    pub(crate) async fn publish(
        &self,
        key: &StatusKey,
        lease: &Lease,
        event: &StatusEvent,
    ) -> Result<u64, ClusterError> {
        let keys = self.keys(key);
        let settings = self.settings();
        let args = vec![
            lease.fence.to_string(),
            event.sequence.to_string(),
            record::encode_event(event),
            settings.history.max(1).to_string(),
            millis(settings.retention).to_string(),
        ];
        let sequence: i64 = self
            .script(&PUBLISH, vec![keys.epoch, keys.state, keys.stream], args)
            .await?;
        u64::try_from(sequence).map_err(|_| ClusterError::Fenced)
    }

    /// Tells the followers why polling ended, when it is an end they report.
    pub(crate) async fn publish_end(
        &self,
        key: &StatusKey,
        lease: &Lease,
        end: &PollerEnd,
    ) -> Result<(), ClusterError> {
        let Some(data) = record::encode_end(end) else {
            return Ok(());
        };
        let keys = self.keys(key);
        let settings = self.settings();
        let args = vec![
            lease.fence.to_string(),
            data,
            settings.history.max(1).to_string(),
            millis(settings.retention).to_string(),
        ];
        let written: i64 = self
            .script(&END, vec![keys.epoch, keys.stream], args)
            .await?;
        fenced_unless_written(written)
    }

    /// Stores where polling stands, for a replica that takes over.
    pub(crate) async fn checkpoint(
        &self,
        key: &StatusKey,
        lease: &Lease,
        checkpoint: &Checkpoint,
    ) -> Result<(), ClusterError> {
        let keys = self.keys(key);
        let args = vec![
            lease.fence.to_string(),
            record::encode_checkpoint(checkpoint),
            millis(self.settings().retention).to_string(),
        ];
        let written: i64 = self
            .script(&CHECKPOINT, vec![keys.epoch, keys.state], args)
            .await?;
        fenced_unless_written(written)
    }

    /// Makes the next shared sequence of `key` greater than `sequence` (what this
    /// replica's subscribers saw while it polled alone).
    pub(crate) async fn raise_sequence(
        &self,
        key: &StatusKey,
        sequence: u64,
    ) -> Result<(), ClusterError> {
        let keys = self.keys(key);
        let args = vec![
            sequence.to_string(),
            millis(self.settings().retention).to_string(),
        ];
        let _: i64 = self.script(&RAISE, vec![keys.state], args).await?;
        Ok(())
    }

    /// The registration's latest changes and checkpoint.
    pub(crate) async fn load(&self, key: &StatusKey) -> Result<ClusterHistory, ClusterError> {
        let keys = self.keys(key);
        let count = self.settings().history.max(1);
        let mut range = redis::cmd("XREVRANGE");
        range
            .arg(&keys.stream)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(count);
        let range: StreamRangeReply = self.query(range).await?;
        let mut checkpoint = redis::cmd("HGET");
        checkpoint.arg(&keys.state).arg("checkpoint");
        let checkpoint: Option<String> = self.query(checkpoint).await?;
        let last_id = range
            .ids
            .first()
            .map_or_else(|| "0".to_owned(), |entry| entry.id.clone());
        let mut events = Vec::with_capacity(range.ids.len());
        for entry in range.ids.iter().rev() {
            if let Record::Event(event) = record::decode(entry)? {
                events.push(event);
            }
        }
        let checkpoint = checkpoint
            .as_deref()
            .map(record::decode_checkpoint)
            .transpose()?;
        Ok(ClusterHistory {
            events,
            last_id,
            checkpoint,
        })
    }
}

fn fenced_unless_written(written: i64) -> Result<(), ClusterError> {
    match written {
        1 => Ok(()),
        _ => Err(ClusterError::Fenced),
    }
}
