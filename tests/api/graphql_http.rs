//! GraphQL over HTTP as the GraphQL-over-HTTP specification describes it: POST and
//! GET, media types from `Accept`, status codes for request errors, no mutations on GET.

use std::time::Duration;

use registrar_simulator::Faults;
use reqwest::header::{ACCEPT, ALLOW, CONTENT_TYPE};
use serde_json::{Value, json};

use crate::support::{GRAPHQL_RESPONSE_JSON, TestApp};

const QUERY: &str = r#"{ registrationStatus(domain: "demo-succeeded.com") { state } }"#;

fn content_type(response: &reqwest::Response) -> String {
    response.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned()
}

async fn post(app: &TestApp, accept: &str, content_type: &str, body: String) -> reqwest::Response {
    app.http
        .post(app.url("/graphql"))
        .header(ACCEPT, accept)
        .header(CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// The status and `extensions.code` of a refusal, after checking it is a GraphQL
/// error body in JSON with a message.
async fn refusal(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    assert!(
        content_type(&response).contains("json"),
        "{status}: {}",
        content_type(&response)
    );
    let body: Value = response.json().await.unwrap();
    let error = &body["errors"][0];
    assert!(error["message"].is_string(), "{body}");
    (
        status,
        error["extensions"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

async fn get(app: &TestApp, accept: &str, params: &[(&str, &str)]) -> reqwest::Response {
    let url = reqwest::Url::parse_with_params(&app.url("/graphql"), params).unwrap();
    app.http
        .get(url)
        .header(ACCEPT, accept)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn post_answers_in_the_media_type_the_client_accepts() {
    let app = TestApp::builder().spawn().await;
    let body = json!({ "query": QUERY }).to_string();

    let response = post(
        &app,
        GRAPHQL_RESPONSE_JSON,
        "application/json",
        body.clone(),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert!(content_type(&response).starts_with(GRAPHQL_RESPONSE_JSON));
    let expected = json!({ "data": { "registrationStatus": { "state": "SUCCEEDED" } } });
    assert_eq!(response.json::<Value>().await.unwrap(), expected);

    let response = post(
        &app,
        "application/json",
        "application/json; charset=utf-8",
        body.clone(),
    )
    .await;
    assert!(content_type(&response).starts_with("application/json"));
    assert_eq!(response.json::<Value>().await.unwrap(), expected);

    let response = post(&app, "text/html", "application/json", body).await;
    assert_eq!(refusal(response).await, (406, "NOT_ACCEPTABLE".to_owned()));
}

#[tokio::test]
async fn unparseable_and_invalid_documents_are_request_errors() {
    let app = TestApp::builder().spawn().await;
    for query in [
        "{ registrationStatus(",
        "{ noSuchField }",
        r#"{ registrationStatus(domain: 1) { state } }"#,
    ] {
        let body = json!({ "query": query }).to_string();
        let response = post(
            &app,
            GRAPHQL_RESPONSE_JSON,
            "application/json",
            body.clone(),
        )
        .await;
        assert_eq!(response.status(), 400, "{query}");
        let payload: Value = response.json().await.unwrap();
        assert!(
            payload.get("data").is_none(),
            "a request error has no data entry: {payload}"
        );
        assert!(payload["errors"][0]["message"].is_string());

        let legacy = post(&app, "application/json", "application/json", body).await;
        assert_eq!(
            legacy.status(),
            200,
            "application/json answers 200 for well-formed requests"
        );
    }
    assert_eq!(app.upstream_calls(), 0);
}

#[tokio::test]
async fn malformed_http_requests_get_4xx_without_reaching_graphql() {
    let app = TestApp::builder().spawn().await;
    let json = "application/json";
    let query = json!({ "query": QUERY }).to_string();
    let cases = [
        (json, "{not json".to_owned(), 400, "BAD_REQUEST"),
        (json, format!("[{query}]"), 400, "BAD_REQUEST"),
        (
            json,
            json!({ "variables": {} }).to_string(),
            400,
            "BAD_REQUEST",
        ),
        (
            json,
            json!({ "query": QUERY, "variables": [1] }).to_string(),
            400,
            "BAD_REQUEST",
        ),
        ("text/plain", query.clone(), 415, "UNSUPPORTED_MEDIA_TYPE"),
        (
            "application/json; charset=latin1",
            query,
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
    ];
    for (content_type, body, status, code) in cases {
        let response = post(&app, GRAPHQL_RESPONSE_JSON, content_type, body.clone()).await;
        let expected = (status, code.to_owned());
        assert_eq!(refusal(response).await, expected, "{content_type} {body}");
    }
    let bad_variables = [("query", QUERY), ("variables", "[1]")];
    let response = get(&app, GRAPHQL_RESPONSE_JSON, &bad_variables).await;
    assert_eq!(refusal(response).await, (400, "BAD_REQUEST".to_owned()));
    assert_eq!(app.upstream_calls(), 0);
}

#[tokio::test]
async fn get_runs_queries_with_url_parameters() {
    let app = TestApp::builder().spawn().await;
    let query = "query One($d: String!) { registrationStatus(domain: $d) { state } } query Two { __typename }";
    let params = [
        ("query", query),
        ("operationName", "One"),
        ("variables", r#"{"d":"demo-failed.com"}"#),
    ];
    let response = get(&app, GRAPHQL_RESPONSE_JSON, &params).await;
    assert_eq!(response.status(), 200);
    let payload: Value = response.json().await.unwrap();
    assert_eq!(
        payload,
        json!({ "data": { "registrationStatus": { "state": "FAILED" } } })
    );
}

#[tokio::test]
async fn get_refuses_mutations_with_405() {
    let app = TestApp::builder().spawn().await;
    let response = get(
        &app,
        GRAPHQL_RESPONSE_JSON,
        &[("query", "mutation { register }")],
    )
    .await;
    assert_eq!(response.headers()[ALLOW], "POST");
    assert_eq!(
        refusal(response).await,
        (405, "METHOD_NOT_ALLOWED".to_owned())
    );
    let response = get(
        &app,
        GRAPHQL_RESPONSE_JSON,
        &[
            ("query", "query Q { __typename } mutation M { x }"),
            ("operationName", "M"),
        ],
    )
    .await;
    assert_eq!(response.status(), 405);
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    let app = TestApp::builder()
        .args(&["--body-limit", "1024"])
        .spawn()
        .await;
    let padding = " ".repeat(2048);
    let body = json!({ "query": format!("{padding}{QUERY}") }).to_string();
    let response = post(&app, GRAPHQL_RESPONSE_JSON, "application/json", body).await;
    assert_eq!(
        refusal(response).await,
        (413, "PAYLOAD_TOO_LARGE".to_owned())
    );
}

#[tokio::test]
async fn requests_not_answered_in_time_are_refused_with_408() {
    let app = TestApp::builder()
        .args(&["--request-timeout", "100ms"])
        .spawn()
        .await;
    let hang = Faults {
        hang_share: 1.0,
        hang_for: Duration::from_secs(30),
        ..Faults::default()
    };
    app.simulator()
        .set_faults(hang)
        .expect("valid fault settings");
    let body = json!({ "query": QUERY }).to_string();
    let response = post(&app, GRAPHQL_RESPONSE_JSON, "application/json", body).await;
    assert_eq!(refusal(response).await, (408, "REQUEST_TIMEOUT".to_owned()));
}

#[tokio::test]
async fn cors_allows_only_the_configured_origins() {
    let app = TestApp::builder()
        .args(&["--cors-origins", "https://app.example.com"])
        .spawn()
        .await;
    let preflight = |origin: &'static str| {
        app.http
            .request(reqwest::Method::OPTIONS, app.url("/graphql"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let allowed = preflight("https://app.example.com").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let refused = preflight("https://evil.example.net").await.unwrap();
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn health_and_readiness_are_served() {
    let app = TestApp::builder().spawn().await;
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
}

/// `extensions` naming `query` by its SHA-256 (Apollo's automatic persisted queries).
fn persisted(query: &str) -> Value {
    use sha2::{Digest, Sha256};
    let hash: String = Sha256::digest(query.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })
}

#[tokio::test]
async fn persisted_queries_answer_not_found_until_the_document_comes_with_its_hash() {
    let app = TestApp::builder().spawn().await;
    let extensions = persisted(QUERY);
    let by_hash = json!({ "extensions": extensions }).to_string();
    let unknown = post(
        &app,
        GRAPHQL_RESPONSE_JSON,
        "application/json",
        by_hash.clone(),
    )
    .await;
    assert_eq!(
        refusal(unknown).await,
        (400, "PERSISTED_QUERY_NOT_FOUND".to_owned())
    );
    let params = [("extensions", extensions.to_string())];
    let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let unknown = get(&app, "application/json", &params).await;
    assert_eq!(
        refusal(unknown).await,
        (200, "PERSISTED_QUERY_NOT_FOUND".to_owned())
    );

    let mismatched = json!({ "query": "{ __typename }", "extensions": extensions }).to_string();
    let mismatched = post(&app, GRAPHQL_RESPONSE_JSON, "application/json", mismatched).await;
    assert_eq!(refusal(mismatched).await, (400, "BAD_REQUEST".to_owned()));
    let registered = json!({ "query": QUERY, "extensions": extensions }).to_string();
    let registered = post(&app, GRAPHQL_RESPONSE_JSON, "application/json", registered).await;
    assert_eq!(registered.status(), 200);

    for response in [
        post(&app, GRAPHQL_RESPONSE_JSON, "application/json", by_hash).await,
        get(&app, GRAPHQL_RESPONSE_JSON, &params).await,
    ] {
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body["data"]["registrationStatus"]["state"], "SUCCEEDED",
            "{body}"
        );
    }
    let malformed =
        json!({ "extensions": { "persistedQuery": { "version": 2, "sha256Hash": "x" } } });
    let malformed = post(
        &app,
        GRAPHQL_RESPONSE_JSON,
        "application/json",
        malformed.to_string(),
    )
    .await;
    assert_eq!(refusal(malformed).await, (400, "BAD_REQUEST".to_owned()));
}
