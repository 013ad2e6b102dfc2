//! `GET /metrics`: the Prometheus exposition, on the main listener or, with
//! `--metrics-listen`, on a listener of its own (whose router is [`router`]). On the
//! main listener with access keys on, a scrape must present a key like any caller:
//! the exposition names credentials' fingerprints and what is left of their budgets.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::error::error_body;
use super::media::JSON;
use crate::access::AccessPolicy;
use crate::metrics::{CONTENT_TYPE, Metrics};

/// A router serving only `/metrics`; for callers `access` admits with a key, when given.
pub fn router(metrics: Metrics, access: Option<AccessPolicy>) -> Router {
    let router = Router::new()
        .route("/metrics", get(exposition))
        .with_state(metrics);
    match access {
        Some(access) => router.layer(from_fn_with_state(access, keyed)),
        None => router,
    }
}

/// Lets through only a scrape presenting one of the access keys: 401 `ACCESS_DENIED`
/// otherwise.
async fn keyed(State(access): State<AccessPolicy>, request: Request, next: Next) -> Response {
    match access.admit_headers(request.headers()) {
        Ok(_) => next.run(request).await,
        Err(refused) => {
            let body = error_body(refused.code(), &refused.to_string());
            let json = [(header::CONTENT_TYPE, JSON)];
            (StatusCode::UNAUTHORIZED, json, body).into_response()
        }
    }
}

/// The current values of every metric.
pub async fn exposition(State(metrics): State<Metrics>) -> Response {
    match metrics.render() {
        Some(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are disabled").into_response(),
    }
}
