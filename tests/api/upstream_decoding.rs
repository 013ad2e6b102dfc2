//! The client's decoding and error classification, checked twice: against the
//! reference's own example bodies (a raw HTTP stub serves every body of
//! `tests/fixtures/upstream-examples.json`, and the seed's own examples, byte for
//! byte with their statuses and headers), and against the simulator, whose encoder
//! is its own (crate `registrar-simulator`), written independently of the client's
//! model. Each test asserts what a GraphQL client of the gateway gets.

use std::net::SocketAddr;

use registrar_gateway::upstream::{Envelope, Registration};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::support::{
    Canned, STUB_ACCOUNT as ACCOUNT, Stub, TestApp, UPSTREAM_EXAMPLES as EXAMPLES,
};

/// The gateway in front of a stub, with registration enabled; stops when dropped.
struct Gateway {
    address: SocketAddr,
    stub: Stub,
    _running: TestApp,
}

async fn gateway(extra: &[&str]) -> Gateway {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stub = Stub::default();
    let base_url = format!("http://{}/client/v4", listener.local_addr().unwrap());
    tokio::spawn(stub.clone().serve(listener));
    let running = TestApp::builder()
        .upstream(&base_url)
        .token("stub-token")
        .args(&["--account-id", ACCOUNT, "--enable-registration"])
        .args(extra)
        .spawn()
        .await;
    Gateway {
        address: running.address,
        stub,
        _running: running,
    }
}

impl Gateway {
    async fn graphql(&self, query: &str, variables: Value) -> Value {
        let response = reqwest::Client::new()
            .post(format!("http://{}/graphql", self.address))
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// `registrationStatus` of `domain` with the fields a front end reads.
    async fn status(&self, domain: &str) -> Value {
        let query = r#"query($domain: String!) { registrationStatus(domain: $domain) {
            state rawState completed links { self resource }
            error { code message } actionRequired { action confirmationSentTo }
            blocked { blockedBy detail } registration { domainName status expiresAt autoRenew }
        } }"#;
        self.graphql(query, json!({ "domain": domain })).await
    }

    async fn start(&self, domain: &str) -> Value {
        let query = r#"mutation($domain: String!) { startRegistration(domain: $domain) {
            state completed registration { domainName status } } }"#;
        self.graphql(query, json!({ "domain": domain })).await
    }
}

/// The one error of a response, asserting there is exactly one.
fn only_error(body: &Value) -> &Value {
    let errors = body["errors"].as_array().expect("an error");
    assert_eq!(errors.len(), 1, "{body}");
    &errors[0]
}

#[tokio::test]
async fn every_documented_workflow_state_reads_as_a_user_expects() {
    let app = gateway(&[]).await;
    let cases = [
        ("pending", "PENDING", false),
        ("in_progress", "IN_PROGRESS", false),
        ("action_required", "ACTION_REQUIRED", false),
        ("blocked", "BLOCKED", false),
        ("succeeded", "SUCCEEDED", true),
        ("succeeded_beta_guide_variant", "SUCCEEDED", true),
        ("failed", "FAILED", true),
        ("update_status_in_progress", "IN_PROGRESS", false),
    ];
    for (example, state, completed) in cases {
        let domain = format!("{}.example", example.replace('_', "-"));
        app.stub.status(&domain, vec![Canned::example(example)]);
        let body = app.status(&domain).await;
        let status = &body["data"]["registrationStatus"];
        assert_eq!(status["state"], state, "{example}: {body}");
        assert_eq!(status["completed"], completed, "{example}");
        assert_eq!(status["rawState"], state.to_lowercase(), "{example}");
    }
    let read = |domain: &str| {
        let app = &app;
        let domain = domain.to_owned();
        async move { app.status(&domain).await["data"]["registrationStatus"].clone() }
    };
    let paused = read("action-required.example").await;
    assert_eq!(
        paused["actionRequired"],
        json!({ "action": "registrant_email_confirmation_pending", "confirmationSentTo": "a***@example.com" })
    );
    assert_eq!(paused["blocked"], Value::Null);
    let blocked = read("blocked.example").await;
    assert_eq!(
        blocked["blocked"],
        json!({ "blockedBy": "registry", "detail": "Awaiting registry confirmation. This may take up to 24 hours." })
    );
    assert_eq!(blocked["actionRequired"], Value::Null);
    let succeeded = read("succeeded.example").await;
    assert_eq!(
        succeeded["registration"],
        json!({ "domainName": "example.com", "status": "active", "expiresAt": "2026-10-27T10:00:00+00:00", "autoRenew": true })
    );
    assert_eq!(
        succeeded["links"],
        json!({ "self": "/accounts/abc/registrar/registrations/example.com/registration-status", "resource": "/accounts/abc/registrar/registrations/example.com" })
    );
    let guide = read("succeeded-beta-guide-variant.example").await;
    assert_eq!(guide["registration"]["domainName"], "acmecorp.dev");
    let failed = read("failed.example").await;
    assert_eq!(
        failed["error"],
        json!({ "code": "registry_rejected", "message": "Registry rejected the registration request." })
    );
}

#[tokio::test]
async fn no_workflow_is_null_at_any_4xx_and_with_an_empty_source() {
    let app = gateway(&[]).await;
    let seed_example = r#"{"errors":[{"code":10000,"message":"No workflow found for example.com"}],"messages":[],"result":null,"success":false}"#;
    let no_pointer = r#"{"success":false,"errors":[{"code":10000,"message":"No workflow found for example.com","source":{},"documentation_url":"https://developers.cloudflare.com/api/"}],"messages":[],"result":null}"#;
    let cases = [
        ("fixture-404.example", Canned::example("not_found")),
        ("seed-400.example", Canned::raw(400, seed_example)),
        ("seed-403.example", Canned::raw(403, seed_example)),
        ("seed-422.example", Canned::raw(422, seed_example)),
        ("empty-source.example", Canned::raw(404, no_pointer)),
    ];
    for (domain, canned) in cases {
        app.stub.status(domain, vec![canned]);
        let body = app.status(domain).await;
        assert_eq!(
            body,
            json!({ "data": { "registrationStatus": null } }),
            "{domain}"
        );
    }
}

#[tokio::test]
async fn refusals_keep_their_class_and_the_upstreams_codes_and_messages() {
    // One credential meets every refusal in turn: the local memory of a refused
    // credential would answer the later ones with the first.
    let app = gateway(&["--upstream-retries", "0", "--refused-credential-ttl", "0s"]).await;
    let cases = [
        (
            "invalid_domain_name",
            "UPSTREAM_REJECTED",
            400,
            10000,
            "Invalid domain name",
        ),
        (
            "auth_error",
            "UPSTREAM_AUTH",
            403,
            10000,
            "Authentication error",
        ),
        (
            "auth_missing_headers",
            "UPSTREAM_AUTH",
            400,
            9106,
            "Missing X-Auth-Key, X-Auth-Email or Authorization headers",
        ),
        (
            "auth_malformed_bearer",
            "UPSTREAM_AUTH",
            400,
            6003,
            "Invalid request headers",
        ),
        (
            "auth_malformed_api_key",
            "UPSTREAM_AUTH",
            400,
            6003,
            "Invalid request headers",
        ),
        (
            "auth_forbidden_account",
            "UPSTREAM_AUTH",
            403,
            9109,
            "Unauthorized to access requested resource",
        ),
        (
            "route_error",
            "UPSTREAM_REJECTED",
            400,
            7003,
            "Could not route to /zones/b5b82f8d72414f849bd96a50e6228ece/dns_records/645577699, perhaps your object identifier is invalid?",
        ),
        // Last: a 429 pauses the credential in the gateway's budget.
        (
            "rate_limited",
            "UPSTREAM_RATE_LIMITED",
            429,
            971,
            "Please wait and consider throttling your request speed",
        ),
    ];
    for (example, code, status, upstream_code, message) in cases {
        let domain = format!("{}.example", example.replace('_', "-"));
        app.stub.status(&domain, vec![Canned::example(example)]);
        let body = app.status(&domain).await;
        assert_eq!(body["data"]["registrationStatus"], Value::Null, "{example}");
        let extensions = &only_error(&body)["extensions"];
        assert_eq!(extensions["code"], code, "{example}: {body}");
        assert_eq!(extensions["upstreamStatus"], status, "{example}");
        assert_eq!(
            extensions["upstreamErrors"][0]["code"], upstream_code,
            "{example}"
        );
        assert_eq!(
            extensions["upstreamErrors"][0]["message"], message,
            "{example}"
        );
        match example {
            "route_error" => assert_eq!(
                extensions["upstreamErrors"][1],
                json!({ "code": 7000, "message": "No route for that URI" })
            ),
            "rate_limited" => assert_eq!(extensions["retryAfterSeconds"], 300),
            _ => {}
        }
    }
}

#[tokio::test]
async fn completed_decides_the_end_whatever_the_state() {
    // Active answers expire at once, so only an answer cached as terminal is reused.
    let app = gateway(&["--cache-ttl-active", "0s", "--cache-ttl-not-found", "0s"]).await;
    let body = |state: &str, completed: bool| {
        let status = json!({
            "state": state, "completed": completed,
            "created_at": "2025-10-27T10:00:00Z", "updated_at": "2025-10-27T10:00:12Z",
            "links": { "self": "/accounts/abc/registrar/registrations/x.example/registration-status" },
        });
        let envelope = json!({ "success": true, "errors": [], "messages": [], "result": status });
        Canned::raw(200, &envelope.to_string())
    };
    app.stub
        .status("ended.example", vec![body("transferred_out", true)]);
    app.stub.status(
        "moving.example",
        vec![body("awaiting_registry_magic", false)],
    );
    for _ in 0..3 {
        let ended = app.status("ended.example").await;
        let ended = &ended["data"]["registrationStatus"];
        assert_eq!(ended["state"], "UNKNOWN");
        assert_eq!(ended["rawState"], "transferred_out");
        assert_eq!(ended["completed"], true);
        let moving = app.status("moving.example").await;
        assert_eq!(moving["data"]["registrationStatus"]["completed"], false);
    }
    assert_eq!(
        app.stub.status_count("ended.example"),
        1,
        "cached as terminal"
    );
    assert_eq!(
        app.stub.status_count("moving.example"),
        3,
        "followed like an active state"
    );
}

#[tokio::test]
async fn like_the_sdks_408_409_and_5xx_are_retried_with_their_retry_after() {
    let app = gateway(&["--upstream-retries", "2"]).await;
    let conflict = r#"{"success":false,"errors":[{"code":1000,"message":"conflict"}],"messages":[],"result":null}"#;
    let mut busy = Canned::raw(503, "<html>busy</html>");
    busy.headers.push(("retry-after-ms".into(), "5".into()));
    let answers = vec![
        Canned::raw(409, conflict),
        busy,
        Canned::example("in_progress"),
    ];
    app.stub.status("retried.example", answers);
    let body = app.status("retried.example").await;
    assert_eq!(
        body["data"]["registrationStatus"]["state"], "IN_PROGRESS",
        "{body}"
    );
    assert_eq!(app.stub.status_count("retried.example"), 3);

    app.stub
        .status("timeout.example", vec![Canned::raw(408, "")]);
    let body = app.status("timeout.example").await;
    assert_eq!(only_error(&body)["extensions"]["upstreamStatus"], 408);
    assert_eq!(
        app.stub.status_count("timeout.example"),
        3,
        "one try and two retries"
    );

    app.stub
        .status("bad-request.example", vec![Canned::raw(400, conflict)]);
    app.status("bad-request.example").await;
    assert_eq!(
        app.stub.status_count("bad-request.example"),
        1,
        "other 4xx are final"
    );
}

#[tokio::test]
async fn create_answers_and_refusals_read_as_a_user_expects() {
    let app = gateway(&["--upstream-retries", "0"]).await;
    let not_found = Canned::example("not_found");
    for domain in [
        "example.com",
        "missing-contact.example",
        "unsupported.example",
    ] {
        app.stub.status(domain, vec![not_found.clone()]);
    }
    app.stub.on(
        "POST",
        "/registrations",
        vec![Canned::example("create_201_completed")],
    );
    let body = app.start("example.com").await;
    assert_eq!(
        body["data"]["startRegistration"],
        json!({ "state": "SUCCEEDED", "completed": true, "registration": { "domainName": "example.com", "status": "active" } })
    );

    let refusals = [
        (
            Canned::example("create_validation_error"),
            "REGISTRATION_INVALID",
            "domain_name is required",
            Some("/domain_name"),
        ),
        (
            Canned::raw(
                400,
                r#"{"errors":[{"code":10000,"message":"No registrant contact provided and no default address book entry found for this account."}],"messages":[],"result":null,"success":false}"#,
            ),
            "CONTACT_REQUIRED",
            "No registrant contact provided and no default address book entry found for this account.",
            None,
        ),
        (
            Canned::raw(
                400,
                r#"{"errors":[{"code":10000,"message":"Registration is not supported for this extension"}],"messages":[],"result":null,"success":false}"#,
            ),
            "EXTENSION_NOT_SUPPORTED",
            "Registration is not supported for this extension",
            None,
        ),
        (
            Canned::raw(
                400,
                r#"{"errors":[{"code":10000,"message":"Domain limit reached: you cannot register more than 100 domains.","source":{"pointer":"/domain_name"}}],"messages":[],"result":null,"success":false}"#,
            ),
            "DOMAIN_LIMIT_REACHED",
            "Domain limit reached: you cannot register more than 100 domains.",
            Some("/domain_name"),
        ),
    ];
    for (index, (canned, code, message, pointer)) in refusals.into_iter().enumerate() {
        let domain = format!("refused-{index}.example");
        app.stub.status(&domain, vec![not_found.clone()]);
        app.stub.on("POST", "/registrations", vec![canned]);
        let body = app.start(&domain).await;
        let error = only_error(&body);
        assert_eq!(error["message"], message, "{code}");
        assert_eq!(error["extensions"]["code"], code, "{body}");
        assert_eq!(error["extensions"]["upstreamStatus"], 400);
        let upstream = &error["extensions"]["upstreamErrors"][0];
        assert_eq!(upstream["pointer"].as_str(), pointer, "{code}");
    }
}

#[tokio::test]
async fn a_202_create_reads_as_a_workflow_still_running() {
    let app = gateway(&[]).await;
    app.stub
        .status("example.com", vec![Canned::example("not_found")]);
    app.stub.on(
        "POST",
        "/registrations",
        vec![Canned::example("create_202_still_processing")],
    );
    let body = app.start("example.com").await;
    assert_eq!(
        body["data"]["startRegistration"],
        json!({ "state": "IN_PROGRESS", "completed": false, "registration": null })
    );
    assert_eq!(app.stub.count("POST", "/registrations"), 1);
}

#[tokio::test]
async fn registrar_sandbox_targets_cloudflares_sandbox_paths() {
    let app = gateway(&["--registrar-api", "registrar-sandbox"]).await;
    let path = "/registrations/example.com/registration-status";
    app.stub.on_family(
        "GET",
        "registrar-sandbox",
        path,
        vec![Canned::example("blocked")],
    );
    let body = app.status("example.com").await;
    assert_eq!(
        body["data"]["registrationStatus"]["state"], "BLOCKED",
        "{body}"
    );
}

#[test]
fn the_list_example_decodes_with_the_clients_model() {
    let examples: Value = serde_json::from_str(EXAMPLES).unwrap();
    let body = serde_json::to_vec(&examples["list_registrations"]["body"]).unwrap();
    let envelope: Envelope<Vec<Registration>> = serde_json::from_slice(&body).unwrap();
    let registrations = envelope.result.unwrap();
    assert_eq!(registrations.len(), 1);
    assert_eq!(registrations[0].domain_name, "example.com");
    assert_eq!(registrations[0].privacy_mode, "redaction");
}

/// Every documented state as the simulator encodes it reads as the reference's
/// examples do: state, completed, links, and each state's own fields.
#[tokio::test]
async fn the_simulators_independent_encoding_reads_like_the_examples() {
    let app = TestApp::builder().spawn().await;
    let query = r#"query($domain: String!) { registrationStatus(domain: $domain) {
        domainName state rawState completed links { self resource }
        error { code message } actionRequired { action confirmationSentTo }
        blocked { blockedBy detail } registration { domainName status autoRenew privacyMode }
    } }"#;
    let cases = [
        ("demo-pending.com", "PENDING", false),
        ("demo-in-progress.com", "IN_PROGRESS", false),
        ("demo-action-required.com", "ACTION_REQUIRED", false),
        ("demo-blocked.com", "BLOCKED", false),
        ("demo-succeeded.com", "SUCCEEDED", true),
        ("demo-failed.com", "FAILED", true),
    ];
    // The simulator's workflows start on the account's first request; the moving
    // demos reach their waiting states 15 to 45 s of workflow time in.
    app.query(query, json!({ "domain": "demo-pending.com" }))
        .await;
    app.simulator()
        .advance_clock(std::time::Duration::from_secs(20))
        .unwrap();
    for (domain, state, completed) in cases {
        let body = app.query(query, json!({ "domain": domain })).await;
        let status = &body["data"]["registrationStatus"];
        assert_eq!(status["state"], state, "{domain}: {body}");
        assert_eq!(status["completed"], completed, "{domain}");
        assert_eq!(status["rawState"], state.to_lowercase(), "{domain}");
        let resource = format!(
            "/accounts/{}/registrar/registrations/{domain}",
            crate::support::ACCOUNT
        );
        assert_eq!(
            status["links"],
            json!({ "self": format!("{resource}/registration-status"), "resource": resource }),
            "{domain}"
        );
        assert_eq!(status["error"].is_null(), state != "FAILED", "{domain}");
        assert_eq!(status["blocked"].is_null(), state != "BLOCKED", "{domain}");
        assert_eq!(
            status["actionRequired"].is_null(),
            state != "ACTION_REQUIRED",
            "{domain}"
        );
        assert_eq!(
            status["registration"].is_null(),
            state != "SUCCEEDED",
            "{domain}"
        );
    }
    let failed = app
        .query(query, json!({ "domain": "demo-failed.com" }))
        .await;
    assert_eq!(
        failed["data"]["registrationStatus"]["error"]["code"],
        "registry_rejected"
    );
    let succeeded = app
        .query(query, json!({ "domain": "demo-succeeded.com" }))
        .await;
    assert_eq!(
        succeeded["data"]["registrationStatus"]["registration"],
        json!({ "domainName": "demo-succeeded.com", "status": "active", "autoRenew": true, "privacyMode": "redaction" })
    );
}
