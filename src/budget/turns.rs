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
//! - **then polls, the longest overdue first**: a poll's place is the time it fell
//!   due, its registration's last poll plus the delay its backoff asked for (never
//!   polled: when its poller started), so when the watched registrations ask for
//!   more polls than the budget allows they are polled in a fair rotation, each once
//!   per turn of it, and the state rules hold at the limit: a registration that
//!   moves, or was never polled, comes round every turn, while a blocked or paused
//!   one comes round only once its slow cadence has passed as well. Polls of blocked
//!   or paused workflows (the background class) also keep to that class's limit:
//!   one it has no room for lets the next poll of a moving one go first.
//!
//! Why the due time and not the last poll: placed by their last poll alone, hundreds
//! of blocked registrations polled long ago would come ahead of the moving ones
//! however slow their cadence. Why the background class's pace in line
//! (`Lines::next`): its limiter's burst, left unspent by a query storm, would
//! otherwise take every request of a short budget for a minute while the moving
//! ones waited.
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
    /// A query's arrival; when a poll fell due.
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
    /// Polls of moving workflows in line (for the wait a new poll can expect; the
    /// background ones are `background`'s length).
    moving_polls: usize,
    /// While others wait too, no background poll goes before this: after each one
    /// granted from the line, one period of the background class's steady pace.
    background_paced_until: Option<Instant>,
}

/// Polls waiting in one credential's line, by class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct PollsWaiting {
    /// Polls of moving workflows.
    pub(super) moving: usize,
    /// Polls of the background class.
    pub(super) background: usize,
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
    pub(super) fn polls_waiting(&self, credential: Fingerprint) -> PollsWaiting {
        self.lines
            .get(&credential)
            .map_or(PollsWaiting::default(), |line| PollsWaiting {
                moving: line.moving_polls,
                background: line.background.len(),
            })
    }

    /// Puts a request in `credential`'s line: a query (`poll_due` none) behind the
    /// queries, a poll by the time it fell due.
    pub(super) fn join(
        &mut self,
        credential: Fingerprint,
        priority: Priority,
        poll_due: Option<Instant>,
    ) -> InLine {
        self.next_order += 1;
        let place = Place {
            class: u8::from(poll_due.is_some()),
            since: poll_due.unwrap_or_else(Instant::now),
            order: self.next_order,
        };
        let (granted, receiver) = oneshot::channel();
        let line = self.lines.entry(credential).or_default();
        let waiter = Waiter { priority, granted };
        match priority {
            Priority::Background if place.class == 1 => line.background.insert(place, waiter),
            _ => line.waiting.insert(place, waiter),
        };
        if place.class == 1 && priority != Priority::Background {
            line.moving_polls += 1;
        }
        match std::mem::replace(&mut line.dispatching, true) {
            true => InLine::Wait(place, receiver),
            false => InLine::WaitAndDispatch(place, receiver),
        }
    }

    /// Takes `place` out of `credential`'s line (granted, or given up by its waiter).
    pub(super) fn leave(&mut self, credential: Fingerprint, place: Place) -> Option<Waiter> {
        let line = self.lines.get_mut(&credential)?;
        match line.waiting.remove(&place) {
            Some(waiter) => {
                if place.class == 1 {
                    line.moving_polls -= 1;
                }
                Some(waiter)
            }
            None => line.background.remove(&place),
        }
    }

    /// Notes that a background poll was granted from `credential`'s line: while
    /// others wait, the next one goes no sooner than `pace` from now.
    pub(super) fn background_granted(&mut self, credential: Fingerprint, pace: Duration) {
        if let Some(line) = self.lines.get_mut(&credential) {
            line.background_paced_until = Some(Instant::now() + pace);
        }
    }

    /// Who may go next in `credential`'s line, in order: the first query or oldest
    /// poll, and the oldest background poll when it is not that one; a background
    /// poll goes after the others while its class's pace holds it back. Empty (and
    /// the dispatcher stops, the line is dropped) when nobody waits.
    ///
    /// The pace keeps the background class to its steady rate while moving
    /// registrations wait: its limiter's burst (a tenth of its share, for when the
    /// budget has room) would otherwise let long-overdue blocked polls take every
    /// request of a short budget until that burst was spent, a minute and more,
    /// while the moving ones waited.
    pub(super) fn next(&mut self, credential: Fingerprint) -> Vec<(Place, Priority)> {
        let Some(line) = self.lines.get(&credential) else {
            return Vec::new();
        };
        let first = |map: &BTreeMap<Place, Waiter>| {
            map.first_key_value()
                .map(|(place, waiter)| (*place, waiter.priority))
        };
        let paced = !line.waiting.is_empty()
            && line
                .background_paced_until
                .is_some_and(|until| until > Instant::now());
        let mut next: Vec<_> = [first(&line.waiting), first(&line.background)]
            .into_iter()
            .flatten()
            .collect();
        next.sort_by_key(|(place, priority)| (paced && *priority == Priority::Background, *place));
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
    async fn queries_go_first_then_the_longest_overdue_poll() {
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
        assert_eq!(
            lines.polls_waiting(credential),
            PollsWaiting {
                moving: 1,
                background: 1
            }
        );
        let mut order = Vec::new();
        loop {
            let next = lines.next(credential);
            let Some((place, priority)) = next.first() else {
                break;
            };
            order.push((place.class, *priority));
            lines.leave(credential, *place);
        }
        assert_eq!(
            order,
            [
                (0, Priority::Foreground),
                (1, Priority::Background),
                (1, Priority::Foreground)
            ]
        );
        assert!(!lines.is_waiting(credential));
    }

    #[tokio::test(start_paused = true)]
    async fn a_background_poll_keeps_its_class_pace_while_moving_ones_wait() {
        let mut lines = Lines::default();
        let credential = credential();
        let now = Instant::now();
        let hour = Duration::from_secs(3600);
        lines.join(credential, Priority::Background, Some(now - hour));
        lines.join(credential, Priority::Foreground, Some(now));
        let first = |lines: &mut Lines| lines.next(credential)[0].1;
        assert_eq!(first(&mut lines), Priority::Background, "overdue longer");
        lines.background_granted(credential, Duration::from_secs(2));
        assert_eq!(first(&mut lines), Priority::Foreground, "held to its pace");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(
            first(&mut lines),
            Priority::Background,
            "its pace allows it again"
        );
    }
}
