//! A GraphQL response as an HTTP response, as GraphQL over HTTP asks: a request
//! error omits `data` and is a 400 under `application/graphql-response+json`; a
//! response that is nothing but fair-share refusals is a 429 with `Retry-After`; a
//! compiled query's body goes out as written.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::json;

use super::error::{Refusal, failure};
use super::media::{MediaType, with_media_type};
use crate::graphql::{
    CLIENT_RATE_LIMITED, Compiled, TOO_MANY_CREDENTIALS, is_request_error, outcome,
};
use crate::metrics::GraphqlOutcome;

/// A compiled query's answer, as [`respond`] answers the same response from
/// async-graphql, and its outcome.
pub(super) fn compiled_response(
    media: MediaType,
    compiled: Compiled,
) -> (GraphqlOutcome, Response) {
    match compiled {
        Compiled::Body(Ok(body)) => (
            GraphqlOutcome::Ok,
            with_media_type(media, StatusCode::OK, body),
        ),
        Compiled::Body(Err(error)) => (GraphqlOutcome::Ok, unencodable(media, &error)),
        Compiled::Failed(response) => (outcome(&response), respond(media, response)),
    }
}

/// A GraphQL response; a request error (nothing executed: no data, no error has a
/// path) omits `data` and is a 400 under `application/graphql-response+json`; a
/// response that is nothing but fair-share refusals is a 429 with `Retry-After`.
pub(super) fn respond(media: MediaType, response: async_graphql::Response) -> Response {
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
