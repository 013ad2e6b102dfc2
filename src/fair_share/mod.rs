//! Fair shares: what one client (see [`ClientId`]) may take of what every client
//! shares, so a greedy or hostile one cannot starve the others.
//!
//! - **Upstream lookups.** Each client has a GCRA of its own, sized as
//!   `--client-budget-share` of the credential budget (the same shape: a burst of a
//!   tenth, the rest spread evenly). Only lookups that ask the upstream spend from
//!   it (the one query whose load makes the call, a `startRegistration`); answers
//!   from the cache, and queries that join a load already in flight, are free. One client can then take at most its share of a credential's burst,
//!   and the others' lookups still find room. A share of 1 leaves the credential's
//!   budget as the only limit (no per-client limiter is kept).
//! - **Open subscriptions**, over every transport, at most
//!   `--max-subscriptions-per-client`: counted exactly, one entry per client with an
//!   open subscription (so bounded by `--max-subscriptions`).
//! - **New credentials** (pass-through modes): at most
//!   `--max-new-credentials-per-client` Cloudflare credentials a client has not used
//!   lately, per minute, so one client cannot relay a stream of guessed tokens.
//!
//! Per-client state lives in a bounded moka cache, forgotten once idle for longer
//! than it takes to refill: an attacker rotating addresses costs at most
//! [`MAX_CLIENTS`] small entries (and each evicted client only gets a fresh share,
//! still inside the credential's budget). A refusal is answered before any upstream call.

mod client;

pub use client::{ClientAddress, ClientId, TrustedProxies};

use std::collections::{HashMap, VecDeque};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::budget::{BudgetSettings, quota};
use crate::credential::Fingerprint;
use crate::sync::LockUnpoisoned;

/// Clients whose shares are tracked at once; the least recently seen go first.
pub const MAX_CLIENTS: u64 = 100_000;
/// Credentials remembered per client as already used (most recent kept).
const KNOWN_CREDENTIALS: usize = 64;

/// How large each client's shares are.
#[derive(Clone, Debug)]
pub struct ShareSettings {
    /// The per-credential budget the lookup share is a fraction of.
    pub budget: BudgetSettings,
    /// The fraction of it one client may spend (0 < share <= 1).
    pub lookup_share: f64,
    /// Most subscriptions one client may hold open.
    pub max_subscriptions: usize,
    /// Most Cloudflare credentials new to a client it may present per minute.
    pub max_new_credentials_per_minute: u32,
    /// Proxies whose forwarding headers name the client.
    pub trusted_proxies: TrustedProxies,
}

/// Why a client's request was refused before any upstream call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The client's share of the upstream budget is spent for now.
    #[error(
        "this client's share of the upstream budget is spent (--client-budget-share); cached statuses are still served; retry in {}s",
        retry_after.as_secs_f64().ceil()
    )]
    Lookups {
        /// When the share will admit a lookup.
        retry_after: Duration,
    },
    /// The client presented too many Cloudflare credentials new to it this minute.
    #[error(
        "this client presented too many different Cloudflare credentials in the last minute (--max-new-credentials-per-client); retry in {}s",
        retry_after.as_secs_f64().ceil()
    )]
    NewCredentials {
        /// When a new credential will be admitted.
        retry_after: Duration,
    },
    /// The client holds its maximum of open subscriptions.
    #[error("at most {0} subscriptions per client (--max-subscriptions-per-client)")]
    Subscriptions(usize),
}

impl Refused {
    /// When trying again may succeed; `None` when only closing something will help.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Lookups { retry_after } | Self::NewCredentials { retry_after } => {
                Some(*retry_after)
            }
            Self::Subscriptions(_) => None,
        }
    }
}

/// Every client's shares; cheap to clone.
#[derive(Clone)]
pub struct FairShare {
    inner: Arc<FairShareState>,
}

struct FairShareState {
    /// `None` when one client may spend the whole budget.
    lookup_quota: Option<Quota>,
    credential_quota: Quota,
    /// Each client's limiters, forgotten when idle (bounded, see [`MAX_CLIENTS`]).
    clients: moka::future::Cache<ClientId, Arc<ClientState>>,
    /// Open subscriptions per client; a client leaves the map when its count is zero.
    subscriptions: Mutex<HashMap<ClientId, usize>>,
    max_subscriptions: usize,
    trusted_proxies: TrustedProxies,
    clock: DefaultClock,
}

/// One client's limiters.
struct ClientState {
    lookups: Option<DefaultDirectRateLimiter>,
    new_credentials: DefaultDirectRateLimiter,
    /// Credentials this client was let use lately, most recent last.
    known_credentials: Mutex<VecDeque<Fingerprint>>,
}

impl FairShare {
    /// Shares sized by `settings`.
    pub fn new(settings: ShareSettings) -> Self {
        let budget = settings.budget;
        let share = settings.lookup_share.clamp(f64::MIN_POSITIVE, 1.0);
        let client_limit = (f64::from(budget.limit) * share).ceil().max(1.0) as u32;
        let lookup_quota = (share < 1.0).then(|| quota(client_limit, budget.window));
        let per_minute =
            NonZeroU32::new(settings.max_new_credentials_per_minute.max(1)).expect("at least 1");
        // Idle longer than a full refill, a client's limiters are as good as new.
        let idle = budget.window.max(Duration::from_secs(60));
        let inner = FairShareState {
            lookup_quota,
            credential_quota: Quota::per_minute(per_minute),
            clients: moka::future::Cache::builder()
                .max_capacity(MAX_CLIENTS)
                .time_to_idle(idle)
                .build(),
            subscriptions: Mutex::default(),
            max_subscriptions: settings.max_subscriptions,
            trusted_proxies: settings.trusted_proxies,
            clock: DefaultClock::default(),
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The proxies whose forwarding headers are believed.
    pub fn trusted_proxies(&self) -> &TrustedProxies {
        &self.inner.trusted_proxies
    }

    /// Takes one upstream lookup from `client`'s share; refused, how long until the
    /// share admits one ([`Refused::Lookups`]).
    pub async fn take_lookup(&self, client: ClientId) -> Result<(), Duration> {
        if self.inner.lookup_quota.is_none() {
            return Ok(());
        }
        let state = self.state(client).await;
        let Some(lookups) = &state.lookups else {
            return Ok(());
        };
        lookups
            .check()
            .map_err(|not_until| not_until.wait_time_from(self.inner.clock.now()))
    }

    /// Lets `client` use the Cloudflare credential `credential`: at once when it used
    /// it lately, else if its new-credential share has room.
    pub async fn admit_credential(
        &self,
        client: ClientId,
        credential: Fingerprint,
    ) -> Result<(), Refused> {
        let state = self.state(client).await;
        let mut known = state.known_credentials.lock_unpoisoned();
        if let Some(position) = known.iter().position(|seen| *seen == credential) {
            known.remove(position);
            known.push_back(credential);
            return Ok(());
        }
        state
            .new_credentials
            .check()
            .map_err(|not_until| Refused::NewCredentials {
                retry_after: not_until.wait_time_from(self.inner.clock.now()),
            })?;
        if known.len() >= KNOWN_CREDENTIALS {
            known.pop_front();
        }
        known.push_back(credential);
        Ok(())
    }

    /// Counts one more open subscription of `client`, until the hold is dropped.
    pub fn hold_subscription(&self, client: ClientId) -> Result<SubscriptionHold, Refused> {
        let mut open = self.inner.subscriptions.lock_unpoisoned();
        let count = open.entry(client).or_default();
        if *count >= self.inner.max_subscriptions {
            if *count == 0 {
                open.remove(&client);
            }
            return Err(Refused::Subscriptions(self.inner.max_subscriptions));
        }
        *count += 1;
        Ok(SubscriptionHold {
            inner: Arc::clone(&self.inner),
            client,
        })
    }

    async fn state(&self, client: ClientId) -> Arc<ClientState> {
        let (lookups, credentials) = (self.inner.lookup_quota, self.inner.credential_quota);
        self.inner
            .clients
            .get_with(client, async move {
                Arc::new(ClientState {
                    lookups: lookups.map(RateLimiter::direct),
                    new_credentials: RateLimiter::direct(credentials),
                    known_credentials: Mutex::default(),
                })
            })
            .await
    }
}

/// One open subscription of a client; released on drop.
pub struct SubscriptionHold {
    inner: Arc<FairShareState>,
    client: ClientId,
}

impl std::fmt::Debug for SubscriptionHold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SubscriptionHold")
            .field(&self.client)
            .finish()
    }
}

impl Drop for SubscriptionHold {
    fn drop(&mut self) {
        let mut open = self.inner.subscriptions.lock_unpoisoned();
        if let Some(count) = open.get_mut(&self.client) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::{Credential, CredentialSecret, FingerprintKey};
    use std::net::IpAddr;

    fn fair(limit: u32, share: f64, subscriptions: usize, credentials: u32) -> FairShare {
        FairShare::new(ShareSettings {
            budget: BudgetSettings {
                limit,
                window: Duration::from_secs(3600),
                background_share: 0.25,
            },
            lookup_share: share,
            max_subscriptions: subscriptions,
            max_new_credentials_per_minute: credentials,
            trusted_proxies: TrustedProxies::default(),
        })
    }

    fn client(last: u8) -> ClientId {
        ClientId::Address(IpAddr::from([192, 0, 2, last]))
    }

    fn fingerprint(token: &str, key: &FingerprintKey) -> Fingerprint {
        Credential::new(CredentialSecret::ApiToken(token.into()), key).fingerprint()
    }

    #[tokio::test]
    async fn a_client_gets_a_burst_of_a_tenth_of_its_share_and_others_keep_theirs() {
        let shares = fair(1000, 0.2, 10, 10);
        let mut admitted = 0;
        for _ in 0..100 {
            admitted += usize::from(shares.take_lookup(client(1)).await.is_ok());
        }
        assert_eq!(admitted, 20, "a tenth of 20% of 1,000");
        let retry_after = shares.take_lookup(client(1)).await.unwrap_err();
        assert!(retry_after > Duration::from_secs(1));
        assert!(shares.take_lookup(client(2)).await.is_ok());
        let whole = fair(1000, 1.0, 10, 10);
        for _ in 0..1000 {
            assert!(
                whole.take_lookup(client(1)).await.is_ok(),
                "a share of 1 is no limit"
            );
        }
    }

    #[tokio::test]
    async fn known_credentials_are_free_and_new_ones_are_capped_per_minute() {
        let shares = fair(1000, 1.0, 10, 3);
        let key = FingerprintKey::random();
        for token in ["a", "b", "c"] {
            assert!(
                shares
                    .admit_credential(client(1), fingerprint(token, &key))
                    .await
                    .is_ok()
            );
        }
        let refused = shares
            .admit_credential(client(1), fingerprint("d", &key))
            .await
            .unwrap_err();
        assert!(
            matches!(refused, Refused::NewCredentials { .. }),
            "{refused:?}"
        );
        assert!(
            shares
                .admit_credential(client(1), fingerprint("a", &key))
                .await
                .is_ok()
        );
        assert!(
            shares
                .admit_credential(client(2), fingerprint("d", &key))
                .await
                .is_ok()
        );
    }

    #[test]
    fn subscriptions_are_counted_exactly_and_released_on_drop() {
        let shares = fair(1000, 1.0, 2, 10);
        let first = shares.hold_subscription(client(1)).unwrap();
        let _second = shares.hold_subscription(client(1)).unwrap();
        assert_eq!(
            shares.hold_subscription(client(1)).unwrap_err(),
            Refused::Subscriptions(2)
        );
        assert!(shares.hold_subscription(client(2)).is_ok());
        drop(first);
        assert!(shares.hold_subscription(client(1)).is_ok());
    }

    #[test]
    fn clients_without_open_subscriptions_hold_no_entry() {
        let shares = fair(1000, 1.0, 0, 10);
        assert!(shares.hold_subscription(client(1)).is_err());
        let held = fair(1000, 1.0, 1, 10);
        drop(held.hold_subscription(client(1)).unwrap());
        for shares in [shares, held] {
            assert!(shares.inner.subscriptions.lock_unpoisoned().is_empty());
        }
    }
}
