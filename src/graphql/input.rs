//! Turning GraphQL arguments into domain values, before any upstream call.

use super::error::GraphqlError;
use crate::domain::{AccountId, DomainName};
use crate::registrations::RegistrationService;

pub(super) fn parse_domain(input: &str) -> Result<DomainName, GraphqlError> {
    DomainName::parse(input).map_err(|error| GraphqlError::BadUserInput(error.to_string()))
}

pub(super) fn parse_account(
    registrations: &RegistrationService,
    requested: Option<&str>,
) -> Result<AccountId, GraphqlError> {
    match requested {
        Some(id) => AccountId::parse(id).map_err(|error| GraphqlError::BadUserInput(error.to_string())),
        None => registrations.default_account().cloned().ok_or_else(|| {
            GraphqlError::BadUserInput(
                "accountId is required: this gateway has no default account (CLOUDFLARE_ACCOUNT_ID)".to_owned(),
            )
        }),
    }
}
