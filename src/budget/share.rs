//! The conservative local share a replica spends while Redis is unreachable: the
//! credential's budget divided by the last known replica count, so N replicas cut
//! off from each other still stay within one budget together.
//!
//! A GCRA of its own rather than governor's, because a share starts *empty* (no
//! burst): the replicas may have spent the shared burst just before Redis went
//! away, and the window that straddles the outage must still hold. It then refills
//! at the share's pace.

use std::collections::HashMap;
use std::time::Instant;

use super::{Exhausted, GcraParams, Priority};
use crate::credential::Fingerprint;

/// Shares of both classes for one replica count; rebuilt when the count changes.
pub(super) struct LocalShare {
    /// The replica count this share was cut for.
    pub(super) replicas: u32,
    all: GcraParams,
    background: GcraParams,
    /// Theoretical arrival times per credential and class (`true` = background).
    tats: HashMap<(Fingerprint, bool), Instant>,
}

impl LocalShare {
    /// `1 / replicas` of `all` and `background`, starting empty at `now`.
    pub(super) fn new(replicas: u32, all: GcraParams, background: GcraParams) -> Self {
        Self {
            replicas,
            all: all.share(replicas),
            background: background.share(replicas),
            tats: HashMap::new(),
        }
    }

    /// Admits one request at `now`, saying how many more could go at once.
    pub(super) fn try_acquire(
        &mut self,
        credential: Fingerprint,
        priority: Priority,
        now: Instant,
    ) -> Result<u32, Exhausted> {
        if self.tats.len() > super::MAX_TRACKED_CREDENTIALS {
            self.tats.retain(|_, tat| *tat > now);
        }
        let all = self.next(credential, false, self.all, now)?;
        if priority == Priority::Background {
            let background = self.next(credential, true, self.background, now)?;
            self.tats.insert((credential, true), background);
        }
        self.tats.insert((credential, false), all);
        let debt = all.saturating_duration_since(now);
        let room = self.all.period * self.all.burst;
        Ok((room.saturating_sub(debt).as_nanos() / self.all.period.as_nanos().max(1)) as u32)
    }

    /// The class's arrival time after one more request, or when one fits.
    fn next(
        &self,
        credential: Fingerprint,
        background: bool,
        params: GcraParams,
        now: Instant,
    ) -> Result<Instant, Exhausted> {
        // A credential first seen in local mode starts with its burst spent.
        let start = now + params.period * params.burst;
        let tat = (*self.tats.get(&(credential, background)).unwrap_or(&start)).max(now);
        let new_tat = tat + params.period;
        let allow_at = new_tat
            .checked_sub(params.period * params.burst)
            .unwrap_or(now);
        match allow_at > now {
            true => Err(Exhausted {
                retry_after: allow_at - now,
            }),
            false => Ok(new_tat),
        }
    }
}

impl GcraParams {
    /// This quota cut `replicas` ways: the same window, `1 / replicas` of the requests.
    fn share(self, replicas: u32) -> Self {
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
    use crate::credential::{Credential, Credentials, FingerprintKey};

    #[test]
    fn a_share_starts_empty_and_refills_at_its_fraction_of_the_pace() {
        let all = GcraParams {
            period: Duration::from_millis(100),
            burst: 30,
        };
        let fingerprint =
            Credential::new(Credentials::ApiToken("t".into()), &FingerprintKey::random())
                .fingerprint();
        let mut share = LocalShare::new(3, all, all);
        let start = Instant::now();
        let refused = share
            .try_acquire(fingerprint, Priority::Foreground, start)
            .unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_millis(300));
        // Over 30 s, a third of the full pace: 100 requests rather than 300.
        let admitted = (0..3000)
            .filter(|step| {
                let now = start + Duration::from_millis(10 * step);
                share
                    .try_acquire(fingerprint, Priority::Foreground, now)
                    .is_ok()
            })
            .count();
        assert_eq!(admitted, 100);
    }
}
