//! Whether this replica is sharing state through Redis or running on local state,
//! with one warning line and a gauge change on each transition (not on each error:
//! an outage would otherwise log once per request).

use std::sync::atomic::{AtomicBool, Ordering};

use super::SharedError;
use crate::metrics::Metrics;

/// Connected or local; starts connected (start-up waited for Redis to answer).
pub(super) struct Health {
    connected: AtomicBool,
    metrics: Metrics,
}

impl Health {
    pub(super) fn new(metrics: Metrics) -> Self {
        metrics.redis_connected(true);
        Self {
            connected: AtomicBool::new(true),
            metrics,
        }
    }

    pub(super) fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Redis answered: rejoin if this replica had gone local.
    pub(super) fn succeeded(&self) {
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
    /// command) turns the replica local.
    pub(super) fn failed(&self, error: &SharedError) {
        self.metrics.redis_error();
        if unreachable(error) && self.connected.swap(false, Ordering::Relaxed) {
            self.metrics.redis_connected(false);
            tracing::warn!(%error, "redis is unreachable: this replica runs on local state (cache, a share of the budget) until it returns");
        }
    }
}

/// Whether `error` means Redis cannot be reached, rather than that it refused one command.
fn unreachable(error: &SharedError) -> bool {
    match error {
        SharedError::Timeout(_) => true,
        SharedError::Redis(error) => {
            error.is_io_error()
                || error.is_connection_refusal()
                || error.is_connection_dropped()
                || error.is_timeout()
                || error.is_unrecoverable_error()
        }
        SharedError::BadUrl(_) | SharedError::Corrupt(_) => false,
    }
}
