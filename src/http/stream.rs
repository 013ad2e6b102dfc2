//! Operations streamed over plain HTTP, for clients that cannot or may not use a
//! websocket (corporate proxies, serverless edges, `EventSource`, Apollo Client's
//! `HttpLink`):
//!
//! - GraphQL over Server-Sent Events, the `graphql-sse` protocol's "distinct
//!   connections mode": `Accept: text/event-stream`, one operation per request,
//!   `event: next` per result, then `event: complete`. Each event's `id:` is the
//!   registration's sequence, so a reconnecting `EventSource` sends it back as
//!   `Last-Event-ID` and resumes where it left off;
//! - Apollo's multipart subscription protocol: `Accept:
//!   multipart/mixed;subscriptionSpec=1.0`, one `{"payload": ...}` part per result;
//! - plain `multipart/mixed` (the incremental-delivery framing GraphiQL's HTTP
//!   fetcher reads): one part per result, each with `"hasNext": true`. GraphiQL
//!   sends a subscription this way when its editor has not re-parsed the document
//!   yet, so the subscription streams instead of failing.
//!
//! SSE and Apollo's protocol send a keep-alive (an SSE comment, an empty `{}` part) every
//! `--http-stream-keepalive` so proxies keep idle streams open, tell proxies not to
//! buffer, and end at once when the gateway shuts down. Admission (access keys,
//! credentials), parsing and operation limits are the HTTP handler's, unchanged.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::Request;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response as HttpResponse;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use serde_json::json;
use tokio::time::{Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::AppState;
use super::error::{Refusal, error_body, failure};
use super::media::{MediaType, with_media_type};
use crate::graphql::{FRAME_SLOTS, FanoutResponse, LastEventId, is_request_error};
use crate::metrics::{Active, Deliveries, Protocol, Transport as MetricsTransport};

/// The multipart boundary.
const BOUNDARY: &str = "graphql";
/// Longest `Last-Event-ID` read (a sequence number).
const MAX_LAST_EVENT_ID: usize = 20;

/// A streaming transport, chosen from `Accept`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Transport {
    /// `text/event-stream` (graphql-sse).
    Sse,
    /// `multipart/mixed;subscriptionSpec=1.0` (Apollo).
    Multipart,
    /// `multipart/mixed` without `subscriptionSpec` (incremental delivery; GraphiQL).
    Incremental,
}

impl Transport {
    /// The transport a request's `Accept` asks for, if any: `text/event-stream`,
    /// `multipart/mixed` with a `subscriptionSpec` parameter (Apollo), or another
    /// `multipart/mixed` (incremental delivery). Queries stay JSON whenever `Accept`
    /// allows it, so this decides only how subscriptions stream.
    pub(super) fn from_accept(headers: &HeaderMap) -> Option<Self> {
        let accept = headers.get(header::ACCEPT)?.to_str().ok()?;
        accept.split(',').find_map(|range| {
            let mut parts = range.split(';').map(str::trim);
            let essence = parts.next()?.to_ascii_lowercase();
            let params: Vec<String> = parts.map(str::to_ascii_lowercase).collect();
            let refused = params.iter().any(|param| is_zero_quality(param));
            match essence.as_str() {
                _ if refused => None,
                "text/event-stream" => Some(Self::Sse),
                "multipart/mixed"
                    if params
                        .iter()
                        .any(|param| param.starts_with("subscriptionspec=")) =>
                {
                    Some(Self::Multipart)
                }
                "multipart/mixed" => Some(Self::Incremental),
                _ => None,
            }
        })
    }

    /// The `subscriptions_active` label of a subscription streamed this way.
    fn protocol(self) -> Protocol {
        match self {
            Self::Sse => Protocol::Sse,
            Self::Multipart | Self::Incremental => Protocol::Multipart,
        }
    }

    /// The `graphql_requests_total` transport of a request answered this way.
    pub(super) fn metrics_transport(self) -> MetricsTransport {
        match self {
            Self::Sse => MetricsTransport::Sse,
            Self::Multipart | Self::Incremental => MetricsTransport::Multipart,
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::Sse => "text/event-stream; charset=utf-8",
            Self::Multipart => "multipart/mixed; boundary=\"graphql\"; subscriptionSpec=\"1.0\"",
            Self::Incremental => "multipart/mixed; boundary=\"graphql\"",
        }
    }

    /// What opens the body (the multipart preamble's first boundary).
    fn opening(self) -> Option<Bytes> {
        match self {
            Self::Sse => None,
            Self::Multipart | Self::Incremental => Some(Bytes::from(format!("\r\n--{BOUNDARY}"))),
        }
    }

    /// Where a result keeps this transport's framing of it (see [`FanoutResponse::frame`]).
    fn frame_slot(self) -> usize {
        let slot = match self {
            Self::Sse => 0,
            Self::Multipart => 1,
            Self::Incremental => 2,
        };
        debug_assert!(slot < FRAME_SLOTS);
        slot
    }

    /// `result` framed: once per result, however many subscribers stream it.
    fn event(self, result: &FanoutResponse) -> Bytes {
        result.frame(self.frame_slot(), |result| self.frame(result))
    }

    fn frame(self, result: &FanoutResponse) -> Bytes {
        let json = String::from_utf8_lossy(result.json());
        match self {
            Self::Sse => {
                let id = result
                    .sequence()
                    .map(|sequence| format!("id: {sequence}\n"))
                    .unwrap_or_default();
                Bytes::from(format!("event: next\n{id}data: {json}\n\n"))
            }
            Self::Multipart => part(&format!("{{\"payload\":{json}}}")),
            Self::Incremental => part(&with_has_next(&json)),
        }
    }

    /// The keep-alive frame; incremental delivery has none that every client
    /// ignores, so it sends none.
    fn keep_alive(self) -> Option<Bytes> {
        match self {
            Self::Sse => Some(Bytes::from_static(b":\n\n")),
            Self::Multipart => Some(part("{}")),
            Self::Incremental => None,
        }
    }

    fn end(self) -> Bytes {
        match self {
            Self::Sse => Bytes::from_static(b"event: complete\ndata:\n\n"),
            Self::Multipart | Self::Incremental => Bytes::from_static(b"--\r\n"),
        }
    }
}

/// One multipart part, closed by the next boundary.
fn part(json: &str) -> Bytes {
    Bytes::from(format!(
        "\r\ncontent-type: application/json; charset=utf-8\r\n\r\n{json}\r\n--{BOUNDARY}"
    ))
}

fn is_zero_quality(param: &str) -> bool {
    param
        .strip_prefix("q=")
        .and_then(|q| q.parse::<f32>().ok())
        .is_some_and(|q| q <= 0.0)
}

/// An execution result as incremental delivery sends it: with `"hasNext": true`.
fn with_has_next(json: &str) -> String {
    let encoded = serde_json::from_str::<serde_json::Value>(json).map(|mut value| {
        value["hasNext"] = serde_json::Value::Bool(true);
        value.to_string()
    });
    encoded.unwrap_or_else(|error| {
        let message = format!("could not encode the response: {error}");
        json!({ "errors": [{ "message": message, "extensions": { "code": "INTERNAL_SERVER_ERROR" } }] })
            .to_string()
    })
}

/// `Last-Event-ID`, when sent: the sequence an `EventSource` saw last.
fn last_event_id(headers: &HeaderMap) -> Result<Option<u64>, &'static str> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim();
    if text.is_empty() {
        return Ok(None);
    }
    let message = "Last-Event-ID must be a sequence number this gateway sent";
    if text.len() > MAX_LAST_EVENT_ID {
        return Err(message);
    }
    text.parse().map(Some).map_err(|_| message)
}

/// Streams `request`'s results over `transport`; a `subscription` counts in
/// `subscriptions_active` while it streams. A request error (parse, validation,
/// limits: ready before anything runs) is answered 400 as JSON instead.
pub(super) fn respond(
    state: &AppState,
    transport: Transport,
    headers: &HeaderMap,
    mut request: Request,
    subscription: bool,
) -> HttpResponse {
    let media = MediaType::GraphqlResponseJson;
    match last_event_id(headers) {
        Ok(Some(sequence)) => request = request.data(LastEventId(sequence)),
        Ok(None) => {}
        Err(message) => return failure(media, Refusal::BadRequest, message),
    }
    let mut results = state.schema.subscribe(request, None);
    // Dropping a pending `next()` loses nothing: the stream keeps its state.
    if let Some(Some(first)) = results.next().now_or_never() {
        if is_request_error(first.response()) {
            let body = serde_json::to_vec(&json!({ "errors": first.response().errors }))
                .unwrap_or_else(|_| error_body(Refusal::BadRequest.code(), "invalid request"));
            return with_media_type(media, StatusCode::BAD_REQUEST, body);
        }
        results = futures::stream::once(async { first })
            .chain(results)
            .boxed();
    }
    let active = subscription.then(|| {
        let protocol = transport.protocol();
        let deliveries = state.metrics.deliveries(protocol);
        (state.metrics.subscriptions(protocol).hold(), deliveries)
    });
    let body = frames(
        transport,
        results,
        state.http_stream_keepalive,
        state.shutdown.clone(),
        active,
    );
    let headers = [
        (header::CONTENT_TYPE, transport.content_type()),
        // Proxies and browsers must neither cache nor buffer a live stream.
        (header::CACHE_CONTROL, "no-cache"),
        (header::HeaderName::from_static("x-accel-buffering"), "no"),
    ];
    let mut response = HttpResponse::new(Body::from_stream(body));
    for (name, value) in headers {
        response
            .headers_mut()
            .insert(name, HeaderValue::from_static(value));
    }
    response
}

/// What the body sends next.
struct Framing {
    transport: Transport,
    results: BoxStream<'static, Arc<FanoutResponse>>,
    keep_alive: Interval,
    shutdown: CancellationToken,
    /// A subscription's meters: counted as active until the body ends or is
    /// dropped, and each result it sends as an event delivered.
    subscription: Option<(Active, Deliveries)>,
}

/// The body: each result framed, keep-alives while idle, then the end frame;
/// cut short (still with the end frame) when the gateway shuts down.
fn frames(
    transport: Transport,
    results: BoxStream<'static, Arc<FanoutResponse>>,
    keep_alive: Duration,
    shutdown: CancellationToken,
    subscription: Option<(Active, Deliveries)>,
) -> impl futures::Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    let mut interval =
        tokio::time::interval_at(tokio::time::Instant::now() + keep_alive, keep_alive);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let framing = Framing {
        transport,
        results,
        keep_alive: interval,
        shutdown,
        subscription,
    };
    let opening = futures::stream::iter(transport.opening().map(Ok));
    let rest = futures::stream::unfold(Some(framing), |framing| async move {
        let mut framing = framing?;
        let transport = framing.transport;
        let frame = loop {
            tokio::select! {
                // Shutdown first: a drained gateway must not wait on live streams.
                biased;
                () = framing.shutdown.cancelled() => break None,
                result = framing.results.next() => {
                    if let (Some(_), Some((_, deliveries))) = (&result, &framing.subscription) {
                        deliveries.one();
                    }
                    break result.map(|result| transport.event(&result));
                }
                _ = framing.keep_alive.tick() => {
                    if let Some(keep_alive) = transport.keep_alive() {
                        break Some(keep_alive);
                    }
                }
            }
        };
        match frame {
            Some(bytes) => Some((Ok(bytes), Some(framing))),
            None => Some((Ok(transport.end()), None)),
        }
    });
    opening.chain(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> Option<Transport> {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, value.parse().unwrap());
        Transport::from_accept(&headers)
    }

    #[test]
    fn the_stream_transport_comes_from_accept() {
        assert_eq!(accept("text/event-stream"), Some(Transport::Sse));
        assert_eq!(
            accept("multipart/mixed;boundary=\"graphql\";subscriptionSpec=1.0,application/json"),
            Some(Transport::Multipart)
        );
        assert_eq!(
            accept("multipart/mixed;deferSpec=20220824,application/json"),
            Some(Transport::Incremental)
        );
        assert_eq!(
            accept("application/json, multipart/mixed"),
            Some(Transport::Incremental)
        );
        assert_eq!(accept("text/event-stream;q=0, application/json"), None);
        assert_eq!(accept("application/json"), None);
    }

    #[test]
    fn last_event_id_is_a_bounded_number() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert("last-event-id", value.parse().unwrap());
            last_event_id(&headers)
        };
        assert_eq!(with("7"), Ok(Some(7)));
        assert_eq!(with(""), Ok(None));
        assert!(with("-1").is_err());
        assert!(with(&"9".repeat(40)).is_err());
        assert_eq!(last_event_id(&HeaderMap::new()), Ok(None));
    }
}
