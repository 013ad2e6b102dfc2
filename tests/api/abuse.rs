//! Known GraphQL abuse shapes, each sent over HTTP (POST and GET) and both
//! websocket protocols: every one is refused with a stable `extensions.code`, at
//! most `MAX_ERRORS` errors in a bounded answer, and no upstream call (the
//! simulator's request counter is the ground truth).

use registrar_gateway::graphql::MAX_ERRORS;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::{Value, json};

use crate::support::{GRAPHQL_RESPONSE_JSON, TestApp, connect};

/// The largest answer any abuse shape may get: a hundred errors with locations.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// The issue's shape: fragments no operation uses, one with conflicting aliases
/// spread many times by another; validation compared every pair (4.7 s of CPU and
/// a 17.6 MB answer for 3.3 KB before the bound).
fn unused_fragment_bomb(spreads: usize, aliases: usize) -> String {
    format!(
        "{{ __typename }} fragment B on Query {{ a:x {}}} fragment X on Query {{ {}}}",
        "a:y ".repeat(aliases),
        "q{...B} ".repeat(spreads)
    )
}

/// Doubling spreads in fragments no operation uses, ending in an unknown fragment.
fn unused_doubling_bomb() -> String {
    let mut query = String::from("{ __typename }");
    for n in 0..60 {
        query.push_str(&format!(
            " fragment F{n} on Query {{ ...F{m} ...F{m} }}",
            m = n + 1
        ));
    }
    query + " fragment F60 on Query { ...Missing }"
}

/// Many operations, each spreading a fragment that spreads many others: the
/// variable rules walk the fragment graph once per operation.
fn operations_times_spreads() -> String {
    let operations: String = (0..1500).map(|n| format!("query q{n}{{...F}}")).collect();
    let spreads = "...G ".repeat(15);
    format!("{operations} fragment F on Query{{{spreads}}} fragment G on Query{{__typename}}")
}

/// The issue's `--max-lookups` bypass: three aliased lists of 50 domains, given
/// as variable defaults (150 lookups against a limit of 100).
fn lookups_in_variable_defaults() -> String {
    let list: Vec<String> = (0..50).map(|n| format!("\"d{n}.com\"")).collect();
    let list = list.join(",");
    let definitions: Vec<String> = (0..3)
        .map(|n| format!("$d{n}: [String!]! = [{list}]"))
        .collect();
    let fields: String = (0..3)
        .map(|n| format!("l{n}: registrationStatuses(domains: $d{n}) {{ state }} "))
        .collect();
    format!("query({}) {{ {fields}}}", definitions.join(", "))
}

/// The abuse corpus: (name, document, the code of its first error).
fn corpus() -> Vec<(&'static str, String, &'static str)> {
    let status = |fields: &str| {
        format!(r#"{{ registrationStatus(domain: "demo-succeeded.com") {{ {fields} }} }}"#)
    };
    vec![
        (
            "unused fragment bomb",
            unused_fragment_bomb(400, 400),
            "OPERATION_TOO_COMPLEX",
        ),
        (
            "unused fragment bomb within the complexity limit",
            unused_fragment_bomb(30, 30),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            "unused doubling fragments",
            unused_doubling_bomb(),
            "OPERATION_TOO_DEEP",
        ),
        (
            "unused fragment cycle",
            "{ __typename } fragment A on Query { ...B } fragment B on Query { ...A }".into(),
            "OPERATION_TOO_DEEP",
        ),
        (
            "operations times spreads",
            operations_times_spreads(),
            "OPERATION_TOO_COMPLEX",
        ),
        (
            "deep list literal",
            format!(
                "{{ registrationStatuses(domains: {}\"a.com\"{}) {{ state }} }}",
                "[".repeat(200),
                "]".repeat(200)
            ),
            "OPERATION_TOO_DEEP",
        ),
        (
            "deep input object literal",
            format!(
                "{{ registrationStatus(domain: \"a.com\", x: {}1{}) {{ state }} }}",
                "{a:".repeat(100),
                "}".repeat(100)
            ),
            "OPERATION_TOO_DEEP",
        ),
        (
            "huge aliases",
            format!(
                "{{ {} }}",
                (0..3000)
                    .map(|n| format!("a{n}:__typename "))
                    .collect::<String>()
            ),
            "TOO_MANY_ROOT_FIELDS",
        ),
        (
            "unknown fields under one root",
            status(&"x ".repeat(900)),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            "directive flood",
            status(&format!("state {}", "@skip(if: false) ".repeat(3000))),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            "unknown directives",
            status(&format!("state {}", "@x ".repeat(10_000))),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            "many unused variables",
            format!(
                "query({}) {{ __typename }}",
                (0..3000).map(|n| format!("$v{n}:Int ")).collect::<String>()
            ),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            "undefined variables",
            status(&format!(
                "state {}",
                (0..2000)
                    .map(|n| format!("@skip(if:$v{n}) "))
                    .collect::<String>()
            )),
            "GRAPHQL_VALIDATION_FAILED",
        ),
        (
            "long string",
            format!(
                r#"{{ registrationStatus(domain: "{}") {{ state }} }}"#,
                "a".repeat(60_000)
            ),
            "BAD_USER_INPUT",
        ),
        (
            "unterminated string",
            format!("{{ a(b: \"{}", "x".repeat(50_000)),
            "GRAPHQL_PARSE_FAILED",
        ),
        ("bracket bomb", "{a".repeat(20_000), "OPERATION_TOO_DEEP"),
        (
            "lookups in variable defaults",
            lookups_in_variable_defaults(),
            "TOO_MANY_LOOKUPS",
        ),
    ]
}

/// The errors of an answer, whatever the transport wrapped them in.
fn errors_of(answer: &Value) -> Vec<Value> {
    let errors = match answer.get("errors") {
        Some(errors) => errors,
        None => answer,
    };
    match errors {
        Value::Array(errors) => errors.clone(),
        other => vec![other.clone()],
    }
}

fn assert_refused(name: &str, transport: &str, answer: &Value, size: usize, code: &str) {
    let errors = errors_of(answer);
    assert_eq!(
        errors[0]["extensions"]["code"], code,
        "{name} over {transport}: {answer:.300}"
    );
    assert!(
        errors.len() <= MAX_ERRORS,
        "{name} over {transport}: {} errors",
        errors.len()
    );
    assert!(
        size <= MAX_ANSWER_BYTES,
        "{name} over {transport}: {size} bytes"
    );
}

async fn over_post(app: &TestApp, query: &str) -> (Value, usize) {
    let response = app
        .http
        .post(app.url("/graphql"))
        .header(ACCEPT, GRAPHQL_RESPONSE_JSON)
        .header(CONTENT_TYPE, "application/json")
        .body(json!({ "query": query }).to_string())
        .send()
        .await
        .unwrap();
    let body = response.bytes().await.unwrap();
    (serde_json::from_slice(&body).unwrap(), body.len())
}

async fn over_get(app: &TestApp, query: &str) -> (Value, usize) {
    let response = app
        .http
        .get(app.url(&format!(
            "/graphql?{}",
            serde_urlencoded::to_string([("query", query)]).unwrap()
        )))
        .send()
        .await
        .unwrap();
    let body = response.bytes().await.unwrap();
    (serde_json::from_slice(&body).unwrap(), body.len())
}

/// Sends `query` as operation "1" over a fresh socket speaking `protocol`; the
/// first answer about it (`error`, or `next`/`data` carrying errors).
async fn over_websocket(app: &TestApp, protocol: &str, query: &str) -> (Value, usize) {
    let mut client = connect(app, protocol).await;
    client
        .send(json!({ "type": "connection_init", "payload": {} }))
        .await;
    assert_eq!(client.recv().await["type"], "connection_ack");
    client.start("1", json!({ "query": query })).await;
    let message = client.recv().await;
    let size = message.to_string().len();
    client.close().await;
    (message["payload"].clone(), size)
}

#[tokio::test]
async fn every_abuse_shape_is_refused_with_a_code_on_every_transport_and_never_reaches_upstream() {
    let app = TestApp::builder().spawn().await;
    for (name, query, code) in corpus() {
        let (answer, size) = over_post(&app, &query).await;
        assert_refused(name, "POST", &answer, size, code);
        // GET URLs are bounded by the HTTP parser, not --body-limit.
        if query.len() < 8 * 1024 {
            let (answer, size) = over_get(&app, &query).await;
            assert_refused(name, "GET", &answer, size, code);
        }
        for protocol in ["graphql-transport-ws", "graphql-ws"] {
            let (answer, size) = over_websocket(&app, protocol, &query).await;
            assert_refused(name, protocol, &answer, size, code);
        }
        assert_eq!(app.upstream_calls(), 0, "{name} reached the upstream");
    }
}
