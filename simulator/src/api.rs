//! The simulated `/client/v4` registrar routes. Checks run in the order the
//! platform plausibly uses: route and account id, auth, rate limit, domain
//! validation, lookup.

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};

use super::SimulatorState;
use super::admission::{Admitted, admit, capacity, route_error};
use super::create;
use super::edge::API_PREFIX;
use super::list;
use super::reply::{self, ApiError};
use super::tokens;
use super::workflow::Workflow;
use crate::names::{AccountId, DomainName, InvalidName};

/// The API routes, under both API families (`registrar` and Cloudflare's own
/// `registrar-sandbox`, which has identical shapes), and the token check
/// (`tokens`); unknown paths get the platform's 7003 routing error.
pub(super) fn router() -> Router<Arc<SimulatorState>> {
    ["registrar", "registrar-sandbox"]
        .into_iter()
        .fold(Router::new(), |router, family| {
            router.merge(family_routes(family))
        })
        .route(tokens::VERIFY_PATH, get(tokens::verify))
        .fallback(unrouted)
}

fn family_routes(family: &str) -> Router<Arc<SimulatorState>> {
    let registrations = format!("/client/v4/accounts/{{account_id}}/{family}/registrations");
    let registrations = registrations.as_str();
    Router::new()
        .route(registrations, post(create::create).get(list::list))
        .route(
            &format!("{registrations}/{{domain_name}}"),
            get(registration),
        )
        .route(
            &format!("{registrations}/{{domain_name}}/registration-status"),
            get(registration_status),
        )
}

/// Parses the domain early (to count the request against it); errors are reported after auth.
fn parse_and_count(
    shared: &SimulatorState,
    account: &str,
    domain: &str,
) -> Result<DomainName, InvalidName> {
    let domain = DomainName::parse(domain);
    if let (Ok(account), Ok(domain)) = (AccountId::parse(account), &domain) {
        shared.counters.registration(&account, domain);
    }
    domain
}

type RegistrationPath = Result<Path<(String, String)>, PathRejection>;

/// A registration route's common steps: routing, counting, auth and the rate limit.
/// The domain is checked only after them, as the platform does.
fn admit_registration(
    shared: &SimulatorState,
    uri: &Uri,
    path: RegistrationPath,
    headers: &HeaderMap,
) -> Result<(Admitted, Result<DomainName, InvalidName>), ApiError> {
    let Ok(Path((account, domain))) = path else {
        return Err(route_error(uri));
    };
    let domain = parse_and_count(shared, &account, &domain);
    let admitted = admit(shared, uri, &account, headers)?;
    Ok((admitted, domain))
}

/// `GET …/registrations/{domain_name}/registration-status`: the hot path.
async fn registration_status(
    State(shared): State<Arc<SimulatorState>>,
    uri: Uri,
    path: RegistrationPath,
    headers: HeaderMap,
) -> Response {
    read_registration(
        &shared,
        &uri,
        path,
        &headers,
        |workflow, account, domain, now| workflow.status(account, domain, now),
        |admitted, domain, status| match status {
            Some(mut status) => {
                if let Some(tag) = &admitted.credential_tag {
                    status
                        .context
                        .insert("credential_tag".into(), tag.as_str().into());
                }
                reply::success(StatusCode::OK, status)
            }
            None => ApiError::WorkflowNotFound(domain).into_response(),
        },
    )
}

/// `GET …/registrations/{domain_name}`: the Registration, once the workflow succeeded.
async fn registration(
    State(shared): State<Arc<SimulatorState>>,
    uri: Uri,
    path: RegistrationPath,
    headers: HeaderMap,
) -> Response {
    read_registration(
        &shared,
        &uri,
        path,
        &headers,
        |workflow, _, domain, now| workflow.registration(domain, now),
        |_, _, registration| match registration.flatten() {
            Some(registration) => reply::success(StatusCode::OK, registration),
            None => ApiError::DomainNotFound.into_response(),
        },
    )
}

/// The skeleton of both registration reads: admission (routing, counting, auth,
/// the rate limit), then the domain check, one `read` of the workflow (`None`
/// when there is none) turned into an `answer`, and the quota headers on
/// whatever the answer is.
fn read_registration<T>(
    shared: &SimulatorState,
    uri: &Uri,
    path: RegistrationPath,
    headers: &HeaderMap,
    read: impl FnOnce(&Workflow, &AccountId, &DomainName, DateTime<Utc>) -> T,
    answer: impl FnOnce(&Admitted, DomainName, Option<T>) -> Response,
) -> Response {
    let (admitted, domain) = match admit_registration(shared, uri, path, headers) {
        Ok(admitted) => admitted,
        Err(refusal) => return refusal.into_response(),
    };
    let response = match domain {
        Err(_) => ApiError::InvalidDomain.into_response(),
        Ok(domain) => {
            let now = shared.clock.now();
            let account = &admitted.account;
            let found = shared.store.read(account, &domain, now, |workflow| {
                read(workflow, account, &domain, now)
            });
            match found {
                Ok(found) => answer(&admitted, domain, found),
                Err(err) => capacity(err).into_response(),
            }
        }
    };
    reply::with_quota(response, admitted.quota)
}

/// Anything else: 7003 under `/client/v4`, a plain 404 elsewhere.
async fn unrouted(uri: Uri) -> Response {
    if uri.path().starts_with(API_PREFIX) {
        route_error(&uri).into_response()
    } else {
        (StatusCode::NOT_FOUND, "not found\n").into_response()
    }
}
