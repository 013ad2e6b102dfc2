//! Subscriptions over plain HTTP, read off real sockets the way clients do: GraphQL
//! over SSE (graphql-sse's distinct connections mode, `Last-Event-ID` resume) and
//! Apollo's multipart protocol; and each transport's refusals (bad `Accept`,
//! limits, access keys) before any stream starts.

use std::time::Duration;

use serde_json::{Value, json};

use crate::subscriptions::{fast_app, states};
use crate::support::TestApp;

const SSE: &str = "text/event-stream";
const MULTIPART: &str =
    "multipart/mixed;boundary=\"graphql\";subscriptionSpec=1.0,application/json";
const WATCH: &str = r#"subscription($domain: String!) {
  registrationStatusChanged(domain: $domain) { sequence resynced status { state } }
}"#;

/// A streamed response being read frame by frame.
struct Reader {
    response: reqwest::Response,
    buffer: String,
    separator: &'static str,
}

impl Reader {
    /// The next frame (an SSE event block, or a multipart part), `None` at the end.
    async fn next(&mut self) -> Option<String> {
        loop {
            if let Some(at) = self.buffer.find(self.separator) {
                let frame = self.buffer[..at].to_owned();
                self.buffer.drain(..at + self.separator.len());
                return Some(frame);
            }
            let chunk = tokio::time::timeout(Duration::from_secs(20), self.response.chunk())
                .await
                .expect("a frame within the test's patience")
                .expect("the stream reads");
            self.buffer.push_str(std::str::from_utf8(&chunk?).unwrap());
        }
    }
}

async fn post(
    app: &TestApp,
    accept: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> reqwest::Response {
    let mut request = app
        .http
        .post(app.url("/graphql"))
        .header("accept", accept)
        .json(&body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("answered")
}

async fn sse(app: &TestApp, headers: &[(&str, &str)], domain: &str) -> Reader {
    let body = json!({ "query": WATCH, "variables": { "domain": domain } });
    let response = post(app, SSE, headers, body).await;
    assert_eq!(response.status(), 200);
    let header = |name: &str| response.headers()[name].to_str().unwrap().to_owned();
    assert_eq!(header("content-type"), "text/event-stream; charset=utf-8");
    assert_eq!(header("cache-control"), "no-cache");
    assert_eq!(header("x-accel-buffering"), "no");
    Reader {
        response,
        buffer: String::new(),
        separator: "\n\n",
    }
}

/// An SSE event as (event, id, data), keep-alive comments skipped.
async fn sse_event(reader: &mut Reader) -> (String, Option<String>, Value) {
    loop {
        let block = reader.next().await.expect("an event");
        if block.starts_with(':') {
            continue;
        }
        let field = |name: &str| {
            block
                .lines()
                .find_map(|line| line.strip_prefix(name).map(|value| value.trim().to_owned()))
        };
        let data = field("data:").filter(|data| !data.is_empty());
        let data = data.map_or(Value::Null, |data| serde_json::from_str(&data).unwrap());
        return (field("event:").unwrap(), field("id:"), data);
    }
}

/// Events until `complete`: each change with its SSE id.
async fn sse_until_complete(reader: &mut Reader) -> Vec<(Option<String>, Value)> {
    let mut changes = Vec::new();
    loop {
        match sse_event(reader).await {
            (event, _, _) if event == "complete" => return changes,
            (event, id, data) => {
                assert_eq!(event, "next");
                assert!(data["errors"].is_null(), "{data}");
                changes.push((id, data["data"]["registrationStatusChanged"].clone()));
            }
        }
    }
}

fn advance(app: &TestApp, seconds: u64) {
    app.simulator()
        .advance_clock(Duration::from_secs(seconds))
        .expect("the clock advances");
}

#[tokio::test]
async fn an_sse_subscription_streams_a_whole_workflow_with_sequences_as_event_ids() {
    let app = fast_app(&[]).await;
    let mut reader = sse(&app, &[], "demo-succeeds.com").await;
    let (event, id, first) = sse_event(&mut reader).await;
    assert_eq!((event.as_str(), id.as_deref()), ("next", Some("1")));
    assert_eq!(
        first["data"]["registrationStatusChanged"]["status"]["state"],
        "PENDING"
    );
    advance(&app, 10);
    let (_, id, second) = sse_event(&mut reader).await;
    assert_eq!(id.as_deref(), Some("2"));
    assert_eq!(
        second["data"]["registrationStatusChanged"]["status"]["state"],
        "IN_PROGRESS"
    );
    advance(&app, 20);
    let rest = sse_until_complete(&mut reader).await;
    assert_eq!(rest.len(), 1);
    assert_eq!(
        (rest[0].0.as_deref(), &rest[0].1["status"]["state"]),
        (Some("3"), &json!("SUCCEEDED"))
    );
    assert_eq!(
        reader.next().await,
        None,
        "the response ends after complete"
    );
}

#[tokio::test]
async fn sse_and_websocket_subscribers_of_one_document_share_one_execution() {
    let app = fast_app(&[]).await;
    let mut readers = Vec::new();
    for _ in 0..2 {
        readers.push(sse(&app, &[], "demo-succeeds.com").await);
    }
    let mut socket = crate::support::connect_ready(&app).await;
    let payload = json!({ "query": WATCH, "variables": { "domain": "demo-succeeds.com" } });
    socket
        .send(json!({ "type": "subscribe", "id": "ws", "payload": payload }))
        .await;
    let over_websocket = crate::subscriptions::next_change(&mut socket, "ws").await;
    let mut frames = Vec::new();
    for reader in &mut readers {
        frames.push(reader.next().await.expect("an event"));
    }
    assert_eq!(
        frames[0], frames[1],
        "the same frame for every SSE subscriber"
    );
    assert!(
        frames[0].starts_with("event: next\nid: 1\ndata: "),
        "{}",
        frames[0]
    );
    let data = frames[0].split_once("data: ").unwrap().1;
    let data: Value = serde_json::from_str(data).unwrap();
    assert_eq!(data["data"]["registrationStatusChanged"], over_websocket);
    assert_eq!(
        app.pollers.stats().active_watchers,
        1,
        "three subscribers over two transports, one execution"
    );
    advance(&app, 30);
    for reader in &mut readers {
        let rest = sse_until_complete(reader).await;
        let last = rest.last().expect("the final status");
        assert_eq!(last.1["status"]["state"], "SUCCEEDED");
        let sequence = last.1["sequence"].to_string();
        assert_eq!(
            last.0.as_deref(),
            Some(sequence.as_str()),
            "the event id is the sequence"
        );
    }
}

#[tokio::test]
async fn an_sse_client_that_reconnects_with_last_event_id_gets_what_it_missed() {
    let app = fast_app(&[]).await;
    let mut staying = sse(&app, &[], "demo-succeeds.com").await;
    let mut leaving = sse(&app, &[], "demo-succeeds.com").await;
    sse_event(&mut staying).await;
    let (_, last_id, _) = sse_event(&mut leaving).await;
    drop(leaving);
    advance(&app, 10);
    sse_event(&mut staying).await;
    advance(&app, 20);
    sse_until_complete(&mut staying).await;

    let last_id = last_id.unwrap();
    let mut back = sse(&app, &[("last-event-id", &last_id)], "demo-succeeds.com").await;
    let missed = sse_until_complete(&mut back).await;
    let ids: Vec<_> = missed.iter().map(|(id, _)| id.clone().unwrap()).collect();
    assert_eq!(ids, ["2", "3"]);
    let changes: Vec<Value> = missed.into_iter().map(|(_, change)| change).collect();
    assert_eq!(states(&changes), ["IN_PROGRESS", "SUCCEEDED"]);
    assert!(changes.iter().all(|change| change["resynced"] == false));
}

#[tokio::test]
async fn idle_sse_and_multipart_streams_get_keep_alives() {
    let app = fast_app(&["--ws-keepalive", "20ms"]).await;
    let mut reader = sse(&app, &[], "demo-pending.com").await;
    sse_event(&mut reader).await;
    assert_eq!(reader.next().await.as_deref(), Some(":"));

    let body = json!({ "query": WATCH, "variables": { "domain": "demo-pending.com" } });
    let response = post(&app, MULTIPART, &[], body).await;
    let mut parts = Reader {
        response,
        buffer: String::new(),
        separator: "\r\n--graphql",
    };
    let mut heartbeats = 0;
    while heartbeats < 2 {
        let part = parts.next().await.unwrap();
        if part.ends_with("\r\n\r\n{}") {
            heartbeats += 1;
        }
    }
}

/// Follows demo-succeeds.com over a multipart stream asked for with `accept`,
/// checking the framing, and hands back each part's JSON.
async fn multipart_workflow(accept: &str, content_type: &str) -> Vec<Value> {
    let app = fast_app(&[]).await;
    let body = json!({ "query": WATCH, "variables": { "domain": "demo-succeeds.com" } });
    let response = post(&app, accept, &[], body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], content_type);
    let mut parts = Reader {
        response,
        buffer: String::new(),
        separator: "\r\n--graphql",
    };
    assert_eq!(
        parts.next().await.as_deref(),
        Some(""),
        "the body opens with a boundary"
    );
    let mut seen = Vec::new();
    for advance_by in [10, 20, 0] {
        let part = parts.next().await.unwrap();
        let (head, json) = part.split_once("\r\n\r\n").unwrap();
        assert_eq!(head, "\r\ncontent-type: application/json; charset=utf-8");
        seen.push(serde_json::from_str(json).unwrap());
        if advance_by > 0 {
            advance(&app, advance_by);
        }
    }
    assert_eq!(parts.buffer.as_str(), "");
    let mut rest = String::new();
    while let Some(chunk) = parts.response.chunk().await.unwrap() {
        rest.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert_eq!(rest, "--\r\n", "then the final boundary");
    seen
}

#[tokio::test]
async fn a_multipart_subscription_streams_apollo_payload_parts_to_the_final_boundary() {
    let content_type = "multipart/mixed; boundary=\"graphql\"; subscriptionSpec=\"1.0\"";
    let parts = multipart_workflow(MULTIPART, content_type).await;
    let changes: Vec<Value> = parts
        .iter()
        .map(|part| part["payload"]["data"]["registrationStatusChanged"].clone())
        .collect();
    assert_eq!(states(&changes), ["PENDING", "IN_PROGRESS", "SUCCEEDED"]);
}

/// GraphiQL's HTTP fetcher (what it uses for a subscription its editor has not
/// re-parsed yet) reads incremental-delivery parts: each result with `hasNext`.
#[tokio::test]
async fn graphiqls_plain_multipart_accept_streams_incremental_delivery_parts() {
    let accept = "application/json, multipart/mixed";
    let parts = multipart_workflow(accept, "multipart/mixed; boundary=\"graphql\"").await;
    assert!(
        parts.iter().all(|part| part["hasNext"] == true),
        "{parts:?}"
    );
    let changes: Vec<Value> = parts
        .iter()
        .map(|part| part["data"]["registrationStatusChanged"].clone())
        .collect();
    assert_eq!(states(&changes), ["PENDING", "IN_PROGRESS", "SUCCEEDED"]);
}

async fn refusal(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("a JSON refusal");
    let code = body["errors"][0]["extensions"]["code"]
        .as_str()
        .map(str::to_owned);
    (status, code.unwrap_or_else(|| body.to_string()))
}

#[tokio::test]
async fn a_subscription_without_a_streaming_accept_is_refused_with_406() {
    let app = fast_app(&[]).await;
    let body = json!({ "query": WATCH, "variables": { "domain": "demo-pending.com" } });
    for accept in ["application/json", "application/graphql-response+json"] {
        let response = post(&app, accept, &[], body.clone()).await;
        assert_eq!(
            refusal(response).await,
            (406, "NOT_ACCEPTABLE".to_owned()),
            "{accept}"
        );
    }
    assert_eq!(app.upstream_calls(), 0);
}

#[tokio::test]
async fn streams_refuse_bad_documents_and_operations_over_the_limits_before_streaming() {
    let app = fast_app(&[]).await;
    let nested = format!("query {}{}", "{ a: __typename ".repeat(60), "}".repeat(60));
    let aliases = (0..400)
        .map(|i| format!("a{i}: __typename"))
        .collect::<Vec<_>>()
        .join(" ");
    let documents = [
        "subscription { nope }".to_owned(),
        "subscription {".to_owned(),
        nested,
        format!("query {{ {aliases} }}"),
    ];
    // Apollo's Accept also allows application/json, whose request errors (when the
    // operation is not known to be a subscription) answer 200 (GraphQL over HTTP);
    // either way as one JSON body, never a stream.
    for (accept, expected) in [(SSE, [400, 400]), (MULTIPART, [200, 400])] {
        for query in &documents {
            let response = post(&app, accept, &[], json!({ "query": query })).await;
            let status = response.status();
            let content_type = response.headers()["content-type"]
                .to_str()
                .unwrap()
                .to_owned();
            let body: Value = response.json().await.expect("a JSON refusal");
            assert!(
                expected.contains(&status.as_u16()),
                "{accept} {query:.60}: {body}"
            );
            assert!(content_type.starts_with("application/"), "{content_type}");
            assert!(body.get("data").is_none() && body["errors"][0]["message"].is_string());
        }
    }
    let response = post(
        &app,
        SSE,
        &[("last-event-id", "not-a-number")],
        json!({ "query": WATCH, "variables": { "domain": "demo-pending.com" } }),
    )
    .await;
    assert_eq!(refusal(response).await, (400, "BAD_REQUEST".to_owned()));
    assert_eq!(app.upstream_calls(), 0);
}

#[tokio::test]
async fn streams_require_the_access_key_like_every_transport() {
    let app = fast_app(&["--access-key", "key-one"]).await;
    let body = json!({ "query": WATCH, "variables": { "domain": "demo-pending.com" } });
    for accept in [SSE, MULTIPART] {
        let response = post(&app, accept, &[], body.clone()).await;
        assert_eq!(
            refusal(response).await,
            (401, "ACCESS_DENIED".to_owned()),
            "{accept}"
        );
        let response = post(&app, accept, &[("x-gateway-key", "wrong")], body.clone()).await;
        assert_eq!(
            refusal(response).await,
            (401, "ACCESS_DENIED".to_owned()),
            "{accept}"
        );
    }
    assert_eq!(app.upstream_calls(), 0);
    let mut reader = sse(&app, &[("x-gateway-key", "key-one")], "demo-pending.com").await;
    let (event, _, data) = sse_event(&mut reader).await;
    assert_eq!(event, "next");
    assert_eq!(
        data["data"]["registrationStatusChanged"]["status"]["state"],
        "PENDING"
    );
}

#[tokio::test]
async fn a_query_over_sse_is_one_event_then_complete() {
    let app = fast_app(&[]).await;
    let query = r#"{ registrationStatus(domain: "demo-pending.com") { state } }"#;
    let response = app
        .http
        .get(app.url(&format!(
            "/graphql?query={}",
            serde_urlencoded::to_string([("q", query)]).unwrap()[2..].to_owned()
        )))
        .header("accept", SSE)
        .send()
        .await
        .unwrap();
    let mut reader = Reader {
        response,
        buffer: String::new(),
        separator: "\n\n",
    };
    let (event, id, data) = sse_event(&mut reader).await;
    assert_eq!((event.as_str(), id), ("next", None));
    assert_eq!(data["data"]["registrationStatus"]["state"], "PENDING");
    assert_eq!(sse_event(&mut reader).await.0, "complete");
}

#[tokio::test]
async fn a_client_accepting_every_kind_gets_json_for_queries_and_a_stream_for_subscriptions() {
    // urql's fetch exchange sends this for every operation.
    const EVERYTHING: &str = "application/graphql-response+json, application/graphql+json, \
        application/json, text/event-stream, multipart/mixed";
    let app = fast_app(&[]).await;
    let query =
        json!({ "query": r#"{ registrationStatus(domain: "demo-pending.com") { state } }"# });
    let response = post(&app, EVERYTHING, &[], query).await;
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/graphql-response+json"),
        "{content_type}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["registrationStatus"]["state"], "PENDING");

    let body = json!({ "query": WATCH, "variables": { "domain": "demo-pending.com" } });
    let response = post(&app, EVERYTHING, &[], body).await;
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
}
