//! `registrationStatus` and `registrationStatuses` end to end: every state with
//! every field, not found, upstream errors, and input refused before any upstream call.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::spawn_simulator_with;
use crate::support::{ACCOUNT, TestApp};
use registrar_simulator::SimulatorSettings;

fn status(body: &Value) -> &Value {
    assert_eq!(body["errors"], Value::Null, "unexpected errors: {body}");
    &body["data"]["registrationStatus"]
}

fn assert_links(status: &Value, domain: &str) {
    let resource = format!("/accounts/{ACCOUNT}/registrar/registrations/{domain}");
    assert_eq!(status["links"]["resource"], json!(resource));
    assert_eq!(
        status["links"]["self"],
        json!(format!("{resource}/registration-status"))
    );
}

#[tokio::test]
async fn terminal_states_carry_their_registration_or_error() {
    let app = TestApp::builder().spawn().await;

    let body = app.status_of("demo-succeeded.com").await;
    let succeeded = status(&body);
    assert_eq!(succeeded["domainName"], "demo-succeeded.com");
    assert_eq!(succeeded["state"], "SUCCEEDED");
    assert_eq!(succeeded["rawState"], "succeeded");
    assert_eq!(succeeded["completed"], true);
    assert_links(succeeded, "demo-succeeded.com");
    assert_eq!(
        succeeded["registration"]["domainName"],
        "demo-succeeded.com"
    );
    assert_eq!(succeeded["registration"]["status"], "active");
    assert!(succeeded["registration"]["expiresAt"].is_string());
    assert_eq!(succeeded["context"]["domain_name"], "demo-succeeded.com");
    assert_eq!(succeeded["error"], Value::Null);
    assert_eq!(succeeded["actionRequired"], Value::Null);

    let body = app.status_of("demo-failed.com").await;
    let failed = status(&body);
    assert_eq!(failed["state"], "FAILED");
    assert_eq!(failed["completed"], true);
    assert_eq!(failed["error"]["code"], "registry_rejected");
    assert!(
        failed["error"]["message"]
            .as_str()
            .is_some_and(|message| !message.is_empty())
    );
    assert_eq!(failed["registration"], Value::Null);
}

#[tokio::test]
async fn a_workflow_is_followed_through_pending_in_progress_action_required_and_success() {
    let app = TestApp::builder()
        .args(&["--cache-ttl-active", "0s", "--cache-ttl-waiting", "0s"])
        .spawn()
        .await;
    let domain = "demo-action-required.com";

    let body = app.status_of(domain).await;
    let pending = status(&body);
    assert_eq!(
        (pending["state"].clone(), pending["completed"].clone()),
        (json!("PENDING"), json!(false))
    );
    assert_eq!(pending["createdAt"], pending["updatedAt"]);
    assert_links(pending, domain);
    let created_at = pending["createdAt"].clone();

    app.simulator()
        .advance_clock(Duration::from_secs(5))
        .expect("the clock advances");
    let body = app.status_of(domain).await;
    assert_eq!(status(&body)["state"], "IN_PROGRESS");
    assert_eq!(status(&body)["createdAt"], created_at);
    assert_ne!(status(&body)["updatedAt"], created_at);

    app.simulator()
        .advance_clock(Duration::from_secs(10))
        .expect("the clock advances");
    let body = app.status_of(domain).await;
    let paused = status(&body);
    assert_eq!(paused["state"], "ACTION_REQUIRED");
    assert_eq!(paused["completed"], false);
    assert_eq!(
        paused["actionRequired"]["action"],
        "registrant_email_confirmation_pending"
    );
    assert_eq!(
        paused["actionRequired"]["confirmationSentTo"],
        "r***@demo-action-required.com"
    );

    app.simulator()
        .advance_clock(Duration::from_secs(3600))
        .expect("the clock advances");
    let body = app.status_of(domain).await;
    assert_eq!(
        status(&body)["state"],
        "ACTION_REQUIRED",
        "action_required never resolves on its own"
    );

    app.simulator().resolve_action(ACCOUNT, domain).unwrap();
    app.simulator()
        .advance_clock(Duration::from_secs(10))
        .expect("the clock advances");
    let body = app.status_of(domain).await;
    assert_eq!(status(&body)["state"], "SUCCEEDED");
    assert_eq!(status(&body)["registration"]["domainName"], domain);
}

#[tokio::test]
async fn a_blocked_workflow_reports_who_blocks_it() {
    let app = TestApp::builder()
        .args(&["--cache-ttl-active", "0s"])
        .spawn()
        .await;
    app.status_of("demo-blocked.com").await;
    app.simulator()
        .advance_clock(Duration::from_secs(15))
        .expect("the clock advances");
    let body = app.status_of("demo-blocked.com").await;
    let blocked = status(&body);
    assert_eq!(blocked["state"], "BLOCKED");
    assert_eq!(blocked["context"]["blocked_by"], "registry");
    assert!(blocked["context"]["detail"].is_string());
    assert_eq!(blocked["completed"], false);
}

#[tokio::test]
async fn freshness_says_when_the_status_was_fetched() {
    let app = TestApp::builder().spawn().await;
    let body = app.status_of("demo-pending.com").await;
    let pending = status(&body);
    let fetched_at =
        chrono::DateTime::parse_from_rfc3339(pending["fetchedAt"].as_str().unwrap()).unwrap();
    let age = chrono::Utc::now().signed_duration_since(fetched_at);
    assert!(
        age >= chrono::TimeDelta::zero() && age < chrono::TimeDelta::seconds(10),
        "{age}"
    );
    assert!(pending["ageSeconds"].as_f64().is_some_and(|age| age >= 0.0));
}

#[tokio::test]
async fn a_domain_without_a_workflow_is_null_not_an_error() {
    let app = TestApp::builder().spawn().await;
    let body = app.status_of("never-registered.com").await;
    assert_eq!(body, json!({ "data": { "registrationStatus": null } }));
}

#[tokio::test]
async fn equivalent_spellings_of_a_domain_share_one_upstream_call() {
    let app = TestApp::builder().spawn().await;
    for spelling in [
        "Demo-Succeeded.COM",
        "demo-succeeded.com.",
        "demo-succeeded.com",
    ] {
        let body = app.status_of(spelling).await;
        assert_eq!(status(&body)["domainName"], "demo-succeeded.com");
    }
    assert_eq!(app.upstream_calls(), 1);
}

#[tokio::test]
async fn bad_domains_and_account_ids_are_refused_before_any_upstream_call() {
    let app = TestApp::builder().spawn().await;
    let cases = [
        json!({ "domain": "not a domain" }),
        json!({ "domain": "../../etc/passwd" }),
        json!({ "domain": "example.com/registration-status?x=" }),
        json!({ "domain": "localhost" }),
        json!({ "domain": "a".repeat(300) + ".com" }),
        json!({ "domain": "example.com", "accountId": "../other" }),
        json!({ "domain": "example.com", "accountId": "0123456789abcdef0123456789abcdef0" }),
    ];
    for variables in cases {
        let body = app
            .query(crate::support::STATUS_QUERY, variables.clone())
            .await;
        let error = &body["errors"][0];
        assert_eq!(
            error["extensions"]["code"], "BAD_USER_INPUT",
            "{variables}: {body}"
        );
        assert!(
            error["message"].as_str().unwrap().starts_with("invalid "),
            "{body}"
        );
        assert_eq!(body["data"]["registrationStatus"], Value::Null);
    }
    assert_eq!(app.upstream_calls(), 0);
}

#[tokio::test]
async fn refused_credentials_surface_as_upstream_auth_with_the_upstream_codes() {
    let simulator =
        spawn_simulator_with(SimulatorSettings::default().refuse_credential(crate::support::TOKEN))
            .await
            .handle;
    let app = TestApp::builder().simulator(simulator).spawn().await;
    let body = app.status_of("demo-succeeded.com").await;
    let error = &body["errors"][0];
    assert_eq!(error["extensions"]["code"], "UPSTREAM_AUTH", "{body}");
    assert_eq!(error["extensions"]["upstreamStatus"], 403);
    assert_eq!(
        error["extensions"]["upstreamErrors"],
        json!([{ "code": 10000, "message": "Authentication error" }])
    );
    assert!(
        !body.to_string().contains(crate::support::TOKEN),
        "the token leaked: {body}"
    );
}

#[tokio::test]
async fn an_upstream_429_is_reported_and_pauses_the_credential_for_every_caller() {
    let simulator =
        spawn_simulator_with(SimulatorSettings::default().rate_limit(1, Duration::from_secs(300)))
            .await
            .handle;
    let app = TestApp::builder().simulator(simulator).spawn().await;
    app.spend_upstream_request_elsewhere().await;
    let body = app.status_of("demo-failed.com").await;
    let error = &body["errors"][0];
    assert_eq!(
        error["extensions"]["code"], "UPSTREAM_RATE_LIMITED",
        "{body}"
    );
    assert_eq!(error["extensions"]["upstreamErrors"][0]["code"], 971);
    let retry_after = error["extensions"]["retryAfterSeconds"].as_u64().unwrap();
    assert!((1..=300).contains(&retry_after), "{retry_after}");
    assert_eq!(app.upstream_calls(), 2);

    let body = app.status_of("demo-pending.com").await;
    let error = &body["errors"][0];
    assert_eq!(
        error["extensions"]["code"], "UPSTREAM_RATE_LIMITED",
        "{body}"
    );
    assert!(error["extensions"]["retryAfterSeconds"].as_u64().unwrap() > 200);
    assert_eq!(
        app.upstream_calls(),
        2,
        "the paused credential sends nothing until Retry-After"
    );
}

#[tokio::test]
async fn a_spent_ratelimit_header_stops_the_next_call_before_it_is_sent() {
    let simulator =
        spawn_simulator_with(SimulatorSettings::default().rate_limit(1, Duration::from_secs(300)))
            .await
            .handle;
    let app = TestApp::builder().simulator(simulator).spawn().await;
    app.status_of("demo-succeeded.com").await;
    let body = app.status_of("demo-failed.com").await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "UPSTREAM_RATE_LIMITED",
        "{body}"
    );
    assert_eq!(
        app.upstream_calls(),
        1,
        "Ratelimit said r=0: the second call was never sent"
    );
    assert_eq!(
        app.simulator().stats().rate_limited,
        0,
        "the simulator never had to answer 429"
    );
}

#[tokio::test]
async fn a_dashboard_query_answers_each_domain_and_isolates_failures() {
    let app = TestApp::builder().spawn().await;
    let query = r#"query($domains: [String!]!) { registrationStatuses(domains: $domains) { domainName state } }"#;
    let domains = json!(["demo-succeeded.com", "nothing-here.com", "demo-failed.com"]);
    let body = app.query(query, json!({ "domains": domains })).await;
    assert_eq!(
        body["data"]["registrationStatuses"],
        json!([{ "domainName": "demo-succeeded.com", "state": "SUCCEEDED" }, null, { "domainName": "demo-failed.com", "state": "FAILED" }])
    );

    app.simulator()
        .set_faults(registrar_simulator::Faults {
            error_share: 1.0,
            ..Default::default()
        })
        .unwrap();
    let domains = json!(["demo-succeeded.com", "demo-pending.com"]);
    let body = app.query(query, json!({ "domains": domains })).await;
    assert_eq!(
        body["data"]["registrationStatuses"][0]["state"], "SUCCEEDED",
        "served from cache: {body}"
    );
    assert_eq!(body["data"]["registrationStatuses"][1], Value::Null);
    assert_eq!(
        body["errors"][0]["path"],
        json!(["registrationStatuses", 1])
    );
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "UPSTREAM_UNAVAILABLE"
    );
}

#[tokio::test]
async fn a_dashboard_query_over_the_list_limit_is_refused_whole() {
    let app = TestApp::builder()
        .args(&["--max-domains", "2"])
        .spawn()
        .await;
    let query =
        r#"query($domains: [String!]!) { registrationStatuses(domains: $domains) { state } }"#;
    let body = app
        .query(query, json!({ "domains": ["a.com", "b.com", "c.com"] }))
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    assert_eq!(app.upstream_calls(), 0);
}
