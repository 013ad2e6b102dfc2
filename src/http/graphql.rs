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

use std::time::Instant;

use async_graphql::parser::types::{DocumentOperations, OperationType};
use async_graphql::{Request, Variables};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tracing::Instrument;

use super::AppState;
use super::error::{Refusal, error_body};
use super::peer::{Peer, client_id};
use super::stream::{self, Transport as StreamTransport};
use crate::access::{AccessError, AdmittedCaller};
use crate::fair_share::ClientId;
use crate::graphql::{
    CLIENT_RATE_LIMITED, Compiled, GatewaySchema, TOO_MANY_CREDENTIALS, is_request_error,
};
use crate::graphql::{PersistedQueries, PersistedQueryError};
use crate::metrics::{GraphqlOutcome, OperationKind, Transport};

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json; charset=utf-8";
pub(super) const JSON: &str = "application/json; charset=utf-8";

/// The two response media types the spec defines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum MediaType {
    /// `application/graphql-response+json`: status codes carry request errors.
    GraphqlResponseJson,
    /// `application/json`: the legacy type, always 200 for well-formed requests.
    Json,
}

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
            let message = format!("invalid JSON body: {error}");
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
    let admitted = state
        .access
        .admit_headers(headers)
        .map_err(|error| Box::new(refused(answer.media(), &error)))?;
    let address = peer.address(&state.shares, headers);
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

/// 401 for a caller that is not admitted, with a GraphQL error body and a code.
pub(super) fn refused(media: MediaType, error: &AccessError) -> Response {
    let body = error_body(error.code(), &error.to_string());
    let mut response = with_media_type(media, StatusCode::UNAUTHORIZED, body);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"registrar-gateway\""),
    );
    response
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
    let operation = selected_operation(
        &admitted.document().operations,
        request.operation_name.as_deref(),
    );
    let kind = operation_kind(operation);
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
            if let Some(compiled) = state.schema.execute_compiled(&request, &admitted).await {
                state.metrics.compiled_query();
                let (outcome, response) = compiled_response(media, compiled);
                return (Transport::Http, kind, outcome, response);
            }
            let response = state.schema.execute(request).await;
            let outcome = graphql_outcome(&response);
            (Transport::Http, kind, outcome, respond(media, response))
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

/// A compiled query's answer, as [`respond`] answers the same response from
/// async-graphql, and its outcome.
fn compiled_response(media: MediaType, compiled: Compiled) -> (GraphqlOutcome, Response) {
    match compiled {
        Compiled::Body(Ok(body)) => (
            GraphqlOutcome::Ok,
            with_media_type(media, StatusCode::OK, body),
        ),
        Compiled::Body(Err(error)) => (GraphqlOutcome::Ok, unencodable(media, &error)),
        Compiled::Failed(response) => (graphql_outcome(&response), respond(media, response)),
    }
}

/// The operation type a request will run, read from the schema's document cache
/// (so executing it does not parse again); `Unknown` when it does not parse, is
/// refused by the limits, or names no single operation (executing it reports why).
pub(super) fn parsed_operation_kind(schema: &GatewaySchema, request: &Request) -> OperationKind {
    let operation = schema.document(request).ok().and_then(|admitted| {
        selected_operation(
            &admitted.document().operations,
            request.operation_name.as_deref(),
        )
    });
    operation_kind(operation)
}

/// The metric label of an operation type.
pub(super) fn operation_kind(operation: Option<OperationType>) -> OperationKind {
    match operation {
        Some(OperationType::Query) => OperationKind::Query,
        Some(OperationType::Mutation) => OperationKind::Mutation,
        Some(OperationType::Subscription) => OperationKind::Subscription,
        None => OperationKind::Unknown,
    }
}

/// How an executed operation ended, for the metrics.
pub(super) fn graphql_outcome(response: &async_graphql::Response) -> GraphqlOutcome {
    if is_request_error(response) {
        GraphqlOutcome::RequestError
    } else if response.errors.is_empty() {
        GraphqlOutcome::Ok
    } else {
        GraphqlOutcome::Error
    }
}

/// The type of the operation that will run, when the document names one unambiguously.
fn selected_operation(
    operations: &DocumentOperations,
    name: Option<&str>,
) -> Option<OperationType> {
    match (operations, name) {
        (DocumentOperations::Single(operation), _) => Some(operation.node.ty),
        (DocumentOperations::Multiple(operations), Some(name)) => {
            operations.get(name).map(|operation| operation.node.ty)
        }
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => operations
            .values()
            .next()
            .map(|operation| operation.node.ty),
        (DocumentOperations::Multiple(_), None) => None,
    }
}

/// A GraphQL response; a request error (nothing executed: no data, no error has a
/// path) omits `data` and is a 400 under `application/graphql-response+json`; a
/// response that is nothing but fair-share refusals is a 429 with `Retry-After`.
fn respond(media: MediaType, response: async_graphql::Response) -> Response {
    let request_error = is_request_error(&response);
    if let Some(retry_after) = share_refusal(&response) {
        let body = serde_json::to_vec(&response).unwrap_or_default();
        let mut answer = with_media_type(media, StatusCode::TOO_MANY_REQUESTS, body);
        answer
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        return answer;
    }
    let (status, body) = if request_error {
        let status = match media {
            MediaType::GraphqlResponseJson => StatusCode::BAD_REQUEST,
            MediaType::Json => StatusCode::OK,
        };
        (
            status,
            serde_json::to_vec(&json!({ "errors": response.errors })),
        )
    } else {
        (StatusCode::OK, serde_json::to_vec(&response))
    };
    match body {
        Ok(body) => with_media_type(media, status, body),
        Err(error) => unencodable(media, &error),
    }
}

/// A response that could not be encoded as JSON.
fn unencodable(media: MediaType, error: &serde_json::Error) -> Response {
    let message = format!("could not encode the response: {error}");
    failure(media, Refusal::Internal, &message)
}

/// When every error of `response` is a fair-share refusal and no field has data,
/// the longest `retryAfterSeconds` among them: the client has nothing but a
/// refusal, and HTTP clients and proxies know what 429 means.
fn share_refusal(response: &async_graphql::Response) -> Option<u64> {
    use async_graphql::Value;
    if response.errors.is_empty() {
        return None;
    }
    let no_data = match &response.data {
        Value::Null => true,
        Value::Object(fields) => fields.values().all(|value| match value {
            Value::List(items) => items.iter().all(|item| *item == Value::Null),
            value => *value == Value::Null,
        }),
        _ => false,
    };
    let mut longest = 0;
    for error in &response.errors {
        let extensions = error.extensions.as_ref()?;
        let code = extensions.get("code")?;
        let is_share = [CLIENT_RATE_LIMITED, TOO_MANY_CREDENTIALS]
            .iter()
            .any(|share| *code == Value::from(*share));
        if !is_share {
            return None;
        }
        if let Some(Value::Number(seconds)) = extensions.get("retryAfterSeconds") {
            longest = longest.max(seconds.as_u64().unwrap_or(1));
        }
    }
    no_data.then_some(longest.max(1))
}

/// A request answered with `refusal` instead of a GraphQL result.
pub(super) fn failure(media: MediaType, refusal: Refusal, message: &str) -> Response {
    with_media_type(media, refusal.status(), error_body(refusal.code(), message))
}

pub(super) fn with_media_type(media: MediaType, status: StatusCode, body: Vec<u8>) -> Response {
    let content_type = match media {
        MediaType::GraphqlResponseJson => GRAPHQL_RESPONSE_JSON,
        MediaType::Json => JSON,
    };
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (header::VARY, HeaderValue::from_static("accept")),
    ];
    (status, headers, body).into_response()
}

/// Picks the response media type from `Accept`: highest q-value first, then an
/// explicit type over a wildcard, then the spec's type over the legacy one. No
/// `Accept`, or only a wildcard, means `application/json`, as the spec advises.
fn negotiate(headers: &HeaderMap) -> Result<MediaType, NotAcceptable> {
    let Some(accept) = headers.get(header::ACCEPT) else {
        return Ok(MediaType::Json);
    };
    let accept = accept.to_str().unwrap_or_default();
    let ranked = accept.split(',').filter_map(|range| {
        let mut parts = range.split(';').map(str::trim);
        let essence = parts.next()?.to_ascii_lowercase();
        let quality = parts
            .filter_map(|param| param.strip_prefix("q="))
            .find_map(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        let (media, explicit) = match essence.as_str() {
            "application/graphql-response+json" => (MediaType::GraphqlResponseJson, true),
            "application/json" => (MediaType::Json, true),
            // The spec's compatibility rule: a wildcard gets the type every client reads.
            "application/*" | "*/*" => (MediaType::Json, false),
            _ => return None,
        };
        let millis = (quality.clamp(0.0, 1.0) * 1000.0) as u16;
        let rank = (millis, explicit, media == MediaType::GraphqlResponseJson);
        (millis > 0).then_some((rank, media))
    });
    ranked
        .max_by_key(|(rank, _)| *rank)
        .map(|(_, media)| media)
        .ok_or(NotAcceptable)
}

/// No response media type we can produce is acceptable to the client.
struct NotAcceptable;

impl IntoResponse for NotAcceptable {
    fn into_response(self) -> Response {
        let message = "Accept must allow application/graphql-response+json or application/json";
        failure(MediaType::Json, Refusal::NotAcceptable, message)
    }
}

fn is_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let mut parts = value.split(';').map(str::trim);
    let essence_is_json = parts
        .next()
        .is_some_and(|essence| essence.eq_ignore_ascii_case("application/json"));
    let charset_is_utf8 = parts
        .filter_map(|param| param.strip_prefix("charset="))
        .all(|charset| charset.trim_matches('"').eq_ignore_ascii_case("utf-8"));
    essence_is_json && charset_is_utf8
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

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> Result<MediaType, StatusCode> {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, value.parse().unwrap());
        negotiate(&headers).map_err(|not_acceptable| not_acceptable.into_response().status())
    }

    #[test]
    fn accept_negotiation_prefers_the_spec_media_type() {
        assert_eq!(
            accept("application/graphql-response+json, application/json;q=0.9"),
            Ok(MediaType::GraphqlResponseJson)
        );
        assert_eq!(accept("application/json"), Ok(MediaType::Json));
        assert_eq!(accept("*/*"), Ok(MediaType::Json));
        assert_eq!(
            accept("application/graphql-response+json, */*;q=0.8"),
            Ok(MediaType::GraphqlResponseJson)
        );
        assert_eq!(accept("application/json, */*"), Ok(MediaType::Json));
        assert_eq!(
            accept("application/graphql-response+json;q=0"),
            Err(StatusCode::NOT_ACCEPTABLE)
        );
        assert_eq!(
            accept("application/json, application/graphql-response+json;q=0.5"),
            Ok(MediaType::Json)
        );
        assert_eq!(accept("text/html"), Err(StatusCode::NOT_ACCEPTABLE));
        assert_eq!(negotiate(&HeaderMap::new()).ok(), Some(MediaType::Json));
    }
}
