//! Counts each websocket operation in `graphql_requests_total`, as one HTTP
//! request is counted: its operation type, parsed before it runs, and its outcome,
//! read from its first response (a request error, errors, or data). An operation
//! that ends or is stopped before any response counts as `ok`. Each event a
//! subscription sends counts in `subscription_events_delivered_total`. Both
//! protocols run operations through [`CountingSchema`]: the legacy one as
//! async-graphql's [`Executor`].

use std::sync::Arc;

use async_graphql::{Data, Executor, Request, Response};
use futures::StreamExt;
use futures::stream::BoxStream;

use crate::graphql::{
    Delivered, FanoutResponse, GatewaySchema, Recipient, Subscribed, SubscriptionAdmission, outcome,
};
use crate::http::AppState;
use crate::metrics::{Deliveries, GraphqlOutcome, Metrics, OperationKind, Protocol, Transport};

/// The schema, counting every operation it runs on one websocket protocol.
#[derive(Clone)]
pub(super) struct CountingSchema {
    schema: GatewaySchema,
    metrics: Metrics,
    transport: Transport,
    /// The subscription events this protocol sends.
    deliveries: Deliveries,
}

impl CountingSchema {
    /// The schema of one websocket `protocol`.
    pub(super) fn new(state: &AppState, protocol: Protocol) -> Self {
        let transport = match protocol {
            Protocol::LegacyWs => Transport::LegacyWs,
            _ => Transport::TransportWs,
        };
        Self {
            schema: state.schema.clone(),
            metrics: state.metrics.clone(),
            transport,
            deliveries: state.metrics.deliveries(protocol),
        }
    }

    /// Whether `request` runs a subscription (whose results are events).
    pub(super) fn is_subscription(&self, request: &Request) -> bool {
        self.schema.operation_kind(request) == OperationKind::Subscription
    }

    /// One subscription event sent to the client.
    pub(super) fn delivered(&self) {
        self.deliveries.one();
    }

    /// The operation, not counted yet.
    fn uncounted(&self, request: &Request) -> Uncounted {
        Uncounted {
            metrics: self.metrics.clone(),
            transport: self.transport,
            kind: self.schema.operation_kind(request),
            outcome: GraphqlOutcome::Ok,
        }
    }

    /// The responses of one operation, counted at the first (or when it ends without one).
    pub(super) fn responses(
        &self,
        request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        let mut uncounted = Some(self.uncounted(&request));
        let deliveries = self
            .is_subscription(&request)
            .then(|| self.deliveries.clone());
        Executor::execute_stream(&self.schema, request, session_data)
            .map(move |response| {
                if let Some(deliveries) = &deliveries
                    && !crate::graphql::is_request_error(&response)
                {
                    deliveries.one();
                }
                if let Some(operation) = uncounted.take() {
                    operation.settle(&response);
                }
                response
            })
            .boxed()
    }

    /// The results of one operation, counted as [`Self::responses`] are: pushed to
    /// `delivery` when it shares an execution with every subscriber that asked for
    /// the same (see [`GatewaySchema::subscribe_delivered`]), and then coming with
    /// its count for the transport to settle at its first result
    /// ([`Uncounted::settle`]); else a stream, counted at its first result.
    pub(super) fn subscribe_delivered(
        &self,
        request: Request,
        connection: Option<Arc<dyn SubscriptionAdmission>>,
        delivery: Box<dyn Recipient>,
    ) -> StartedOperation {
        let uncounted = self.uncounted(&request);
        match self
            .schema
            .subscribe_delivered(request, connection, delivery)
        {
            Subscribed::Delivered(delivered) => StartedOperation::Delivered(delivered, uncounted),
            Subscribed::Stream(results) => StartedOperation::Stream(counted(results, uncounted)),
        }
    }
}

/// An operation started by [`CountingSchema::subscribe_delivered`].
pub(super) enum StartedOperation {
    /// Results go to its delivery; counted when its first one is settled.
    Delivered(Delivered, Uncounted),
    /// Results come from this stream, counted at the first.
    Stream(BoxStream<'static, Arc<FanoutResponse>>),
}

/// `results`, counting `uncounted` at the first.
fn counted(
    results: BoxStream<'static, Arc<FanoutResponse>>,
    uncounted: Uncounted,
) -> BoxStream<'static, Arc<FanoutResponse>> {
    let mut uncounted = Some(uncounted);
    results
        .map(move |result| {
            if let Some(operation) = uncounted.take() {
                operation.settle(result.response());
            }
            result
        })
        .boxed()
}

impl Executor for CountingSchema {
    async fn execute(&self, request: Request) -> Response {
        let mut responses = self.responses(request, None);
        responses.next().await.unwrap_or_default()
    }

    fn execute_stream(
        &self,
        request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        self.responses(request, session_data)
    }
}

/// An operation not counted yet: counted with `outcome` when dropped (at its
/// first response, or when it ends or is stopped before one).
pub(super) struct Uncounted {
    metrics: Metrics,
    transport: Transport,
    kind: OperationKind,
    outcome: GraphqlOutcome,
}

impl Uncounted {
    /// Counts the operation with the outcome of its first response.
    pub(super) fn settle(mut self, first: &Response) {
        self.outcome = outcome(first);
    }
}

impl Drop for Uncounted {
    fn drop(&mut self) {
        self.metrics
            .graphql_operation(self.transport, self.kind, self.outcome);
    }
}
