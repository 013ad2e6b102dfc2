//! What a poller publishes and how a subscriber reads it: the ordered state-change
//! events of one registration, and why watching ended.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::Stream;
use tokio::sync::watch;

use super::WatcherGuard;
use crate::cache::Snapshot;
use crate::upstream::{UpstreamError, WorkflowState, WorkflowStatus};

/// Events kept for subscribers that fall behind; a workflow changes state a handful of times.
const HISTORY: usize = 32;

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
    /// The event for a cached terminal status (no poller needed), if `snapshot` is one.
    pub(super) fn terminal_from_cache(snapshot: &Snapshot) -> Option<Arc<Self>> {
        let status = snapshot.status.as_ref().filter(|status| status.completed)?;
        Some(Arc::new(Self {
            sequence: 1,
            previous_state: None,
            status: Arc::clone(status),
            fetched_at: snapshot.fetched_at,
            next_check_at: None,
        }))
    }
}

/// Why a poller stopped.
#[derive(Clone, Debug)]
pub enum WatchEnd {
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

impl WatchEnd {
    /// What subscribers are told of this end: nothing when the last event says it
    /// all (a terminal or paused state) or nobody is left to tell.
    pub fn reported(&self) -> Option<ReportedEnd> {
        match self {
            Self::NotFound => Some(ReportedEnd::NotFound),
            Self::Expired { blocked_for } => Some(ReportedEnd::Expired {
                blocked_for: *blocked_for,
            }),
            Self::GaveUp(error) => Some(ReportedEnd::GaveUp(Arc::clone(error))),
            Self::Completed | Self::ActionRequired | Self::Idle | Self::ShuttingDown => None,
        }
    }
}

/// An end subscribers are told of, as an error after their last event.
#[derive(Clone, Debug)]
pub enum ReportedEnd {
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

/// A poller's published state; replaced whole on every change (copy on write).
#[derive(Clone, Debug, Default)]
pub(super) struct Feed {
    pub events: VecDeque<Arc<StatusEvent>>,
    pub end: Option<WatchEnd>,
}

impl Feed {
    /// This feed with `event` appended (oldest events dropped past the history bound).
    pub fn with_event(&self, event: StatusEvent) -> Self {
        let mut next = self.clone();
        if next.events.len() == HISTORY {
            next.events.pop_front();
        }
        next.events.push_back(Arc::new(event));
        next
    }

    /// The event to send after `last_sent`: the latest one for a new subscriber.
    fn next_after(&self, last_sent: Option<u64>) -> Option<&Arc<StatusEvent>> {
        match last_sent {
            None => self.events.back(),
            Some(sequence) => self.events.iter().find(|event| event.sequence > sequence),
        }
    }
}

/// A subscriber's view of one registration.
pub struct Watch {
    source: Source,
}

enum Source {
    /// Already over: one event, then the end.
    Finished(Option<Arc<StatusEvent>>),
    Live(LiveWatch),
    Done,
}

struct LiveWatch {
    feed: watch::Receiver<Arc<Feed>>,
    last_sent: Option<u64>,
    keep_watching_action_required: bool,
    /// Held for the subscription's lifetime: dropping it releases the poller share.
    _guard: WatcherGuard,
}

impl Watch {
    pub(super) fn finished(event: Arc<StatusEvent>) -> Self {
        Self {
            source: Source::Finished(Some(event)),
        }
    }

    pub(super) fn live(
        feed: watch::Receiver<Arc<Feed>>,
        keep_watching_action_required: bool,
        guard: WatcherGuard,
    ) -> Self {
        let live = LiveWatch {
            feed,
            last_sent: None,
            keep_watching_action_required,
            _guard: guard,
        };
        Self {
            source: Source::Live(live),
        }
    }

    /// The events in order; ends after a `completed` event, after `ACTION_REQUIRED`
    /// (unless keeping watch), or with the [`WatchEnd`] that stopped the poller.
    pub fn into_stream(self) -> impl Stream<Item = Result<Arc<StatusEvent>, ReportedEnd>> + Send {
        futures::stream::unfold(self, |mut watch| async move {
            let item = watch.next().await?;
            Some((item, watch))
        })
    }

    async fn next(&mut self) -> Option<Result<Arc<StatusEvent>, ReportedEnd>> {
        let (item, done) = match &mut self.source {
            Source::Finished(event) => (event.take().map(Ok), true),
            Source::Live(live) => live.next().await?,
            Source::Done => return None,
        };
        if done {
            self.source = Source::Done;
        }
        item
    }
}

impl LiveWatch {
    /// The next item and whether it is the last one.
    async fn next(&mut self) -> Option<(Option<Result<Arc<StatusEvent>, ReportedEnd>>, bool)> {
        loop {
            let feed = Arc::clone(&self.feed.borrow_and_update());
            if let Some(event) = feed.next_after(self.last_sent) {
                self.last_sent = Some(event.sequence);
                let last = self.ends_watch(&event.status);
                return Some((Some(Ok(Arc::clone(event))), last));
            }
            if let Some(end) = &feed.end {
                return Some((end.reported().map(Err), true));
            }
            self.feed.changed().await.ok()?;
        }
    }

    /// `completed` ends every watch, whatever the state (one this build does not
    /// know included); a paused workflow ends it unless the subscriber keeps watching.
    fn ends_watch(&self, status: &WorkflowStatus) -> bool {
        status.completed
            || (status.state == WorkflowState::ActionRequired
                && !self.keep_watching_action_required)
    }
}
