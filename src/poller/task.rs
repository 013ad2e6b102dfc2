//! The poll loop of one registration: poll, publish a change, wait; until the
//! workflow ends, polling fails for good, or nobody watches. When replicas share
//! pollers, the loop runs only while this replica holds the registration's lease
//! (`replica.rs` decides); each change and checkpoint is then written to Redis
//! under the lease's fencing token first.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;
use tracing::Instrument;

use super::backoff::Backoff;
use super::cluster::{Checkpoint, ClusterError, Lease};
use super::feed::{PollerEnd, StatusEvent};
use super::{Entry, PollersState};
use crate::budget::Priority;
use crate::cache::StatusKey;
use crate::credential::Credential;
use crate::upstream::{UpstreamError, WorkflowState, WorkflowStatus};

/// The lease this poller polled under was taken over by another replica: it must
/// stop polling and publishing.
pub(super) struct Deposed;

/// What one poll decided.
enum Next {
    /// Poll again after this delay.
    Again(Duration),
    /// Stop watching.
    End(PollerEnd),
}

/// The state of one poll loop.
pub(super) struct Poller {
    pub(super) state: Arc<PollersState>,
    pub(super) entry: Arc<Entry>,
    credential: Credential,
    pub(super) key: StatusKey,
    pub(super) backoff: Backoff,
    pub(super) sequence: u64,
    pub(super) last_state: Option<WorkflowState>,
    /// When the newest status this poller saw was fetched.
    pub(super) last_fetched: Option<DateTime<Utc>>,
    pub(super) failures: u32,
    pub(super) blocked_since: Option<Instant>,
    /// When this poller's next poll is due (its last poll plus the delay its
    /// backoff planned; when it started, before the first): its place in the
    /// budget's rotation when polls wait their turn, so a blocked registration on
    /// its slow cadence comes round less often than one that moves.
    due: Instant,
    /// The lease this replica polls under, when replicas share pollers.
    pub(super) lease: Option<Lease>,
    /// When the first poll is due: the plan of the replica this one took over from.
    pub(super) resume_at: Option<Instant>,
    /// Since when Redis commands fail (logged on changes only); `None` while they pass.
    pub(super) redis_failing_since: Option<Instant>,
    /// Whether this replica's latest change has not reached the shared stream yet
    /// (Redis failed when it was published): the holder shares it at its next poll.
    pub(super) unshared: bool,
}

impl Poller {
    pub(super) fn new(
        state: Arc<PollersState>,
        entry: Arc<Entry>,
        credential: Credential,
        key: StatusKey,
    ) -> Self {
        let backoff = Backoff::new(state.settings.pacing.clone());
        // Seeded from the registration's history: only changes are published.
        let (sequence, last_state) = {
            let feed = entry.feed.borrow();
            let last_state = feed.latest().map(|event| event.status.state.clone());
            (feed.latest_sequence(), last_state)
        };
        Self {
            state,
            entry,
            credential,
            key,
            backoff,
            sequence,
            last_state,
            last_fetched: None,
            failures: 0,
            blocked_since: None,
            due: Instant::now(),
            lease: None,
            resume_at: None,
            redis_failing_since: None,
            unshared: false,
        }
    }

    /// Polls until the watch ends, publishes the end and leaves the registry; or
    /// goes on polling when a subscriber joined while it was about to stop.
    pub(super) async fn run(mut self) {
        loop {
            let end = match self.state.cluster.clone() {
                Some(cluster) => self.coordinate(&cluster).await,
                None => self.poll_alone().await,
            };
            if self.state.finish(&self.key, &self.entry, &end) {
                tracing::debug!(domain = %self.key.domain, account = %self.key.account, ?end, "poller stopped");
                return;
            }
        }
    }

    /// Polls with no lease (no Redis, or Redis unreachable) until the watch ends.
    pub(super) async fn poll_alone(&mut self) -> PollerEnd {
        loop {
            // Only a lease can be lost, and this loop holds none.
            if let Ok(end) = self.poll_until_an_end().await {
                return end;
            }
        }
    }

    /// Polls until the watch ends, or until the lease it polls under is lost.
    pub(super) async fn poll_until_an_end(&mut self) -> Result<PollerEnd, Deposed> {
        if let Some(at) = self.resume_at.take() {
            // Taken over: the first poll is when the previous holder planned it.
            let delay = at.saturating_duration_since(Instant::now());
            self.due = at;
            self.entry.plan_next_check(Some(after(delay)));
            if let Some(end) = self.wait(delay).await {
                self.entry.plan_next_check(None);
                return Ok(end);
            }
        }
        loop {
            // A root span per tick: a poll serves every subscriber, no one request.
            let tick = tracing::info_span!(parent: None, "poller.tick", domain = %self.key.domain);
            let delay = match self.poll_once().instrument(tick).await? {
                Next::Again(delay) => delay,
                Next::End(end) => {
                    self.entry.plan_next_check(None);
                    return Ok(end);
                }
            };
            self.due = Instant::now() + delay;
            self.entry
                .plan_next_check(Some(self.planned(delay, self.priority())));
            self.save_checkpoint(delay).await?;
            if let Some(end) = self.wait(delay).await {
                self.entry.plan_next_check(None);
                return Ok(end);
            }
        }
    }

    /// One poll: a status newer than the last one seen (a query may have fetched
    /// it meanwhile), else a fresh fetch within the budget.
    async fn poll_once(&mut self) -> Result<Next, Deposed> {
        let key = self.key.clone();
        let priority = match self.newer_in_cache().await {
            true => self.priority(),
            false => match self.take_turn().await {
                Ok(()) => Priority::Granted,
                Err(end) => return Ok(Next::End(end)),
            },
        };
        let cache = &self.state.cache;
        let fetched = cache
            .fetch_newer_than(&self.credential, key, self.last_fetched, priority)
            .await;
        if let Err(error) = &fetched
            && let UpstreamError::OverBudget { retry_after } = error.as_ref()
        {
            // Not a failure: the budget is short, so this poller waits its turn.
            return Ok(Next::Again(self.backoff.after_failure(Some(*retry_after))));
        }
        self.state.polls.fetch_add(1, Ordering::Relaxed);
        self.state.metrics.poll();
        match fetched {
            Ok(snapshot) => {
                self.failures = 0;
                self.last_fetched = Some(snapshot.fetched_at);
                match &snapshot.status {
                    Some(status) => self.observe(Arc::clone(status), snapshot.fetched_at).await,
                    None if self.entry.awaits_workflow() => Ok(Next::Again(
                        self.backoff
                            .after_observation(&WorkflowState::Pending, false),
                    )),
                    None => Ok(Next::End(PollerEnd::NotFound)),
                }
            }
            Err(error) => Ok(self.failed(error)),
        }
    }

    /// Whether the cache holds a status newer than this poller's last (a query
    /// fetched it): the poll then costs no upstream call and needs no turn.
    async fn newer_in_cache(&self) -> bool {
        let cached = self.state.cache.peek(&self.key).await;
        cached.is_some_and(|snapshot| {
            self.last_fetched
                .is_none_or(|since| snapshot.fetched_at > since)
        })
    }

    /// Waits for this poll's turn in the credential's budget: at once when the
    /// budget has room, else in the rotation of polls (see [`crate::budget`]). Leaves
    /// the line on shutdown, and while nobody watches (the poller stops after the
    /// grace period, or takes its place again when a subscriber comes back).
    async fn take_turn(&mut self) -> Result<(), PollerEnd> {
        let budget = self.state.budget.clone();
        let shutdown = self.state.shutdown.clone();
        let entry = Arc::clone(&self.entry);
        let credential = self.credential.fingerprint();
        loop {
            // Queries (`nextCheckAt`) say when the turn is expected.
            self.entry
                .plan_next_check(Some(after(budget.turn_wait(credential, self.priority()))));
            {
                let turn = budget.turn(credential, self.priority(), self.due);
                tokio::pin!(turn);
                loop {
                    let notified = entry.subscribers_changed.notified();
                    tokio::select! {
                        () = shutdown.cancelled() => return Err(PollerEnd::ShuttingDown),
                        () = &mut turn => return Ok(()),
                        () = notified => {
                            if !self.anyone_watches().await {
                                break;
                            }
                        }
                    }
                }
            }
            if let Some(end) = self.wait(Duration::ZERO).await {
                return Err(end);
            }
        }
    }

    /// When the next poll (of `priority`) is planned, `delay` from now: later when
    /// polls wait their turn in the budget.
    fn planned(&self, delay: Duration, priority: Priority) -> DateTime<Utc> {
        let turn = self
            .state
            .budget
            .turn_wait(self.credential.fingerprint(), priority);
        after(delay.max(turn))
    }

    /// Blocked and paused workflows poll in the background class of the budget,
    /// so they never starve workflows that move.
    fn priority(&self) -> Priority {
        self.last_state
            .as_ref()
            .map_or(Priority::Foreground, priority_in)
    }

    /// Decides what follows a status, then publishes it if its state changed, with
    /// the next check that decision planned.
    async fn observe(
        &mut self,
        status: Arc<WorkflowStatus>,
        fetched_at: DateTime<Utc>,
    ) -> Result<Next, Deposed> {
        let changed = self.last_state.as_ref() != Some(&status.state);
        let step = self.decide(&status, changed);
        if changed {
            let next_check_at = match &step {
                Next::Again(delay) => Some(self.planned(*delay, priority_in(&status.state))),
                Next::End(_) => None,
            };
            self.publish(status, fetched_at, next_check_at).await?;
        } else if !self.entry.feed.borrow().current {
            // The history this poller took over is confirmed current.
            self.entry.feed.send_modify(|feed| {
                let mut confirmed = (**feed).clone();
                confirmed.current = true;
                *feed = Arc::new(confirmed);
            });
        }
        Ok(step)
    }

    fn decide(&mut self, status: &WorkflowStatus, changed: bool) -> Next {
        let state = status.state.clone();
        self.blocked_since = match (&state, self.blocked_since) {
            (WorkflowState::Blocked, Some(since)) => Some(since),
            (WorkflowState::Blocked, None) => Some(Instant::now()),
            _ => None,
        };
        if status.completed {
            return Next::End(PollerEnd::Completed);
        }
        if state == WorkflowState::ActionRequired && self.entry.keep_watchers() == 0 {
            return Next::End(PollerEnd::ActionRequired);
        }
        if let Some(since) = self.blocked_since {
            // Measured from when this gateway saw the block begin (carried over to
            // a replica taking the poller over), not from the upstream's
            // `updated_at`: a registration blocked for days still gets the full
            // watch for a new subscriber, who first receives its current status.
            let blocked_for = since.elapsed();
            if blocked_for >= self.state.settings.blocked_max_watch {
                return Next::End(PollerEnd::Expired { blocked_for });
            }
        }
        Next::Again(self.backoff.after_observation(&state, changed))
    }

    /// Publishes a change: to Redis first under the lease (which numbers it for all
    /// replicas), then to this replica's subscribers. When Redis fails, this
    /// replica's subscribers still get it, numbered on from their last one.
    async fn publish(
        &mut self,
        status: Arc<WorkflowStatus>,
        fetched_at: DateTime<Utc>,
        next_check_at: Option<DateTime<Utc>>,
    ) -> Result<(), Deposed> {
        let mut event = StatusEvent {
            sequence: self.sequence + 1,
            previous_state: self.last_state.clone(),
            status,
            fetched_at,
            next_check_at,
        };
        if let (Some(cluster), Some(lease)) = (&self.state.cluster, &self.lease) {
            match cluster.publish(&self.key, lease, &event).await {
                Ok(sequence) => {
                    event.sequence = sequence;
                    self.redis_answered();
                }
                Err(ClusterError::Fenced) => return Err(Deposed),
                Err(error) => {
                    self.redis_failed(&error);
                    self.unshared = true;
                }
            }
        }
        self.sequence = event.sequence;
        self.last_state = Some(event.status.state.clone());
        let bound = self.state.settings.history;
        self.entry
            .feed
            .send_modify(|feed| *feed = Arc::new(feed.with_event(event, bound)));
        self.state.metrics.event_published();
        Ok(())
    }

    /// Stores where polling stands in Redis, for a replica that may take over;
    /// first shares the latest change if Redis failed when it was published.
    async fn save_checkpoint(&mut self, delay: Duration) -> Result<(), Deposed> {
        let (Some(cluster), Some(lease)) = (self.state.cluster.clone(), self.lease.clone()) else {
            return Ok(());
        };
        let latest = self.entry.feed.borrow().latest().cloned();
        if let Some(event) = latest.filter(|_| self.unshared) {
            match cluster.publish(&self.key, &lease, &event).await {
                Ok(sequence) => {
                    self.unshared = false;
                    self.sequence = self.sequence.max(sequence);
                }
                Err(ClusterError::Fenced) => return Err(Deposed),
                Err(error) => self.redis_failed(&error),
            }
        }
        let checkpoint = Checkpoint {
            backoff: self.backoff.position(),
            failures: self.failures,
            blocked_since: self.blocked_since.map(|since| {
                Utc::now() - chrono::TimeDelta::from_std(since.elapsed()).unwrap_or_default()
            }),
            next_check_at: Some(after(delay)),
            last_fetched: self.last_fetched,
        };
        match cluster.checkpoint(&self.key, &lease, &checkpoint).await {
            Ok(()) => self.redis_answered(),
            Err(ClusterError::Fenced) => return Err(Deposed),
            Err(error) => self.redis_failed(&error),
        }
        Ok(())
    }

    /// Retries what may pass (5xx, 408, 409, timeouts, 429 after its Retry-After);
    /// gives up on what cannot (refused credentials, other 4xx, unreadable answers)
    /// or after too many failures.
    fn failed(&mut self, error: Arc<UpstreamError>) -> Next {
        self.failures += 1;
        let retryable = error.is_transient();
        tracing::debug!(domain = %self.key.domain, failures = self.failures, %error, "poll failed");
        if !retryable || self.failures >= self.state.settings.max_failures {
            return Next::End(PollerEnd::GaveUp(error));
        }
        Next::Again(self.backoff.after_failure(error.retry_after()))
    }

    /// Waits `delay` for the next poll. While nobody watches, it does not poll and
    /// stops after the grace period; it stops at once on shutdown, and when the
    /// last keep-watching subscriber of a paused workflow leaves.
    async fn wait(&mut self, delay: Duration) -> Option<PollerEnd> {
        let next_poll = Instant::now() + delay;
        let mut idle_deadline: Option<Instant> = None;
        let entry = Arc::clone(&self.entry);
        loop {
            let notified = entry.subscribers_changed.notified();
            let idle = !self.anyone_watches().await;
            if !idle {
                idle_deadline = None;
                let paused = self.last_state == Some(WorkflowState::ActionRequired);
                if paused && self.entry.keep_watchers() == 0 {
                    return Some(PollerEnd::ActionRequired);
                }
            }
            let grace = self.state.settings.grace;
            let wake_at = match idle {
                true => *idle_deadline.get_or_insert_with(|| Instant::now() + grace),
                false => next_poll,
            };
            tokio::select! {
                () = self.state.shutdown.cancelled() => return Some(PollerEnd::ShuttingDown),
                () = notified => continue,
                () = tokio::time::sleep_until(wake_at) => {}
            }
            match (idle, self.anyone_watches().await) {
                // Time for the next poll.
                (false, _) => return None,
                (true, false) => return Some(PollerEnd::Idle),
                // Someone came back during the grace period: wait for the poll.
                (true, true) => {}
            }
        }
    }
}

impl Poller {
    /// Whether anyone watches: a subscriber here, or (for the lease holder) a
    /// subscriber on a replica that follows this one.
    async fn anyone_watches(&mut self) -> bool {
        if self.entry.watchers() > 0 {
            return true;
        }
        let (Some(cluster), Some(_)) = (self.state.cluster.clone(), &self.lease) else {
            return false;
        };
        match cluster.watched_elsewhere(&self.key).await {
            Ok(watched) => {
                self.redis_answered();
                watched
            }
            Err(error) => {
                self.redis_failed(&error);
                false
            }
        }
    }

    /// Logs Redis failing for this registration, once until it answers again.
    pub(super) fn redis_failed(&mut self, error: &ClusterError) {
        if self.redis_failing_since.is_none() {
            // The store warns once for the replica; this says which registrations.
            tracing::debug!(domain = %self.key.domain, account = %self.key.account, %error,
                "redis failed: this replica polls and publishes the registration on its own until redis answers");
        }
        self.redis_failing_since.get_or_insert_with(Instant::now);
    }

    /// How long Redis commands have been failing (zero while they pass).
    pub(super) fn redis_failing_for(&self) -> Duration {
        self.redis_failing_since
            .map(|since| since.elapsed())
            .unwrap_or_default()
    }

    /// Notes that Redis answers again.
    pub(super) fn redis_answered(&mut self) {
        if self.redis_failing_since.is_some() {
            tracing::info!(domain = %self.key.domain, account = %self.key.account, "redis answers again: the registration is shared again");
        }
        self.redis_failing_since = None;
    }
}

/// The budget class of a registration's polls in `state`.
fn priority_in(state: &WorkflowState) -> Priority {
    match state {
        WorkflowState::Blocked | WorkflowState::ActionRequired => Priority::Background,
        _ => Priority::Foreground,
    }
}

/// The wall-clock time `delay` from now.
pub(super) fn after(delay: Duration) -> DateTime<Utc> {
    Utc::now() + chrono::TimeDelta::from_std(delay).unwrap_or(chrono::TimeDelta::MAX)
}
