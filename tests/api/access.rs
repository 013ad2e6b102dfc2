//! Credential modes and gateway access keys, seen from a client: whose credential
//! reaches the upstream, what an unadmitted caller is told, and that callers with
//! different credentials never see each other's cached answers.

use futures::future::join_all;
use registrar_simulator::credential_tag;
use serde_json::{Value, json};

use crate::support::{TOKEN, TestApp};
use crate::support::{spawn_simulator, spawn_simulator_with};
use registrar_simulator::SimulatorSettings;

fn code(body: &Value) -> &Value {
    &body["errors"][0]["extensions"]["code"]
}

#[tokio::test]
async fn a_hundred_pass_through_credentials_never_see_each_others_cached_entry() {
    let simulator = spawn_simulator_with(SimulatorSettings::default().tag_credentials())
        .await
        .handle;
    let app = TestApp::builder()
        .simulator(simulator)
        .pass_through()
        .spawn()
        .await;
    let tokens: Vec<String> = (0..100).map(|i| format!("client-token-{i:03}")).collect();
    let app = &app;
    for round in 0..2 {
        let answers = join_all(tokens.iter().map(|token| async move {
            let authorization = format!("Bearer {token}");
            let (_, body) = app
                .status_with(&[("authorization", &authorization)], "demo-succeeded.com")
                .await;
            (token, body)
        }))
        .await;
        for (token, body) in answers {
            let tag = &body["data"]["registrationStatus"]["context"]["credential_tag"];
            assert_eq!(tag, &json!(credential_tag(token)), "round {round}: {body}");
        }
        assert_eq!(
            app.upstream_calls(),
            100,
            "one call per credential, then each served its own cached entry"
        );
    }
}

#[tokio::test]
async fn pass_through_without_a_credential_is_unauthenticated_and_calls_nobody() {
    let app = TestApp::builder()
        .simulator(spawn_simulator().await.handle)
        .pass_through()
        .spawn()
        .await;
    let (status, body) = app.status_with(&[], "demo-succeeded.com").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(code(&body), "UNAUTHENTICATED", "{body}");
    assert_eq!(body["data"]["registrationStatus"], Value::Null);
    let (status, body) = app
        .status_with(
            &[("authorization", "Basic dXNlcjpwYXNz")],
            "demo-succeeded.com",
        )
        .await;
    assert_eq!(
        status, 401,
        "a malformed credential is refused whole: {body}"
    );
    assert_eq!(code(&body), "UNAUTHENTICATED");
    let (status, body) = app
        .status_with(&[("x-auth-email", "me@example.com")], "demo-succeeded.com")
        .await;
    assert_eq!(
        (status, code(&body).clone()),
        (401, json!("UNAUTHENTICATED"))
    );
    assert_eq!(app.upstream_calls(), 0);
}

#[tokio::test]
async fn pass_through_forwards_a_token_or_a_global_api_key_and_reports_refusals() {
    let simulator =
        spawn_simulator_with(SimulatorSettings::default().refuse_credential("revoked-token"))
            .await
            .handle;
    let app = TestApp::builder()
        .simulator(simulator)
        .pass_through()
        .spawn()
        .await;
    let key_pair = [
        ("x-auth-email", "me@example.com"),
        ("x-auth-key", "0123abcd"),
    ];
    let (_, body) = app.status_with(&key_pair, "demo-succeeded.com").await;
    assert_eq!(
        body["data"]["registrationStatus"]["state"], "SUCCEEDED",
        "{body}"
    );
    let refused = [("authorization", "Bearer revoked-token")];
    let (_, body) = app.status_with(&refused, "demo-succeeded.com").await;
    assert_eq!(code(&body), "UPSTREAM_AUTH", "{body}");
    assert!(!body.to_string().contains("revoked-token"));
}

#[tokio::test]
async fn pass_through_or_server_prefers_the_callers_credential() {
    let simulator = spawn_simulator_with(SimulatorSettings::default().tag_credentials())
        .await
        .handle;
    let app = TestApp::builder()
        .simulator(simulator)
        .args(&["--credential-mode", "pass-through-or-server"])
        .spawn()
        .await;
    let context =
        |body: &Value| body["data"]["registrationStatus"]["context"]["credential_tag"].clone();
    let (_, body) = app.status_with(&[], "demo-succeeded.com").await;
    assert_eq!(context(&body), json!(credential_tag(TOKEN)), "{body}");
    let (_, body) = app
        .status_with(
            &[("authorization", "Bearer own-token")],
            "demo-succeeded.com",
        )
        .await;
    assert_eq!(context(&body), json!(credential_tag("own-token")), "{body}");
}

#[tokio::test]
async fn the_server_mode_ignores_callers_cloudflare_headers() {
    let simulator = spawn_simulator_with(SimulatorSettings::default().tag_credentials())
        .await
        .handle;
    let app = TestApp::builder().simulator(simulator).spawn().await;
    let (_, body) = app
        .status_with(
            &[("authorization", "Bearer someone-else")],
            "demo-succeeded.com",
        )
        .await;
    let tag = &body["data"]["registrationStatus"]["context"]["credential_tag"];
    assert_eq!(tag, &json!(credential_tag(TOKEN)), "{body}");
}

#[tokio::test]
async fn the_server_mode_ignores_unusual_cloudflare_headers_instead_of_refusing() {
    let simulator = spawn_simulator_with(SimulatorSettings::default().tag_credentials())
        .await
        .handle;
    let app = TestApp::builder().simulator(simulator).spawn().await;
    // A proxy's 5,000-character JWT, and an X-Auth-Key with non-ASCII bytes.
    let jwt = format!("Bearer {}", "a".repeat(5_000));
    let latin1 = reqwest::header::HeaderValue::from_bytes(b"cl\xe9-\xfc").unwrap();
    let body = json!({ "query": crate::support::STATUS_QUERY, "variables": { "domain": "demo-succeeded.com" } });
    for (name, value) in [
        (
            "authorization",
            reqwest::header::HeaderValue::from_str(&jwt).unwrap(),
        ),
        ("x-auth-key", latin1),
    ] {
        let response = app
            .http
            .post(app.url("/graphql"))
            .header("content-type", "application/json")
            .header(name, value)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{name}");
        let answer: Value = response.json().await.unwrap();
        let tag = &answer["data"]["registrationStatus"]["context"]["credential_tag"];
        assert_eq!(tag, &json!(credential_tag(TOKEN)), "{name}: {answer}");
    }
    // The same JWT in a websocket connection_init is ignored too.
    let mut socket = crate::support::connect(&app, "graphql-transport-ws").await;
    socket
        .send(json!({ "type": "connection_init", "payload": { "Authorization": jwt } }))
        .await;
    assert_eq!(socket.recv().await["type"], "connection_ack");
}

#[tokio::test]
async fn access_keys_are_required_and_checked_before_any_upstream_call() {
    let app = TestApp::builder()
        .args(&["--access-key", "key-one", "--access-key", "key-two"])
        .spawn()
        .await;
    for headers in [
        vec![],
        vec![("x-gateway-key", "key-three")],
        vec![("authorization", "Bearer nope")],
    ] {
        let (status, body) = app.status_with(&headers, "demo-succeeded.com").await;
        assert_eq!(status, 401, "{headers:?}: {body}");
        assert_eq!(code(&body), "ACCESS_DENIED");
        assert!(body.get("data").is_none(), "{body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(
            message.contains("access key") && !message.contains("key-three"),
            "{message}"
        );
    }
    assert_eq!(app.upstream_calls(), 0);
    for headers in [
        [("x-gateway-key", "key-two")],
        [("authorization", "Bearer key-one")],
    ] {
        let (status, body) = app.status_with(&headers, "demo-succeeded.com").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["registrationStatus"]["state"], "SUCCEEDED");
    }
}

#[tokio::test]
async fn with_pass_through_the_access_key_travels_in_its_own_header() {
    let app = TestApp::builder()
        .simulator(spawn_simulator().await.handle)
        .pass_through()
        .args(&["--access-key", "key-one"])
        .spawn()
        .await;
    let (status, body) = app
        .status_with(&[("authorization", "Bearer key-one")], "demo-succeeded.com")
        .await;
    assert_eq!(
        (status, code(&body).clone()),
        (401, json!("ACCESS_DENIED")),
        "{body}"
    );
    let headers = [
        ("authorization", "Bearer client-token"),
        ("x-gateway-key", "key-one"),
    ];
    let (status, body) = app.status_with(&headers, "demo-succeeded.com").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["registrationStatus"]["state"], "SUCCEEDED");
}
