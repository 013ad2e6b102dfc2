//! Fair shares where lookups happen: before a resolver can cause an upstream call,
//! the client (placed in the request data by the transport) spends from its share
//! (see [`crate::fair_share`]); a refusal is the resolver's error, and nothing is
//! sent. Requests without a client (none the transports send) are not counted.

use async_graphql::Context;

use super::error::GraphqlError;
use super::fanout::SharesHeldPerSubscriber;
use super::service;
use crate::credential::Credential;
use crate::domain::{AccountId, DomainName};
use crate::fair_share::{ClientId, FairShare, SubscriptionHold};
use crate::registrations::RegistrationService;

/// What a lookup of `domain` costs the client: nothing when its status is fresh in
/// the cache; else one lookup of its share. A caller's own Cloudflare credential
/// must first be one it used lately, or fit its share of new credentials.
pub(super) async fn spend_lookup(
    ctx: &Context<'_>,
    registrations: &RegistrationService,
    credential: &Credential,
    account: &AccountId,
    domain: &DomainName,
) -> Result<(), GraphqlError> {
    let Some((shares, client)) = client(ctx)? else {
        return Ok(());
    };
    admit_credential(ctx, shares, client, credential).await?;
    if registrations.is_fresh(credential, account, domain).await {
        return Ok(());
    }
    Ok(shares.take_lookup(client).await?)
}

/// What a call that always reaches the upstream (`startRegistration`) costs: one lookup.
pub(super) async fn spend_call(
    ctx: &Context<'_>,
    credential: &Credential,
) -> Result<(), GraphqlError> {
    let Some((shares, client)) = client(ctx)? else {
        return Ok(());
    };
    admit_credential(ctx, shares, client, credential).await?;
    Ok(shares.take_lookup(client).await?)
}

/// One of the client's open subscriptions, held while the subscription lives
/// (none for a shared execution: its subscribers hold theirs).
pub(super) fn hold_subscription(
    ctx: &Context<'_>,
) -> Result<Option<SubscriptionHold>, GraphqlError> {
    if ctx.data_opt::<SharesHeldPerSubscriber>().is_some() {
        return Ok(None);
    }
    let Some((shares, client)) = client(ctx)? else {
        return Ok(None);
    };
    Ok(Some(shares.hold_subscription(client)?))
}

/// Only a credential the caller brought (not the gateway's own) counts as new.
async fn admit_credential(
    ctx: &Context<'_>,
    shares: &FairShare,
    client: ClientId,
    credential: &Credential,
) -> Result<(), GraphqlError> {
    match ctx.data_opt::<Credential>() {
        Some(_) => Ok(shares
            .admit_credential(client, credential.fingerprint())
            .await?),
        None => Ok(()),
    }
}

fn client<'a>(ctx: &Context<'a>) -> Result<Option<(&'a FairShare, ClientId)>, GraphqlError> {
    match ctx.data_opt::<ClientId>() {
        Some(client) => Ok(Some((service::<FairShare>(ctx)?, *client))),
        None => Ok(None),
    }
}
