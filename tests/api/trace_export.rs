//! OpenTelemetry end to end: the gateway binary, started with the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT`, exports the spans of one GraphQL request to an
//! OTLP/HTTP JSON receiver; the request's `traceparent` is continued, and the
//! upstream receives the trace context of the gateway's upstream-call span.
//! A binary of its own: it runs the real executable, whose tracing set-up is global.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const ACCOUNT: &str = "023e105f4ecef8ad9ca31a8372d0c353";
const TOKEN: &str = "otel-test-token-SECRET-7777";
/// The client's trace: the gateway's spans must join it.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN_ID: &str = "00f067aa0ba902b7";
/// A test fails instead of hanging when the spans never come.
const PATIENCE: Duration = Duration::from_secs(20);

/// The gateway process; killed when the test ends, however it ends.
struct Gateway(Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn serve(router: Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    address
}

/// An OTLP/HTTP receiver: each export request's JSON body goes to the channel.
async fn otlp_receiver() -> (SocketAddr, mpsc::UnboundedReceiver<Value>) {
    let (exports, received) = mpsc::unbounded_channel();
    let router = Router::new()
        .route(
            "/v1/traces",
            post(
                |State(exports): State<mpsc::UnboundedSender<Value>>, body: Bytes| async move {
                    let export: Value = serde_json::from_slice(&body).expect("OTLP JSON");
                    exports.send(export).ok();
                    ([(header::CONTENT_TYPE, "application/json")], "{}")
                },
            ),
        )
        .with_state(exports);
    (serve(router).await, received)
}

/// A stand-in for the Cloudflare API that answers every status read with the
/// spec's `pending` example and hands over each request's `traceparent`.
async fn recording_upstream() -> (SocketAddr, mpsc::UnboundedReceiver<Option<String>>) {
    let examples: Value =
        serde_json::from_str(include_str!("../fixtures/upstream-examples.json")).unwrap();
    let body = examples["pending"]["body"].to_string();
    let (seen, received) = mpsc::unbounded_channel();
    let router = Router::new().fallback(move |headers: HeaderMap| {
        let traceparent = headers
            .get("traceparent")
            .map(|value| value.to_str().unwrap().to_owned());
        seen.send(traceparent).ok();
        let body = body.clone();
        async move {
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
        }
    });
    (serve(router).await, received)
}

/// Starts the gateway binary, exporting traces to `otlp` if given, and reads its
/// listening address from its JSON logs.
fn start_gateway(upstream: SocketAddr, otlp: Option<SocketAddr>) -> (Gateway, SocketAddr) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_registrar-gateway"));
    command
        .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
        .args(["--base-url", &format!("http://{upstream}/client/v4")])
        .args(["--account-id", ACCOUNT, "--upstream-retries", "0"])
        .env("CLOUDFLARE_API_TOKEN", TOKEN)
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env("RUST_LOG", "info");
    if let Some(otlp) = otlp {
        command
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{otlp}"))
            .env("OTEL_BSP_SCHEDULE_DELAY", "50");
    }
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the gateway binary starts");
    let stderr = child.stderr.take().unwrap();
    let gateway = Gateway(child);
    let mut lines = BufReader::new(stderr).lines();
    let address = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| {
            let event: Value = serde_json::from_str(&line).ok()?;
            event["address"].as_str()?.parse().ok()
        })
        .expect("the gateway logs its address");
    // Keep draining its logs so it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (gateway, address)
}

/// Every span of `trace_id` received so far, by name.
fn spans_of(exports: &[Value], trace_id: &str) -> Vec<Value> {
    exports
        .iter()
        .flat_map(|export| {
            export["resourceSpans"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .flat_map(|resource| {
            resource["scopeSpans"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .flat_map(|scope| scope["spans"].as_array().cloned().unwrap_or_default())
        .filter(|span| span["traceId"] == trace_id)
        .collect()
}

fn named<'a>(spans: &'a [Value], name: &str) -> &'a Value {
    spans
        .iter()
        .find(|span| span["name"] == name)
        .unwrap_or_else(|| panic!("no {name} span among {spans:#?}"))
}

/// An attribute's string value.
fn attribute<'a>(span: &'a Value, key: &str) -> Option<&'a str> {
    span["attributes"]
        .as_array()?
        .iter()
        .find(|attribute| attribute["key"] == key)?["value"]["stringValue"]
        .as_str()
}

/// `registrationStatus` sent as part of the client's trace.
async fn query_with_traceparent(address: SocketAddr) -> Value {
    let query = "query Status($domain: String!) { registrationStatus(domain: $domain) { state } }";
    reqwest::Client::new()
        .post(format!("http://{address}/graphql"))
        .header("traceparent", format!("00-{TRACE_ID}-{CLIENT_SPAN_ID}-01"))
        .json(&json!({
            "query": query,
            "operationName": "Status",
            "variables": { "domain": "example.com" },
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn without_an_otlp_endpoint_no_trace_context_reaches_the_upstream() {
    let (upstream, mut upstream_traceparents) = recording_upstream().await;
    let (_gateway, address) = start_gateway(upstream, None);
    let body = query_with_traceparent(address).await;
    assert_eq!(
        body["data"]["registrationStatus"]["state"], "PENDING",
        "{body}"
    );
    assert_eq!(upstream_traceparents.recv().await, Some(None));
}

#[tokio::test]
async fn one_request_is_one_trace_from_the_client_through_the_upstream_call() {
    let (otlp, mut exports) = otlp_receiver().await;
    let (upstream, mut upstream_traceparents) = recording_upstream().await;
    let (_gateway, address) = start_gateway(upstream, Some(otlp));
    let body = query_with_traceparent(address).await;
    assert_eq!(
        body["data"]["registrationStatus"]["state"], "PENDING",
        "{body}"
    );

    let sent = upstream_traceparents.recv().await.unwrap();
    let sent = sent.expect("the upstream call carries a traceparent");
    let [version, trace_id, parent_id, flags] = sent.split('-').collect::<Vec<_>>()[..] else {
        panic!("not a W3C traceparent: {sent}");
    };
    assert_eq!((version, trace_id, flags), ("00", TRACE_ID, "01"));

    let mut received = Vec::new();
    let spans = tokio::time::timeout(PATIENCE, async {
        loop {
            received.push(exports.recv().await.expect("the receiver runs"));
            let spans = spans_of(&received, TRACE_ID);
            let names = [
                "POST /graphql",
                "graphql",
                "cache.lookup",
                "upstream.request",
            ];
            if names
                .iter()
                .all(|name| spans.iter().any(|span| span["name"] == *name))
            {
                return spans;
            }
        }
    })
    .await
    .expect("the spans of the request are exported");

    let http = named(&spans, "POST /graphql");
    let graphql = named(&spans, "graphql");
    let lookup = named(&spans, "cache.lookup");
    let call = named(&spans, "upstream.request");
    assert_eq!(
        http["parentSpanId"], CLIENT_SPAN_ID,
        "the client's trace is continued"
    );
    assert_eq!(graphql["parentSpanId"], http["spanId"]);
    assert_eq!(lookup["parentSpanId"], graphql["spanId"]);
    assert_eq!(call["parentSpanId"], lookup["spanId"]);
    assert_eq!(
        call["spanId"], parent_id,
        "the upstream saw the call's own span"
    );
    assert_eq!(attribute(lookup, "result"), Some("miss"));
    assert_eq!(attribute(call, "outcome"), Some("ok"));
    assert_eq!(attribute(graphql, "graphql.operation.type"), Some("query"));
    assert_eq!(attribute(graphql, "graphql.operation.name"), Some("Status"));
    let exported = serde_json::to_string(&received).unwrap();
    assert!(
        !exported.contains(TOKEN),
        "the credential is never exported"
    );
}
