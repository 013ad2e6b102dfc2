//! Logs and traces. Log lines (text or JSON, level from `RUST_LOG`, default `info`)
//! go to stderr. When the standard `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, the same spans are also exported
//! as OpenTelemetry traces over OTLP HTTP/JSON, and the W3C `traceparent` of
//! incoming requests is continued and sent on upstream calls ([`propagation`]).
//! When it is not set, no exporter, no propagator and no OpenTelemetry layer exist:
//! nothing is exported and nothing costs.
//!
//! Events of the `log` crate reach the same lines (and spans) through
//! tracing-subscriber's bridge, so crates that dump whole frames are capped
//! whatever `RUST_LOG` says: tungstenite logs every websocket frame at TRACE,
//! `connection_init` payloads (bearer tokens, API keys, access keys) included.
//! The cap is one filter over the whole registry, so it holds for the log lines
//! and for exported traces alike.

mod propagation;

use std::time::Duration;

use clap::ValueEnum;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

pub use propagation::{continue_trace, trace_context};

/// The variables that turn trace export on (the OpenTelemetry standard ones).
const ENDPOINT_VARIABLES: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];
/// The service name traces carry unless `OTEL_SERVICE_NAME` says otherwise.
const SERVICE_NAME: &str = "registrar-gateway";

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Why traces cannot be exported as configured.
#[derive(Debug, thiserror::Error)]
#[error("cannot export OpenTelemetry traces (check the OTEL_* variables): {0}")]
pub struct TelemetryError(#[from] opentelemetry_otlp::ExporterBuildError);

/// Holds the trace exporter; [`Telemetry::shutdown`] sends the spans still buffered.
#[must_use = "shut it down before exiting, or buffered spans are lost"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

/// Longest a flush of buffered spans may block (the SDK's own default).
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

impl Telemetry {
    /// Exports what is buffered and stops the exporter, blocking at most `within`
    /// (and 5 s, the SDK's default): a collector that does not answer cannot keep the
    /// process past its shutdown deadline.
    pub fn shutdown(self, within: Duration) {
        if let Some(provider) = self.provider
            && let Err(error) = provider.shutdown_with_timeout(within.min(FLUSH_TIMEOUT))
        {
            eprintln!("warning: flushing OpenTelemetry traces failed: {error}");
        }
    }
}

/// Installs the global subscriber; call once, first thing in `main`.
pub fn init(format: LogFormat) -> Result<Telemetry, TelemetryError> {
    let provider = ENDPOINT_VARIABLES
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()))
        .then(otlp_provider)
        .transpose()?;
    // Empty means unset, as for every setting (config::empty_means_unset).
    let directives = std::env::var(EnvFilter::DEFAULT_ENV)
        .ok()
        .filter(|directives| !directives.is_empty())
        .unwrap_or_else(|| "info".into());
    let filter = filter(&directives);
    let text = (format == LogFormat::Text)
        .then(|| tracing_subscriber::fmt::layer().with_writer(std::io::stderr));
    let json = (format == LogFormat::Json).then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .json()
            .flatten_event(true)
            .with_current_span(true)
    });
    let traces = provider
        .as_ref()
        .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer(SERVICE_NAME)));
    tracing_subscriber::registry()
        .with(filter)
        .with(text)
        .with(json)
        .with(traces)
        .init();
    if provider.is_some() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        propagation::enable();
    }
    Ok(Telemetry { provider })
}

/// Crates whose TRACE and DEBUG events carry message payloads, and the most they
/// may log: a directive of their own replaces whatever `RUST_LOG` says of them.
const FRAME_DUMPERS: [&str; 2] = ["tungstenite=info", "tokio_tungstenite=info"];

/// The filter for `directives` (`RUST_LOG` syntax; unparseable ones fall back to
/// `info`), with the frame-dumping crates capped.
pub fn filter(directives: &str) -> EnvFilter {
    let mut filter = EnvFilter::try_new(directives).unwrap_or_else(|_| EnvFilter::new("info"));
    for cap in FRAME_DUMPERS {
        filter = filter.add_directive(cap.parse().expect("a valid directive"));
    }
    filter
}

/// A tracer provider exporting in batches over OTLP HTTP/JSON; the endpoint,
/// headers, timeout and batch settings come from the standard `OTEL_*` variables.
fn otlp_provider() -> Result<SdkTracerProvider, TelemetryError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpJson)
        .build()?;
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none_or(|name| name.is_empty()) {
        resource = resource.with_service_name(SERVICE_NAME);
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}
