//! With no settings at all, the gateway answers from its embedded simulator.

use serde_json::{Value, json};

use crate::support::spawn_sandbox;

#[tokio::test]
async fn with_no_configuration_the_gateway_serves_the_demo_registrations() {
    let mut app = spawn_sandbox().await;
    assert!(
        app.sandbox.is_some(),
        "sandbox mode runs the embedded simulator"
    );
    let address = app.address;

    let response = reqwest::Client::new()
        .post(format!("http://{address}/graphql"))
        .json(&json!({ "query": r#"{ registrationStatus(domain: "demo-succeeded.com") { state completed } }"# }))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({ "data": { "registrationStatus": { "state": "SUCCEEDED", "completed": true } } })
    );

    let page = reqwest::get(format!("http://{address}/"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("demo-action-required.com"),
        "GraphiQL opens on a demo domain"
    );

    app.begin_shutdown();
    app.stopped().await;
}
