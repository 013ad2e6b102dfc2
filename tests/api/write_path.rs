//! The write path against a Cloudflare-shaped stub of the test's own (the simulator
//! would hide these behaviours): a registration POST is sent once whatever becomes
//! of its answer, a failed registration is retried only when asked, contacts reach
//! the upstream body, a long-blocked registration is watched, a TLS failure is
//! named as one, and a 429 without `Retry-After` keeps the upstream's word.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures::future::join_all;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::support::{
    Canned, STUB_ACCOUNT, Stub, TestApp, change, connect_ready_to, spawn_simulator,
};
use registrar_simulator::Faults;

/// The gateway in front of a stub, registration enabled; stops when dropped.
struct Gateway {
    address: SocketAddr,
    stub: Stub,
    _running: TestApp,
}

async fn gateway(extra: &[&str]) -> Gateway {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}/client/v4", listener.local_addr().unwrap());
    gateway_at(listener, &base_url, extra).await
}

async fn gateway_at(listener: TcpListener, base_url: &str, extra: &[&str]) -> Gateway {
    let stub = Stub::default();
    tokio::spawn(stub.clone().serve(listener));
    let running = TestApp::builder()
        .upstream(base_url)
        .token("stub-token")
        .args(&["--account-id", STUB_ACCOUNT, "--enable-registration"])
        .args(extra)
        .spawn()
        .await;
    Gateway {
        address: running.address,
        stub,
        _running: running,
    }
}

const START: &str = r#"mutation($domain: String!, $retryFailed: Boolean! = false, $contacts: RegistrationContactsInput) {
  startRegistration(domain: $domain, retryFailed: $retryFailed, contacts: $contacts) { domainName state completed }
}"#;

const STATUS: &str = r#"query($domain: String!, $accountId: ID) {
  registrationStatus(domain: $domain, accountId: $accountId) { state }
}"#;

impl Gateway {
    async fn graphql(&self, query: &str, variables: Value) -> Value {
        let response = reqwest::Client::new()
            .post(format!("http://{}/graphql", self.address))
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .unwrap();
        response.json().await.unwrap()
    }

    async fn start(&self, variables: Value) -> Value {
        self.graphql(START, variables).await
    }

    async fn state(&self, domain: &str) -> Value {
        let body = self.graphql(STATUS, json!({ "domain": domain })).await;
        body["data"]["registrationStatus"]["state"].clone()
    }

    fn posts(&self) -> usize {
        self.stub.count("POST", "/registrations")
    }
}

fn error_code(body: &Value) -> &Value {
    &body["errors"][0]["extensions"]["code"]
}

fn not_found() -> Canned {
    Canned::example("not_found")
}

#[tokio::test]
async fn a_lost_or_ambiguous_create_answer_is_read_back_from_the_status_never_posted_again() {
    let app = gateway(&["--upstream-timeout", "1s"]).await;
    let running = || vec![Canned::example("in_progress")];
    let html_502 = Canned {
        headers: vec![("content-type".into(), "text/html".into())],
        ..Canned::raw(502, "<html><body>502 Bad Gateway</body></html>")
    };
    let conflict = Canned::raw(
        409,
        r#"{"success":false,"errors":[{"code":10000,"message":"A registration is already in progress"}],"messages":[],"result":null}"#,
    );
    let cases = [
        // Creates the workflow, then answers long after the gateway's timeout.
        (
            "late.example",
            Canned::example("create_202_still_processing")
                .revealing("late.example", running())
                .after(Duration::from_secs(25)),
        ),
        // Creates the workflow, then the edge answers 502.
        (
            "bad-gateway.example",
            html_502.revealing("bad-gateway.example", running()),
        ),
        // 409 while the workflow becomes visible: the first read still finds none.
        (
            "conflict.example",
            conflict.revealing(
                "conflict.example",
                vec![not_found(), Canned::example("in_progress")],
            ),
        ),
    ];
    for (domain, post) in cases {
        app.stub.status(domain, vec![not_found()]);
        app.stub.on("POST", "/registrations", vec![post]);
        let posts_before = app.posts();
        let started = Instant::now();
        let body = app.start(json!({ "domain": domain })).await;
        assert_eq!(
            body["data"]["startRegistration"],
            json!({ "domainName": domain, "state": "IN_PROGRESS", "completed": false }),
            "{domain}: {body}"
        );
        assert!(started.elapsed() < Duration::from_secs(20), "{domain}");
        assert_eq!(app.posts() - posts_before, 1, "{domain}: exactly one POST");
        assert_eq!(app.state(domain).await, "IN_PROGRESS", "{domain}");
    }
}

#[tokio::test]
async fn a_create_whose_outcome_cannot_be_told_answers_so_and_keeps_watching() {
    let app = gateway(&[]).await;
    let domain = "unknown.example";
    app.stub.status(domain, vec![not_found()]);
    app.stub.on(
        "POST",
        "/registrations",
        vec![Canned::raw(503, "<html>503</html>")],
    );
    let body = app.start(json!({ "domain": domain })).await;
    assert_eq!(error_code(&body), "REGISTRATION_OUTCOME_UNKNOWN", "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("keeps watching"), "{message}");
    assert_eq!(app.posts(), 1);
    // Nothing was cached for the domain: once the workflow shows, a read finds it.
    app.stub
        .status(domain, vec![Canned::example("in_progress")]);
    assert_eq!(app.state(domain).await, "IN_PROGRESS");
    assert_eq!(app.posts(), 1);
}

#[tokio::test]
async fn a_failed_registration_is_posted_again_once_and_only_when_asked() {
    let app = gateway(&[]).await;
    let domain = "failed.example";
    app.stub.status(domain, vec![Canned::example("failed")]);
    app.stub.on(
        "POST",
        "/registrations",
        vec![
            Canned::example("create_202_still_processing")
                .revealing(domain, vec![Canned::example("in_progress")]),
        ],
    );
    let starts = |retry_failed: bool| {
        join_all(
            (0..20).map(|_| app.start(json!({ "domain": domain, "retryFailed": retry_failed }))),
        )
    };
    for body in starts(false).await {
        assert_eq!(
            body["data"]["startRegistration"]["state"], "FAILED",
            "{body}"
        );
    }
    assert_eq!(app.posts(), 0, "without retryFailed nothing is posted");
    for body in starts(true).await {
        assert_eq!(
            body["data"]["startRegistration"]["state"], "IN_PROGRESS",
            "{body}"
        );
    }
    assert_eq!(app.posts(), 1, "20 retries at once make one POST");
}

#[tokio::test]
async fn contacts_reach_the_upstream_body_and_invalid_ones_nothing() {
    let app = gateway(&[]).await;
    let domain = "contacts.example";
    app.stub.status(domain, vec![not_found()]);
    app.stub.on(
        "POST",
        "/registrations",
        vec![Canned::example("create_202_still_processing")],
    );
    let contact = |phone: &str| {
        json!({
            "email": "owner@example.com",
            "phone": phone,
            "postalInfo": {
                "name": "Ada Owner",
                "organization": "Example Ltd",
                "address": { "street": "1 Main St", "city": "Springfield", "state": "IL",
                             "postalCode": "62701", "countryCode": "us" }
            }
        })
    };
    let invalid = app
        .start(json!({ "domain": domain, "contacts": { "registrant": contact("555-1234") } }))
        .await;
    assert_eq!(error_code(&invalid), "BAD_USER_INPUT", "{invalid}");
    let message = invalid["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("contacts.registrant.phone "),
        "{message}"
    );
    assert!(
        !message.contains("555-1234"),
        "the value is not echoed: {message}"
    );
    assert_eq!(app.posts(), 0);

    let body = app
        .start(json!({ "domain": domain, "contacts": { "registrant": contact("+1.5555555555") } }))
        .await;
    assert_eq!(
        body["data"]["startRegistration"]["state"], "IN_PROGRESS",
        "{body}"
    );
    let sent = app.stub.bodies("POST", "/registrations");
    assert_eq!(sent.len(), 1);
    let registrant = &sent[0]["contacts"]["registrant"];
    assert_eq!(registrant["email"], "owner@example.com");
    assert_eq!(registrant["phone"], "+1.5555555555");
    assert_eq!(registrant["postal_info"]["address"]["country_code"], "US");
    assert_eq!(registrant["postal_info"]["address"]["postal_code"], "62701");
    assert_eq!(sent[0]["contacts"].get("administrator"), None);
}

#[tokio::test]
async fn a_new_subscriber_to_a_long_blocked_registration_gets_it_and_stays_subscribed() {
    let app = gateway(&[]).await;
    let domain = "long-blocked.example";
    let two_hours_ago = (chrono::Utc::now() - chrono::TimeDelta::hours(2)).to_rfc3339();
    let body = json!({"success": true, "errors": [], "messages": [], "result": {
        "state": "blocked", "completed": false,
        "created_at": "2025-10-27T10:00:00Z", "updated_at": two_hours_ago,
        "links": { "self": format!("/accounts/{STUB_ACCOUNT}/registrar/registrations/{domain}/registration-status") },
        "context": { "domain_name": domain, "blocked_by": "registry",
                     "detail": "Awaiting registry confirmation. This may take up to 24 hours." }
    }});
    app.stub
        .status(domain, vec![Canned::raw(200, &body.to_string())]);
    let mut client = connect_ready_to(app.address).await;
    let query = r#"subscription($domain: String!) { registrationStatusChanged(domain: $domain) { status { state } } }"#;
    client
        .send(json!({ "type": "subscribe", "id": "1", "payload": { "query": query, "variables": { "domain": domain } } }))
        .await;
    let first = client.recv().await;
    assert_eq!(change(&first, "1")["status"]["state"], "BLOCKED", "{first}");
    // Eight seconds on, nothing more: no error, no completion.
    let more = tokio::time::timeout(Duration::from_secs(8), client.recv()).await;
    assert!(more.is_err(), "the subscription ended or changed: {more:?}");
}

#[tokio::test]
async fn an_https_base_url_on_a_plain_http_port_answers_upstream_tls_at_once() {
    // A plain-HTTP server (the simulator) answers the TLS hello with an HTTP 400.
    let plain = spawn_simulator().await;
    let base_url = format!("https://{}/client/v4", plain.handle.local_addr());
    let unused = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let app = gateway_at(unused, &base_url, &[]).await;
    let started = Instant::now();
    let body = app
        .graphql(STATUS, json!({ "domain": "example.com" }))
        .await;
    let took = started.elapsed();
    assert_eq!(error_code(&body), "UPSTREAM_TLS", "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("certificate or TLS problem"), "{message}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[tokio::test]
async fn a_429_without_retry_after_reaches_the_user_with_the_upstreams_status_and_codes() {
    let app = gateway(&[]).await;
    let mut limited = Canned::example("rate_limited");
    limited
        .headers
        .retain(|(name, _)| !name.eq_ignore_ascii_case("retry-after"));
    app.stub.status("example.com", vec![limited]);
    let body = app
        .graphql(STATUS, json!({ "domain": "example.com" }))
        .await;
    let extensions = &body["errors"][0]["extensions"];
    assert_eq!(extensions["code"], "UPSTREAM_RATE_LIMITED", "{body}");
    assert_eq!(extensions["upstreamStatus"], 429, "{body}");
    assert_eq!(extensions["upstreamErrors"][0]["code"], 971, "{body}");
    assert_eq!(app.stub.status_count("example.com"), 1, "not retried");
}

#[tokio::test]
async fn account_ids_are_32_hex_characters_and_one_spelling() {
    let app = gateway(&[]).await;
    app.stub
        .status("example.com", vec![Canned::example("in_progress")]);
    let read = |account: &str| {
        app.graphql(
            STATUS,
            json!({ "domain": "example.com", "accountId": account }),
        )
    };
    let upper = read(&STUB_ACCOUNT.to_uppercase()).await;
    assert_eq!(
        upper["data"]["registrationStatus"]["state"], "IN_PROGRESS",
        "{upper}"
    );
    let lower = read(STUB_ACCOUNT).await;
    assert_eq!(lower["data"]["registrationStatus"]["state"], "IN_PROGRESS");
    assert_eq!(app.stub.status_count("example.com"), 1, "one cache entry");
    for bad in ["abc", "023e105f4ecef8ad9ca31a8372d0c35z"] {
        assert_eq!(error_code(&read(bad).await), "BAD_USER_INPUT", "{bad}");
    }
    assert_eq!(app.stub.status_count("example.com"), 1);
}

/// The same reconciliation against the simulator's create faults: each create acts,
/// then its answer comes too late, as a 502, or as a 409.
#[tokio::test]
async fn the_simulators_lost_create_answers_are_reconciled_with_one_create_each() {
    let app = TestApp::builder()
        .args(&["--enable-registration", "--upstream-timeout", "1s"])
        .spawn()
        .await;
    let faults = [
        Faults {
            create_delay: Duration::from_secs(3),
            ..Faults::default()
        },
        Faults {
            create_bad_gateway_share: 1.0,
            ..Faults::default()
        },
        Faults {
            create_conflict_share: 1.0,
            ..Faults::default()
        },
    ];
    for (index, fault) in faults.into_iter().enumerate() {
        let domain = format!("lost-{index}.example");
        app.simulator().set_faults(fault).unwrap();
        let creates_before = app.simulator().stats().creates;
        let body = app.query(START, json!({ "domain": domain })).await;
        assert_eq!(
            body["data"]["startRegistration"]["state"], "PENDING",
            "{domain}: {body}"
        );
        assert_eq!(
            app.simulator().stats().creates - creates_before,
            1,
            "{domain}"
        );
    }
}

/// The simulator's repeat create after `failed` starts a new workflow; the gateway
/// asks for one only with `retryFailed`.
#[tokio::test]
async fn a_failed_simulated_registration_is_retried_only_when_asked() {
    let app = TestApp::builder()
        .args(&["--enable-registration"])
        .spawn()
        .await;
    let domain = "retry.example";
    app.simulator()
        .add_workflow(crate::support::ACCOUNT, domain, "fails")
        .unwrap();
    app.simulator()
        .advance_clock(Duration::from_secs(60))
        .unwrap();
    let plain = app.query(START, json!({ "domain": domain })).await;
    assert_eq!(
        plain["data"]["startRegistration"]["state"], "FAILED",
        "{plain}"
    );
    assert_eq!(app.simulator().stats().creates, 0);
    let retried = app
        .query(START, json!({ "domain": domain, "retryFailed": true }))
        .await;
    assert_eq!(
        retried["data"]["startRegistration"]["state"], "PENDING",
        "{retried}"
    );
    assert_eq!(app.simulator().stats().creates, 1);
}
