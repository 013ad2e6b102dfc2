//! Fair shares where lookups happen: before a resolver can cause an upstream call,
//! the client (placed in the request data by the transport) spends from its share
//! (see [`crate::fair_share`]); a refusal is the resolver's error, and nothing is
//! sent. Requests without a client (none the transports send) are not counted.

use async_graphql::Context;

use super::error::GraphqlError;
use super::services;
use crate::credential::Credential;
use crate::domain::{AccountId, DomainName};
use crate::fair_share::{ClientId, FairShare};
use crate::registrations::RegistrationService;

/// Who pays for a lookup: the client the transport placed in the request data,
/// its fair shares, and whether it brought its own Cloudflare credential (only
/// such a credential counts as new). Read from a resolver's context
/// ([`Payer::of`]) or, by the compiled query path, from the request data.
#[derive(Clone, Copy)]
pub(super) struct Payer<'a> {
    shares: &'a FairShare,
    client: ClientId,
    own_credential: bool,
}

impl<'a> Payer<'a> {
    /// `client` paying from `shares`; `own_credential` when it brought its own.
    pub(super) fn new(shares: &'a FairShare, client: ClientId, own_credential: bool) -> Self {
        Self {
            shares,
            client,
            own_credential,
        }
    }

    /// The payer of a resolver's lookups; `None` for a request without a client.
    pub(super) fn of(ctx: &Context<'a>) -> Result<Option<Self>, GraphqlError> {
        let own_credential = ctx.data_opt::<Credential>().is_some();
        Ok(client(ctx)?.map(|(shares, client)| Self::new(shares, client, own_credential)))
    }

    /// A caller's own credential must be one it used lately, or fit its share of new ones.
    async fn admit(&self, credential: &Credential) -> Result<(), GraphqlError> {
        match self.own_credential {
            true => Ok(self
                .shares
                .admit_credential(self.client, credential.fingerprint())
                .await?),
            false => Ok(()),
        }
    }
}

/// What a lookup of `domain` by `payer` costs (none: free): nothing when its
/// status is fresh in the cache; else one lookup of its share. A caller's own
/// Cloudflare credential must first be one it used lately, or fit its share of new
/// credentials.
pub(super) async fn pay_lookup(
    payer: Option<Payer<'_>>,
    registrations: &RegistrationService,
    credential: &Credential,
    account: &AccountId,
    domain: &DomainName,
) -> Result<(), GraphqlError> {
    let Some(payer) = payer else {
        return Ok(());
    };
    payer.admit(credential).await?;
    if registrations.is_fresh(credential, account, domain).await {
        return Ok(());
    }
    Ok(payer.shares.take_lookup(payer.client).await?)
}

/// What a watch costs the client: nothing from its lookup share, since the poller
/// asks the upstream in its turn of the credential's budget, never at the client's
/// say. A caller's own Cloudflare credential must still be one it used lately, or
/// fit its share of new credentials.
pub(super) async fn admit_watch(
    ctx: &Context<'_>,
    credential: &Credential,
) -> Result<(), GraphqlError> {
    match Payer::of(ctx)? {
        Some(payer) => payer.admit(credential).await,
        None => Ok(()),
    }
}

/// What a call that always reaches the upstream (`startRegistration`) costs: one lookup.
pub(super) async fn spend_call(
    ctx: &Context<'_>,
    credential: &Credential,
) -> Result<(), GraphqlError> {
    let Some(payer) = Payer::of(ctx)? else {
        return Ok(());
    };
    payer.admit(credential).await?;
    Ok(payer.shares.take_lookup(payer.client).await?)
}

fn client<'a>(ctx: &Context<'a>) -> Result<Option<(&'a FairShare, ClientId)>, GraphqlError> {
    match ctx.data_opt::<ClientId>() {
        Some(client) => Ok(Some((&services(ctx)?.shares, *client))),
        None => Ok(None),
    }
}
