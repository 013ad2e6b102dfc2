//! One reader per replica for every registration it follows: a loop of `XREAD
//! BLOCK` over all the followed streams at once, on a connection of its own (a
//! blocked command holds up its connection), handing each new entry to the
//! registration's follower in order.
//!
//! A follower joins with the id of the last entry it has read, so nothing is
//! missed between loading its history and the next read; a new follower waits at
//! most one block period before its stream is included.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use redis::streams::{StreamReadOptions, StreamReadReply};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use super::record::{self, Record};
use super::{Cluster, ClusterError};
use crate::cache::StatusKey;
use crate::sync::LockUnpoisoned;

/// The longest one read blocks (and so the longest a new follower waits).
pub(super) const MAX_BLOCK: Duration = Duration::from_millis(250);
/// Most entries read per stream and round.
const BATCH: usize = 100;
/// Pause after a failed read, so an unreachable Redis is not hammered.
const RETRY: Duration = Duration::from_millis(500);

/// The followed streams of this replica.
pub(super) struct Relay {
    followers: Mutex<HashMap<String, Follower>>,
    /// Wakes the loop when the first follower joins.
    joined: Notify,
    next_id: AtomicU64,
}

struct Follower {
    id: u64,
    last_id: String,
    sender: mpsc::UnboundedSender<Result<Record, ClusterError>>,
}

/// A registration followed through the relay; dropping it stops the following.
pub(crate) struct Following {
    relay: Arc<Relay>,
    stream: String,
    id: u64,
    receiver: mpsc::UnboundedReceiver<Result<Record, ClusterError>>,
}

impl Following {
    /// The next entry; `None` when the relay stopped (shutdown).
    pub(crate) async fn next(&mut self) -> Option<Result<Record, ClusterError>> {
        self.receiver.recv().await
    }
}

impl Drop for Following {
    fn drop(&mut self) {
        let mut followers = self.relay.followers.lock_unpoisoned();
        if followers
            .get(&self.stream)
            .is_some_and(|follower| follower.id == self.id)
        {
            followers.remove(&self.stream);
        }
    }
}

impl Cluster {
    /// Follows `key`'s stream from just after entry `last_id`.
    pub(crate) fn follow(&self, key: &StatusKey, last_id: String) -> Following {
        let relay = &self.inner.relay;
        let stream = self.keys(key).stream;
        let (sender, receiver) = mpsc::unbounded_channel();
        let id = relay.next_id.fetch_add(1, Ordering::Relaxed);
        let follower = Follower {
            id,
            last_id,
            sender,
        };
        relay
            .followers
            .lock_unpoisoned()
            .insert(stream.clone(), follower);
        relay.joined.notify_one();
        Following {
            relay: Arc::clone(relay),
            stream,
            id,
            receiver,
        }
    }
}

impl Relay {
    /// Starts the read loop on `connection`, each read blocking at most `block`.
    pub(super) fn spawn(
        connection: ConnectionManager,
        block: Duration,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let relay = Arc::new(Self {
            followers: Mutex::default(),
            joined: Notify::new(),
            next_id: AtomicU64::new(0),
        });
        tokio::spawn(Arc::clone(&relay).run(connection, block, shutdown));
        relay
    }

    async fn run(
        self: Arc<Self>,
        mut connection: ConnectionManager,
        block: Duration,
        shutdown: CancellationToken,
    ) {
        let options = StreamReadOptions::default()
            .block(usize::try_from(block.as_millis()).unwrap_or(250))
            .count(BATCH);
        loop {
            let (streams, ids) = self.positions();
            if streams.is_empty() {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = self.joined.notified() => continue,
                }
            }
            let read =
                connection.xread_options::<_, _, Option<StreamReadReply>>(&streams, &ids, &options);
            let reply = tokio::select! {
                () = shutdown.cancelled() => return,
                reply = read => reply,
            };
            match reply {
                Ok(reply) => self.hand_out(reply.unwrap_or_default()),
                Err(error) => {
                    // The followers notice the outage through their own commands;
                    // this loop only waits for Redis to answer again.
                    tracing::debug!(%error, "reading the shared event streams failed");
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(RETRY) => {}
                    }
                }
            }
        }
    }

    fn positions(&self) -> (Vec<String>, Vec<String>) {
        let followers = self.followers.lock_unpoisoned();
        followers
            .iter()
            .map(|(stream, follower)| (stream.clone(), follower.last_id.clone()))
            .unzip()
    }

    fn hand_out(&self, reply: StreamReadReply) {
        let mut followers = self.followers.lock_unpoisoned();
        for stream in reply.keys {
            let Some(follower) = followers.get_mut(&stream.key) else {
                continue;
            };
            for entry in &stream.ids {
                // A read begun before the follower (re)joined may return what it has.
                if entry_id(&entry.id) <= entry_id(&follower.last_id) {
                    continue;
                }
                follower.last_id.clone_from(&entry.id);
                // A follower that went away meanwhile drops its Following next.
                let _ = follower.sender.send(record::decode(entry));
            }
        }
    }
}

/// A stream entry id (`millis-counter`) as numbers, for ordering.
fn entry_id(id: &str) -> (u64, u64) {
    let (millis, counter) = id.split_once('-').unwrap_or((id, "0"));
    (
        millis.parse().unwrap_or_default(),
        counter.parse().unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::entry_id;

    #[test]
    fn entry_ids_order_numerically() {
        assert!(entry_id("1700000000000-10") > entry_id("1700000000000-9"));
        assert!(entry_id("1700000000001-0") > entry_id("1700000000000-99"));
        assert!(entry_id("0") < entry_id("1-0"));
    }
}
