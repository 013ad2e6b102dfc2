//! Compiled queries: what graphql-jit does for graphql-js, for the one query
//! clients repeat most (`registrationStatus`, polled by dashboards).
//!
//! async-graphql validates, executes and serialises every request through its
//! generic machinery (validation cannot be skipped but by an extension, and any
//! extension costs every field its fast path), which put a cached query below a
//! bare async-graphql server. So once a document has run through async-graphql
//! and passed validation ([`super::AdmittedDocument::validated`]), and it is in the small
//! subset [`plan`] describes, its [`Plan`] is kept beside the parsed document:
//! per object type, the ordered (response key, field) pairs. A request for that
//! document then runs the same lookup the resolver runs ([`Asker`]: access
//! policy, credential, input checks, fair share, cache) and [`write`]s the JSON
//! straight from the status.
//!
//! Anything the plan does not cover goes to async-graphql unchanged: another
//! operation name, variables not as declared, or an argument the lookup refuses
//! (the input checks run before anything is spent or sent, so running the
//! request again there has no double effect). Only a failed lookup, after the
//! fair share was spent and the upstream asked, is answered here: with the
//! error async-graphql reports for it (same message, location, path, code).
//! tests/api/compiled_queries.rs checks byte equality with async-graphql over
//! generated documents and simulator states. The fields the plan covers are one
//! table per output type ([`compiled_fields`], from `plan.rs`); the same test file
//! walks the schema and fails for a field that table neither compiles nor declines.

mod plan;
mod write;

use async_graphql::{Data, ErrorExtensions, PathSegment, Request, Response, ServerError, Value};

use self::plan::Argument;
pub use self::plan::compiled_fields;
pub(crate) use self::plan::{Plan, compile};
use self::write::Body;
use super::GatewaySchema;
use super::data_of;
use super::error::GraphqlError;
use super::query::Asker;
use super::share::Payer;
use super::validation::cap_errors;
use crate::credential::Credential;
use crate::fair_share::ClientId;

/// What a compiled query answered.
pub enum Compiled {
    /// The response body (`{"data":...}`, no errors), or why it could not be encoded.
    Body(serde_json::Result<Vec<u8>>),
    /// The lookup failed: the response async-graphql gives for that error.
    Failed(Response),
}

impl Plan {
    /// Answers `request` (whose document this plan is) through `schema`'s
    /// services; `None` when async-graphql must run it.
    pub(super) async fn answer(
        &self,
        schema: &GatewaySchema,
        request: &Request,
        session: Option<&Data>,
    ) -> Option<Compiled> {
        let named = request.operation_name.as_deref();
        if named.is_some() && named != self.operation_name.as_deref() {
            return None;
        }
        let declared = |sent: &async_graphql::Name| {
            [Some(&self.domain), self.account.as_ref()]
                .into_iter()
                .flatten()
                .any(|argument| matches!(argument, Argument::Variable { name, .. } if name == sent))
        };
        if !request.variables.keys().all(declared) {
            return None;
        }
        let domain = argument(&self.domain, request)??;
        let account = match &self.account {
            Some(account) => argument(account, request)?,
            None => None,
        };
        // The caller's own credential and client: in the request, or in its
        // connection's data (the legacy websocket protocol's).
        let own_credential = data_of::<Credential>(&request.data)
            .or_else(|| session.and_then(data_of::<Credential>));
        let payer = data_of::<ClientId>(&request.data)
            .or_else(|| session.and_then(data_of::<ClientId>))
            .map(|client| {
                Payer::new(
                    &schema.parts.services.shares,
                    *client,
                    own_credential.is_some(),
                )
            });
        let asker = Asker::new(
            &schema.parts.services.registrations,
            &schema.parts.services.access,
            own_credential,
            payer,
        )
        .ok()?;
        let (account, domain) = asker.target(domain, account).ok()?;
        Some(match asker.read(account, domain).await {
            Ok(status) => Compiled::Body(serde_json::to_vec(&Body {
                key: self.key.as_str(),
                fields: &self.fields,
                status: status.as_ref(),
            })),
            Err(error) => Compiled::Failed(self.failure(error)),
        })
    }

    /// The response async-graphql gives when the root field's resolver fails with
    /// `error`: `data` null (the error leaves the root selection set, as a
    /// resolver error does in async-graphql 7.2 whatever the field's
    /// nullability), the error located at the field and pathed by its response key.
    fn failure(&self, error: GraphqlError) -> Response {
        let error = error.extend().into_server_error(self.pos);
        let error = ServerError {
            path: vec![PathSegment::Field(self.key.to_string())],
            ..error
        };
        cap_errors(Response::from_errors(vec![error]))
    }
}

/// An argument's value in `request`: `Some(None)` for a nullable variable left
/// out or null; `None` when the value is not a string (async-graphql decides).
fn argument<'a>(argument: &'a Argument, request: &'a Request) -> Option<Option<&'a str>> {
    match argument {
        Argument::Literal(text) => Some(Some(text)),
        Argument::Variable { name, required } => match request.variables.get(name) {
            Some(Value::String(text)) => Some(Some(text)),
            None | Some(Value::Null) if !required => Some(None),
            _ => None,
        },
    }
}
