//! Wrong access keys, counted per client address: after [`MAX_WRONG_KEYS`] within
//! [`WINDOW`] of the first, every key that address presents (the right one
//! included) is refused `ACCESS_KEY_THROTTLED` until the window has passed.
//!
//! Refusing the right key too is what makes the throttle hold: if a throttled
//! address could still be told "right" apart from "throttled", guessing would go on
//! at full speed with the answer in the refusal's kind. The cost is that callers
//! sharing an address with a guesser (one NAT, or every client behind a proxy that
//! is not in `--trusted-proxies`) wait out the window with it.
//!
//! Addresses are as fair shares count them (IPv6 per /64, behind trusted proxies the
//! forwarded client). The failures are kept in a bounded moka cache that forgets an
//! address when its window has passed; an attacker rotating through more addresses
//! than [`MAX_ADDRESSES`] only evicts its own (or others') counts, at the price of
//! [`MAX_WRONG_KEYS`] guesses per address it owns.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Wrong keys one address may present within [`WINDOW`] before it is refused.
pub const MAX_WRONG_KEYS: u32 = 10;
/// How long an address's wrong keys count, from the first one.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses whose wrong keys are counted at once (about 100 bytes each).
const MAX_ADDRESSES: u64 = 65_536;

/// Counts wrong access keys per client address; cheap to clone.
#[derive(Clone)]
pub(super) struct KeyThrottle {
    failures: moka::sync::Cache<IpAddr, Arc<Failures>>,
}

/// One address's wrong keys in its current window.
struct Failures {
    /// The first wrong key of the window.
    since: Instant,
    count: AtomicU32,
}

impl Failures {
    fn starting(since: Instant) -> Arc<Self> {
        Arc::new(Self {
            since,
            count: AtomicU32::new(0),
        })
    }

    /// What is left of the window at `now`; `None` once it has passed.
    fn remaining(&self, now: Instant) -> Option<Duration> {
        WINDOW
            .checked_sub(now.saturating_duration_since(self.since))
            .filter(|left| !left.is_zero())
    }
}

impl KeyThrottle {
    pub(super) fn new() -> Self {
        Self {
            failures: moka::sync::Cache::builder()
                .max_capacity(MAX_ADDRESSES)
                // Measured from the first wrong key (the entry is never replaced
                // while its window lasts), so memory is returned when it passes.
                .time_to_live(WINDOW)
                .build(),
        }
    }

    /// `Err(wait)` while `address` is refused: how long until its window passes.
    pub(super) fn check(&self, address: IpAddr, now: Instant) -> Result<(), Duration> {
        let Some(failures) = self.failures.get(&address) else {
            return Ok(());
        };
        match failures.remaining(now) {
            Some(wait) if failures.count.load(Ordering::Acquire) >= MAX_WRONG_KEYS => Err(wait),
            _ => Ok(()),
        }
    }

    /// Counts a wrong key from `address`; logs (without the key) when this one
    /// makes the address refused.
    pub(super) fn wrong_key(&self, address: IpAddr, now: Instant) {
        let mut failures = self.failures.get_with(address, || Failures::starting(now));
        if failures.remaining(now).is_none() {
            failures = Failures::starting(now);
            self.failures.insert(address, Arc::clone(&failures));
        }
        let count = failures.count.fetch_add(1, Ordering::AcqRel) + 1;
        if count == MAX_WRONG_KEYS {
            tracing::warn!(
                client = %address,
                wrong_keys = count,
                window_seconds = WINDOW.as_secs(),
                "too many wrong access keys: refusing this client's keys until its window passes"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const TWO: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    #[test]
    fn an_address_is_refused_from_its_last_allowed_wrong_key_until_its_window_passes() {
        let throttle = KeyThrottle::new();
        let start = Instant::now();
        for _ in 1..MAX_WRONG_KEYS {
            throttle.wrong_key(ONE, start);
        }
        assert_eq!(throttle.check(ONE, start), Ok(()));
        throttle.wrong_key(ONE, start);
        let later = start + Duration::from_secs(15);
        assert_eq!(
            throttle.check(ONE, later),
            Err(WINDOW - Duration::from_secs(15))
        );
        assert_eq!(throttle.check(TWO, later), Ok(()));
        assert_eq!(throttle.check(ONE, start + WINDOW), Ok(()));
    }

    #[test]
    fn a_wrong_key_after_the_window_starts_a_new_count() {
        let throttle = KeyThrottle::new();
        let start = Instant::now();
        for _ in 1..MAX_WRONG_KEYS {
            throttle.wrong_key(ONE, start);
        }
        let next = start + WINDOW;
        throttle.wrong_key(ONE, next);
        assert_eq!(throttle.check(ONE, next), Ok(()));
        for _ in 1..MAX_WRONG_KEYS {
            throttle.wrong_key(ONE, next);
        }
        assert_eq!(throttle.check(ONE, next), Err(WINDOW));
    }
}
