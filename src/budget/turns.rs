//! Turns: who gets a credential's next upstream request when the budget is short.
//!
//! Without a line, every poller that found the budget spent backed off on its own
//! and tried again at a random moment: the registrations that happened to ask when
//! a request was free were polled again and again, and the others waited. Here the
//! requests that find no room wait in one line per credential, and a dispatcher
//! hands each request that frees up to the first in line:
//!
//! - **queries first** (a caller waits for its answer): a query waits at most
//!   [`QUERY_WAIT`], then is refused with the time the budget will have room;
//! - **then polls, least recently polled first**: a poll's place is the time its
//!   registration was last polled (never polled: when its poller started), so when
//!   the watched registrations ask for more polls than the budget allows they are
//!   polled in a fair rotation, each once per turn of it. Polls of blocked or paused
//!   workflows (the background class) keep their place in the rotation, but one the
//!   background class has no room for lets the next poll of a moving one go first.
//!
//! When the budget has room nobody waits: a request that finds the line empty and
//! the budget with room goes at once, so within the budget nothing changes.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::Priority;
use crate::credential::Fingerprint;

/// The longest a query waits in line for the budget before it is refused.
pub const QUERY_WAIT: Duration = Duration::from_secs(2);

/// A place in a credential's line: queries before polls, then the oldest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Place {
    /// 0 for a query, 1 for a poll.
    class: u8,
    /// A query's arrival; a poll's last poll.
    since: Instant,
    /// Tells apart places of the same instant.
    order: u64,
}

/// One request waiting for its turn.
pub(super) struct Waiter {
    pub(super) priority: Priority,
    pub(super) granted: oneshot::Sender<()>,
}

/// The lines of every credential.
#[derive(Default)]
pub(super) struct Lines {
    lines: HashMap<Fingerprint, Line>,
    next_order: u64,
}

/// One credential's line; its dispatcher runs while it is not empty.
#[derive(Default)]
struct Line {
    /// Queries and polls of moving workflows.
    waiting: BTreeMap<Place, Waiter>,
    /// Polls of the background class.
    background: BTreeMap<Place, Waiter>,
    /// Whether a dispatcher task serves this line.
    dispatching: bool,
    /// Polls in line (for the wait a new one can expect).
    polls: usize,
}

/// What a request joining a line must do.
pub(super) enum InLine {
    /// It waits for this place to be granted.
    Wait(Place, oneshot::Receiver<()>),
    /// As [`InLine::Wait`], and the caller starts the line's dispatcher.
    WaitAndDispatch(Place, oneshot::Receiver<()>),
}

impl Lines {
    /// Whether `credential` has requests waiting (a newcomer must queue behind them).
    pub(super) fn is_waiting(&self, credential: Fingerprint) -> bool {
        self.lines
            .get(&credential)
            .is_some_and(|line| !line.waiting.is_empty() || !line.background.is_empty())
    }

    /// Polls waiting in `credential`'s line.
    pub(super) fn polls_waiting(&self, credential: Fingerprint) -> usize {
        self.lines.get(&credential).map_or(0, |line| line.polls)
    }

    /// Puts a request in `credential`'s line: a query (`poll_since` none) behind the
    /// queries, a poll by the time its registration was last polled.
    pub(super) fn join(
        &mut self,
        credential: Fingerprint,
        priority: Priority,
        poll_since: Option<Instant>,
    ) -> InLine {
        self.next_order += 1;
        let place = Place {
            class: u8::from(poll_since.is_some()),
            since: poll_since.unwrap_or_else(Instant::now),
            order: self.next_order,
        };
        let (granted, receiver) = oneshot::channel();
        let line = self.lines.entry(credential).or_default();
        let waiter = Waiter { priority, granted };
        match priority {
            Priority::Background if place.class == 1 => line.background.insert(place, waiter),
            _ => line.waiting.insert(place, waiter),
        };
        if place.class == 1 {
            line.polls += 1;
        }
        match std::mem::replace(&mut line.dispatching, true) {
            true => InLine::Wait(place, receiver),
            false => InLine::WaitAndDispatch(place, receiver),
        }
    }

    /// Takes `place` out of `credential`'s line (granted, or given up by its waiter).
    pub(super) fn leave(&mut self, credential: Fingerprint, place: Place) -> Option<Waiter> {
        let line = self.lines.get_mut(&credential)?;
        let waiter = match line.waiting.remove(&place) {
            Some(waiter) => waiter,
            None => line.background.remove(&place)?,
        };
        if place.class == 1 {
            line.polls -= 1;
        }
        Some(waiter)
    }

    /// Who may go next in `credential`'s line, in order: the first query or oldest
    /// poll, and the oldest background poll when it is not that one. Empty (and the
    /// dispatcher stops, the line is dropped) when nobody waits.
    pub(super) fn next(&mut self, credential: Fingerprint) -> Vec<(Place, Priority)> {
        let Some(line) = self.lines.get(&credential) else {
            return Vec::new();
        };
        let first = |map: &BTreeMap<Place, Waiter>| {
            map.first_key_value()
                .map(|(place, waiter)| (*place, waiter.priority))
        };
        let mut next: Vec<_> = [first(&line.waiting), first(&line.background)]
            .into_iter()
            .flatten()
            .collect();
        next.sort_by_key(|(place, _)| *place);
        if next.is_empty() {
            self.lines.remove(&credential);
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::{Credential, CredentialSecret, FingerprintKey};

    fn credential() -> Fingerprint {
        Credential::new(
            CredentialSecret::ApiToken("t".into()),
            &FingerprintKey::random(),
        )
        .fingerprint()
    }

    #[tokio::test]
    async fn queries_go_first_then_the_least_recently_polled() {
        let mut lines = Lines::default();
        let credential = credential();
        let now = Instant::now();
        let recent = lines.join(credential, Priority::Foreground, Some(now));
        assert!(matches!(recent, InLine::WaitAndDispatch(..)));
        let old = lines.join(
            credential,
            Priority::Background,
            Some(now - Duration::from_secs(60)),
        );
        assert!(matches!(old, InLine::Wait(..)));
        let _query = lines.join(credential, Priority::Foreground, None);
        assert_eq!(lines.polls_waiting(credential), 2);
        let mut order = Vec::new();
        loop {
            let next = lines.next(credential);
            let Some((place, priority)) = next.first() else {
                break;
            };
            order.push((place.class, *priority));
            lines.leave(credential, *place);
        }
        assert!(!lines.is_waiting(credential));
    }
}
