//! `GET /metrics`: the Prometheus exposition, on the main listener or, with
//! `--metrics-listen`, on a listener of its own (whose router is [`router`]).

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::metrics::{CONTENT_TYPE, Metrics};

/// A router serving only `/metrics`, for a separate listener.
pub fn router(metrics: Metrics) -> Router {
    Router::new()
        .route("/metrics", get(exposition))
        .with_state(metrics)
}

/// The current values of every metric.
pub async fn exposition(State(metrics): State<Metrics>) -> Response {
    match metrics.render() {
        Some(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are disabled").into_response(),
    }
}
