//! `GET /metrics`: the Prometheus exposition, on the main listener or, with
//! `--metrics-listen`, on a listener of its own (whose router is [`router`]). On the
//! main listener with access keys on, a scrape must present a key like any caller
//! (and a client guessing keys is throttled like any caller): the exposition names
//! credentials' fingerprints and what is left of their budgets.

use std::net::IpAddr;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::graphql::refused;
use super::media::MediaType;
use super::peer::Peer;
use crate::access::AccessPolicy;
use crate::fair_share::FairShare;
use crate::metrics::{CONTENT_TYPE, Metrics};

/// Who may scrape `/metrics` on the main listener: callers `access` admits, with
/// their addresses read as `shares` reads them (for the wrong-key throttle).
#[derive(Clone)]
pub struct ScrapeAccess {
    /// The gateway's access policy (with access keys configured).
    pub access: AccessPolicy,
    /// Where the trusted proxies are, to find the client behind them.
    pub shares: FairShare,
}

/// A router serving only `/metrics`; for callers `access` admits with a key, when given.
pub fn router(metrics: Metrics, access: Option<ScrapeAccess>) -> Router {
    let router = Router::new()
        .route("/metrics", get(exposition))
        .with_state(metrics);
    match access {
        Some(access) => router.layer(from_fn_with_state(access, keyed)),
        None => router,
    }
}

/// Lets through only a scrape presenting one of the access keys: 401 `ACCESS_DENIED`
/// otherwise (429 `ACCESS_KEY_THROTTLED` for a client guessing keys).
async fn keyed(State(scrape): State<ScrapeAccess>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let address = Peer::of(request.extensions()).address(&scrape.shares, headers);
    match scrape
        .access
        .admit_headers(headers, address.map(IpAddr::from))
    {
        Ok(_) => next.run(request).await,
        Err(error) => refused(MediaType::Json, &error),
    }
}

/// The current values of every metric.
pub async fn exposition(State(metrics): State<Metrics>) -> Response {
    match metrics.render() {
        Some(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are disabled").into_response(),
    }
}
