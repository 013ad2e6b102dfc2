//! `startRegistration` end to end over real sockets: the front end's whole flow
//! (mutation, then subscription to completion) with the upstream's POST and GET
//! counts, idempotency under concurrency, and every refusal.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{ACCOUNT, TestApp, WsClient, change, connect_ready, spawn_simulator};

const START: &str = r#"mutation Start($domain: String!, $accountId: ID, $years: Int, $autoRenew: Boolean, $privacyMode: PrivacyMode) {
  startRegistration(domain: $domain, accountId: $accountId, years: $years, autoRenew: $autoRenew, privacyMode: $privacyMode) {
    domainName state completed createdAt nextCheckAt
    registration { domainName autoRenew privacyMode expiresAt }
  }
}"#;

/// A sandbox-like gateway: registration enabled, polls every 10 ms without jitter,
/// and a poller kept a while for the subscription that follows the mutation.
async fn registering_app(extra: &[&str]) -> TestApp {
    let mut args = vec![
        "--enable-registration",
        "--poll-initial",
        "10ms",
        "--poll-max",
        "10ms",
        "--poll-jitter",
        "0",
        "--poller-grace",
        "30s",
    ];
    args.extend_from_slice(extra);
    TestApp::builder().args(&args).spawn().await
}

async fn start(app: &TestApp, variables: Value) -> Value {
    app.query(START, variables).await
}

/// Upstream GETs and POSTs the simulator received for `domain` in the test account.
fn upstream_counts(app: &TestApp, domain: &str) -> (u64, u64) {
    let creates = app.simulator().stats().creates;
    let requests = app.simulator().requests_for(ACCOUNT, domain);
    (requests - creates, creates)
}

async fn next_state(client: &mut WsClient) -> Value {
    let message = client.recv().await;
    assert_eq!(message["type"], "next", "{message}");
    change(&message, "1")["status"].clone()
}

const FOLLOW: &str = r#"subscription($domain: String!) {
  registrationStatusChanged(domain: $domain) { status { state completed nextCheckAt } }
}"#;

async fn follow(app: &TestApp, domain: &str) -> WsClient {
    let mut client = connect_ready(app).await;
    let payload = json!({ "query": FOLLOW, "variables": { "domain": domain } });
    client
        .send(json!({ "type": "subscribe", "id": "1", "payload": payload }))
        .await;
    client
}

#[tokio::test]
async fn a_front_end_starts_a_registration_and_follows_it_to_success() {
    let app = registering_app(&[]).await;
    let domain = "my-new-startup.com";
    let body = start(
        &app,
        json!({ "domain": domain, "years": 2, "autoRenew": true }),
    )
    .await;
    let started = &body["data"]["startRegistration"];
    assert_eq!(started["state"], "PENDING", "{body}");
    assert_eq!(started["completed"], false);
    assert!(
        started["nextCheckAt"].is_string(),
        "the poller has a plan: {body}"
    );
    assert_eq!(
        upstream_counts(&app, domain),
        (1, 1),
        "one status read found no workflow, then one POST"
    );

    let mut client = follow(&app, domain).await;
    assert_eq!(next_state(&mut client).await["state"], "PENDING");
    app.simulator()
        .advance_clock(Duration::from_secs(2))
        .unwrap();
    let moving = next_state(&mut client).await;
    assert_eq!(moving["state"], "IN_PROGRESS");
    assert!(moving["nextCheckAt"].is_string());
    app.simulator()
        .advance_clock(Duration::from_secs(3))
        .unwrap();
    let done = next_state(&mut client).await;
    assert_eq!(
        done,
        json!({ "state": "SUCCEEDED", "completed": true, "nextCheckAt": null })
    );
    assert_eq!(
        client.recv().await,
        json!({ "type": "complete", "id": "1" })
    );

    app.pollers.until_idle().await;
    let (gets, posts) = upstream_counts(&app, domain);
    assert_eq!(posts, 1, "never posted again");
    assert!(gets >= 3, "polls saw IN_PROGRESS and SUCCEEDED: {gets}");
    let query = r#"query($domain: String!) { registrationStatus(domain: $domain) {
        state nextCheckAt registration { autoRenew expiresAt } } }"#;
    let read = app.query(query, json!({ "domain": domain })).await;
    assert_eq!(
        read["data"]["registrationStatus"]["registration"]["autoRenew"], true,
        "{read}"
    );
    assert_eq!(
        read["data"]["registrationStatus"]["nextCheckAt"],
        Value::Null
    );
    assert_eq!(
        upstream_counts(&app, domain),
        (gets, 1),
        "the terminal status is served from cache"
    );
    let again = start(&app, json!({ "domain": domain })).await;
    assert_eq!(again["data"]["startRegistration"]["state"], "SUCCEEDED");
    assert_eq!(
        upstream_counts(&app, domain),
        (gets, 1),
        "idempotent: no POST"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_identical_starts_make_one_post() {
    let app = registering_app(&[]).await;
    let domain = "concurrent-startup.com";
    let starts = (0..50).map(|_| start(&app, json!({ "domain": domain })));
    let answers = futures::future::join_all(starts).await;
    let created: Vec<&Value> = answers
        .iter()
        .map(|body| &body["data"]["startRegistration"]["createdAt"])
        .collect();
    assert!(created[0].is_string(), "{}", answers[0]);
    assert!(created.iter().all(|at| *at == created[0]), "one workflow");
    assert_eq!(upstream_counts(&app, domain), (1, 1));
}

#[tokio::test]
async fn an_existing_workflow_is_returned_and_never_posted_again() {
    let app = registering_app(&[]).await;
    let body = start(&app, json!({ "domain": "demo-blocked.com" })).await;
    assert_eq!(
        body["data"]["startRegistration"]["state"], "PENDING",
        "{body}"
    );
    assert_eq!(app.simulator().stats().creates, 0);
}

#[tokio::test]
async fn a_workflow_ending_in_an_unknown_completed_state_ends_the_subscription() {
    let app = registering_app(&[]).await;
    let mut client = follow(&app, "demo-unknown-completed.com").await;
    assert_eq!(next_state(&mut client).await["state"], "PENDING");
    app.simulator()
        .advance_clock(Duration::from_secs(5))
        .unwrap();
    assert_eq!(next_state(&mut client).await["state"], "IN_PROGRESS");
    app.simulator()
        .advance_clock(Duration::from_secs(10))
        .unwrap();
    let ended = next_state(&mut client).await;
    assert_eq!(
        ended,
        json!({ "state": "UNKNOWN", "completed": true, "nextCheckAt": null })
    );
    assert_eq!(
        client.recv().await,
        json!({ "type": "complete", "id": "1" })
    );
    app.pollers.until_idle().await;
}

/// The one error of `body`'s `startRegistration`, with `data` null.
fn refusal(body: &Value) -> (&str, &str) {
    assert_eq!(body["data"], Value::Null, "{body}");
    let error = &body["errors"][0];
    (
        error["extensions"]["code"].as_str().unwrap(),
        error["message"].as_str().unwrap(),
    )
}

#[tokio::test]
async fn with_real_credentials_registration_is_off_unless_enabled() {
    let app = TestApp::builder().spawn().await;
    let body = start(&app, json!({ "domain": "my-new-startup.com" })).await;
    let (code, message) = refusal(&body);
    assert_eq!(code, "REGISTRATION_DISABLED");
    assert!(message.contains("--enable-registration"), "{message}");
    assert_eq!(app.upstream_calls(), 0, "nothing asked upstream");
}

#[tokio::test]
async fn bad_input_is_refused_before_any_upstream_call() {
    let app = registering_app(&[]).await;
    for variables in [
        json!({ "domain": "not a domain" }),
        json!({ "domain": "fine.com", "years": 11 }),
        json!({ "domain": "fine.com", "years": 0 }),
        json!({ "domain": "fine.com", "accountId": "not/an/account" }),
    ] {
        let body = start(&app, variables.clone()).await;
        assert_eq!(refusal(&body).0, "BAD_USER_INPUT", "{variables}");
    }
    assert_eq!(app.upstream_calls(), 0);
}

#[tokio::test]
async fn upstream_create_refusals_carry_stable_codes_and_the_upstreams_messages() {
    let app = registering_app(&[]).await;
    let body = start(&app, json!({ "domain": "shop.unsupported" })).await;
    assert_eq!(
        refusal(&body),
        (
            "EXTENSION_NOT_SUPPORTED",
            "Registration is not supported for this extension"
        )
    );
    let body = start(
        &app,
        json!({ "domain": "shop.com", "accountId": "00000000000000000000000000000001" }),
    )
    .await;
    assert_eq!(
        refusal(&body),
        (
            "CONTACT_REQUIRED",
            "No registrant contact provided and no default address book entry found for this account."
        )
    );
    assert_eq!(body["errors"][0]["extensions"]["upstreamStatus"], 400);
}

#[tokio::test]
async fn mutations_are_refused_over_get_and_run_over_a_websocket_only_as_mutations() {
    let app = registering_app(&[]).await;
    let mutation = r#"mutation { startRegistration(domain: "via-get.com") { state } }"#;
    let url = reqwest::Url::parse_with_params(&app.url("/graphql"), [("query", mutation)]).unwrap();
    let response = app.http.get(url).send().await.unwrap();
    assert_eq!(response.status(), 405);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "METHOD_NOT_ALLOWED"
    );

    // graphql-ws clients send mutations in `subscribe` messages: that runs once.
    let mut client = connect_ready(&app).await;
    let mutation = r#"mutation { startRegistration(domain: "via-websocket.com") { state } }"#;
    client
        .send(json!({ "type": "subscribe", "id": "m", "payload": { "query": mutation } }))
        .await;
    let message = client.recv().await;
    assert_eq!(
        message["payload"]["data"]["startRegistration"]["state"], "PENDING",
        "{message}"
    );
    assert_eq!(
        client.recv().await,
        json!({ "type": "complete", "id": "m" })
    );
    assert_eq!(app.simulator().stats().creates, 1);
    // A subscription document cannot reach the mutation field.
    let sneaky = r#"subscription { startRegistration(domain: "sneaky.com") { state } }"#;
    client
        .send(json!({ "type": "subscribe", "id": "s", "payload": { "query": sneaky } }))
        .await;
    assert_eq!(client.recv().await["type"], "error");
    assert_eq!(app.simulator().stats().creates, 1);
    assert_eq!(app.simulator().requests_for(ACCOUNT, "via-get.com"), 0);
}

#[tokio::test]
async fn mutations_go_through_the_same_access_keys_and_credential_modes_as_queries() {
    let app = registering_app(&["--access-key", "k-123"]).await;
    let request = json!({ "query": START, "variables": { "domain": "keyed.com" } });
    let response = app.post_json(request.clone()).await;
    assert_eq!(response.status(), 401);
    let response = app
        .post_json_with(&[("x-gateway-key", "k-123")], request)
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.simulator().stats().creates, 1);

    let simulator = spawn_simulator().await.handle;
    let pass_through = TestApp::builder()
        .simulator(simulator)
        .pass_through()
        .args(&["--enable-registration"])
        .spawn()
        .await;
    let body = start(&pass_through, json!({ "domain": "mine.com" })).await;
    assert_eq!(refusal(&body).0, "UNAUTHENTICATED");
    assert_eq!(pass_through.upstream_calls(), 0);
}

#[tokio::test]
async fn the_sandbox_registers_by_default() {
    let app = TestApp::builder().sandbox().spawn().await;
    let simulator = app.simulator().clone();
    let address = app.address;
    let body: Value = reqwest::Client::new()
        .post(format!("http://{address}/graphql"))
        .json(&json!({ "query": r#"mutation { startRegistration(domain: "sandbox-startup.com") { domainName completed } }"# }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body,
        json!({ "data": { "startRegistration": { "domainName": "sandbox-startup.com", "completed": false } } })
    );
    assert_eq!(simulator.stats().creates, 1);
    app.begin_shutdown();
    app.stopped().await;
}

#[tokio::test]
async fn the_registrar_sandbox_api_family_is_reachable() {
    let app = TestApp::builder()
        .args(&["--registrar-api", "registrar-sandbox"])
        .spawn()
        .await;
    let body = app.status_of("demo-succeeded.com").await;
    assert_eq!(
        body["data"]["registrationStatus"]["state"], "SUCCEEDED",
        "{body}"
    );
}
