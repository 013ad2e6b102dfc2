//! The query root: `registrationStatus` and `registrationStatuses`.

use async_graphql::{Context, ErrorExtensions, ID, MergedObject, Object};
use futures::future::join_all;

use super::error::GraphqlError;
use super::input::{parse_account, parse_domain};
use super::share::{Payer, lookup_charge};
use super::types::RegistrationStatus;
use super::{caller_credential, services};
use crate::access::AccessPolicy;
use crate::credential::Credential;
use crate::domain::{AccountId, DomainName};
use crate::registrations::RegistrationService;

/// Limits on what one query may ask for.
#[derive(Clone, Copy, Debug)]
pub struct QueryLimits {
    /// Most domains in one `registrationStatuses` call.
    pub max_domains: usize,
}

/// Queries for front ends and dashboards: the fields of every schema's `Query`.
/// async-graphql allows one Rust type per GraphQL name, so this has a name of its
/// own (never seen: the schemas merge it into their root) and each schema's root
/// is a merged object named `Query`: [`StandaloneQuery`], or the subgraph's.
pub struct QueryRoot;

// The standalone schema's query root: `QueryRoot`'s fields. (A comment, not a doc
// comment: async-graphql would publish a doc comment as the type's description.)
#[derive(MergedObject)]
#[graphql(name = "Query")]
pub(super) struct StandaloneQuery(pub QueryRoot);

#[Object(name = "QueryFields")]
impl QueryRoot {
    /// The status of a domain's registration workflow, or null when Cloudflare has
    /// none for it. `accountId` defaults to the gateway's configured account.
    async fn registration_status(
        &self,
        ctx: &Context<'_>,
        domain: String,
        account_id: Option<ID>,
    ) -> async_graphql::Result<Option<RegistrationStatus>> {
        let account_id = account_id.as_deref().map(String::as_str);
        lookup(ctx, &domain, account_id)
            .await
            .map_err(|error| error.extend())
    }

    /// Statuses of several domains at once, fetched concurrently, in the order asked.
    /// A failure for one domain is an error at that list index; the others still answer.
    async fn registration_statuses(
        &self,
        ctx: &Context<'_>,
        domains: Vec<String>,
        account_id: Option<ID>,
    ) -> async_graphql::Result<Vec<Option<async_graphql::Result<RegistrationStatus>>>> {
        let prepare = || {
            let asker = Asker::of(ctx)?;
            let limits = &services(ctx)?.query_limits;
            let account_id = account_id.as_deref().map(String::as_str);
            let targets = parse_targets(asker.registrations, limits, &domains, account_id)?;
            Ok::<_, GraphqlError>((asker, targets))
        };
        let (asker, targets) = prepare().map_err(|error| error.extend())?;
        let asker = &asker;
        let lookups = targets.into_iter().map(|(account, domain)| async move {
            // `Option<Result<_>>` is a nullable item whose error is reported at its index.
            let result = asker.read(account, domain).await;
            result.map_err(|error| error.extend()).transpose()
        });
        Ok(join_all(lookups).await)
    }
}

/// One domain's status for the caller: its credential, the account (the default
/// when none is named), the domain parsed before any upstream call, then the cache.
/// The federation entities resolve through this too.
pub(super) async fn lookup(
    ctx: &Context<'_>,
    domain: &str,
    account_id: Option<&str>,
) -> Result<Option<RegistrationStatus>, GraphqlError> {
    let asker = Asker::of(ctx)?;
    let (account, domain) = asker.target(domain, account_id)?;
    asker.read(account, domain).await
}

/// Who asks for a status, and through what: the one path of every
/// `registrationStatus` lookup, whether a resolver asks ([`Asker::of`] its
/// context) or the compiled query path does ([`Asker::new`], from the request data
/// the transport filled the same way).
pub(super) struct Asker<'a> {
    registrations: &'a RegistrationService,
    /// The credential the upstream calls use (see [`caller_credential`]).
    credential: &'a Credential,
    payer: Option<Payer<'a>>,
}

impl<'a> Asker<'a> {
    /// The asker of a resolver.
    fn of(ctx: &Context<'a>) -> Result<Self, GraphqlError> {
        Ok(Self {
            registrations: &services(ctx)?.registrations,
            credential: caller_credential(ctx)?,
            payer: Payer::of(ctx)?,
        })
    }

    /// The asker of a request carrying `own_credential` (the caller's, when the
    /// transport admitted one) and `payer`: the credential chosen by the access
    /// policy exactly as [`caller_credential`] chooses it.
    pub(super) fn new(
        registrations: &'a RegistrationService,
        access: &'a AccessPolicy,
        own_credential: Option<&'a Credential>,
        payer: Option<Payer<'a>>,
    ) -> Result<Self, GraphqlError> {
        Ok(Self {
            registrations,
            credential: access.credential_for(own_credential)?,
            payer,
        })
    }

    /// The account (the default when none is named) and the domain, parsed before
    /// anything is spent or sent: an error here has had no effect.
    pub(super) fn target(
        &self,
        domain: &str,
        account_id: Option<&str>,
    ) -> Result<(AccountId, DomainName), GraphqlError> {
        let account = parse_account(self.registrations, account_id)?;
        let domain = parse_domain(domain)?;
        Ok((account, domain))
    }

    /// One lookup: from the cache, or fetched once for every caller; the client's
    /// fair share pays only if this lookup is the one that calls the upstream.
    pub(super) async fn read(
        &self,
        account: AccountId,
        domain: DomainName,
    ) -> Result<Option<RegistrationStatus>, GraphqlError> {
        let charge = lookup_charge(self.payer, self.credential).await?;
        let reading = self
            .registrations
            .status(self.credential, account, domain.clone(), charge)
            .await?;
        Ok(RegistrationStatus::from_served(
            domain,
            &reading.served,
            reading.next_check_at,
        ))
    }
}

/// Validates a whole `registrationStatuses` request before any upstream call.
fn parse_targets(
    registrations: &RegistrationService,
    limits: &QueryLimits,
    domains: &[String],
    account_id: Option<&str>,
) -> Result<Vec<(AccountId, DomainName)>, GraphqlError> {
    if domains.len() > limits.max_domains {
        return Err(GraphqlError::BadUserInput(format!(
            "at most {} domains per registrationStatuses call, got {}",
            limits.max_domains,
            domains.len()
        )));
    }
    let account = parse_account(registrations, account_id)?;
    domains
        .iter()
        .map(|domain| Ok((account.clone(), parse_domain(domain)?)))
        .collect()
}
