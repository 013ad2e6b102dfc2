//! One shared poller per watched registration, however many subscribers.
//!
//! [`Pollers::watch`] hands a subscriber a [`Watcher`]: the registration's current
//! status at once, then one event per change of state. Behind it runs at most one
//! poll loop per [`StatusKey`] (account, domain, credential), reading through the
//! status cache so queries are served from the poller's latest result. A poller stops
//! where the upstream says a poll loop must end (succeeded, failed, action_required
//! unless someone keeps watching, blocked past a maximum), after too many failures,
//! or a grace period after its last subscriber left.
//!
//! Each registration's feed keeps its last changes (`--subscription-history`), and
//! outlives its poller for `--subscription-history-retention`: a subscriber that
//! reconnects with the last sequence it saw (`afterSequence`, SSE `Last-Event-ID`)
//! first gets the changes it missed, with sequences that go on where they were,
//! even when the poller stopped and started again meanwhile.
//!
//! With Redis (`--redis-url`), replicas share this: one of them polls each
//! registration and the others follow its changes, with the same sequence
//! numbers everywhere (`cluster/`, `replica.rs`). The API above stays the same.

mod backoff;
mod cluster;
mod feed;
mod replica;
mod task;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use backoff::Pacing;
pub use cluster::{Cluster, ClusterSettings};
pub use feed::{Delivery, PollerEnd, StatusEvent, WatchError, Watcher};

use crate::budget::Budget;
use crate::cache::{StatusCache, StatusKey};
use crate::credential::Credential;
use crate::metrics::Metrics;
use crate::sync::LockUnpoisoned;
use feed::Feed;

/// Settings shared by every poller.
#[derive(Clone, Debug)]
pub struct PollerSettings {
    /// Poll intervals.
    pub pacing: Pacing,
    /// How long a workflow may stay blocked before watchers are told to give up.
    pub blocked_max_watch: Duration,
    /// How long a poller outlives its last subscriber (a reconnecting tab finds it warm).
    pub grace: Duration,
    /// Consecutive failed polls before the poller gives up.
    pub max_failures: u32,
    /// Most subscribers across all registrations.
    pub max_watchers: usize,
    /// Changes kept per registration for subscribers that resume.
    pub history: usize,
    /// How long a registration's history outlives its poller.
    pub history_retention: Duration,
}

/// Why a watch could not start.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WatchRefused {
    /// The gateway-wide subscriber limit is reached.
    #[error("the gateway watches the most registrations it may ({0} subscribers)")]
    TooManyWatchers(usize),
}

/// Counters of the poll economy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PollerStats {
    /// Pollers running now.
    pub active_pollers: usize,
    /// Subscribers attached now.
    pub active_watchers: usize,
    /// Pollers started since start-up.
    pub pollers_started: u64,
    /// Polls made (each one upstream call at most; polls the budget deferred are not counted).
    pub polls: u64,
}

/// The registry of pollers; cheap to clone.
#[derive(Clone)]
pub struct Pollers {
    state: Arc<PollersState>,
}

struct PollersState {
    settings: PollerSettings,
    cache: StatusCache,
    /// The budget whose turns pace the polls when it is short.
    budget: Budget,
    registry: Mutex<Registry>,
    pollers_started: AtomicU64,
    polls: AtomicU64,
    /// The number of running pollers, for those who wait for none.
    active: tokio::sync::watch::Sender<usize>,
    shutdown: CancellationToken,
    /// Pollers running, polls and published events.
    metrics: Metrics,
    /// The replicas this one shares pollers with; `None` without Redis.
    cluster: Option<Cluster>,
}

#[derive(Default)]
struct Registry {
    entries: HashMap<StatusKey, Arc<Entry>>,
    /// The histories of registrations nobody polls now, kept for resuming subscribers.
    retired: HashMap<StatusKey, Retired>,
    /// The highest sequence of any history forgotten so far. A history started
    /// afresh numbers its events past it (with a gap), so that a subscriber resuming
    /// from a forgotten history is told it resynced rather than handed events of
    /// another history that happen to carry the next numbers.
    forgotten_sequence: u64,
    watchers: usize,
}

/// A stopped poller's history.
struct Retired {
    feed: Feed,
    since: Instant,
}

/// One poller's shared state. Counts change only under the registry lock.
struct Entry {
    feed: tokio::sync::watch::Sender<Arc<Feed>>,
    watchers: std::sync::atomic::AtomicUsize,
    keep_watchers: std::sync::atomic::AtomicUsize,
    /// Wakes the poll loop when subscribers come or go.
    subscribers_changed: Notify,
    /// When the poller next asks the upstream, in Unix milliseconds; [`NO_CHECK`]
    /// when it will not. An atomic, not part of the feed: it changes on every poll,
    /// and subscribers must not be woken for it.
    next_check: AtomicI64,
    /// Until when (Unix milliseconds) "no workflow" means "not visible yet" rather
    /// than an end: set after a registration POST whose outcome is unknown;
    /// [`NO_CHECK`] otherwise.
    awaiting_workflow_until: AtomicI64,
}

/// [`Entry::next_check`] when no poll is planned.
const NO_CHECK: i64 = i64::MIN;

impl Pollers {
    /// A registry polling through `cache`, each poll in its turn of `budget`; every
    /// poller stops when `shutdown` is cancelled. Pollers, polls and published events
    /// are counted in `metrics`. With a `cluster`, each registration is polled by one
    /// replica of it.
    pub fn new(
        settings: PollerSettings,
        cache: StatusCache,
        budget: Budget,
        shutdown: CancellationToken,
        metrics: Metrics,
        cluster: Option<Cluster>,
    ) -> Self {
        let state = PollersState {
            settings,
            cache,
            budget,
            registry: Mutex::default(),
            pollers_started: AtomicU64::new(0),
            polls: AtomicU64::new(0),
            active: tokio::sync::watch::Sender::new(0),
            shutdown,
            metrics,
            cluster,
        };
        Self {
            state: Arc::new(state),
        }
    }

    /// Watches `key` as `credential`, from the changes after `after_sequence` when
    /// given. A registration already known to be terminal is answered from its
    /// history or the cache with no poller and no upstream call.
    pub async fn watch(
        &self,
        credential: &Credential,
        key: StatusKey,
        keep_watching_action_required: bool,
        after_sequence: Option<u64>,
    ) -> Result<Watcher, WatchRefused> {
        let cached_terminal = match self.state.cache.peek(&key).await {
            Some(snapshot) => StatusEvent::terminal_in_cache(&snapshot),
            None => None,
        };
        let settings = &self.state.settings;
        let mut registry = self.state.lock();
        registry.forget_old_histories(settings.history_retention, settings.max_watchers);
        let live = registry
            .entries
            .get(&key)
            .filter(|entry| !entry.has_ended())
            .map(Arc::clone);
        if live.is_none()
            && let Some((status, fetched_at)) = cached_terminal
        {
            if !registry.retired.contains_key(&key) {
                let feed = registry.take_history(&key);
                let since = Instant::now();
                registry
                    .retired
                    .insert(key.clone(), Retired { feed, since });
            }
            let retired = registry.retired.get_mut(&key).expect("inserted just above");
            let ended = retired
                .feed
                .latest()
                .is_some_and(|latest| latest.status.completed);
            if !ended {
                let event = StatusEvent::following(&retired.feed, status, fetched_at);
                retired.feed = retired.feed.with_event(event, settings.history);
            }
            return Ok(Watcher::replay(retired.feed.clone(), after_sequence));
        }
        if registry.watchers >= settings.max_watchers {
            return Err(WatchRefused::TooManyWatchers(settings.max_watchers));
        }
        let entry = match live {
            Some(entry) => entry,
            None => self.start_poller(&mut registry, credential, key.clone()),
        };
        registry.watchers += 1;
        entry.watchers.fetch_add(1, Ordering::Relaxed);
        if keep_watching_action_required {
            entry.keep_watchers.fetch_add(1, Ordering::Relaxed);
        }
        entry.subscribers_changed.notify_one();
        let guard = WatcherGuard {
            state: Arc::clone(&self.state),
            entry: Arc::clone(&entry),
            keeps_watching: keep_watching_action_required,
        };
        Ok(Watcher::live(
            entry.feed.subscribe(),
            after_sequence,
            keep_watching_action_required,
            guard,
        ))
    }

    /// When the poller watching `key` will next ask the upstream, if one runs and
    /// plans to.
    pub fn next_check(&self, key: &StatusKey) -> Option<DateTime<Utc>> {
        let registry = self.state.lock();
        registry.entries.get(key)?.next_check()
    }

    /// Starts the poller for `key` with no subscriber, if none runs: it reads the
    /// status it was seeded with from the cache, plans its next poll, and waits the
    /// grace period for the subscription a client opens next.
    pub fn prime(&self, credential: &Credential, key: StatusKey) {
        let mut registry = self.state.lock();
        let running = registry
            .entries
            .get(&key)
            .is_some_and(|entry| !entry.has_ended());
        if !running {
            let entry = self.start_poller(&mut registry, credential, key);
            // Its first poll reads the seeded cache; the first upstream ask follows
            // one initial interval later. The poller replaces this plan as it goes.
            let initial = self.state.settings.pacing.initial;
            let first_ask = Utc::now() + chrono::TimeDelta::from_std(initial).unwrap_or_default();
            entry.plan_next_check(Some(first_ask));
        }
    }

    /// Watches a domain whose registration POST lost its answer with no workflow
    /// visible: its poller (started if none runs) keeps polling through "no
    /// workflow" answers for `window`, so that a workflow the POST did start reaches
    /// subscribers (and the cache) as soon as the upstream shows it.
    pub fn await_workflow(&self, credential: &Credential, key: StatusKey, window: Duration) {
        let until = Utc::now() + chrono::TimeDelta::from_std(window).unwrap_or_default();
        let mut registry = self.state.lock();
        let entry = match registry.entries.get(&key) {
            Some(entry) if !entry.has_ended() => Arc::clone(entry),
            _ => self.start_poller(&mut registry, credential, key),
        };
        entry
            .awaiting_workflow_until
            .store(until.timestamp_millis(), Ordering::Relaxed);
    }

    /// The most subscribers the gateway holds at once (`--max-subscriptions`).
    pub fn max_watchers(&self) -> usize {
        self.state.settings.max_watchers
    }

    /// Current counters.
    pub fn stats(&self) -> PollerStats {
        let registry = self.state.lock();
        PollerStats {
            active_pollers: registry.entries.len(),
            active_watchers: registry.watchers,
            pollers_started: self.state.pollers_started.load(Ordering::Relaxed),
            polls: self.state.polls.load(Ordering::Relaxed),
        }
    }

    /// Resolves once no poller runs (every watched workflow ended or was left).
    pub async fn until_idle(&self) {
        let mut active = self.state.active.subscribe();
        // The sender lives in `self.state`, so the channel cannot close here.
        let _ = active.wait_for(|count| *count == 0).await;
    }

    fn start_poller(
        &self,
        registry: &mut Registry,
        credential: &Credential,
        key: StatusKey,
    ) -> Arc<Entry> {
        // A new poller goes on from the registration's history, sequences included.
        let mut history = registry.take_history(&key);
        history.end = None;
        history.current = false;
        let entry = Arc::new(Entry {
            feed: tokio::sync::watch::Sender::new(Arc::new(history)),
            watchers: Default::default(),
            keep_watchers: Default::default(),
            subscribers_changed: Notify::new(),
            next_check: AtomicI64::new(NO_CHECK),
            awaiting_workflow_until: AtomicI64::new(NO_CHECK),
        });
        registry.entries.insert(key.clone(), Arc::clone(&entry));
        self.state.set_active(registry.entries.len());
        self.state.pollers_started.fetch_add(1, Ordering::Relaxed);
        let poller = task::Poller::new(
            Arc::clone(&self.state),
            Arc::clone(&entry),
            credential.clone(),
            key,
        );
        tokio::spawn(poller.run());
        entry
    }
}

impl PollersState {
    fn lock(&self) -> MutexGuard<'_, Registry> {
        // The registry holds plain counters: a panic elsewhere cannot leave it torn.
        self.registry.lock_unpoisoned()
    }

    /// Tells waiters and the metrics how many pollers run now (under the registry lock).
    fn set_active(&self, count: usize) {
        self.active.send_replace(count);
        self.metrics.pollers_active(count);
    }

    /// Publishes `end` and removes `entry` from the registry, under the registry lock
    /// so that no subscriber attaches in between. Returns false, publishing nothing,
    /// when a subscriber that wants more came meanwhile: one joined an idle poller, or
    /// one that keeps watching joined a paused workflow.
    fn finish(&self, key: &StatusKey, entry: &Arc<Entry>, end: &PollerEnd) -> bool {
        let mut registry = self.lock();
        let settings = &self.settings;
        registry.forget_old_histories(settings.history_retention, settings.max_watchers);
        let still_wanted = match end {
            PollerEnd::Idle => entry.watchers() > 0,
            PollerEnd::ActionRequired => entry.keep_watchers() > 0,
            _ => false,
        };
        if still_wanted {
            return false;
        }
        entry.feed.send_modify(|feed| {
            let mut ended = (**feed).clone();
            ended.end = Some(end.clone());
            *feed = Arc::new(ended);
        });
        if registry
            .entries
            .get(key)
            .is_some_and(|current| Arc::ptr_eq(current, entry))
        {
            registry.entries.remove(key);
            self.set_active(registry.entries.len());
            let feed = (**entry.feed.borrow()).clone();
            let retired = Retired {
                feed,
                since: Instant::now(),
            };
            registry.retired.insert(key.clone(), retired);
        }
        true
    }
}

impl Registry {
    /// Drops histories retired longer than `retention` ago, and the oldest ones
    /// past `most` (memory stays bounded however many registrations were watched).
    fn forget_old_histories(&mut self, retention: Duration, most: usize) {
        let now = Instant::now();
        let mut forgotten = self.forgotten_sequence;
        self.retired.retain(|_, retired| {
            let keep = now.duration_since(retired.since) < retention;
            if !keep {
                forgotten = forgotten.max(retired.feed.latest_sequence());
            }
            keep
        });
        while self.retired.len() > most {
            let oldest = self
                .retired
                .iter()
                .min_by_key(|(_, retired)| retired.since)
                .map(|(key, _)| key.clone());
            let Some(retired) = oldest.and_then(|key| self.retired.remove(&key)) else {
                break;
            };
            forgotten = forgotten.max(retired.feed.latest_sequence());
        }
        self.forgotten_sequence = forgotten;
    }

    /// The history of `key`, taken from the retired ones, or a new one numbered
    /// past every forgotten history.
    fn take_history(&mut self, key: &StatusKey) -> Feed {
        if let Some(retired) = self.retired.remove(key) {
            return retired.feed;
        }
        Feed::starting_after(match self.forgotten_sequence {
            0 => 0,
            forgotten => forgotten + 1,
        })
    }
}

impl Entry {
    fn next_check(&self) -> Option<DateTime<Utc>> {
        match self.next_check.load(Ordering::Relaxed) {
            NO_CHECK => None,
            millis => DateTime::from_timestamp_millis(millis),
        }
    }

    fn plan_next_check(&self, at: Option<DateTime<Utc>>) {
        let millis = at.map_or(NO_CHECK, |at| at.timestamp_millis());
        self.next_check.store(millis, Ordering::Relaxed);
    }

    /// Whether "no workflow" is, for now, a workflow not visible yet.
    fn awaits_workflow(&self) -> bool {
        Utc::now().timestamp_millis() < self.awaiting_workflow_until.load(Ordering::Relaxed)
    }

    fn has_ended(&self) -> bool {
        self.feed.borrow().end.is_some()
    }

    fn watchers(&self) -> usize {
        self.watchers.load(Ordering::Relaxed)
    }

    fn keep_watchers(&self) -> usize {
        self.keep_watchers.load(Ordering::Relaxed)
    }
}

/// A subscriber's share of a poller; dropping it (client `complete`, disconnect)
/// releases the share at once.
struct WatcherGuard {
    state: Arc<PollersState>,
    entry: Arc<Entry>,
    keeps_watching: bool,
}

impl Drop for WatcherGuard {
    fn drop(&mut self) {
        let mut registry = self.state.lock();
        registry.watchers -= 1;
        self.entry.watchers.fetch_sub(1, Ordering::Relaxed);
        if self.keeps_watching {
            self.entry.keep_watchers.fetch_sub(1, Ordering::Relaxed);
        }
        drop(registry);
        self.entry.subscribers_changed.notify_one();
    }
}
