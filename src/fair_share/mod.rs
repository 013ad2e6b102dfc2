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
//! - **Open connections and websockets**, at most `--max-connections-per-client` and
//!   `--max-websockets-per-client` per client address, so one address cannot take
//!   the `--max-connections` every client shares. Connections count by their TCP
//!   peer (a trusted proxy's connections carry many clients, so they are not
//!   capped); websockets by the address trusted proxies forward.
//! - **New credentials** (pass-through modes): at most
//!   `--max-new-credentials-per-client` Cloudflare credentials a client has not used
//!   lately, per minute, so one client cannot relay a stream of guessed tokens.
//!
//! Per-client state lives in a bounded moka cache, forgotten once idle for longer
//! than it takes to refill: an attacker rotating addresses costs at most
//! [`MAX_CLIENTS`] small entries (and each evicted client only gets a fresh share,
//! still inside the credential's budget). A refusal is answered before any upstream call.

mod client;
mod open;

pub use client::{ClientAddress, ClientId, ForwardedHeader, TrustedProxies};
pub use open::Held;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::budget::{BudgetSettings, quota};
use crate::credential::Fingerprint;
use crate::sync::LockUnpoisoned;
use open::OpenCounts;

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
    /// Most connections one client address may hold open (websockets included).
    pub max_connections: usize,
    /// Most websockets one client address may hold open.
    pub max_websockets: usize,
    /// Most Cloudflare credentials new to a client it may present per minute.
    pub max_new_credentials_per_minute: u32,
    /// Proxies whose forwarding headers name the client.
    pub trusted_proxies: TrustedProxies,
}

/// The code of a connection refused because its client address holds its maximum.
pub const TOO_MANY_CLIENT_CONNECTIONS: &str = "TOO_MANY_CLIENT_CONNECTIONS";
/// The code of a websocket refused because its client address holds its maximum.
pub const TOO_MANY_CLIENT_WEBSOCKETS: &str = "TOO_MANY_CLIENT_WEBSOCKETS";

/// Why a client's request was refused before any upstream call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShareRefusal {
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
    /// The client's address holds its maximum of open connections.
    #[error(
        "this client address holds its maximum of {0} open connections (--max-connections-per-client); close one, or reuse it (keep-alive)"
    )]
    Connections(usize),
    /// The client's address holds its maximum of open websockets.
    #[error(
        "this client address holds its maximum of {0} open websockets (--max-websockets-per-client); close one, or run more subscriptions on one socket"
    )]
    Websockets(usize),
}

impl ShareRefusal {
    /// When trying again may succeed; `None` when only closing something will help.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Lookups { retry_after } | Self::NewCredentials { retry_after } => {
                Some(*retry_after)
            }
            Self::Subscriptions(_) | Self::Connections(_) | Self::Websockets(_) => None,
        }
    }
}

/// One open subscription of a client; given back on drop.
pub type SubscriptionHold = Held<ClientId>;
/// One open connection or websocket of a client address; given back on drop.
pub type ConnectionHold = Held<ClientAddress>;

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
    /// Open subscriptions, connections and websockets per client.
    subscriptions: Arc<OpenCounts<ClientId>>,
    connections: Arc<OpenCounts<ClientAddress>>,
    websockets: Arc<OpenCounts<ClientAddress>>,
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
        let client_limit = (f64::from(budget.allowance()) * share).ceil().max(1.0) as u32;
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
            subscriptions: OpenCounts::new(settings.max_subscriptions),
            connections: OpenCounts::new(settings.max_connections),
            websockets: OpenCounts::new(settings.max_websockets),
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
    /// share admits one ([`ShareRefusal::Lookups`]).
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
    ) -> Result<(), ShareRefusal> {
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
            .map_err(|not_until| ShareRefusal::NewCredentials {
                retry_after: not_until.wait_time_from(self.inner.clock.now()),
            })?;
        if known.len() >= KNOWN_CREDENTIALS {
            known.pop_front();
        }
        known.push_back(credential);
        Ok(())
    }

    /// Counts one more open subscription of `client`, until the hold is dropped.
    pub fn hold_subscription(&self, client: ClientId) -> Result<SubscriptionHold, ShareRefusal> {
        let subscriptions = &self.inner.subscriptions;
        subscriptions
            .hold(client)
            .ok_or(ShareRefusal::Subscriptions(subscriptions.max()))
    }

    /// Counts one more open connection from the TCP peer `peer`, until the hold is
    /// dropped; `None` when the peer is a trusted proxy (its connections carry many
    /// clients: only the gateway-wide cap applies to them).
    pub fn hold_connection(
        &self,
        peer: SocketAddr,
    ) -> Result<Option<ConnectionHold>, ShareRefusal> {
        let peer = peer.ip().to_canonical();
        if self.inner.trusted_proxies.trusts(peer) {
            return Ok(None);
        }
        let connections = &self.inner.connections;
        match connections.hold(ClientAddress::of(peer)) {
            Some(held) => Ok(Some(held)),
            None => Err(ShareRefusal::Connections(connections.max())),
        }
    }

    /// Counts one more open websocket of the client at `address`, until the hold is
    /// dropped.
    pub fn hold_websocket(&self, address: ClientAddress) -> Result<ConnectionHold, ShareRefusal> {
        let websockets = &self.inner.websockets;
        websockets
            .hold(address)
            .ok_or(ShareRefusal::Websockets(websockets.max()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::{Credential, CredentialSecret, FingerprintKey};
    use std::net::IpAddr;

    fn fair(limit: u32, share: f64, subscriptions: usize, credentials: u32) -> FairShare {
        FairShare::new(share_settings(limit, share, subscriptions, credentials))
    }

    fn share_settings(
        limit: u32,
        share: f64,
        subscriptions: usize,
        credentials: u32,
    ) -> ShareSettings {
        ShareSettings {
            budget: BudgetSettings {
                limit,
                window: Duration::from_secs(3600),
                background_share: 0.25,
                reserve: 0.0,
            },
            lookup_share: share,
            max_subscriptions: subscriptions,
            max_connections: 2,
            max_websockets: 1,
            max_new_credentials_per_minute: credentials,
            trusted_proxies: TrustedProxies::default(),
        }
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
            matches!(refused, ShareRefusal::NewCredentials { .. }),
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
            ShareRefusal::Subscriptions(2)
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
            assert_eq!(shares.inner.subscriptions.clients(), 0);
        }
    }

    #[test]
    fn connections_count_per_peer_address_but_not_from_trusted_proxies() {
        let proxies = vec!["10.0.0.0/8".parse().unwrap()];
        let shares = FairShare::new(ShareSettings {
            trusted_proxies: TrustedProxies::new(proxies, ForwardedHeader::XForwardedFor),
            ..share_settings(1000, 1.0, 1, 10)
        });
        let peer = |text: &str| text.parse::<SocketAddr>().unwrap();
        let first = shares.hold_connection(peer("192.0.2.1:1000")).unwrap();
        let _second = shares.hold_connection(peer("192.0.2.1:1001")).unwrap();
        assert_eq!(
            shares.hold_connection(peer("192.0.2.1:1002")).unwrap_err(),
            ShareRefusal::Connections(2)
        );
        assert!(shares.hold_connection(peer("192.0.2.2:1000")).is_ok());
        for port in 0..10 {
            let proxied = shares.hold_connection(peer(&format!("10.0.0.1:{port}")));
            assert!(matches!(proxied, Ok(None)), "{proxied:?}");
        }
        drop(first);
        assert!(shares.hold_connection(peer("192.0.2.1:1003")).is_ok());
        let address = ClientAddress::of("198.51.100.1".parse().unwrap());
        let websocket = shares.hold_websocket(address).unwrap();
        assert_eq!(
            shares.hold_websocket(address).unwrap_err(),
            ShareRefusal::Websockets(1)
        );
        drop(websocket);
        assert!(shares.hold_websocket(address).is_ok());
    }
}
