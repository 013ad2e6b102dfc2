//! With no settings at all, the gateway answers from its embedded simulator.

use serde_json::{Value, json};

use crate::support::{TestApp, spawn_process};

#[tokio::test]
async fn with_no_configuration_the_gateway_serves_the_demo_registrations() {
    let app = TestApp::builder().sandbox().spawn().await;
    assert!(
        app.simulator_if_any().is_some(),
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

/// What compose passes for unset optional settings (`CLOUDFLARE_API_TOKEN: ${CLOUDFLARE_API_TOKEN:-}`)
/// and Kubernetes for an absent optional secret: the variable, set but empty. Every
/// setting the binary reads from the environment, empty, must mean "not given": the
/// gateway starts, in sandbox mode, and serves the demo registrations.
#[tokio::test]
async fn every_setting_set_but_empty_counts_as_unset_and_the_sandbox_is_served() {
    use clap::CommandFactory;

    let mut variables = vec![
        "RUST_LOG".to_owned(),
        "OTEL_SERVICE_NAME".to_owned(),
        "OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(),
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT".to_owned(),
    ];
    let mut commands = vec![registrar_gateway::cli::Cli::command()];
    while let Some(command) = commands.pop() {
        variables.extend(
            command
                .get_arguments()
                .filter_map(|arg| arg.get_env())
                .map(|name| name.to_string_lossy().into_owned()),
        );
        commands.extend(command.get_subcommands().cloned());
    }
    for compose_passes in [
        "CLOUDFLARE_API_TOKEN",
        "CLOUDFLARE_ACCOUNT_ID",
        "CLOUDFLARE_BASE_URL",
        "REDIS_URL",
    ] {
        assert!(
            variables.iter().any(|name| name == compose_passes),
            "{compose_passes} is a setting"
        );
    }
    let empty: Vec<(&str, &str)> = variables.iter().map(|name| (name.as_str(), "")).collect();

    let gateway = spawn_process(&[], &empty).await;
    gateway.log_line("SANDBOX MODE", |_| true).await;
    let body: Value = reqwest::Client::new()
        .post(format!("http://{}/graphql", gateway.address))
        .json(&json!({ "query": r#"{ registrationStatus(domain: "demo-succeeded.com") { state } }"# }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body,
        json!({ "data": { "registrationStatus": { "state": "SUCCEEDED" } } }),
        "the embedded simulator answers"
    );
}
