//! A registration's shared history: the lease holder appends changes, ends and
//! checkpoints with fenced Lua scripts; any replica reads the latest ones back.
//!
//! Sequence numbers are assigned in the script: one past both the holder's own
//! latest and the registration's stored one, so they stay contiguous while one
//! Redis serves, and never go backwards for anyone after an outage (a replica
//! that polled alone meanwhile raises the stored sequence before following).

use redis::Script;
use redis::streams::StreamRangeReply;

use super::record::{self, Checkpoint, Record};
use super::{Cluster, Lease, SharedError, millis};
use crate::cache::StatusKey;
use crate::poller::feed::{StatusEvent, WatchEnd};

/// Appends a change under the fence; returns its sequence, or -1 when fenced.
const PUBLISH: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local stored = tonumber(redis.call('HGET', KEYS[2], 'seq') or '0')
local seq = math.max(tonumber(ARGV[2]), stored + 1)
redis.call('HSET', KEYS[2], 'seq', seq)
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', 'kind', 'event', 'seq', seq, 'epoch', ARGV[1], 'data', ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('PEXPIRE', KEYS[3], ARGV[5])
return seq
";

/// Appends an end under the fence; -1 when fenced.
const END: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'kind', 'end', 'epoch', ARGV[1], 'data', ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 1
";

/// Stores the holder's checkpoint under the fence; -1 when fenced.
const CHECKPOINT: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
redis.call('HSET', KEYS[2], 'checkpoint', ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return 1
";

/// Raises the stored sequence to at least ARGV[1].
const RAISE: &str = r"
local stored = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
if stored < tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'seq', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
";

/// What a replica reads to follow or take over a registration.
pub(crate) struct Shared {
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
    ) -> Result<u64, SharedError> {
        let keys = self.keys(key);
        let settings = self.settings();
        let sequence: i64 = Script::new(PUBLISH)
            .key(&keys.epoch)
            .key(&keys.state)
            .key(&keys.stream)
            .arg(lease.fence)
            .arg(event.sequence)
            .arg(record::encode_event(event))
            .arg(settings.history.max(1))
            .arg(millis(settings.retention))
            .invoke_async(&mut self.connection())
            .await?;
        u64::try_from(sequence).map_err(|_| SharedError::Fenced)
    }

    /// Tells the followers why polling ended, when it is an end they report.
    pub(crate) async fn publish_end(
        &self,
        key: &StatusKey,
        lease: &Lease,
        end: &WatchEnd,
    ) -> Result<(), SharedError> {
        let Some(data) = record::encode_end(end) else {
            return Ok(());
        };
        let keys = self.keys(key);
        let settings = self.settings();
        let written: i64 = Script::new(END)
            .key(&keys.epoch)
            .key(&keys.stream)
            .arg(lease.fence)
            .arg(data)
            .arg(settings.history.max(1))
            .arg(millis(settings.retention))
            .invoke_async(&mut self.connection())
            .await?;
        fenced_unless_written(written)
    }

    /// Stores where polling stands, for a replica that takes over.
    pub(crate) async fn checkpoint(
        &self,
        key: &StatusKey,
        lease: &Lease,
        checkpoint: &Checkpoint,
    ) -> Result<(), SharedError> {
        let keys = self.keys(key);
        let written: i64 = Script::new(CHECKPOINT)
            .key(&keys.epoch)
            .key(&keys.state)
            .arg(lease.fence)
            .arg(record::encode_checkpoint(checkpoint))
            .arg(millis(self.settings().retention))
            .invoke_async(&mut self.connection())
            .await?;
        fenced_unless_written(written)
    }

    /// Makes the next shared sequence of `key` greater than `sequence` (what this
    /// replica's subscribers saw while it polled alone).
    pub(crate) async fn raise_sequence(
        &self,
        key: &StatusKey,
        sequence: u64,
    ) -> Result<(), SharedError> {
        let keys = self.keys(key);
        let _: i64 = Script::new(RAISE)
            .key(&keys.state)
            .arg(sequence)
            .arg(millis(self.settings().retention))
            .invoke_async(&mut self.connection())
            .await?;
        Ok(())
    }

    /// The registration's latest changes and checkpoint.
    pub(crate) async fn load(&self, key: &StatusKey) -> Result<Shared, SharedError> {
        let keys = self.keys(key);
        let count = self.settings().history.max(1);
        let mut connection = self.connection();
        let (range, checkpoint): (StreamRangeReply, Option<String>) = redis::pipe()
            .cmd("XREVRANGE")
            .arg(&keys.stream)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(count)
            .cmd("HGET")
            .arg(&keys.state)
            .arg("checkpoint")
            .query_async(&mut connection)
            .await?;
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
        Ok(Shared {
            events,
            last_id,
            checkpoint,
        })
    }
}

fn fenced_unless_written(written: i64) -> Result<(), SharedError> {
    match written {
        1 => Ok(()),
        _ => Err(SharedError::Fenced),
    }
}
