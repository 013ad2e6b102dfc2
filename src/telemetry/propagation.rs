//! W3C trace context across the gateway: the `traceparent` (and `tracestate`) of an
//! incoming request becomes the parent of its span, and each upstream call carries
//! its own span's context. Both are no-ops until [`enable`] (trace export on), so
//! a gateway without OpenTelemetry neither parses nor writes these headers.

use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, Injector};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Set once, when trace export starts.
static ENABLED: AtomicBool = AtomicBool::new(false);

pub(super) fn enable() {
    ENABLED.store(true, Ordering::Release);
}

fn enabled() -> bool {
    ENABLED.load(Ordering::Acquire)
}

/// Makes the trace context in `headers` (a client's `traceparent`) the parent of `span`.
pub fn continue_trace(span: &tracing::Span, headers: &HeaderMap) {
    if !enabled() {
        return;
    }
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderReader(headers))
    });
    // Fails only when the span is already closed or not recorded: nothing to continue.
    let _ = span.set_parent(parent);
}

/// The headers that carry `span`'s trace context to the upstream (empty when off).
pub fn trace_context(span: &tracing::Span) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if enabled() {
        let context = span.context();
        opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.inject_context(&context, &mut HeaderWriter(&mut headers));
        });
    }
    headers
}

struct HeaderReader<'a>(&'a HeaderMap);

impl Extractor for HeaderReader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key)?.to_str().ok()
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

struct HeaderWriter<'a>(&'a mut HeaderMap);

impl Injector for HeaderWriter<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}
