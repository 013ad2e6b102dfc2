//! The GraphQL schema: types, the query root, operation limits and the error enum,
//! kept apart from any transport. [`build_schema`] wires it to the gateway's services.

mod error;
mod input;
mod limits;
mod query;
mod subscription;
mod types;

use async_graphql::{Context, EmptyMutation, Schema};

pub use error::GraphqlError;
pub use limits::{MAX_NESTING, OperationLimits, check_nesting};
pub use query::{QueryLimits, QueryRoot};
pub use subscription::{ConnectionSubscriptions, SubscriptionRoot};
pub use types::RegistrationStatus;

use crate::access::AccessPolicy;
use crate::registrations::Registrations;
use crate::upstream::Credential;

/// The gateway's executable schema.
pub type GatewaySchema = Schema<QueryRoot, EmptyMutation, SubscriptionRoot>;

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
        .extension(limits)
        .limit_recursive_depth(MAX_NESTING);
    if limits.introspection {
        builder.finish()
    } else {
        builder.disable_introspection().finish()
    }
}

/// The Cloudflare credential a request's upstream calls use: the caller's own when
/// the transport admitted one into the request data (from HTTP headers, or from a
/// websocket `connection_init` payload via [`AccessPolicy::admit_init_payload`]) and
/// the credential mode passes it through; else the gateway's own when the mode
/// allows; else `UNAUTHENTICATED`, before any upstream call.
pub fn caller_credential<'a>(ctx: &Context<'a>) -> Result<&'a Credential, GraphqlError> {
    let access = input::service::<AccessPolicy>(ctx)?;
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

/// The schema's SDL, as kept in `schema/schema.graphql`.
pub fn sdl() -> String {
    Schema::build(QueryRoot, EmptyMutation, SubscriptionRoot)
        .finish()
        .sdl()
}
