//! A poller's part among replicas: hold the registration's lease and poll, or
//! follow the holder's stream and republish its changes here; take the lease
//! when the holder gives it up or dies; poll alone once Redis has failed for a
//! lease lifetime (the time after which a dead holder would have been replaced
//! anyway; shorter hiccups are retried, so one slow answer does not make every
//! replica poll), and rejoin when it answers.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;

use super::cluster::{Acquired, Cluster, ClusterError, Lease, Record};
use super::feed::{PollerEnd, StatusEvent};
use super::task::{Deposed, Poller};
use crate::upstream::WorkflowState;

/// How often a poller polling alone looks whether the store reaches Redis again.
const REJOIN_EVERY: Duration = Duration::from_secs(1);

/// How following ended.
enum Followed {
    /// The watch ended (told by the holder, or nobody watches here).
    End(PollerEnd),
    /// This replica took the lease: it polls now.
    Lead(Lease),
    /// Redis failed.
    Unreachable(ClusterError),
}

impl Poller {
    /// Polls or follows `key` among the replicas sharing `cluster`, until the watch ends.
    pub(super) async fn coordinate(&mut self, cluster: &Cluster) -> PollerEnd {
        let mut acquired = None;
        loop {
            let attempt = match acquired.take() {
                Some(lease) => Ok(Acquired::Held(lease)),
                None => cluster.acquire(&self.key).await,
            };
            let followed = match attempt {
                Ok(Acquired::Held(lease)) => match self.lead(cluster, lease).await {
                    Some(end) => return end,
                    None => continue,
                },
                Ok(Acquired::Taken { expires_in }) => self.follow(cluster, expires_in).await,
                Err(error) => Followed::Unreachable(error),
            };
            match followed {
                Followed::End(end) => return end,
                Followed::Lead(lease) => acquired = Some(lease),
                Followed::Unreachable(error) => {
                    self.redis_failed(&error);
                    let ttl = cluster.settings().lease_ttl;
                    if self.redis_failing_for() < ttl {
                        tokio::select! {
                            () = self.state.shutdown.cancelled() => return PollerEnd::ShuttingDown,
                            () = tokio::time::sleep(ttl / 10) => continue,
                        }
                    }
                    if let Some(end) = self.poll_until_redis_answers(cluster).await {
                        return end;
                    }
                }
            }
        }
    }

    /// Polls as the holder of `lease`, from where the previous holder stood, until
    /// the watch ends (then tells the followers and gives the lease up) or the
    /// lease is lost (`None`).
    async fn lead(&mut self, cluster: &Cluster, lease: Lease) -> Option<PollerEnd> {
        match cluster.load(&self.key).await {
            Ok(history) => {
                self.redis_answered();
                let shared_latest = history.events.last().map_or(0, |event| event.sequence);
                // Changes this replica published while Redis failed reach the others now.
                self.unshared = self.entry.feed.borrow().latest_sequence() > shared_latest;
                self.take_history(history.events);
                if let Some(checkpoint) = history.checkpoint {
                    self.resume_from(&checkpoint);
                }
            }
            Err(error) => self.redis_failed(&error),
        }
        tracing::info!(domain = %self.key.domain, account = %self.key.account, sequence = self.sequence, "took the poller lease: this replica polls the registration for all replicas");
        let _held = self.state.metrics.poller_lease();
        self.lease = Some(lease.clone());
        let key = self.key.clone();
        let polled = tokio::select! {
            polled = self.poll_until_an_end() => polled,
            () = cluster.keep_renewed(&key, &lease) => Err(Deposed),
        };
        self.lease = None;
        let Ok(end) = polled else {
            tracing::info!(domain = %key.domain, "another replica took over polling this registration");
            return None;
        };
        // Best effort: a follower that misses these takes the lease when it expires.
        let told = match cluster.publish_end(&key, &lease, &end).await {
            Ok(()) | Err(ClusterError::Fenced) => cluster.release(&key, &lease).await,
            Err(error) => Err(error),
        };
        if let Err(error) = told {
            tracing::debug!(domain = %key.domain, %error, "could not release the poller lease");
        }
        Some(end)
    }

    /// Follows the holder's stream into this replica's feed, asking for the lease
    /// when it may have expired or was given up.
    async fn follow(&mut self, cluster: &Cluster, expires_in: Duration) -> Followed {
        let history = match cluster.load(&self.key).await {
            Ok(history) => history,
            Err(error) => return Followed::Unreachable(error),
        };
        let shared_latest = history.events.last().map_or(0, |event| event.sequence);
        let local_latest = self.entry.feed.borrow().latest_sequence();
        if local_latest > shared_latest
            && let Err(error) = cluster.raise_sequence(&self.key, local_latest).await
        {
            return Followed::Unreachable(error);
        }
        self.redis_answered();
        let mut following = cluster.follow(&self.key, history.last_id);
        if !history.events.is_empty() {
            // The holder's latest change is the registration's current status.
            self.take_history(history.events);
            self.confirm_current();
        }
        let renew_every = cluster.settings().lease_ttl / 3;
        let grace = self.state.settings.grace;
        let mut ask_at = Instant::now() + expires_in.min(renew_every);
        let mut idle_until: Option<Instant> = None;
        let mut marked = false;
        let entry = Arc::clone(&self.entry);
        loop {
            let notified = entry.subscribers_changed.notified();
            let watched = self.entry.watchers() > 0;
            if watched && !marked {
                // A failure is retried with the next ask for the lease.
                marked = cluster.mark_watched(&self.key).await.is_ok();
            }
            let idle_deadline = match watched {
                true => {
                    idle_until = None;
                    None
                }
                false => Some(*idle_until.get_or_insert_with(|| Instant::now() + grace)),
            };
            tokio::select! {
                () = self.state.shutdown.cancelled() => return Followed::End(PollerEnd::ShuttingDown),
                () = notified => {}
                record = following.next() => match record {
                    // The relay stops only when the gateway does.
                    None => return Followed::End(PollerEnd::ShuttingDown),
                    Some(Ok(Record::Released)) => ask_at = Instant::now(),
                    Some(Ok(record)) => {
                        if let Some(end) = self.apply(record) {
                            return Followed::End(end);
                        }
                    }
                    Some(Err(error)) => {
                        tracing::warn!(domain = %self.key.domain, %error, "skipped an unreadable shared event");
                    }
                },
                () = sleep_until_some(idle_deadline) => {
                    if self.entry.watchers() == 0 {
                        return Followed::End(PollerEnd::Idle);
                    }
                }
                () = tokio::time::sleep_until(ask_at) => {
                    match cluster.acquire(&self.key).await {
                        Ok(Acquired::Held(lease)) => return Followed::Lead(lease),
                        Ok(Acquired::Taken { expires_in }) => {
                            self.redis_answered();
                            // Padded so that the next ask comes after an unrenewed expiry.
                            let next = (expires_in + Duration::from_millis(5)).min(renew_every);
                            ask_at = Instant::now() + next;
                        }
                        Err(error) => {
                            self.redis_failed(&error);
                            if self.redis_failing_for() >= cluster.settings().lease_ttl {
                                return Followed::Unreachable(error);
                            }
                            ask_at = Instant::now() + renew_every / 4;
                        }
                    }
                    marked = false;
                }
            }
        }
    }

    /// Applies a followed entry; the end of the watch it brings, if any.
    fn apply(&mut self, record: Record) -> Option<PollerEnd> {
        let event = match record {
            Record::Event(event) => event,
            Record::End(end) => return Some(end),
            Record::Released => return None,
        };
        if event.sequence <= self.entry.feed.borrow().latest_sequence() {
            return None;
        }
        self.entry.plan_next_check(event.next_check_at);
        let completed = event.status.completed;
        let paused = event.status.state == WorkflowState::ActionRequired;
        self.take_history(vec![event]);
        // A change just published by the holder is the current status.
        self.confirm_current();
        self.state.metrics.event_published();
        if completed {
            return Some(PollerEnd::Completed);
        }
        (paused && self.entry.keep_watchers() == 0).then_some(PollerEnd::ActionRequired)
    }

    /// Appends the changes this replica has not seen to its feed, and goes on
    /// numbering after them.
    fn take_history(&mut self, events: Vec<StatusEvent>) {
        let bound = self.state.settings.history;
        self.entry.feed.send_modify(|feed| {
            let mut next = (**feed).clone();
            let current = next.current;
            for event in events {
                if event.sequence > next.latest_sequence() {
                    next = next.with_event(event, bound);
                }
            }
            next.current = current;
            *feed = Arc::new(next);
        });
        let feed = self.entry.feed.borrow();
        self.sequence = feed.latest_sequence();
        self.last_state = feed.latest().map(|event| event.status.state.clone());
    }

    /// Marks this replica's feed as the registration's current status.
    fn confirm_current(&self) {
        if !self.entry.feed.borrow().current {
            self.entry.feed.send_modify(|feed| {
                let mut confirmed = (**feed).clone();
                confirmed.current = true;
                *feed = Arc::new(confirmed);
            });
        }
    }

    /// Goes on from the previous holder's checkpoint: same backoff position,
    /// failures, blocked-since and next poll.
    fn resume_from(&mut self, checkpoint: &super::cluster::Checkpoint) {
        let now = Utc::now();
        let ago = |at: chrono::DateTime<Utc>| (now - at).to_std().unwrap_or_default();
        self.backoff.resume(checkpoint.backoff);
        self.failures = checkpoint.failures;
        self.blocked_since = checkpoint
            .blocked_since
            .and_then(|since| Instant::now().checked_sub(ago(since)));
        self.last_fetched = self.last_fetched.max(checkpoint.last_fetched);
        if let Some(next) = checkpoint.next_check_at {
            let wait = (next - now).to_std().unwrap_or_default();
            self.resume_at = Some(Instant::now() + wait);
            if !wait.is_zero() {
                // The previous holder was mid-schedule: its latest change is current.
                self.confirm_current();
            }
        }
    }

    /// Polls alone while Redis is unreachable; `None` once it answers again (the
    /// caller rejoins), or the end of the watch.
    async fn poll_until_redis_answers(&mut self, cluster: &Cluster) -> Option<PollerEnd> {
        let _alone = self.state.metrics.poller_unshared();
        let key = self.key.clone();
        let answers = async {
            loop {
                tokio::time::sleep(REJOIN_EVERY).await;
                if cluster.is_connected() {
                    return;
                }
            }
        };
        let polled = tokio::select! {
            end = self.poll_alone() => Some(end),
            () = answers => None,
        };
        if polled.is_none() {
            tracing::debug!(domain = %key.domain, "redis answers: rejoining the replicas");
        }
        polled
    }
}

/// Sleeps until `deadline`, or forever when there is none.
async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
