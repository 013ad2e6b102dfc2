//! Subscription admission, in one place: before a subscription starts, it takes
//! its place on its connection (the transport's bound, see [`SubscriptionAdmission`])
//! and its client's place in its share of open subscriptions (see
//! [`crate::fair_share`]), once, as one value ([`SubscriberPlaces`]) it holds for as
//! long as it listens. A subscriber of a shared execution holds its places beside
//! the execution (see `fanout`); a subscription running on its own carries them
//! in its request data to its resolver ([`PendingPlaces`]), which reports a refusal
//! as its field's error, where it would have reported any other.

use std::sync::Mutex;

use async_graphql::{Context, Data, Request};

use super::data_of;
use super::error::GraphqlError;
use crate::fair_share::{ClientId, FairShare, SubscriptionHold};
use crate::sync::LockUnpoisoned;

/// How a transport bounds and counts the subscriptions of one connection: placed
/// (as an `Arc<dyn SubscriptionAdmission>`) in the connection's data by the websocket
/// transports, whose policy it is (`http::websocket`). Every subscription asks it for
/// a place before it starts and holds the place for as long as its stream lives.
pub trait SubscriptionAdmission: Send + Sync {
    /// A place for one more subscription, or the message of the
    /// `TOO_MANY_SUBSCRIPTIONS` error refusing it.
    fn admit(&self) -> Result<SubscriptionPlace, String>;
}

/// A subscription's place on its connection, given back when dropped.
pub struct SubscriptionPlace {
    _guard: Box<dyn Send + Sync>,
}

impl SubscriptionPlace {
    /// A place that lasts as long as `guard` (a count to decrement, a gauge to release).
    pub fn new(guard: impl Send + Sync + 'static) -> Self {
        Self {
            _guard: Box::new(guard),
        }
    }
}

/// A subscriber's place on its connection and in its client's share of open
/// subscriptions (each when it has one), held for as long as it listens.
pub(super) struct SubscriberPlaces {
    _connection: Option<SubscriptionPlace>,
    _client: Option<SubscriptionHold>,
}

/// Takes a subscriber's places: on `connection`, then in the share of the client
/// the request (or its connection's `session` data) names. The first refusal is
/// the subscription's error.
pub(super) fn admit(
    request: &Request,
    session: Option<&Data>,
    connection: Option<&dyn SubscriptionAdmission>,
    shares: &FairShare,
) -> Result<SubscriberPlaces, GraphqlError> {
    let connection = connection
        .map(SubscriptionAdmission::admit)
        .transpose()
        .map_err(GraphqlError::TooManySubscriptions)?;
    let client = data_of::<ClientId>(&request.data)
        .or_else(|| session.and_then(data_of::<ClientId>))
        .map(|client| shares.hold_subscription(*client))
        .transpose()?;
    Ok(SubscriberPlaces {
        _connection: connection,
        _client: client,
    })
}

/// Request data of a subscription that runs on its own: its admission, for its
/// resolver to take.
pub(super) struct PendingPlaces(Mutex<Option<Result<SubscriberPlaces, GraphqlError>>>);

impl PendingPlaces {
    pub(super) fn new(admitted: Result<SubscriberPlaces, GraphqlError>) -> Self {
        Self(Mutex::new(Some(admitted)))
    }
}

/// The places a resolver's subscription holds while its stream lives: those its
/// request was admitted with; none when it has none to take (the subscribers of
/// a shared execution hold theirs).
pub(super) fn take(ctx: &Context<'_>) -> Result<Option<SubscriberPlaces>, GraphqlError> {
    let Some(pending) = ctx.data_opt::<PendingPlaces>() else {
        return Ok(None);
    };
    match pending.0.lock_unpoisoned().take() {
        Some(admitted) => admitted.map(Some),
        None => Ok(None),
    }
}
