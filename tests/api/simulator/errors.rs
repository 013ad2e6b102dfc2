//! The platform's error envelopes: auth, routing, not found, rate limiting.

use std::time::Duration;

use registrar_simulator::SimulatorSettings;
use serde_json::{Value, json};

use crate::support::{
    ACCOUNT, TOKEN, header, json, spawn_simulator, spawn_simulator_with, status_path,
};

/// Auth headers sent by one case.
type Headers = Vec<(&'static str, &'static str)>;

const MISSING: &str = r#"{"success":false,"errors":[{"code":9106,"message":"Missing X-Auth-Key, X-Auth-Email or Authorization headers"}]}"#;

fn invalid_headers(code: u32, message: &str) -> Value {
    json!({"success": false, "errors": [{"code": 6003, "message": "Invalid request headers",
        "error_chain": [{"code": code, "message": message}]}], "messages": [], "result": null})
}

#[tokio::test]
async fn auth_headers_are_checked_like_the_platform_does() {
    let sim = spawn_simulator().await;
    let key = "c2547eb745079dac9320b638f5e225cf483cc";
    let missing: Value = serde_json::from_str(MISSING).unwrap();
    let cases: Vec<(Headers, u16, Value)> = vec![
        (vec![], 400, missing.clone()),
        (
            vec![("X-Auth-Email", "user@example.com")],
            400,
            missing.clone(),
        ),
        (vec![("X-Auth-Key", key)], 400, missing),
        (
            vec![("Authorization", "Token abc")],
            400,
            invalid_headers(6111, "Invalid format for Authorization header"),
        ),
        (
            vec![("Authorization", "Bearer")],
            400,
            invalid_headers(6111, "Invalid format for Authorization header"),
        ),
        (
            vec![
                ("X-Auth-Email", "user@example.com"),
                ("X-Auth-Key", "not-a-key"),
            ],
            400,
            invalid_headers(6103, "Invalid format for X-Auth-Key header"),
        ),
        (
            vec![("X-Auth-Email", "user"), ("X-Auth-Key", key)],
            400,
            invalid_headers(6102, "Invalid format for X-Auth-Email header"),
        ),
        (
            vec![("X-Auth-Email", "user@example.com"), ("X-Auth-Key", key)],
            200,
            Value::Null,
        ),
    ];
    for (headers, expected_status, expected_body) in cases {
        let mut request = sim
            .client
            .get(sim.url(&status_path(ACCOUNT, "demo-succeeded.com")));
        for (name, value) in &headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.unwrap();
        assert!(header(&response, "ratelimit").is_some(), "{headers:?}");
        let (status, body) = json(response).await;
        assert_eq!(status, expected_status, "{headers:?}");
        if expected_status != 200 {
            assert_eq!(body, expected_body, "{headers:?}");
        }
    }
    sim.stop().await;
}

#[tokio::test]
async fn a_refused_credential_gets_403_authentication_error() {
    let sim = spawn_simulator_with(SimulatorSettings::default().refuse_credential("revoked")).await;
    let response = sim
        .client
        .get(sim.url(&status_path(ACCOUNT, "demo-succeeded.com")))
        .bearer_auth("revoked")
        .send()
        .await
        .unwrap();
    let (status, body) = json(response).await;
    assert_eq!(status, 403);
    assert_eq!(
        body,
        json!({"success": false, "errors": [{"code": 10000, "message": "Authentication error"}]})
    );
    assert_eq!(
        sim.status("demo-succeeded.com").await.status(),
        200,
        "other tokens still work"
    );
    sim.stop().await;
}

#[tokio::test]
async fn an_unknown_workflow_is_404_with_the_verbatim_envelope() {
    let sim = spawn_simulator().await;
    let (status, body) = json(sim.status("example.com").await).await;
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({"errors": [{"code": 10000, "message": "No workflow found for example.com"}], "messages": [], "result": null, "success": false})
    );
    sim.stop().await;
}

#[tokio::test]
async fn unknown_routes_and_malformed_account_ids_get_the_routing_error() {
    let sim = spawn_simulator().await;
    let long_account = "a".repeat(33);
    let paths = [
        "/zones/b5b82f8d72414f849bd96a50e6228ece/dns_records/645577699".to_owned(),
        status_path(&long_account, "demo-succeeded.com"),
        status_path("not-alnum", "demo-succeeded.com"),
    ];
    for path in paths {
        let (status, body) = json(sim.get(&path).await).await;
        assert_eq!(status, 400, "{path}");
        let expected = json!({"success": false, "errors": [
            {"code": 7003, "message": format!("Could not route to {path}, perhaps your object identifier is invalid?")},
            {"code": 7000, "message": "No route for that URI"}], "messages": [], "result": null});
        assert_eq!(body, expected);
    }
    sim.stop().await;
}

#[tokio::test]
async fn exceeding_the_rate_limit_blocks_the_credential_for_a_full_window() {
    let config = SimulatorSettings::default().rate_limit(3, Duration::from_secs(300));
    let sim = spawn_simulator_with(config).await;
    for remaining in [2, 1, 0] {
        let response = sim.status("demo-succeeded.com").await;
        assert_eq!(response.status(), 200);
        let ratelimit = header(&response, "ratelimit").unwrap();
        assert!(
            ratelimit.starts_with(&format!("\"default\";r={remaining};t=")),
            "{ratelimit}"
        );
        assert_eq!(
            header(&response, "ratelimit-policy").unwrap(),
            "\"default\";q=3;w=300"
        );
        assert_eq!(header(&response, "retry-after"), None);
    }
    let response = sim.status("demo-succeeded.com").await;
    assert_eq!(header(&response, "retry-after").as_deref(), Some("300"));
    assert_eq!(
        header(&response, "ratelimit").as_deref(),
        Some("\"default\";r=0;t=300")
    );
    assert_eq!(
        header(&response, "ratelimit-policy").as_deref(),
        Some("\"default\";q=3;w=300")
    );
    let (status, body) = json(response).await;
    assert_eq!(status, 429);
    assert_eq!(
        body,
        json!({"success": false, "errors": [{"code": 971, "message": "Please wait and consider throttling your request speed"}], "messages": [], "result": null})
    );
    assert_eq!(
        sim.status("demo-succeeded.com").await.status(),
        429,
        "still blocked"
    );
    let other = sim
        .client
        .get(sim.url(&status_path(ACCOUNT, "demo-succeeded.com")))
        .bearer_auth(format!("{TOKEN}-2"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 200, "limits are per credential");
    assert_eq!(sim.handle.stats().rate_limited, 2);
    sim.stop().await;
}
