//! The conservative local allowance a replica spends while Redis is unreachable: the
//! credential's budget divided by the last known replica count, so N replicas cut
//! off from each other still stay within one budget together.
//!
//! A GCRA of its own rather than governor's, because an allowance starts *empty* (no
//! burst): the replicas may have spent the shared burst just before Redis went
//! away, and the window that straddles the outage must still hold. It then refills
//! at the allowance's pace. Since an empty allowance has no room *now*, a request may book
//! the next free slot up to [`MAX_WAIT`] ahead and wait for it, rather than fail:
//! queries keep being answered through an outage, only paced.

use std::collections::HashMap;
use std::time::Instant;

use super::{Exhausted, GcraParams, Priority};
use crate::credential::Fingerprint;

/// How far ahead a request may book its slot in the allowance (and wait for it).
pub(super) const MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Allowances of both classes for one replica count; rebuilt when the count changes.
pub(super) struct OutageAllowance {
    /// The replica count this allowance was cut for.
    pub(super) replicas: u32,
    all: GcraParams,
    background: GcraParams,
    /// Theoretical arrival times per credential and class (`true` = background).
    tats: HashMap<(Fingerprint, bool), Instant>,
}

impl OutageAllowance {
    /// `1 / replicas` of `all` and `background`, starting empty at `now`.
    pub(super) fn new(replicas: u32, all: GcraParams, background: GcraParams) -> Self {
        Self {
            replicas,
            all: all.divided(replicas),
            background: background.divided(replicas),
            tats: HashMap::new(),
        }
    }

    /// Admits one request at `now`: how long it must wait for its slot (zero when
    /// there is room now), or when a slot within [`MAX_WAIT`] will be free.
    pub(super) fn try_acquire(
        &mut self,
        credential: Fingerprint,
        priority: Priority,
        now: Instant,
    ) -> Result<std::time::Duration, Exhausted> {
        if self.tats.len() > super::MAX_TRACKED_CREDENTIALS {
            self.tats.retain(|_, tat| *tat > now);
        }
        let (all, wait) = self.next(credential, false, self.all, now)?;
        let mut wait = wait;
        if priority == Priority::Background {
            let (background, background_wait) =
                self.next(credential, true, self.background, now)?;
            self.tats.insert((credential, true), background);
            wait = wait.max(background_wait);
        }
        self.tats.insert((credential, false), all);
        Ok(wait)
    }

    /// The class's arrival time after one more request, or when one fits.
    fn next(
        &mut self,
        credential: Fingerprint,
        background: bool,
        params: GcraParams,
        now: Instant,
    ) -> Result<(Instant, std::time::Duration), Exhausted> {
        // A credential first seen in local mode starts with its burst spent (and
        // keeps that start, so waiting for it does bring room).
        let start = now + params.period * params.burst;
        let tat = (*self.tats.entry((credential, background)).or_insert(start)).max(now);
        let new_tat = tat + params.period;
        let allow_at = new_tat
            .checked_sub(params.period * params.burst)
            .unwrap_or(now);
        let wait = allow_at.saturating_duration_since(now);
        match wait > MAX_WAIT {
            true => Err(Exhausted {
                retry_after: wait - MAX_WAIT,
            }),
            false => Ok((new_tat, wait)),
        }
    }
}

impl GcraParams {
    /// This quota cut `replicas` ways: the same window, `1 / replicas` of the requests.
    fn divided(self, replicas: u32) -> Self {
        let replicas = replicas.max(1);
        Self {
            period: self.period.saturating_mul(replicas),
            burst: (self.burst / replicas).max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::credential::{Credential, CredentialSecret, FingerprintKey};

    #[test]
    fn an_allowance_starts_empty_and_refills_at_its_fraction_of_the_pace() {
        let all = GcraParams {
            period: Duration::from_millis(100),
            burst: 30,
        };
        let fingerprint = Credential::new(
            CredentialSecret::ApiToken("t".into()),
            &FingerprintKey::random(),
        )
        .fingerprint();
        let mut allowance = OutageAllowance::new(3, all, all);
        let start = Instant::now();
        // No room now: the first request books the slot one allowance period ahead, the
        // next ones the slots after it, until booking would reach past MAX_WAIT.
        let waits: Vec<Duration> = std::iter::from_fn(|| {
            allowance
                .try_acquire(fingerprint, Priority::Foreground, start)
                .ok()
        })
        .collect();
        assert_eq!(waits.len(), 6, "{waits:?}");
        assert_eq!(waits[0], Duration::from_millis(300));
        assert_eq!(waits[5], Duration::from_millis(1800));
        let refused = allowance
            .try_acquire(fingerprint, Priority::Foreground, start)
            .unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_millis(100));
        // From then on, a third of the full pace: 100 requests in 30 s rather than 300,
        // plus the 7 slots of the MAX_WAIT horizon ahead booked at the first step.
        let admitted = (1..=3000)
            .filter(|step| {
                let now = start + MAX_WAIT + Duration::from_millis(10 * step);
                allowance
                    .try_acquire(fingerprint, Priority::Foreground, now)
                    .is_ok()
            })
            .count();
        assert_eq!(admitted, 100 + 7);
    }
}
