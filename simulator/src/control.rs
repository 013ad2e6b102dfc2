//! The test-control API under `/__sim/` (no auth): stats, faults, the workflow
//! clock, workflows, scenarios and refused credentials. Every route calls the
//! same [`SimulatorHandle`] method an in-process test would.

use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::SimulatorHandle;
use super::faults::Faults;
use super::store::StoreError;

/// The `/__sim` routes (nested by the caller).
pub(super) fn router() -> Router<SimulatorHandle> {
    Router::new()
        .route("/stats", get(stats))
        .route("/stats/reset", post(reset_stats))
        .route("/faults", get(faults).put(set_faults))
        .route("/clock", get(clock))
        .route("/clock/advance", post(advance_clock))
        .route("/scenarios", get(scenarios))
        .route("/workflows", post(add_workflow))
        .route(
            "/workflows/{account_id}/{domain_name}/resolve",
            post(resolve),
        )
        .route("/refused-credentials", put(set_refused).get(refused))
        .route("/forbidden-accounts", put(set_forbidden))
}

/// A control-API error: `{"error": "..."}` with a status.
struct ControlError(StatusCode, String);

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<JsonRejection> for ControlError {
    fn from(rejection: JsonRejection) -> Self {
        Self(StatusCode::BAD_REQUEST, rejection.body_text())
    }
}

impl From<StoreError> for ControlError {
    fn from(err: StoreError) -> Self {
        let status = match err {
            StoreError::Full { .. } => StatusCode::SERVICE_UNAVAILABLE,
            StoreError::NoWorkflow { .. } => StatusCode::NOT_FOUND,
            StoreError::NotAwaitingAction(_) => StatusCode::CONFLICT,
            StoreError::UnknownScenario(_)
            | StoreError::DomainLimit
            | StoreError::InvalidName(_) => StatusCode::BAD_REQUEST,
        };
        Self(status, err.to_string())
    }
}

fn bad_request(message: impl Into<String>) -> ControlError {
    ControlError(StatusCode::BAD_REQUEST, message.into())
}

async fn stats(State(sim): State<SimulatorHandle>) -> Response {
    Json(sim.stats()).into_response()
}

async fn reset_stats(State(sim): State<SimulatorHandle>) -> StatusCode {
    sim.reset_stats();
    StatusCode::NO_CONTENT
}

async fn faults(State(sim): State<SimulatorHandle>) -> Json<Faults> {
    Json(sim.faults())
}

async fn set_faults(
    State(sim): State<SimulatorHandle>,
    body: Result<Json<Faults>, JsonRejection>,
) -> Result<Json<Faults>, ControlError> {
    let Json(faults) = body?;
    sim.set_faults(faults)
        .map_err(|err| bad_request(err.to_string()))?;
    Ok(Json(sim.faults()))
}

async fn clock(State(sim): State<SimulatorHandle>) -> Response {
    Json(json!({ "now": sim.clock_now(), "manual": sim.shared.clock.is_manual() })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Advance {
    seconds: f64,
}

async fn advance_clock(
    State(sim): State<SimulatorHandle>,
    body: Result<Json<Advance>, JsonRejection>,
) -> Result<Response, ControlError> {
    let Json(Advance { seconds }) = body?;
    let by = Duration::try_from_secs_f64(seconds)
        .map_err(|_| bad_request("seconds must be a number from 0 to 315360000"))?;
    sim.advance_clock(by)
        .map_err(|err| bad_request(err.to_string()))?;
    Ok(Json(json!({ "now": sim.clock_now() })).into_response())
}

async fn scenarios(State(sim): State<SimulatorHandle>) -> Response {
    Json(sim.shared.store.scenarios().summaries()).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewWorkflow {
    account_id: String,
    domain_name: String,
    scenario: String,
}

async fn add_workflow(
    State(sim): State<SimulatorHandle>,
    body: Result<Json<NewWorkflow>, JsonRejection>,
) -> Result<Response, ControlError> {
    let Json(request) = body?;
    sim.add_workflow(&request.account_id, &request.domain_name, &request.scenario)?;
    let (account, domain) = super::parse_names(&request.account_id, &request.domain_name)
        .map_err(|err| bad_request(err.to_string()))?;
    let links = super::workflow::links(&account, &domain);
    Ok((StatusCode::CREATED, Json(json!({ "links": links }))).into_response())
}

async fn resolve(
    State(sim): State<SimulatorHandle>,
    Path((account, domain)): Path<(String, String)>,
) -> Result<StatusCode, ControlError> {
    sim.resolve_action(&account, &domain)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Refused {
    credentials: Vec<String>,
}

async fn set_refused(
    State(sim): State<SimulatorHandle>,
    body: Result<Json<Refused>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ControlError> {
    let Json(Refused { credentials }) = body?;
    sim.accept_all_credentials();
    credentials
        .into_iter()
        .for_each(|credential| sim.refuse_credential(credential));
    Ok(Json(json!({ "credentials": sim.refused_credentials() })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Forbidden {
    accounts: Vec<String>,
}

async fn set_forbidden(
    State(sim): State<SimulatorHandle>,
    body: Result<Json<Forbidden>, JsonRejection>,
) -> Result<Json<serde_json::Value>, ControlError> {
    let Json(Forbidden { accounts }) = body?;
    sim.set_forbidden_accounts(accounts.iter().map(String::as_str))
        .map_err(|err| bad_request(err.to_string()))?;
    Ok(Json(json!({ "accounts": accounts })))
}

async fn refused(State(sim): State<SimulatorHandle>) -> Json<serde_json::Value> {
    Json(json!({ "credentials": sim.refused_credentials() }))
}
