//! Locks that survive a panic elsewhere. Every std lock in the crate guards plain
//! data that each critical section leaves consistent (counters, maps, settings), so
//! a thread that panicked while holding one cannot have left it torn: taking the
//! guard from a poisoned lock is safe, and saying so once here beats repeating the
//! recovery at every call.

use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

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

/// [`RwLock::read`] and [`RwLock::write`] that recover from poisoning.
pub(crate) trait RwLockUnpoisoned<T> {
    /// A read guard, poisoned or not.
    fn read_unpoisoned(&self) -> RwLockReadGuard<'_, T>;
    /// A write guard, poisoned or not.
    fn write_unpoisoned(&self) -> RwLockWriteGuard<'_, T>;
}

impl<T> RwLockUnpoisoned<T> for RwLock<T> {
    fn read_unpoisoned(&self) -> RwLockReadGuard<'_, T> {
        self.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_unpoisoned(&self) -> RwLockWriteGuard<'_, T> {
        self.write().unwrap_or_else(PoisonError::into_inner)
    }
}
