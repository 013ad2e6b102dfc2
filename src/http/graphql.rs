//! GraphQL over HTTP, per the GraphQL-over-HTTP specification: `POST` with an
//! `application/json` body and `GET` with URL parameters; the response media type
//! negotiated from `Accept`; request errors (unparseable or invalid documents) answered
//! 400 without `data` under `application/graphql-response+json`; mutations refused on GET;
//! Apollo's automatic persisted queries (`extensions.persistedQuery`, see
//! [`crate::graphql::PersistedQueries`]) on both methods.
//! A request whose `Accept` asks for a stream (`text/event-stream`, Apollo's
//! `multipart/mixed;subscriptionSpec=1.0`, or another `multipart/mixed`) is admitted
//! and parsed here alike, then streamed by [`super::stream`]; a subscription
//! without one is refused (406).

use std::net::IpAddr;
use std::time::Instant;

use async_graphql::parser::types::OperationType;
use async_graphql::{Request, Variables};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value};
use tracing::Instrument;

use super::AppState;
use super::error::{Refusal, error_body, failure};
use super::media::{MediaType, NotAcceptable, is_json_content_type, negotiate, with_media_type};
use super::peer::{Peer, client_id};
use super::response::{answered, respond};
use super::stream::{self, Transport as StreamTransport};
use crate::access::{AccessError, AdmittedCaller};
use crate::fair_share::ClientId;
use crate::graphql::{PersistedQueries, PersistedQueryError};
use crate::metrics::{GraphqlOutcome, OperationKind, Transport};

/// `POST /graphql`.
pub(super) async fn post(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (answer, caller) = match admit(&state, peer, &headers) {
        Ok(admitted) => admitted,
        Err(refusal) => return *refusal,
    };
    let media = answer.media();
    if !is_json_content_type(&headers) {
        let message = "POST bodies must be application/json";
        return failure(media, Refusal::UnsupportedMediaType, message);
    }
    let params = match serde_json::from_slice::<PostParams>(&body) {
        Ok(params) => params,
        Err(error) => {
            let message = match body.trim_ascii_start().first() {
                Some(b'[') => "batched requests (a JSON array of operations) are not supported: \
                               send each operation in a request of its own"
                    .to_owned(),
                _ => format!("invalid JSON body: {error}"),
            };
            return failure(media, Refusal::BadRequest, &message);
        }
    };
    match params.into_request(state.schema.persisted_queries()) {
        Ok(request) => {
            let request = caller.into_data(request);
            execute(&state, &headers, answer, request, Method::Post).await
        }
        Err(refused) => refused.into_response(media),
    }
}

/// Why a request could not be built from its parameters.
enum Unbuilt {
    /// Malformed parameters.
    BadRequest(String),
    /// A persisted query that cannot run.
    Persisted(PersistedQueryError),
}

impl From<String> for Unbuilt {
    fn from(message: String) -> Self {
        Self::BadRequest(message)
    }
}

impl Unbuilt {
    /// A request error: 400 under `application/graphql-response+json`; under
    /// `application/json`, 200 for `PersistedQueryNotFound` (Apollo's clients
    /// read the code either way and send the document).
    fn into_response(self, media: MediaType) -> Response {
        match self {
            Self::BadRequest(message) => failure(media, Refusal::BadRequest, &message),
            Self::Persisted(error) => {
                let status = match (media, &error) {
                    (MediaType::Json, PersistedQueryError::NotFound) => StatusCode::OK,
                    _ => StatusCode::BAD_REQUEST,
                };
                let body = error_body(error.code(), &error.to_string());
                with_media_type(media, status, body)
            }
        }
    }
}

/// What `Accept` allows: one JSON response (the media type), a stream, or both.
/// Clients such as urql accept every kind at once: queries then answer as JSON
/// and subscriptions stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ResponseKinds {
    json: Option<MediaType>,
    stream: Option<StreamTransport>,
}

impl ResponseKinds {
    /// The media type of refusals; without a JSON one, the spec's type, so that
    /// request errors answer 400 before any stream starts (as graphql-sse expects).
    fn media(self) -> MediaType {
        self.json.unwrap_or(MediaType::GraphqlResponseJson)
    }
}

/// What every GraphQL request goes through first: the response media type (or
/// stream transport), then the access policy (which may hand over the caller's own
/// Cloudflare credential), then who the client is, for its fair shares.
fn admit(
    state: &AppState,
    peer: Peer,
    headers: &HeaderMap,
) -> Result<(ResponseKinds, Caller), Box<Response>> {
    let answer = ResponseKinds {
        json: negotiate(headers).ok(),
        stream: StreamTransport::from_accept(headers),
    };
    if answer
        == (ResponseKinds {
            json: None,
            stream: None,
        })
    {
        return Err(Box::new(NotAcceptable.into_response()));
    }
    let services = state.schema.services();
    let address = peer.address(&services.shares, headers);
    let admitted = services
        .access
        .admit_headers(headers, address.map(IpAddr::from))
        .map_err(|error| Box::new(refused(answer.media(), &error)))?;
    let client = client_id(admitted.access_key, address);
    Ok((answer, Caller { admitted, client }))
}

/// An admitted caller: its own credential (if any) and who it is.
pub(super) struct Caller {
    /// What the access policy admitted.
    pub(super) admitted: AdmittedCaller,
    /// The client, for fair shares.
    pub(super) client: Option<ClientId>,
}

impl Caller {
    /// Puts the caller's own credential, when admitted with one, and its client id
    /// in the request data, where the resolvers find them.
    pub(super) fn into_data(self, mut request: Request) -> Request {
        if let Some(credential) = self.admitted.credential {
            request = request.data(credential);
        }
        match self.client {
            Some(client) => request.data(client),
            None => request,
        }
    }
}

/// `GET /graphql?query=...&operationName=...&variables=...`.
pub(super) async fn get(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let (answer, caller) = match admit(&state, peer, &headers) {
        Ok(admitted) => admitted,
        Err(refusal) => return *refusal,
    };
    let params = parse_get_params(query.as_deref().unwrap_or_default()).map_err(Unbuilt::from);
    match params.and_then(|params| params.into_request(state.schema.persisted_queries())) {
        Ok(request) => {
            let request = caller.into_data(request);
            execute(&state, &headers, answer, request, Method::Get).await
        }
        Err(refused) => refused.into_response(answer.media()),
    }
}

/// 401 for a caller that is not admitted (429 with `Retry-After` for one whose
/// keys are throttled), with a GraphQL error body and a code (and, throttled,
/// `retryAfterSeconds` beside it, as the fair shares' 429s carry).
pub(super) fn refused(media: MediaType, error: &AccessError) -> Response {
    let mut extensions = serde_json::json!({ "code": error.code() });
    if let Some(seconds) = error.retry_after_seconds() {
        extensions["retryAfterSeconds"] = seconds.into();
    }
    let error_json = serde_json::json!({ "message": error.to_string(), "extensions": extensions });
    let body = serde_json::json!({ "errors": [error_json] }).to_string();
    let mut response = with_media_type(media, StatusCode::UNAUTHORIZED, body.into_bytes());
    access_refusal_headers(&mut response, error);
    response
}

/// Makes `response` (a 401 so far) the refusal of `error`: a 429 with `Retry-After`
/// for a throttled client (no credential helps before then), else a 401 naming
/// the scheme to authenticate with.
pub(super) fn access_refusal_headers(response: &mut Response, error: &AccessError) {
    match error.retry_after_seconds() {
        Some(seconds) => {
            *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        None => {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"registrar-gateway\""),
            );
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Post,
}

/// Runs a request in a `graphql` span and counts it in the metrics.
async fn execute(
    state: &AppState,
    headers: &HeaderMap,
    answer: ResponseKinds,
    request: Request,
    method: Method,
) -> Response {
    let span = tracing::info_span!(
        "graphql",
        graphql.operation.type = tracing::field::Empty,
        graphql.operation.name = request.operation_name.as_deref(),
        outcome = tracing::field::Empty,
    );
    let started = Instant::now();
    let (transport, kind, outcome, response) = run(state, headers, answer, request, method)
        .instrument(span.clone())
        .await;
    span.record("graphql.operation.type", kind.as_str());
    span.record("outcome", outcome.as_str());
    let elapsed = started.elapsed();
    state
        .metrics
        .graphql_request(transport, kind, outcome, elapsed);
    response
}

/// Runs a request: how it was answered (the metrics' transport), its operation
/// type and outcome, and the response.
async fn run(
    state: &AppState,
    headers: &HeaderMap,
    answer: ResponseKinds,
    request: Request,
    method: Method,
) -> (Transport, OperationKind, GraphqlOutcome, Response) {
    let refused = |kind, response| {
        (
            Transport::Http,
            kind,
            GraphqlOutcome::RequestError,
            response,
        )
    };
    let media = answer.media();
    let admitted = match state.schema.document(&request) {
        Ok(admitted) => admitted,
        Err(error) => {
            let response = async_graphql::Response::from_errors(vec![error]);
            return refused(OperationKind::Unknown, respond(media, response));
        }
    };
    let operation = admitted.operation_type(request.operation_name.as_deref());
    let kind = OperationKind::from(operation);
    if method == Method::Get && operation == Some(OperationType::Mutation) {
        let message = "mutations are only accepted over POST";
        let mut response = failure(media, Refusal::MethodNotAllowed, message);
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return refused(kind, response);
    }
    let subscription = operation == Some(OperationType::Subscription);
    match (answer.json, answer.stream) {
        (Some(media), _) if !subscription => {
            let answer = state.schema.answer(request, &admitted).await;
            let (outcome, response) = answered(media, answer);
            (Transport::Http, kind, outcome, response)
        }
        // A stream's outcome is known only as it goes: counted as started.
        (_, Some(transport)) => (
            transport.metrics_transport(),
            kind,
            GraphqlOutcome::Ok,
            stream::respond(state, transport, headers, request, subscription),
        ),
        _ => {
            let message = "a subscription streams its events: send Accept: text/event-stream \
                (GraphQL over SSE) or multipart/mixed, or use the websocket";
            refused(kind, failure(media, Refusal::NotAcceptable, message))
        }
    }
}

/// The JSON body of a POST. A batch (JSON array) is refused by the type itself.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostParams {
    query: Option<String>,
    operation_name: Option<String>,
    variables: Option<Map<String, Value>>,
    /// Type-checked per the spec; `persistedQuery` is Apollo's automatic persisted queries.
    extensions: Option<Map<String, Value>>,
}

impl PostParams {
    fn into_request(self, persisted: &PersistedQueries) -> Result<Request, Unbuilt> {
        let query = persisted
            .resolve(self.query, self.extensions.as_ref())
            .map_err(Unbuilt::Persisted)?;
        Ok(build_request(query, self.operation_name, self.variables)?)
    }
}

/// The URL parameters of a GET; `variables` and `extensions` are JSON-encoded.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetParams {
    query: Option<String>,
    operation_name: Option<String>,
    variables: Option<String>,
    extensions: Option<String>,
}

impl GetParams {
    fn into_request(self, persisted: &PersistedQueries) -> Result<Request, Unbuilt> {
        let variables = match self.variables.as_deref() {
            None | Some("") => None,
            Some(text) => Some(
                serde_json::from_str::<Map<String, Value>>(text)
                    .map_err(|error| format!("variables must be a JSON object: {error}"))?,
            ),
        };
        let extensions = match self.extensions.as_deref() {
            None | Some("") => None,
            Some(text) => Some(
                serde_json::from_str::<Map<String, Value>>(text)
                    .map_err(|error| format!("extensions must be a JSON object: {error}"))?,
            ),
        };
        let query = persisted
            .resolve(self.query, extensions.as_ref())
            .map_err(Unbuilt::Persisted)?;
        Ok(build_request(query, self.operation_name, variables)?)
    }
}

fn parse_get_params(query: &str) -> Result<GetParams, String> {
    serde_urlencoded::from_str(query).map_err(|error| format!("invalid URL parameters: {error}"))
}

fn build_request(
    query: Option<String>,
    operation_name: Option<String>,
    variables: Option<Map<String, Value>>,
) -> Result<Request, String> {
    let query = query
        .filter(|query| !query.is_empty())
        .ok_or("the query parameter is required")?;
    let mut request = Request::new(query);
    if let Some(name) = operation_name {
        request = request.operation_name(name);
    }
    if let Some(variables) = variables {
        request = request.variables(Variables::from_json(Value::Object(variables)));
    }
    Ok(request)
}
