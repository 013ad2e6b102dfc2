//! The response media types GraphQL over HTTP defines, negotiated from `Accept`,
//! and the `Content-Type` a POST body must have: what the handlers of
//! [`super::graphql`], [`super::stream`] and the error bodies of [`super::error`]
//! agree on.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

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

/// `body` with `status` under `media`, varying by `Accept`.
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
pub(super) fn negotiate(headers: &HeaderMap) -> Result<MediaType, NotAcceptable> {
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
pub(super) struct NotAcceptable;

/// Whether a POST body is declared `application/json` in UTF-8 (the only charset allowed).
pub(super) fn is_json_content_type(headers: &HeaderMap) -> bool {
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
