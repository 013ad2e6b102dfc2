//! Whether this replica is sharing state through Redis or running on local state,
//! with one warning line and a gauge change on each transition (not on each error:
//! an outage would otherwise log once per request).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use super::RedisStoreError;
use crate::metrics::Metrics;

/// Slow answers in a row that make a replica go local: one slow command on a busy
/// host is not an outage, three are.
const SLOW_IN_A_ROW: u32 = 3;

/// Connected or local; starts connected (start-up waited for Redis to answer).
pub(super) struct Health {
    connected: AtomicBool,
    /// Commands that timed out since the last success.
    slow: AtomicU32,
    metrics: Metrics,
}

impl Health {
    pub(super) fn new(metrics: Metrics) -> Self {
        metrics.redis_connected(true);
        Self {
            connected: AtomicBool::new(true),
            slow: AtomicU32::new(0),
            metrics,
        }
    }

    pub(super) fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Redis answered: rejoin if this replica had gone local.
    pub(super) fn succeeded(&self) {
        self.slow.store(0, Ordering::Relaxed);
        if !self.connected.swap(true, Ordering::Relaxed) {
            self.metrics.redis_connected(true);
            tracing::warn!(
                "redis is reachable again: this replica shares state with the others again"
            );
        }
    }

    /// The replica count the last heartbeat saw.
    pub(super) fn replicas(&self, count: u32) {
        self.metrics.redis_replicas(count);
    }

    /// A command failed: counted; a failure to reach Redis (not a refusal of one
    /// command), or the third timeout in a row, turns the replica local.
    pub(super) fn failed(&self, error: &RedisStoreError) {
        self.metrics.redis_error();
        let gone = match classify(error) {
            Failure::Unreachable => true,
            Failure::Slow => self.slow.fetch_add(1, Ordering::Relaxed) + 1 >= SLOW_IN_A_ROW,
            Failure::Refused => false,
        };
        if gone && self.connected.swap(false, Ordering::Relaxed) {
            self.metrics.redis_connected(false);
            tracing::warn!(%error, "redis is unreachable: this replica runs on local state (cache, a share of the budget) until it returns");
        }
    }
}

/// How a command failed.
enum Failure {
    /// Redis cannot be reached (refused, dropped, unusable connection).
    Unreachable,
    /// No answer in time.
    Slow,
    /// Redis refused this one command (a script error, a wrong type).
    Refused,
}

fn classify(error: &RedisStoreError) -> Failure {
    match error {
        RedisStoreError::Timeout(_) => Failure::Slow,
        RedisStoreError::Redis(error) if error.is_timeout() => Failure::Slow,
        RedisStoreError::Redis(error)
            if error.is_io_error()
                || error.is_connection_refusal()
                || error.is_connection_dropped()
                || error.is_unrecoverable_error() =>
        {
            Failure::Unreachable
        }
        RedisStoreError::Redis(_)
        | RedisStoreError::BadUrl(_)
        | RedisStoreError::CaFile { .. }
        | RedisStoreError::Auth(_)
        | RedisStoreError::Corrupt(_) => Failure::Refused,
    }
}
