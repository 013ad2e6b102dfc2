//! Locks that survive a panic elsewhere. Every std mutex in the crate guards plain
//! data that each critical section leaves consistent (counters, maps, settings), so
//! a thread that panicked while holding one cannot have left it torn: taking the
//! guard from a poisoned lock is safe, and saying so once here beats repeating the
//! recovery at every call.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// [`Mutex::lock`] that recovers from poisoning.
pub(crate) trait LockUnpoisoned<T> {
    /// The guard, poisoned or not.
    fn lock_unpoisoned(&self) -> MutexGuard<'_, T>;
}

impl<T> LockUnpoisoned<T> for Mutex<T> {
    fn lock_unpoisoned(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
