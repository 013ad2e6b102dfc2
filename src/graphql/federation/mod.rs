//! The Apollo Federation v2 subgraph (`--federation`): the same query and
//! subscription roots, plus the entities a supergraph joins on.
//!
//! - `Domain @key(fields: "name")`: any subgraph that returns a `Domain { name }`
//!   gets its `registrationStatus` resolved here. Resolving the entity itself does
//!   nothing but hold the name, so a bad name or an upstream failure is an error on
//!   that one item's `registrationStatus` (path `_entities.N.registrationStatus`),
//!   never on the whole batch.
//! - `RegistrationStatus @key(fields: "domainName")`, for subgraphs that hold a
//!   reference to a status itself.
//!
//! Both resolve through [`super::query::lookup`], the path of a direct
//! `registrationStatus` query: the caller's credential, the account (the
//! gateway's default unless `accountId` names another), the cache and the budget.
//! A batch counts one lookup per representation (times the `registrationStatus`
//! fields it selects) toward `--max-lookups` (see [`super::limits`]), checked
//! before anything runs.
//!
//! async-graphql 7.2.1 resolves every representation with the `_entities` field's
//! own path (no list index), drops a field that failed instead of nulling it, and
//! fails the whole batch when one entity fails. A federated gateway places errors
//! by their `_entities.N` path, so failures here are reported by hand: the item
//! (or its field) is null, and the error's path names the item's position, found
//! in [`EntityPositions`].

mod positions;

use async_graphql::{Context, ErrorExtensions, ID, MergedObject, Object, PathSegment};

pub(super) use positions::EntityPositions;

use super::error::GraphqlError;
use super::query::{QueryRoot, lookup};
use super::types::RegistrationStatus;

// The subgraph's query root: the standalone one's fields, plus the entity resolvers
// (which async-graphql serves as `_entities`; they add no field of their own). A
// comment, not a doc comment, so `Query` has no description, as when standalone.
#[derive(MergedObject)]
#[graphql(name = "Query")]
pub(super) struct SubgraphQuery(pub(super) QueryRoot, pub(super) EntityRoot);

/// The entity resolvers.
pub(super) struct EntityRoot;

#[Object]
impl EntityRoot {
    /// A `Domain` another subgraph returned, by its name.
    #[graphql(entity)]
    async fn find_domain_by_name(&self, ctx: &Context<'_>, name: String) -> Domain {
        let position = EntityPositions::take(ctx, DOMAIN, &name);
        Domain { name, position }
    }

    /// A registration status by its domain name, in the gateway's default account;
    /// null when Cloudflare has no workflow for it, or when it failed (with an error
    /// at its position).
    #[graphql(entity)]
    async fn find_registration_status_by_domain_name(
        &self,
        ctx: &Context<'_>,
        domain_name: String,
    ) -> Option<RegistrationStatus> {
        let position = EntityPositions::take(ctx, REGISTRATION_STATUS, &domain_name);
        match lookup(ctx, &domain_name, None).await {
            Ok(status) => status,
            Err(error) => report(ctx, position, &error),
        }
    }
}

/// A domain, as the supergraph's other subgraphs know it; this subgraph adds its
/// registration workflow's status.
pub(super) struct Domain {
    /// The name exactly as the representation carried it (keys must round-trip).
    name: String,
    /// Its position among the `_entities` representations.
    position: Option<usize>,
}

#[Object]
impl Domain {
    /// The domain name (the entity's key).
    async fn name(&self) -> &str {
        &self.name
    }

    /// The status of this domain's registration workflow, or null when Cloudflare
    /// has none. `accountId` defaults to the gateway's configured account (callers
    /// that bring their own credential and account name theirs here).
    async fn registration_status(
        &self,
        ctx: &Context<'_>,
        account_id: Option<ID>,
    ) -> Option<RegistrationStatus> {
        let account_id = account_id.as_deref().map(String::as_str);
        match lookup(ctx, &self.name, account_id).await {
            Ok(status) => status,
            Err(error) => report(ctx, self.position, &error),
        }
    }
}

/// The entity types and their key fields.
const DOMAIN: &str = "Domain";
const REGISTRATION_STATUS: &str = "RegistrationStatus";
const ENTITY_KEYS: [(&str, &str); 2] = [(DOMAIN, "name"), (REGISTRATION_STATUS, "domainName")];

/// Reports `error` at the current field's path with the entity's `position` put
/// after `_entities` (where async-graphql leaves it out); answers null.
fn report(
    ctx: &Context<'_>,
    position: Option<usize>,
    error: &GraphqlError,
) -> Option<RegistrationStatus> {
    let error = error.extend().into_server_error(ctx.item.pos);
    let mut error = ctx.set_error_path(error);
    if let Some(position) = position {
        let after_entities = error.path.len().min(1);
        error
            .path
            .insert(after_entities, PathSegment::Index(position));
    }
    ctx.add_error(error);
    None
}
