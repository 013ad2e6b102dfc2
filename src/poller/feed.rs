//! What a poller publishes and how a subscriber reads it: the ordered state-change
//! events of one registration (a short, bounded history of them, so a subscriber
//! that reconnects with the last sequence it saw gets what it missed), and why
//! watching ended.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::Stream;
use tokio::sync::watch;

use super::WatcherGuard;
use crate::cache::Snapshot;
use crate::upstream::{UpstreamError, WorkflowState, WorkflowStatus};

/// One change of a registration's state (the first event is the status at subscription).
#[derive(Debug)]
pub struct StatusEvent {
    /// Per-registration sequence number, from 1.
    pub sequence: u64,
    /// The state before this change; `None` for the first event a poller saw.
    pub previous_state: Option<WorkflowState>,
    /// The new status.
    pub status: Arc<WorkflowStatus>,
    /// When the gateway fetched it.
    pub fetched_at: DateTime<Utc>,
    /// When the poller planned, on publishing this event, to ask the upstream next;
    /// `None` when it will not (the workflow completed or paused, or watching ended).
    pub next_check_at: Option<DateTime<Utc>>,
}

impl StatusEvent {
    /// The cached status when it is `completed` (no poller needed).
    pub(super) fn terminal_in_cache(
        snapshot: &Snapshot,
    ) -> Option<(Arc<WorkflowStatus>, DateTime<Utc>)> {
        let status = snapshot.status.as_ref().filter(|status| status.completed)?;
        Some((Arc::clone(status), snapshot.fetched_at))
    }

    /// The event that follows `feed`'s latest one with `status`, a completed status
    /// from the cache (so no check follows it).
    pub(super) fn following(
        feed: &Feed,
        status: Arc<WorkflowStatus>,
        fetched_at: DateTime<Utc>,
    ) -> Self {
        Self {
            sequence: feed.latest_sequence() + 1,
            previous_state: feed.latest().map(|event| event.status.state.clone()),
            status,
            fetched_at,
            next_check_at: None,
        }
    }
}

/// Why a poller stopped.
#[derive(Clone, Debug)]
pub enum PollerEnd {
    /// The workflow completed (`completed: true`: succeeded, failed, or a state
    /// this build does not know marked completed).
    Completed,
    /// The workflow waits for the user and nobody asked to keep watching.
    ActionRequired,
    /// The upstream has no workflow for the domain.
    NotFound,
    /// The workflow stayed blocked longer than the gateway watches.
    Expired {
        /// How long it had been blocked.
        blocked_for: Duration,
    },
    /// Polling failed too often, or in a way retrying cannot fix.
    GaveUp(Arc<UpstreamError>),
    /// Nobody watched any more.
    Idle,
    /// The gateway is stopping.
    ShuttingDown,
}

impl PollerEnd {
    /// What subscribers are told of this end: nothing when the last event says it
    /// all (a terminal or paused state) or nobody is left to tell.
    pub fn watch_error(&self) -> Option<WatchError> {
        match self {
            Self::NotFound => Some(WatchError::NotFound),
            Self::Expired { blocked_for } => Some(WatchError::Expired {
                blocked_for: *blocked_for,
            }),
            Self::GaveUp(error) => Some(WatchError::GaveUp(Arc::clone(error))),
            Self::Completed | Self::ActionRequired | Self::Idle | Self::ShuttingDown => None,
        }
    }
}

/// An end subscribers are told of, as an error after their last event.
#[derive(Clone, Debug)]
pub enum WatchError {
    /// The upstream has no workflow for the domain.
    NotFound,
    /// The workflow stayed blocked longer than the gateway watches.
    Expired {
        /// How long it had been blocked.
        blocked_for: Duration,
    },
    /// Polling failed too often, or in a way retrying cannot fix.
    GaveUp(Arc<UpstreamError>),
}

/// One event as a subscriber receives it.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// The change.
    pub event: Arc<StatusEvent>,
    /// True when the subscriber asked to resume after a sequence the history no
    /// longer reaches back to (or never had): changes were missed, and this event
    /// carries the current status.
    pub resynced: bool,
}

/// A poller's published state; replaced whole on every change (copy on write).
#[derive(Clone, Debug, Default)]
pub(super) struct Feed {
    /// The latest changes, oldest first, at most the history bound.
    pub events: VecDeque<Arc<StatusEvent>>,
    /// The sequence before the first event (0 for a registration's first history).
    pub base: u64,
    /// Whether the running poller has confirmed the latest event (a history taken
    /// over from a stopped poller may be old): a subscriber's "status now" waits for it.
    pub current: bool,
    pub end: Option<PollerEnd>,
}

impl Feed {
    /// An empty history whose first event will be `base + 1`.
    pub(super) fn starting_after(base: u64) -> Self {
        Self {
            base,
            ..Self::default()
        }
    }

    /// The newest event's sequence, or the base when there is none yet.
    pub(super) fn latest_sequence(&self) -> u64 {
        self.latest().map_or(self.base, |event| event.sequence)
    }

    /// This feed with `event` appended, keeping at most `bound` events (oldest dropped).
    pub(super) fn with_event(&self, event: StatusEvent, bound: usize) -> Self {
        let mut next = self.clone();
        while next.events.len() >= bound.max(1) {
            next.events.pop_front();
        }
        next.events.push_back(Arc::new(event));
        next.current = true;
        next
    }

    /// The newest event.
    pub(super) fn latest(&self) -> Option<&Arc<StatusEvent>> {
        self.events.back()
    }

    /// The event to send after `last_sent`: the latest one for a new subscriber.
    fn next_after(&self, last_sent: Option<u64>) -> Option<&Arc<StatusEvent>> {
        match last_sent {
            None => self.events.back(),
            Some(sequence) => self.events.iter().find(|event| event.sequence > sequence),
        }
    }

    /// Whether this history holds every change after `sequence`: false when its
    /// oldest event is later than the next one, or when `sequence` is ahead of it
    /// (a history forgotten and restarted since).
    fn reaches_back_to(&self, sequence: u64) -> bool {
        match (self.events.front(), self.events.back()) {
            (Some(oldest), Some(latest)) => {
                oldest.sequence <= sequence.saturating_add(1) && sequence <= latest.sequence
            }
            _ => true,
        }
    }
}

/// A subscriber's view of one registration.
pub struct Watcher {
    source: Source,
}

enum Source {
    Live(LiveWatcher),
    Done,
}

/// Where a subscriber stands in a registration's feed.
struct LiveWatcher {
    feed: watch::Receiver<Arc<Feed>>,
    /// The last sequence sent (or, before the first event, the one the subscriber resumes after).
    last_sent: Option<u64>,
    /// Whether the resume point still has to be checked against the history.
    resuming: bool,
    keep_watching_action_required: bool,
    /// Held for the subscription's lifetime: dropping it releases the poller share.
    /// `None` for a replay of a finished history, which no poller serves.
    _guard: Option<WatcherGuard>,
}

/// A subscriber's item: a change, or the end it is told of.
type Item = Result<Delivery, WatchError>;

impl Watcher {
    /// A watch of a history that will not grow (the workflow ended): its events
    /// after `after_sequence` (the latest when `None`), then the end.
    pub(super) fn replay(mut feed: Feed, after_sequence: Option<u64>) -> Self {
        feed.end.get_or_insert(PollerEnd::Completed);
        feed.current = true;
        // The sender is dropped at once: the receiver keeps the last value.
        let (_, receiver) = watch::channel(Arc::new(feed));
        Self::new(receiver, after_sequence, false, None)
    }

    pub(super) fn live(
        feed: watch::Receiver<Arc<Feed>>,
        after_sequence: Option<u64>,
        keep_watching_action_required: bool,
        guard: WatcherGuard,
    ) -> Self {
        Self::new(
            feed,
            after_sequence,
            keep_watching_action_required,
            Some(guard),
        )
    }

    fn new(
        feed: watch::Receiver<Arc<Feed>>,
        after_sequence: Option<u64>,
        keep_watching_action_required: bool,
        guard: Option<WatcherGuard>,
    ) -> Self {
        let live = LiveWatcher {
            feed,
            last_sent: after_sequence,
            resuming: after_sequence.is_some(),
            keep_watching_action_required,
            _guard: guard,
        };
        Self {
            source: Source::Live(live),
        }
    }

    /// The events in order (first those missed after the resume point); ends after
    /// a `completed` event, after `ACTION_REQUIRED` (unless keeping watch), or with
    /// the [`PollerEnd`] that stopped the poller.
    pub fn into_stream(self) -> impl Stream<Item = Item> + Send {
        futures::stream::unfold(self, |mut watch| async move {
            let item = watch.next().await?;
            Some((item, watch))
        })
    }

    async fn next(&mut self) -> Option<Item> {
        let (item, done) = match &mut self.source {
            Source::Live(live) => live.next().await?,
            Source::Done => return None,
        };
        if done {
            self.source = Source::Done;
        }
        item
    }
}

impl LiveWatcher {
    /// The next item and whether it is the last one.
    async fn next(&mut self) -> Option<(Option<Item>, bool)> {
        loop {
            let feed = Arc::clone(&self.feed.borrow_and_update());
            if let Some(delivery) = self.next_delivery(&feed) {
                self.last_sent = Some(delivery.event.sequence);
                let last = self.ends_watch(&feed, &delivery.event);
                return Some((Some(Ok(delivery)), last));
            }
            if let Some(end) = &feed.end {
                return Some((end.watch_error().map(Err), true));
            }
            self.feed.changed().await.ok()?;
        }
    }

    /// What to send next from `feed`: on resuming, the current status marked
    /// `resynced` when the history does not reach back to the resume point.
    fn next_delivery(&mut self, feed: &Feed) -> Option<Delivery> {
        let known = feed.current || feed.end.is_some();
        if self.last_sent.is_none() && !known {
            return None;
        }
        if self.resuming {
            let latest = feed.latest()?;
            self.resuming = false;
            let after = self.last_sent.unwrap_or_default();
            if !feed.reaches_back_to(after) {
                if !known {
                    self.resuming = true;
                    return None;
                }
                return Some(Delivery {
                    event: Arc::clone(latest),
                    resynced: true,
                });
            }
        }
        let event = feed.next_after(self.last_sent)?;
        Some(Delivery {
            event: Arc::clone(event),
            resynced: false,
        })
    }

    /// Whether `event` ends this watch: `completed` ends every watch, whatever the
    /// state (one this build does not know included); the latest state being
    /// `ACTION_REQUIRED` ends it when not keeping watch (a replayed pause the user
    /// has since resolved does not).
    fn ends_watch(&self, feed: &Feed, event: &StatusEvent) -> bool {
        let state = &event.status.state;
        let is_latest = feed
            .latest()
            .is_some_and(|latest| latest.sequence == event.sequence);
        event.status.completed
            || (is_latest
                && *state == WorkflowState::ActionRequired
                && !self.keep_watching_action_required)
    }
}
