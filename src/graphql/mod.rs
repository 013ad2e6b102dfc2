//! The GraphQL schema: types, the query root and the error enum, kept apart from
//! any transport. [`build_schema`] wires it to the gateway's services.

mod error;
mod input;
mod query;
mod subscription;
mod types;

use async_graphql::{EmptyMutation, Schema};

pub use error::GraphqlError;
pub use query::{QueryLimits, QueryRoot};
pub use subscription::{ConnectionSubscriptions, SubscriptionRoot};
pub use types::RegistrationStatus;

use crate::registrations::Registrations;

/// The gateway's executable schema.
pub type GatewaySchema = Schema<QueryRoot, EmptyMutation, SubscriptionRoot>;

/// Limits on operation shape, applied to every request.
const MAX_DEPTH: usize = 12;

/// The schema with its services attached.
pub fn build_schema(registrations: Registrations, limits: QueryLimits) -> GatewaySchema {
    Schema::build(QueryRoot, EmptyMutation, SubscriptionRoot)
        .data(registrations)
        .data(limits)
        .limit_depth(MAX_DEPTH)
        .finish()
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
