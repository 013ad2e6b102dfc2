//! The edge in front of the API routes: counts every `/client/v4` request,
//! injects faults and latency, and adds the `Ratelimit` headers to answers.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::SimulatorState;
use super::faults::FaultAction;
use super::rate_limit::Quota;
use super::server::ConnectionReset;

/// Prefix of every API route.
pub(super) const API_PREFIX: &str = "/client/v4";

const DOWN_PAGE: &str = "<html><head><title>503 Service Temporarily Unavailable</title></head><body><center><h1>503 Service Temporarily Unavailable</h1></center><hr><center>cloudflare</center></body></html>\n";
const BAD_GATEWAY_PAGE: &str = "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>cloudflare</center></body></html>\n";
const TIMEOUT_PAGE: &str = "<html><head><title>524 A timeout occurred</title></head><body><center><h1>524 A timeout occurred</h1></center><hr><center>cloudflare</center></body></html>\n";
const TRUNCATED_JSON: &str =
    r#"{"success":true,"errors":[],"messages":[],"result":{"state":"in_progr"#;

/// Middleware over the API router.
pub(super) async fn edge(
    State(shared): State<Arc<SimulatorState>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if !(path == API_PREFIX || path.starts_with("/client/v4/")) {
        return next.run(request).await;
    }
    shared.counters.request();
    let (latency, fault) = shared.faults.next(shared.clock.now());
    if !latency.is_zero() {
        tokio::select! {
            () = tokio::time::sleep(latency) => {}
            () = shared.shutdown.cancelled() => {}
        }
    }
    let response = match fault {
        None => {
            let response = next.run(request).await;
            with_rate_limit_headers(&shared, response)
        }
        Some(fault) => {
            let connection = request.extensions().get::<Arc<ConnectionReset>>().cloned();
            drop(request);
            inject(&shared, fault, connection).await
        }
    };
    shared.counters.response(response.status().as_u16());
    response
}

async fn inject(
    shared: &SimulatorState,
    fault: FaultAction,
    connection: Option<Arc<ConnectionReset>>,
) -> Response {
    match fault {
        FaultAction::Down => html(StatusCode::SERVICE_UNAVAILABLE, DOWN_PAGE),
        FaultAction::ServerError => html(StatusCode::BAD_GATEWAY, BAD_GATEWAY_PAGE),
        FaultAction::Malformed => {
            let content_type = [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )];
            (StatusCode::OK, content_type, TRUNCATED_JSON).into_response()
        }
        FaultAction::Hang(duration) => {
            shared.counters.hang();
            tokio::select! {
                () = tokio::time::sleep(duration) => {}
                () = shared.shutdown.cancelled() => {}
            }
            html(
                StatusCode::from_u16(524).unwrap_or(StatusCode::GATEWAY_TIMEOUT),
                TIMEOUT_PAGE,
            )
        }
        FaultAction::Reset => match connection {
            Some(connection) => {
                shared.counters.reset_connection();
                connection.trigger();
                // The connection task drops this future along with the connection.
                std::future::pending().await
            }
            None => html(StatusCode::BAD_GATEWAY, BAD_GATEWAY_PAGE),
        },
    }
}

/// The edge's 502 page.
pub(super) fn bad_gateway() -> Response {
    html(StatusCode::BAD_GATEWAY, BAD_GATEWAY_PAGE)
}

fn html(status: StatusCode, page: &'static str) -> Response {
    let content_type = [(header::CONTENT_TYPE, HeaderValue::from_static("text/html"))];
    (status, content_type, Body::from(page)).into_response()
}

/// `Ratelimit` and `Ratelimit-Policy` on every API answer while limiting is on.
fn with_rate_limit_headers(shared: &SimulatorState, mut response: Response) -> Response {
    if !shared.limiter.enabled() {
        return response;
    }
    let quota = response
        .extensions()
        .get::<Quota>()
        .copied()
        .unwrap_or_else(|| shared.limiter.full_quota());
    let value = format!("\"default\";r={};t={}", quota.remaining, quota.reset_secs);
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::try_from(value) {
        headers.insert("ratelimit", value);
    }
    headers.insert("ratelimit-policy", shared.limiter.policy_header().clone());
    response
}
