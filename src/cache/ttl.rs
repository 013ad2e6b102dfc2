//! Time-to-live by workflow state: an answer is kept as long as it is likely to stay true.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Snapshot, StatusKey};
use crate::upstream::WorkflowState;

/// How long each kind of answer is served from cache.
#[derive(Clone, Debug)]
pub struct TtlPolicy {
    /// `pending`, `in_progress` and unknown states not `completed`: the workflow is moving.
    pub active: Duration,
    /// `blocked` and `action_required`: waiting on a third party or the user.
    pub waiting: Duration,
    /// `completed` workflows (`succeeded`, `failed`, or any state marked completed): they never change.
    pub terminal: Duration,
    /// No workflow for the domain (it may be created at any moment).
    pub not_found: Duration,
}

impl TtlPolicy {
    /// The TTL for one snapshot.
    pub fn ttl_for(&self, snapshot: &Snapshot) -> Duration {
        match snapshot.status.as_deref() {
            None => self.not_found,
            Some(status) if status.completed => self.terminal,
            Some(status) => match status.state {
                WorkflowState::Blocked | WorkflowState::ActionRequired => self.waiting,
                _ => self.active,
            },
        }
    }
}

/// How much of its freshness `snapshot` has left: its TTL less its age (a snapshot
/// another replica fetched a while ago, read from the shared level, is not fresh
/// for a whole TTL more).
pub(super) fn remaining(policy: &TtlPolicy, snapshot: &Snapshot) -> Duration {
    policy.ttl_for(snapshot).saturating_sub(age(snapshot))
}

fn age(snapshot: &Snapshot) -> Duration {
    (chrono::Utc::now() - snapshot.fetched_at)
        .to_std()
        .unwrap_or_default()
}

/// A [`TtlPolicy`] with every TTL extended by `extra`: how long the stale-if-error
/// copy of a snapshot outlives its freshness.
#[derive(Clone, Debug)]
pub(super) struct Extended {
    /// The freshness policy.
    pub policy: TtlPolicy,
    /// Added to each of its TTLs.
    pub extra: Duration,
}

impl Extended {
    fn ttl_for(&self, snapshot: &Snapshot) -> Duration {
        self.policy.ttl_for(snapshot).saturating_add(self.extra)
    }
}

/// moka's per-entry expiry for one policy type: the TTL less the snapshot's age, set on
/// insert and reset on replace, never extended by reads.
macro_rules! expire_by_snapshot {
    ($policy:ty) => {
        impl moka::Expiry<StatusKey, Arc<Snapshot>> for $policy {
            fn expire_after_create(
                &self,
                _: &StatusKey,
                snapshot: &Arc<Snapshot>,
                _: Instant,
            ) -> Option<Duration> {
                Some(self.ttl_for(snapshot).saturating_sub(age(snapshot)))
            }

            fn expire_after_update(
                &self,
                _: &StatusKey,
                snapshot: &Arc<Snapshot>,
                _: Instant,
                _: Option<Duration>,
            ) -> Option<Duration> {
                Some(self.ttl_for(snapshot).saturating_sub(age(snapshot)))
            }
        }
    };
}

expire_by_snapshot!(TtlPolicy);
expire_by_snapshot!(Extended);
