//! Errors a client meets, in the words its user reads: a GraphQL syntax error as
//! graphql-js words it (one line, the place in `locations`) on every transport, a
//! batched request told that batching is not supported, and a websocket client
//! pointed at the explorer's `/` told to use `/graphql`.

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::{GRAPHQL_RESPONSE_JSON, TestApp, connect_ready};

/// A document missing its last `}`.
const UNFINISHED: &str = r#"{ registrationStatus(domain: "demo-succeeds.com") { state }"#;

fn assert_graphql_js_syntax_error(error: &Value) {
    assert_eq!(
        error["message"], "Syntax Error: Expected selection, found <EOF>.",
        "{error}"
    );
    assert_eq!(error["locations"], json!([{ "line": 1, "column": 60 }]));
    assert_eq!(error["extensions"]["code"], "GRAPHQL_PARSE_FAILED");
}

#[tokio::test]
async fn a_syntax_error_is_one_line_with_its_location_over_post_get_and_websockets() {
    let app = TestApp::builder().spawn().await;
    let post = app
        .http
        .post(app.url("/graphql"))
        .header(ACCEPT, GRAPHQL_RESPONSE_JSON)
        .json(&json!({ "query": UNFINISHED }))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 400);
    assert_graphql_js_syntax_error(&post.json::<Value>().await.unwrap()["errors"][0]);

    let url = reqwest::Url::parse_with_params(&app.url("/graphql"), [("query", UNFINISHED)]);
    let get = app
        .http
        .get(url.unwrap())
        .header(ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 200);
    assert_graphql_js_syntax_error(&get.json::<Value>().await.unwrap()["errors"][0]);

    let mut socket = connect_ready(&app).await;
    socket.start("1", json!({ "query": UNFINISHED })).await;
    let answer = socket.recv().await;
    assert_eq!(answer["type"], "error", "{answer}");
    assert_graphql_js_syntax_error(&answer["payload"][0]);
    assert_eq!(app.upstream_calls(), 0);
}

#[tokio::test]
async fn a_batched_request_is_told_batching_is_not_supported() {
    let app = TestApp::builder().spawn().await;
    let one = json!({ "query": "{ __typename }" });
    let response = app
        .http
        .post(app.url("/graphql"))
        .header(ACCEPT, GRAPHQL_RESPONSE_JSON)
        .header(CONTENT_TYPE, "application/json")
        .body(json!([one, one]).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    let error = &body["errors"][0];
    assert_eq!(error["extensions"]["code"], "BAD_REQUEST");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.starts_with("batched requests (a JSON array of operations) are not supported"),
        "{message}"
    );
}

#[tokio::test]
async fn a_websocket_to_the_explorer_page_is_refused_with_a_pointer_to_graphql() {
    let app = TestApp::builder().spawn().await;
    for path in ["/", "/graphq"] {
        let mut request = format!("ws://{}{path}", app.address)
            .into_client_request()
            .unwrap();
        request.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        let error = tokio_tungstenite::connect_async(request)
            .await
            .expect_err("the upgrade is refused");
        let tokio_tungstenite::tungstenite::Error::Http(response) = error else {
            panic!("not an HTTP answer: {error}");
        };
        assert_eq!(response.status(), 400, "{path}");
        let body: Value = serde_json::from_slice(response.body().as_deref().unwrap()).unwrap();
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(
            message.contains("GraphQL over websockets is at /graphql"),
            "{path}: {message}"
        );
    }
    // The page itself is still the page.
    let page = app.http.get(app.url("/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
}
