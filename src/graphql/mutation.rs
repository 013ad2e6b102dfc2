//! The mutation root: `startRegistration` begins the first half of the flow the
//! rest of the schema follows. It is refused unless registration is enabled
//! (`--enable-registration`, or the embedded simulator), checks its input before
//! any upstream call, and maps the upstream's create refusals to stable codes.

use async_graphql::{Context, Enum, ErrorExtensions, ID, Object};

use super::caller_credential;
use super::contacts::RegistrationContactsInput;
use super::error::GraphqlError;
use super::input::{parse_account, parse_domain};
use super::service;
use super::share::spend_call;
use super::types::RegistrationStatus;
use crate::registrations::RegistrationService;
use crate::upstream::RegistrationRequest;

/// Whether `startRegistration` may run on this gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegistrationPolicy {
    /// True in the sandbox (embedded simulator) and with `--enable-registration`.
    pub enabled: bool,
}

/// WHOIS privacy for a new registration.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum PrivacyMode {
    /// Registrant data redacted (the upstream's default).
    Redaction,
    /// No redaction.
    Off,
}

impl PrivacyMode {
    fn wire(self) -> &'static str {
        match self {
            Self::Redaction => "redaction",
            Self::Off => "off",
        }
    }
}

/// The registration terms the upstream accepts.
const YEARS: std::ops::RangeInclusive<i32> = 1..=10;

/// Mutations: starting a registration.
pub struct MutationRoot;

#[Object(name = "Mutation")]
impl MutationRoot {
    /// Starts registering `domain` (registering costs money and is not refundable)
    /// and returns the workflow's status; follow it with `registrationStatusChanged`.
    /// The domain is the idempotency key: when a workflow already exists for it,
    /// that workflow is returned and nothing is submitted again. A workflow that
    /// ended `FAILED` is registered again only with `retryFailed: true`, to be set
    /// after the user has reviewed why it failed (Cloudflare: "do not auto-retry
    /// without user review"); otherwise the flag changes nothing.
    ///
    /// The registration request is sent once. When its answer is lost (a timeout,
    /// a broken connection, a 5xx, a 409), the gateway reads the domain's status
    /// instead of sending it again and answers with the workflow it finds; when it
    /// finds none, it answers `REGISTRATION_OUTCOME_UNKNOWN` and keeps watching the
    /// domain. Refused with `REGISTRATION_DISABLED` unless the gateway enables
    /// registration. Omitted terms take Cloudflare's defaults (the extension's
    /// minimum term, no auto-renew, `REDACTION`, the account's default contacts).
    // Each argument is one of the mutation's GraphQL arguments.
    #[allow(clippy::too_many_arguments)]
    async fn start_registration(
        &self,
        ctx: &Context<'_>,
        domain: String,
        account_id: Option<ID>,
        years: Option<i32>,
        auto_renew: Option<bool>,
        privacy_mode: Option<PrivacyMode>,
        contacts: Option<RegistrationContactsInput>,
        #[graphql(default = false)] retry_failed: bool,
    ) -> async_graphql::Result<RegistrationStatus> {
        let start = async {
            let policy = service::<RegistrationPolicy>(ctx)?;
            if !policy.enabled {
                return Err(GraphqlError::RegistrationDisabled);
            }
            let registrations = service::<RegistrationService>(ctx)?;
            let credential = caller_credential(ctx)?;
            let account = parse_account(registrations, account_id.as_deref().map(String::as_str))?;
            let domain = parse_domain(&domain)?;
            let years = years.map(parse_years).transpose()?;
            let contacts = contacts.map(RegistrationContactsInput::parse).transpose()?;
            spend_call(ctx, credential).await?;
            let request = RegistrationRequest {
                domain_name: domain.to_string(),
                years,
                auto_renew,
                privacy_mode: privacy_mode.map(|mode| mode.wire().to_owned()),
                contacts,
            };
            let started = registrations
                .start(credential, account, domain.clone(), request, retry_failed)
                .await
                .map_err(GraphqlError::Registration)?;
            let status = started.snapshot.status.clone().ok_or_else(|| {
                GraphqlError::Internal(
                    "the upstream accepted the registration without a status".into(),
                )
            })?;
            Ok(RegistrationStatus::new(
                domain,
                status,
                started.snapshot.fetched_at,
                started.next_check_at,
            ))
        };
        start.await.map_err(|error| error.extend())
    }
}

fn parse_years(years: i32) -> Result<u32, GraphqlError> {
    match YEARS.contains(&years) {
        true => Ok(years.unsigned_abs()),
        false => Err(GraphqlError::BadUserInput(format!(
            "years must be between {} and {}, got {years}",
            YEARS.start(),
            YEARS.end()
        ))),
    }
}
