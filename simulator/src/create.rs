//! `POST …/registrations`: body validation with the platform's messages, the
//! domain as natural idempotency key, and the sync window: 201 when the workflow
//! completes within it (waiting on the workflow clock), else 202 with `Location`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value};

use super::SimulatorState;
use super::admission::{admit, capacity};
use super::edge;
use super::faults::CreateFault;
use super::reply::{self, ApiError};
use super::store::StoreError;
use super::workflow::RegistrationOrder;
use crate::names::{AccountId, DomainName};

use crate::wire::{ApiMessage, WorkflowStatus};

/// The create handler.
pub(super) async fn create(
    State(shared): State<Arc<SimulatorState>>,
    uri: Uri,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let admitted = match admit(&shared, &uri, &account, &headers) {
        Ok(admitted) => admitted,
        Err(error) => return error.into_response(),
    };
    shared.counters.create();
    let answer = match validate(&body) {
        Err(errors) => ApiError::Validation(errors).into_response(),
        Ok((domain, order)) => {
            shared.counters.registration(&admitted.account, &domain);
            if let Err(refusal) = check_registrable(&admitted.account, &domain, &body) {
                let answer = ApiError::Validation(vec![refusal]).into_response();
                return reply::with_quota(answer, admitted.quota);
            }
            let answer = respond(
                &shared,
                &admitted.account,
                &domain,
                order,
                prefers_async(&headers),
            )
            .await;
            after_acting(&shared, &domain, answer).await
        }
    };
    reply::with_quota(answer, admitted.quota)
}

/// The create faults: the workflow exists by now; its answer is delayed, or
/// replaced by a 502 or a 409, as an upstream whose answer goes astray would.
async fn after_acting(shared: &SimulatorState, domain: &DomainName, answer: Response) -> Response {
    let (delay, fault) = shared.faults.next_create();
    if !delay.is_zero() {
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shared.shutdown.cancelled() => {}
        }
    }
    match fault {
        None => answer,
        Some(CreateFault::BadGateway) => edge::bad_gateway(),
        Some(CreateFault::Conflict) => ApiError::Conflict(domain.clone()).into_response(),
    }
}

async fn respond(
    shared: &SimulatorState,
    account: &AccountId,
    domain: &DomainName,
    order: RegistrationOrder,
    respond_async: bool,
) -> Response {
    let now = shared.clock.now();
    let created = match shared.store.create(account, domain, order, now) {
        Ok(created) => created,
        Err(StoreError::DomainLimit) => {
            let error = pointed(StoreError::DomainLimit.to_string(), "/domain_name");
            return ApiError::Validation(vec![error]).into_response();
        }
        Err(err) => return capacity(err).into_response(),
    };
    let mut status = created.status;
    if !respond_async && !status.completed {
        let deadline = now + TimeDelta::from_std(shared.sync_window).unwrap_or(TimeDelta::MAX);
        status = settle(shared, account, domain, deadline)
            .await
            .unwrap_or(status);
    }
    accepted_or_created(status, respond_async)
}

fn accepted_or_created(status: WorkflowStatus, respond_async: bool) -> Response {
    if status.completed && !respond_async {
        return reply::success(StatusCode::CREATED, status);
    }
    let location = HeaderValue::try_from(status.links.status.as_str()).ok();
    let mut response = reply::success(StatusCode::ACCEPTED, status);
    let headers = response.headers_mut();
    if let Some(location) = location {
        headers.insert(header::LOCATION, location);
    }
    if respond_async {
        headers.insert(
            "preference-applied",
            HeaderValue::from_static("respond-async"),
        );
    }
    response
}

/// Waits on the workflow clock until the workflow completes or `deadline` passes.
async fn settle(
    shared: &SimulatorState,
    account: &AccountId,
    domain: &DomainName,
    deadline: DateTime<Utc>,
) -> Option<WorkflowStatus> {
    let mut ticks = shared.clock.subscribe();
    let _waiting = shared.waiting_creates.enter();
    loop {
        ticks.borrow_and_update();
        let now = shared.clock.now();
        let read =
            |w: &super::workflow::Workflow| (w.status(account, domain, now), w.next_change(now));
        let (status, next_change) = shared
            .store
            .read(account, domain, now, read)
            .ok()
            .flatten()?;
        if status.completed || now >= deadline {
            return Some(status);
        }
        let wake_at = next_change.map_or(deadline, |change| change.min(deadline));
        let real_wait = (wake_at - now).to_std().unwrap_or_default();
        tokio::select! {
            _ = ticks.changed() => {}
            () = tokio::time::sleep(real_wait), if !shared.clock.is_manual() => {}
            () = shared.shutdown.cancelled() => return Some(status),
        }
    }
}

/// Extensions the simulator does not register, to show the upstream's refusal.
pub(super) const UNSUPPORTED_EXTENSION: &str = "unsupported";
/// Accounts whose id starts with this have no default address book entry, so a
/// create without `contacts.registrant` is refused.
pub(super) const NO_CONTACTS_ACCOUNT_PREFIX: &str = "00000000";

/// The upstream's business refusals that do not depend on one field's format,
/// with its messages (`docs/upstream-api.md` §6): an unsupported extension, and no
/// registrant contact (neither in the body nor in the account's address book).
fn check_registrable(
    account: &AccountId,
    domain: &DomainName,
    body: &[u8],
) -> Result<(), ApiMessage> {
    let extension = domain.as_str().rsplit('.').next().unwrap_or_default();
    if extension == UNSUPPORTED_EXTENSION {
        return Err(ApiMessage::new(
            10000,
            "Registration is not supported for this extension",
        ));
    }
    let has_registrant = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|body| body.pointer("/contacts/registrant").cloned())
        .is_some_and(|registrant| registrant.is_object());
    if account.as_str().starts_with(NO_CONTACTS_ACCOUNT_PREFIX) && !has_registrant {
        return Err(ApiMessage::new(
            10000,
            "No registrant contact provided and no default address book entry found for this account.",
        ));
    }
    Ok(())
}

/// Whether `Prefer` holds `respond-async`, possibly among other preferences.
fn prefers_async(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|preference| {
            let token = preference.split([';', '=']).next().unwrap_or_default();
            token.trim().eq_ignore_ascii_case("respond-async")
        })
}

/// Checks the create body, collecting every problem with its `source.pointer`.
fn validate(body: &[u8]) -> Result<(DomainName, RegistrationOrder), Vec<ApiMessage>> {
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return Err(vec![ApiMessage::new(
            10000,
            "Request body must be a JSON object",
        )]);
    };
    let mut errors = Vec::new();
    let mut order = RegistrationOrder {
        auto_renew: false,
        ..RegistrationOrder::default()
    };
    let domain = check_domain(&fields)
        .map_err(|error| errors.push(error))
        .ok();
    match fields.get("auto_renew") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(auto_renew)) => order.auto_renew = *auto_renew,
        Some(_) => errors.push(pointed("Must be a boolean", "/auto_renew")),
    }
    match fields.get("years").map(Value::as_u64) {
        None => {}
        Some(Some(years @ 1..=10)) => order.years = years as u32,
        Some(_) => errors.push(pointed("Must be an integer between 1 and 10", "/years")),
    }
    match fields.get("privacy_mode").map(Value::as_str) {
        None => {}
        Some(Some(mode @ ("off" | "redaction"))) => order.privacy_mode = mode.to_owned(),
        Some(_) => errors.push(pointed("Must be one of: off, redaction", "/privacy_mode")),
    }
    match domain {
        Some(domain) if errors.is_empty() => Ok((domain, order)),
        _ => Err(errors),
    }
}

fn check_domain(fields: &Map<String, Value>) -> Result<DomainName, ApiMessage> {
    match fields.get("domain_name") {
        None | Some(Value::Null) => Err(pointed("domain_name is required", "/domain_name")),
        Some(Value::String(raw)) => {
            DomainName::parse(raw).map_err(|_| pointed("Invalid domain name", "/domain_name"))
        }
        Some(_) => Err(pointed("Invalid domain name", "/domain_name")),
    }
}

fn pointed(message: impl Into<String>, pointer: &str) -> ApiMessage {
    ApiMessage::pointed(message, pointer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(body: &str) -> Vec<(String, Option<String>)> {
        let errors = validate(body.as_bytes()).unwrap_err();
        errors
            .into_iter()
            .map(|e| (e.message, e.source.map(|s| s.pointer)))
            .collect()
    }

    #[test]
    fn every_invalid_field_is_reported_with_its_pointer() {
        let found = messages(r#"{"auto_renew":"yes","years":11,"privacy_mode":"public"}"#);
        let expected = [
            ("domain_name is required", "/domain_name"),
            ("Must be a boolean", "/auto_renew"),
            ("Must be an integer between 1 and 10", "/years"),
            ("Must be one of: off, redaction", "/privacy_mode"),
        ];
        let expected: Vec<_> = expected
            .iter()
            .map(|(m, p)| (m.to_string(), Some(p.to_string())))
            .collect();
        assert_eq!(found, expected);
        assert_eq!(
            messages(r#"{"domain_name":"not a domain"}"#)[0].0,
            "Invalid domain name"
        );
        assert_eq!(messages("[1]")[0].0, "Request body must be a JSON object");
    }

    #[test]
    fn a_minimal_body_uses_the_documented_defaults() {
        let (domain, order) = validate(br#"{"domain_name":"My-New-Startup.com"}"#).unwrap();
        assert_eq!(domain.as_str(), "my-new-startup.com");
        assert_eq!(
            order,
            RegistrationOrder {
                years: 1,
                auto_renew: false,
                privacy_mode: "redaction".into()
            }
        );
    }

    #[test]
    fn respond_async_is_found_among_other_preferences() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "prefer",
            HeaderValue::from_static("handling=lenient, respond-async"),
        );
        assert!(prefers_async(&headers));
        headers.insert("prefer", HeaderValue::from_static("wait=10"));
        assert!(!prefers_async(&headers));
    }
}
