//! The websocket transports' hold on the subscriptions of one connection: their count
//! in the subscriptions gauge and, for the legacy protocol, the per-connection bound.
//!
//! Both transports bound every operation of a connection themselves, before it
//! starts (`graphql-transport-ws` in its loop, the legacy protocol in the executor
//! async-graphql runs its operations through), so subscriptions are bounded there,
//! once, and only counted here ([`ConnectionSubscriptions::counted`]); a bounded
//! admission applies the bound when the schema asks for a place
//! ([`SubscriptionAdmission`]). Either way the policy is the transport's: the
//! schema only asks.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::graphql::{SubscriptionAdmission, SubscriptionPlace};
use crate::metrics::{Active, ActiveGauge};

/// A connection's subscriptions, placed (as a [`SubscriptionAdmission`]) in each
/// websocket connection's data.
#[derive(Debug)]
pub(super) struct ConnectionSubscriptions {
    active: Arc<AtomicUsize>,
    /// Most subscriptions at once; `usize::MAX` where the transport bounds operations itself.
    max: usize,
    /// The gateway-wide gauge of live subscriptions over this connection's protocol.
    gauge: ActiveGauge,
}

impl ConnectionSubscriptions {
    /// At most `max` subscriptions at once, each counted in `gauge` while it lives.
    pub(super) fn bounded(max: usize, gauge: ActiveGauge) -> Arc<dyn SubscriptionAdmission> {
        Arc::new(Self {
            active: Arc::default(),
            max,
            gauge,
        })
    }

    /// Subscriptions counted in `gauge`, bounded by the transport (which counts every
    /// operation of the connection before it starts one).
    pub(super) fn counted(gauge: ActiveGauge) -> Arc<dyn SubscriptionAdmission> {
        Self::bounded(usize::MAX, gauge)
    }
}

impl SubscriptionAdmission for ConnectionSubscriptions {
    fn admit(&self) -> Result<SubscriptionPlace, String> {
        self.active
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |active| {
                (active < self.max).then_some(active + 1)
            })
            .map_err(|_| format!("at most {} subscriptions per connection", self.max))?;
        Ok(SubscriptionPlace::new(TakenPlace {
            active: Arc::clone(&self.active),
            _counted: self.gauge.hold(),
        }))
    }
}

/// One taken place, counted in the gauge; freed on drop.
struct TakenPlace {
    active: Arc<AtomicUsize>,
    /// Held for the gauge; released with the slot.
    _counted: Active,
}

impl Drop for TakenPlace {
    fn drop(&mut self) {
        self.active.fetch_sub(1, Ordering::AcqRel);
    }
}
