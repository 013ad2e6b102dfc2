//! The poll loop of one registration: poll, publish a change, wait; until the
//! workflow ends, polling fails for good, or nobody watches.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;
use tracing::Instrument;

use super::backoff::Backoff;
use super::feed::{PollerEnd, StatusEvent};
use super::{Entry, PollersState};
use crate::budget::Priority;
use crate::cache::StatusKey;
use crate::credential::Credential;
use crate::upstream::{UpstreamError, WorkflowState, WorkflowStatus};

/// What one poll decided.
enum Step {
    /// Poll again after this delay.
    Again(Duration),
    /// Stop watching.
    End(PollerEnd),
}

/// The state of one poll loop.
pub(super) struct Poller {
    shared: Arc<PollersState>,
    entry: Arc<Entry>,
    credential: Credential,
    key: StatusKey,
    backoff: Backoff,
    sequence: u64,
    last_state: Option<WorkflowState>,
    /// When the newest status this poller saw was fetched.
    last_fetched: Option<DateTime<Utc>>,
    failures: u32,
    blocked_since: Option<Instant>,
}

impl Poller {
    pub(super) fn new(
        shared: Arc<PollersState>,
        entry: Arc<Entry>,
        credential: Credential,
        key: StatusKey,
    ) -> Self {
        let backoff = Backoff::new(shared.settings.pacing.clone());
        // Seeded from the registration's history: only changes are published.
        let (sequence, last_state) = {
            let feed = entry.feed.borrow();
            let last_state = feed.latest().map(|event| event.status.state.clone());
            (feed.latest_sequence(), last_state)
        };
        Self {
            shared,
            entry,
            credential,
            key,
            backoff,
            sequence,
            last_state,
            last_fetched: None,
            failures: 0,
            blocked_since: None,
        }
    }

    /// Polls until the watch ends, publishes the end and leaves the registry; or
    /// goes on polling when a subscriber joined while it was about to stop.
    pub(super) async fn run(mut self) {
        loop {
            let end = self.poll_until_an_end().await;
            if self.shared.finish(&self.key, &self.entry, &end) {
                tracing::debug!(domain = %self.key.domain, account = %self.key.account, ?end, "poller stopped");
                return;
            }
        }
    }

    async fn poll_until_an_end(&mut self) -> PollerEnd {
        loop {
            // A root span per tick: a poll serves every subscriber, no one request.
            let tick = tracing::info_span!(parent: None, "poller.tick", domain = %self.key.domain);
            let delay = match self.poll_once().instrument(tick).await {
                Step::Again(delay) => delay,
                Step::End(end) => {
                    self.entry.plan_next_check(None);
                    return end;
                }
            };
            self.entry.plan_next_check(Some(after(delay)));
            if let Some(end) = self.wait(delay).await {
                self.entry.plan_next_check(None);
                return end;
            }
        }
    }

    /// One poll: a status newer than the last one seen (a query may have fetched
    /// it meanwhile), else a fresh fetch within the budget.
    async fn poll_once(&mut self) -> Step {
        let key = self.key.clone();
        let cache = &self.shared.cache;
        let fetched = cache
            .fetch_newer_than(&self.credential, key, self.last_fetched, self.priority())
            .await;
        if let Err(error) = &fetched
            && let UpstreamError::OverBudget { retry_after } = error.as_ref()
        {
            // Not a failure: the budget is short, so this poller waits its turn.
            return Step::Again(self.backoff.after_failure(Some(*retry_after)));
        }
        self.shared.polls.fetch_add(1, Ordering::Relaxed);
        self.shared.metrics.poll();
        match fetched {
            Ok(snapshot) => {
                self.failures = 0;
                self.last_fetched = Some(snapshot.fetched_at);
                match &snapshot.status {
                    Some(status) => self.observe(Arc::clone(status), snapshot.fetched_at),
                    None => Step::End(PollerEnd::NotFound),
                }
            }
            Err(error) => self.failed(error),
        }
    }

    /// Blocked and paused workflows poll in the background class of the budget,
    /// so they never starve workflows that move.
    fn priority(&self) -> Priority {
        match self.last_state {
            Some(WorkflowState::Blocked | WorkflowState::ActionRequired) => Priority::Background,
            _ => Priority::Foreground,
        }
    }

    /// Decides what follows a status, then publishes it if its state changed, with
    /// the next check that decision planned.
    fn observe(&mut self, status: Arc<WorkflowStatus>, fetched_at: DateTime<Utc>) -> Step {
        let changed = self.last_state.as_ref() != Some(&status.state);
        let step = self.decide(&status, changed);
        if changed {
            let next_check_at = match &step {
                Step::Again(delay) => Some(after(*delay)),
                Step::End(_) => None,
            };
            self.publish(status, fetched_at, next_check_at);
        } else if !self.entry.feed.borrow().current {
            // The history this poller took over is confirmed current.
            self.entry.feed.send_modify(|feed| {
                let mut confirmed = (**feed).clone();
                confirmed.current = true;
                *feed = Arc::new(confirmed);
            });
        }
        step
    }

    fn decide(&mut self, status: &WorkflowStatus, changed: bool) -> Step {
        let state = status.state.clone();
        self.blocked_since = match (&state, self.blocked_since) {
            (WorkflowState::Blocked, Some(since)) => Some(since),
            (WorkflowState::Blocked, None) => Some(Instant::now()),
            _ => None,
        };
        if status.completed {
            return Step::End(PollerEnd::Completed);
        }
        if state == WorkflowState::ActionRequired && self.entry.keep_watchers() == 0 {
            return Step::End(PollerEnd::ActionRequired);
        }
        if let Some(since) = self.blocked_since {
            // Also from the upstream's own transition time, so that resubscribing
            // (a new poller) does not restart the limit.
            let upstream_says = (Utc::now() - status.updated_at)
                .to_std()
                .unwrap_or_default();
            let blocked_for = since.elapsed().max(upstream_says);
            if blocked_for >= self.shared.settings.blocked_max_watch {
                return Step::End(PollerEnd::Expired { blocked_for });
            }
        }
        Step::Again(self.backoff.after_observation(&state, changed))
    }

    fn publish(
        &mut self,
        status: Arc<WorkflowStatus>,
        fetched_at: DateTime<Utc>,
        next_check_at: Option<DateTime<Utc>>,
    ) {
        self.sequence += 1;
        let event = StatusEvent {
            sequence: self.sequence,
            previous_state: self.last_state.replace(status.state.clone()),
            status,
            fetched_at,
            next_check_at,
        };
        let bound = self.shared.settings.history;
        self.entry
            .feed
            .send_modify(|feed| *feed = Arc::new(feed.with_event(event, bound)));
        self.shared.metrics.event_published();
    }

    /// Retries what may pass (5xx, 408, 409, timeouts, 429 after its Retry-After);
    /// gives up on what cannot (refused credentials, other 4xx, unreadable answers)
    /// or after too many failures.
    fn failed(&mut self, error: Arc<UpstreamError>) -> Step {
        self.failures += 1;
        let retryable = error.is_transient();
        tracing::debug!(domain = %self.key.domain, failures = self.failures, %error, "poll failed");
        if !retryable || self.failures >= self.shared.settings.max_failures {
            return Step::End(PollerEnd::GaveUp(error));
        }
        Step::Again(self.backoff.after_failure(error.retry_after()))
    }

    /// Waits `delay` for the next poll. While nobody watches, it does not poll and
    /// stops after the grace period; it stops at once on shutdown, and when the
    /// last keep-watching subscriber of a paused workflow leaves.
    async fn wait(&self, delay: Duration) -> Option<PollerEnd> {
        let next_poll = Instant::now() + delay;
        let mut idle_deadline: Option<Instant> = None;
        loop {
            let notified = self.entry.subscribers_changed.notified();
            let idle = self.entry.watchers() == 0;
            if !idle {
                idle_deadline = None;
                let paused = self.last_state == Some(WorkflowState::ActionRequired);
                if paused && self.entry.keep_watchers() == 0 {
                    return Some(PollerEnd::ActionRequired);
                }
            }
            let grace = self.shared.settings.grace;
            let wake_at = match idle {
                true => *idle_deadline.get_or_insert_with(|| Instant::now() + grace),
                false => next_poll,
            };
            tokio::select! {
                () = self.shared.shutdown.cancelled() => return Some(PollerEnd::ShuttingDown),
                () = notified => continue,
                () = tokio::time::sleep_until(wake_at) => {}
            }
            match (idle, self.entry.watchers()) {
                // Time for the next poll.
                (false, _) => return None,
                (true, 0) => return Some(PollerEnd::Idle),
                // Someone came back during the grace period: wait for the poll.
                (true, _) => {}
            }
        }
    }
}

/// The wall-clock time `delay` from now.
fn after(delay: Duration) -> DateTime<Utc> {
    Utc::now() + chrono::TimeDelta::from_std(delay).unwrap_or(chrono::TimeDelta::MAX)
}
