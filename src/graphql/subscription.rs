//! The subscription root: `registrationStatusChanged` streams a registration's
//! state changes from its one shared poller, and ends where the upstream says a
//! poll loop must end.

use std::sync::Arc;

use async_graphql::{Context, ErrorExtensions, ID, SimpleObject, Subscription};
use futures::{Stream, StreamExt};

use super::caller_credential;
use super::error::GraphqlError;
use super::input::{parse_account, parse_domain};
use super::service;
use super::share::{admit_watch, hold_subscription};
use super::types::{RegistrationStatus, WorkflowState};
use crate::domain::DomainName;
use crate::poller::{Delivery, StatusEvent, WatchError};
use crate::registrations::RegistrationService;

/// One change of a registration's state.
#[derive(SimpleObject)]
pub(super) struct StatusChange {
    /// Per-registration sequence number: consecutive for a subscriber that saw every
    /// change. Pass the last one seen as `afterSequence` to resume after a reconnect.
    sequence: u64,
    /// True when resuming after `afterSequence` was not possible (the gateway's
    /// history of this registration no longer reaches back that far): changes were
    /// missed, and this event carries the current status.
    resynced: bool,
    /// The state before this change; null for the first status the gateway saw.
    previous_state: Option<WorkflowState>,
    /// The status after the change.
    status: RegistrationStatus,
}

impl StatusChange {
    fn new(domain: DomainName, delivery: &Delivery) -> Self {
        let event: &StatusEvent = &delivery.event;
        Self {
            sequence: event.sequence,
            resynced: delivery.resynced,
            previous_state: event.previous_state.as_ref().map(Into::into),
            status: RegistrationStatus::new(
                domain,
                Arc::clone(&event.status),
                event.fetched_at,
                event.next_check_at,
            ),
        }
    }
}

/// Subscriptions for live views.
pub struct SubscriptionRoot;

#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// A registration's status now, then one event per change of state. Completes
    /// after SUCCEEDED or FAILED; after ACTION_REQUIRED too, unless
    /// `keepWatchingActionRequired` asks to keep watching (slowly) for the user to act.
    /// While BLOCKED it keeps watching, slowly, up to the gateway's limit, then ends
    /// with a WATCH_EXPIRED error. With `afterSequence` (the last `sequence` seen
    /// before a reconnect) it first sends the changes missed since, then live ones;
    /// when the gateway's history no longer reaches back that far, the first event
    /// has `resynced: true` and the current status.
    async fn registration_status_changed(
        &self,
        ctx: &Context<'_>,
        domain: String,
        account_id: Option<ID>,
        #[graphql(default = false)] keep_watching_action_required: bool,
        after_sequence: Option<u64>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<StatusChange>> + use<>>
    {
        // The SSE transport's `Last-Event-ID`, when the document does not say.
        let after_sequence =
            after_sequence.or_else(|| ctx.data_opt::<LastEventId>().map(|id| id.0));
        let start = async {
            let registrations = service::<RegistrationService>(ctx)?;
            let credential = caller_credential(ctx)?;
            let account = parse_account(registrations, account_id.as_deref().map(String::as_str))?;
            let domain = parse_domain(&domain)?;
            let place = match ctx.data_opt::<Arc<dyn SubscriptionAdmission>>() {
                Some(connection) => Some(
                    connection
                        .admit()
                        .map_err(GraphqlError::TooManySubscriptions)?,
                ),
                None => None,
            };
            let held = hold_subscription(ctx)?;
            admit_watch(ctx, credential).await?;
            let watch = registrations
                .watch(
                    credential,
                    account,
                    domain.clone(),
                    keep_watching_action_required,
                    after_sequence,
                )
                .await
                .map_err(|refused| GraphqlError::TooManySubscriptions(refused.to_string()))?;
            Ok::<_, GraphqlError>((watch, (place, held), domain))
        };
        let (watch, places, domain) = start.await.map_err(|error| error.extend())?;
        Ok(watch.into_stream().map(move |item| {
            // The connection's place and the client's are held for as long as the stream lives.
            let _places = &places;
            match item {
                Ok(delivery) => Ok(StatusChange::new(domain.clone(), &delivery)),
                Err(end) => Err(end_error(&domain, end).extend()),
            }
        }))
    }
}

/// The sequence a reconnecting SSE client last saw (its `Last-Event-ID` header),
/// placed in the request data by the transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LastEventId(pub u64);

/// What subscribers are told when watching stops for a reason other than the workflow ending.
fn end_error(domain: &DomainName, end: WatchError) -> GraphqlError {
    match end {
        WatchError::NotFound => {
            GraphqlError::WorkflowNotFound(format!("no registration workflow for {domain}"))
        }
        WatchError::Expired { blocked_for } => GraphqlError::WatchExpired(format!(
            "{domain} stayed blocked for {}s, longer than this gateway watches; query it later",
            blocked_for.as_secs()
        )),
        WatchError::GaveUp(error) => GraphqlError::Upstream(error),
    }
}

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
