//! The HTTP server: routes (`/graphql` over HTTP, SSE, multipart and websockets,
//! the GraphiQL explorer at `/`, the live status pages, `/healthz`, `/readyz`;
//! `/metrics` is [`metrics::router`], which startup merges in or serves apart) and
//! the layers every request goes through (request id, tracing, panic catching,
//! timeout, body limit, CORS, security headers); [`serve`] holds the listener and its
//! connections. [`health_router`] serves health alone on `--health-listen`.

mod error;
mod explorer;
mod forwarded;
mod graphql;
mod media;
pub mod metrics;
mod origin;
mod peer;
mod response;
mod server;
mod status_page;
mod stream;
mod websocket;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{DefaultBodyLimit, FromRequestParts, MatchedPath, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{from_fn_with_state, map_request, map_response};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio_util::sync::CancellationToken;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::classify::ServerErrorsFailureClass;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use explorer::{ExampleDomains, Explorer, ExplorerSettings};
pub use server::{ConnectionSettings, serve};
pub use websocket::WsSettings;

use self::error::Refusal;
use self::origin::OriginPolicy;
use crate::access::ACCESS_KEY_HEADER;
use crate::graphql::GatewaySchema;
use crate::metrics::Metrics;

/// What handlers share; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The executable schema with its services (the access policy that admits
    /// callers, the fair shares that say who a client is).
    pub schema: GatewaySchema,
    /// The GraphiQL explorer; `None` with `--disable-explorer`.
    pub explorer: Option<Explorer>,
    /// Cancelled when the gateway starts shutting down (readiness turns 503,
    /// websockets close).
    pub shutdown: CancellationToken,
    /// Websocket limits and timers.
    pub websocket: WsSettings,
    /// Interval of keep-alives on SSE and multipart streams.
    pub http_stream_keepalive: Duration,
    /// GraphQL operations, websocket connections and subscriptions are counted here.
    pub metrics: Metrics,
}

impl AppState {
    /// State for `schema`, with `explorer` at `/` (if any).
    pub fn new(
        schema: GatewaySchema,
        explorer: Option<Explorer>,
        shutdown: CancellationToken,
        websocket: WsSettings,
        metrics: Metrics,
    ) -> Self {
        Self {
            schema,
            explorer,
            shutdown,
            http_stream_keepalive: websocket.keepalive,
            websocket,
            metrics,
        }
    }
}

/// Limits and policies of the HTTP layer.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    /// Limit on handling one request.
    pub request_timeout: Duration,
    /// Largest request body, in bytes.
    pub body_limit: usize,
    /// Origins allowed cross-origin; `*` allows any; empty allows none.
    pub cors_origins: Vec<String>,
    /// Host names answered besides loopback ones (`*`: any).
    pub allowed_hosts: Vec<String>,
    /// The origins browsers reach the gateway at through a proxy that rewrites `Host`
    /// (`scheme://authority`, lowercase): same-origin, and their hosts are answered.
    pub public_origins: Vec<String>,
    /// Where the gateway listens: bound to loopback, it answers loopback names only.
    pub listen: SocketAddr,
}

/// The gateway's router.
pub fn router(state: AppState, settings: &HttpSettings) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let (body_limit, request_timeout) = (settings.body_limit, settings.request_timeout);
    let origin_policy = OriginPolicy::new(
        settings.listen,
        &settings.allowed_hosts,
        &settings.cors_origins,
        &settings.public_origins,
    );
    let layers = ServiceBuilder::new()
        // Headers that keep browsers from misusing any answer: no MIME sniffing,
        // no framing (clickjacking), no Referer leaving with the gateway's URL.
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(API_CONTENT_SECURITY_POLICY),
        ))
        .layer(map_request(screen_headers))
        .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_failure(log_failure),
        )
        .layer(PropagateRequestIdLayer::new(request_id))
        .layer(CatchPanicLayer::new())
        .layer(from_fn_with_state(Arc::new(origin_policy), origin::guard))
        .layer(map_response(move |response| async move {
            json_refusal(response, body_limit, request_timeout)
        }))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            settings.request_timeout,
        ))
        .layer(cors(&settings.cors_origins));
    let explorer = state.explorer.clone().map(Explorer::routes);
    Router::new()
        .merge(explorer.unwrap_or_default())
        .route("/graphql", get(graphql_get_or_upgrade).post(graphql::post))
        .route("/healthz", get(healthz))
        .route(
            "/readyz",
            get(|State(state): State<AppState>| async move { readiness(&state.shutdown) }),
        )
        .merge(status_pages(state.explorer.is_some()))
        // A fallback of our own, so unknown paths get the layers' headers too.
        .fallback(|headers: HeaderMap| async move {
            misdirected_websocket(&headers).unwrap_or_else(|| StatusCode::NOT_FOUND.into_response())
        })
        .layer(DefaultBodyLimit::max(settings.body_limit))
        .layer(layers)
        .with_state(state)
}

/// A websocket upgrade anywhere but `/graphql` (a client pointed at the explorer's
/// `/`, or a typo): refused with where to go, rather than answered with a page or a
/// 404 the client reports as a bare failed handshake.
fn misdirected_websocket(headers: &HeaderMap) -> Option<Response> {
    let upgrade = headers.get(header::UPGRADE)?.to_str().ok()?;
    upgrade.eq_ignore_ascii_case("websocket").then(|| {
        let message =
            "this path does not take websocket connections: GraphQL over websockets is at /graphql";
        let content_type = [(header::CONTENT_TYPE, HeaderValue::from_static(media::JSON))];
        let refusal = Refusal::BadRequest;
        let body = error::error_body(refusal.code(), message);
        (refusal.status(), content_type, body).into_response()
    })
}

/// The policy of every answer but the explorer page (which sets its own, and keeps
/// it): nothing may load, run or frame it.
const API_CONTENT_SECURITY_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

/// The live status pages, served with the explorer (off with `--disable-explorer`).
fn status_pages(enabled: bool) -> Router<AppState> {
    match enabled {
        true => Router::new().route("/status/{domain}", get(status_page::page)),
        false => Router::new(),
    }
}

/// The body-limit 413 (axum writes plain text) and the timeout 408 (tower-http
/// writes no body) as GraphQL errors with a code, like every other refusal. Sits
/// outside the timeout, so it sees the timeout's answer.
fn json_refusal(response: Response, body_limit: usize, request_timeout: Duration) -> Response {
    let (refusal, message) = match response.status() {
        StatusCode::PAYLOAD_TOO_LARGE => (
            Refusal::PayloadTooLarge,
            format!("the request body is over the limit of {body_limit} bytes (--body-limit)"),
        ),
        StatusCode::REQUEST_TIMEOUT => (
            Refusal::RequestTimeout,
            format!(
                "the request was not answered within {} (--request-timeout)",
                humantime::format_duration(request_timeout)
            ),
        ),
        _ => return response,
    };
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.contains("json"));
    if is_json {
        return response;
    }
    refusal.rewrite(response, &message)
}

/// A failed request, logged once: a 503 (readiness while draining, an upstream
/// that is down) is a state the gateway planned for, a warning; any other 5xx or
/// a failure without an answer is an error.
fn log_failure(failure: ServerErrorsFailureClass, latency: Duration, _span: &tracing::Span) {
    let latency_ms = latency.as_millis() as u64;
    match failure {
        ServerErrorsFailureClass::StatusCode(StatusCode::SERVICE_UNAVAILABLE) => {
            tracing::warn!(status = 503, latency_ms, "request answered 503");
        }
        ServerErrorsFailureClass::StatusCode(status) => {
            tracing::error!(status = status.as_u16(), latency_ms, "request failed");
        }
        ServerErrorsFailureClass::Error(error) => {
            tracing::error!(%error, latency_ms, "request failed");
        }
    }
}

/// Longest `X-Request-Id` taken from a caller; a longer one is replaced.
const MAX_REQUEST_ID: usize = 128;

/// Headers no request may bend: more than one `Host` is refused 400 (which one a
/// proxy or a cache read is anyone's guess), and an `X-Request-Id` longer than
/// [`MAX_REQUEST_ID`] bytes or with characters beyond `A-Za-z0-9-_.:` is dropped, so
/// a fresh one is made rather than a caller's text echoed and logged.
async fn screen_headers(mut request: Request) -> Result<Request, Response> {
    if request.headers().get_all(header::HOST).iter().count() > 1 {
        let message = "a request may carry one Host header";
        return Err(Refusal::BadRequest.answer(message));
    }
    let usable = |id: &HeaderValue| {
        id.len() <= MAX_REQUEST_ID
            && id
                .as_bytes()
                .iter()
                .all(|byte| byte.is_ascii_alphanumeric() || b"-_.:".contains(byte))
    };
    let mut ids = request.headers().get_all("x-request-id").iter();
    if !matches!((ids.next(), ids.next()), (Some(id), None) if usable(id)) {
        request.headers_mut().remove("x-request-id");
    }
    Ok(request)
}

/// One span per request, named by route (not raw path) so logs group well; it
/// continues the caller's trace when the request carries a `traceparent`.
fn request_span(request: &Request) -> tracing::Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|id| id.to_str().ok());
    let span = tracing::info_span!(
        "http",
        otel.name = %format_args!("{} {}", request.method(), route.unwrap_or("unmatched")),
        otel.kind = "server",
        method = %request.method(),
        route,
        request_id
    );
    crate::telemetry::continue_trace(&span, request.headers());
    span
}

fn cors(origins: &[String]) -> CorsLayer {
    let allow_origin = if origins.iter().any(|origin| origin == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|origin| origin.parse().ok()))
    };
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::AUTHORIZATION,
            HeaderName::from_static("x-auth-email"),
            HeaderName::from_static("x-auth-key"),
            HeaderName::from_static(ACCESS_KEY_HEADER),
        ])
        .max_age(Duration::from_secs(3600))
}

/// `GET /graphql`: a websocket upgrade, or a GraphQL-over-HTTP query.
async fn graphql_get_or_upgrade(State(state): State<AppState>, request: Request) -> Response {
    let (mut parts, _body) = request.into_parts();
    if !websocket::is_upgrade(&parts.headers) {
        let query = RawQuery(parts.uri.query().map(str::to_owned));
        let peer = peer::Peer::of(&parts.extensions);
        return graphql::get(State(state), peer, parts.headers, query).await;
    }
    match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
        Ok(upgrade) => websocket::upgrade(state, &mut parts, upgrade).await,
        Err(rejection) => rejection.into_response(),
    }
}

/// `/healthz` and `/readyz` alone, for the listener orchestrators probe
/// (`--health-listen`): no client shares it, so no client can crowd them out.
pub fn health_router(shutdown: CancellationToken) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route(
            "/readyz",
            get(|State(shutdown): State<CancellationToken>| async move { readiness(&shutdown) }),
        )
        .with_state(shutdown)
}

/// Liveness: the process serves HTTP.
async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: 503 `draining` once shutdown has begun, so load balancers drain
/// this replica during `--shutdown-drain`, before the listener closes.
fn readiness(shutdown: &CancellationToken) -> (StatusCode, &'static str) {
    if shutdown.is_cancelled() {
        (StatusCode::SERVICE_UNAVAILABLE, "draining")
    } else {
        (StatusCode::OK, "ready")
    }
}
