//! The HTTP boundary's error enum: requests answered before (or instead of)
//! GraphQL, each with its HTTP status and a stable `extensions.code`, in the same
//! GraphQL error body the schema's errors use.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::media::{JSON, MediaType, NotAcceptable, with_media_type};

/// Why a request is answered before (or instead of) GraphQL: each has its HTTP
/// status and a stable `extensions.code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    /// Not a well-formed GraphQL-over-HTTP request (400).
    BadRequest,
    /// A mutation over GET (405).
    MethodNotAllowed,
    /// No response media type the client accepts (406).
    NotAcceptable,
    /// A body over `--body-limit` (413).
    PayloadTooLarge,
    /// A POST body that is not `application/json` (415).
    UnsupportedMediaType,
    /// A browser request or websocket upgrade from another site's page (403).
    OriginNotAllowed,
    /// A host name the gateway does not answer to: DNS rebinding (403).
    HostNotAllowed,
    /// Not answered within `--request-timeout` (408).
    RequestTimeout,
    /// The response could not be encoded (500).
    Internal,
}

impl Refusal {
    /// The HTTP status it is answered with.
    pub(super) fn status(self) -> StatusCode {
        match self {
            Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::NotAcceptable => StatusCode::NOT_ACCEPTABLE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::OriginNotAllowed | Self::HostNotAllowed => StatusCode::FORBIDDEN,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Its `extensions.code`.
    pub(super) fn code(self) -> &'static str {
        match self {
            Self::BadRequest => "BAD_REQUEST",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::NotAcceptable => "NOT_ACCEPTABLE",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Self::OriginNotAllowed => "ORIGIN_NOT_ALLOWED",
            Self::HostNotAllowed => "HOST_NOT_ALLOWED",
            Self::RequestTimeout => "REQUEST_TIMEOUT",
            Self::Internal => "INTERNAL_SERVER_ERROR",
        }
    }

    /// This refusal as a complete answer, its GraphQL error under `application/json`.
    pub(super) fn answer(self, message: &str) -> Response {
        let mut response = Response::new(Body::from(error_body(self.code(), message)));
        *response.status_mut() = self.status();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
        response
    }

    /// Rewrites `response`, written by a layer as plain text or with no body, into
    /// this refusal's GraphQL error under `application/json`, keeping its status
    /// and other headers (CORS, request id).
    pub(super) fn rewrite(self, response: Response, message: &str) -> Response {
        let (mut parts, _) = response.into_parts();
        parts.headers.remove(header::CONTENT_LENGTH);
        parts
            .headers
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
        Response::from_parts(parts, Body::from(error_body(self.code(), message)))
    }
}

/// A GraphQL error body: one error, with its stable code in `extensions.code`.
pub(super) fn error_body(code: &str, message: &str) -> Vec<u8> {
    json!({ "errors": [{ "message": message, "extensions": { "code": code } }] })
        .to_string()
        .into_bytes()
}

/// A request answered with `refusal` instead of a GraphQL result.
pub(super) fn failure(media: MediaType, refusal: Refusal, message: &str) -> Response {
    with_media_type(media, refusal.status(), error_body(refusal.code(), message))
}

impl IntoResponse for NotAcceptable {
    fn into_response(self) -> Response {
        let message = "Accept must allow application/graphql-response+json or application/json";
        failure(MediaType::Json, Refusal::NotAcceptable, message)
    }
}
