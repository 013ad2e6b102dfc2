//! Counts each websocket operation in `graphql_requests_total`, as one HTTP
//! request is counted: its operation type, parsed before it runs, and its outcome,
//! read from its first response (a request error, errors, or data). An operation
//! that ends or is stopped before any response counts as `ok`. Both protocols run
//! operations through [`Counted`]: the legacy one as async-graphql's [`Executor`].

use std::sync::Arc;

use async_graphql::{Data, Executor, Request, Response};
use futures::StreamExt;
use futures::stream::BoxStream;

use crate::graphql::{GatewaySchema, SharedResponse, SubscriptionAdmission};
use crate::http::AppState;
use crate::http::graphql::{graphql_outcome, parsed_operation_kind};
use crate::metrics::{GraphqlOutcome, Metrics, OperationKind, Transport};

/// The schema, counting every operation it runs on one websocket protocol.
#[derive(Clone)]
pub(super) struct Counted {
    schema: GatewaySchema,
    metrics: Metrics,
    transport: Transport,
}

impl Counted {
    pub(super) fn new(state: &AppState, transport: Transport) -> Self {
        Self {
            schema: state.schema.clone(),
            metrics: state.metrics.clone(),
            transport,
        }
    }

    /// The operation, not counted yet.
    fn uncounted(&self, request: &Request) -> Option<Uncounted> {
        Some(Uncounted {
            metrics: self.metrics.clone(),
            transport: self.transport,
            kind: parsed_operation_kind(&self.schema, request),
            outcome: GraphqlOutcome::Ok,
        })
    }

    /// The responses of one operation, counted at the first (or when it ends without one).
    pub(super) fn responses(
        &self,
        request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        let mut uncounted = self.uncounted(&request);
        Executor::execute_stream(&self.schema, request, session_data)
            .map(move |response| {
                if let Some(mut operation) = uncounted.take() {
                    operation.outcome = graphql_outcome(&response);
                }
                response
            })
            .boxed()
    }

    /// The results of one operation, shared with every subscriber that asked for the
    /// same (see [`GatewaySchema::subscribe`]), counted as [`Self::responses`] are.
    pub(super) fn subscribe(
        &self,
        request: Request,
        connection: Option<Arc<dyn SubscriptionAdmission>>,
    ) -> BoxStream<'static, Arc<SharedResponse>> {
        let mut uncounted = self.uncounted(&request);
        self.schema
            .subscribe(request, connection)
            .map(move |result| {
                if let Some(mut operation) = uncounted.take() {
                    operation.outcome = graphql_outcome(result.response());
                }
                result
            })
            .boxed()
    }
}

impl Executor for Counted {
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
struct Uncounted {
    metrics: Metrics,
    transport: Transport,
    kind: OperationKind,
    outcome: GraphqlOutcome,
}

impl Drop for Uncounted {
    fn drop(&mut self) {
        self.metrics
            .graphql_operation(self.transport, self.kind, self.outcome);
    }
}
