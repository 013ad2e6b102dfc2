//! The GraphQL schema: types, the query root, operation limits and the error enum,
//! kept apart from any transport. [`build_schema`] wires it to the gateway's services.

mod error;
mod input;
mod limits;
mod query;
mod subscription;
mod types;

use std::sync::Arc;

use async_graphql::{
    Context, Data, EmptyMutation, Executor, Request, Response, SDLExportOptions, Schema,
};
use futures::StreamExt;
use futures::stream::BoxStream;

pub use error::GraphqlError;
pub use limits::{MAX_NESTING, OperationLimits, check_nesting};
pub use query::{QueryLimits, QueryRoot};
pub use subscription::{ConnectionSubscriptions, LastEventId, SubscriptionRoot};
pub use types::RegistrationStatus;

use crate::access::AccessPolicy;
use crate::registrations::Registrations;
use crate::upstream::Credential;

/// The gateway's executable schema: async-graphql's, with the operation limits
/// checked before anything runs, on every transport (HTTP, both websocket protocols).
#[derive(Clone)]
pub struct GatewaySchema {
    schema: Schema<QueryRoot, EmptyMutation, SubscriptionRoot>,
    limits: OperationLimits,
}

impl GatewaySchema {
    /// Runs a query or mutation.
    pub async fn execute(&self, mut request: Request) -> Response {
        match self.limits.admit(&mut request) {
            Ok(()) => self.schema.execute(request).await,
            Err(refusal) => Response::from_errors(vec![refusal]),
        }
    }

    /// Runs any operation as a stream of responses (subscriptions over websockets).
    pub fn execute_stream(&self, request: Request) -> BoxStream<'static, Response> {
        self.stream(request, None)
    }

    fn stream(
        &self,
        mut request: Request,
        session: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        match self.limits.admit(&mut request) {
            Ok(()) => Executor::execute_stream(&self.schema, request, session),
            Err(refusal) => {
                futures::stream::once(async { Response::from_errors(vec![refusal]) }).boxed()
            }
        }
    }
}

/// For async-graphql-axum's websocket (the legacy protocol).
impl Executor for GatewaySchema {
    async fn execute(&self, request: Request) -> Response {
        GatewaySchema::execute(self, request).await
    }

    fn execute_stream(
        &self,
        request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        self.stream(request, session_data)
    }
}

/// The schema with its services attached and `limits` enforced on every operation.
pub fn build_schema(
    registrations: Registrations,
    access: AccessPolicy,
    query_limits: QueryLimits,
    limits: OperationLimits,
) -> GatewaySchema {
    let builder = Schema::build(QueryRoot, EmptyMutation, SubscriptionRoot)
        .data(registrations)
        .data(access)
        .data(query_limits)
        .limit_recursive_depth(MAX_NESTING);
    let schema = match limits.introspection {
        true => builder.finish(),
        false => builder.disable_introspection().finish(),
    };
    GatewaySchema { schema, limits }
}

/// A service the schema was built with (see [`build_schema`]): the resolvers' one way to read schema data.
fn service<'a, T: Send + Sync + 'static>(ctx: &Context<'a>) -> Result<&'a T, GraphqlError> {
    ctx.data::<T>()
        .map_err(|error| GraphqlError::Internal(error.message))
}

/// The Cloudflare credential a request's upstream calls use: the caller's own when
/// the transport admitted one into the request data (from HTTP headers, or from a
/// websocket `connection_init` payload via [`AccessPolicy::admit_init_payload`]) and
/// the credential mode passes it through; else the gateway's own when the mode
/// allows; else `UNAUTHENTICATED`, before any upstream call.
pub fn caller_credential<'a>(ctx: &Context<'a>) -> Result<&'a Credential, GraphqlError> {
    let access = service::<AccessPolicy>(ctx)?;
    access
        .credential_for(ctx.data_opt::<Credential>())
        .map_err(GraphqlError::from)
}

/// Whether a response is a request error: nothing executed (parse, validation or
/// variable errors), so there is no data and no error has a path.
pub fn is_request_error(response: &async_graphql::Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|error| error.path.is_empty())
}

/// The schema's SDL, as kept in `schema/schema.graphql`: what introspection
/// reports, `@specifiedBy` included (tests/interop/introspection.mjs compares them).
pub fn sdl() -> String {
    Schema::build(QueryRoot, EmptyMutation, SubscriptionRoot)
        .finish()
        .sdl_with_options(SDLExportOptions::new().include_specified_by())
}
