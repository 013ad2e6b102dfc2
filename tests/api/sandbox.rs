//! With no settings at all, the gateway answers from its embedded simulator.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{TestApp, WsClient, change, connect_ready_to, spawn_process};

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

/// The demo is moving whenever someone looks: after `demo-succeeds.com` reached
/// SUCCEEDED in a fresh sandbox, a new subscriber three seconds later sees it start
/// again and reach SUCCEEDED within a minute, while a fixed-state demo stays put.
/// The embedded simulator's clock is real, but a test may move it on, so the
/// workflow's 30 s take none here; the three seconds are real time, since the
/// gateway's cache keeps real time: they are the sentence under test, not a wait
/// for something to happen.
#[tokio::test]
async fn a_new_subscriber_three_seconds_after_the_demo_succeeded_sees_it_start_again() {
    let app = TestApp::builder().sandbox().spawn().await;
    let simulator = app.simulator().clone();
    let move_on = || {
        simulator
            .advance_clock(Duration::from_secs(30))
            .expect("the clock advances")
    };

    let mut first = connect_ready_to(app.address).await;
    first.watch("1", "demo-succeeds.com", false).await;
    assert_eq!(states_until(&mut first, "1", 1).await, ["PENDING"]);
    move_on();
    let seen = states_until(&mut first, "1", usize::MAX).await;
    assert_eq!(
        seen.last().map(String::as_str),
        Some("SUCCEEDED"),
        "{seen:?}"
    );

    tokio::time::sleep(Duration::from_secs(3)).await;
    let looked = Instant::now();
    let mut second = connect_ready_to(app.address).await;
    second.watch("2", "demo-succeeds.com", false).await;
    let restarted = states_until(&mut second, "2", 1).await;
    assert!(
        ["PENDING", "IN_PROGRESS"].contains(&restarted[0].as_str()),
        "the demo starts again: {restarted:?}"
    );
    move_on();
    let seen = states_until(&mut second, "2", usize::MAX).await;
    assert_eq!(
        seen.last().map(String::as_str),
        Some("SUCCEEDED"),
        "{seen:?}"
    );
    assert!(
        looked.elapsed() < Duration::from_secs(60),
        "{:?}",
        looked.elapsed()
    );

    let mut fixed = connect_ready_to(app.address).await;
    fixed.watch("3", "demo-succeeded.com", false).await;
    let seen = states_until(&mut fixed, "3", usize::MAX).await;
    assert_eq!(seen, ["SUCCEEDED"], "a fixed-state demo stays fixed");

    app.begin_shutdown();
    app.stopped().await;
}

/// The states `id` reports, until `count` of them or its `complete`; the sandbox's
/// keep-alive pings are answered on the way, as a client does.
async fn states_until(client: &mut WsClient, id: &str, count: usize) -> Vec<String> {
    let mut states = Vec::new();
    while states.len() < count {
        let message = client.recv().await;
        match message["type"].as_str() {
            Some("next") => states.push(
                change(&message, id)["status"]["state"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            ),
            Some("ping") => client.send(json!({ "type": "pong" })).await,
            Some("complete") => break,
            _ => panic!("unexpected message: {message}"),
        }
    }
    states
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
