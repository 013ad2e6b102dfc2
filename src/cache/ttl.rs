//! Time-to-live by workflow state: an answer is kept as long as it is likely to stay true.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Snapshot, StatusKey};
use crate::upstream::WorkflowState;

/// How long each kind of answer is served from cache.
#[derive(Clone, Debug)]
pub struct TtlPolicy {
    /// `pending`, `in_progress` and unknown states: the workflow is moving.
    pub active: Duration,
    /// `blocked` and `action_required`: waiting on a third party or the user.
    pub waiting: Duration,
    /// `succeeded` and `failed`: they never change.
    pub terminal: Duration,
    /// No workflow for the domain (it may be created at any moment).
    pub not_found: Duration,
}

impl TtlPolicy {
    /// The TTL for one snapshot.
    pub fn ttl_for(&self, snapshot: &Snapshot) -> Duration {
        match snapshot.status.as_ref().map(|status| &status.state) {
            None => self.not_found,
            Some(state) if state.is_terminal() => self.terminal,
            Some(WorkflowState::Blocked | WorkflowState::ActionRequired) => self.waiting,
            Some(_) => self.active,
        }
    }
}

impl moka::Expiry<StatusKey, Arc<Snapshot>> for TtlPolicy {
    fn expire_after_create(
        &self,
        _: &StatusKey,
        snapshot: &Arc<Snapshot>,
        _: Instant,
    ) -> Option<Duration> {
        Some(self.ttl_for(snapshot))
    }

    fn expire_after_update(
        &self,
        _: &StatusKey,
        snapshot: &Arc<Snapshot>,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(self.ttl_for(snapshot))
    }
}
