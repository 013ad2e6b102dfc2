//! What each client holds open (subscriptions, connections, websockets), counted
//! exactly: taking one past the client's maximum is refused, and dropping the
//! [`Held`] gives it back. A client leaves the map when its count is zero, so the
//! map never holds more entries than there are things open.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use crate::sync::LockUnpoisoned;

/// Each client's count of one kind of thing held open, and its maximum.
pub(super) struct OpenCounts<K> {
    open: Mutex<HashMap<K, usize>>,
    max: usize,
}

impl<K: Copy + Eq + Hash> OpenCounts<K> {
    /// Counts with at most `max` per client.
    pub(super) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            open: Mutex::default(),
            max,
        })
    }

    /// The maximum per client.
    pub(super) fn max(&self) -> usize {
        self.max
    }

    /// One more for `client`, until the [`Held`] is dropped; `None` at its maximum.
    pub(super) fn hold(self: &Arc<Self>, client: K) -> Option<Held<K>> {
        let mut open = self.open.lock_unpoisoned();
        let count = open.entry(client).or_default();
        if *count >= self.max {
            if *count == 0 {
                open.remove(&client);
            }
            return None;
        }
        *count += 1;
        Some(Held {
            counts: Arc::clone(self),
            client,
        })
    }

    /// Clients holding at least one.
    #[cfg(test)]
    pub(super) fn clients(&self) -> usize {
        self.open.lock_unpoisoned().len()
    }
}

/// One thing a client holds open; given back on drop.
pub struct Held<K: Copy + Eq + Hash> {
    counts: Arc<OpenCounts<K>>,
    client: K,
}

impl<K: Copy + Eq + Hash + fmt::Debug> fmt::Debug for Held<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Held").field(&self.client).finish()
    }
}

impl<K: Copy + Eq + Hash> Drop for Held<K> {
    fn drop(&mut self) {
        let mut open = self.counts.open.lock_unpoisoned();
        if let Some(count) = open.get_mut(&self.client) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.client);
            }
        }
    }
}
