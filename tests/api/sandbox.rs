//! With no settings at all, the gateway answers from its embedded simulator.

use registrar_gateway::config::GatewayConfig;
use registrar_gateway::startup::Application;
use serde_json::{Value, json};

#[tokio::test]
async fn with_no_configuration_the_gateway_serves_the_demo_registrations() {
    let config =
        GatewayConfig::from_args(["registrar-gateway", "--listen", "127.0.0.1:0"]).unwrap();
    let app = Application::build(&config)
        .await
        .expect("the sandbox starts");
    assert!(
        app.simulator().is_some(),
        "sandbox mode runs the embedded simulator"
    );
    let address = app.local_addr();
    let shutdown = app.shutdown_token();
    let server = tokio::spawn(app.run_until_stopped());

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

    shutdown.cancel();
    server.await.unwrap().expect("a clean shutdown");
}
