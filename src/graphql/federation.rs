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
//! A batch counts one lookup per representation toward `--max-lookups`
//! (see [`super::limits`]), checked before anything runs.

use async_graphql::{Context, ErrorExtensions, ID, MergedObject, Object};

use super::query::{QueryRoot, lookup};
use super::types::RegistrationStatus;

// The subgraph's query root: the standalone one's fields, plus the entity resolvers
// (which async-graphql serves as `_entities`; they add no field of their own). A
// comment, not a doc comment, so `Query` has no description, as when standalone.
#[derive(MergedObject)]
#[graphql(name = "Query")]
pub struct SubgraphQuery(pub(super) QueryRoot, pub(super) EntityRoot);

/// The entity resolvers.
pub struct EntityRoot;

#[Object]
impl EntityRoot {
    /// A `Domain` another subgraph returned, by its name.
    #[graphql(entity)]
    async fn find_domain_by_name(&self, name: String) -> Domain {
        Domain { name }
    }

    /// A registration status by its domain name, in the gateway's default account;
    /// null when Cloudflare has no workflow for it.
    #[graphql(entity)]
    async fn find_registration_status_by_domain_name(
        &self,
        ctx: &Context<'_>,
        domain_name: String,
    ) -> async_graphql::Result<Option<RegistrationStatus>> {
        lookup(ctx, &domain_name, None)
            .await
            .map_err(|error| error.extend())
    }
}

/// A domain, as the supergraph's other subgraphs know it; this subgraph adds its
/// registration workflow's status.
pub struct Domain {
    /// The name exactly as the representation carried it (keys must round-trip).
    name: String,
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
    ) -> async_graphql::Result<Option<RegistrationStatus>> {
        let account_id = account_id.as_deref().map(String::as_str);
        lookup(ctx, &self.name, account_id)
            .await
            .map_err(|error| error.extend())
    }
}
