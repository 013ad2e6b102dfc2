//! The throughput floor: a bare async-graphql + axum server whose
//! `registrationStatus(domain)` answers a constant object of the gateway's shape
//! (same type and field names as `schema/schema.graphql`), with no layers, cache
//! or upstream. What the gateway serves from cache is measured against it.

use std::net::SocketAddr;

use async_graphql::{
    EmptyMutation, EmptySubscription, Enum, ID, Json, Object, Schema, SimpleObject,
};
use async_graphql_axum::GraphQL;
use axum::Router;
use axum::routing::{get, post_service};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;

use crate::error::BenchError;

/// The gateway's `WorkflowState` enum, cut to the one value the floor answers. The
/// gateway defines the states once (`upstream::WorkflowState`, with its GraphQL view);
/// loadgen does not depend on the gateway's library (it measures the gateway as a
/// client would, and keeps the gateway's dependency tree free of its own), so the
/// floor declares the GraphQL type itself: same name and spelling, hence the same
/// response bytes, and nothing more.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
enum WorkflowState {
    InProgress,
}

#[derive(SimpleObject)]
struct WorkflowLinks {
    #[graphql(name = "self")]
    self_: String,
    resource: Option<String>,
}

#[derive(SimpleObject)]
struct WorkflowError {
    code: String,
    message: String,
}

#[derive(SimpleObject)]
struct ActionRequired {
    action: Option<String>,
    confirmation_sent_to: Option<String>,
}

/// Mirrors the gateway's `RegistrationStatus` (without `registration`, which the
/// benchmark query does not select and an in-progress workflow does not have).
#[derive(SimpleObject)]
struct RegistrationStatus {
    domain_name: String,
    state: WorkflowState,
    raw_state: String,
    completed: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    links: WorkflowLinks,
    context: Option<Json<serde_json::Value>>,
    error: Option<WorkflowError>,
    action_required: Option<ActionRequired>,
    fetched_at: DateTime<Utc>,
    age_seconds: f64,
}

struct QueryRoot;

#[Object]
impl QueryRoot {
    async fn registration_status(
        &self,
        domain: String,
        account_id: Option<ID>,
    ) -> Option<RegistrationStatus> {
        let _ = account_id;
        Some(constant_status(domain))
    }
}

fn constant_status(domain: String) -> RegistrationStatus {
    let at = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default();
    let base = "/accounts/023e105f4ecef8ad9ca31a8372d0c353/registrar/registrations";
    RegistrationStatus {
        links: WorkflowLinks {
            self_: format!("{base}/{domain}/registration-status"),
            resource: Some(format!("{base}/{domain}")),
        },
        context: Some(Json(json!({ "domain_name": domain }))),
        domain_name: domain,
        state: WorkflowState::InProgress,
        raw_state: "in_progress".to_owned(),
        completed: false,
        created_at: at,
        updated_at: at,
        error: None,
        action_required: None,
        fetched_at: at,
        age_seconds: 0.5,
    }
}

/// Serves the floor schema on `listen` (`POST /graphql`, `GET /healthz`) until killed.
pub(crate) async fn serve(listen: SocketAddr) -> Result<(), BenchError> {
    let schema = Schema::build(QueryRoot, EmptyMutation, EmptySubscription).finish();
    let app = Router::new()
        .route("/graphql", post_service(GraphQL::new(schema)))
        .route("/healthz", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(listen).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
